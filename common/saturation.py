"""Where a load sweep saturates: its peak, its highest goodput within the objectives, and its knee.

A sweep's load points (each a :func:`common.loadmetrics.point_figures` dict) trace a throughput-delay curve: as
the offered load grows, throughput climbs and then flattens while latency keeps rising. Three points summarize it:

``peak``
    The point with the highest output throughput (tokens/s): what the hardware can deliver when nobody waits
    for an answer.
``max_goodput``
    Among the points that meet the service level objectives (``slo_met``), the one with the highest goodput
    (requests/s that met every target, as ``vllm bench serve --goodput`` counts them): the most useful load the
    deployment carries while its users are still served well. None without objectives, or when no point meets
    them.
``knee``
    The point that maximizes Kleinrock's *power*, throughput divided by delay (here output tokens/s over the
    median end-to-end latency). Power rises while extra load buys throughput faster than it costs latency and
    falls once queueing dominates; its maximum is the classic knee of a throughput-delay curve, the operating
    point that balances the two (L. Kleinrock, "Power and deterministic rules of thumb for probabilistic problems
    in computer communications", ICC 1979). It needs no objectives, so every sweep has one.

Ties go to the earliest point of the sweep. Pure Python: the server and the agent use it alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

#: The sweep axes a load spec may move along (``LoadSpec.mode``).
MODES = ("concurrency", "request_rate")


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (absent figures, NaN, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def point_load(figures: dict[str, Any], mode: str) -> int | float | str | None:
    """The load a point was run at: its concurrency, or its request rate (``"inf"`` for all at once).

    Args:
        figures: The point's figures.
        mode: ``concurrency`` or ``request_rate``.

    Returns:
        The load value (None when the point does not say).
    """
    return figures.get("concurrency") if mode == "concurrency" else figures.get("request_rate")


def _best(
    figures: Sequence[dict[str, Any]], score: Callable[[dict[str, Any]], float | None]
) -> dict[str, Any] | None:
    """The point with the highest finite score (the earliest on ties), or None when no point has one."""
    best: dict[str, Any] | None = None
    best_score = -math.inf
    for point in figures:
        value = score(point)
        if value is not None and value > best_score:
            best, best_score = point, value
    return best


def _output_throughput(point: dict[str, Any]) -> float | None:
    """Output tokens/s of a point that delivered some (a point where everything failed has no peak)."""
    value = _number(point.get("output_throughput"))
    return value if value is not None and value > 0 else None


def _e2e_median(point: dict[str, Any]) -> float | None:
    """Median end-to-end latency of a point, in seconds, when it is positive."""
    e2e = point.get("e2e_s")
    value = _number(e2e.get("median")) if isinstance(e2e, dict) else None
    return value if value is not None and value > 0 else None


def kleinrock_power(point: dict[str, Any]) -> float | None:
    """Kleinrock's power of a point: output throughput (tokens/s) over median end-to-end latency (s).

    Args:
        point: The point's figures.

    Returns:
        The power, or None when the point has no throughput or no latency.
    """
    throughput, latency = _output_throughput(point), _e2e_median(point)
    if throughput is None or latency is None:
        return None
    return throughput / latency


def _goodput_within_slo(point: dict[str, Any]) -> float | None:
    """Goodput of a point that meets the objectives (None for the others)."""
    if point.get("slo_met") is not True:
        return None
    return _number(point.get("goodput"))


def summarize_sweep(figures: Sequence[dict[str, Any]], mode: str) -> dict[str, dict[str, Any] | None]:
    """The peak, the highest goodput within the objectives, and the knee of a sweep (see the module).

    Args:
        figures: The points' figures (:func:`common.loadmetrics.point_figures`), in sweep order.
        mode: ``concurrency`` or ``request_rate``: which figure is each point's ``load``.

    Returns:
        ``{"peak": {index, load, request_throughput, output_throughput} | None,
        "max_goodput": {index, load, goodput, output_throughput, output_tokens_per_dollar,
        output_tokens_per_joule} | None, "knee": {index, load, output_throughput, e2e_median_s} | None}``.

    Raises:
        ValueError: When ``mode`` is not a sweep axis.
    """
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    peak = _best(figures, _output_throughput)
    best_goodput = _best(figures, _goodput_within_slo)
    knee = _best(figures, kleinrock_power)
    return {
        "peak": None if peak is None else {
            "index": peak.get("index"),
            "load": point_load(peak, mode),
            "request_throughput": peak.get("request_throughput"),
            "output_throughput": peak.get("output_throughput"),
        },
        "max_goodput": None if best_goodput is None else {
            "index": best_goodput.get("index"),
            "load": point_load(best_goodput, mode),
            "goodput": best_goodput.get("goodput"),
            "output_throughput": best_goodput.get("output_throughput"),
            "output_tokens_per_dollar": best_goodput.get("output_tokens_per_dollar"),
            "output_tokens_per_joule": best_goodput.get("output_tokens_per_joule"),
        },
        "knee": None if knee is None else {
            "index": knee.get("index"),
            "load": point_load(knee, mode),
            "output_throughput": knee.get("output_throughput"),
            "e2e_median_s": _e2e_median(knee),
        },
    }
