"""Writes for agents: status changes with a logged reason, deactivation, removal."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from django.core import signing
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from agents import liveness
from agents.client import AgentCallError, AgentClient
from agents.models import Agent
from agents.signals import heartbeat_received
from agents.urlguard import UnsafeURL
from common.protocol import (
    PROTOCOL_VERSION,
    AgentInfo,
    AgentStatusReport,
    Heartbeat,
    HeartbeatAnswer,
    PullRegistration,
    RegisterRequest,
)
from common.statuses import AgentActivity, AgentMode, AgentStatus
from core import events
from core.transitions import log_transition

log = structlog.get_logger(__name__)

#: Salt of the registration challenge (keeps these signatures apart from any other use of SECRET_KEY).
REACH_SALT = "ruckus.agents.reach"
#: How long a registration challenge stays valid (the agent answers it within its /register call).
REACH_MAX_AGE_S = 300


def reach_challenge(agent_id: object) -> str:
    """A signed challenge the agent must present back to the server at the address it was given.

    Stateless (signed with ``SECRET_KEY``), so any server process may check it and nothing is stored for an
    agent whose registration then fails.

    Args:
        agent_id: The agent being registered.

    Returns:
        The challenge.
    """
    return signing.dumps({"agent": str(agent_id)}, salt=REACH_SALT)


def reach_check(agent_id: object, challenge: str) -> bool:
    """Tell whether a challenge is a fresh one issued for this agent.

    Args:
        agent_id: The agent named in the URL.
        challenge: What the agent presented.

    Returns:
        True when valid.
    """
    try:
        payload = signing.loads(challenge, salt=REACH_SALT, max_age=REACH_MAX_AGE_S)
    except signing.BadSignature:
        return False
    return isinstance(payload, dict) and payload.get("agent") == str(agent_id)


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
    server_url: str,
    name: str = "",
    labels: list[str] | None = None,
    cost_per_hour: object = None,
) -> Agent:
    """Register an agent by URL: issue a credential, call the agent's ``/register``, store its ``AgentInfo``.

    The agent must reach the server at ``server_url`` (it presents the registration challenge there) before it
    accepts: an agent that would call a wrong address is refused now, naming the address, instead of falling
    silent later. An agent already known at the same URL is re-registered (new credential, fresh capabilities)
    instead of duplicated. When the agent cannot be reached or answers badly, nothing is stored.

    Args:
        url: Agent base URL (already checked by the URL guard).
        token: Bearer token the server must use to call the agent.
        server_url: Where the agent must call the server (``RUCKUS_PUBLIC_URL``, else the address the
            registration request reached).
        name: Optional name (default: the name the agent reports, else its host).
        labels: Optional labels.
        cost_per_hour: Optional cost in dollars per hour.

    Returns:
        The registered agent.

    Raises:
        RegistrationError: When the agent could not be registered.
    """
    url = url.rstrip("/")
    existing = Agent.objects.filter(url=url, mode=AgentMode.PUSH).first()
    agent = existing or Agent(url=url, name=name or url)
    credential = agent.set_credential()
    agent.token = token
    try:
        info = AgentClient(url, token).register(
            RegisterRequest(agent_id=str(agent.pk), server_url=server_url, credential=credential,
                            challenge=reach_challenge(agent.pk))
        )
    except AgentCallError as exc:
        if exc.status in (401, 403):
            raise RegistrationError(f"the agent refused the token ({exc.status}); check the agent's --token") from exc
        if exc.reach_error:
            raise RegistrationError(
                f"the agent at {url} could not reach the server at {server_url}: {exc.reach_error}. Set "
                "RUCKUS_PUBLIC_URL to an address of this server that the agent can reach"
            ) from exc
        raise RegistrationError(str(exc)) from exc
    except UnsafeURL as exc:  # the name resolves elsewhere than when the URL was checked
        raise RegistrationError(str(exc)) from exc
    except ValueError as exc:  # the answer is not a valid AgentInfo
        raise RegistrationError(protocol_problem(exc)) from exc
    _check_protocol(info)
    with transaction.atomic():
        agent.set_capabilities(info)
        agent.name = (name or (existing.name if existing else "") or info.name or info.system.hostname or url)[:200]
        if labels is not None:
            agent.labels = labels
        if cost_per_hour is not None:
            agent.cost_per_hour = cost_per_hour
        agent.last_seen = timezone.now()
        agent.heartbeat_error, agent.heartbeat_error_since = "", None
        previous = existing.status if existing else ""
        agent.status = AgentStatus.ONLINE if not existing or existing.status != AgentStatus.DEACTIVATED else (
            AgentStatus.DEACTIVATED
        )
        agent.status_reason = "registered" if not existing else "re-registered"
        agent.save()
        log_transition(agent=agent, from_state=previous, to_state=agent.status, reason=agent.status_reason)
        events.emit(events.AGENT_UPDATED, agent.pk)
    log.info("agent_registered", agent_id=str(agent.pk), url=url, server_url=server_url,
             fingerprint=agent.hardware_fingerprint)
    return agent


def _check_protocol(info: AgentInfo) -> None:
    """Refuse an agent whose protocol major version differs from the server's."""
    major = info.protocol_version.split(".", 1)[0]
    if major != PROTOCOL_VERSION.split(".", 1)[0]:
        raise RegistrationError(
            f"agent speaks protocol {info.protocol_version}, server speaks {PROTOCOL_VERSION}; upgrade one of them"
        )


