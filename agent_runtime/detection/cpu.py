"""CPU detection: model, vendor, cores, frequency and ISA features.

py-cpuinfo's ``get_cpu_info()`` takes about 1.1 s on a 2-core x86 host because it re-runs itself in
a subprocess to execute CPUID safely; that alone would spend most of the agent's 2 s detection
budget. On Linux the same facts are in ``/proc/cpuinfo`` (the kernel's decoded CPUID flags, or the
``Features`` line on ARM), read in well under a millisecond, so that is the first source. Elsewhere
(macOS, Windows) or when ``/proc/cpuinfo`` lacks a model name (many ARM boards), py-cpuinfo runs,
and its result is cached on disk under the agent's data dir keyed by the boot time: the CPU cannot
change without a reboot, so the slow call happens once per boot.
"""

from __future__ import annotations

import contextlib
import json
import platform
import re
from pathlib import Path
from typing import Any

from common.files import atomic_write_json
from common.protocol import CpuInfo

#: ISA extensions worth advertising, as (feature name, flag names that mean it). x86 flags follow
#: Linux's spelling; ARM ``Features`` use ``asimd`` for NEON, and py-cpuinfo reports ``neon``.
NOTABLE_ISA_FEATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sse4_2", ("sse4_2",)),
    ("avx", ("avx",)),
    ("avx2", ("avx2",)),
    ("fma", ("fma",)),
    ("f16c", ("f16c",)),
    ("avx_vnni", ("avx_vnni",)),
    ("avx512f", ("avx512f",)),
    ("avx512bw", ("avx512bw",)),
    ("avx512_vnni", ("avx512_vnni", "avx512vnni")),
    ("avx512_bf16", ("avx512_bf16",)),
    ("avx512_fp16", ("avx512_fp16",)),
    ("amx_tile", ("amx_tile",)),
    ("amx_bf16", ("amx_bf16",)),
    ("amx_int8", ("amx_int8",)),
    ("amx_fp16", ("amx_fp16",)),
    ("neon", ("neon", "asimd")),
    ("asimdhp", ("asimdhp",)),
    ("asimddp", ("asimddp", "dotprod")),
    ("i8mm", ("i8mm",)),
    ("bf16", ("bf16",)),
    ("sve", ("sve",)),
    ("sve2", ("sve2",)),
    ("sme", ("sme",)),
)

_CACHE_FILE = "cpuinfo-cache.json"


def isa_features(flags: list[str] | set[str], architecture: str = "") -> list[str]:
    """Notable ISA features among raw CPU flags.

    Args:
        flags: Raw flags (``/proc/cpuinfo`` ``flags``/``Features`` or py-cpuinfo ``flags``).
        architecture: Machine architecture; on ``arm64`` (Apple silicon) NEON is architectural and
            listed even though macOS reports no flags.

    Returns:
        Feature names in :data:`NOTABLE_ISA_FEATURES` order.
    """
    present = {f.lower() for f in flags}
    found = [name for name, aliases in NOTABLE_ISA_FEATURES if present.intersection(aliases)]
    if architecture.lower() in {"arm64", "aarch64"} and "neon" not in found:
        found.append("neon")  # ARMv8-A mandates Advanced SIMD
    return found


def parse_proc_cpuinfo(text: str) -> dict[str, Any]:
    """Extract model, vendor, flags and frequency from ``/proc/cpuinfo``.

    Args:
        text: File contents.

    Returns:
        ``model``, ``vendor``, ``flags`` and ``mhz`` where present (first processor block, plus the
        board ``Model`` line that Raspberry Pi kernels print at the end).
    """
    info: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "model name" and "model" not in info:
            info["model"] = value
        elif key == "vendor_id" and "vendor" not in info:
            info["vendor"] = value
        elif key in {"flags", "features"} and "flags" not in info:
            info["flags"] = value.split()
        elif key == "cpu mhz" and "mhz" not in info:
            with contextlib.suppress(ValueError):
                info["mhz"] = float(value)
        elif key in {"hardware", "model"} and value and not value.isdigit():
            # Raspberry Pi / SoC boards: "Model : Raspberry Pi 4 Model B Rev 1.4", "Hardware : BCM2835".
            info.setdefault("board", value)
        elif key == "cpu implementer" and "vendor" not in info:
            info["vendor"] = _ARM_IMPLEMENTERS.get(value.lower(), f"ARM implementer {value}")
    return info


