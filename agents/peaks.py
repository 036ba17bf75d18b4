"""An agent's measured peaks: the latest hardware benchmark job it completed, as stored with that job's result."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from agents.models import Agent
from common.protocol import HardwareBenchmarkResult


def agent_benchmark(agent: Agent | None) -> HardwareBenchmarkResult | None:
    """The agent's latest hardware benchmark (from its latest completed ``hardware_benchmark`` job), or None."""
    stored = agent.latest_benchmark if agent is not None else None
    raw = stored.benchmark if stored is not None else None
    if not raw:
        return None
    try:
        return HardwareBenchmarkResult.model_validate(raw)
    except ValidationError:
        return None


def agent_peaks(agent: Agent) -> dict[str, Any] | None:
    """The agent's measured peaks for lists and details: ``{"measured_at", "quick", "figures": {...}}``.

    Args:
        agent: The agent.

    Returns:
        None before the agent ran a hardware benchmark; otherwise each supported figure's peak (its best repeat,
        best-of-N as STREAM reports it), unit, and the mean, coefficient of variation and count of its repeats;
        and each unsupported figure's reason.
    """
    bench = agent_benchmark(agent)
    if bench is None:
        return None
    figures: dict[str, dict[str, Any]] = {}
    unsupported: dict[str, str] = {}
    for fig in bench.figures:
        peak = fig.peak if fig.supported else None
        if peak is None:
            unsupported[fig.metric_name] = fig.reason or "not measured"
            continue
        st = fig.statistics
        figures[fig.metric_name] = {
            "value": peak,
            "unit": fig.unit,
            "mean": st.mean if st else None,
            "cv": st.cv if st else None,
            "n": st.n if st else None,
        }
    return {
        "measured_at": bench.finished_at.isoformat() if bench.finished_at else None,
        "quick": bench.quick,
        "figures": figures,
        "unsupported": unsupported,
    }
