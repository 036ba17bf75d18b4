"""Statistics helpers for multi-run measurements.

All functions are pure Python so the agent (which may run on a Raspberry Pi without NumPy/SciPy)
and the server compute identical figures.

Conventions:
    * ``std`` is the sample standard deviation (n - 1 denominator); it is 0.0 for a single value.
    * Percentiles use linear interpolation between closest ranks (NumPy's default "linear" method).
    * The 95% confidence interval of the mean uses Student's t distribution with n - 1 degrees of
      freedom; it is ``None`` for fewer than two values.
    * Outliers use the robust modified z-score (Iglewicz & Hoaglin): ``0.6745 * |x - median| / MAD``
      greater than 3.5. A mean/2-sigma rule cannot flag anything at n <= 5, this one can.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from common.protocol import MetricStatistics

#: Threshold on the modified z-score above which a value is an outlier (Iglewicz & Hoaglin, 1993).
MODIFIED_Z_THRESHOLD = 3.5
#: 0.6745 is the 0.75 quantile of the standard normal: it makes the MAD consistent with sigma.
_MAD_CONSISTENCY = 0.6745
#: Scale used when the MAD is zero: mean absolute deviation * sqrt(pi/2) estimates sigma.
_MEANAD_CONSISTENCY = 0.7979


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean.

    Args:
        values: Non-empty sequence of numbers.

    Returns:
        The mean.

    Raises:
        ValueError: If ``values`` is empty.
    """
    if not values:
        raise ValueError("mean of an empty sequence")
    return math.fsum(values) / len(values)


def std(values: Sequence[float]) -> float:
    """Sample standard deviation (Bessel-corrected); 0.0 for a single value.

    Args:
        values: Non-empty sequence of numbers.

    Returns:
        The sample standard deviation.
    """
    n = len(values)
    if n < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (n - 1))


def percentile(values: Sequence[float], q: float) -> float:
    """Percentile with linear interpolation (NumPy's default method).

    Args:
        values: Non-empty sequence of numbers.
        q: Percentile in [0, 100].

    Returns:
        The interpolated percentile.

    Raises:
        ValueError: If ``values`` is empty or ``q`` is outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within [0, 100], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(ordered[lo])
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """Median (50th percentile).

    Args:
        values: Non-empty sequence of numbers.

    Returns:
        The median.
    """
    return percentile(values, 50.0)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the regularized incomplete beta function (Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Cumulative distribution function of Student's t distribution.

    Args:
        t: The t statistic.
        df: Degrees of freedom (> 0).

    Returns:
        P(T <= t).
    """
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t >= 0 else tail


def t_ppf(p: float, df: float) -> float:
    """Quantile (inverse CDF) of Student's t distribution, by bisection on :func:`t_cdf`.

    Args:
        p: Probability in (0, 1).
        df: Degrees of freedom (> 0).

    Returns:
        t such that P(T <= t) = p, accurate to about 1e-10.

    Raises:
        ValueError: If ``p`` is not in (0, 1) or ``df`` is not positive.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"df must be positive, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


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


def outlier_indices(values: Sequence[float], threshold: float = MODIFIED_Z_THRESHOLD) -> list[int]:
    """Indices of outliers by the modified z-score rule (median/MAD).

    When more than half of the values are identical the MAD is zero; the mean absolute deviation
    around the median is used instead, and when that is zero too nothing is an outlier.

    Args:
        values: Sequence of numbers.
        threshold: Modified z-score above which a value is flagged.

    Returns:
        Sorted indices (into ``values``) of the flagged values; empty for fewer than three values.
    """
    if len(values) < 3:
        return []
    med = median(values)
    deviations = [abs(v - med) for v in values]
    mad = median(deviations)
    if mad > 0:
        scale = mad / _MAD_CONSISTENCY
    else:
        meanad = mean(deviations)
        if meanad == 0:
            return []
        scale = meanad / _MEANAD_CONSISTENCY
    return [i for i, dev in enumerate(deviations) if dev / scale > threshold]


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
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("cannot describe an empty series")
    if not all(math.isfinite(v) for v in vals):
        raise ValueError("cannot describe a series holding NaN or infinity")
    m = mean(vals)
    s = std(vals)
    return MetricStatistics(
        n=len(vals),
        mean=m,
        std=s,
        min=min(vals),
        max=max(vals),
        median=median(vals),
        p90=percentile(vals, 90),
        p95=percentile(vals, 95),
        p99=percentile(vals, 99),
        cv=(s / m) if m != 0 else None,
        ci95=ci95(vals),
        outliers=outlier_indices(vals),
        outlier_rule="modified_z_mad>3.5",
        values=vals,
        unit=unit,
    )


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
        series = [r[name] for r in runs if isinstance(r.get(name), int | float) and r.get(name) is not None]
        series = [v for v in series if math.isfinite(v)]  # type: ignore[arg-type]
        if series:
            out[name] = describe(series)  # type: ignore[arg-type]
    return out
