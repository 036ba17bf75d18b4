"""What the benchmark can measure here: the device, and which precisions its hardware accelerates.

NVIDIA precisions are decided from the compute capability with the tensor-core table of
:mod:`agent_runtime.detection.tensor_cores` (the same table ``AgentInfo`` advertises), plus the torch
entry point each precision needs. A precision the table allows but torch refuses at run time is still
reported unsupported, with torch's error as the reason.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.detection.cpu import detect_cpu
from agent_runtime.detection.tensor_cores import (
    TensorCores,
    architecture_for_cc,
    format_compute_capability,
    tensor_cores_for_cc,
)

#: GPU matrix-multiply precisions, in report order.
GPU_PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8")
#: CPU matrix-multiply precisions, in report order.
CPU_PRECISIONS = ("fp32", "bf16")
#: Lowest compute capability whose tensor cores run FP8 (Ada Lovelace).
FP8_MIN_CC = (8, 9)
#: CPU ISA features that give native bf16 matrix math (x86: AVX512-BF16 / AMX-BF16; Arm: FEAT_BF16).
CPU_BF16_FEATURES = ("amx_bf16", "avx512_bf16", "bf16")


class DeviceUnavailable(RuntimeError):
    """The requested device does not exist here."""


def resolve_device(requested: str) -> str:
    """Resolve ``auto`` to cuda, then mps, then cpu; check an explicit device exists.

    Args:
        requested: ``auto``, ``cpu``, ``cuda`` or ``mps``.

    Returns:
        The device.

    Raises:
        DeviceUnavailable: An explicit device torch cannot use.
        ValueError: An unknown device name.
    """
    import torch

    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend and mps_backend.is_available())
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if requested == "cuda" and not cuda:
        raise DeviceUnavailable("device cuda requested but torch sees no CUDA device")
    if requested == "mps" and not mps:
        raise DeviceUnavailable("device mps requested but it is not available")
    if requested not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {requested!r}; use auto, cpu, cuda or mps")
    return requested


@dataclass
class GpuFacts:
    """The accelerator being measured.

    Attributes:
        device: ``cuda`` or ``mps``.
        name: Product name.
        compute_capability: ``major.minor`` (NVIDIA only).
        architecture: Architecture name.
        hip: True for a ROCm build of torch (``cuda`` then means an AMD GPU).
        tensor_cores: NVIDIA tensor cores of the compute capability, None when none or not NVIDIA.
        free_bytes: Free device memory (None when unknown).
        total_bytes: Total device memory (None when unknown).
    """

    device: str
    name: str
    compute_capability: str | None = None
    architecture: str | None = None
    hip: bool = False
    tensor_cores: TensorCores | None = None
    free_bytes: int | None = None
    total_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cc_tuple(self) -> tuple[int, int] | None:
        """Compute capability as ``(major, minor)``."""
        if not self.compute_capability:
            return None
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)

    def environment(self) -> dict[str, Any]:
        """Facts worth recording next to the figures."""
        out: dict[str, Any] = {"gpu_name": self.name}
        if self.compute_capability:
            out["compute_capability"] = self.compute_capability
        if self.architecture:
            out["architecture"] = self.architecture
        if self.tensor_cores:
            out["tensor_core_generation"] = self.tensor_cores.generation
            out["tensor_core_precisions"] = list(self.tensor_cores.precisions)
        if self.total_bytes is not None:
            out["gpu_memory_total_bytes"] = self.total_bytes
        if self.hip:
            out["rocm"] = True
        return {**out, **self.extra}


def gpu_facts(device: str) -> GpuFacts:
    """Describe the current accelerator of ``device`` (``cuda`` or ``mps``).

    Args:
        device: ``cuda`` or ``mps``.

    Returns:
        The facts.
    """
    import torch

    if device == "mps":
        return GpuFacts(device="mps", name=f"Apple {platform.machine()} GPU (MPS)")
    index = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    free, total = torch.cuda.mem_get_info(index)
    hip = bool(getattr(torch.version, "hip", None))
    if hip:
        # ROCm reports the gfx version through get_device_capability; it is not an NVIDIA compute
        # capability and must not be looked up in the tensor-core table.
        arch = getattr(props, "gcnArchName", None)
        return GpuFacts(device="cuda", name=props.name, architecture=arch, hip=True, free_bytes=free, total_bytes=total)
    cc = format_compute_capability(props.major, props.minor)
    return GpuFacts(
        device="cuda",
        name=props.name,
        compute_capability=cc,
        architecture=architecture_for_cc(cc),
        tensor_cores=tensor_cores_for_cc(cc),
        free_bytes=free,
        total_bytes=total,
    )


def gpu_precision_problem(facts: GpuFacts, precision: str) -> str | None:
    """Why ``precision`` cannot be measured on this accelerator, or None when it can.

    Args:
        facts: The accelerator.
        precision: One of :data:`GPU_PRECISIONS`.

    Returns:
        The reason in words, or None.
    """
    import torch

    if facts.device == "mps":
        return {
            "tf32": "TF32 is an NVIDIA tensor-core format; MPS has no TF32 matmul mode",
            "int8": "torch._int_mm has no MPS kernel",
            "fp8": "fp8 matmul (torch._scaled_mm) needs an NVIDIA GPU of compute capability 8.9 or newer",
        }.get(precision)
    if facts.hip:
        if precision == "tf32":
            return "TF32 is an NVIDIA tensor-core format; not measured on ROCm"
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            return f"torch reports no bf16 support on {facts.name}"
        if precision == "int8" and not hasattr(torch, "_int_mm"):
            return f"torch {torch.__version__} has no torch._int_mm"
        if precision == "fp8":
            return "fp8 is measured through torch._scaled_mm (e4m3fn) on NVIDIA compute capability 8.9 or newer"
        return None
    cc = facts.compute_capability or "unknown"
    arch = f"{cc} ({facts.architecture})" if facts.architecture else cc
    cores = facts.tensor_cores
    accelerated = set(cores.precisions) if cores else set()
    if precision in ("fp32", "fp16"):
        return None  # CUDA cores run both on every NVIDIA GPU; tensor-core use is noted in params
    if precision == "tf32" and "tf32" not in accelerated:
        return f"compute capability {arch} has no TF32 tensor cores (Ampere 8.0 or newer)"
    if precision == "bf16" and "bf16" not in accelerated:
        return f"compute capability {arch} has no bf16 tensor cores (Ampere 8.0 or newer); torch would emulate bf16"
    if precision == "int8":
        if "int8" not in accelerated:
            return f"compute capability {arch} has no int8 tensor cores (Turing 7.5 or newer)"
        if not hasattr(torch, "_int_mm"):
            return f"torch {torch.__version__} has no torch._int_mm"
    if precision == "fp8":
        cc_tuple = facts.cc_tuple
        if "fp8" not in accelerated or cc_tuple is None or cc_tuple < FP8_MIN_CC:
            return f"compute capability {arch} has no fp8 tensor cores (Ada 8.9 or newer)"
        if not hasattr(torch, "_scaled_mm") or not hasattr(torch, "float8_e4m3fn"):
            return f"torch {torch.__version__} has no torch._scaled_mm / float8_e4m3fn"
    return None


def cpu_isa_features() -> list[str]:
    """Notable ISA features of this CPU (the detection module's names: ``avx512_bf16``, ``amx_bf16`` ...)."""
    return detect_cpu().isa_features


def cpu_bf16_problem(features: list[str] | None = None) -> str | None:
    """Why bf16 matmul throughput is not measured on this CPU, or None when it is.

    Without native bf16 instructions torch converts bf16 through fp32, so a figure would measure the
    conversion, not a capability of the CPU.

    Args:
        features: ISA features (default: detected).

    Returns:
        The reason, or None.
    """
    import torch

    feats = set(cpu_isa_features() if features is None else features)
    if not feats.intersection(CPU_BF16_FEATURES):
        return (
            "the CPU has no native bf16 instructions (AVX512-BF16 or AMX-BF16 on x86, BF16 on Arm); "
            "torch would convert through fp32"
        )
    if platform.machine().lower() in ("x86_64", "amd64") and not torch.backends.mkldnn.is_available():
        return "torch was built without oneDNN, which runs bf16 matmul on AVX512-BF16/AMX"
    return None
