"""Apple silicon GPUs from ``system_profiler SPDisplaysDataType -json`` (live or recorded).

The GPU of an Apple chip shares the system's unified memory, so its memory is the host's RAM; the
report itself carries no memory size for it.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

from common.protocol import GpuInfo

from .values import clean

#: system_profiler takes ~0.3-1 s for the display data type alone.
SYSTEM_PROFILER_TIMEOUT_S = 1.5


def _metal_family(entry: dict[str, Any]) -> str | None:
    """``spdisplays_mtlgpufamilyapple7`` -> ``apple7`` (the Metal GPU family)."""
    family = clean(str(entry.get("spdisplays_metalfamily", "")))
    if family is None:
        return None
    return family.removeprefix("spdisplays_mtlgpufamily") or None


def metal_support(entry: dict[str, Any]) -> str | None:
    """Metal version a display entry supports (``Metal 3``), where the report says so.

    Args:
        entry: One item of ``SPDisplaysDataType``.

    Returns:
        ``Metal 3`` style text, or None.
    """
    value = clean(str(entry.get("spdisplays_mtlgpufamilysupport", entry.get("spdisplays_metal", ""))))
    if value is None:
        return None
    value = value.removeprefix("spdisplays_")
    return value.replace("metal", "Metal ").replace("  ", " ").strip() if value.startswith("metal") else value


def parse_system_profiler_json(
    text: str | bytes | dict[str, Any], unified_memory_bytes: int | None = None
) -> list[GpuInfo]:
    """Parse ``system_profiler SPDisplaysDataType -json``.

    Args:
        text: The JSON text (or the decoded object).
        unified_memory_bytes: System memory of the host the report comes from (None when unknown,
            e.g. for a recorded file).

    Returns:
        One :class:`GpuInfo` per GPU entry. Apple GPUs are named after the chip and their core count
        (``Apple M1 (7-core GPU)``: M1 ships with 7 and 8 cores, which perform differently).
        Discrete GPUs of Intel Macs are listed too, with their reported VRAM.
    """
    data = text if isinstance(text, dict) else json.loads(text)
    entries = data.get("SPDisplaysDataType") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError("no SPDisplaysDataType list in the system_profiler JSON")
    gpus: list[GpuInfo] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        model = clean(str(entry.get("sppci_model", ""))) or clean(str(entry.get("_name", ""))) or "unknown"
        vendor_raw = str(entry.get("spdisplays_vendor", "")).lower()
        is_apple = "apple" in vendor_raw or model.startswith("Apple")
        cores = clean(str(entry.get("sppci_cores", "")))
        name = f"{model} ({cores}-core GPU)" if cores and cores.isdigit() else model
        memory = unified_memory_bytes if is_apple else _vram_bytes(entry)
        gpus.append(
            GpuInfo(
                index=len(gpus),
                name=name,
                vendor="apple" if is_apple else vendor_raw.removeprefix("sppci_vendor_") or "unknown",
                backend="mps" if is_apple else None,
                source="system_profiler",
                memory_total_bytes=memory,
                architecture=_metal_family(entry),
            )
        )
    return gpus


def _vram_bytes(entry: dict[str, Any]) -> int | None:
    """VRAM of a discrete GPU (``spdisplays_vram``: ``"8 GB"``)."""
    raw = clean(str(entry.get("spdisplays_vram", entry.get("_spdisplays_vram", ""))))
    if raw is None:
        return None
    parts = raw.split()
    if len(parts) == 2 and parts[0].isdigit():
        scale = {"MB": 2**20, "GB": 2**30}.get(parts[1].upper())
        return int(parts[0]) * scale if scale else None
    return None


def run_system_profiler(
    timeout_s: float = SYSTEM_PROFILER_TIMEOUT_S, runner: Callable[..., Any] = subprocess.run
) -> str:
    """Run ``system_profiler -json -detailLevel mini SPDisplaysDataType`` (macOS only).

    Args:
        timeout_s: Wall-clock limit.
        runner: ``subprocess.run`` (replaceable in tests).

    Returns:
        The JSON text.

    Raises:
        FileNotFoundError: Not macOS, or the tool is missing.
        RuntimeError: It failed or timed out.
    """
    exe = shutil.which("system_profiler")
    if platform.system() != "Darwin" or exe is None:
        raise FileNotFoundError("system_profiler exists on macOS only")
    cmd = [exe, "-json", "-detailLevel", "mini", "SPDisplaysDataType"]
    try:
        proc = runner(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"system_profiler did not answer within {timeout_s:g} s") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"system_profiler exited with {proc.returncode}")
    return proc.stdout
