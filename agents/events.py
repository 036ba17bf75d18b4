"""The agents app's websocket event: ``agent.updated`` with the REST API's agent payload, to the agents group."""

from __future__ import annotations

from agents.models import Agent
from agents.serializers import AgentSerializer
from core import events


def register_events() -> None:
    """Declare how ``agent.updated`` is built (called once from the app's ``ready``)."""
    events.register(
        events.AGENT_UPDATED,
        load=lambda agent_id: Agent.objects.select_related("latest_benchmark").filter(pk=agent_id).first(),
        groups=lambda agent: [events.AGENTS_GROUP],
        serialize=lambda agent: AgentSerializer(agent).data,
    )
