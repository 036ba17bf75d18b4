"""Experiment, Job and JobAttempt, with their lifecycle methods (DESIGN sections 4 and 5).

The lifecycle methods (:meth:`Job.transition` and the named steps built on it, :meth:`JobAttempt.start`,
:meth:`JobAttempt.finish`, :meth:`Experiment.refresh_status`) are the only way to change a status: each checks
the state machine, records a transition with its reason in the log and announces the change to websocket
clients after the transaction commits. Callers lock the rows they change (``select_for_update``).
"""


from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Count
from django.utils import timezone

from common.protocol import MAX_RUNS_PER_JOB, MIN_RUNS_PER_JOB, LoadSpec
from common.statuses import (
    ATTEMPT_TERMINAL_STATUSES,
    EXPERIMENT_TERMINAL_STATUSES,
    JOB_ACTIVE_STATUSES,
    JOB_TERMINAL_STATUSES,
    JOB_TRANSITIONS,
    AttemptStatus,
    ExperimentStatus,
    JobStatus,
)
from core import events
from core.transitions import log_transition

__all__ = [
    "ATTEMPT_TERMINAL_STATUSES",
    "EXPERIMENT_TERMINAL_STATUSES",
    "JOB_ACTIVE_STATUSES",
    "JOB_TERMINAL_STATUSES",
    "AttemptStatus",
    "Experiment",
    "ExperimentStatus",
    "InvalidTransition",
    "Job",
    "JobAttempt",
    "JobStatus",
    "derive_experiment_status",
]


class InvalidTransition(Exception):
    """Raised when a state change is not allowed by the state machine."""


