"""Taking back an attempt the server gave up on while its agent was silent, when the agent turns out to have it.

An agent cut off from the server (a partition, the server's own outage) is declared lost after
``RUCKUS_AGENT_LOST_AFTER_S`` and its attempts end as ``lost`` so that their jobs can run elsewhere. When the
agent comes back still running (or having finished) such an attempt, and the job has not been dispatched again
meanwhile, the attempt is revived and the job goes on with it: no work is thrown away and nothing runs twice.
Once the job has moved on (a newer attempt exists, or it ended), the old attempt stays lost and its callbacks
get 409 as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from common.protocol import Heartbeat
from common.statuses import AgentActivity, AttemptStatus, JobStatus
from core import events
from experiments.models import Job, JobAttempt
from scheduling.locking import job_pk

log = structlog.get_logger(__name__)


def revive_attempt(job: Job, attempt: JobAttempt, reason: str, now: datetime | None = None) -> bool:
    """Revive a lost attempt that is still its job's latest one, while the job waits to be dispatched again.

    Args:
        job: The job (locked by the caller).
        attempt: One of its attempts (``attempt.job`` is ``job``).
        reason: How we know the agent has it (recorded).
        now: Current time.

    Returns:
        True when the attempt and its job were taken back (attempt ``running``, job ``running``).
    """
    if attempt.status != AttemptStatus.LOST or job.status != JobStatus.PENDING or job.attempt != attempt.number:
        return False
    now = now or timezone.now()
    attempt.revive(reason, now)
    job.transition(
        JobStatus.ASSIGNED, reason=f"attempt {attempt.number} taken back: {reason}", now=now,
        agent_id=attempt.agent_id, not_before=None,
    )
    job.start(f"attempt {attempt.number} is running on its agent", now)
    if Agent.objects.filter(pk=attempt.agent_id).update(activity=AgentActivity.BUSY):
        events.emit(events.AGENT_UPDATED, attempt.agent_id)
    log.info("attempt_revived", job_id=job.pk, attempt=attempt.number, agent_id=str(attempt.agent_id), reason=reason)
    return True


def revive_reported(agent: Agent, job_id: str, attempt_token: str, reason: str, now: datetime | None = None) -> bool:
    """Revive the attempt an agent says it is running, if the server had given it up.

    Args:
        agent: The reporting agent (authenticated).
        job_id: The job it names.
        attempt_token: The attempt's token (proves which attempt).
        reason: How we know (recorded).
        now: Current time.

    Returns:
        True when an attempt was revived.
    """
    pk = job_pk(job_id)
    if pk is None or not attempt_token:
        return False
    # A cheap look first: nearly every report is about a healthy attempt, which needs no lock.
    if not JobAttempt.objects.filter(job_id=pk, attempt_token=attempt_token, agent=agent,
                                     status=AttemptStatus.LOST).exists():
        return False
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).with_experiment().filter(pk=pk).first()
        if job is None:
            return False
        attempt = job.attempts.select_for_update().filter(attempt_token=attempt_token, agent=agent).first()
        if attempt is None:
            return False
        attempt.job = job
        return revive_attempt(job, attempt, reason, now)


def on_heartbeat(sender: Any, agent: Agent, heartbeat: Heartbeat, **kwargs: Any) -> None:
    """Receiver of :data:`agents.signals.heartbeat_received`: a heartbeat names the attempt the agent runs."""
    if heartbeat.running_job_id and heartbeat.attempt_token:
        revive_reported(agent, heartbeat.running_job_id, heartbeat.attempt_token, "the agent's heartbeat names it")
