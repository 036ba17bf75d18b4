"""Runs the whole hardware benchmark: CPU figures everywhere, accelerator figures where one exists."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent_runtime.constants import TELEMETRY_INTERVAL_S
from agent_runtime.hwbench import bandwidth, matmul
from agent_runtime.hwbench.support import (
    CPU_BF16_FEATURES,
    GPU_PRECISIONS,
    GpuFacts,
    cpu_bf16_problem,
    cpu_isa_features,
    gpu_facts,
    resolve_device,
)
from agent_runtime.hwbench.timing import StopCheck
from agent_runtime.logging import get_logger
from agent_runtime.telemetry import Nvml, RunMonitor
from common.protocol import BenchmarkFigure, HardwareBenchmarkResult, utcnow

log = get_logger(__name__)

#: Timed repeats per figure when not given: quick / full.
DEFAULT_REPEATS = {True: 3, False: 10}


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to measure and how long.

    Attributes:
        device: ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda`` or ``mps``. CPU figures are
            measured on every device choice.
        quick: Smaller sizes, shorter repeats, 3 repeats by default (a few seconds on a CPU host).
        repeats: Timed repeats per figure (None: :data:`DEFAULT_REPEATS`).
        telemetry_interval_s: Sampling interval of the telemetry recorded during the benchmark.
    """

    device: str = "auto"
    quick: bool = False
    repeats: int | None = None
    telemetry_interval_s: float = TELEMETRY_INTERVAL_S

    @property
    def effective_repeats(self) -> int:
        """Repeats actually used."""
        return self.repeats if self.repeats is not None else DEFAULT_REPEATS[self.quick]


def _environment(device: str, facts: GpuFacts | None, isa: list[str]) -> dict[str, Any]:
    """Software and hardware facts the figures depend on."""
    import torch

    env: dict[str, Any] = {
        "torch": torch.__version__,
        "device": device,
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_bf16_features": [f for f in isa if f in CPU_BF16_FEATURES],
    }
    if torch.version.cuda:
        env["cuda"] = torch.version.cuda
    if getattr(torch.version, "hip", None):
        env["hip"] = torch.version.hip
    if facts is not None:
        env.update(facts.environment())
    return env


def run_benchmark(
    config: BenchmarkConfig,
    *,
    should_stop: StopCheck | None = None,
    nvml: Nvml | None = None,
    on_figure: Callable[[BenchmarkFigure], None] | None = None,
) -> HardwareBenchmarkResult:
    """Measure memory bandwidth and matmul throughput, with telemetry sampled throughout.

    Args:
        config: What to measure.
        should_stop: Checked between repeats; True raises
            :class:`~agent_runtime.hwbench.timing.BenchmarkStopped`.
        nvml: NVML wrapper for the telemetry (default: a new one when the device is cuda).
        on_figure: Called with every figure as soon as it is measured (progress display).

    Returns:
        The result, every unsupported figure included with its reason.

    Raises:
        DeviceUnavailable: An explicitly requested device does not exist.
        BenchmarkStopped: ``should_stop`` turned true.
    """
    device = resolve_device(config.device)
    repeats = config.effective_repeats
    quick = config.quick
    started_at = utcnow()
    figures: list[BenchmarkFigure] = []

    def add(fig: BenchmarkFigure) -> None:
        figures.append(fig)
        log.info(
            "hwbench.figure",
            figure=fig.metric_name,
            best=fig.peak,
            mean=fig.statistics.mean if fig.statistics else None,
            cv=fig.statistics.cv if fig.statistics else None,
            unit=fig.unit,
            reason=fig.reason,
        )
        if on_figure is not None:
            on_figure(fig)

    isa = cpu_isa_features()
    facts = gpu_facts(device) if device != "cpu" else None
    monitor = RunMonitor(gpu=device == "cuda", interval_s=config.telemetry_interval_s, nvml=nvml)
    monitor.start()
    try:
        add(bandwidth.cpu_copy(quick=quick, repeats=repeats, should_stop=should_stop))
        add(matmul.cpu_matmul("fp32", quick=quick, repeats=repeats, should_stop=should_stop))
        add(
            matmul.cpu_matmul(
                "bf16", quick=quick, repeats=repeats, problem=cpu_bf16_problem(isa), should_stop=should_stop
            )
        )
        if facts is not None:
            add(
                bandwidth.device_copy(
                    device, free_bytes=_free_bytes(facts), quick=quick, repeats=repeats, should_stop=should_stop
                )
            )
            for fig in bandwidth.transfers(
                device, free_bytes=_free_bytes(facts), quick=quick, repeats=repeats, should_stop=should_stop
            ):
                add(fig)
            for precision in GPU_PRECISIONS:
                add(matmul.gpu_matmul(facts, precision, quick=quick, repeats=repeats, should_stop=should_stop))
    finally:
        report = monitor.stop()
    return HardwareBenchmarkResult(
        figures=figures,
        telemetry=report.series,
        telemetry_summary=report.metrics,
        telemetry_unavailable=report.unavailable,
        device=device,
        repeats=repeats,
        quick=quick,
        environment=_environment(device, facts, isa),
        started_at=started_at,
        finished_at=utcnow(),
    )


def _free_bytes(facts: GpuFacts) -> int | None:
    """Free device memory now (the previous figures' tensors are released by then)."""
    if facts.device == "cuda":
        import torch

        torch.cuda.empty_cache()
        return int(torch.cuda.mem_get_info()[0])
    if facts.device == "mps":
        # MPS draws from the host's unified memory; torch reports the allocator's recommended ceiling.
        import torch

        try:
            return int(torch.mps.recommended_max_memory()) - int(torch.mps.current_allocated_memory())
        except (AttributeError, RuntimeError):
            import psutil

            return int(psutil.virtual_memory().available)
    return facts.free_bytes
