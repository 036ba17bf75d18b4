"""Building :class:`~common.protocol.BenchmarkFigure` values, and flattening them into run metrics."""

from __future__ import annotations

from typing import Any

from common.protocol import BenchmarkFigure, HardwareBenchmarkResult
from common.stats import describe

#: Figure kinds (the first part of a flattened metric name).
BANDWIDTH = "bandwidth_gbps"
TFLOPS = "tflops"
GFLOPS = "gflops"


def measured(name: str, device: str, precision: str, unit: str, rates: list[float], **params: Any) -> BenchmarkFigure:
    """A supported figure with statistics over its repeats.

    Args:
        name: Figure kind (``bandwidth_gbps``, ``tflops``, ``gflops``).
        device: Device measured.
        precision: Precision or transfer kind.
        unit: Unit symbol.
        rates: One rate per timed repeat.
        **params: How it was measured.

    Returns:
        The figure.
    """
    return BenchmarkFigure(
        name=name,
        device=device,
        precision=precision,
        unit=unit,
        statistics=describe(rates, unit=unit),
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


def flatten(result: HardwareBenchmarkResult) -> tuple[dict[str, float], dict[str, str]]:
    """Run metrics of a benchmark: one value per figure, plus the unsupported figures with reasons.

    A run's value of a figure is the median over its timed repeats: robust against a single disturbed
    repeat, while the server's statistics over runs still see the spread between runs.

    Args:
        result: The benchmark.

    Returns:
        ``(metrics, unavailable)`` keyed ``bandwidth_gbps.<device>.<kind>``, ``tflops.<device>.<precision>``
        and ``gflops.cpu.<precision>``.
    """
    metrics: dict[str, float] = {}
    unavailable: dict[str, str] = {}
    for fig in result.figures:
        if fig.supported and fig.statistics is not None:
            metrics[fig.metric_name] = fig.statistics.median
        else:
            unavailable[fig.metric_name] = fig.reason or "not measured"
    return metrics, unavailable
