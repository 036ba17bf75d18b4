"""Hardware and software detection of the agent host (``AgentInfo``).

:func:`collect_agent_info` runs every probe guarded and timed: a probe that is absent or fails is
reported as a :class:`~common.protocol.ProbeStatus` with the reason in words, and detection goes on.
The slow probes run in daemon threads against one deadline (:data:`DETECTION_BUDGET_S`), so
detection returns in about two seconds even when a driver hangs:

* torch import (1-2 s on small hosts) runs while everything else is probed; a torch that is still
  importing at the deadline is reported as such and is ready for the next detection;
* NVML, ``nvidia-smi``, ``rocm-smi`` and ``system_profiler`` run beside it, each with a timeout.

GPUs come from, in order of preference: NVML, torch (CUDA/ROCm/MPS), the ``nvidia-smi -q -x``
report; ``rocm-smi`` describes AMD GPUs in more detail than torch, ``system_profiler`` Apple ones.
Given a recorded report (``nvidia_smi_xml``, ``rocm_smi_json``, ``apple_profiler_json``), GPUs come
from the report instead of the live machine: "what would the agent advertise on the machine that
produced this file".
"""

from __future__ import annotations

import platform
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from common.protocol import (
    AgentInfo,
    CpuInfo,
    FrameworkInfo,
    GpuInfo,
    MemoryInfo,
    ModelInfo,
    ProbeStatus,
    SystemInfo,
)

from . import apple, frameworks, models, monitoring, nvidia_smi, nvml, rocm_smi
from .cpu import detect_cpu
from .system import detect_disk, detect_memory, detect_system

__all__ = ["DETECTION_BUDGET_S", "collect_agent_info", "probes_pending", "wait_for_pending_probes"]

#: Wall-clock budget of one detection; the threaded probes are abandoned (not killed) after it.
DETECTION_BUDGET_S = 1.8

T = TypeVar("T")


class _Recorder:
    """Runs probes guarded and timed, and keeps their :class:`ProbeStatus`."""

    def __init__(self) -> None:
        self.probes: list[ProbeStatus] = []

    def add(self, name: str, available: bool, reason: str | None = None, duration_s: float | None = None) -> None:
        """Record a probe outcome."""
        self.probes.append(
            ProbeStatus(
                name=name,
                available=available,
                reason=None if available else (reason or "unavailable"),
                duration_s=round(duration_s, 4) if duration_s is not None else None,
            )
        )

    def run(self, name: str, fn: Callable[[], T], *, empty_reason: str | None = None) -> T | None:
        """Run ``fn``; record success, or the exception as the reason, and return None on failure.

        Args:
            name: Probe name.
            fn: The probe.
            empty_reason: When set, an empty result counts as unavailable with this reason.

        Returns:
            ``fn``'s result, or None when it raised.
        """
        start = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:
            self.add(name, False, _reason(exc), time.perf_counter() - start)
            return None
        empty = empty_reason is not None and not result
        self.add(name, not empty, empty_reason, time.perf_counter() - start)
        return result


def _reason(exc: BaseException) -> str:
    """An exception as a reason in words."""
    if isinstance(exc, ModuleNotFoundError):
        return f"{exc.name or 'module'} is not installed"
    text = str(exc).strip()
    return text if text else type(exc).__name__


class _Background:
    """A probe running in a daemon thread, so a hung driver cannot hold detection or the process."""

    def __init__(self, name: str, fn: Callable[[], Any]) -> None:
        self.name = name
        self._fn = fn
        self._done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.duration_s: float | None = None
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name=f"ruckus-detect-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:  # reported, never raised into detection
            self.error = exc
        finally:
            self.duration_s = time.perf_counter() - self._start
            self._done.set()

    def wait(self, deadline: float) -> bool:
        """Wait until the probe finishes or ``deadline`` (a ``perf_counter`` time) passes."""
        return self._done.wait(max(0.0, deadline - time.perf_counter()))

    def record(self, recorder: _Recorder, deadline: float, *, empty_reason: str | None = None) -> Any:
        """Wait, record the outcome under the probe's name, and return the result (None on failure)."""
        if not self.wait(deadline):
            elapsed = time.perf_counter() - self._start
            recorder.add(
                self.name,
                False,
                f"no answer within {elapsed:.1f} s (left running in the background)",
                elapsed,
            )
            return None
        if self.error is not None:
            recorder.add(self.name, False, _reason(self.error), self.duration_s)
            return None
        empty = empty_reason is not None and not self.result
        recorder.add(self.name, not empty, empty_reason, self.duration_s)
        return self.result


# A torch import started by an earlier detection that ran past its deadline is reused, never repeated.
_torch_lock = threading.Lock()
_torch_probe: _Background | None = None


