"""Host telemetry sampled while a run is active: process RSS and CPU (psutil), NVIDIA GPUs (NVML).

One background thread samples every ``interval_s`` (the agent setting ``telemetry_interval_s``,
default :data:`~agent_runtime.constants.TELEMETRY_INTERVAL_S`): the job's worker thread never does
telemetry work per token or per sample. At the end of a run the samples are summarised into run-level
metrics (DESIGN section 6 names) and kept as time series for plots:

==========================  =============================================  ==============================
series key                  signal                                         run metric
==========================  =============================================  ==============================
``t``                       seconds since the run started                  --
``rss_bytes``               resident set size of the agent process         ``peak_rss_bytes`` (max)
``cpu_percent``             process CPU since the previous sample          ``cpu_percent`` (CPU time /
                            (100 = one core busy; 0 in the first sample)   wall time of the run)
``gpu_utilization_pct``     mean over the watched GPUs                     ``gpu_utilization_pct`` (mean)
``gpu_power_w``             board power summed over the watched GPUs       ``gpu_power_w`` (mean)
``gpu_memory_used_bytes``   device memory in use, summed                   ``peak_gpu_memory_bytes``
                                                                           (max; only when asked for)
``gpu_temperature_c``       hottest watched GPU                            ``gpu_temperature_c`` (max)
``gpu_sm_clock_mhz``        mean SM clock of the watched GPUs              ``gpu_sm_clock_mhz`` (mean)
``gpu_energy_j``            energy counter since the run started           ``energy_j`` (last value)
==========================  =============================================  ==============================

Every series has one value per entry of ``t``. Which GPU signals exist is decided once at start (a
board either supports a query or it does not); should a supported query fail once in between, the
previous reading is repeated so the series stay aligned with ``t``. Where NVML is missing (no NVIDIA
driver, no ``nvidia-ml-py``) or a board lacks a signal, the metric is reported unavailable with the
reason, never as zero.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from agent_runtime.constants import TELEMETRY_INTERVAL_S
from agent_runtime.logging import get_logger
from common.metrics import Metric

log = get_logger(__name__)

#: GPU series keys, in the order they are sampled.
GPU_SIGNALS = (
    "gpu_utilization_pct",
    "gpu_power_w",
    "gpu_memory_used_bytes",
    "gpu_temperature_c",
    "gpu_sm_clock_mhz",
    "gpu_energy_j",
)


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


def _error_text(exc: BaseException) -> str:
    """Readable error text of an NVML failure (``Not Supported``, ``Driver Not Loaded`` ...)."""
    return str(exc).strip() or type(exc).__name__


class Nvml:
    """Thin wrapper over ``pynvml`` that records why it is unavailable instead of raising.

    Every query is guarded on its own and answers None when the board does not support it: boards and
    drivers differ (no power on some GeForce laptops, no utilization under MIG, no energy counter
    before Volta).

    Args:
        device_indices: NVML indices to watch (default: every device).
        nvml: The ``pynvml`` module, or an object with the same functions (tests inject one built from a
            recorded ``nvidia-smi -q -x``); imported when None.

    Attributes:
        available: Whether NVML initialised and found at least one device.
        reason: Why not, in words.
        handles: Handles of the watched devices.
    """

    def __init__(self, device_indices: list[int] | None = None, *, nvml: Any = None) -> None:
        self.available = False
        self.reason: str | None = None
        self._nvml: Any = None
        self.handles: list[Any] = []
        if nvml is None:
            try:
                import pynvml as nvml
            except ImportError:
                self.reason = "NVML unavailable: nvidia-ml-py is not installed"
                return
        try:
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
            indices = device_indices if device_indices is not None else list(range(count))
            self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in indices if i < count]
        except Exception as exc:  # every NVMLError_* subclass, plus ctypes failures on odd drivers
            self.reason = f"NVML unavailable: {_error_text(exc)}"
            return
        self._nvml = nvml
        if not self.handles:
            self.reason = "NVML found no NVIDIA GPU"
            self.close()
            return
        self.available = True

    def _each(self, query: Callable[[Any], Any]) -> list[Any] | None:
        """Run ``query`` on every watched device; None when any of them cannot answer."""
        if self._nvml is None or not self.handles:
            return None
        try:
            return [query(h) for h in self.handles]
        except Exception:
            return None

    def power_w(self) -> float | None:
        """Sum of board power over the watched devices, or None when unsupported."""
        vals = self._each(self._nvml_call("nvmlDeviceGetPowerUsage"))
        return sum(vals) / 1000.0 if vals else None

    def utilization_pct(self) -> float | None:
        """Mean GPU utilization over the watched devices, or None when unsupported (e.g. under MIG)."""
        vals = self._each(lambda h: self._nvml.nvmlDeviceGetUtilizationRates(h).gpu)
        return float(sum(vals)) / len(vals) if vals else None

    def memory_used_bytes(self) -> int | None:
        """Device memory in use summed over the watched devices, or None when unsupported."""
        vals = self._each(lambda h: int(self._nvml.nvmlDeviceGetMemoryInfo(h).used))
        return sum(vals) if vals else None

    def temperature_c(self) -> float | None:
        """Temperature of the hottest watched device, or None when unsupported."""
        sensor = getattr(self._nvml, "NVML_TEMPERATURE_GPU", 0)
        vals = self._each(lambda h: self._nvml.nvmlDeviceGetTemperature(h, sensor))
        return float(max(vals)) if vals else None

    def sm_clock_mhz(self) -> float | None:
        """Mean current SM clock of the watched devices, or None when unsupported."""
        clock = getattr(self._nvml, "NVML_CLOCK_SM", 1)
        vals = self._each(lambda h: self._nvml.nvmlDeviceGetClockInfo(h, clock))
        return float(sum(vals)) / len(vals) if vals else None

    def energy_mj(self) -> float | None:
        """Sum of the NVML total-energy counters (millijoules, Volta and later), or None."""
        vals = self._each(self._nvml_call("nvmlDeviceGetTotalEnergyConsumption"))
        return float(sum(vals)) if vals else None

    def _nvml_call(self, name: str) -> Callable[[Any], Any]:
        """``lambda handle: nvml.<name>(handle)`` that fails (caught by :meth:`_each`) when missing."""
        return lambda h: getattr(self._nvml, name)(h)

    def close(self) -> None:
        """Release NVML (``nvmlInit`` is reference-counted, so this pairs with the init above)."""
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml = None
            self.available = False


class RunMonitor:
    """Samples process and (where possible) GPU signals in a thread between :meth:`start` and :meth:`stop`.

    Args:
        gpu: Whether to sample NVIDIA GPUs (host metrics for white- and gray-box runtimes).
        gpu_memory: Whether to report ``peak_gpu_memory_bytes`` from NVML's device memory in use (used by
            gray-box runtimes whose model lives in another process).
        pid: Process whose RSS and CPU are sampled (default: this one).
        interval_s: Sampling interval in seconds.
        nvml: NVML wrapper to use (default: a new :class:`Nvml` over every device, created at start).
    """

    def __init__(
        self,
        *,
        gpu: bool = True,
        gpu_memory: bool = False,
        pid: int | None = None,
        interval_s: float = TELEMETRY_INTERVAL_S,
        nvml: Nvml | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self._proc = psutil.Process(pid or os.getpid())
        self._interval = interval_s
        self._gpu_wanted = gpu
        self._gpu_memory = gpu_memory
        self._nvml = nvml
        self._own_nvml = nvml is None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._cpu0: float | None = None
        self._series: dict[str, list[float]] = {"t": [], "rss_bytes": [], "cpu_percent": []}
        self._gpu_readers: dict[str, Callable[[], float | None]] = {}
        self._energy_start: float | None = None

    @property
    def interval_s(self) -> float:
        """Sampling interval in seconds."""
        return self._interval

    def _cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far, or None when psutil cannot read it."""
        try:
            times = self._proc.cpu_times()
        except psutil.Error:
            return None
        return times.user + times.system

    def _energy_j(self) -> float | None:
        """Energy counter since start, in joules."""
        assert self._nvml is not None  # nosec B101  # narrowing: only called with NVML
        now = self._nvml.energy_mj()
        if now is None or self._energy_start is None:
            return None
        return (now - self._energy_start) / 1000.0

    def _pick_gpu_signals(self) -> None:
        """Keep the GPU signals the watched boards answer (queried once; support does not come and go)."""
        nvml = self._nvml
        if nvml is None or not nvml.available:
            return
        candidates: dict[str, Callable[[], float | None]] = {
            "gpu_utilization_pct": nvml.utilization_pct,
            "gpu_power_w": nvml.power_w,
            "gpu_memory_used_bytes": lambda: _as_float(nvml.memory_used_bytes()),
            "gpu_temperature_c": nvml.temperature_c,
            "gpu_sm_clock_mhz": nvml.sm_clock_mhz,
        }
        self._gpu_readers = {k: fn for k, fn in candidates.items() if fn() is not None}
        self._energy_start = nvml.energy_mj()
        if self._energy_start is not None:
            self._gpu_readers["gpu_energy_j"] = self._energy_j
        for key in self._gpu_readers:
            self._series[key] = []

    def _sample(self) -> None:
        """Take one sample of every signal (sampler thread, and once at start and stop)."""
        now = time.perf_counter() - self._t0
        try:
            rss = float(self._proc.memory_info().rss)
        except psutil.Error:
            rss = self._series["rss_bytes"][-1] if self._series["rss_bytes"] else 0.0
        try:
            # psutil measures since its previous call on this process object; the first call primes it.
            cpu = float(self._proc.cpu_percent(interval=None))
        except psutil.Error:
            cpu = self._series["cpu_percent"][-1] if self._series["cpu_percent"] else 0.0
        self._series["t"].append(round(now, 4))
        self._series["rss_bytes"].append(rss)
        self._series["cpu_percent"].append(cpu)
        for key, read in self._gpu_readers.items():
            series = self._series[key]
            value = read()
            if value is None:
                # A supported query failed once: repeat the last reading to keep the series aligned.
                value = series[-1] if series else 0.0
            series.append(float(value))

    def _loop(self) -> None:
        """Sampler thread body."""
        while not self._stop.wait(self._interval):
            try:
                self._sample()
            except Exception as exc:  # telemetry must never take a job down
                log.warning("telemetry.sample.failed", error=str(exc))

    def start(self) -> None:
        """Start sampling (takes the first sample at once)."""
        if self._gpu_wanted and self._nvml is None:
            self._nvml = Nvml()
        if self._gpu_wanted:
            self._pick_gpu_signals()
        self._t0 = time.perf_counter()
        self._cpu0 = self._cpu_seconds()
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
        cpu1 = self._cpu_seconds()
        report = TelemetryReport(series=self._series)
        report.metrics[Metric.PEAK_RSS_BYTES] = max(self._series["rss_bytes"])
        if self._cpu0 is not None and cpu1 is not None and elapsed > 0:
            report.metrics[Metric.CPU_PERCENT] = 100.0 * (cpu1 - self._cpu0) / elapsed
        else:
            report.unavailable[Metric.CPU_PERCENT] = "psutil cannot read the process CPU times"
        if self._gpu_wanted:
            self._summarise_gpu(report, elapsed)
        if self._own_nvml and self._nvml is not None:
            self._nvml.close()
        return report

    def _summarise_gpu(self, report: TelemetryReport, elapsed: float) -> None:
        """Add the GPU metrics (or the reasons they are missing) to ``report``."""
        nvml = self._nvml
        gpu_metrics = (
            Metric.GPU_POWER_W,
            Metric.GPU_UTILIZATION_PCT,
            Metric.ENERGY_J,
            Metric.GPU_TEMPERATURE_C,
            Metric.GPU_SM_CLOCK_MHZ,
        )
        if nvml is None or not nvml.available:
            reason = (nvml.reason if nvml else None) or "NVML unavailable"
            for metric in gpu_metrics:
                report.unavailable[metric] = reason
            if self._gpu_memory:
                report.unavailable[Metric.PEAK_GPU_MEMORY_BYTES] = reason
            return
        s = self._series

        def mean(key: str) -> float | None:
            return sum(s[key]) / len(s[key]) if s.get(key) else None

        power = mean("gpu_power_w")
        summaries: list[tuple[str, float | None, str]] = [
            (Metric.GPU_POWER_W, power, "the GPU does not report power draw"),
            (Metric.GPU_UTILIZATION_PCT, mean("gpu_utilization_pct"), "the GPU does not report utilization"),
            (
                Metric.GPU_TEMPERATURE_C,
                max(s["gpu_temperature_c"]) if s.get("gpu_temperature_c") else None,
                "the GPU does not report its temperature",
            ),
            (Metric.GPU_SM_CLOCK_MHZ, mean("gpu_sm_clock_mhz"), "the GPU does not report its SM clock"),
        ]
        if s.get("gpu_energy_j"):
            energy: float | None = s["gpu_energy_j"][-1]
        elif power is not None:
            # Pre-Volta GPUs have no energy counter: integrate the sampled power instead, which is
            # coarser (one sample per interval) but still a measurement, not a guess.
            energy = power * elapsed
        else:
            energy = None
        summaries.append((Metric.ENERGY_J, energy, "the GPU has neither an energy counter nor power readings"))
        if self._gpu_memory:
            peak = max(s["gpu_memory_used_bytes"]) if s.get("gpu_memory_used_bytes") else None
            summaries.append((Metric.PEAK_GPU_MEMORY_BYTES, peak, "the GPU does not report memory in use"))
        for metric, value, reason in summaries:
            if value is not None:
                report.metrics[metric] = float(value)
            else:
                report.unavailable[metric] = reason


def _as_float(value: int | None) -> float | None:
    """``float(value)``, keeping None."""
    return float(value) if value is not None else None


def nvml_status() -> tuple[bool, str | None]:
    """Tell whether NVML works on this host.

    Returns:
        ``(available, reason)``.
    """
    nvml = Nvml()
    available, reason = nvml.available, nvml.reason
    nvml.close()
    return available, reason
