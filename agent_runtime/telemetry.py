"""Host telemetry sampled while a run is active: peak RSS (psutil) and NVIDIA GPU power/utilization/energy.

One background thread samples every :data:`~agent_runtime.constants.TELEMETRY_INTERVAL_S`. Where NVML is
missing (no NVIDIA driver, no ``nvidia-ml-py``) the GPU metrics are reported as unavailable with the
reason, never as zero.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from agent_runtime.constants import TELEMETRY_INTERVAL_S
from agent_runtime.logging import get_logger
from common.metrics import Metric

log = get_logger(__name__)


@dataclass
class TelemetryReport:
    """What a monitor measured over one run.

    Attributes:
        metrics: Metric name -> value.
        unavailable: Metric name -> reason it could not be measured.
        series: Time series for plots (``t`` in seconds from start, plus one list per signal).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)


class Nvml:
    """Thin wrapper over ``pynvml`` that records why it is unavailable instead of raising.

    Attributes:
        available: Whether NVML initialised and found at least one device.
        reason: Why not, in words.
    """

    def __init__(self, device_indices: list[int] | None = None) -> None:
        """Initialise NVML and collect device handles.

        Args:
            device_indices: NVML indices to watch (default: every device).
        """
        self.available = False
        self.reason: str | None = None
        self._nvml: Any = None
        self.handles: list[Any] = []
        try:
            import pynvml
        except ImportError:
            self.reason = "NVML unavailable: nvidia-ml-py is not installed"
            return
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            indices = device_indices if device_indices is not None else list(range(count))
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in indices if i < count]
        except pynvml.NVMLError as exc:
            self.reason = f"NVML unavailable: {exc}"
            return
        if not self.handles:
            self.reason = "NVML found no NVIDIA GPU"
            return
        self._nvml = pynvml
        self.available = True

    def power_w(self) -> float | None:
        """Sum of board power over the watched devices, or None when unsupported."""
        try:
            return sum(self._nvml.nvmlDeviceGetPowerUsage(h) for h in self.handles) / 1000.0
        except self._nvml.NVMLError:
            return None

    def utilization_pct(self) -> float | None:
        """Mean GPU utilization over the watched devices, or None when unsupported."""
        try:
            vals = [self._nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self.handles]
        except self._nvml.NVMLError:
            return None
        return sum(vals) / len(vals)

    def memory_used_bytes(self) -> int | None:
        """Device memory in use summed over the watched devices, or None when unsupported."""
        try:
            return sum(int(self._nvml.nvmlDeviceGetMemoryInfo(h).used) for h in self.handles)
        except self._nvml.NVMLError:
            return None

    def energy_mj(self) -> float | None:
        """Sum of the NVML total-energy counters (millijoules, Volta and later), or None."""
        try:
            return float(sum(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self.handles))
        except self._nvml.NVMLError:
            return None


class RunMonitor:
    """Samples RSS and (where possible) GPU signals in a thread between :meth:`start` and :meth:`stop`.

    Args:
        gpu: Whether to sample NVIDIA GPUs (host metrics for white- and gray-box runtimes).
        gpu_memory: Whether to report ``peak_gpu_memory_bytes`` from NVML's device memory in use (used by
            gray-box runtimes whose model lives in another process).
        pid: Process whose RSS is sampled (default: this one).
        interval_s: Sampling interval.
    """

    def __init__(
        self,
        *,
        gpu: bool = True,
        gpu_memory: bool = False,
        pid: int | None = None,
        interval_s: float = TELEMETRY_INTERVAL_S,
    ) -> None:
        self._proc = psutil.Process(pid or os.getpid())
        self._interval = interval_s
        self._gpu_wanted = gpu
        self._gpu_memory = gpu_memory
        self._nvml: Nvml | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._peak_rss = 0
        self._peak_gpu_mem = 0
        self._series: dict[str, list[float]] = {"t": [], "rss_bytes": []}
        self._energy_start: float | None = None

    def _sample(self) -> None:
        """Take one sample of every signal."""
        now = time.perf_counter() - self._t0
        try:
            rss = self._proc.memory_info().rss
        except psutil.Error:
            rss = 0
        self._peak_rss = max(self._peak_rss, rss)
        self._series["t"].append(round(now, 4))
        self._series["rss_bytes"].append(float(rss))
        if self._nvml is not None and self._nvml.available:
            power = self._nvml.power_w()
            util = self._nvml.utilization_pct()
            if power is not None:
                self._series.setdefault("gpu_power_w", []).append(power)
            if util is not None:
                self._series.setdefault("gpu_utilization_pct", []).append(util)
            if self._gpu_memory:
                used = self._nvml.memory_used_bytes()
                if used is not None:
                    self._peak_gpu_mem = max(self._peak_gpu_mem, used)

    def _loop(self) -> None:
        """Sampler thread body."""
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> None:
        """Start sampling."""
        if self._gpu_wanted and self._nvml is None:
            self._nvml = Nvml()
        self._t0 = time.perf_counter()
        if self._nvml is not None and self._nvml.available:
            self._energy_start = self._nvml.energy_mj()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="ruckus-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> TelemetryReport:
        """Stop sampling and summarise.

        Returns:
            The report for the sampled interval.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        elapsed = time.perf_counter() - self._t0
        report = TelemetryReport(series=self._series)
        report.metrics[Metric.PEAK_RSS_BYTES] = float(self._peak_rss)
        if not self._gpu_wanted:
            return report
        nvml = self._nvml
        if nvml is None or not nvml.available:
            reason = (nvml.reason if nvml else None) or "NVML unavailable"
            for metric in (Metric.GPU_POWER_W, Metric.GPU_UTILIZATION_PCT, Metric.ENERGY_J):
                report.unavailable[metric] = reason
            if self._gpu_memory:
                report.unavailable[Metric.PEAK_GPU_MEMORY_BYTES] = reason
            return report
        power = self._series.get("gpu_power_w", [])
        util = self._series.get("gpu_utilization_pct", [])
        if power:
            report.metrics[Metric.GPU_POWER_W] = sum(power) / len(power)
        else:
            report.unavailable[Metric.GPU_POWER_W] = "the GPU does not report power draw"
        if util:
            report.metrics[Metric.GPU_UTILIZATION_PCT] = sum(util) / len(util)
        else:
            report.unavailable[Metric.GPU_UTILIZATION_PCT] = "the GPU does not report utilization"
        energy_end = nvml.energy_mj()
        if self._energy_start is not None and energy_end is not None:
            report.metrics[Metric.ENERGY_J] = (energy_end - self._energy_start) / 1000.0
        elif power:
            # Pre-Volta GPUs have no energy counter: integrate the sampled power instead, which is
            # coarser (one sample per interval) but still a measurement, not a guess.
            report.metrics[Metric.ENERGY_J] = (sum(power) / len(power)) * elapsed
        else:
            report.unavailable[Metric.ENERGY_J] = "the GPU has neither an energy counter nor power readings"
        if self._gpu_memory:
            if self._peak_gpu_mem:
                report.metrics[Metric.PEAK_GPU_MEMORY_BYTES] = float(self._peak_gpu_mem)
            else:
                report.unavailable[Metric.PEAK_GPU_MEMORY_BYTES] = "the GPU does not report memory in use"
        return report


def nvml_status() -> tuple[bool, str | None]:
    """Tell whether NVML works on this host.

    Returns:
        ``(available, reason)``.
    """
    nvml = Nvml()
    return nvml.available, nvml.reason
