"""Response shapes of the agents API (the Pydantic-to-OpenAPI plumbing is in ``core.api_schemas``)."""

from __future__ import annotations

from datetime import datetime

from core.api_schemas import ResponseShape

__all__ = ["AgentPeaks", "AgentSummary", "GpuSummary", "PeakFigure"]



class PeakFigure(ResponseShape):
    """One measured peak: the best repeat of a hardware benchmark figure (best-of-N, as STREAM reports it).

    Attributes:
        value: The peak: the best repeat (the highest rate).
        unit: Unit symbol.
        mean: Mean over the repeats, shown next to the peak.
        cv: Coefficient of variation of the repeats; above ``common.descriptive.UNSTABLE_CV`` the host was
            busy or unsteady while it was measured.
        n: Number of timed repeats.
    """

    value: float
    unit: str
    mean: float | None = None
    cv: float | None = None
    n: int | None = None


class AgentPeaks(ResponseShape):
    """An agent's measured peaks: the best repeats of its latest hardware benchmark, with their means.

    Attributes:
        measured_at: When the benchmark finished.
        quick: True for a quick (fewer repeats) benchmark.
        figures: Figure name (``bandwidth_gbps.cuda.d2d`` ...) -> peak, unit, mean, CV and repeats.
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
