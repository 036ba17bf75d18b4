"""Memory bandwidth: device-to-device copy, host<->device transfers, and CPU memory copy.

Bytes counted:

* ``d2d`` (device copy) and ``copy`` (CPU copy): bytes read **plus** bytes written, i.e. twice the
  tensor size per copy. This is how STREAM's Copy and the vendors' device-copy figures count, so an
  H100/H200 copy figure is comparable with its published DRAM bandwidth.
* ``h2d`` and ``d2h``: the bytes moved across the link once (the tensor size), as bus bandwidth is
  quoted; the host tensor is pinned so the copy is a single DMA transfer.
"""

from __future__ import annotations

from typing import Any

import psutil

from agent_runtime.hwbench.figures import BANDWIDTH, measured, unsupported
from agent_runtime.hwbench.timing import StopCheck, time_kernel
from common.protocol import BenchmarkFigure

UNIT = "GB/s"
#: Square fp32 tensor sides of the device copy, smallest first (512^2 = 1 MiB ... 16384^2 = 1 GiB).
D2D_SIDES = (512, 1024, 2048, 4096, 8192, 16384)
#: Largest side in quick mode (64 MiB per tensor: past the last-level cache of current GPUs).
D2D_QUICK_MAX_SIDE = 4096
#: Share of free device memory the two copy tensors may take.
DEVICE_MEMORY_SHARE = 0.25
#: CPU copy tensor size: quick / full. Both exceed the last-level cache of common server CPUs;
#: the full size also exceeds the 3D V-cache parts.
CPU_COPY_BYTES = {True: 64 * 2**20, False: 512 * 2**20}
#: Host<->device transfer size: quick / full.
TRANSFER_BYTES = {True: 64 * 2**20, False: 256 * 2**20}
#: Share of available host memory the CPU copy may take (source + destination).
HOST_MEMORY_SHARE = 0.25


def _min_repeat_s(quick: bool) -> float:
    return 0.02 if quick else 0.05


def cpu_copy(*, quick: bool, repeats: int, should_stop: StopCheck | None = None) -> BenchmarkFigure:
    """CPU memory bandwidth from a torch copy of a large fp32 tensor (bytes read + written).

    Args:
        quick: Use the smaller tensor.
        repeats: Timed repeats.
        should_stop: Stop check between repeats.

    Returns:
        ``bandwidth_gbps.cpu.copy``.
    """
    import torch

    nbytes = CPU_COPY_BYTES[quick]
    available = psutil.virtual_memory().available
    while nbytes > 8 * 2**20 and 2 * nbytes > available * HOST_MEMORY_SHARE:
        nbytes //= 2
    numel = nbytes // 4
    src = torch.ones(numel, dtype=torch.float32)
    dst = torch.empty_like(src)
    timing = time_kernel(
        lambda: dst.copy_(src),
        device="cpu",
        repeats=repeats,
        min_repeat_s=_min_repeat_s(quick),
        should_stop=should_stop,
    )
    moved = 2 * numel * 4
    return measured(
        BANDWIDTH,
        "cpu",
        "copy",
        UNIT,
        timing.rates(moved, 1e9),
        tensor_bytes=numel * 4,
        bytes_counted="read + written",
        bytes_per_call=moved,
        inner=timing.inner,
        timer=timing.timer,
        threads=torch.get_num_threads(),
    )


def d2d_sides(free_bytes: int | None, quick: bool) -> list[int]:
    """Sides of the square fp32 tensors the device copy uses, adapted to free memory.

    Args:
        free_bytes: Free device memory (None: unknown, assume only the smallest sizes fit).
        quick: Cap at :data:`D2D_QUICK_MAX_SIDE`.

    Returns:
        Sides in increasing order (at least the smallest).
    """
    budget = (free_bytes or 0) * DEVICE_MEMORY_SHARE
    cap = D2D_QUICK_MAX_SIDE if quick else D2D_SIDES[-1]
    sides = [n for n in D2D_SIDES if n <= cap and 2 * n * n * 4 <= budget]
    return sides or [D2D_SIDES[0]]


