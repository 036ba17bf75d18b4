"""Writes for experiments and jobs: creation and expansion, state transitions, cancel, retry.

Every state change goes through :func:`job_transition` (or the experiment equivalent), which checks the state
machine, records a :class:`~experiments.models.StateTransition` with the reason, re-derives the experiment
status and schedules the websocket event after commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from common.catalog import TASKS, task_params
from experiments.models import (
    JOB_ACTIVE_STATUSES,
    JOB_TERMINAL_STATUSES,
    AttemptStatus,
    Experiment,
    ExperimentStatus,
    InvalidTransition,
    Job,
    JobAttempt,
    JobStatus,
    StateTransition,
    TransitionEntity,
)
from experiments.planning import plan_experiment
from ruckus_server.events import emit_experiment_updated, emit_job_updated

log = structlog.get_logger(__name__)


# --------------------------------------------------------------------------------------------------
# Agent selection and expansion
# --------------------------------------------------------------------------------------------------


@transaction.atomic
def experiment_create(
    *,
    name: str,
    task: dict[str, Any],
    models: list[dict[str, Any]],
    runtimes: list[dict[str, Any]],
    agents: dict[str, Any],
    runs_per_job: int,
    description: str = "",
    requested_metrics: list[str] | None = None,
    owner: Any = None,
) -> Experiment:
    """Create an experiment and expand it into jobs (one per runnable (model, runtime, agent)).

    Input is expected to be validated already (the API serializer does it); task params are normalized here
    so the stored params carry every default the agents will use.

    Args:
        name: Experiment name.
        task: ``{"name", "params"}``.
        models: Model specs.
        runtimes: Runtime specs.
        agents: Agent selection.
        runs_per_job: Runs per job (1-100).
        description: Free text.
        requested_metrics: Metrics asked for.
        owner: Creating user.

    Returns:
        The experiment, with its plan stored and its jobs created.
    """
    params = task_params(task["name"], task.get("params") or {}).model_dump(mode="json")
    experiment = Experiment.objects.create(
        name=name,
        description=description,
        task_name=task["name"],
        task_params=params,
        model_specs=models,
        runtime_specs=runtimes,
        agent_selection=agents,
        runs_per_job=runs_per_job,
        requested_metrics=requested_metrics or [],
        owner=owner,
    )
    plan = plan_experiment(
        model_specs=models, runtime_specs=runtimes, agent_selection=agents, requested_metrics=requested_metrics
    )
    experiment.plan = plan.as_json()
    experiment.save(update_fields=["plan"])
    agents_by_id = {str(a.pk): a for a in Agent.objects.filter(pk__in=[j.agent_id for j in plan.jobs])}
    for item in plan.jobs:
        job = Job.objects.create(
            experiment=experiment,
            model_spec=item.model.model_dump(mode="json", exclude_none=True),
            runtime_spec=item.runtime.model_dump(mode="json"),
            model_name=item.model.name,
            runtime_name=item.runtime.name,
            agent=agents_by_id[item.agent_id],
            hardware_fingerprint=item.hardware_fingerprint,
            max_attempts=settings.RUCKUS_MAX_ATTEMPTS,
        )
        _log_transition(job=job, from_state="", to_state=JobStatus.PENDING, reason="created by expansion")
    reason = "created"
    if plan.unrunnable:
        reason += f"; {len(plan.unrunnable)} combination(s) cannot run"
    _log_transition(experiment=experiment, from_state="", to_state=ExperimentStatus.PENDING, reason=reason)
    experiment_refresh_status(experiment)
    log.info("experiment_created", experiment_id=experiment.pk, jobs=plan.job_count,
             unrunnable=len(plan.unrunnable))
    return experiment


# --------------------------------------------------------------------------------------------------
# Transitions
# --------------------------------------------------------------------------------------------------


def _log_transition(
    *,
    from_state: str,
    to_state: str,
    reason: str,
    experiment: Experiment | None = None,
    job: Job | None = None,
    attempt: JobAttempt | None = None,
    agent: Agent | None = None,
) -> StateTransition:
    """Append one entry to the transition log."""
    if attempt is not None:
        entity = TransitionEntity.ATTEMPT
    elif job is not None:
        entity = TransitionEntity.JOB
    elif experiment is not None:
        entity = TransitionEntity.EXPERIMENT
    else:
        entity = TransitionEntity.AGENT
    if job is not None and experiment is None:
        experiment = job.experiment
    return StateTransition.objects.create(
        entity=entity,
        experiment=experiment,
        job=job,
        attempt=attempt,
        agent=agent if agent is not None else (job.agent if job is not None else None),
        from_state=from_state,
        to_state=to_state,
        reason=reason[:1000],
    )


def agent_log_transition(agent: Agent, from_state: str, to_state: str, reason: str) -> None:
    """Record an agent state change (used by the agents app).

    Args:
        agent: The agent.
        from_state: Previous status.
        to_state: New status.
        reason: Why.
    """
    _log_transition(agent=agent, from_state=from_state, to_state=to_state, reason=reason)


def job_transition(job: Job, to: str, *, reason: str, now: datetime | None = None, **fields: Any) -> Job:
    """Move a job to a new state, enforcing the state machine.

    Args:
        job: The job (ideally locked with ``select_for_update`` by the caller).
        to: Target status.
        reason: Why, recorded in the log.
        now: Timestamp to use (default: now).
        **fields: Other job fields to set in the same save (``agent``, ``attempt``, ``not_before`` ...).

    Returns:
        The saved job.

    Raises:
        InvalidTransition: When the state machine does not allow it.
    """
    if not job.can_transition(to):
        raise InvalidTransition(f"job #{job.pk} cannot go from {job.status} to {to}")
    now = now or timezone.now()
    previous = job.status
    job.status = to
    job.status_reason = reason[:1000]
    for key, value in fields.items():
        setattr(job, key, value)
    if to in JOB_ACTIVE_STATUSES and job.started_at is None:
        job.started_at = now
    if to in JOB_TERMINAL_STATUSES:
        job.finished_at = now
    elif to == JobStatus.PENDING:
        job.finished_at = None
    job.save()
    _log_transition(job=job, from_state=previous, to_state=to, reason=reason)
    emit_job_updated(job.pk)
    experiment_refresh_status(job.experiment)
    return job


def derive_experiment_status(counts: dict[str, int]) -> str:
    """Derive an experiment's status from the number of its jobs in each status.

    Args:
        counts: Job status -> count.

    Returns:
        The experiment status.
    """
    total = sum(counts.values())
    if total == 0:
        return ExperimentStatus.FAILED  # nothing could run: the plan says why
    terminal = sum(counts.get(s, 0) for s in JOB_TERMINAL_STATUSES)
    if terminal < total:
        untouched = counts.get(JobStatus.PENDING, 0) == total
        return ExperimentStatus.PENDING if untouched else ExperimentStatus.RUNNING
    completed = counts.get(JobStatus.COMPLETED, 0)
    cancelled = counts.get(JobStatus.CANCELLED, 0)
    if completed == total:
        return ExperimentStatus.COMPLETED
    if cancelled and completed + cancelled == total:
        return ExperimentStatus.CANCELLED
    if completed:
        return ExperimentStatus.PARTIALLY_FAILED
    if cancelled == total:
        return ExperimentStatus.CANCELLED
    return ExperimentStatus.FAILED


def experiment_refresh_status(experiment: Experiment) -> Experiment:
    """Re-derive and save the experiment status from its jobs, logging a change.

    Args:
        experiment: The experiment.

    Returns:
        The experiment.
    """
    from django.db.models import Count

    counts = {
        row["status"]: row["n"]
        for row in experiment.jobs.values("status").annotate(n=Count("id")).order_by()
    }
    new = derive_experiment_status(counts)
    if new == experiment.status:
        return experiment
    previous = experiment.status
    now = timezone.now()
    experiment.status = new
    if new != ExperimentStatus.PENDING and experiment.started_at is None:
        experiment.started_at = now
    experiment.finished_at = now if experiment.is_terminal else None
    experiment.save(update_fields=["status", "started_at", "finished_at", "updated_at"])
    _log_transition(
        experiment=experiment, from_state=previous, to_state=new, reason=_experiment_reason(experiment, counts)
    )
    emit_experiment_updated(experiment.pk)
    return experiment


def _experiment_reason(experiment: Experiment, counts: dict[str, int]) -> str:
    """Explain an experiment status from its job counts."""
    if not counts:
        unrunnable = experiment.plan.get("unrunnable") or []
        return "no job could be planned: " + "; ".join(u["reason"] for u in unrunnable)[:900]
    return "jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


# --------------------------------------------------------------------------------------------------
# Operator actions
# --------------------------------------------------------------------------------------------------


def job_cancel(job_id: int, *, reason: str = "cancelled by user") -> Job:
    """Cancel a job. A job on an agent is marked ``cancel_requested`` so the scheduler tells the agent.

    Args:
        job_id: The job.
        reason: Why.

    Returns:
        The job.

    Raises:
        InvalidTransition: When the job is already finished.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("experiment", "agent").get(pk=job_id)
        if job.is_terminal:
            raise InvalidTransition(f"job #{job.pk} is already {job.status}")
        on_agent = job.status in JOB_ACTIVE_STATUSES
        attempt = job.current_attempt
        if attempt is not None and not attempt.is_terminal:
            attempt.status = AttemptStatus.CANCELLED
            attempt.outcome = reason
            attempt.finished_at = timezone.now()
            attempt.save(update_fields=["status", "outcome", "finished_at", "updated_at"])
            _log_transition(job=job, attempt=attempt, from_state="", to_state=AttemptStatus.CANCELLED,
                            reason=reason)
        return job_transition(job, JobStatus.CANCELLED, reason=reason, cancel_requested=on_agent)