class Experiment(models.Model):
    """Task (+ params) x models x runtimes x agent selection, run ``runs_per_job`` times per job.

    Attributes:
        name: Human name.
        description: Free text.
        task_name: Task name (see ``common.catalog.TASKS``).
        task_params: Validated task params (defaults filled in).
        model_specs: List of model specs (``{"name": ...}``; ``models`` in the API).
        runtime_specs: List of runtime specs (``runtimes`` in the API) (``{"name": ..., "params": {...}}``).
        agent_selection: ``{"all": true}``, ``{"ids": [...]}`` or ``{"labels": [...]}``.
        runs_per_job: Sequential runs per job (1-100); run 1 is the cold run.
        requested_metrics: Metrics the user wants (drives capability matching).
        plan: Expansion result: jobs made and combinations that cannot run, with reasons.
        load: A load sweep (:class:`common.protocol.LoadSpec` as JSON) each job runs instead of ``runs_per_job``
            sequential runs (serving under load); null for sequential runs.
        status: Derived from the jobs (kept in a column so lists can filter on it).
        owner: Creator.
    """

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    task_name = models.CharField(max_length=100)
    task_params = models.JSONField(default=dict, blank=True)
    model_specs = models.JSONField(default=list)
    runtime_specs = models.JSONField(default=list)
    agent_selection = models.JSONField(default=dict)
    runs_per_job = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(MIN_RUNS_PER_JOB), MaxValueValidator(MAX_RUNS_PER_JOB)]
    )
    requested_metrics = models.JSONField(default=list, blank=True)
    plan = models.JSONField(default=dict, blank=True)
    load = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=ExperimentStatus.choices(), default=ExperimentStatus.PENDING)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="experiments"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="exp_status_updated_idx"),
            models.Index(fields=["updated_at"], name="exp_updated_idx"),
            models.Index(fields=["owner", "created_at"], name="exp_owner_created_idx"),
        ]
        # Operators act on their own experiments; this lets fleet admins act on anyone's (core.roles).
        permissions = [("manage_any_experiment", "Can act on any user's experiments and their jobs")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(runs_per_job__gte=MIN_RUNS_PER_JOB, runs_per_job__lte=MAX_RUNS_PER_JOB),
                name="experiment_runs_per_job_range",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    @property
    def is_terminal(self) -> bool:
        """True when no job of the experiment will change any more."""
        return self.status in EXPERIMENT_TERMINAL_STATUSES

    @property
    def load_spec(self) -> LoadSpec | None:
        """The load sweep as the protocol model (None for an experiment of sequential runs)."""
        return LoadSpec.model_validate(self.load) if self.load else None

    def refresh_status(self, now: datetime | None = None, *, job_status: str | None = None) -> Experiment:
        """Re-derive the status from the jobs and save it, logging a change.

        The experiment row is locked before the jobs are counted: two jobs finishing in concurrent transactions
        then count one after the other, and the second sees the first one's committed status (otherwise both
        could see the other unfinished and leave the experiment ``running`` with every job done).

        A job that has just become active (assigned, running) makes the experiment ``running`` whatever the other
        jobs do: not all pending, not all finished. When the experiment already says so, there is nothing to
        count and no lock to take, which keeps dispatch from queueing on the experiment's row and from counting
        every job of a large experiment at each step.

        Args:
            now: Timestamp of the change (default: now).
            job_status: The status one of its jobs has just moved to, when that is why the status is re-derived.

        Returns:
            The experiment (this instance, updated).
        """
        if job_status in JOB_ACTIVE_STATUSES:
            current = Experiment.objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if current == ExperimentStatus.RUNNING:
                self.status = current
                return self
        with transaction.atomic():
            return self._refresh_status_locked(now, job_status)

    def _refresh_status_locked(self, now: datetime | None, job_status: str | None = None) -> Experiment:
        """:meth:`refresh_status` inside its transaction."""
        # FOR NO KEY UPDATE is enough (the key never changes) and does not conflict with the key-share locks that
        # rows referring to the experiment (jobs' transition log entries) take.
        locked = Experiment.objects.select_for_update(no_key=True).only("status").filter(pk=self.pk)
        held = list(locked)  # take the lock; the values are read below, after it is held
        # A job finished while others have not: still running, and an indexed EXISTS answers that without counting
        # every job of the experiment. Read under the lock, so the last two jobs to finish cannot both see the
        # other one unfinished.
        if (
            job_status in JOB_TERMINAL_STATUSES
            and held
            and held[0].status == ExperimentStatus.RUNNING
            and self.jobs.exclude(status__in=JOB_TERMINAL_STATUSES).exists()
        ):
            self.status = ExperimentStatus.RUNNING
            return self
        counts = {row["status"]: row["n"] for row in self.jobs.values("status").annotate(n=Count("id")).order_by()}
        fresh = Experiment.objects.values("status", "started_at").get(pk=self.pk)
        self.status, self.started_at = fresh["status"], fresh["started_at"]
        new = derive_experiment_status(counts)
        if new == self.status:
            return self
        previous = self.status
        now = now or timezone.now()
        self.status = new
        if new != ExperimentStatus.PENDING and self.started_at is None:
            self.started_at = now
        self.finished_at = now if self.is_terminal else None
        self.save(update_fields=["status", "started_at", "finished_at", "updated_at"])
        log_transition(experiment=self, from_state=previous, to_state=new, reason=self._status_reason(counts))
        events.emit(events.EXPERIMENT_UPDATED, self.pk)
        return self

    def _status_reason(self, counts: dict[str, int]) -> str:
        """Explain the status from the job counts."""
        if not counts:
            unrunnable = (self.plan or {}).get("unrunnable") or []
            return "no job could be planned: " + "; ".join(u["reason"] for u in unrunnable)[:900]
        return "jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


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


class JobQuerySet(models.QuerySet["Job"]):
    """Queries of jobs."""

    def with_experiment(self) -> JobQuerySet:
        """Jobs with their experiment joined, without the experiment's stored plan.

        The plan lists every job of the experiment (megabytes for a large one); the paths that lock a job (dispatch,
        callbacks, retries) read the experiment's settings and status, never its plan, and load it once per job.

        Returns:
            The queryset.
        """
        return self.select_related("experiment").defer("experiment__plan")


class Job(models.Model):
    """One (model, runtime, agent) combination of an experiment: ``runs_per_job`` runs on one hardware.

    Attributes:
        experiment: Parent experiment.
        model_spec: Model spec sent to the agent.
        runtime_spec: Runtime spec sent to the agent.
        model_name: Denormalized model name (filters, comparison rows).
        runtime_name: Denormalized runtime name.
        agent: Agent the job is placed on (current or last attempt).
        hardware_fingerprint: Hardware the job measures; retries stay on it.
        status: State (see :class:`JobStatus`).
        status_reason: Why the last transition happened.
        attempt: Current attempt number (0 before the first dispatch).
        max_attempts: Retry budget.
        not_before: Earliest time the scheduler may dispatch it (retry backoff).
        cancel_requested: Set when a cancel must still reach the agent.
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="jobs")
    model_spec = models.JSONField(default=dict)
    runtime_spec = models.JSONField(default=dict)
    model_name = models.CharField(max_length=200)
    runtime_name = models.CharField(max_length=100)
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    hardware_fingerprint = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=20, choices=JobStatus.choices(), default=JobStatus.PENDING)
    status_reason = models.CharField(max_length=1000, blank=True, default="")
    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    not_before = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            # The scheduler's claim query: pending jobs whose backoff has passed, oldest first.
            models.Index(fields=["status", "not_before", "id"], name="job_claim_idx"),
            models.Index(fields=["experiment", "status"], name="job_experiment_status_idx"),
            models.Index(fields=["agent", "status"], name="job_agent_status_idx"),
            models.Index(fields=["updated_at"], name="job_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"job #{self.pk} {self.model_name}/{self.runtime_name} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        """True when the job is in a terminal state."""
        return self.status in JOB_TERMINAL_STATUSES

    def can_transition(self, to: str) -> bool:
        """Tell whether the state machine allows moving to ``to``.

        Args:
            to: Target status.

        Returns:
            True when allowed.
        """
        return to in JOB_TRANSITIONS.get(self.status, frozenset())

    @property
    def current_attempt(self) -> JobAttempt | None:
        """The attempt with the current number, if any."""
        if not self.attempt:
            return None
        return self.attempts.filter(number=self.attempt).first()

    def transition(self, to: str, *, reason: str, now: datetime | None = None, **fields: Any) -> Job:
        """Move the job to a new state: the one place a job's status changes.

        Checks the state machine, saves (with any other fields given), records the transition, announces the
        job after commit and re-derives the experiment's status.

        Args:
            to: Target status.
            reason: Why, recorded in the log and in ``status_reason``.
            now: Timestamp (default: now).
            **fields: Other fields to set in the same save (``agent``, ``attempt``, ``not_before`` ...).

        Returns:
            The job.

        Raises:
            InvalidTransition: When the state machine does not allow it.
        """
        if not self.can_transition(to):
            raise InvalidTransition(f"job #{self.pk} cannot go from {self.status} to {to}")
        now = now or timezone.now()
        previous = self.status
        self.status = to
        self.status_reason = reason[:1000]
        for key, value in fields.items():
            setattr(self, key, value)
        if to in JOB_ACTIVE_STATUSES and self.started_at is None:
            self.started_at = now
        if to in JOB_TERMINAL_STATUSES:
            self.finished_at = now
        elif to == JobStatus.PENDING:
            self.finished_at = None
        self.save()
        log_transition(job=self, from_state=previous, to_state=to, reason=reason)
        events.emit(events.JOB_UPDATED, self.pk)
        self.experiment.refresh_status(now, job_status=to)
        return self

    def announce(self) -> None:
        """Tell websocket clients the job changed without a status change (e.g. new progress)."""
        events.emit(events.JOB_UPDATED, self.pk)

    def assign(self, attempt: JobAttempt, now: datetime | None = None) -> Job:
        """A new attempt was dispatched: ``assigned`` to the attempt's agent.

        Args:
            attempt: The new attempt.
            now: Timestamp.

        Returns:
            The job.
        """
        return self.transition(
            JobStatus.ASSIGNED, reason=f"attempt {attempt.number} assigned to {attempt.agent.name}", now=now,
            agent=attempt.agent, attempt=attempt.number,
        )

    def start(self, reason: str, now: datetime | None = None) -> Job:
        """The agent has the current attempt: ``assigned`` -> ``running`` (no-op in any other state).

        Args:
            reason: Why we know.
            now: Timestamp.

        Returns:
            The job.
        """
        if self.status != JobStatus.ASSIGNED:
            return self
        return self.transition(JobStatus.RUNNING, reason=reason, now=now)

    def cancel(self, reason: str, now: datetime | None = None) -> Job:
        """Cancel the job and its current attempt; a job on an agent keeps ``cancel_requested`` for the agent.

        Args:
            reason: Why.
            now: Timestamp.

        Returns:
            The job.

        Raises:
            InvalidTransition: When the job has already finished.
        """
        if self.is_terminal:
            raise InvalidTransition(f"job #{self.pk} is already {self.status}")
        on_agent = self.status in JOB_ACTIVE_STATUSES
        attempt = self.current_attempt
        if attempt is not None:
            attempt.finish(AttemptStatus.CANCELLED, reason, now)
        return self.transition(JobStatus.CANCELLED, reason=reason, now=now, cancel_requested=on_agent)

    def retry(self, reason: str, now: datetime | None = None) -> Job:
        """An operator sends a failed, cancelled or timed-out job back to ``pending`` with one more attempt.

        Args:
            reason: Why.
            now: Timestamp.

        Returns:
            The job.

        Raises:
            InvalidTransition: When the job is not finished, or completed.
        """
        if self.status == JobStatus.COMPLETED:
            raise InvalidTransition(f"job #{self.pk} completed; create a new experiment to measure again")
        if not self.is_terminal:
            raise InvalidTransition(f"job #{self.pk} is {self.status}; only finished jobs can be retried")
        return self.transition(
            JobStatus.PENDING, reason=reason, now=now, not_before=None, cancel_requested=False,
            max_attempts=max(self.max_attempts, self.attempt + 1),
        )


class JobAttempt(models.Model):
    """One dispatch of a job to an agent, identified by a random ``attempt_token``.

    Attributes:
        job: The job.
        number: Attempt number (1-based).
        agent: Agent it was dispatched to.
        attempt_token: Random token; agent callbacks must carry it (a stale one gets 409).
        status: Outcome so far.
        lease_deadline: When the attempt is considered timed out if not finished.
        outcome: Reason text of the final state.
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="attempts"
    )
    attempt_token = models.CharField(max_length=128, unique=True)
    status = models.CharField(max_length=20, choices=AttemptStatus.choices(), default=AttemptStatus.DISPATCHING)
    lease_deadline = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=1000, blank=True, default="")
    progress = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job_id", "number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="attempt_job_number_unique")]
        indexes = [
            models.Index(fields=["status", "lease_deadline"], name="attempt_status_lease_idx"),
            models.Index(fields=["agent", "status"], name="attempt_agent_status_idx"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of job #{self.job_id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        """True when the attempt has ended."""
        return self.status in ATTEMPT_TERMINAL_STATUSES

    @property
    def is_current(self) -> bool:
        """True while this attempt is the job's current one and both are unfinished (it may change the job)."""
        return self.number == self.job.attempt and not self.is_terminal and not self.job.is_terminal

    def start(self, now: datetime | None = None) -> bool:
        """The agent has accepted the attempt: ``dispatching`` -> ``running`` (no-op in any other state).

        Args:
            now: Timestamp.

        Returns:
            True when the attempt changed.
        """
        if self.status != AttemptStatus.DISPATCHING:
            return False
        self.status = AttemptStatus.RUNNING
        self.started_at = now or timezone.now()
        self.save(update_fields=["status", "started_at", "updated_at"])
        log_transition(job=self.job, attempt=self, from_state=AttemptStatus.DISPATCHING,
                       to_state=AttemptStatus.RUNNING, reason="the agent has the job")
        return True

    def record_progress(self, progress: dict[str, Any], now: datetime | None = None) -> None:
        """Store the agent's latest progress report (a dispatching attempt is then running).

        Args:
            progress: The report as JSON.
            now: Timestamp.
        """
        self.start(now)
        self.progress = progress
        self.save(update_fields=["progress", "updated_at"])

    def finish(self, status: str, reason: str, now: datetime | None = None) -> bool:
        """End the attempt with an outcome (no-op when it has already ended).

        Args:
            status: A terminal attempt status (``completed``, ``failed``, ``lost``, ``cancelled`` ...).
            reason: Why, kept as the attempt's ``outcome``.
            now: Timestamp.

        Returns:
            True when the attempt changed.

        Raises:
            InvalidTransition: When ``status`` is not a terminal attempt status.
        """
        if status not in ATTEMPT_TERMINAL_STATUSES:
            raise InvalidTransition(f"attempt status {status!r} is not an outcome")
        if self.is_terminal:
            return False
        previous = self.status
        self.status = status
        self.outcome = reason[:1000]
        self.finished_at = now or timezone.now()
        self.save(update_fields=["status", "outcome", "finished_at", "updated_at"])
        log_transition(job=self.job, attempt=self, from_state=previous, to_state=status, reason=reason)
        return True

    def lose(self, reason: str, now: datetime | None = None) -> bool:
        """The agent lost the attempt (agent gone, job unknown there).

        Args:
            reason: Why.
            now: Timestamp.

        Returns:
            True when the attempt changed.
        """
        return self.finish(AttemptStatus.LOST, reason, now)

    def revive(self, reason: str, now: datetime | None = None) -> bool:
        """Take back an attempt given up as ``lost`` whose agent turned out to be running it still.

        Only a lost attempt may come back, and only while it is still its job's latest attempt (the caller
        checks that the job has not moved on: see :func:`scheduling.revival.revive_attempt`).

        Args:
            reason: Why we know the agent has it.
            now: Timestamp.

        Returns:
            True when the attempt changed (``lost`` -> ``running``).
        """
        if self.status != AttemptStatus.LOST:
            return False
        self.status = AttemptStatus.RUNNING
        self.outcome = ""
        self.finished_at = None
        self.started_at = self.started_at or now or timezone.now()
        self.save(update_fields=["status", "outcome", "finished_at", "started_at", "updated_at"])
        log_transition(job=self.job, attempt=self, from_state=AttemptStatus.LOST, to_state=AttemptStatus.RUNNING,
                       reason=reason)
        return True
