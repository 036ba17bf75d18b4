"""The ``/ws/events/`` websocket: clients subscribe to an experiment, a job or the agent list.

Protocol (JSON):
    client -> ``{"type": "subscribe", "experiment": ID}`` | ``{"type": "subscribe", "job": ID}`` |
    ``{"type": "subscribe", "agents": true}``; ``"unsubscribe"`` with the same shapes; ``{"type": "ping"}``.
    server -> ``{"type": "subscribed", ...}`` (then the object's current state, so nothing between a REST
    fetch and the subscription is missed), ``{"type": "job.updated" | "experiment.updated" | "agent.updated",
    "data": {...}}`` with the REST serializers' payloads, ``{"type": "error", "message": ...}``, ``pong``.
Without a cross-process channel layer (no ``REDIS_URL``: the in-memory layer of the embedded demo), changes made by
other processes (the scheduler's dispatches, lease sweeps and retries) cannot arrive as events; each connection
then reads its subscribed objects every :data:`POLL_INTERVAL_S` seconds and sends what changed since it last sent
them, so the UI stays live either way.
Unauthenticated connections are accepted and closed at once with code 4401, before any message is read. Closing
before accepting would be answered by the server (daphne) with a bare HTTP 403, which a browser reports as code
1006, indistinguishable from a network failure; 4401 lets the UI and the CLI say "not logged in" instead of
reconnecting blindly.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError

from agents.models import Agent
from core import roles
from core.events import (
    AGENT_UPDATED,
    AGENTS_GROUP,
    EXPERIMENT_UPDATED,
    JOB_UPDATED,
    experiment_group,
    job_group,
    payload,
)
from core.parsers import loads
from experiments.models import Experiment, Job

log = structlog.get_logger(__name__)

#: Close code for refused (unauthenticated) connections, in the 4000-4999 application range.
CLOSE_UNAUTHENTICATED = 4401

#: Largest id a Postgres ``bigint`` primary key can hold; larger ids would make the lookup itself fail.
MAX_ID = 2**63 - 1

_TARGET_KEYS = ("experiment", "job", "agents")

#: Seconds between two reads of the subscribed objects when the channel layer is in-memory (see above).
POLL_INTERVAL_S = 1.0


def layer_spans_processes() -> bool:
    """Whether the channel layer carries events between processes (Redis), so no polling is needed."""
    return "InMemoryChannelLayer" not in settings.CHANNEL_LAYERS["default"]["BACKEND"]


def parse_id(kind: str, value: Any) -> int | str:
    """Validate an experiment or job id from a client message.

    Args:
        kind: ``"experiment"`` or ``"job"`` (used in the error text).
        value: The id as sent: an integer, or a string of ASCII digits.

    Returns:
        The id, or an error text naming the problem.
    """
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    # bool is an int subclass: ``true`` is not an id.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        return f"{kind} must be a positive integer id"
    return value


def _state(kind: str, object_id: Any, *, with_jobs: bool = False) -> list[dict[str, Any]] | None:
    """Current state of the subscribed object(s) as events; None when the object does not exist.

    Args:
        kind: ``experiment``, ``job`` or ``agents``.
        object_id: The experiment's or job's id (ignored for agents).
        with_jobs: For an experiment, its jobs too (what its subscribers also receive events for).
    """
    if kind == "experiment":
        exp = Experiment.objects.select_related("owner").filter(pk=object_id).first()
        if exp is None:
            return None
        events = [{"type": EXPERIMENT_UPDATED, "data": payload(EXPERIMENT_UPDATED, exp)}]
        if with_jobs:
            jobs = Job.objects.select_related("agent", "experiment__owner").filter(experiment=exp).order_by("id")
            events += [{"type": JOB_UPDATED, "data": payload(JOB_UPDATED, j)} for j in jobs]
        return events
    if kind == "job":
        job = Job.objects.select_related("agent", "experiment__owner").filter(pk=object_id).first()
        return None if job is None else [{"type": JOB_UPDATED, "data": payload(JOB_UPDATED, job)}]
    agents = Agent.objects.select_related("latest_benchmark")
    return [{"type": AGENT_UPDATED, "data": payload(AGENT_UPDATED, a)} for a in agents]


_snapshot = database_sync_to_async(_state)


@database_sync_to_async
def _poll_state(targets: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Current state of every subscribed target (experiments with their jobs), as events."""
    events: list[dict[str, Any]] = []
    for kind, object_id in targets:
        events += _state(kind, object_id, with_jobs=True) or []
    return events