def device_copy(
    device: str, *, free_bytes: int | None, quick: bool, repeats: int, should_stop: StopCheck | None = None
) -> BenchmarkFigure:
    """Device-to-device copy bandwidth (bytes read + written), over sizes adapted to free memory.

    In full mode every size from 512^2 up to the largest that fits is timed and the figure is the
    largest size (the small ones run from cache and are kept in ``params["sweep"]``, best repeat of each,
    for context).

    Args:
        device: ``cuda`` or ``mps``.
        free_bytes: Free device memory.
        quick: Only the largest size up to 4096^2.
        repeats: Timed repeats.
        should_stop: Stop check between repeats.

    Returns:
        ``bandwidth_gbps.<device>.d2d``.
    """
    import torch

    sides = d2d_sides(free_bytes, quick)
    if quick:
        sides = sides[-1:]
    sweep: dict[str, float] = {}
    last: Any = None
    for side in sides:
        src = torch.ones((side, side), dtype=torch.float32, device=device)
        dst = torch.empty_like(src)
        timing = time_kernel(
            lambda s=src, d=dst: d.copy_(s),
            device=device,
            repeats=repeats,
            min_repeat_s=_min_repeat_s(quick),
            should_stop=should_stop,
        )
        rates = timing.rates(2 * src.numel() * 4, 1e9)
        sweep[f"{side}x{side}"] = max(rates)  # best of the repeats, like the figure itself
        last = (side, timing, rates)
        del src, dst
    side, timing, rates = last
    return measured(
        BANDWIDTH,
        device,
        "d2d",
        UNIT,
        rates,
        elements=side * side,
        shape=[side, side],
        dtype="float32",
        tensor_bytes=side * side * 4,
        bytes_counted="read + written",
        inner=timing.inner,
        timer=timing.timer,
        sweep=sweep,
    )


def transfers(
    device: str, *, free_bytes: int | None, quick: bool, repeats: int, should_stop: StopCheck | None = None
) -> list[BenchmarkFigure]:
    """Host-to-device and device-to-host bandwidth with a pinned host tensor (bytes moved once).

    Args:
        device: ``cuda`` or ``mps``.
        free_bytes: Free device memory.
        quick: Use the smaller transfer.
        repeats: Timed repeats.
        should_stop: Stop check between repeats.

    Returns:
        ``bandwidth_gbps.<device>.h2d`` and ``.d2h``.
    """
    import torch

    nbytes = TRANSFER_BYTES[quick]
    while nbytes > 2**20 and free_bytes is not None and nbytes > free_bytes * DEVICE_MEMORY_SHARE:
        nbytes //= 2
    numel = nbytes // 4
    # MPS shares the host's memory: there is nothing to pin, the copy stays within the same DRAM.
    pinned = device == "cuda"
    try:
        host = torch.ones(numel, dtype=torch.float32, pin_memory=pinned)
    except RuntimeError as exc:
        reason = f"cannot allocate pinned host memory: {exc}"
        return [unsupported(BANDWIDTH, device, kind, UNIT, reason) for kind in ("h2d", "d2h")]
    dev = torch.empty(numel, dtype=torch.float32, device=device)
    figures = []
    for kind, fn in (
        ("h2d", lambda: dev.copy_(host, non_blocking=pinned)),
        ("d2h", lambda: host.copy_(dev, non_blocking=pinned)),
    ):
        timing = time_kernel(
            fn, device=device, repeats=repeats, min_repeat_s=_min_repeat_s(quick), should_stop=should_stop
        )
        figures.append(
            measured(
                BANDWIDTH,
                device,
                kind,
                UNIT,
                timing.rates(nbytes, 1e9),
                tensor_bytes=nbytes,
                bytes_counted="moved once",
                pinned=pinned,
                inner=timing.inner,
                timer=timing.timer,
            )
        )
    return figures
