"""Health: lost agents, expired leases, interrupted dispatches, cancellations and the result-fetch fallback.

Each function is one step of the scheduler's pass (:func:`scheduling.loop.scheduler_pass`), takes the current
time as ``now`` (tests drive a clock) and a ``client_factory`` for the calls it makes to agents.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from agents.client import AgentCallError, AgentClient
from agents.liveness import silence_limits
from agents.models import Agent
from agents.services import agent_mark_silent, agent_probed
from common.protocol import MultiRunJobResult
from common.statuses import (
    ATTEMPT_ACTIVE_STATUSES,
    ATTEMPT_TERMINAL_STATUSES,
    AgentMode,
    AgentStatus,
    AttemptStatus,
    JobStatus,
)
from experiments.models import Job, JobAttempt
from results.services import LoadResultRefused
from scheduling.callbacks import apply_result
from scheduling.dispatch import ClientFactory
from scheduling.locking import lock_attempt
from scheduling.occupancy import free_agent
from scheduling.policy import job_retry_or_fail

log = structlog.get_logger(__name__)


def _end_and_retry(attempt_id: int, status: str, reason: str, now: datetime, *, penalty: bool = True,
                   terminal_status: str = JobStatus.FAILED) -> None:
    """End an attempt that is still unfinished and apply the retry policy to its job when it was current."""
    with transaction.atomic():
        attempt, job = lock_attempt(attempt_id)
        if not attempt.finish(status, reason, now):
            return  # it ended meanwhile (a result arrived): nothing to do
        if job.attempt == attempt.number:
            job_retry_or_fail(job, reason, penalty=penalty, terminal_status=terminal_status, now=now)
        free_agent(attempt.agent_id)


class SweepOutcome(StrEnum):
    """What a sweep concluded about the server's own view of its fleet."""

    #: Heartbeats arrive (or too few agents to tell): silent agents were judged one by one.
    OBSERVING = "observing"
    #: No agent's heartbeat arrived for 3 intervals: the server itself is probably not receiving them.
    FLEET_SILENT = "fleet_silent"


def _probe(agent: Agent, client_factory: ClientFactory, now: datetime) -> bool:
    """Ask a silent push agent directly whether it is alive; record what it says about its heartbeats.

    Returns:
        True when it answered (it is alive and the server can reach it: its work is not given up).
    """
    try:
        report = client_factory(agent.url, agent.token).status(timeout=settings.RUCKUS_AGENT_PROBE_TIMEOUT_S)
    except (AgentCallError, ValueError) as exc:
        log.info("agent_probe_failed", agent_id=str(agent.pk), error=str(exc)[:200])
        return False
    agent_probed(agent.pk, report, now)
    return True


def _silent(candidates: QuerySet[Agent], now: datetime, limit: str) -> list[tuple[Agent, datetime]]:
    """The candidates silent for longer than their own limit, each with the time its silence counts from.

    Args:
        candidates: Agents silent for at least the shortest limit (those at the base interval).
        now: Current time.
        limit: ``unreachable_after_s`` or ``lost_after_s`` of :class:`agents.liveness.SilenceLimits`.

    Returns:
        ``(agent, seen_before)``: the agent is silent while its last heartbeat is older than ``seen_before``.
    """
    found = []
    for agent in candidates.only("pk", "url", "mode", "token_encrypted", "last_seen", "heartbeat_interval_s"):
        seen_before = now - timedelta(seconds=getattr(silence_limits(agent.heartbeat_interval_s), limit))
        if agent.last_seen is not None and agent.last_seen < seen_before:
            found.append((agent, seen_before))
    return found