def _start_torch_probe(unified_memory: int | None) -> _Background | None:
    """Start (or join) the torch probe; None when torch is not installed."""
    global _torch_probe
    if not frameworks.torch_installed():
        return None
    with _torch_lock:
        previous = _torch_probe
        if previous is not None and not previous._done.is_set():
            return previous
        _torch_probe = _Background("torch", lambda: frameworks.probe_torch(unified_memory))
        return _torch_probe


def probes_pending() -> bool:
    """Whether a probe that an earlier detection left running (the torch import) is still running."""
    with _torch_lock:
        probe = _torch_probe
    return probe is not None and not probe._done.is_set()


def wait_for_pending_probes(timeout_s: float) -> bool:
    """Wait for probes left running by an earlier detection (a slow torch import on a busy or small host).

    Args:
        timeout_s: Longest wait in seconds.

    Returns:
        True when none is running any more (the next detection sees their results).
    """
    with _torch_lock:
        probe = _torch_probe
    if probe is None:
        return True
    return probe.wait(time.perf_counter() + timeout_s)


def collect_agent_info(
    *,
    data_dir: Path,
    model_dirs: Sequence[Path] = (),
    name: str = "",
    nvidia_smi_xml: Path | None = None,
    rocm_smi_json: Path | None = None,
    apple_profiler_json: Path | None = None,
) -> AgentInfo:
    """Describe this agent host: system, CPU, memory, disk, GPUs, frameworks, monitoring, models.

    Never raises because of a probe: every failure ends up in ``probes`` with its reason.

    Args:
        data_dir: Agent data dir (its disk is reported; it holds converted models and caches).
        model_dirs: Operator-configured model directories.
        name: Agent name (default: the host name).
        nvidia_smi_xml: Recorded ``nvidia-smi -q -x`` output to take GPUs from.
        rocm_smi_json: Recorded ``rocm-smi --json`` output to take GPUs from.
        apple_profiler_json: Recorded ``system_profiler SPDisplaysDataType -json`` output.

    Returns:
        The description, with ``runtimes`` left empty.
    """
    start = time.perf_counter()
    deadline = start + DETECTION_BUDGET_S
    rec = _Recorder()
    data_dir = Path(data_dir)
    recorded = any(p is not None for p in (nvidia_smi_xml, rocm_smi_json, apple_profiler_json))

    memory = rec.run("memory", detect_memory) or MemoryInfo()
    unified = memory.total_bytes or None

    # Slow probes first, so they run while the quick ones below are probed.
    torch_bg = _start_torch_probe(unified)
    nvml_bg = _Background("nvml", nvml.probe_nvml) if not recorded else None
    rocm_bg = _Background("rocm_smi", rocm_smi.run_rocm_smi) if not recorded and shutil.which("rocm-smi") else None
    apple_bg = (
        _Background("system_profiler", apple.run_system_profiler)
        if not recorded and platform.system() == "Darwin"
        else None
    )

    system = rec.run("system", detect_system) or SystemInfo()
    cpu = rec.run("cpu", lambda: detect_cpu(data_dir)) or CpuInfo()
    disk = rec.run("disk", lambda: detect_disk(data_dir))
    framework_list = rec.run("frameworks", frameworks.detect_frameworks) or []
    found_models = _detect_models(rec, data_dir, model_dirs)

    gpus: list[GpuInfo] = []
    nvml_report: nvml.NvmlReport | None = None
    nvml_error: str | None = None
    rocm_ok, rocm_reason = False, "rocm-smi is not on PATH"
    if recorded:
        gpus = _recorded_gpus(rec, nvidia_smi_xml, rocm_smi_json, apple_profiler_json)
        for probe in ("nvml", "nvidia_smi", "rocm_smi", "system_profiler"):
            rec.add(probe, False, "skipped: GPUs come from the recorded report")
    else:
        assert nvml_bg is not None  # nosec B101  # narrowing: set on the branch above
        nvml_report = nvml_bg.record(rec, deadline, empty_reason="NVML reports no GPU")
        nvml_error = rec.probes[-1].reason
        if nvml_report is not None and nvml_report.gpus:
            gpus.extend(nvml_report.gpus)
            rec.add("nvidia_smi", False, "skipped: NVML answered")
        elif shutil.which("nvidia-smi"):
            timeout = min(nvidia_smi.NVIDIA_SMI_TIMEOUT_S, max(0.2, deadline - time.perf_counter()))
            xml_gpus = rec.run(
                "nvidia_smi",
                lambda: nvidia_smi.parse_nvidia_smi_xml(nvidia_smi.run_nvidia_smi_xml(timeout)),
                empty_reason="nvidia-smi lists no GPU",
            )
            gpus.extend(xml_gpus or [])
        else:
            rec.add("nvidia_smi", False, "nvidia-smi is not on PATH")
        if rocm_bg is not None:
            text = rocm_bg.record(rec, deadline)
            parsed = rec.run("rocm_smi_parse", lambda: rocm_smi.parse_rocm_smi_json(text)) if text else None
            rocm_ok = bool(parsed)
            rocm_reason = rec.probes[-1].reason or "rocm-smi lists no GPU"
            gpus.extend(parsed or [])
        else:
            rec.add("rocm_smi", False, rocm_reason)
        if apple_bg is not None:
            text = apple_bg.record(rec, deadline)
            if text:
                parsed = rec.run("system_profiler_parse", lambda: apple.parse_system_profiler_json(text, unified))
                gpus.extend(g for g in parsed or [] if g.vendor == "apple")
        else:
            rec.add("system_profiler", False, "system_profiler exists on macOS only")

    torch_fw, torch_gpus, torch_cuda, torch_reason = _torch_outcome(rec, torch_bg, deadline)
    framework_list = [torch_fw, *framework_list]
    if not recorded:
        gpus = _merge_torch_gpus(gpus, torch_gpus)

    caps = (
        monitoring.recorded_capabilities(gpus, torch_cuda=torch_cuda, torch_reason=torch_reason)
        if recorded
        else monitoring.live_capabilities(
            nvml=nvml_report,
            nvml_error=nvml_error,
            torch_cuda=torch_cuda,
            torch_reason=torch_reason,
            rocm_smi_ok=rocm_ok,
            rocm_smi_reason=rocm_reason,
        )
    )
    rec.add("total", True, duration_s=time.perf_counter() - start)
    return AgentInfo(
        name=name or system.hostname,
        agent_version=frameworks.distribution_version("ruckus") or "",
        system=system,
        cpu=cpu,
        memory=memory,
        disk=disk,
        gpus=gpus,
        frameworks=framework_list,
        runtimes=[],
        monitoring=caps,
        models=found_models,
        probes=rec.probes,
    )


