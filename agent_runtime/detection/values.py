"""Parsing of the loosely formatted values that GPU tools print.

``nvidia-smi`` and ``rocm-smi`` write numbers with their unit inside the value (``81559 MiB``,
``300.00 W``, ``(1402Mhz)``) and placeholders where a board does not support a field (``N/A``,
``[N/A]``, ``[Not Supported]``, ``Not Found``, ``N/A (Secondary die)``, ``Requested functionality has
been deprecated``). Every parser in this package goes through these helpers so that a placeholder
becomes ``None`` and never a zero.
"""

from __future__ import annotations

import re

_NUMBER_RE = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")

#: Binary and decimal size units as the tools print them (nvidia-smi uses MiB, some exporters MB).
_SIZE_UNITS: dict[str, int] = {
    "b": 1,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
}
_SIZE_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*([KMGT]?i?B)\s*$", re.IGNORECASE)


def clean(value: str | None) -> str | None:
    """Strip a textual value and turn the tools' placeholders into None.

    Args:
        value: Raw text, possibly None.

    Returns:
        The stripped text, or None when it is empty or a "not available" placeholder.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    lowered = text.lower().strip("[]() ")
    if (
        lowered in {"n/a", "na", "none", "not found", "not supported", "unknown", "unknown error"}
        or lowered.startswith("n/a ")
        or lowered.startswith("requested functionality has been deprecated")
        or lowered.startswith("insufficient permissions")
    ):
        return None
    return text


def parse_float(value: str | None) -> float | None:
    """Read the first number of a value such as ``300.00 W``, ``24 C`` or ``(1402Mhz)``.

    Args:
        value: Raw text.

    Returns:
        The number, or None for placeholders and text without a number.
    """
    text = clean(value)
    if text is None:
        return None
    match = _NUMBER_RE.search(text)
    return float(match.group()) if match else None


def parse_bytes(value: str | None, default_unit: str = "b") -> int | None:
    """Read a size such as ``81559 MiB`` into bytes.

    Args:
        value: Raw text.
        default_unit: Unit assumed when the value carries none (e.g. ``mib`` for a CSV column whose
            header says ``[MiB]`` under ``nounits``).

    Returns:
        Bytes, or None for placeholders.
    """
    text = clean(value)
    if text is None:
        return None
    match = _SIZE_RE.match(text)
    if match:
        unit = _SIZE_UNITS.get(match.group(2).lower())
        if unit is not None:
            return int(float(match.group(1)) * unit)
    number = parse_float(text)
    if number is None:
        return None
    return int(number * _SIZE_UNITS.get(default_unit.lower(), 1))
