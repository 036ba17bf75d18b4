"""Claim pending jobs and dispatch them to capable idle agents (DESIGN section 3, flow 3).

Safe with several scheduler processes at once: a job is claimed by locking its row with
``SELECT ... FOR UPDATE SKIP LOCKED`` and re-checking it is still ``pending`` before it moves to ``assigned``
in the same transaction; agents are locked the same way so two schedulers never give one agent two jobs.
The job is sent after the claim commits; a scheduler that dies in between leaves the attempt
``dispatching``, which :func:`scheduling.recovery.recover_dispatches` resolves.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from agents.client import AgentCallError, AgentClient
from agents.models import Agent
from common.protocol import JobRequest, ModelSpec, RuntimeSpec, TaskSpec
from common.statuses import ATTEMPT_ACTIVE_STATUSES, AgentActivity, AgentMode, AgentStatus, AttemptStatus, JobStatus
from experiments.models import Job, JobAttempt
from scheduling.locking import lock_attempt
from scheduling.occupancy import free_agent, occupy_agent
from scheduling.policy import job_retry_or_fail

log = structlog.get_logger(__name__)

#: Due jobs read per query of a scheduling pass (each is then claimed in its own short transaction).
CLAIM_BATCH = 200

#: Builds the client used to call an agent (``url``, ``token``); tests pass their own.
ClientFactory = Callable[[str, str], AgentClient]


@dataclass
class Dispatch:
    """A claimed job ready to be sent (built inside the claim transaction, sent after commit)."""

    job_id: int
    attempt_id: int
    agent_id: Any
    agent_url: str
    agent_token: str
    request: JobRequest
    agent_mode: str = AgentMode.PUSH


def _pick_agent(job: Job) -> Agent | None:
    """Lock and return an idle online agent that measures the job's hardware (its own agent first).

    One row is locked and read, the first in order of preference (``LIMIT 1`` with ``SKIP LOCKED``: agents another
    scheduler is claiming are passed over), without the capabilities, which dispatch does not need.
    """
    candidates = (
        Agent.objects.select_for_update(skip_locked=True)
        .filter(status=AgentStatus.ONLINE, activity=AgentActivity.IDLE)
        .filter(Q(pk=job.agent_id) | Q(hardware_fingerprint=job.hardware_fingerprint))
        .exclude(attempts__status__in=ATTEMPT_ACTIVE_STATUSES)
        .alias(other=Case(When(pk=job.agent_id, then=Value(0)), default=Value(1)))
        .order_by("other", "name", "pk")
        .only("pk", "url", "mode", "token_encrypted", "name")
    )
    return candidates.first()


def job_request(job: Job, attempt: JobAttempt) -> JobRequest:
    """The message that asks an agent to run one attempt of a job.

    Args:
        job: The job (with its experiment).
        attempt: The attempt (its token authenticates the agent's callbacks).

    Returns:
        The request.
    """
    exp = job.experiment
    return JobRequest(
        job_id=str(job.pk),
        attempt=attempt.number,
        attempt_token=attempt.attempt_token,
        experiment_id=str(exp.pk),
        task=TaskSpec(name=exp.task_name, params=exp.task_params),
        model=ModelSpec.model_validate(job.model_spec),
        runtime=RuntimeSpec.model_validate(job.runtime_spec),
        runs_per_job=exp.runs_per_job,
        timeout_s=settings.RUCKUS_JOB_LEASE_S,
        requested_metrics=exp.requested_metrics,
        load=exp.load_spec,
    )


def claim(job_id: int, now: datetime, no_agent: set[str] | None = None) -> Dispatch | None:
    """Claim one job: lock it, re-check it, choose an agent, create the attempt, mark it assigned.

    A job whose hardware no agent has any more (all removed or deactivated) fails with that reason.

    Args:
        job_id: The job.
        now: Current time.
        no_agent: When given, the job's hardware fingerprint is added to it when no idle agent could take the job
            (the caller skips that hardware's other jobs for the rest of its pass).

    Returns:
        What to send, or None when the job is not claimable now (taken, not due, no idle agent).
    """
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(skip_locked=True, of=("self",))
            .with_experiment()
            .filter(pk=job_id, status=JobStatus.PENDING)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .first()
        )
        if job is None:
            return None  # another scheduler has it, or it changed meanwhile
        agent = _pick_agent(job)
        if agent is None:
            if no_agent is not None:
                no_agent.add(job.hardware_fingerprint)
            remaining = Agent.objects.exclude(status=AgentStatus.DEACTIVATED).filter(
                Q(pk=job.agent_id) | Q(hardware_fingerprint=job.hardware_fingerprint)
            )
            if not remaining.exists():
                job.transition(
                    JobStatus.FAILED,
                    reason=f"no agent with hardware fingerprint {job.hardware_fingerprint!r} remains",
                    now=now,
                )
            return None
        attempt = JobAttempt.objects.create(
            job=job,
            number=job.attempt + 1,
            agent=agent,
            attempt_token=secrets.token_urlsafe(24),
            status=AttemptStatus.DISPATCHING,
            lease_deadline=now + timedelta(seconds=settings.RUCKUS_JOB_LEASE_S),
        )
        job.assign(attempt, now)
        occupy_agent(agent)
        return Dispatch(job.pk, attempt.pk, agent.pk, agent.url, agent.token, job_request(job, attempt), agent.mode)


def send(dispatch: Dispatch, client_factory: ClientFactory = AgentClient, now: datetime | None = None) -> bool:
    """POST the job to the agent and record the outcome.

    A refusal because the agent is busy (409) sends the job back to ``pending`` without using up an attempt;
    any other failure counts as a failed attempt under the retry policy.

    Args:
        dispatch: What to send.
        client_factory: Builds the agent client.
        now: Current time.

    Returns:
        True when the agent accepted the job.
    """
    try:
        client_factory(dispatch.agent_url, dispatch.agent_token).submit_job(dispatch.request)
    except (AgentCallError, ValueError) as exc:
        busy = getattr(exc, "status", None) == 409
        fail_dispatch(dispatch.attempt_id, str(exc), busy=busy, now=now)
        log.warning("dispatch_failed", job_id=dispatch.job_id, agent_id=str(dispatch.agent_id), error=str(exc))
        return False
    with transaction.atomic():
        attempt, job = lock_attempt(dispatch.attempt_id)
        attempt.start(now)
        if job.attempt == attempt.number:
            job.start(f"agent accepted attempt {attempt.number}", now)
    log.info("dispatched", job_id=dispatch.job_id, attempt=dispatch.request.attempt, agent_id=str(dispatch.agent_id))
    return True


def fail_dispatch(attempt_id: int, reason: str, *, busy: bool, now: datetime | None = None) -> bool:
    """The agent refused an attempt it was handed (a push agent's 4xx/5xx, a pull agent's rejection).

    The attempt ends ``failed``; its job is retried under the policy, without using up an attempt when the agent
    was only busy.

    Args:
        attempt_id: The attempt.
        reason: What the agent said.
        busy: True when it refused only because it runs another job.
        now: Current time.

    Returns:
        True when the attempt was still its job's current one and ended now.
    """
    with transaction.atomic():
        attempt, job = lock_attempt(attempt_id)
        if attempt.is_terminal or job.attempt != attempt.number:
            return False
        attempt.finish(AttemptStatus.FAILED, f"dispatch refused: {reason}", now)
        job_retry_or_fail(job, "agent was busy" if busy else f"dispatch failed: {reason}", penalty=not busy, now=now)
        free_agent(attempt.agent_id)
    return True


def _send_in_thread(dispatch: Dispatch, client_factory: ClientFactory, now: datetime) -> bool:
    """:func:`send` on a worker thread of the pass, with that thread's own database connection closed after."""
    try:
        return send(dispatch, client_factory, now)
    except Exception:  # one failed send must not end the pass; the attempt stays dispatching for recovery
        log.exception("dispatch_send_failed", job_id=dispatch.job_id)
        return False
    finally:
        connection.close()  # returned to the pool when one is configured


def dispatch_pending(
    now: datetime | None = None,
    client_factory: ClientFactory = AgentClient,
    *,
    budget_s: float | None = None,
    concurrency: int | None = None,
) -> int:
    """Claim and dispatch as many due pending jobs as there are idle capable agents.

    Due jobs are read in id order, a batch at a time, until no idle agent is left for them or the pass's time
    budget is spent (the health steps must run again soon). A hardware class found without an idle agent is
    skipped for the rest of the pass, so a long queue for busy hardware costs one look, not one per job.
    Claims are made one by one on this thread (each a short transaction); the accepted claims are sent to their
    push agents by ``concurrency`` threads at once, so a slow agent does not hold up the others.

    A job claimed for a pull agent is not sent: its attempt waits, ``dispatching``, for the agent's next work
    request (:mod:`scheduling.pull`), which hands it over.

    Args:
        now: Current time.
        client_factory: Builds the agent client.
        budget_s: Seconds after which no new claim starts (default ``RUCKUS_DISPATCH_PASS_BUDGET_S``).
        concurrency: Sends in flight at once (default ``RUCKUS_DISPATCH_CONCURRENCY``; 1 sends on this thread).

    Returns:
        Number of jobs claimed (sent, accepted or not, or queued for pull agents).
    """
    now = now or timezone.now()
    deadline = time.monotonic() + (settings.RUCKUS_DISPATCH_PASS_BUDGET_S if budget_s is None else budget_s)
    threads = max(1, settings.RUCKUS_DISPATCH_CONCURRENCY if concurrency is None else concurrency)
    no_agent: set[str] = set()
    claimed = 0
    after = 0
    pool = ThreadPoolExecutor(threads, thread_name_prefix="dispatch") if threads > 1 else None
    try:
        while time.monotonic() < deadline:
            due = list(
                Job.objects.filter(status=JobStatus.PENDING, pk__gt=after)
                .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
                .order_by("id")
                .values_list("id", "hardware_fingerprint")[:CLAIM_BATCH]
            )
            if not due:
                break
            after = due[-1][0]
            for job_id, fingerprint in due:
                if fingerprint in no_agent or time.monotonic() >= deadline:
                    continue
                dispatch = claim(job_id, now, no_agent)
                if dispatch is None:
                    continue
                claimed += 1
                if dispatch.agent_mode == AgentMode.PULL:
                    log.info("queued_for_pull_agent", job_id=dispatch.job_id, attempt=dispatch.request.attempt,
                             agent_id=str(dispatch.agent_id))
                elif pool is None:
                    send(dispatch, client_factory, now)
                else:
                    pool.submit(_send_in_thread, dispatch, client_factory, now)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return claimed
