"""Matrix-multiply throughput per precision: square ``n x n @ n x n`` products, ``2 n^3`` operations each.

GPU: fp32 (``float32_matmul_precision="highest"``: no tensor cores), tf32 (``"high"``), fp16 and
bf16 (``torch.matmul``), int8 (``torch._int_mm``, int32 accumulation) and fp8 (``torch._scaled_mm``
with e4m3 operands, tensor-wise scales, bf16 output). Sizes adapt to free memory. CPU: fp32 and bf16
with ``torch.matmul``; the size grows until one product takes a noticeable time, so a Raspberry Pi and
a 128-core server both get a measurement that is neither instant nor minutes long.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from agent_runtime.hwbench.figures import GFLOPS, TFLOPS, measured, unsupported
from agent_runtime.hwbench.support import GpuFacts, gpu_precision_problem
from agent_runtime.hwbench.timing import BenchmarkStopped, StopCheck, synchronize, time_kernel
from common.metrics import benchmark_unit
from common.protocol import BenchmarkFigure

#: Bytes per element of each precision's operands.
ELEMENT_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "int8": 1, "fp8": 1}
#: Largest GPU side per precision in full mode; 16-bit and narrower need large products to fill
#: the tensor cores of H100-class GPUs, fp32 on CUDA cores saturates earlier and is slow.
GPU_MAX_SIDE = {"fp32": 8192, "tf32": 8192, "fp16": 16384, "bf16": 16384, "int8": 16384, "fp8": 16384}
#: GPU side in quick mode.
GPU_QUICK_SIDE = 4096
#: Share of free device memory the three matrices may take.
DEVICE_MEMORY_SHARE = 0.25
#: CPU sides tried, smallest first.
CPU_SIDES = (256, 512, 1024, 2048, 4096)
#: Target duration of one CPU product (quick / full) when picking the side.
CPU_TARGET_S = {True: 0.03, False: 0.15}


def gpu_side(precision: str, free_bytes: int | None, quick: bool) -> int:
    """Side of the square matrices for a GPU precision, adapted to free memory.

    Args:
        precision: Precision.
        free_bytes: Free device memory (None: assume 4 GiB).
        quick: Use :data:`GPU_QUICK_SIDE` at most.

    Returns:
        A multiple of 256 (int8 and fp8 kernels need multiples of 16).
    """
    budget = (free_bytes if free_bytes is not None else 4 * 2**30) * DEVICE_MEMORY_SHARE
    side = min(GPU_QUICK_SIDE, GPU_MAX_SIDE[precision]) if quick else GPU_MAX_SIDE[precision]
    # Output of int8 is int32 and of fp8 bf16: count the output at 4 bytes to stay on the safe side.
    while side > 256 and (2 * ELEMENT_BYTES[precision] + 4) * side * side > budget:
        side //= 2
    return side


@contextmanager
def _fp32_matmul_precision(value: str) -> Iterator[None]:
    """Set torch's float32 matmul precision (``highest`` = IEEE fp32, ``high`` = TF32) for a block."""
    import torch

    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(value)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def _gpu_kernel(precision: str, side: int, device: str) -> tuple[Callable[[], Any], dict[str, Any]]:
    """Operands and the product call of one precision; returns ``(kernel, params)``."""
    import torch

    n = side
    if precision in ("fp32", "tf32"):
        a = torch.randn((n, n), device=device, dtype=torch.float32)
        b = torch.randn((n, n), device=device, dtype=torch.float32)
        c = torch.empty((n, n), device=device, dtype=torch.float32)
        return (lambda: torch.matmul(a, b, out=c)), {"op": "torch.matmul", "dtype": "float32"}
    if precision in ("fp16", "bf16"):
        dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        a = torch.randn((n, n), device=device, dtype=dtype)
        b = torch.randn((n, n), device=device, dtype=dtype)
        c = torch.empty((n, n), device=device, dtype=dtype)
        return (lambda: torch.matmul(a, b, out=c)), {"op": "torch.matmul", "dtype": str(dtype).removeprefix("torch.")}
    if precision == "int8":
        a = torch.randint(-128, 128, (n, n), device=device, dtype=torch.int8)
        b = torch.randint(-128, 128, (n, n), device=device, dtype=torch.int8)
        return (lambda: torch._int_mm(a, b)), {"op": "torch._int_mm", "dtype": "int8", "accumulate": "int32"}
    if precision == "fp8":
        a = torch.randn((n, n), device=device).to(torch.float8_e4m3fn)
        # cuBLASLt's fp8 GEMM wants the second operand column-major: a transposed row-major tensor.
        b = torch.randn((n, n), device=device).to(torch.float8_e4m3fn).t()
        one = torch.tensor(1.0, device=device, dtype=torch.float32)

        def fp8() -> Any:
            return torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16, use_fast_accum=True)

        return fp8, {
            "op": "torch._scaled_mm",
            "dtype": "float8_e4m3fn",
            "out_dtype": "bfloat16",
            "scaling": "tensor-wise",
            "use_fast_accum": True,
        }
    raise ValueError(f"unknown precision {precision!r}")


