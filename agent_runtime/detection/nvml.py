"""NVIDIA GPUs through NVML (``nvidia-ml-py``, imported as ``pynvml``).

NVML answers in milliseconds and without a CUDA context, so it is the first GPU source. Boards and
drivers differ in what they support (``NVMLError_NotSupported`` for power on GeForce laptops, for
utilization under MIG, for the energy counter before Volta), so every query is guarded on its own
and a missing figure stays None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from common.protocol import GpuInfo

from .tensor_cores import describe_nvidia_gpu, format_compute_capability

T = TypeVar("T")


@dataclass
class NvmlReport:
    """What the NVML probe found.

    Attributes:
        gpus: One entry per device.
        power: At least one device reports its power draw.
        energy_counter: At least one device has the total-energy counter (Volta and newer).
        utilization: At least one device reports utilization (not under MIG).
        reasons: Capability -> why it is unavailable (when no device supports it).
    """

    gpus: list[GpuInfo] = field(default_factory=list)
    power: bool = False
    energy_counter: bool = False
    utilization: bool = False
    reasons: dict[str, str] = field(default_factory=dict)


def _decode(value: Any) -> str:
    """NVML returns bytes with old bindings and str with new ones."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _error_text(exc: BaseException) -> str:
    """Readable NVML error ("Not Supported", "Driver Not Loaded" ...)."""
    text = str(exc).strip()
    return text or type(exc).__name__


def _query(fn: Callable[[], T], errors: dict[str, str], key: str) -> T | None:
    """Call one NVML query; on failure remember why under ``key`` and return None."""
    try:
        return fn()
    except Exception as exc:  # every NVMLError_* subclass, plus ctypes failures on odd drivers
        errors.setdefault(key, _error_text(exc))
        return None


def probe_nvml(nvml: Any | None = None) -> NvmlReport:
    """Enumerate NVIDIA GPUs with NVML.

    Args:
        nvml: The ``pynvml`` module (injected in tests); imported when None.

    Returns:
        The report; ``gpus`` is empty when there is no device.

    Raises:
        ImportError: nvidia-ml-py is not installed.
        RuntimeError: NVML could not start (no driver, library missing), with NVML's reason.
    """
    if nvml is None:
        import pynvml as nvml
    try:
        nvml.nvmlInit()
    except Exception as exc:
        raise RuntimeError(f"NVML could not start: {_error_text(exc)}") from exc
    try:
        return _enumerate(nvml)
    finally:
        # Shutting down a half-working NVML has nothing left to report.
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def _enumerate(nvml: Any) -> NvmlReport:
    """Query every device; NVML is initialised."""
    report = NvmlReport()
    errors: dict[str, str] = {}
    driver = _query(lambda: _decode(nvml.nvmlSystemGetDriverVersion()), errors, "driver")
    cuda_int = _query(nvml.nvmlSystemGetCudaDriverVersion, errors, "cuda")
    cuda = f"{cuda_int // 1000}.{(cuda_int % 1000) // 10}" if isinstance(cuda_int, int) and cuda_int else None
    count = nvml.nvmlDeviceGetCount()
    for index in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        dev_errors: dict[str, str] = {}
        name = _query(lambda h=handle: _decode(nvml.nvmlDeviceGetName(h)), dev_errors, "name") or "unknown"
        memory = _query(lambda h=handle: nvml.nvmlDeviceGetMemoryInfo(h), dev_errors, "memory")
        cc_pair = _query(lambda h=handle: nvml.nvmlDeviceGetCudaComputeCapability(h), dev_errors, "cc")
        cc = format_compute_capability(*cc_pair) if cc_pair else None
        sm_clock = _query(lambda h=handle: nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_SM), dev_errors, "sm")
        mem_clock = _query(lambda h=handle: nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_MEM), dev_errors, "mem")
        power_limit_mw = _query(lambda h=handle: nvml.nvmlDeviceGetEnforcedPowerLimit(h), dev_errors, "limit")
        temperature = _query(
            lambda h=handle: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU), dev_errors, "temp"
        )
        utilization = _query(lambda h=handle: nvml.nvmlDeviceGetUtilizationRates(h), errors, "gpu_utilization")
        mig = _query(lambda h=handle: nvml.nvmlDeviceGetMigMode(h), dev_errors, "mig")
        pci = _query(lambda h=handle: nvml.nvmlDeviceGetPciInfo(h), dev_errors, "pci")
        virt = _query(lambda h=handle: nvml.nvmlDeviceGetVirtualizationMode(h), dev_errors, "virt")
        power = _query(lambda h=handle: nvml.nvmlDeviceGetPowerUsage(h), errors, "gpu_power")
        energy = _query(lambda h=handle: nvml.nvmlDeviceGetTotalEnergyConsumption(h), errors, "energy_counter")
        report.power = report.power or power is not None
        report.energy_counter = report.energy_counter or energy is not None
        report.utilization = report.utilization or utilization is not None
        report.gpus.append(
            GpuInfo(
                index=index,
                name=name,
                vendor="nvidia",
                backend="cuda",
                source="nvml",
                uuid=_query(lambda h=handle: _decode(nvml.nvmlDeviceGetUUID(h)), dev_errors, "uuid"),
                memory_total_bytes=int(memory.total) if memory is not None else None,
                memory_free_bytes=int(memory.free) if memory is not None else None,
                driver_version=driver,
                cuda_version=cuda,
                sm_clock_max_mhz=float(sm_clock) if sm_clock else None,
                memory_clock_max_mhz=float(mem_clock) if mem_clock else None,
                power_limit_w=power_limit_mw / 1000.0 if power_limit_mw else None,
                temperature_c=float(temperature) if temperature is not None else None,
                utilization_pct=float(utilization.gpu) if utilization is not None else None,
                mig_mode=_mig_text(nvml, mig),
                virtualization_mode=_virtualization_text(nvml, virt),
                pci_bus_id=(_decode(getattr(pci, "busId", "")) or None) if pci is not None else None,
                **describe_nvidia_gpu(name, cc),
            )
        )
    for key in ("gpu_power", "energy_counter", "gpu_utilization"):
        supported = {"gpu_power": report.power, "energy_counter": report.energy_counter}.get(key, report.utilization)
        if not supported and count:
            report.reasons[key] = f"NVML: {errors.get(key, 'not supported')} on every GPU"
    return report


def _mig_text(nvml: Any, mig: Any) -> str | None:
    """``Enabled``/``Disabled`` from ``nvmlDeviceGetMigMode``'s (current, pending) pair."""
    if not mig:
        return None
    current = mig[0] if isinstance(mig, list | tuple) else mig
    return "Enabled" if current == getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1) else "Disabled"


_VIRTUALIZATION_NAMES = {
    "NVML_GPU_VIRTUALIZATION_MODE_NONE": "None",
    "NVML_GPU_VIRTUALIZATION_MODE_PASSTHROUGH": "Pass-Through",
    "NVML_GPU_VIRTUALIZATION_MODE_VGPU": "VGPU",
    "NVML_GPU_VIRTUALIZATION_MODE_HOST_VGPU": "Host VGPU",
    "NVML_GPU_VIRTUALIZATION_MODE_HOST_VSGA": "Host VSGA",
}


def _virtualization_text(nvml: Any, mode: Any) -> str | None:
    """The nvidia-smi spelling of an NVML virtualization mode (``None``, ``Pass-Through``, ``VGPU``)."""
    if mode is None:
        return None
    for constant, text in _VIRTUALIZATION_NAMES.items():
        if getattr(nvml, constant, object()) == mode:
            return text
    return str(mode)
