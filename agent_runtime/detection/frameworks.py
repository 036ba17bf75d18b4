"""ML frameworks on the host, and the GPUs torch sees.

Versions come from the installed distributions' metadata (``importlib.metadata``), which costs
nothing; only torch is imported, because what matters about it (CUDA/ROCm/MPS, bf16) is only known
at run time. Importing torch takes 1-2 s on a small host, so the caller runs :func:`probe_torch` in
a thread alongside the other probes, and a torch that is already imported is reused as is. vLLM is
never imported (it pulls in most of the CUDA stack); its version is read from metadata.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass, field
from typing import Any

from common.protocol import FrameworkInfo, GpuInfo

from .tensor_cores import describe_nvidia_gpu

#: Frameworks advertised besides torch: (name, import name, distributions that provide it).
FRAMEWORKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("transformers", "transformers", ("transformers",)),
    ("vllm", "vllm", ("vllm",)),
    ("accelerate", "accelerate", ("accelerate",)),
    ("llama_cpp", "llama_cpp", ("llama_cpp_python", "llama-cpp-python")),
    ("onnxruntime", "onnxruntime", ("onnxruntime", "onnxruntime-gpu", "onnxruntime-silicon")),
    ("tensorrt_llm", "tensorrt_llm", ("tensorrt_llm", "tensorrt-llm")),
)
#: Install advice for frameworks a RUCKUS runtime uses that no other runtime already explains.
INSTALL_HINTS: dict[str, str] = {"llama_cpp": "pip install 'ruckus[llamacpp]'"}


def distribution_version(*names: str) -> str | None:
    """Version of the first installed distribution among ``names``.

    Args:
        names: Distribution names to try.

    Returns:
        The version, or None when none is installed.
    """
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _importable(module: str) -> bool:
    """Whether ``module`` can be found, without importing it."""
    if module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def detect_frameworks() -> list[FrameworkInfo]:
    """Every framework of :data:`FRAMEWORKS`, installed or not, without importing any.

    Returns:
        One entry per framework; missing ones carry the reason.
    """
    out: list[FrameworkInfo] = []
    for name, module, dists in FRAMEWORKS:
        version = distribution_version(*dists)
        if version is not None and _importable(module):
            out.append(FrameworkInfo(name=name, available=True, version=version))
        elif version is not None:
            out.append(
                FrameworkInfo(
                    name=name,
                    available=False,
                    version=version,
                    reason=f"{dists[0]} is installed but not importable",
                )
            )
        else:
            hint = INSTALL_HINTS.get(name)
            reason = f"not installed: {hint}" if hint else f"{dists[0]} is not installed"
            out.append(FrameworkInfo(name=name, available=False, reason=reason))
    return out


@dataclass
class TorchReport:
    """What the torch probe found.

    Attributes:
        framework: torch's entry in ``AgentInfo.frameworks``.
        gpus: CUDA/ROCm devices and the MPS device torch can use.
        cuda_memory: ``torch.cuda.max_memory_allocated`` can be measured here.
    """

    framework: FrameworkInfo
    gpus: list[GpuInfo] = field(default_factory=list)
    cuda_memory: bool = False


def torch_installed() -> bool:
    """Whether torch is importable, without importing it."""
    return _importable("torch")


def probe_torch(unified_memory_bytes: int | None = None) -> TorchReport:
    """Import torch (or reuse it) and describe its accelerator support.

    Args:
        unified_memory_bytes: System memory, reported as the MPS device's memory (Apple unified memory).

    Returns:
        The report.

    Raises:
        ImportError: torch is not installed or fails to import.
    """
    import torch

    version = str(torch.__version__)
    hip = getattr(torch.version, "hip", None)
    features: dict[str, Any] = {
        "cuda": False,
        "cuda_version": getattr(torch.version, "cuda", None),
        "rocm": bool(hip),
        "hip_version": hip,
        "mps": False,
        "bf16": None,
        "cudnn_version": None,
        "device_count": 0,
    }
    gpus: list[GpuInfo] = []
    cuda_ok = False
    try:
        cuda_ok = bool(torch.cuda.is_available())
    except Exception as exc:  # a broken driver raises instead of answering False
        features["cuda_error"] = str(exc)
    features["cuda"] = cuda_ok
    if cuda_ok:
        features["device_count"] = torch.cuda.device_count()
        # Left None ("unknown") rather than guessed when torch cannot tell.
        with contextlib.suppress(Exception):
            features["bf16"] = bool(torch.cuda.is_bf16_supported())
        with contextlib.suppress(Exception):  # cuDNN absent from the build
            features["cudnn_version"] = torch.backends.cudnn.version()
        for index in range(features["device_count"]):
            gpus.append(_torch_cuda_gpu(torch, index, bool(hip)))
    try:
        mps = bool(torch.backends.mps.is_available())
    except Exception:
        mps = False
    features["mps"] = mps
    if mps:
        # MPS supports bfloat16 from macOS 14 on; torch reports it through is_macos_or_newer.
        with contextlib.suppress(Exception):  # older torch without the helper
            features["bf16"] = bool(torch.backends.mps.is_macos_or_newer(14, 0))
        gpus.append(
            GpuInfo(
                index=0,
                name="Apple GPU (MPS)",
                vendor="apple",
                backend="mps",
                source="torch",
                memory_total_bytes=unified_memory_bytes,
            )
        )
    return TorchReport(
        framework=FrameworkInfo(name="torch", available=True, version=version, features=features),
        gpus=gpus,
        cuda_memory=cuda_ok,
    )


def _torch_cuda_gpu(torch: Any, index: int, is_hip: bool) -> GpuInfo:
    """One CUDA (or ROCm/HIP) device as torch describes it."""
    props = torch.cuda.get_device_properties(index)
    name = str(props.name)
    # Free memory is left out on purpose: torch.cuda.mem_get_info would create a CUDA context (hundreds
    # of MiB of device memory held by the agent for its whole life); NVML reports it without one.
    free: int | None = None
    if is_hip:
        return GpuInfo(
            index=index,
            name=name,
            vendor="amd",
            backend="rocm",
            source="torch",
            memory_total_bytes=int(props.total_memory),
            memory_free_bytes=free,
            architecture=str(getattr(props, "gcnArchName", "") or "").split(":")[0] or None,
            uuid=str(getattr(props, "uuid", "") or "") or None,
        )
    cc = f"{props.major}.{props.minor}"
    uuid = getattr(props, "uuid", None)
    return GpuInfo(
        index=index,
        name=name,
        vendor="nvidia",
        backend="cuda",
        source="torch",
        uuid=f"GPU-{uuid}" if uuid is not None else None,
        memory_total_bytes=int(props.total_memory),
        memory_free_bytes=free,
        cuda_version=getattr(torch.version, "cuda", None),
        **describe_nvidia_gpu(name, cc),
    )
