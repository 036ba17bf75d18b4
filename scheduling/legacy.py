"""Scheduling: claim pending jobs, dispatch them to capable agents, handle callbacks, loss, leases and retries.

Safe with several scheduler processes at once: a job is claimed by locking its row with
``SELECT ... FOR UPDATE SKIP LOCKED`` and re-checking it is still ``pending`` before it moves to ``assigned``
in the same transaction; agents are locked the same way so two schedulers never give one agent two jobs.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.client import AgentCallError, AgentClient
from agents.models import Agent, AgentActivity, AgentStatus
from agents.services import agent_set_status
from common.protocol import AgentJobState, JobProgress, JobRequest, ModelSpec, MultiRunJobResult, RuntimeSpec, TaskSpec
from experiments.models import (
    ATTEMPT_TERMINAL_STATUSES,
    AttemptStatus,
    Job,
    JobAttempt,
    JobStatus,
)
from experiments.services import _log_transition, job_transition
from ruckus_server.events import emit_agent_updated, emit_job_updated

log = structlog.get_logger(__name__)

#: Jobs looked at per scheduling pass (each claimed in its own short transaction).
CLAIM_BATCH = 50


def retry_backoff_s(attempt: int) -> float:
    """Exponential backoff with jitter before attempt ``attempt + 1``.

    Args:
        attempt: The attempt number that just failed (1-based).

    Returns:
        Seconds to wait: ``base * 2**(attempt-1)`` capped, then scaled by a random factor in [0.5, 1]
        so that many jobs failing together do not come back together.
    """
    base = settings.RUCKUS_RETRY_BACKOFF_BASE_S * 2 ** max(attempt - 1, 0)
    return min(base, settings.RUCKUS_RETRY_BACKOFF_MAX_S) * random.uniform(0.5, 1.0)


def _end_attempt(attempt: JobAttempt, status: str, reason: str) -> None:
    """Close an attempt with an outcome (no-op when it already ended)."""
    if attempt.is_terminal:
        return
    attempt.status = status
    attempt.outcome = reason[:1000]
    attempt.finished_at = timezone.now()
    attempt.save(update_fields=["status", "outcome", "finished_at", "updated_at"])
    _log_transition(job=attempt.job, attempt=attempt, from_state="", to_state=status, reason=reason)


def _free_agent(agent_id: Any) -> None:
    """Mark an agent idle once it has no unfinished attempt."""
    if agent_id is None:
        return
    busy = JobAttempt.objects.filter(agent_id=agent_id).exclude(status__in=ATTEMPT_TERMINAL_STATUSES).exists()
    if not busy:
        updated = Agent.objects.filter(pk=agent_id, activity=AgentActivity.BUSY).update(activity=AgentActivity.IDLE)
        if updated:
            emit_agent_updated(agent_id)


def job_retry_or_fail(job: Job, reason: str, *, terminal_status: str = JobStatus.FAILED, penalty: bool = True) -> Job:
    """After an attempt ended badly: back to ``pending`` with backoff while attempts remain, else terminal.

    Args:
        job: The job (locked by the caller).
        reason: Why the attempt ended.
        terminal_status: Status when no attempt remains (``failed`` or ``timed_out``).
        penalty: False when the attempt never ran (agent busy, dispatch interrupted): it does not count.

    Returns:
        The job.
    """
    if job.is_terminal:
        return job
    if not penalty:
        return job_transition(
            job, JobStatus.PENDING, reason=f"{reason}; dispatching again", max_attempts=job.max_attempts + 1,
            not_before=timezone.now() + timedelta(seconds=1),
        )
    if job.attempt < job.max_attempts:
        delay = retry_backoff_s(job.attempt)
        return job_transition(
            job,
            JobStatus.PENDING,
            reason=f"{reason}; retry {job.attempt + 1}/{job.max_attempts} in {delay:.0f} s",
            not_before=timezone.now() + timedelta(seconds=delay),
        )
    return job_transition(job, terminal_status, reason=f"{reason}; gave up after {job.attempt} attempt(s)")


# --------------------------------------------------------------------------------------------------
# Claim and dispatch
# --------------------------------------------------------------------------------------------------


@dataclass
class Dispatch:
    """A claimed job ready to be sent (built inside the claim transaction, sent after commit)."""

    job_id: int
    attempt_id: int
    agent_id: Any
    agent_url: str
    agent_token: str
    request: JobRequest


def _pick_agent(job: Job) -> Agent | None:
    """Lock and return an idle online agent that measures the job's hardware (its own agent first)."""
    candidates = (
        Agent.objects.select_for_update(skip_locked=True)
        .filter(status=AgentStatus.ONLINE, activity=AgentActivity.IDLE)
        .filter(Q(pk=job.agent_id) | Q(hardware_fingerprint=job.hardware_fingerprint))
        .exclude(attempts__status__in=[AttemptStatus.DISPATCHING, AttemptStatus.RUNNING])
    )
    agents = list(candidates)
    agents.sort(key=lambda a: (a.pk != job.agent_id, a.name))
    return agents[0] if agents else None


