"""Agent callbacks: progress and results of an attempt (DESIGN section 3, flow 4).

A callback carries its attempt's token. A token that is not the job's current attempt changes nothing
(:class:`CallbackRejected` with 409: zombie attempts); result delivery is idempotent (a replay of the accepted
result changes nothing). The result's meaning for the job (completed, failed, retry ...) is decided here, above
the results app that stores the data.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from agents.models import Agent
from common.protocol import AgentJobState, JobProgress, MultiRunJobResult
from common.statuses import AttemptStatus, JobStatus
from experiments.models import Job, JobAttempt
from results.models import JobResult
from results.services import job_result_store_locked
from scheduling.occupancy import free_agent
from scheduling.policy import job_retry_or_fail
from scheduling.revival import revive_attempt


class CallbackRejected(Exception):
    """A callback is refused; ``status`` is the HTTP status the API answers with (403, 404 or 409)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _locked_job(job_id: int) -> Job:
    """The job, locked for the callback's transaction (404 when unknown)."""
    job = Job.objects.select_for_update(of=("self",)).with_experiment().filter(pk=job_id).first()
    if job is None:
        raise CallbackRejected("unknown job", 404)
    return job


def _callback_attempt(job: Job, agent: Agent, token: str | None) -> JobAttempt:
    """Find the attempt a callback belongs to and check it is the calling agent's."""
    attempt = job.attempts.filter(attempt_token=token or "").first() if token else None
    if attempt is None:
        if not job.attempts.filter(agent=agent).exists():
            raise CallbackRejected("this job is not assigned to this agent", 403)
        raise CallbackRejected("unknown attempt token for this job", 409)
    if attempt.agent_id != agent.pk:
        raise CallbackRejected("this attempt belongs to another agent", 403)
    attempt.job = job  # the locked instance: lifecycle methods read its current state
    return attempt


def _require_current(attempt: JobAttempt) -> None:
    """409 unless the attempt may still change its job."""
    if not attempt.is_current:
        raise CallbackRejected(f"attempt {attempt.number} is no longer current for this job", 409)


def handle_progress(job_id: int, agent: Agent, progress: JobProgress, now: datetime | None = None) -> None:
    """Record an agent's progress report; a stale attempt gets 409 and changes nothing.

    Args:
        job_id: The job.
        agent: The reporting agent.
        progress: The report.
        now: Current time.

    Raises:
        CallbackRejected: 403 for another agent's job, 404 unknown job, 409 stale attempt.
    """
    with transaction.atomic():
        job = _locked_job(job_id)
        attempt = _callback_attempt(job, agent, progress.attempt_token)
        revive_attempt(job, attempt, "the agent reported progress", now)
        _require_current(attempt)
        attempt.record_progress(progress.model_dump(mode="json", exclude={"attempt_token"}), now)
        if job.status == JobStatus.ASSIGNED:
            job.start("agent reported progress", now)
        else:
            job.announce()


def apply_result(
    job: Job, attempt: JobAttempt, result: MultiRunJobResult, now: datetime | None = None, *, known_new: bool = False
) -> bool:
    """Store a verified attempt's result and move the job to its final (or retry) state.

    The caller has checked that the result belongs to ``attempt`` (its token, or the scheduler's own pull of
    that attempt) and locked ``job`` (with its experiment loaded). The result is stored ``scoring``: its ROUGE
    scores and statistics follow from a scoring worker (:mod:`results.scoring`), not in this transaction.

    Args:
        job: The job (locked).
        attempt: The job's current attempt.
        result: The result.
        now: Current time.
        known_new: The caller has checked, under the lock, that the job has no stored result.

    Returns:
        True when data was stored (completed or failed runs).
    """
    state = result.status
    if state == AgentJobState.COMPLETED:
        job_result_store_locked(job=job, result=result, attempt=attempt, known_new=known_new)
        attempt.finish(AttemptStatus.COMPLETED, f"{len(result.runs)} run(s) delivered", now)
        job.transition(JobStatus.COMPLETED, reason=f"result of attempt {attempt.number} stored", now=now)
    elif state == AgentJobState.CANCELLED:
        attempt.finish(AttemptStatus.CANCELLED, result.error or "cancelled on the agent", now)
        job.transition(JobStatus.CANCELLED, reason=result.error or "cancelled on the agent", now=now)
    elif state == AgentJobState.TIMED_OUT:
        attempt.finish(AttemptStatus.TIMED_OUT, result.error or "timed out on the agent", now)
        job.transition(JobStatus.TIMED_OUT, reason=result.error or "timed out on the agent", now=now)
    elif state == AgentJobState.INTERRUPTED:
        attempt.finish(AttemptStatus.INTERRUPTED, result.error or "interrupted (agent restarted)", now)
        job_retry_or_fail(job, f"attempt {attempt.number} interrupted on the agent", now=now)
    else:
        # A failure reported by the agent (bad model, out of memory...) is deterministic: no blind retry.
        job_result_store_locked(job=job, result=result, attempt=attempt, known_new=known_new)
        attempt.finish(AttemptStatus.FAILED, result.error or "failed on the agent", now)
        job.transition(JobStatus.FAILED, reason=f"agent reported failure: {result.error or 'no detail'}", now=now)
    free_agent(attempt.agent_id)
    return state in (AgentJobState.COMPLETED, AgentJobState.FAILED)


def handle_result(
    job_id: int, agent: Agent, result: MultiRunJobResult, now: datetime | None = None
) -> dict[str, object]:
    """Accept an agent's result exactly once and move the job to its final (or retry) state.

    Args:
        job_id: The job.
        agent: The reporting agent.
        result: The result.
        now: Current time.

    Returns:
        ``{"stored": bool, "status": job status}``.

    Raises:
        CallbackRejected: 403 for another agent's job, 404 unknown job, 409 stale attempt.
    """
    with transaction.atomic():
        job = _locked_job(job_id)
        attempt = _callback_attempt(job, agent, result.attempt_token)
        # One look at the stored result answers both questions: is this a replay, and must storing check again.
        stored = list(JobResult.objects.filter(job=job).values_list("attempt_id", flat=True)[:1])
        if stored and stored[0] == attempt.pk:
            return {"stored": False, "status": job.status}  # replay of the accepted result
        revive_attempt(job, attempt, "the agent delivered its result", now)
        _require_current(attempt)
        return {"stored": apply_result(job, attempt, result, now, known_new=not stored), "status": job.status}