def _detect_models(rec: _Recorder, data_dir: Path, model_dirs: Sequence[Path]) -> list[ModelInfo]:
    """Packaged model, model dirs and the hub cache, each its own probe."""
    found: list[ModelInfo] = []
    found.extend(rec.run("packaged_model", lambda: models.packaged_models(data_dir)) or [])
    for index, directory in enumerate(model_dirs):
        probe = "model_dirs" if len(model_dirs) == 1 else f"model_dirs[{index}]"
        found.extend(
            rec.run(
                probe,
                lambda d=directory: models.scan_model_dir(Path(d)),
                empty_reason=f"no model in {directory}",
            )
            or []
        )
    found.extend(rec.run("hf_cache", models.scan_hf_cache) or [])
    return models.dedupe_models(found)


def _recorded_gpus(
    rec: _Recorder, nvidia_xml: Path | None, rocm_json: Path | None, apple_json: Path | None
) -> list[GpuInfo]:
    """GPUs parsed from recorded reports, each file its own probe."""
    gpus: list[GpuInfo] = []
    if nvidia_xml is not None:
        gpus.extend(
            rec.run(
                "nvidia_smi_file",
                lambda: nvidia_smi.parse_nvidia_smi_xml(Path(nvidia_xml).read_bytes()),
                empty_reason=f"{nvidia_xml} lists no GPU",
            )
            or []
        )
    if rocm_json is not None:
        gpus.extend(
            rec.run(
                "rocm_smi_file",
                lambda: rocm_smi.parse_rocm_smi_json(Path(rocm_json).read_text()),
                empty_reason=f"{rocm_json} lists no GPU",
            )
            or []
        )
    if apple_json is not None:
        # The report's host memory is unknown: its GPU memory stays None rather than borrow ours.
        gpus.extend(
            rec.run(
                "system_profiler_file",
                lambda: apple.parse_system_profiler_json(Path(apple_json).read_text()),
                empty_reason=f"{apple_json} lists no GPU",
            )
            or []
        )
    return gpus


def _torch_outcome(
    rec: _Recorder, torch_bg: _Background | None, deadline: float
) -> tuple[FrameworkInfo, list[GpuInfo], bool, str]:
    """Torch's framework entry, its GPUs, whether CUDA memory can be measured, and why not."""
    if torch_bg is None:
        rec.add("torch", False, "torch is not installed")
        reason = "torch is not installed"
        return FrameworkInfo(name="torch", available=False, reason=reason), [], False, reason
    report: frameworks.TorchReport | None = torch_bg.record(rec, deadline)
    if report is None:
        reason = rec.probes[-1].reason or "torch probe failed"
        version = frameworks.distribution_version("torch")
        return FrameworkInfo(name="torch", available=False, version=version, reason=reason), [], False, reason
    reason = "torch has no CUDA device here" if not report.cuda_memory else ""
    return report.framework, report.gpus, report.cuda_memory, reason


def _merge_torch_gpus(gpus: list[GpuInfo], torch_gpus: list[GpuInfo]) -> list[GpuInfo]:
    """Add the GPUs only torch saw (NVML and the SMI tools describe theirs in more detail)."""
    have = {g.backend for g in gpus}
    extra = [g for g in torch_gpus if g.backend not in have]
    return [*gpus, *extra]