def _claim(job_id: int, now: datetime) -> Dispatch | None:
    """Claim one job: lock it, re-check it, choose an agent, create the attempt, mark it assigned."""
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("experiment")
            .filter(pk=job_id, status=JobStatus.PENDING)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .first()
        )
        if job is None:
            return None  # another scheduler has it, or it changed meanwhile
        agent = _pick_agent(job)
        if agent is None:
            remaining = Agent.objects.exclude(status=AgentStatus.DEACTIVATED).filter(
                Q(pk=job.agent_id) | Q(hardware_fingerprint=job.hardware_fingerprint)
            )
            if not remaining.exists():
                job_transition(
                    job,
                    JobStatus.FAILED,
                    reason=f"no agent with hardware fingerprint {job.hardware_fingerprint!r} remains",
                )
            return None
        number = job.attempt + 1
        attempt = JobAttempt.objects.create(
            job=job,
            number=number,
            agent=agent,
            attempt_token=secrets.token_urlsafe(24),
            status=AttemptStatus.DISPATCHING,
            lease_deadline=now + timedelta(seconds=settings.RUCKUS_JOB_LEASE_S),
        )
        job_transition(job, JobStatus.ASSIGNED, reason=f"attempt {number} assigned to {agent.name}", agent=agent,
                       attempt=number)
        agent.activity = AgentActivity.BUSY
        agent.save(update_fields=["activity", "updated_at"])
        emit_agent_updated(agent.pk)
        exp = job.experiment
        request = JobRequest(
            job_id=str(job.pk),
            attempt=number,
            attempt_token=attempt.attempt_token,
            experiment_id=str(exp.pk),
            task=TaskSpec(name=exp.task_name, params=exp.task_params),
            model=ModelSpec.model_validate(job.model_spec),
            runtime=RuntimeSpec.model_validate(job.runtime_spec),
            runs_per_job=exp.runs_per_job,
            timeout_s=settings.RUCKUS_JOB_LEASE_S,
            requested_metrics=exp.requested_metrics,
        )
        return Dispatch(job.pk, attempt.pk, agent.pk, agent.url, agent.token, request)


def _send(dispatch: Dispatch) -> None:
    """POST the job to the agent and record the outcome."""
    try:
        AgentClient(dispatch.agent_url, dispatch.agent_token).submit_job(dispatch.request)
    except (AgentCallError, ValueError) as exc:
        status = getattr(exc, "status", None)
        with transaction.atomic():
            attempt = JobAttempt.objects.select_for_update().select_related("job").get(pk=dispatch.attempt_id)
            job = Job.objects.select_for_update(of=("self",)).select_related("experiment").get(pk=dispatch.job_id)
            if attempt.is_terminal or job.attempt != attempt.number:
                return
            busy = status == 409
            _end_attempt(attempt, AttemptStatus.FAILED, f"dispatch refused: {exc}")
            job_retry_or_fail(job, "agent was busy" if busy else f"dispatch failed: {exc}", penalty=not busy)
            _free_agent(dispatch.agent_id)
        log.warning("dispatch_failed", job_id=dispatch.job_id, agent_id=str(dispatch.agent_id), error=str(exc))
        return
    with transaction.atomic():
        attempt = JobAttempt.objects.select_for_update().get(pk=dispatch.attempt_id)
        job = Job.objects.select_for_update(of=("self",)).select_related("experiment").get(pk=dispatch.job_id)
        if attempt.status == AttemptStatus.DISPATCHING:
            attempt.status = AttemptStatus.RUNNING
            attempt.started_at = timezone.now()
            attempt.save(update_fields=["status", "started_at", "updated_at"])
        if job.status == JobStatus.ASSIGNED and job.attempt == attempt.number:
            job_transition(job, JobStatus.RUNNING, reason=f"agent accepted attempt {attempt.number}")
    log.info("dispatched", job_id=dispatch.job_id, attempt=dispatch.request.attempt, agent_id=str(dispatch.agent_id))


