"""Which measurements the agent can take on this host (``AgentInfo.monitoring``)."""

from __future__ import annotations

import shutil

from common.protocol import GpuInfo, MonitoringCapability

from .nvml import NvmlReport

#: Capability names, in the order they are advertised.
CAPABILITIES = (
    "nvml",
    "gpu_power",
    "energy_counter",
    "gpu_utilization",
    "torch_cuda_memory",
    "rss",
    "cpu_percent",
    "rocm_smi",
    "nvidia_smi",
)


def _cap(name: str, available: bool, reason: str | None) -> MonitoringCapability:
    return MonitoringCapability(name=name, available=available, reason=None if available else reason)


def process_capabilities() -> list[MonitoringCapability]:
    """``rss`` and ``cpu_percent``: whether psutil can read them for this process.

    Returns:
        The two capabilities.
    """
    out: list[MonitoringCapability] = []
    try:
        import psutil

        proc = psutil.Process()
        out.append(_cap("rss", proc.memory_info().rss > 0, "psutil reports no resident set size"))
    except Exception as exc:  # psutil missing or denied
        out.append(_cap("rss", False, f"psutil cannot read the process memory: {exc}"))
    try:
        import psutil

        psutil.cpu_percent(interval=None)  # the first call primes the counter; it must not raise
        out.append(_cap("cpu_percent", True, None))
    except Exception as exc:
        out.append(_cap("cpu_percent", False, f"psutil cannot read CPU times: {exc}"))
    return out


def live_capabilities(
    *,
    nvml: NvmlReport | None,
    nvml_error: str | None,
    torch_cuda: bool,
    torch_reason: str,
    rocm_smi_ok: bool,
    rocm_smi_reason: str,
) -> list[MonitoringCapability]:
    """Capabilities of the live host from the probes' outcomes.

    Args:
        nvml: NVML report (None when NVML failed).
        nvml_error: Why NVML failed.
        torch_cuda: torch is imported and CUDA is available.
        torch_reason: Why ``torch_cuda_memory`` is not available.
        rocm_smi_ok: rocm-smi answered.
        rocm_smi_reason: Why it did not.

    Returns:
        All :data:`CAPABILITIES`, each with availability and reason.
    """
    has_nvml = nvml is not None and bool(nvml.gpus)
    nvml_reason = nvml_error or "NVML reports no GPU"
    caps = [_cap("nvml", has_nvml, nvml_reason)]
    for name, flag in (
        ("gpu_power", nvml.power if nvml else False),
        ("energy_counter", nvml.energy_counter if nvml else False),
        ("gpu_utilization", nvml.utilization if nvml else False),
    ):
        reason = (nvml.reasons.get(name) if nvml else None) or nvml_reason
        caps.append(_cap(name, has_nvml and flag, reason))
    caps.append(_cap("torch_cuda_memory", torch_cuda, torch_reason))
    caps.extend(process_capabilities())
    caps.append(_cap("rocm_smi", rocm_smi_ok, rocm_smi_reason))
    caps.append(_cap("nvidia_smi", shutil.which("nvidia-smi") is not None, "nvidia-smi is not on PATH"))
    return caps


def recorded_capabilities(gpus: list[GpuInfo], *, torch_cuda: bool, torch_reason: str) -> list[MonitoringCapability]:
    """Capabilities of the machine that produced recorded GPU reports.

    nvidia-smi is an NVML client, so a machine that wrote an nvidia-smi report has NVML; rocm-smi
    likewise. Whether power and the energy counter can be read is NVML's answer on that machine,
    which a report does not record, so those are claimed only from figures the report holds.

    Args:
        gpus: GPUs parsed from the recorded files.
        torch_cuda: torch CUDA state of this host (torch is not in a GPU report).
        torch_reason: Why ``torch_cuda_memory`` is not available.

    Returns:
        All :data:`CAPABILITIES`.
    """
    nvidia = [g for g in gpus if g.vendor == "nvidia"]
    amd = [g for g in gpus if g.source == "rocm-smi"]
    no_nvidia = "the recorded reports hold no NVIDIA GPU"
    caps = [
        _cap("nvml", bool(nvidia), no_nvidia),
        _cap("gpu_power", False, "a recorded report cannot tell whether NVML reads power on that machine"),
        _cap("energy_counter", False, "a recorded report cannot tell whether NVML has the energy counter"),
        _cap(
            "gpu_utilization",
            any(g.utilization_pct is not None for g in nvidia),
            "the recorded report has no GPU utilization (MIG, or no NVIDIA GPU)",
        ),
        _cap("torch_cuda_memory", torch_cuda, torch_reason),
        *process_capabilities(),
        _cap("rocm_smi", bool(amd), "no recorded rocm-smi report"),
        _cap("nvidia_smi", any(g.source == "nvidia-smi" for g in nvidia), "no recorded nvidia-smi report"),
    ]
    return caps