def job_retry(job_id: int, *, reason: str = "retried by user") -> Job:
    """Send a failed, cancelled or timed-out job back to ``pending`` with one more attempt allowed.

    Args:
        job_id: The job.
        reason: Why.

    Returns:
        The job.

    Raises:
        InvalidTransition: When the job is not in a retryable state.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update(of=("self",)).select_related("experiment", "agent").get(pk=job_id)
        if job.status == JobStatus.COMPLETED:
            raise InvalidTransition(f"job #{job.pk} completed; create a new experiment to measure again")
        if not job.is_terminal:
            raise InvalidTransition(f"job #{job.pk} is {job.status}; only finished jobs can be retried")
        return job_transition(
            job,
            JobStatus.PENDING,
            reason=reason,
            not_before=None,
            cancel_requested=False,
            max_attempts=max(job.max_attempts, job.attempt + 1),
        )


def experiment_cancel(experiment_id: int, *, reason: str = "experiment cancelled by user") -> Experiment:
    """Cancel every unfinished job of an experiment.

    Args:
        experiment_id: The experiment.
        reason: Why.

    Returns:
        The experiment (status re-derived).

    Raises:
        InvalidTransition: When the experiment has already finished.
    """
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment_id)
        if experiment.is_terminal:
            raise InvalidTransition(f"experiment #{experiment.pk} is already {experiment.status}")
        for job_id in experiment.jobs.exclude(status__in=JOB_TERMINAL_STATUSES).values_list("id", flat=True):
            job_cancel(job_id, reason=reason)
        experiment.refresh_from_db()
        return experiment_refresh_status(experiment)


def known_task_names() -> list[str]:
    """Names of the tasks the server accepts."""
    return sorted(TASKS)
