"""Writes for agents: status changes with a logged reason, deactivation, removal."""

from __future__ import annotations

from datetime import datetime

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.client import AgentCallError, AgentClient
from agents.models import Agent
from common.protocol import PROTOCOL_VERSION, AgentInfo, Heartbeat, HeartbeatAnswer, RegisterRequest
from common.statuses import AgentActivity, AgentStatus
from core import events
from core.transitions import log_transition

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
    previous = agent.status
    if previous == status:
        return agent
    agent.status = status
    agent.status_reason = reason[:500]
    agent.save(update_fields=["status", "status_reason", "updated_at"])
    log_transition(agent=agent, from_state=previous, to_state=status, reason=reason)
    events.emit(events.AGENT_UPDATED, agent.pk)
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


class RegistrationError(Exception):
    """Registration failed; the message says why (shown to the operator)."""


def agent_register(
    *,
    url: str,
    token: str,
    name: str = "",
    labels: list[str] | None = None,
    cost_per_hour: object = None,
) -> Agent:
    """Register an agent by URL: issue a credential, call the agent's ``/register``, store its ``AgentInfo``.

    An agent already known at the same URL is re-registered (new credential, fresh capabilities) instead of
    duplicated. When the agent cannot be reached or answers badly, nothing is stored.

    Args:
        url: Agent base URL (already checked by the URL guard).
        token: Bearer token the server must use to call the agent.
        name: Optional name (default: the name the agent reports, else its host).
        labels: Optional labels.
        cost_per_hour: Optional cost in dollars per hour.

    Returns:
        The registered agent.

    Raises:
        RegistrationError: When the agent could not be registered.
    """
    url = url.rstrip("/")
    existing = Agent.objects.filter(url=url).first()
    agent = existing or Agent(url=url, name=name or url)
    credential = agent.set_credential()
    agent.token = token
    try:
        info = AgentClient(url, token).register(
            RegisterRequest(agent_id=str(agent.pk), server_url=settings.RUCKUS_PUBLIC_URL, credential=credential)
        )
    except AgentCallError as exc:
        if exc.status in (401, 403):
            raise RegistrationError(f"the agent refused the token ({exc.status}); check the agent's --token") from exc
        raise RegistrationError(str(exc)) from exc
    except ValueError as exc:  # the answer is not a valid AgentInfo
        raise RegistrationError(f"the agent's answer does not follow the agent protocol: {exc}") from exc
    major = info.protocol_version.split(".", 1)[0]
    if major != PROTOCOL_VERSION.split(".", 1)[0]:
        raise RegistrationError(
            f"agent speaks protocol {info.protocol_version}, server speaks {PROTOCOL_VERSION}; upgrade one of them"
        )
    with transaction.atomic():
        agent.set_capabilities(info)
        agent.name = name or (existing.name if existing else "") or info.name or info.system.hostname or url
        if labels is not None:
            agent.labels = labels
        if cost_per_hour is not None:
            agent.cost_per_hour = cost_per_hour
        agent.last_seen = timezone.now()
        previous = existing.status if existing else ""
        agent.status = AgentStatus.ONLINE if not existing or existing.status != AgentStatus.DEACTIVATED else (
            AgentStatus.DEACTIVATED
        )
        agent.status_reason = "registered" if not existing else "re-registered"
        agent.save()
        log_transition(agent=agent, from_state=previous, to_state=agent.status, reason=agent.status_reason)
        events.emit(events.AGENT_UPDATED, agent.pk)
    log.info("agent_registered", agent_id=str(agent.pk), url=url, fingerprint=agent.hardware_fingerprint)
    return agent


def agent_heartbeat(agent: Agent, heartbeat: Heartbeat) -> HeartbeatAnswer:
    """Record a heartbeat: the agent is online, idle or busy; say whether its capabilities must be refreshed.

    Args:
        agent: The authenticated agent.
        heartbeat: The :class:`common.protocol.Heartbeat`.

    Returns:
        The answer for the agent: its status and whether to send its full capabilities.
    """
    with transaction.atomic():
        locked = Agent.objects.select_for_update().get(pk=agent.pk)
        locked.last_seen = timezone.now()
        activity = AgentActivity(heartbeat.activity)
        changed = locked.activity != activity
        locked.activity = activity
        locked.save(update_fields=["last_seen", "activity", "updated_at"])
        if locked.status in (AgentStatus.UNREACHABLE, AgentStatus.OFFLINE):
            agent_set_status(locked, AgentStatus.ONLINE, reason="heartbeat received")
        elif changed:
            events.emit(events.AGENT_UPDATED, locked.pk)
    refresh = bool(heartbeat.capabilities_hash) and heartbeat.capabilities_hash != locked.capabilities_hash
    return HeartbeatAnswer(status=locked.status, refresh_capabilities=refresh)


def agent_refresh_capabilities(agent: Agent) -> Agent:
    """Ask the agent to detect its host again and store what it answers (an operator's refresh).

    Args:
        agent: The agent.

    Returns:
        The agent with its new capabilities.

    Raises:
        RegistrationError: The agent cannot be reached or answered badly (the message says which).
    """
    try:
        info = AgentClient(agent.url, agent.token).refresh_info()
    except AgentCallError as exc:
        raise RegistrationError(str(exc)) from exc
    except ValueError as exc:  # the answer is not a valid AgentInfo
        raise RegistrationError(f"the agent's answer does not follow the agent protocol: {exc}") from exc
    return agent_update_capabilities(agent, info)


def agent_update_capabilities(agent: Agent, info: AgentInfo) -> Agent:
    """Store a fresh ``AgentInfo`` sent by the agent.

    Args:
        agent: The authenticated agent.
        info: The :class:`common.protocol.AgentInfo`.

    Returns:
        The agent.
    """
    with transaction.atomic():
        locked = Agent.objects.select_for_update().get(pk=agent.pk)
        locked.set_capabilities(info)
        locked.last_seen = timezone.now()
        locked.save()
        events.emit(events.AGENT_UPDATED, locked.pk)
    return locked


def agent_mark_silent(agent_id: object, status: str, *, seen_before: datetime, reason: str) -> bool:
    """Mark an agent whose heartbeats stopped, only if it is still silent when the row is written.

    A conditional ``UPDATE ... WHERE last_seen < seen_before`` (not a save of an instance read earlier), so a
    heartbeat that arrives between the health sweep's read and its write wins and the agent stays online.

    Args:
        agent_id: The agent.
        status: ``unreachable`` or ``offline``.
        seen_before: The agent counts as silent when its last heartbeat is older than this.
        reason: Why, recorded in the log.

    Returns:
        True when the agent changed (and the change was logged and announced).
    """
    allowed_from = [AgentStatus.ONLINE] if status == AgentStatus.UNREACHABLE else [
        AgentStatus.ONLINE, AgentStatus.UNREACHABLE
    ]
    for previous in allowed_from:
        with transaction.atomic():
            updated = Agent.objects.filter(pk=agent_id, status=previous, last_seen__lt=seen_before).update(
                status=status, status_reason=reason[:500], updated_at=timezone.now()
            )
            if updated:
                agent = Agent.objects.only("pk", "name").get(pk=agent_id)
                log_transition(agent=agent, from_state=previous, to_state=status, reason=reason)
                events.emit(events.AGENT_UPDATED, agent_id)
        if updated:
            log.info("agent_status", agent_id=str(agent_id), previous=previous, status=status, reason=reason)
            return True
    return False
