"""Websocket fan-out: one place that sends state changes to Channels groups, after the transaction commits.

Each app registers, once at start-up, how to load, address and serialize its objects for an event name
(:func:`register`); writes anywhere then announce a change with :func:`emit` and an id, without importing the
serializers (which sit above the models). Payloads come from the same serializers as the REST API, so a
websocket client and a polling client see identical objects (DESIGN section 3, flow 7).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import close_old_connections, transaction
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


def _message(event: str, object_id: Any) -> tuple[list[str], dict[str, Any]] | None:
    """The groups and message of an event for the object's committed state (None: nothing to send)."""
    kind = _KINDS.get(event)
    if kind is None:
        return None
    obj = kind.load(object_id)
    if obj is None:
        return None
    return kind.groups(obj), {"type": "ruckus.event", "event": event, "data": payload(event, obj)}


async def _send_all(layer: Any, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Send messages to their groups in order (a broken layer is only logged)."""
    for group, message in messages:
        try:
            await layer.group_send(group, message)
        except Exception:  # the change is committed; losing a push is recoverable by polling
            log.warning("event_send_failed", group=group, event_name=message["event"], exc_info=True)


def send_now(event: str, object_id: Any) -> None:
    """Build and send an event for the object's current committed state (a broken layer is only logged).

    Args:
        event: A registered event name.
        object_id: The object's id.
    """
    layer = get_channel_layer()
    built = _message(event, object_id) if layer is not None else None
    if built is None:
        return
    groups, message = built
    async_to_sync(_send_all)(layer, [(group, message) for group in groups])


class Publisher:
    """Sends events from a thread of its own, collapsing repeats of an object that is still waiting to be sent.

    ``async_to_sync`` outside an event loop (the scheduler, management commands) makes a new thread, event loop and
    Redis connection for every call: at dispatch rates that cost more than the dispatch. This thread keeps one
    loop and its connections, and the writer's thread only queues ``(event, id)``. Under load, several changes
    of one job before its event goes out become one event with the latest committed state (what a websocket
    client would see anyway), in the order the objects first changed.

    Used with a channel layer that can be reached from any event loop (Redis); the in-memory layer (one process,
    tests) keeps :func:`send_now`.
    """

    #: Seconds the process waits at exit for queued events to go out.
    FLUSH_AT_EXIT_S = 5.0

    def __init__(self) -> None:
        self._pending: OrderedDict[tuple[str, Any], None] = OrderedDict()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def enqueue(self, event: str, object_id: Any) -> None:
        """Queue an event (a repeat of a still-queued one is dropped: the one queued sends the latest state)."""
        with self._wake:
            self._pending[(event, object_id)] = None
            self._idle.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ruckus-events", daemon=True)
                self._thread.start()
                atexit.register(self.flush, self.FLUSH_AT_EXIT_S)
            self._wake.notify()

    def flush(self, timeout: float) -> bool:
        """Wait until every queued event has been sent.

        Args:
            timeout: Seconds to wait at most.

        Returns:
            True when the queue is empty.
        """
        return self._idle.wait(timeout)

    def _take(self) -> list[tuple[str, Any]]:
        """Everything queued now (waits for the first item)."""
        with self._wake:
            while not self._pending:
                self._idle.set()
                self._wake.wait()
            batch = list(self._pending)
            self._pending.clear()
            return batch

    def _run(self) -> None:
        """The publisher thread: build each queued event from the database, then send the batch."""
        loop = asyncio.new_event_loop()
        while True:
            batch = self._take()
            messages: list[tuple[str, dict[str, Any]]] = []
            try:
                for event, object_id in batch:
                    built = _message(event, object_id)
                    if built is not None:
                        messages += [(group, built[1]) for group in built[0]]
            except Exception:  # a failed read loses this batch's pushes; clients still poll
                log.warning("event_build_failed", events=len(batch), exc_info=True)
            finally:
                close_old_connections()  # this thread's connection goes back (to the pool) between batches
            layer = get_channel_layer()
            if messages and layer is not None:
                loop.run_until_complete(_send_all(layer, messages))
            with self._wake:
                if not self._pending:
                    self._idle.set()


publisher = Publisher()


def _publish(event: str, object_id: Any) -> None:
    """Send an event now, through the publisher thread when the channel layer allows it."""
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer) or not settings.RUCKUS_EVENTS_IN_BACKGROUND:
        send_now(event, object_id)
    else:
        publisher.enqueue(event, object_id)


def emit(event: str, object_id: Any) -> None:
    """Schedule an event for after the current transaction commits (the payload is the committed state).

    Args:
        event: A registered event name.
        object_id: The object's id.
    """
    transaction.on_commit(lambda: _publish(event, object_id))
