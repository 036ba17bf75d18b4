"""The ``/ws/events/`` websocket: clients subscribe to an experiment, a job or the agent list.

Protocol (JSON):
    client -> ``{"type": "subscribe", "experiment": ID}`` | ``{"type": "subscribe", "job": ID}`` |
    ``{"type": "subscribe", "agents": true}``; ``"unsubscribe"`` with the same shapes; ``{"type": "ping"}``.
    server -> ``{"type": "subscribed", ...}`` (then the object's current state, so nothing between a REST
    fetch and the subscription is missed), ``{"type": "job.updated" | "experiment.updated" | "agent.updated",
    "data": {...}}`` with the REST serializers' payloads, ``{"type": "error", "message": ...}``, ``pong``.
Unauthenticated connections are closed with code 4401 before being accepted.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from ruckus_server.events import AGENTS_GROUP, experiment_group, job_group, json_safe

#: Close code for refused (unauthenticated) connections, in the 4000-4999 application range.
CLOSE_UNAUTHENTICATED = 4401


@database_sync_to_async
def _snapshot(kind: str, object_id: Any) -> list[dict[str, Any]] | None:
    """Current state of the subscribed object(s) as events; None when the object does not exist."""
    if kind == "experiment":
        from experiments.models import Experiment
        from experiments.serializers import ExperimentSerializer

        exp = Experiment.objects.filter(pk=object_id).first()
        if exp is None:
            return None
        return [{"type": "experiment.updated", "data": json_safe(ExperimentSerializer(exp).data)}]
    if kind == "job":
        from experiments.models import Job
        from experiments.serializers import JobSerializer

        job = Job.objects.select_related("agent").filter(pk=object_id).first()
        return None if job is None else [{"type": "job.updated", "data": json_safe(JobSerializer(job).data)}]
    from agents.models import Agent
    from agents.serializers import AgentSerializer

    return [{"type": "agent.updated", "data": json_safe(AgentSerializer(a).data)} for a in Agent.objects.all()]


class EventsConsumer(AsyncJsonWebsocketConsumer):
    """Live state changes for authenticated users."""

    async def connect(self) -> None:
        """Accept authenticated users only."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.groups_joined: set[str] = set()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        """Leave every group."""
        for group in getattr(self, "groups_joined", set()):
            await self.channel_layer.group_discard(group, self.channel_name)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        """Decode JSON; malformed text becomes a marker handled in :meth:`receive_json`."""
        import json

        try:
            return json.loads(text_data)
        except ValueError as exc:
            return {"__invalid__": f"message is not valid JSON: {exc}"}

    async def _error(self, message: str) -> None:
        await self.send_json({"type": "error", "message": message})

    def _target(self, content: dict[str, Any]) -> tuple[str, Any, str] | str:
        """``(kind, id, group)`` of a (un)subscribe message, or an error text."""
        if content.get("agents") is True:
            return "agents", True, AGENTS_GROUP
        for kind, group_of in (("experiment", experiment_group), ("job", job_group)):
            if kind in content:
                value = content[kind]
                if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
                    return f"{kind} must be an integer id"
                return kind, int(value), group_of(int(value))
        return 'give one of "experiment": ID, "job": ID or "agents": true'

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
        if kind == "unsubscribe":
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.discard(group)
            await self.send_json({"type": "unsubscribed", **echo})
            return
        snapshot = await _snapshot(name, object_id)
        if snapshot is None:
            await self._error(f"{name} {object_id} does not exist")
            return
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.add(group)
        await self.send_json({"type": "subscribed", **echo})
        for event in snapshot:
            await self.send_json(event)

    async def ruckus_event(self, message: dict[str, Any]) -> None:
        """Forward an event sent by ``ruckus_server.events`` to the client."""
        await self.send_json({"type": message["event"], "data": message["data"]})