def dispatch_pending(now: datetime | None = None) -> int:
    """Claim and dispatch as many due pending jobs as there are idle capable agents.

    Args:
        now: Current time (tests).

    Returns:
        Number of jobs dispatched.
    """
    now = now or timezone.now()
    due = list(
        Job.objects.filter(status=JobStatus.PENDING)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("id")
        .values_list("id", flat=True)[:CLAIM_BATCH]
    )
    sent = 0
    for job_id in due:
        dispatch = _claim(job_id, now)
        if dispatch is not None:
            _send(dispatch)
            sent += 1
    return sent


# --------------------------------------------------------------------------------------------------
# Agent callbacks (progress, result)
# --------------------------------------------------------------------------------------------------


class CallbackRejected(Exception):
    """A callback is refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _callback_attempt(job: Job, agent: Agent, token: str | None) -> JobAttempt:
    """Find the attempt a callback belongs to and check it may still change the job."""
    attempt = job.attempts.filter(attempt_token=token or "").first() if token else None
    if attempt is None:
        if not job.attempts.filter(agent=agent).exists():
            raise CallbackRejected("this job is not assigned to this agent", 403)
        raise CallbackRejected("unknown attempt token for this job", 409)
    if attempt.agent_id != agent.pk:
        raise CallbackRejected("this attempt belongs to another agent", 403)
    return attempt


def handle_progress(job_id: int, agent: Agent, progress: JobProgress) -> None:
    """Record an agent's progress report; a stale attempt gets 409 and changes nothing.

    Args:
        job_id: The job.
        agent: The reporting agent.
        progress: The report.

    Raises:
        CallbackRejected: 403 for another agent's job, 404 unknown job, 409 stale attempt.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("experiment").filter(pk=job_id).first()
        if job is None:
            raise CallbackRejected("unknown job", 404)
        attempt = _callback_attempt(job, agent, progress.attempt_token)
        if attempt.number != job.attempt or attempt.is_terminal or job.is_terminal:
            raise CallbackRejected(f"attempt {attempt.number} is no longer current for this job", 409)
        attempt.progress = progress.model_dump(mode="json", exclude={"attempt_token"})
        if attempt.status == AttemptStatus.DISPATCHING:
            attempt.status = AttemptStatus.RUNNING
            attempt.started_at = timezone.now()
        attempt.save()
        if job.status == JobStatus.ASSIGNED:
            job_transition(job, JobStatus.RUNNING, reason="agent reported progress")
        else:
            emit_job_updated(job.pk)


def handle_result(job_id: int, agent: Agent, result: MultiRunJobResult) -> dict[str, Any]:
    """Accept an agent's result exactly once and move the job to its final (or retry) state.

    Args:
        job_id: The job.
        agent: The reporting agent.
        result: The result.

    Returns:
        ``{"stored": bool, "status": job status}``.

    Raises:
        CallbackRejected: 403 for another agent's job, 404 unknown job, 409 stale attempt.
    """
    from results.models import JobResult
    from results.services import job_result_store

    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("experiment").filter(pk=job_id).first()
        if job is None:
            raise CallbackRejected("unknown job", 404)
        attempt = _callback_attempt(job, agent, result.attempt_token)
        stored = JobResult.objects.filter(job=job).first()
        if stored is not None and stored.attempt_id == attempt.pk:
            return {"stored": False, "status": job.status}  # replay of the accepted result
        if attempt.number != job.attempt or attempt.is_terminal or job.is_terminal:
            raise CallbackRejected(f"attempt {attempt.number} is no longer current for this job", 409)
        state = result.status
        if state == AgentJobState.COMPLETED:
            job_result_store(job=job, result=result, attempt=attempt)
            _end_attempt(attempt, AttemptStatus.COMPLETED, f"{len(result.runs)} run(s) delivered")
            job_transition(job, JobStatus.COMPLETED, reason=f"result of attempt {attempt.number} stored")
        elif state == AgentJobState.CANCELLED:
            _end_attempt(attempt, AttemptStatus.CANCELLED, result.error or "cancelled on the agent")
            job_transition(job, JobStatus.CANCELLED, reason=result.error or "cancelled on the agent")
        elif state == AgentJobState.TIMED_OUT:
            _end_attempt(attempt, AttemptStatus.TIMED_OUT, result.error or "timed out on the agent")
            job_transition(job, JobStatus.TIMED_OUT, reason=result.error or "timed out on the agent")
        elif state == AgentJobState.INTERRUPTED:
            _end_attempt(attempt, AttemptStatus.INTERRUPTED, result.error or "interrupted (agent restarted)")
            job_retry_or_fail(job, f"attempt {attempt.number} interrupted on the agent")
        else:
            # A failure reported by the agent (bad model, out of memory...) is deterministic: no blind retry.
            job_result_store(job=job, result=result, attempt=attempt)
            _end_attempt(attempt, AttemptStatus.FAILED, result.error or "failed on the agent")
            job_transition(job, JobStatus.FAILED, reason=f"agent reported failure: {result.error or 'no detail'}")
        _free_agent(agent.pk)
        return {"stored": state in (AgentJobState.COMPLETED, AgentJobState.FAILED), "status": job.status}


