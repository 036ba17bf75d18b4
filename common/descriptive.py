"""Descriptive statistics of a series, from the standard library alone.

This is the part of the statistics that needs no distribution tables: centre, spread, percentiles and the
robust outlier rule. The agent uses it to summarise the timed repeats of a hardware benchmark figure without
SciPy; :mod:`common.stats` (server side) builds the full statistics over runs on top of it, adding the
confidence interval.

Conventions:
    * ``std`` is the sample standard deviation (n - 1 denominator); it is 0.0 for a single value.
    * Percentiles interpolate linearly between closest ranks: ``statistics.quantiles(method="inclusive")``,
      which is NumPy's default "linear" method.
    * Outliers use the robust modified z-score (Iglewicz & Hoaglin): ``0.6745 * |x - median| / MAD``
      greater than 3.5. A mean/2-sigma rule cannot flag anything at n <= 5, this one can. For a best-of-N
      peak (a hardware benchmark figure) only the **low** side is flagged: a busy machine can slow a repeat
      down but not speed it past the hardware, so a low repeat is the disturbance and the high one the peak.
    * A series whose coefficient of variation exceeds :data:`UNSTABLE_CV` is *unstable*: its mean says
      little, and the UI and CLI say so next to it (``unstable: CV 48%``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from fractions import Fraction
from typing import Literal

from common.protocol import MetricStatistics

#: Threshold on the modified z-score above which a value is an outlier (Iglewicz & Hoaglin, 1993).
MODIFIED_Z_THRESHOLD = 3.5
#: Name of that rule, as :class:`~common.protocol.MetricStatistics` reports it.
OUTLIER_RULE = "modified_z_mad>3.5"
#: The same rule flagging only values below the median: the rule of best-of-N peaks.
OUTLIER_RULE_LOW = "modified_z_mad>3.5,low"
#: Coefficient of variation above which a series is flagged unstable. pyperf warns at the same 10%
#: ("the standard deviation is N% of the mean"); the UI's copy is ``UNSTABLE_CV`` in frontend/src/lib/stats.ts.
UNSTABLE_CV = 0.10
#: 0.6745 is the 0.75 quantile of the standard normal: it makes the MAD consistent with sigma.
_MAD_CONSISTENCY = 0.6745
#: Scale used when the MAD is zero: mean absolute deviation * sqrt(pi/2) estimates sigma.
_MEANAD_CONSISTENCY = 0.7979
#: Percentiles are computed on a grid of this many parts (two decimals: ``99.99`` is the finest).
_PERCENTILE_GRID = 10_000


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
    return float(statistics.mean(values))


def std(values: Sequence[float]) -> float:
    """Sample standard deviation (Bessel-corrected); 0.0 for a single value.

    Args:
        values: Non-empty sequence of numbers.

    Returns:
        The sample standard deviation.
    """
    return float(statistics.stdev(values)) if len(values) >= 2 else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Percentile with linear interpolation (NumPy's default method).

    Args:
        values: Non-empty sequence of numbers.
        q: Percentile in [0, 100], with at most two decimals.

    Returns:
        The interpolated percentile.

    Raises:
        ValueError: If ``values`` is empty, or ``q`` is outside [0, 100] or finer than two decimals.
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within [0, 100], got {q}")
    steps = q * _PERCENTILE_GRID / 100
    if not math.isclose(steps, round(steps), abs_tol=1e-9):
        raise ValueError(f"percentile q must have at most two decimals, got {q}")
    # q as an exact fraction k/n of the range: quantiles(n=n) returns the n - 1 inner cut points.
    fraction = Fraction(round(steps), _PERCENTILE_GRID)
    if fraction == 0 or len(values) == 1:
        return float(min(values))
    if fraction == 1:
        return float(max(values))
    cuts = statistics.quantiles(values, n=fraction.denominator, method="inclusive")
    return float(cuts[fraction.numerator - 1])


def median(values: Sequence[float]) -> float:
    """Median (50th percentile).

    Args:
        values: Non-empty sequence of numbers.

    Returns:
        The median.

    Raises:
        ValueError: If ``values`` is empty.
    """
    if not values:
        raise ValueError("median of an empty sequence")
    return float(statistics.median(values))


def outlier_indices(
    values: Sequence[float], threshold: float = MODIFIED_Z_THRESHOLD, *, side: Literal["both", "low"] = "both"
) -> list[int]:
    """Indices of outliers by the modified z-score rule (median/MAD).

    When more than half of the values are identical the MAD is zero; the mean absolute deviation
    around the median is used instead, and when that is zero too nothing is an outlier.

    Args:
        values: Sequence of numbers.
        threshold: Modified z-score above which a value is flagged.
        side: ``both``, or ``low`` to flag only values below the median (best-of-N peaks).

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
    return [
        i
        for i, dev in enumerate(deviations)
        if dev / scale > threshold and (side == "both" or values[i] < med)
    ]


def cv_warning(cv: float | None) -> str | None:
    """The instability note of a series with coefficient of variation ``cv``, or None when it is stable.

    Args:
        cv: Coefficient of variation (std / mean); None when the mean is 0.

    Returns:
        ``"unstable: CV 48%"`` above :data:`UNSTABLE_CV`, else None.
    """
    if cv is None or not math.isfinite(cv) or abs(cv) <= UNSTABLE_CV:
        return None
    return f"unstable: CV {abs(cv):.0%}"


def finite_series(values: Sequence[float]) -> list[float]:
    """Check a series and return it as floats, in order.

    Args:
        values: The series.

    Returns:
        The values as floats.

    Raises:
        ValueError: If ``values`` is empty or holds NaN or infinity.
    """
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("cannot describe an empty series")
    if not all(math.isfinite(v) for v in vals):
        raise ValueError("cannot describe a series holding NaN or infinity")
    return vals


def summarize(
    values: Sequence[float], unit: str = "", *, outlier_side: Literal["both", "low"] = "both"
) -> MetricStatistics:
    """Descriptive :class:`~common.protocol.MetricStatistics` of a series, without a confidence interval.

    Args:
        values: Non-empty sequence of finite numbers (raw values are kept in order).
        unit: Optional unit symbol carried along for display.
        outlier_side: ``low`` for a best-of-N peak: only values below the median are outliers.

    Returns:
        The statistics, ``ci95`` left unset.

    Raises:
        ValueError: If ``values`` is empty or holds a non-finite number.
    """
    vals = finite_series(values)
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
        outliers=outlier_indices(vals, side=outlier_side),
        outlier_rule=OUTLIER_RULE if outlier_side == "both" else OUTLIER_RULE_LOW,
        values=vals,
        unit=unit,
    )
