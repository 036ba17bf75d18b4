"""Response shapes of the agents API (the Pydantic-to-OpenAPI plumbing is in ``core.api_schemas``)."""

from __future__ import annotations

from datetime import datetime

from core.api_schemas import ResponseShape

__all__ = ["AgentPeaks", "AgentSummary", "GpuSummary", "PeakFigure"]



class PeakFigure(ResponseShape):
    """One measured peak: the median of a hardware benchmark figure."""

    value: float
    unit: str


class AgentPeaks(ResponseShape):
    """An agent's measured peaks: the medians of its latest hardware benchmark.

    Attributes:
        measured_at: When the benchmark finished.
        quick: True for a quick (fewer repeats) benchmark.
        figures: Figure name (``bandwidth_gbps.cuda.d2d`` ...) -> median and unit.
        unsupported: Figure name -> why it was not measured.
    """

    measured_at: datetime | None
    quick: bool
    figures: dict[str, PeakFigure]
    unsupported: dict[str, str]


class GpuSummary(ResponseShape):
    """One GPU in an agent's summary."""

    name: str
    memory_gib: float
    tensor_core_generation: int | None


class AgentSummary(ResponseShape):
    """A short hardware summary of an agent; it has no keys before the agent reported its capabilities.

    Attributes:
        cpu: CPU model.
        cores: Logical cores.
        memory_gib: Total memory in GiB.
        gpus: The GPUs.
        runtimes: Runtimes available on the agent.
        models: Models present on the agent, each named once.
        os: Operating system and version.
        peaks: Measured peaks (null before any hardware benchmark).
    """

    cpu: str | None = None
    cores: int | None = None
    memory_gib: float | None = None
    gpus: list[GpuSummary] | None = None
    runtimes: list[str] | None = None
    models: list[str] | None = None
    os: str | None = None
    peaks: AgentPeaks | None = None
