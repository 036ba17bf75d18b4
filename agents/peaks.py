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
        None before the agent ran a hardware benchmark; otherwise each supported figure's median and unit,
        and each unsupported figure's reason.
    """
    bench = agent_benchmark(agent)
    if bench is None:
        return None
    values, unsupported = bench.flatten()
    units = {fig.metric_name: fig.unit for fig in bench.figures}
    figures = {name: {"value": value, "unit": units[name]} for name, value in values.items()}
    return {
        "measured_at": bench.finished_at.isoformat() if bench.finished_at else None,
        "quick": bench.quick,
        "figures": figures,
        "unsupported": unsupported,
    }
