"""NVIDIA compute capability -> architecture and tensor-core generation, and product name -> CC.

The tables come from NVIDIA's published material: the CUDA C++ Programming Guide ("Compute
Capabilities"), the "CUDA GPUs" compute-capability list, and the architecture whitepapers
(Volta, Turing, Ampere GA100/GA102, Ada, Hopper, Blackwell) for the precisions each generation of
tensor cores accelerates. Nothing here is inferred from benchmarks.

Product names are only used when the compute capability is not reported, which is the case for the
``nvidia-smi -q -x`` XML of every driver (the ``--query-gpu`` CSV has a ``compute_cap`` column from
driver 510 on, NVML and torch report it directly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TensorCores:
    """Tensor cores of one compute capability.

    Attributes:
        generation: 1 = Volta ... 5 = Blackwell.
        precisions: Precisions the tensor cores accelerate, narrowest last.
    """

    generation: int
    precisions: tuple[str, ...]


_VOLTA = TensorCores(1, ("fp16",))
# Xavier (CC 7.2) has Volta-class tensor cores that also run INT8 (Jetson AGX Xavier datasheet).
_XAVIER = TensorCores(1, ("fp16", "int8"))
_TURING = TensorCores(2, ("fp16", "int8", "int4"))
# GA100 (A100/A30) adds FP64 tensor-core math; GA10x (8.6) and Orin (8.7) do not.
_AMPERE_GA100 = TensorCores(3, ("fp64", "tf32", "bf16", "fp16", "int8", "int4"))
_AMPERE = TensorCores(3, ("tf32", "bf16", "fp16", "int8", "int4"))
_ADA = TensorCores(4, ("tf32", "bf16", "fp16", "fp8", "int8", "int4"))
# Hopper drops INT4 from the tensor cores and adds FP8 (Hopper whitepaper).
_HOPPER = TensorCores(4, ("fp64", "tf32", "bf16", "fp16", "fp8", "int8"))
# Blackwell adds FP6 and FP4 (incl. the microscaling formats). B200 (10.0) keeps FP64 tensor math;
# other Blackwell parts do not list it.
_BLACKWELL_B200 = TensorCores(5, ("fp64", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8"))
_BLACKWELL = TensorCores(5, ("tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8"))

#: Exact compute capabilities with a known tensor-core set.
_TENSOR_CORES: dict[tuple[int, int], TensorCores] = {
    (7, 0): _VOLTA,
    (7, 2): _XAVIER,
    (7, 5): _TURING,
    (8, 0): _AMPERE_GA100,
    (8, 6): _AMPERE,
    (8, 7): _AMPERE,
    (8, 9): _ADA,
    (9, 0): _HOPPER,
    (10, 0): _BLACKWELL_B200,
}

#: Architecture name by major version (and the exceptions within a major version below).
_ARCH_BY_MAJOR: dict[int, str] = {
    3: "Kepler",
    5: "Maxwell",
    6: "Pascal",
    7: "Volta",
    8: "Ampere",
    9: "Hopper",
    10: "Blackwell",
    11: "Blackwell",
    12: "Blackwell",
}
_ARCH_EXCEPTIONS: dict[tuple[int, int], str] = {(7, 5): "Turing", (8, 9): "Ada Lovelace"}


def parse_compute_capability(cc: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """Turn ``"8.6"`` or ``(8, 6)`` into ``(8, 6)``.

    Args:
        cc: Compute capability as text or tuple.

    Returns:
        ``(major, minor)``, or None when it cannot be read.
    """
    if cc is None:
        return None
    if isinstance(cc, tuple):
        return (int(cc[0]), int(cc[1])) if len(cc) == 2 else None
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", cc)
    return (int(match.group(1)), int(match.group(2))) if match else None


def format_compute_capability(major: int, minor: int) -> str:
    """Format a compute capability as ``major.minor``."""
    return f"{major}.{minor}"


def architecture_for_cc(cc: str | tuple[int, int] | None) -> str | None:
    """Architecture name of a compute capability (``Ampere``, ``Ada Lovelace``, ``Hopper`` ...).

    Args:
        cc: Compute capability.

    Returns:
        The name, or None when unknown.
    """
    parsed = parse_compute_capability(cc)
    if parsed is None:
        return None
    return _ARCH_EXCEPTIONS.get(parsed) or _ARCH_BY_MAJOR.get(parsed[0])


def tensor_cores_for_cc(cc: str | tuple[int, int] | None) -> TensorCores | None:
    """Tensor cores of a compute capability.

    Args:
        cc: Compute capability.

    Returns:
        Generation and precisions; None for GPUs without tensor cores (CC below 7.0) or an unknown CC.
    """
    parsed = parse_compute_capability(cc)
    if parsed is None or parsed < (7, 0):
        return None
    if parsed in _TENSOR_CORES:
        return _TENSOR_CORES[parsed]
    if parsed[0] in (10, 11, 12):
        # Every Blackwell variant (10.x data centre, 11.0 Thor, 12.x RTX/GB10) has 5th-gen tensor cores.
        return _BLACKWELL
    return None


#: Well-known product names -> compute capability ("CUDA GPUs" list). First match wins, so more
#: specific patterns come before the ones they would otherwise be swallowed by (A100 before A10).
_PRODUCT_CC: tuple[tuple[str, str], ...] = (
    # Blackwell
    (r"\bG?B300\b", "10.3"),
    (r"\bG?B200\b|\bB100\b", "10.0"),
    (r"\bGB10\b", "12.1"),
    (r"\bRTX PRO \d{4}.*Blackwell|\bGeForce RTX 50\d0\b", "12.0"),
    # Hopper
    (r"\bG?H100\b|\bH200\b|\bH800\b|\bGH200\b|\bH20\b", "9.0"),
    # Ada Lovelace
    (r"\bL40S?\b|\bL4\b|\bL20\b|\bGeForce RTX 40\d0\b|\bRTX \d{4}(?: SFF)? Ada\b", "8.9"),
    # Ampere
    (r"\bA100\b|\bA800\b|\bA30\b", "8.0"),
    (r"\bOrin\b", "8.7"),
    (r"\bA10G?\b|\bA16\b|\bA2\b|\bA40\b|\bGeForce RTX 30\d0\b|\bRTX A\d{4}\b", "8.6"),
    # Volta / Turing
    (r"\bXavier\b", "7.2"),
    (r"\bV100\b|\bTITAN V\b|\bGV100\b", "7.0"),
    (
        r"\bT4\b|\bGeForce RTX 20\d0\b|\bGTX 16\d0\b|\bQuadro RTX\b|\bTITAN RTX\b|\bT[46]00\b|\bT1[02]00\b",
        "7.5",
    ),
    # Pascal
    (r"\bP100\b|\bGP100\b", "6.0"),
    (r"\bP4\b|\bP40\b|\bP6\b|\bGTX 10\d0\b|\bQuadro P\d+\b|\bTITAN Xp\b|\bTITAN X \(Pascal\)", "6.1"),
    # Maxwell / Kepler
    (r"\bM40\b|\bM60\b|\bM6\b|\bM4\b|\bGTX 9\d0\b|\bTITAN X\b", "5.2"),
    (r"\bM10\b", "5.0"),
    (r"\bK80\b", "3.7"),
    (r"\bK40m?\b|\bK20X?m?\b", "3.5"),
)
_PRODUCT_CC_RE = tuple((re.compile(pattern, re.IGNORECASE), cc) for pattern, cc in _PRODUCT_CC)


def cc_for_product_name(name: str | None) -> str | None:
    """Compute capability of a well-known NVIDIA product name.

    Args:
        name: Product name as NVML/nvidia-smi print it (``NVIDIA A100-SXM4-80GB``, ``Tesla T4``,
            ``GRID P4-1Q`` ...).

    Returns:
        ``major.minor``, or None when the name is not in the table (e.g. the placeholder
        ``Graphics Device`` that old drivers print for boards they do not know yet).
    """
    if not name:
        return None
    # "A100-SXM4-80GB", "P4-1Q": a hyphen is a word boundary for \b, so the patterns match as is.
    # GeForce names carry "GeForce" so that "Quadro RTX 4000" (Turing) and "RTX 5000 Ada Generation"
    # (Ada) are not read as GeForce RTX 40xx/50xx.
    for pattern, cc in _PRODUCT_CC_RE:
        if pattern.search(name):
            return cc
    return None


def describe_nvidia_gpu(
    name: str | None, cc: str | None = None, reported_architecture: str | None = None
) -> dict[str, object]:
    """Fields of a :class:`~common.protocol.GpuInfo` that follow from an NVIDIA GPU's CC or name.

    Args:
        name: Product name.
        cc: Compute capability when reported (preferred over the name table).
        reported_architecture: Architecture as the tool reported it (``product_architecture`` of
            nvidia-smi), kept over the table's name when present.

    Returns:
        ``compute_capability``, ``architecture``, ``tensor_core_generation`` and
        ``tensor_core_precisions``.
    """
    cc = cc or cc_for_product_name(name)
    cores = tensor_cores_for_cc(cc)
    return {
        "compute_capability": cc,
        "architecture": reported_architecture or architecture_for_cc(cc),
        "tensor_core_generation": cores.generation if cores else None,
        "tensor_core_precisions": list(cores.precisions) if cores else [],
    }
