"""Websocket fan-out: one place that sends state changes to Channels groups, after the transaction commits.

Each app registers, once at start-up, how to load, address and serialize its objects for an event name
(:func:`register`); writes anywhere then announce a change with :func:`emit` and an id, without importing the
serializers (which sit above the models). Payloads come from the same serializers as the REST API, so a
websocket client and a polling client see identical objects (DESIGN section 3, flow 7).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from rest_framework.renderers import JSONRenderer

log = structlog.get_logger(__name__)

AGENTS_GROUP = "agents"
EXPERIMENT_UPDATED = "experiment.updated"
JOB_UPDATED = "job.updated"
AGENT_UPDATED = "agent.updated"


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
    return json.loads(JSONRenderer().render(data))


@dataclass(frozen=True)
class EventKind:
    """How to turn an object id into an event.

    Attributes:
        load: Reads the committed object (None when it is gone).
        groups: The Channels groups that receive the event.
        serialize: The REST API's representation of the object.
    """

    load: Callable[[Any], Any]
    groups: Callable[[Any], list[str]]
    serialize: Callable[[Any], dict[str, Any]]


_KINDS: dict[str, EventKind] = {}


def register(event: str, *, load: Callable[[Any], Any], groups: Callable[[Any], list[str]],
             serialize: Callable[[Any], dict[str, Any]]) -> None:
    """Declare how an event is built (each app calls this from its ``AppConfig.ready``).

    Args:
        event: Event name (``job.updated`` ...).
        load: Object id -> object or None.
        groups: Object -> Channels groups.
        serialize: Object -> payload.
    """
    _KINDS[event] = EventKind(load=load, groups=groups, serialize=serialize)


def payload(event: str, obj: Any) -> dict[str, Any]:
    """The JSON-safe payload of an event for an object (what subscribers receive as ``data``).

    Args:
        event: A registered event name.
        obj: The object.

    Returns:
        The payload.
    """
    return json_safe(_KINDS[event].serialize(obj))


def send_now(event: str, object_id: Any) -> None:
    """Build and send an event for the object's current committed state (a broken layer is only logged).

    Args:
        event: A registered event name.
        object_id: The object's id.
    """
    layer = get_channel_layer()
    kind = _KINDS.get(event)
    if layer is None or kind is None:
        return
    obj = kind.load(object_id)
    if obj is None:
        return
    message = {"type": "ruckus.event", "event": event, "data": payload(event, obj)}
    for group in kind.groups(obj):
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # the change is committed; losing a push is recoverable by polling
            log.warning("event_send_failed", group=group, event_name=event, exc_info=True)


def emit(event: str, object_id: Any) -> None:
    """Schedule an event for after the current transaction commits (the payload is the committed state).

    Args:
        event: A registered event name.
        object_id: The object's id.
    """
    transaction.on_commit(lambda: send_now(event, object_id))