def gpu_matmul(
    facts: GpuFacts, precision: str, *, quick: bool, repeats: int, should_stop: StopCheck | None = None
) -> BenchmarkFigure:
    """Matmul throughput of one precision on the accelerator, or why it is unsupported.

    Args:
        facts: The accelerator.
        precision: One of ``fp32, tf32, fp16, bf16, int8, fp8``.
        quick: Smaller matrices.
        repeats: Timed repeats.
        should_stop: Stop check between repeats.

    Returns:
        ``tflops.<device>.<precision>`` (unit TFLOP/s, TOP/s for int8).
    """
    import torch

    device = facts.device
    unit = benchmark_unit(TFLOPS, precision)
    problem = gpu_precision_problem(facts, precision)
    if problem is not None:
        return unsupported(TFLOPS, device, precision, unit, problem)
    free = facts.free_bytes
    if device == "cuda":
        free = torch.cuda.mem_get_info()[0]
    side = gpu_side(precision, free, quick)
    tensor_cores = bool(facts.tensor_cores and precision in facts.tensor_cores.precisions)
    try:
        with _fp32_matmul_precision("high" if precision == "tf32" else "highest"):
            kernel, params = _gpu_kernel(precision, side, device)
            timing = time_kernel(
                kernel, device=device, repeats=repeats, min_repeat_s=0.02 if quick else 0.1, should_stop=should_stop
            )
    except BenchmarkStopped:
        raise
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        # The table allowed it but this torch/driver cannot (no kernel in this build, out of memory).
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return unsupported(
            TFLOPS, device, precision, unit, f"torch could not run {precision} matmul here: {first_line}", side=side
        )
    finally:
        synchronize(device)
        if device == "cuda":
            torch.cuda.empty_cache()
    return measured(
        TFLOPS,
        device,
        precision,
        unit,
        timing.rates(2.0 * side**3, 1e12),
        m=side,
        n=side,
        k=side,
        ops_per_call=2 * side**3,
        tensor_cores=tensor_cores if not facts.hip and device == "cuda" else None,
        inner=timing.inner,
        timer=timing.timer,
        **params,
    )


def cpu_matmul(
    precision: str, *, quick: bool, repeats: int, problem: str | None = None, should_stop: StopCheck | None = None
) -> BenchmarkFigure:
    """CPU matmul throughput (GFLOP/s) of fp32 or bf16, or why it is unsupported.

    Args:
        precision: ``fp32`` or ``bf16``.
        quick: Shorter target time per product.
        repeats: Timed repeats.
        problem: Reason the precision is unsupported (from :func:`~agent_runtime.hwbench.support.cpu_bf16_problem`).
        should_stop: Stop check between repeats.

    Returns:
        ``gflops.cpu.<precision>``.
    """
    import time

    import torch

    unit = benchmark_unit(GFLOPS, precision)
    if problem is not None:
        return unsupported(GFLOPS, "cpu", precision, unit, problem)
    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    target = CPU_TARGET_S[quick]
    side = CPU_SIDES[0]
    # Grow the side while the next (8x more work) product stays near the target: these calls also
    # warm up the BLAS / oneDNN kernels.
    while True:
        a = torch.randn((side, side), dtype=dtype)
        b = torch.randn((side, side), dtype=dtype)
        torch.matmul(a, b)
        t0 = time.perf_counter()
        torch.matmul(a, b)
        one = time.perf_counter() - t0
        if side == CPU_SIDES[-1] or one * 8 > target:
            break
        side *= 2
    c = torch.empty((side, side), dtype=dtype)
    timing = time_kernel(
        lambda: torch.matmul(a, b, out=c),
        device="cpu",
        repeats=repeats,
        warmup=1,
        min_repeat_s=target,
        should_stop=should_stop,
    )
    return measured(
        GFLOPS,
        "cpu",
        precision,
        unit,
        timing.rates(2.0 * side**3, 1e9),
        m=side,
        n=side,
        k=side,
        ops_per_call=2 * side**3,
        dtype=str(dtype).removeprefix("torch."),
        op="torch.matmul",
        threads=torch.get_num_threads(),
        inner=timing.inner,
        timer=timing.timer,
    )