#: ``CPU implementer`` codes of /proc/cpuinfo on ARM (Arm ARM, MIDR_EL1).
_ARM_IMPLEMENTERS = {
    "0x41": "ARM",
    "0x42": "Broadcom",
    "0x43": "Cavium",
    "0x46": "Fujitsu",
    "0x48": "HiSilicon",
    "0x4e": "NVIDIA",
    "0x50": "APM",
    "0x51": "Qualcomm",
    "0x61": "Apple",
    "0xc0": "Ampere",
}


def _boot_key() -> str:
    """Identifier of the current boot (Linux boot_id, else psutil's boot time)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        import psutil

        return f"boot-{int(psutil.boot_time())}"


def _py_cpuinfo(data_dir: Path | None) -> dict[str, Any]:
    """py-cpuinfo's answer, cached under ``data_dir`` for the current boot."""
    key = _boot_key()
    cache = Path(data_dir) / _CACHE_FILE if data_dir is not None else None
    if cache is not None:
        try:
            cached = json.loads(cache.read_text(encoding="utf-8"))
            if cached.get("boot") == key:
                return dict(cached["info"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    import cpuinfo

    raw = cpuinfo.get_cpu_info()
    advertised = raw.get("hz_advertised")  # (hz, precision) when known
    info = {
        "model": raw.get("brand_raw") or None,
        "vendor": raw.get("vendor_id_raw") or None,
        "flags": list(raw.get("flags") or []),
        "mhz": advertised[0] / 1e6 if advertised and advertised[0] else None,
    }
    if cache is not None:
        # A read-only data dir costs a slower next detection, nothing else.
        with contextlib.suppress(OSError):
            atomic_write_json(cache, {"boot": key, "info": info})
    return info


def detect_cpu(data_dir: Path | None = None, proc_cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """Describe the host CPU.

    Args:
        data_dir: Agent data dir for the py-cpuinfo cache (None: no cache).
        proc_cpuinfo: Location of ``/proc/cpuinfo`` (replaceable in tests).

    Returns:
        The CPU description.
    """
    import psutil

    arch = platform.machine()
    info: dict[str, Any] = {}
    with contextlib.suppress(OSError):  # no /proc/cpuinfo: not Linux
        info = parse_proc_cpuinfo(proc_cpuinfo.read_text(errors="replace"))
    if not info.get("model"):
        fallback = _py_cpuinfo(data_dir)
        info = {**fallback, **{k: v for k, v in info.items() if v}}
        if not info.get("model"):
            info["model"] = info.get("board") or platform.processor() or "unknown"
    flags = sorted(set(info.get("flags") or []))
    freq_now = freq_max = None
    try:
        freq = psutil.cpu_freq()
        if freq is not None:
            freq_now = float(freq.current) or None
            freq_max = float(freq.max) or None
    except (OSError, NotImplementedError, AttributeError):
        pass  # psutil has no frequency source on some VMs and ARM boards
    return CpuInfo(
        model=re.sub(r"\s+", " ", str(info.get("model") or "unknown")).strip(),
        vendor=info.get("vendor"),
        architecture=arch,
        physical_cores=psutil.cpu_count(logical=False),
        logical_cores=psutil.cpu_count(logical=True),
        frequency_mhz=freq_now or info.get("mhz"),
        max_frequency_mhz=freq_max,
        flags=flags,
        isa_features=isa_features(flags, arch),
    )