@database_sync_to_async
def _access(user: Any) -> dict[str, Any]:
    """What a connection's user may see and do: the view permissions and how ``can_manage`` is decided."""
    return {
        "experiment": user.has_perm(roles.VIEW_EXPERIMENTS),
        "job": user.has_perm(roles.VIEW_JOBS),
        "agents": user.has_perm(roles.VIEW_AGENTS),
        "manage_any": user.has_perm(roles.MANAGE_ANY_EXPERIMENT),
        "manage_own": user.has_perm(roles.CHANGE_EXPERIMENT),
        "username": user.get_username(),
    }


def _key(event: dict[str, Any]) -> tuple[str, Any]:
    """Identity of the object an event describes."""
    return event["type"], event["data"].get("id")


class EventsConsumer(AsyncJsonWebsocketConsumer):
    """Live state changes for authenticated users."""

    async def connect(self) -> None:
        """Accept authenticated users; refuse others with close code 4401 (see the module docstring)."""
        self.groups_joined: set[str] = set()
        #: Subscribed targets by group: what polling reads.
        self.targets: dict[str, tuple[str, Any]] = {}
        # What was last sent per object: a job event reaches both the experiment's and the job's group, and
        # polling reads what an event may already have carried; neither is sent twice.
        self.sent: dict[tuple[str, Any], dict[str, Any]] = {}
        self.poller: asyncio.Task[None] | None = None
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # Read once: a role change applies to connections opened after it (the UI reconnects on reload).
        self.access = await _access(user)
        if not layer_spans_processes():
            self.poller = asyncio.create_task(self._poll())

    async def disconnect(self, code: int) -> None:
        """Stop polling and leave every group."""
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _poll(self) -> None:
        """Send the subscribed objects' changes made by other processes (in-memory channel layer only)."""
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            if not self.targets:
                continue
            try:
                events = await _poll_state(list(self.targets.values()))
            except Exception as exc:  # a database hiccup must not end the connection; the next round retries
                log.warning("ws_poll_failed", error=str(exc))
                continue
            for event in events:
                await self._forward(event)

    def _personal(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as this user sees it: ``can_manage`` of experiments and jobs decided for the user.

        Events are built once for every subscriber, without a request, so the field is filled in here by the rule
        of :func:`core.roles.may_manage`, from the owner's name the payload carries.
        """
        if event["type"] not in (EXPERIMENT_UPDATED, JOB_UPDATED) or "can_manage" not in event["data"]:
            return event
        owner = event["data"].get("owner")
        allowed = self.access["manage_any"] or (
            owner is not None and owner == self.access["username"] and self.access["manage_own"]
        )
        return {**event, "data": {**event["data"], "can_manage": allowed}}

    async def _forward(self, event: dict[str, Any]) -> None:
        """Send an event unless the client already has exactly this state of the object."""
        event = self._personal(event)
        key = _key(event)
        if self.sent.get(key) == event["data"]:
            return
        self.sent[key] = event["data"]
        await self.send_json(event)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        """Decode JSON; malformed text, or text nested too deep for the parser, becomes a marker.

        The marker is handled in :meth:`receive_json`. Only the nesting is checked: nothing a client sends here
        is stored, and each field is checked where it is used.
        """
        try:
            return loads(text_data, storable=False)
        except ParseError as exc:
            return {"__invalid__": f"message is not valid JSON: {exc.detail}"}
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(map(str, errors))}" for field, errors in exc.detail.items())
            return {"__invalid__": f"message refused: {problems}"}

    async def _error(self, message: str) -> None:
        await self.send_json({"type": "error", "message": message})

    def _target(self, content: dict[str, Any]) -> tuple[str, Any, str] | str:
        """``(kind, id, group)`` of a (un)subscribe message, or an error text."""
        given = [key for key in _TARGET_KEYS if key in content]
        if len(given) != 1:
            return 'give exactly one of "experiment": ID, "job": ID or "agents": true'
        kind = given[0]
        if kind == "agents":
            if content["agents"] is not True:
                return "agents must be true"
            return "agents", True, AGENTS_GROUP
        object_id = parse_id(kind, content[kind])
        if isinstance(object_id, str):
            return object_id
        group_of = experiment_group if kind == "experiment" else job_group
        return kind, object_id, group_of(object_id)

    def _wants(self, event: str, data: dict[str, Any]) -> bool:
        """Whether an event still matches a current subscription.

        Events already queued for this connection when it unsubscribed would otherwise still arrive after the
        ``unsubscribed`` acknowledgement.
        """
        if event == "agent.updated":
            return AGENTS_GROUP in self.groups_joined
        if event == "job.updated":
            return (
                job_group(data.get("id")) in self.groups_joined
                or experiment_group(data.get("experiment")) in self.groups_joined
            )
        if event == "experiment.updated":
            return experiment_group(data.get("id")) in self.groups_joined
        return False

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Handle subscribe, unsubscribe and ping."""
        if not isinstance(content, dict):
            await self._error("message must be a JSON object")
            return
        if "__invalid__" in content:
            await self._error(content["__invalid__"])
            return
        kind = content.get("type")
        if kind == "ping":
            await self.send_json({"type": "pong"})
            return
        if kind not in ("subscribe", "unsubscribe"):
            await self._error(f"unknown message type {kind!r}; use subscribe, unsubscribe or ping")
            return
        target = self._target(content)
        if isinstance(target, str):
            await self._error(target)
            return
        name, object_id, group = target
        echo = {name: object_id}
        if kind == "subscribe" and not self.access[name]:
            await self._error(f"your role does not allow reading {name}; ask a fleet admin for the viewer role")
            return
        if kind == "unsubscribe":
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.discard(group)
            self.targets.pop(group, None)
            await self.send_json({"type": "unsubscribed", **echo})
            return
        # Join before reading the snapshot: a change committed in between then arrives as an event after the
        # snapshot. Reading first would lose a change committed between the read and the join.
        already = group in self.groups_joined
        await self.channel_layer.group_add(group, self.channel_name)
        snapshot = await _snapshot(name, object_id)
        if snapshot is None:
            if not already:
                await self.channel_layer.group_discard(group, self.channel_name)
            await self._error(f"{name} {object_id} does not exist")
            return
        self.groups_joined.add(group)
        await self.send_json({"type": "subscribed", **echo})
        for event in snapshot:
            event = self._personal(event)
            self.sent[_key(event)] = event["data"]
            await self.send_json(event)
        if self.poller is not None:
            # Polling reports changes from now on: what the client fetched before subscribing is the baseline.
            for event in await _poll_state([(name, object_id)]):
                event = self._personal(event)
                self.sent.setdefault(_key(event), event["data"])
        self.targets[group] = (name, object_id)

    async def ruckus_event(self, message: dict[str, Any]) -> None:
        """Forward an event sent by ``core.events`` to the client.

        Args:
            message: ``{"type": "ruckus.event", "event": ..., "data": {...}}`` from the channel layer.
        """
        event = {"type": message["event"], "data": message["data"]}
        if not self._wants(event["type"], event["data"]):
            return
        await self._forward(event)