def agent_register_pull(*, info: AgentInfo, server_url: str, name: str = "") -> tuple[Agent, PullRegistration]:
    """Register a pull agent from its announce: the server never calls it, so it gets its registration back.

    The announce itself proves that the agent reaches the server at ``server_url``.

    Args:
        info: The agent's description, sent with its announce.
        server_url: Where the agent must call the server.
        name: Suggested name.

    Returns:
        The agent and the registration to hand back (its credential in plaintext, shown this once).

    Raises:
        RegistrationError: When the agent speaks an incompatible protocol.
    """
    _check_protocol(info)
    agent = Agent(mode=AgentMode.PULL, url="")
    credential = agent.set_credential()
    with transaction.atomic():
        agent.set_capabilities(info)
        agent.name = (name or info.name or info.system.hostname or f"pull agent {agent.pk}")[:200]
        agent.last_seen = timezone.now()
        agent.status = AgentStatus.ONLINE
        agent.status_reason = "registered (pull mode)"
        agent.save()
        log_transition(agent=agent, from_state="", to_state=agent.status, reason=agent.status_reason)
        events.emit(events.AGENT_UPDATED, agent.pk)
    log.info("agent_registered", agent_id=str(agent.pk), mode="pull", server_url=server_url,
             fingerprint=agent.hardware_fingerprint)
    return agent, PullRegistration(agent_id=str(agent.pk), server_url=server_url, credential=credential)


def agent_heartbeat(agent: Agent, heartbeat: Heartbeat) -> HeartbeatAnswer:
    """Record a heartbeat: the agent is online, idle or busy; say whether its capabilities must be refreshed.

    Nearly every heartbeat changes nothing but the time: an online agent whose activity is unchanged. That one is a
    single conditional ``UPDATE`` (no row lock, no transaction of its own): it applies only while the row still
    says what the authenticated copy said, so a concurrent change (a deactivation, the health sweep) falls through
    to the full path, which locks the row and records a status change.

    Args:
        agent: The authenticated agent (its capabilities need not be loaded).
        heartbeat: The :class:`common.protocol.Heartbeat`.

    Returns:
        The answer for the agent: its status, whether to send its full capabilities, and the interval to beat at
        (it grows with the fleet: :mod:`agents.liveness`).
    """
    now = timezone.now()
    activity = AgentActivity(heartbeat.activity)
    interval = liveness.current_interval()
    unchanged = agent.status == AgentStatus.ONLINE and agent.activity == activity and not agent.heartbeat_error
    updated = unchanged and Agent.objects.filter(
        pk=agent.pk, status=AgentStatus.ONLINE, activity=activity, heartbeat_error=""
    ).update(last_seen=now, heartbeat_interval_s=interval, updated_at=now)
    if updated:
        status, stored_hash = AgentStatus.ONLINE, agent.capabilities_hash
    else:
        with transaction.atomic():
            locked = Agent.objects.select_for_update().defer("capabilities").get(pk=agent.pk)
            locked.last_seen = now
            changed = locked.activity != activity or bool(locked.heartbeat_error)
            locked.activity = activity
            locked.heartbeat_error, locked.heartbeat_error_since = "", None
            locked.heartbeat_interval_s = interval
            locked.save(update_fields=["last_seen", "activity", "heartbeat_error", "heartbeat_error_since",
                                       "heartbeat_interval_s", "updated_at"])
            if locked.status in (AgentStatus.UNREACHABLE, AgentStatus.OFFLINE):
                agent_set_status(locked, AgentStatus.ONLINE, reason="heartbeat received")
            elif changed:
                events.emit(events.AGENT_UPDATED, locked.pk)
        status, stored_hash, agent = locked.status, locked.capabilities_hash, locked
    # The scheduler listens: an attempt given up while the agent was silent may be running still. Sent after the
    # agent's row lock is released: the listener locks jobs, and every other path locks a job before its agent.
    heartbeat_received.send(sender=Agent, agent=agent, heartbeat=heartbeat)
    refresh = bool(heartbeat.capabilities_hash) and heartbeat.capabilities_hash != stored_hash
    return HeartbeatAnswer(status=status, refresh_capabilities=refresh, heartbeat_interval_s=interval)


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
    except (AgentCallError, UnsafeURL) as exc:
        raise RegistrationError(str(exc)) from exc
    except ValueError as exc:  # the answer is not a valid AgentInfo
        raise RegistrationError(protocol_problem(exc)) from exc
    return agent_update_capabilities(agent, info)


