"""Building :class:`~common.protocol.BenchmarkFigure` values: measured with statistics, or unsupported with why."""

from __future__ import annotations

from typing import Any

from common.descriptive import summarize
from common.protocol import BenchmarkFigure

#: Figure kinds (the first part of a flattened metric name).
BANDWIDTH = "bandwidth_gbps"
TFLOPS = "tflops"
GFLOPS = "gflops"


def measured(name: str, device: str, precision: str, unit: str, rates: list[float], **params: Any) -> BenchmarkFigure:
    """A supported figure: its best repeat (the peak) and descriptive statistics over every repeat.

    The statistics have no confidence interval (that needs SciPy, a server dependency), and their outlier
    rule flags only slow repeats: for a best-of-N peak the fast repeat is the measurement.

    Args:
        name: Figure kind (``bandwidth_gbps``, ``tflops``, ``gflops``).
        device: Device measured.
        precision: Precision or transfer kind.
        unit: Unit symbol.
        rates: One rate per timed repeat (non-empty).
        **params: How it was measured.

    Returns:
        The figure.
    """
    return BenchmarkFigure(
        name=name,
        device=device,
        precision=precision,
        unit=unit,
        statistics=summarize(rates, unit=unit, outlier_side="low"),
        best=max(rates),
        supported=True,
        params=params,
    )


def unsupported(name: str, device: str, precision: str, unit: str, reason: str, **params: Any) -> BenchmarkFigure:
    """A figure that cannot be measured here, with the reason.

    Args:
        name: Figure kind.
        device: Device.
        precision: Precision or transfer kind.
        unit: Unit symbol the figure would have.
        reason: Why not, in words.
        **params: Context (sizes tried ...).

    Returns:
        The figure.
    """
    return BenchmarkFigure(
        name=name, device=device, precision=precision, unit=unit, supported=False, reason=reason, params=params
    )
