"""The agent's hardware benchmark: measured bandwidth and matrix-multiply throughput figures.

A figure is a peak, reported best-of-N as STREAM does (STREAM keeps the best time of its repeats): interference
on a busy host only ever slows a repeat down, so the fastest repeat is the closest to what the hardware can do.
The mean and the other statistics over the repeats travel next to it, so a reader sees how far the typical
repeat fell short.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from common.protocol.base import ProtocolModel
from common.protocol.statistics import MetricStatistics


class BenchmarkFigure(ProtocolModel):
    """One measured hardware figure (a bandwidth or a matrix-multiply throughput) or why it is missing.

    Attributes:
        name: Figure kind: ``bandwidth_gbps`` (GB/s, 1e9 bytes), ``tflops`` (GPU, 1e12 operations/s)
            or ``gflops`` (CPU, 1e9 operations/s).
        device: Device measured (``cpu``, ``cuda``, ``mps``).
        precision: Precision for throughput figures (``fp32``, ``tf32``, ``fp16``, ``bf16``, ``int8``,
            ``fp8``); the transfer kind for bandwidth figures (``d2d``, ``h2d``, ``d2h``, ``copy``).
        unit: Unit symbol of the statistics (``GB/s``, ``TFLOP/s``, ``TOP/s``, ``GFLOP/s``).
        statistics: Statistics over the timed repeats (warm-up excluded); None when unsupported. Their
            outliers are the repeats far *below* the median (``modified_z_mad>3.5,low``): for a peak, a
            fast repeat is the measurement and a slow one the disturbance.
        best: The best repeat (the highest rate), the figure's peak; None when unsupported. Results stored
            before it was reported lack it: :attr:`peak` falls back to the highest value.
        supported: Whether the hardware and software here can produce this figure.
        reason: Why not, in words (absent when supported).
        params: How it was measured (sizes, bytes counted, inner iterations, timer ...).
    """

    name: str
    device: str
    precision: str
    unit: str = ""
    statistics: MetricStatistics | None = None
    best: float | None = None
    supported: bool = True
    reason: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def peak(self) -> float | None:
        """The best-of-N peak: :attr:`best`, else (a result stored before ``best`` existed) the highest repeat."""
        if self.best is not None:
            return self.best
        if self.statistics is None:
            return None
        return max(self.statistics.values) if self.statistics.values else self.statistics.max

    @property
    def metric_name(self) -> str:
        """Flattened metric name, e.g. ``tflops.cuda.bf16`` or ``bandwidth_gbps.cpu.copy``."""
        return f"{self.name}.{self.device}.{self.precision}"


class HardwareBenchmarkResult(ProtocolModel):
    """Outcome of one hardware benchmark: the agent's measured peaks.

    Attributes:
        type: Message type tag.
        figures: Every figure, the unsupported ones included with their reason.
        telemetry: Time series sampled while the benchmark ran (``t`` plus one list per signal).
        telemetry_summary: Run-level telemetry figures (``gpu_power_w``, ``peak_rss_bytes`` ...).
        telemetry_unavailable: Telemetry metric -> reason it could not be sampled.
        device: Device requested (``auto``, ``cpu``, ``cuda``, ``mps``).
        repeats: Timed repeats per figure.
        quick: Whether the short variant ran (smaller sizes, fewer repeats).
        environment: Software and device facts the figures depend on (torch version, GPU name, CC ...).
        started_at: Start time.
        finished_at: End time.
    """

    type: Literal["hardware.benchmark"] = "hardware.benchmark"
    figures: list[BenchmarkFigure] = Field(default_factory=list)
    telemetry: dict[str, list[float]] = Field(default_factory=dict)
    telemetry_summary: dict[str, float] = Field(default_factory=dict)
    telemetry_unavailable: dict[str, str] = Field(default_factory=dict)
    device: str = "auto"
    repeats: int = 0
    quick: bool = False
    environment: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def figure(self, metric_name: str) -> BenchmarkFigure | None:
        """The figure with flattened name ``metric_name`` (``tflops.cuda.bf16`` ...), or None."""
        return next((f for f in self.figures if f.metric_name == metric_name), None)

    def flatten(self) -> tuple[dict[str, float], dict[str, str]]:
        """One value per figure (its best repeat: :attr:`BenchmarkFigure.peak`), plus the unsupported ones.

        Each run reports its peak, as STREAM does; statistics over runs then show how much the peak itself
        moved from run to run.

        Returns:
            ``(values, unavailable)`` keyed by flattened name (``bandwidth_gbps.<device>.<kind>``,
            ``tflops.<device>.<precision>``, ``gflops.cpu.<precision>``).
        """
        values: dict[str, float] = {}
        unavailable: dict[str, str] = {}
        for fig in self.figures:
            peak = fig.peak if fig.supported else None
            if peak is not None:
                values[fig.metric_name] = peak
            else:
                unavailable[fig.metric_name] = fig.reason or "not measured"
        return values, unavailable
