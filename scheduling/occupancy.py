"""Which agents are busy: an agent is idle once none of its attempts is unfinished."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef

from agents.models import Agent
from common.statuses import ATTEMPT_TERMINAL_STATUSES, AgentActivity
from core import events
from experiments.models import JobAttempt


def free_agent(agent_id: Any) -> bool:
    """Mark an agent idle once it has no unfinished attempt.

    Args:
        agent_id: The agent (None: nothing to do).

    Returns:
        True when the agent went from busy to idle.
    """
    if agent_id is None:
        return False
    # One statement: the check for an unfinished attempt is part of the update (every result callback ends here).
    unfinished = JobAttempt.objects.filter(agent_id=OuterRef("pk")).exclude(status__in=ATTEMPT_TERMINAL_STATUSES)
    updated = (
        Agent.objects.filter(pk=agent_id, activity=AgentActivity.BUSY)
        .exclude(Exists(unfinished))
        .update(activity=AgentActivity.IDLE)
    )
    if updated:
        events.emit(events.AGENT_UPDATED, agent_id)
    return bool(updated)


def occupy_agent(agent: Agent) -> None:
    """Mark an agent busy (it was just given an attempt).

    Args:
        agent: The agent (locked by the caller).
    """
    agent.activity = AgentActivity.BUSY
    agent.save(update_fields=["activity", "updated_at"])
    events.emit(events.AGENT_UPDATED, agent.pk)