# --------------------------------------------------------------------------------------------------
# Health: lost agents, leases, interrupted dispatches, cancellations, pull fallback
# --------------------------------------------------------------------------------------------------


def sweep_agents(now: datetime | None = None) -> None:
    """Mark silent agents unreachable (3 missed beats) then offline (``agent_lost_after``); lose their attempts.

    Args:
        now: Current time (tests).
    """
    now = now or timezone.now()
    interval = settings.RUCKUS_HEARTBEAT_INTERVAL_S
    unreachable_before = now - timedelta(seconds=3 * interval)
    offline_before = now - timedelta(seconds=settings.RUCKUS_AGENT_LOST_AFTER_S)
    for agent in Agent.objects.filter(status=AgentStatus.ONLINE, last_seen__lt=unreachable_before):
        with transaction.atomic():
            agent_set_status(agent, AgentStatus.UNREACHABLE, reason=f"no heartbeat for {3 * interval:.0f} s")
    for agent in Agent.objects.filter(
        status__in=[AgentStatus.ONLINE, AgentStatus.UNREACHABLE], last_seen__lt=offline_before
    ):
        with transaction.atomic():
            agent_set_status(
                agent, AgentStatus.OFFLINE,
                reason=f"no heartbeat for {settings.RUCKUS_AGENT_LOST_AFTER_S:.0f} s: agent lost",
            )
            lose_agent_attempts(agent, "agent lost (no heartbeat)")


def lose_agent_attempts(agent: Agent, reason: str) -> None:
    """End an agent's unfinished attempts as ``lost`` and send their jobs to retry.

    Args:
        agent: The agent.
        reason: Why.
    """
    for attempt in JobAttempt.objects.filter(agent=agent).exclude(status__in=ATTEMPT_TERMINAL_STATUSES):
        job = Job.objects.select_for_update(of=("self",)).select_related("experiment").get(pk=attempt.job_id)
        _end_attempt(attempt, AttemptStatus.LOST, reason)
        if job.attempt == attempt.number and not job.is_terminal:
            job_retry_or_fail(job, f"attempt {attempt.number} lost: {reason}")
    Agent.objects.filter(pk=agent.pk).update(activity=AgentActivity.IDLE)


def expire_leases(now: datetime | None = None) -> None:
    """Time out attempts past their lease; retry while attempts remain.

    Args:
        now: Current time (tests).
    """
    now = now or timezone.now()
    for attempt in JobAttempt.objects.filter(
        status__in=[AttemptStatus.DISPATCHING, AttemptStatus.RUNNING], lease_deadline__lt=now
    ):
        with transaction.atomic():
            job = Job.objects.select_for_update(of=("self",)).select_related("experiment").get(pk=attempt.job_id)
            _end_attempt(attempt, AttemptStatus.TIMED_OUT, "lease expired")
            if job.attempt == attempt.number:
                job_retry_or_fail(job, "lease expired", terminal_status=JobStatus.TIMED_OUT)
            _free_agent(attempt.agent_id)