def sweep_agents(
    now: datetime | None = None,
    *,
    observing_since: datetime | None = None,
    client_factory: ClientFactory = AgentClient,
) -> SweepOutcome:
    """Mark silent agents unreachable (3 missed beats) then offline (lost); lose their attempts.

    Each agent is judged by the heartbeat interval it was last told (:mod:`agents.liveness`: it grows with the
    fleet), so a longer interval never makes an agent look silent.

    The server does not blame agents for its own outages:

    - silence is counted from ``observing_since`` at the earliest, the moment this scheduler last (re)started
      watching (its own start, the database coming back): heartbeats the server could not record do not count;
    - a push agent is asked directly before it is marked: one that answers is alive (its heartbeats do not arrive,
      and it says why, which becomes its ``heartbeat_error``), so it stays online and keeps its work;
    - when no agent of two or more has been heard for 3 intervals, the fault is most likely on the server's side
      (its HTTP server down, a proxy or address change): agents are marked unreachable, but none is declared
      lost; the job leases remain the bound.

    Each change is a conditional update: an agent whose heartbeat arrives while the sweep runs stays online.

    Args:
        now: Current time.
        observing_since: Start of the scheduler's current stretch of continuous observation (None: no grace).
        client_factory: Builds the client for the direct check of silent push agents.

    Returns:
        Whether the fleet as a whole fell silent (the caller restarts its observation when it comes back).
    """
    now = now or timezone.now()
    shortest = silence_limits(None)
    watched = Agent.objects.filter(status__in=[AgentStatus.ONLINE, AgentStatus.UNREACHABLE], last_seen__isnull=False)
    heard = watched.aggregate(count=Count("pk"), newest=Max("last_seen"), interval=Max("heartbeat_interval_s"))
    longest = silence_limits(heard["interval"])
    fleet_silent = heard["count"] >= 2 and heard["newest"] < now - timedelta(seconds=longest.unreachable_after_s)
    if observing_since is not None and observing_since > now - timedelta(seconds=shortest.unreachable_after_s):
        return SweepOutcome.FLEET_SILENT if fleet_silent else SweepOutcome.OBSERVING
    candidates = Agent.objects.filter(
        status=AgentStatus.ONLINE, last_seen__lt=now - timedelta(seconds=shortest.unreachable_after_s)
    )
    for agent, seen_before in _silent(candidates, now, "unreachable_after_s"):
        if observing_since is not None and observing_since > seen_before:
            continue  # not watched for long enough to judge this agent's interval
        if not fleet_silent and agent.mode == AgentMode.PUSH and _probe(agent, client_factory, now):
            continue
        quiet_s = (now - seen_before).total_seconds()
        reason = (f"no heartbeat from any agent for {quiet_s:.0f} s: the server may not be receiving them"
                  if fleet_silent else f"no heartbeat for {quiet_s:.0f} s")
        agent_mark_silent(agent.pk, AgentStatus.UNREACHABLE, seen_before=seen_before, reason=reason)
    if fleet_silent:
        log.warning("fleet_silent", agents=heard["count"], newest_heartbeat=str(heard["newest"]))
        return SweepOutcome.FLEET_SILENT
    if observing_since is not None and observing_since > now - timedelta(seconds=shortest.lost_after_s):
        return SweepOutcome.OBSERVING
    candidates = Agent.objects.filter(
        status__in=[AgentStatus.ONLINE, AgentStatus.UNREACHABLE],
        last_seen__lt=now - timedelta(seconds=shortest.lost_after_s),
    )
    for agent, seen_before in _silent(candidates, now, "lost_after_s"):
        if observing_since is not None and observing_since > seen_before:
            continue
        if agent.mode == AgentMode.PUSH and _probe(agent, client_factory, now):
            continue
        lost_s = (now - seen_before).total_seconds()
        if agent_mark_silent(agent.pk, AgentStatus.OFFLINE, seen_before=seen_before,
                             reason=f"no heartbeat for {lost_s:.0f} s: agent lost"):
            lose_agent_attempts(agent.pk, "agent lost (no heartbeat)", now)
    return SweepOutcome.OBSERVING


def lose_agent_attempts(agent_id: object, reason: str, now: datetime | None = None) -> int:
    """End an agent's unfinished attempts as ``lost`` and send their jobs to retry.

    Args:
        agent_id: The agent.
        reason: Why.
        now: Current time.

    Returns:
        Number of attempts lost.
    """
    now = now or timezone.now()
    unfinished = JobAttempt.objects.filter(agent_id=agent_id).exclude(status__in=ATTEMPT_TERMINAL_STATUSES)
    attempts = list(unfinished.values_list("pk", "number"))
    for attempt_id, number in attempts:
        _end_and_retry(attempt_id, AttemptStatus.LOST, f"attempt {number} lost: {reason}", now)
    free_agent(agent_id)
    return len(attempts)


def expire_leases(now: datetime | None = None) -> None:
    """Time out attempts past their lease; retry while attempts remain, else the job is ``timed_out``.

    Args:
        now: Current time.
    """
    now = now or timezone.now()
    expired = JobAttempt.objects.filter(status__in=ATTEMPT_ACTIVE_STATUSES, lease_deadline__lt=now)
    for attempt_id in expired.values_list("pk", flat=True):
        _end_and_retry(attempt_id, AttemptStatus.TIMED_OUT, "lease expired", now, terminal_status=JobStatus.TIMED_OUT)


