"""Timing of benchmark kernels: warm-up, calibration of inner iterations, timed repeats.

GPU work is asynchronous, so CUDA kernels are timed with CUDA events recorded on the current stream
and the end event is synchronised before it is read. CPU work (and MPS, whose torch API has no
events with timings on every version) is timed with ``time.perf_counter`` around a synchronised
block. Warm-up calls (allocator, cuBLAS heuristics, lazy module loading, CPU frequency ramp) are never
part of a repeat.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Upper bound of calls per timed repeat, so a kernel that measures near zero cannot loop for ever.
MAX_INNER = 10_000


class BenchmarkStopped(RuntimeError):
    """The benchmark was asked to stop (job cancelled or out of time)."""


StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class Timing:
    """Timed repeats of one kernel.

    Attributes:
        seconds: Wall time of each timed repeat (each repeat runs the kernel ``inner`` times).
        inner: Kernel calls per repeat.
        timer: ``cuda_events`` or ``perf_counter``.
    """

    seconds: list[float]
    inner: int
    timer: str

    def rates(self, work_per_call: float, scale: float) -> list[float]:
        """Throughput of every repeat: ``work_per_call * inner / seconds / scale``.

        Args:
            work_per_call: Bytes or operations one call does.
            scale: Divisor of the unit (1e9 for GB/s and GFLOP/s, 1e12 for TFLOP/s).

        Returns:
            One rate per repeat, in repeat order.
        """
        return [work_per_call * self.inner / s / scale for s in self.seconds]


def synchronize(device: str) -> None:
    """Wait for every queued kernel of ``device`` (no-op on the CPU)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    elif device == "mps":
        import torch

        torch.mps.synchronize()


def _timed_block(fn: Callable[[], Any], calls: int, device: str) -> float:
    """Seconds ``calls`` calls of ``fn`` take on ``device``, measured with the device's timer."""
    if device == "cuda":
        import torch

        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    synchronize(device)
    return time.perf_counter() - t0


def time_kernel(
    fn: Callable[[], Any],
    *,
    device: str,
    repeats: int,
    warmup: int = 2,
    min_repeat_s: float = 0.02,
    should_stop: StopCheck | None = None,
) -> Timing:
    """Time ``fn`` over ``repeats`` repeats after ``warmup`` untimed calls.

    Each repeat runs ``fn`` enough times to last at least ``min_repeat_s``, so that launch latency and
    timer resolution stay small against the measured work; the count comes from one calibration call
    after the warm-up.

    Args:
        fn: The kernel (one call = one unit of work).
        device: ``cpu``, ``cuda`` or ``mps`` (picks the timer).
        repeats: Timed repeats (the statistics' n).
        warmup: Untimed calls before calibration.
        min_repeat_s: Minimum duration of a repeat.
        should_stop: Checked between repeats; True raises :class:`BenchmarkStopped`.

    Returns:
        The timings.

    Raises:
        BenchmarkStopped: When ``should_stop`` turned true.
        ValueError: When ``repeats`` is below 1.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    one = max(_timed_block(fn, 1, device), 1e-9)
    inner = max(1, min(MAX_INNER, math.ceil(min_repeat_s / one)))
    seconds: list[float] = []
    for _ in range(repeats):
        if should_stop is not None and should_stop():
            raise BenchmarkStopped("stopped between repeats")
        seconds.append(max(_timed_block(fn, inner, device), 1e-12))
    return Timing(seconds=seconds, inner=inner, timer="cuda_events" if device == "cuda" else "perf_counter")