def recover_dispatches(now: datetime | None = None) -> None:
    """Resolve attempts left ``dispatching`` by a scheduler that died between claim and send.

    The agent is asked whether it has the job: if so the attempt runs on; if not, the job is dispatched again
    without using up an attempt. No job is lost, none runs twice.

    Args:
        now: Current time (tests).
    """
    now = now or timezone.now()
    stale = JobAttempt.objects.filter(
        status=AttemptStatus.DISPATCHING, updated_at__lt=now - timedelta(seconds=settings.RUCKUS_DISPATCH_STALE_S)
    ).select_related("agent")
    for attempt in stale:
        agent = attempt.agent
        has_it = False
        if agent is not None:
            try:
                remote = AgentClient(agent.url, agent.token).get_job(str(attempt.job_id))
                has_it = int(remote.get("attempt") or 0) == attempt.number
            except AgentCallError as exc:
                if exc.status not in (404,):
                    continue  # cannot tell now; the agent sweep or the next pass decides
        with transaction.atomic():
            job = Job.objects.select_for_update(of=("self",)).select_related("experiment").get(pk=attempt.job_id)
            attempt.refresh_from_db()
            if attempt.status != AttemptStatus.DISPATCHING:
                continue
            if has_it:
                attempt.status = AttemptStatus.RUNNING
                attempt.started_at = now
                attempt.save(update_fields=["status", "started_at", "updated_at"])
                if job.status == JobStatus.ASSIGNED:
                    job_transition(job, JobStatus.RUNNING, reason="agent has the job (dispatch recovered)")
            else:
                _end_attempt(attempt, AttemptStatus.FAILED, "dispatch interrupted before the agent got the job")
                if job.attempt == attempt.number:
                    job_retry_or_fail(job, "dispatch interrupted", penalty=False)
                _free_agent(attempt.agent_id)


def propagate_cancels() -> None:
    """Tell agents about jobs cancelled while they ran them."""
    for job in Job.objects.filter(cancel_requested=True).select_related("agent"):
        agent = job.agent
        done = agent is None
        if agent is not None:
            try:
                AgentClient(agent.url, agent.token).cancel_job(str(job.pk))
                done = True
            except AgentCallError as exc:
                done = exc.status in (404, 409)  # the agent no longer has it, or it already finished
        if done:
            Job.objects.filter(pk=job.pk).update(cancel_requested=False)
            with transaction.atomic():
                _free_agent(job.agent_id)


def pull_results(now: datetime | None = None) -> None:
    """Pull fallback: ask agents directly about running attempts that went quiet.

    Args:
        now: Current time (tests).
    """
    now = now or timezone.now()
    quiet = JobAttempt.objects.filter(
        status=AttemptStatus.RUNNING,
        updated_at__lt=now - timedelta(seconds=settings.RUCKUS_PULL_AFTER_S),
        agent__status=AgentStatus.ONLINE,
    ).select_related("agent")
    for attempt in quiet:
        agent = attempt.agent
        try:
            remote = AgentClient(agent.url, agent.token).get_job(str(attempt.job_id))
        except AgentCallError as exc:
            if exc.status == 404:
                with transaction.atomic():
                    job = Job.objects.select_for_update(of=("self",)).select_related("experiment").get(
                        pk=attempt.job_id
                    )
                    _end_attempt(attempt, AttemptStatus.LOST, "the agent no longer knows this job")
                    if job.attempt == attempt.number:
                        job_retry_or_fail(job, "the agent no longer knows this job")
                    _free_agent(agent.pk)
            continue
        result = remote.get("result")
        if result and int(remote.get("attempt") or attempt.number) == attempt.number:
            message = MultiRunJobResult.model_validate({**result, "attempt_token": attempt.attempt_token})
            try:
                handle_result(attempt.job_id, agent, message)
                AgentClient(agent.url, agent.token).ack_job(str(attempt.job_id))
            except (CallbackRejected, AgentCallError) as exc:
                log.warning("pull_failed", job_id=attempt.job_id, error=str(exc))
        else:
            JobAttempt.objects.filter(pk=attempt.pk).update(updated_at=now)  # alive: look again later


def scheduler_pass() -> int:
    """One full pass of the scheduler loop.

    Returns:
        Number of jobs dispatched.
    """
    sweep_agents()
    expire_leases()
    recover_dispatches()
    propagate_cancels()
    pull_results()
    return dispatch_pending()
