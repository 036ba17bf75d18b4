"""Statistics of multi-run measurements (server side: the server alone computes statistics over runs).

The descriptive part (mean, std, percentiles, robust outliers) comes from :mod:`common.descriptive`, which
uses the standard library only and is re-exported here; this module adds the 95% confidence interval of
the mean, with Student's t quantile from SciPy (a server dependency: the agent never imports this module).

Conventions (see :mod:`common.descriptive` for the others):
    * The 95% confidence interval of the mean uses Student's t distribution with n - 1 degrees of
      freedom; it is ``None`` for fewer than two values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from common.descriptive import (
    MODIFIED_Z_THRESHOLD,
    OUTLIER_RULE,
    finite_series,
    mean,
    median,
    outlier_indices,
    percentile,
    std,
    summarize,
)
from common.protocol import MetricStatistics

__all__ = [
    "MODIFIED_Z_THRESHOLD",
    "OUTLIER_RULE",
    "ci95",
    "describe",
    "describe_runs",
    "mean",
    "median",
    "outlier_indices",
    "percentile",
    "std",
    "t_ppf",
]


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
    """Two-sided 95% confidence interval of the mean (Student's t).

    Args:
        values: Sequence of numbers.

    Returns:
        ``(low, high)``, or ``None`` when there are fewer than two values.
    """
    n = len(values)
    if n < 2:
        return None
    m = mean(values)
    half = t_ppf(0.975, n - 1) * std(values) / math.sqrt(n)
    return (m - half, m + half)


def describe(values: Sequence[float], unit: str = "") -> MetricStatistics:
    """Compute the full :class:`~common.protocol.MetricStatistics` of a series.

    Args:
        values: Non-empty sequence of finite numbers (raw values are kept in order).
        unit: Optional unit symbol carried along for display.

    Returns:
        The statistics.

    Raises:
        ValueError: If ``values`` is empty or holds a non-finite number.
    """
    vals = finite_series(values)
    return summarize(vals, unit).model_copy(update={"ci95": ci95(vals)})


def describe_runs(
    runs: Sequence[dict[str, float | None]], metric_names: Sequence[str] | None = None
) -> dict[str, MetricStatistics]:
    """Describe every scalar metric across a list of per-run metric dicts.

    Runs where a metric is missing or ``None`` are skipped for that metric (absent, never zero).

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
            out[name] = describe(series)
    return out
