"""AMD GPUs from ``rocm-smi --json`` (live or recorded).

rocm-smi prints one object per card (``card0`` ...) plus ``system``; its keys are the human labels
of its text output and changed spelling between releases (``Card series``/``Card Series``,
``GPU ID``/``Device ID``), so every field is looked up under each known spelling.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

from common.protocol import GpuInfo

from .values import clean, parse_float

#: Wall-clock limit of a live rocm-smi call (it is a Python program: ~0.5 s to start).
ROCM_SMI_TIMEOUT_S = 1.5
#: Flags for the live probe: identity, VRAM, power, temperature, use, VBIOS, bus, driver.
ROCM_SMI_ARGS = (
    "--showproductname",
    "--showmeminfo",
    "vram",
    "--showpower",
    "--showmaxpower",
    "--showtemp",
    "--showuse",
    "--showvbios",
    "--showbus",
    "--showuniqueid",
    "--showdriverversion",
    "--json",
)

_NAME_KEYS = ("Card Series", "Card series", "Device Name", "Market Name", "Card SKU")
_CARD_RE = re.compile(r"^card(\d+)$")


def _field(card: dict[str, Any], *keys: str) -> str | None:
    """First non-placeholder value under one of ``keys``."""
    for key in keys:
        value = card.get(key)
        if value is not None:
            cleaned = clean(str(value))
            if cleaned is not None:
                return cleaned
    return None


def _int(value: str | None) -> int | None:
    number = parse_float(value)
    return int(number) if number is not None else None


def parse_rocm_smi_json(text: str | bytes | dict[str, Any]) -> list[GpuInfo]:
    """Parse ``rocm-smi ... --json`` output.

    Args:
        text: The JSON text (or the already decoded object).

    Returns:
        One :class:`GpuInfo` per ``cardN`` entry, ordered by N. An MI250 shows as two entries (one
        per graphics compute die), as rocm-smi and ROCm applications see it.

    Raises:
        ValueError: The text is not rocm-smi JSON.
    """
    data = text if isinstance(text, dict) else json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("rocm-smi JSON must be an object of cards")
    cards = sorted(
        ((int(m.group(1)), v) for k, v in data.items() if (m := _CARD_RE.match(k)) and isinstance(v, dict)),
        key=lambda item: item[0],
    )
    system = data.get("system") if isinstance(data.get("system"), dict) else {}
    driver = _field(system, "Driver version", "Driver Version")
    gpus: list[GpuInfo] = []
    for index, card in cards:
        total = _int(_field(card, "VRAM Total Memory (B)"))
        used = _int(_field(card, "VRAM Total Used Memory (B)"))
        gpus.append(
            GpuInfo(
                index=index,
                name=_field(card, *_NAME_KEYS) or "AMD GPU",
                vendor="amd",
                backend="rocm",
                source="rocm-smi",
                uuid=_field(card, "Unique ID", "GUID"),
                memory_total_bytes=total,
                memory_free_bytes=total - used if total is not None and used is not None else None,
                architecture=_field(card, "GFX Version"),
                driver_version=driver,
                power_limit_w=parse_float(_field(card, "Max Graphics Package Power (W)")),
                temperature_c=parse_float(
                    _field(card, "Temperature (Sensor edge) (C)", "Temperature (Sensor junction) (C)")
                ),
                utilization_pct=parse_float(_field(card, "GPU use (%)")),
                pci_bus_id=_field(card, "PCI Bus"),
            )
        )
    return gpus


def rocm_smi_vbios(text: str | bytes | dict[str, Any]) -> dict[int, str]:
    """VBIOS version of each card (``GpuInfo`` has no field for it; the CLI shows it).

    Args:
        text: rocm-smi JSON.

    Returns:
        Card index -> VBIOS version.
    """
    data = text if isinstance(text, dict) else json.loads(text)
    out: dict[int, str] = {}
    for key, card in data.items():
        match = _CARD_RE.match(key)
        if match and isinstance(card, dict):
            vbios = _field(card, "VBIOS version", "VBIOS Version")
            if vbios:
                out[int(match.group(1))] = vbios
    return out


def run_rocm_smi(timeout_s: float = ROCM_SMI_TIMEOUT_S, runner: Callable[..., Any] = subprocess.run) -> str:
    """Run rocm-smi with :data:`ROCM_SMI_ARGS` and return its JSON text.

    Args:
        timeout_s: Wall-clock limit.
        runner: ``subprocess.run`` (replaceable in tests).

    Returns:
        The JSON text.

    Raises:
        FileNotFoundError: rocm-smi is not on PATH.
        RuntimeError: It failed, timed out or printed no JSON.
    """
    exe = shutil.which("rocm-smi")
    if exe is None:
        raise FileNotFoundError("rocm-smi is not on PATH")
    try:
        proc = runner([exe, *ROCM_SMI_ARGS], capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"rocm-smi did not answer within {timeout_s:g} s") from exc
    # rocm-smi may print warnings before the JSON and exit non-zero when one flag is unsupported.
    out = proc.stdout or ""
    start = out.find("{")
    if start < 0:
        detail = (proc.stderr or out).strip().splitlines()
        raise RuntimeError(f"rocm-smi printed no JSON (exit {proc.returncode}): {detail[0] if detail else ''}")
    return out[start:]
