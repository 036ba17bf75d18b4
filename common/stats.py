"""Statistics of multi-run measurements (server side: the server alone computes statistics over runs).

The descriptive part (mean, std, percentiles, robust outliers) comes from :mod:`common.descriptive`, which
uses the standard library only and is re-exported here; this module adds the 95% confidence interval of
the mean, with SciPy (a server dependency: the agent never imports this module).

The 95% confidence interval is an interval of the **arithmetic mean** of the metric (the figure shown next to
it), and it never goes below zero for a series without negative values: every RUCKUS metric (latencies,
throughputs, bytes, energy, FLOP/s, scores) is non-negative, and a Student's t interval of a small, spread
series such as 73, 22, 27 GFLOP/s reads [-29, 111]. The method depends on the series, and is recorded with
the interval (``MetricStatistics.ci_method``, :class:`CiMethod`) so that the UI and CLI can name it:

* ``lognormal_cox`` (2 <= n < :data:`BOOTSTRAP_MIN_N`, every value > 0): the modified Cox interval of the
  mean of a log-normal population (Olsson 2005, *J. Statistics Education* 13(1)):
  ``exp(ybar + s^2/2 +- t(0.975, n-1) * sqrt(s^2/n + s^4/(2(n-1))))`` over ``y = ln x``. Run-to-run noise
  of timings and rates is multiplicative (a busy host slows everything by a factor), so log-normal is
  the natural small-sample model; the bounds are positive by construction. Too few values to bootstrap.
* ``bootstrap_bca`` (:data:`BOOTSTRAP_MIN_N` <= n <= :data:`BOOTSTRAP_MAX_N`): the bias-corrected and
  accelerated bootstrap interval of the mean (``scipy.stats.bootstrap``, :data:`BOOTSTRAP_RESAMPLES`
  resamples, fixed seed :data:`BOOTSTRAP_SEED`: the same values give the same interval on every
  recompute). No distribution assumed; every resampled mean lies within [min, max], so the bounds do.
* ``student_t_nonneg``: Student's t interval with its lower bound raised to 0, for non-negative series a
  log cannot take (a zero among fewer than :data:`BOOTSTRAP_MIN_N` values, e.g. a GPU utilization of 0%)
  and for series too long to bootstrap cheaply (there the t interval is accurate and practically never
  reaches 0). The mean of a non-negative quantity is >= 0, so cutting the interval at 0 loses no coverage.
* ``student_t``: Student's t interval, for a series holding a negative value (no RUCKUS metric today), and
  the label of intervals stored before the method was recorded.

Conventions (see :mod:`common.descriptive` for the others):
    * The interval is ``None`` for fewer than two values; for a series without spread it is the value.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from enum import StrEnum

from common.descriptive import (
    MODIFIED_Z_THRESHOLD,
    OUTLIER_RULE,
    UNSTABLE_CV,
    cv_warning,
    finite_series,
    mean,
    median,
    outlier_indices,
    percentile,
    std,
    summarize,
)
from common.metrics import BENCHMARK_METRIC_RE
from common.protocol import MetricStatistics

__all__ = [
    "BOOTSTRAP_MAX_N",
    "BOOTSTRAP_MIN_N",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "CI_METHOD_LABELS",
    "MODIFIED_Z_THRESHOLD",
    "OUTLIER_RULE",
    "UNSTABLE_CV",
    "CiMethod",
    "ci95",
    "ci95_with_method",
    "cv_warning",
    "describe",
    "describe_runs",
    "mean",
    "median",
    "outlier_indices",
    "percentile",
    "std",
    "t_ppf",
]

#: Smallest series bootstrapped: below it a resample repeats too few distinct values for the percentiles
#: (and BCa's acceleration) to mean much, and the log-normal interval is the better small-sample choice.
BOOTSTRAP_MIN_N = 20
#: Longest series bootstrapped: BCa's jackknife costs n^2 operations; past this the t interval is exact
#: enough (the central limit theorem has long taken over).
BOOTSTRAP_MAX_N = 1000
#: Bootstrap resamples (SciPy's default).
BOOTSTRAP_RESAMPLES = 9999
#: Seed of the bootstrap: recomputing a job's statistics gives the same interval.
BOOTSTRAP_SEED = 20240101
#: Bootstrap resamples held in memory at once are capped to about this many values.
_BOOTSTRAP_BATCH_VALUES = 2_000_000


class CiMethod(StrEnum):
    """How a 95% confidence interval of the mean was computed (see the module docstring)."""

    LOGNORMAL_COX = "lognormal_cox"
    BOOTSTRAP_BCA = "bootstrap_bca"
    STUDENT_T_NONNEG = "student_t_nonneg"
    STUDENT_T = "student_t"


#: Words for each method, for display (the UI's copy is ``CI_METHOD_LABELS`` in frontend/src/lib/stats.ts).
CI_METHOD_LABELS: dict[str, str] = {
    CiMethod.LOGNORMAL_COX: "log-normal (modified Cox)",
    CiMethod.BOOTSTRAP_BCA: "BCa bootstrap",
    CiMethod.STUDENT_T_NONNEG: "Student's t, cut at 0",
    CiMethod.STUDENT_T: "Student's t",
}


def t_ppf(p: float, df: float) -> float:
    """Quantile (inverse CDF) of Student's t distribution.

    Args:
        p: Probability in (0, 1).
        df: Degrees of freedom (> 0).

    Returns:
        t such that P(T <= t) = p.

    Raises:
        ValueError: If ``p`` is not in (0, 1) or ``df`` is not positive.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"df must be positive, got {df}")
    # Imported on first use: scipy.stats takes about a second to import, which server processes that never
    # compute statistics (web workers, management commands) should not pay at start-up.
    from scipy.stats import t

    return float(t.ppf(p, df))


