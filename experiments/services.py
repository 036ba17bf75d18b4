"""Writes for experiments and jobs: creation and expansion, cancel, retry.

State changes themselves are the models' lifecycle methods (:meth:`~experiments.models.Job.transition` and the
steps built on it); these services lock the rows and call them.
"""

from __future__ import annotations

from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from pydantic import BaseModel

from common.statuses import JOB_TERMINAL_STATUSES, ExperimentStatus, JobStatus
from core.transitions import log_transition, log_transitions, transition_entry
from experiments.models import Experiment, InvalidTransition, Job
from experiments.planning import Plan, plan_experiment

log = structlog.get_logger(__name__)

#: Jobs per INSERT when an experiment is expanded (each with its log entry, stored in the same batches).
JOB_BATCH_SIZE = 1000


# --------------------------------------------------------------------------------------------------
# Agent selection and expansion
# --------------------------------------------------------------------------------------------------


@transaction.atomic
def experiment_create(
    *,
    name: str,
    task_name: str,
    task_params: BaseModel,
    models: list[dict[str, Any]],
    runtimes: list[dict[str, Any]],
    agents: dict[str, Any],
    runs_per_job: int,
    description: str = "",
    requested_metrics: list[str] | None = None,
    owner: Any = None,
    load: dict[str, Any] | None = None,
) -> Experiment:
    """Create an experiment and expand it into jobs (one per runnable (model, runtime, agent)).

    Input is validated at the edge (the API serializer): task params arrive normalized, with every default the
    agents will use filled in.

    Args:
        name: Experiment name.
        task_name: Task name.
        task_params: The task's validated params (e.g. from ``common.catalog.parse_params``).
        models: Model specs.
        runtimes: Runtime specs.
        agents: Agent selection.
        runs_per_job: Runs per job (1-100).
        description: Free text.
        requested_metrics: Metrics asked for.
        owner: Creating user.
        load: A validated load spec (JSON): each job runs it as one sweep instead of ``runs_per_job`` runs.

    Returns:
        The experiment, with its plan stored and its jobs created.
    """
    # The plan is made once, before anything is written, and the experiment is stored with it in one INSERT.
    plan = plan_experiment(
        model_specs=models, runtime_specs=runtimes, agent_selection=agents, requested_metrics=requested_metrics,
        load=load,
    )
    experiment = Experiment.objects.create(
        name=name,
        description=description,
        task_name=task_name,
        task_params=task_params.model_dump(mode="json"),
        model_specs=models,
        runtime_specs=runtimes,
        agent_selection=agents,
        runs_per_job=runs_per_job,
        requested_metrics=requested_metrics or [],
        plan=plan.as_json(),
        load=load,
        owner=owner,
    )
    _create_jobs(experiment, plan)
    reason = "created"
    if plan.unrunnable:
        reason += f"; {len(plan.unrunnable)} combination(s) cannot run"
    log_transition(experiment=experiment, from_state="", to_state=ExperimentStatus.PENDING, reason=reason)
    experiment.refresh_status()
    log.info("experiment_created", experiment_id=experiment.pk, jobs=plan.job_count,
             unrunnable=len(plan.unrunnable))
    return experiment


def _create_jobs(experiment: Experiment, plan: Plan) -> None:
    """Create the plan's jobs and their ``created by expansion`` log entries, :data:`JOB_BATCH_SIZE` per INSERT.

    A fleet-scale experiment makes thousands of jobs (1,000 agents x 15 combinations): one INSERT per job and per
    log entry took half a minute, a batch per INSERT takes a fraction of a second. No event is sent per job: nobody
    can be subscribed to an experiment that did not exist before this transaction (its status is announced by
    :meth:`~experiments.models.Experiment.refresh_status` when it changes).

    Args:
        experiment: The new experiment.
        plan: Its plan.
    """
    max_attempts = settings.RUCKUS_MAX_ATTEMPTS
    # The plan's jobs share one spec object per (model, runtime): dump each once, not once per job.
    dumped: dict[int, dict[str, Any]] = {}

    def spec(value: BaseModel, **options: Any) -> dict[str, Any]:
        key = id(value)
        if key not in dumped:
            dumped[key] = value.model_dump(mode="json", **options)
        return dumped[key]

    for start in range(0, len(plan.jobs), JOB_BATCH_SIZE):
        jobs = Job.objects.bulk_create(
            [
                Job(
                    experiment=experiment,
                    model_spec=spec(item.model, exclude_none=True),
                    runtime_spec=spec(item.runtime),
                    model_name=item.model.name,
                    runtime_name=item.runtime.name,
                    agent_id=item.agent_id,
                    hardware_fingerprint=item.hardware_fingerprint,
                    max_attempts=max_attempts,
                )
                for item in plan.jobs[start:start + JOB_BATCH_SIZE]
            ]
        )
        log_transitions(
            transition_entry(job=job, from_state="", to_state=JobStatus.PENDING, reason="created by expansion")
            for job in jobs
        )


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
        return job.cancel(reason)


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
        return job.retry(reason)


def experiment_cancel(experiment_id: int, *, reason: str = "experiment cancelled by user") -> Experiment:
    """Cancel every unfinished job of an experiment.

    The experiment row is not locked first: every path locks a job before its experiment (to re-derive the
    status), and taking them in the other order here could deadlock with a result arriving meanwhile.

    Args:
        experiment_id: The experiment.
        reason: Why.

    Returns:
        The experiment (status re-derived).

    Raises:
        InvalidTransition: When the experiment has already finished.
    """
    with transaction.atomic():
        experiment = Experiment.objects.get(pk=experiment_id)
        if experiment.is_terminal:
            raise InvalidTransition(f"experiment #{experiment.pk} is already {experiment.status}")
        for job_id in experiment.jobs.exclude(status__in=JOB_TERMINAL_STATUSES).values_list("id", flat=True):
            job_cancel(job_id, reason=reason)
        return experiment.refresh_status()
