"""Work for pull agents: the answer to ``POST /api/v1/agents/{id}/work/`` (DESIGN section 3, pull mode).

A pull agent opens no port to the network. The scheduler claims jobs for it exactly as for a push agent (same
matching, same exclusive claim, same lease): the attempt is created ``dispatching`` and simply waits until the
agent asks for work; the answer hands it over and the attempt starts. The same answer tells the agent which
jobs to stop (cancelled, or no longer its current attempt). Lost answers are safe: a running attempt that the
agent does not report (neither running nor finished) is handed over again with the same token, and the agent's
engine accepts a repeated submission of the job it already has.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from common.protocol import JobRejection, WorkAnswer, WorkRequest
from common.statuses import ATTEMPT_ACTIVE_STATUSES, AgentStatus, AttemptStatus, JobStatus
from experiments.models import Job, JobAttempt
from scheduling.dispatch import fail_dispatch, job_request
from scheduling.locking import job_pk, lock_attempt
from scheduling.occupancy import free_agent
from scheduling.revival import revive_reported

log = structlog.get_logger(__name__)


def record_rejection(agent: Agent, rejection: JobRejection, now: datetime | None = None) -> bool:
    """A pull agent refused a job it was handed: a failed dispatch, as a push agent's refusal is.

    Args:
        agent: The agent.
        rejection: What it refused and why.
        now: Current time.

    Returns:
        True when the attempt was still current and ended now.
    """
    attempt = JobAttempt.objects.filter(attempt_token=rejection.attempt_token, agent=agent).first()
    if attempt is None or str(attempt.job_id) != rejection.job_id:
        return False
    log.warning("pull_job_refused", job_id=attempt.job_id, agent_id=str(agent.pk), reason=rejection.reason[:200])
    return fail_dispatch(attempt.pk, rejection.reason, busy=rejection.busy, now=now)


def _to_cancel(agent: Agent, request: WorkRequest) -> list[str]:
    """Jobs the agent must stop: the one it runs when that is not its current attempt, and cancelled ones."""
    cancel: list[str] = []
    running = request.running_job_id
    if running:
        # Given up while the agent was silent (even while this request was held)? It is running it: take it back.
        if request.attempt_token:
            revive_reported(agent, running, request.attempt_token, "the agent's work request names it")
        current = (pk := job_pk(running)) is not None and JobAttempt.objects.filter(
            job_id=pk, agent=agent, number=request.attempt or 0, status__in=ATTEMPT_ACTIVE_STATUSES,
            job__status__in=[JobStatus.ASSIGNED, JobStatus.RUNNING],
        ).exists()
        if not current:
            cancel.append(running)
    flagged = list(Job.objects.filter(agent=agent, cancel_requested=True).values_list("pk", flat=True))
    if flagged:
        # Delivered now; should this answer be lost, the job is no longer current and the rule above repeats it.
        Job.objects.filter(pk__in=flagged).update(cancel_requested=False)
        with transaction.atomic():
            free_agent(agent.pk)
    cancel.extend(str(pk) for pk in flagged if str(pk) not in cancel)
    return cancel


def _hand_over(agent: Agent, status: str, request: WorkRequest, now: datetime) -> WorkAnswer | None:
    """The attempt waiting for this agent (or one it never received), started and turned into a JobRequest."""
    if request.activity != "idle" or request.running_job_id:
        return None
    held = set(request.finished_job_ids)
    waiting = JobAttempt.objects.filter(agent=agent, status__in=ATTEMPT_ACTIVE_STATUSES).order_by("created_at")
    for candidate in waiting:
        if str(candidate.job_id) in held:
            continue  # the agent has finished it: its result is on its way
        with transaction.atomic():
            attempt, job = lock_attempt(candidate.pk)
            if attempt.is_terminal or job.attempt != attempt.number or job.is_terminal:
                continue
            again = attempt.status == AttemptStatus.RUNNING
            attempt.start(now)
            job.start(f"pull agent received attempt {attempt.number}", now)
            message = job_request(job, attempt)
        log.info("pull_job_handed_over", job_id=job.pk, attempt=attempt.number, agent_id=str(agent.pk), again=again)
        return WorkAnswer(status=status, job=message)
    return None


def work_for(agent: Agent, request: WorkRequest, now: datetime | None = None) -> WorkAnswer | None:
    """One look for something to tell a pull agent.

    Args:
        agent: The authenticated pull agent.
        request: Its work request (rejections are processed by the caller, once).
        now: Current time.

    Returns:
        An answer when there is work or a cancellation, else None (the caller waits and looks again).
    """
    now = now or timezone.now()
    status = Agent.objects.values_list("status", flat=True).get(pk=agent.pk)
    if status == AgentStatus.DEACTIVATED:
        return WorkAnswer(status=status)
    cancel = _to_cancel(agent, request)
    if cancel:
        return WorkAnswer(status=status, cancel_job_ids=cancel)
    return _hand_over(agent, status, request, now)


def begin_work_request(agent: Agent, request: WorkRequest, now: datetime | None = None) -> None:
    """What a work request says once, before the server starts waiting: the jobs the agent refused.

    Args:
        agent: The authenticated pull agent.
        request: Its work request.
        now: Current time.
    """
    for rejection in request.rejected:
        record_rejection(agent, rejection, now)
