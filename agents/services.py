"""Writes for agents: status changes with a logged reason, deactivation, removal."""

from __future__ import annotations

import structlog
from django.db import transaction

from agents.models import Agent, AgentStatus
from ruckus_server.events import emit_agent_updated

log = structlog.get_logger(__name__)


def agent_set_status(agent: Agent, status: str, *, reason: str) -> Agent:
    """Change an agent's status, recording the transition and notifying websocket clients.

    Args:
        agent: The agent.
        status: New status.
        reason: Why.

    Returns:
        The agent.
    """
    from experiments.services import agent_log_transition

    previous = agent.status
    if previous == status:
        return agent
    agent.status = status
    agent.status_reason = reason[:500]
    agent.save(update_fields=["status", "status_reason", "updated_at"])
    agent_log_transition(agent, previous, status, reason)
    emit_agent_updated(agent.pk)
    log.info("agent_status", agent_id=str(agent.pk), previous=previous, status=status, reason=reason)
    return agent


@transaction.atomic
def agent_deactivate(agent_id: object, *, reason: str = "deactivated by operator") -> Agent:
    """Deactivate an agent: no new work is placed on it; it stays listed with its history.

    Args:
        agent_id: The agent.
        reason: Why.

    Returns:
        The agent.
    """
    agent = Agent.objects.select_for_update().get(pk=agent_id)
    return agent_set_status(agent, AgentStatus.DEACTIVATED, reason=reason)


@transaction.atomic
def agent_activate(agent_id: object, *, reason: str = "reactivated by operator") -> Agent:
    """Undo a deactivation; the agent counts as offline until its next heartbeat.

    Args:
        agent_id: The agent.
        reason: Why.

    Returns:
        The agent.
    """
    agent = Agent.objects.select_for_update().get(pk=agent_id)
    if agent.status != AgentStatus.DEACTIVATED:
        return agent
    return agent_set_status(agent, AgentStatus.OFFLINE, reason=reason)
