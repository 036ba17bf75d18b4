"""Heartbeat intervals that adapt to the fleet, and the silence that makes an agent unreachable or lost.

Every agent heartbeats at the interval the server answers with (``HeartbeatAnswer.heartbeat_interval_s``). A small
fleet beats at ``RUCKUS_HEARTBEAT_INTERVAL_S``; once ``agents / interval`` would exceed
``RUCKUS_HEARTBEAT_MAX_RATE`` (the heartbeats per second the deployment is sized to absorb), the interval grows so
that the whole fleet stays at that rate, up to ``RUCKUS_HEARTBEAT_INTERVAL_MAX_S``. 10,000 agents at the default
1,000 heartbeats/s beat every 10 s.

Each agent's row keeps the interval it was last told, and the health sweep judges its silence by that interval
(:func:`silence_limits`): a longer interval never makes an agent look lost, and an agent told a long interval
before the fleet shrank keeps it until its next heartbeat without being blamed for it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from django.conf import settings

from agents.models import Agent
from common.statuses import AgentStatus

#: Heartbeats missed before an agent counts as unreachable.
MISSED_BEATS_UNREACHABLE = 3


def interval_for_fleet(agents: int) -> float:
    """The heartbeat interval for a fleet of ``agents`` watched agents.

    Args:
        agents: Agents the server hears from (online or unreachable).

    Returns:
        Seconds: at least ``RUCKUS_HEARTBEAT_INTERVAL_S``, long enough that the fleet's heartbeats stay within
        ``RUCKUS_HEARTBEAT_MAX_RATE`` per second, at most ``RUCKUS_HEARTBEAT_INTERVAL_MAX_S``.
    """
    base = settings.RUCKUS_HEARTBEAT_INTERVAL_S
    needed = agents / settings.RUCKUS_HEARTBEAT_MAX_RATE if settings.RUCKUS_HEARTBEAT_MAX_RATE > 0 else base
    return round(min(max(base, needed), max(base, settings.RUCKUS_HEARTBEAT_INTERVAL_MAX_S)), 1)


@dataclass
class _FleetSize:
    """This process's cached count of watched agents (a count per heartbeat would cost more than the beat)."""

    agents: int = 0
    checked_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)


_fleet = _FleetSize()

#: Seconds a process reuses its count of the fleet before counting again.
FLEET_COUNT_TTL_S = 10.0


def current_interval() -> float:
    """The interval to tell an agent now, from the fleet's size (counted at most every ``FLEET_COUNT_TTL_S``).

    Returns:
        Seconds.
    """
    now = time.monotonic()
    if now - _fleet.checked_at > FLEET_COUNT_TTL_S and _fleet.lock.acquire(blocking=False):
        # One thread counts; the others keep using the previous count meanwhile.
        try:
            _fleet.agents = Agent.objects.filter(status__in=[AgentStatus.ONLINE, AgentStatus.UNREACHABLE]).count()
            _fleet.checked_at = now
        finally:
            _fleet.lock.release()
    return interval_for_fleet(_fleet.agents)


def forget_fleet_size() -> None:
    """Count the fleet again at the next heartbeat (tests change settings and fleets between cases)."""
    _fleet.checked_at = float("-inf")


@dataclass(frozen=True)
class SilenceLimits:
    """How long an agent told a given interval may stay silent.

    Attributes:
        unreachable_after_s: Silence after which it is marked unreachable (``MISSED_BEATS_UNREACHABLE`` beats).
        lost_after_s: Silence after which it is lost and its work is retried elsewhere:
            ``RUCKUS_AGENT_LOST_AFTER_S`` at the base interval, scaled with the interval (the same number of
            missed beats).
    """

    unreachable_after_s: float
    lost_after_s: float


def silence_limits(interval_s: float | None) -> SilenceLimits:
    """The silence limits for an agent last told ``interval_s`` (None: never told, the base interval).

    Args:
        interval_s: The interval in the agent's last heartbeat answer.

    Returns:
        The limits.
    """
    base = settings.RUCKUS_HEARTBEAT_INTERVAL_S
    interval = max(interval_s or base, base)
    return SilenceLimits(
        unreachable_after_s=MISSED_BEATS_UNREACHABLE * interval,
        lost_after_s=settings.RUCKUS_AGENT_LOST_AFTER_S * interval / base,
    )