def recover_dispatches(now: datetime | None = None, client_factory: ClientFactory = AgentClient) -> None:
    """Resolve attempts left ``dispatching`` by a scheduler that died between claim and send.

    The agent is asked whether it has the job: if so the attempt runs on; if not, the job is dispatched again
    without using up an attempt. No job is lost, none runs twice. When the agent cannot answer, the attempt is
    left for the next pass (or the agent sweep).

    Args:
        now: Current time.
        client_factory: Builds the agent client.
    """
    now = now or timezone.now()
    # A pull agent's attempt stays dispatching until the agent asks for work: nothing was interrupted.
    stale = JobAttempt.objects.filter(
        status=AttemptStatus.DISPATCHING, updated_at__lt=now - timedelta(seconds=settings.RUCKUS_DISPATCH_STALE_S)
    ).exclude(agent__mode=AgentMode.PULL).select_related("agent")
    for attempt in stale:
        agent = attempt.agent
        has_it = False
        if agent is not None:
            try:
                remote = client_factory(agent.url, agent.token).get_job(str(attempt.job_id))
                has_it = int(remote.get("attempt") or 0) == attempt.number
            except AgentCallError as exc:
                if exc.status != 404:
                    continue
        if not has_it:
            _end_and_retry(attempt.pk, AttemptStatus.FAILED, "dispatch interrupted before the agent got the job",
                           now, penalty=False)
            continue
        with transaction.atomic():
            locked, job = lock_attempt(attempt.pk)
            if locked.start(now) and job.attempt == locked.number:
                job.start("agent has the job (dispatch recovered)", now)


def propagate_cancels(client_factory: ClientFactory = AgentClient) -> None:
    """Tell agents about jobs cancelled while they ran them.

    Args:
        client_factory: Builds the agent client.
    """
    # Pull agents learn of cancellations in the answer to their next work request (scheduling.pull).
    for job in Job.objects.filter(cancel_requested=True).exclude(agent__mode=AgentMode.PULL).select_related("agent"):
        agent = job.agent
        done = agent is None
        if agent is not None:
            try:
                client_factory(agent.url, agent.token).cancel_job(str(job.pk))
                done = True
            except AgentCallError as exc:
                done = exc.status in (404, 409)  # the agent no longer has it, or it already finished
        if done:
            Job.objects.filter(pk=job.pk).update(cancel_requested=False)
            with transaction.atomic():
                free_agent(job.agent_id)


def pull_results(now: datetime | None = None, client_factory: ClientFactory = AgentClient) -> None:
    """Pull fallback: ask agents directly about running attempts that went quiet.

    A finished result found there is applied to the attempt the scheduler asked about (no token needed: the
    scheduler itself chose the attempt), then acknowledged so the agent can drop it from its spool.

    Args:
        now: Current time.
        client_factory: Builds the agent client.
    """
    now = now or timezone.now()
    quiet = JobAttempt.objects.filter(
        status=AttemptStatus.RUNNING,
        updated_at__lt=now - timedelta(seconds=settings.RUCKUS_PULL_AFTER_S),
        agent__status=AgentStatus.ONLINE,
        agent__mode=AgentMode.PUSH,  # the server cannot call a pull agent; it reports finished jobs itself
    ).select_related("agent")
    for attempt in quiet:
        agent = attempt.agent
        client = client_factory(agent.url, agent.token)
        try:
            remote = client.get_job(str(attempt.job_id))
        except AgentCallError as exc:
            if exc.status == 404:
                _end_and_retry(attempt.pk, AttemptStatus.LOST, "the agent no longer knows this job", now)
            continue
        result = remote.get("result")
        if not result or int(remote.get("attempt") or attempt.number) != attempt.number:
            JobAttempt.objects.filter(pk=attempt.pk).update(updated_at=now)  # alive: look again later
            continue
        try:
            message = MultiRunJobResult.model_validate(result)
        except ValueError as exc:
            log.warning("pull_failed", job_id=attempt.job_id, error=f"result does not follow the protocol: {exc}")
            continue
        try:
            with transaction.atomic():
                locked, job = lock_attempt(attempt.pk)
                if not locked.is_current:
                    continue
                apply_result(job, locked, message, now)
        except LoadResultRefused as exc:
            # A load sweep that does not fit its spec is not stored (nothing was written); the rest of the pass goes
            # on, and the attempt ends with its lease like one whose result never came.
            log.warning("pull_failed", job_id=attempt.job_id, error=f"result refused: {exc.detail}")
            JobAttempt.objects.filter(pk=attempt.pk).update(updated_at=now)
            continue
        try:
            client.ack_job(str(attempt.job_id))
        except AgentCallError as exc:
            log.warning("pull_ack_failed", job_id=attempt.job_id, error=str(exc))
