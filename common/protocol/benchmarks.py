"""The agent's hardware benchmark: measured bandwidth and matrix-multiply throughput figures."""

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
        statistics: Statistics over the timed repeats (warm-up excluded); None when unsupported.
        supported: Whether the hardware and software here can produce this figure.
        reason: Why not, in words (absent when supported).
        params: How it was measured (sizes, bytes counted, inner iterations, timer ...).
    """

    name: str
    device: str
    precision: str
    unit: str = ""
    statistics: MetricStatistics | None = None
    supported: bool = True
    reason: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

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
        """One value per figure (its median over the timed repeats), plus the unsupported ones with reasons.

        The median is robust against a single disturbed repeat, while statistics over runs still see the
        spread between runs.

        Returns:
            ``(values, unavailable)`` keyed by flattened name (``bandwidth_gbps.<device>.<kind>``,
            ``tflops.<device>.<precision>``, ``gflops.cpu.<precision>``).
        """
        values: dict[str, float] = {}
        unavailable: dict[str, str] = {}
        for fig in self.figures:
            if fig.supported and fig.statistics is not None:
                values[fig.metric_name] = fig.statistics.median
            else:
                unavailable[fig.metric_name] = fig.reason or "not measured"
        return values, unavailable