def protocol_problem(exc: ValueError) -> str:
    """Why an agent's answer is not a valid description, naming fields but never quoting what was sent.

    The answer may come from something other than an agent (a user can register any URL the guard allows): its
    content must not reach the user through the error.

    Args:
        exc: The JSON decoding or validation error.
    """
    if isinstance(exc, PydanticValidationError):
        fields = sorted({".".join(str(p) for p in error["loc"]) or "(body)" for error in exc.errors()})
        shown = ", ".join(fields[:10]) + (f" and {len(fields) - 10} more" if len(fields) > 10 else "")
        return f"the agent's answer does not follow the agent protocol (missing or invalid: {shown})"
    return "the agent's answer does not follow the agent protocol (not a JSON description of an agent)"


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


def agent_probed(agent_id: object, report: AgentStatusReport, now: datetime) -> None:
    """Record that a silent push agent answered the server directly: it is alive, its heartbeats do not arrive.

    The agent counts as seen (its work is not given up: the server can still call it, and results can be fetched
    from it), and what it says about its calls to the server becomes the agent's ``heartbeat_error``.

    Args:
        agent_id: The agent.
        report: What the agent answered.
        now: Current time.
    """
    contact = report.contact
    error = contact.last_error or "no error reported"
    where = f" to {contact.server_url}" if contact.server_url else ""
    text = (f"heartbeats do not arrive; the agent answers the server directly and reports its calls{where} "
            f"failing: {error}")[:1000]
    # The agent's times are on its own clock: keep only how long ago the trouble began, by that clock.
    since = now - max(report.reported_at - contact.failing_since, timedelta(0)) if contact.failing_since else now
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent_id)
        first = not agent.heartbeat_error
        agent.last_seen = now
        agent.heartbeat_error = text
        agent.heartbeat_error_since = agent.heartbeat_error_since or since
        agent.save(update_fields=["last_seen", "heartbeat_error", "heartbeat_error_since", "updated_at"])
        if agent.status in (AgentStatus.UNREACHABLE, AgentStatus.OFFLINE):
            agent_set_status(agent, AgentStatus.ONLINE, reason="answered the server's direct check")
        else:
            events.emit(events.AGENT_UPDATED, agent.pk)
    if first:
        log.warning("agent_heartbeats_failing", agent_id=str(agent_id), error=text)


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
                status=status, status_reason=reason[:500], updated_at=timezone.now(),
                heartbeat_error=Case(When(heartbeat_error="", then=Value(reason[:1000])),
                                     default=F("heartbeat_error")),
                heartbeat_error_since=Coalesce(F("heartbeat_error_since"), F("last_seen")),
            )
            if updated:
                agent = Agent.objects.only("pk", "name").get(pk=agent_id)
                log_transition(agent=agent, from_state=previous, to_state=status, reason=reason)
                events.emit(events.AGENT_UPDATED, agent_id)
        if updated:
            log.info("agent_status", agent_id=str(agent_id), previous=previous, status=status, reason=reason)
            return True
    return False
