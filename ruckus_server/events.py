"""Websocket fan-out: one place that sends state changes to Channels groups, after the transaction commits.

Payloads are produced with the same serializers as the REST API, so a websocket client and a polling client
see identical objects (DESIGN section 3, flow 7).
"""

from __future__ import annotations

from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = structlog.get_logger(__name__)

AGENTS_GROUP = "agents"


def experiment_group(experiment_id: int) -> str:
    """Channels group of one experiment (its own changes and its jobs')."""
    return f"experiment-{experiment_id}"


def job_group(job_id: int) -> str:
    """Channels group of one job."""
    return f"job-{job_id}"


def json_safe(data: Any) -> Any:
    """Render serializer data exactly as the REST API does (UUIDs, datetimes, decimals as JSON strings).

    Channel layers (msgpack over Redis) and websockets carry plain JSON types only.
    """
    import json

    from rest_framework.renderers import JSONRenderer

    return json.loads(JSONRenderer().render(data))


def _send(groups: list[str], event_type: str, data: dict[str, Any]) -> None:
    """Send one event to several groups; a broken channel layer must never break a state change."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "ruckus.event", "event": event_type, "data": json_safe(data)}
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # the change is committed; losing a push is recoverable by polling
            log.warning("event_send_failed", group=group, event=event_type, exc_info=True)


def emit_job_updated(job_id: int) -> None:
    """Schedule a ``job.updated`` event for after the current transaction commits.

    Args:
        job_id: The job's id (re-read at send time so the payload is the committed state).
    """

    def send() -> None:
        from experiments.models import Job
        from experiments.serializers import JobSerializer

        job = Job.objects.select_related("agent", "experiment").filter(pk=job_id).first()
        if job is not None:
            data = JobSerializer(job).data
            _send([experiment_group(job.experiment_id), job_group(job.pk)], "job.updated", dict(data))

    transaction.on_commit(send)


def emit_experiment_updated(experiment_id: int) -> None:
    """Schedule an ``experiment.updated`` event for after the current transaction commits.

    Args:
        experiment_id: The experiment's id.
    """

    def send() -> None:
        from experiments.models import Experiment
        from experiments.serializers import ExperimentSerializer

        exp = Experiment.objects.filter(pk=experiment_id).first()
        if exp is not None:
            _send([experiment_group(exp.pk)], "experiment.updated", dict(ExperimentSerializer(exp).data))

    transaction.on_commit(send)


def emit_agent_updated(agent_id: Any) -> None:
    """Schedule an ``agent.updated`` event for after the current transaction commits.

    Args:
        agent_id: The agent's id.
    """

    def send() -> None:
        from agents.models import Agent
        from agents.serializers import AgentSerializer

        agent = Agent.objects.filter(pk=agent_id).first()
        if agent is not None:
            _send([AGENTS_GROUP], "agent.updated", dict(AgentSerializer(agent).data))

    transaction.on_commit(send)