def ci95(values: Sequence[float]) -> tuple[float, float] | None:
    """Two-sided 95% confidence interval of the mean; never below zero for non-negative values.

    Args:
        values: Sequence of finite numbers.

    Returns:
        ``(low, high)``, or ``None`` when there are fewer than two values. :func:`ci95_with_method` also
        says which method computed it.
    """
    found = ci95_with_method(values)
    return found[0] if found is not None else None


def ci95_with_method(values: Sequence[float]) -> tuple[tuple[float, float], CiMethod] | None:
    """Two-sided 95% confidence interval of the mean, and the method chosen for the series.

    Args:
        values: Sequence of finite numbers.

    Returns:
        ``((low, high), method)``, or ``None`` when there are fewer than two values. The method follows the
        module docstring: ``student_t`` when a value is negative; otherwise ``bootstrap_bca`` for
        :data:`BOOTSTRAP_MIN_N` <= n <= :data:`BOOTSTRAP_MAX_N`, ``lognormal_cox`` for fewer values all
        above zero, and ``student_t_nonneg`` for the rest.
    """
    vals = [float(v) for v in values]
    n = len(vals)
    if n < 2:
        return None
    low = min(vals)
    if low < 0:
        method = CiMethod.STUDENT_T
    elif BOOTSTRAP_MIN_N <= n <= BOOTSTRAP_MAX_N:
        method = CiMethod.BOOTSTRAP_BCA
    elif n < BOOTSTRAP_MIN_N and low > 0:
        method = CiMethod.LOGNORMAL_COX
    else:
        method = CiMethod.STUDENT_T_NONNEG
    if low == max(vals):
        # No spread: every method's interval collapses to the value (and the bootstrap's would be NaN).
        return (low, low), method
    if method is CiMethod.LOGNORMAL_COX:
        return _lognormal_cox(vals), method
    if method is CiMethod.BOOTSTRAP_BCA:
        found = _bootstrap_bca(vals)
        if found is not None:
            return found, method
        method = CiMethod.STUDENT_T_NONNEG
    t_low, t_high = _student_t(vals)
    if method is CiMethod.STUDENT_T_NONNEG:
        t_low = max(t_low, 0.0)
    return (t_low, t_high), method


def _student_t(vals: list[float]) -> tuple[float, float]:
    """Student's t interval of the mean: ``mean +- t(0.975, n-1) * s / sqrt(n)``."""
    n = len(vals)
    m = mean(vals)
    half = t_ppf(0.975, n - 1) * std(vals) / math.sqrt(n)
    return (m - half, m + half)


def _lognormal_cox(vals: list[float]) -> tuple[float, float]:
    """Modified Cox interval of the mean of a log-normal population (Olsson 2005); values must be > 0."""
    n = len(vals)
    logs = [math.log(v) for v in vals]
    centre = mean(logs)
    var = std(logs) ** 2
    half = t_ppf(0.975, n - 1) * math.sqrt(var / n + var * var / (2 * (n - 1)))
    return (math.exp(centre + var / 2 - half), math.exp(centre + var / 2 + half))


def _bootstrap_bca(vals: list[float]) -> tuple[float, float] | None:
    """BCa bootstrap interval of the mean with a fixed seed; None when SciPy finds it degenerate."""
    # Imported on first use, like t_ppf: numpy and scipy.stats are slow imports few processes need.
    import numpy as np
    from scipy.stats import bootstrap

    data = np.asarray(vals, dtype=float)
    with warnings.catch_warnings():
        # A degenerate bootstrap distribution warns and returns NaN: handled below.
        warnings.simplefilter("ignore")
        res = bootstrap(
            (data,),
            np.mean,
            confidence_level=0.95,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="BCa",
            batch=max(1, _BOOTSTRAP_BATCH_VALUES // len(vals)),
            rng=np.random.default_rng(BOOTSTRAP_SEED),
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    return (low, high)


def describe(values: Sequence[float], unit: str = "", *, peak: bool = False) -> MetricStatistics:
    """Compute the full :class:`~common.protocol.MetricStatistics` of a series.

    Args:
        values: Non-empty sequence of finite numbers (raw values are kept in order).
        unit: Optional unit symbol carried along for display.
        peak: The values are best-of-N peaks (hardware benchmark figures): only low values are outliers.

    Returns:
        The statistics.

    Raises:
        ValueError: If ``values`` is empty or holds a non-finite number.
    """
    vals = finite_series(values)
    found = ci95_with_method(vals)
    interval, method = found if found is not None else (None, None)
    summary = summarize(vals, unit, outlier_side="low" if peak else "both")
    return summary.model_copy(update={"ci95": interval, "ci_method": method.value if method else None})


def describe_runs(
    runs: Sequence[dict[str, float | None]], metric_names: Sequence[str] | None = None
) -> dict[str, MetricStatistics]:
    """Describe every scalar metric across a list of per-run metric dicts.

    Runs where a metric is missing or ``None`` are skipped for that metric (absent, never zero). Hardware
    benchmark figures (``tflops.cuda.bf16`` ...) are each run's peak: only their low values are outliers.

    Args:
        runs: One ``{metric: value}`` mapping per run, in run order.
        metric_names: Restrict to these metrics; default: every metric seen in any run.

    Returns:
        Mapping of metric name to its statistics; metrics with no value at all are omitted.
    """
    names = list(metric_names) if metric_names is not None else sorted({k for r in runs for k in r})
    out: dict[str, MetricStatistics] = {}
    for name in names:
        series = [v for r in runs if isinstance(v := r.get(name), int | float) and math.isfinite(v)]
        if series:
            out[name] = describe(series, peak=BENCHMARK_METRIC_RE.match(name) is not None)
    return out
