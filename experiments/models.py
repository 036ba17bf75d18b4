"""Experiment, Job, JobAttempt and the state-transition log (DESIGN sections 4 and 5)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from common.protocol import MAX_RUNS_PER_JOB, MIN_RUNS_PER_JOB


class ExperimentStatus(models.TextChoices):
    """Experiment status, derived from its jobs."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    PARTIALLY_FAILED = "partially_failed", "Partially failed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


EXPERIMENT_TERMINAL_STATUSES = frozenset(
    {
        ExperimentStatus.COMPLETED,
        ExperimentStatus.PARTIALLY_FAILED,
        ExperimentStatus.FAILED,
        ExperimentStatus.CANCELLED,
    }
)


class JobStatus(models.TextChoices):
    """Job states: pending -> assigned -> running -> completed | failed | cancelled | timed_out."""

    PENDING = "pending", "Pending"
    ASSIGNED = "assigned", "Assigned"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"


JOB_TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT})
JOB_ACTIVE_STATUSES = frozenset({JobStatus.ASSIGNED, JobStatus.RUNNING})

#: Allowed job transitions. A retryable failure returns an active job to ``pending`` (attempt + 1).
JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    JobStatus.PENDING: frozenset({JobStatus.ASSIGNED, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.ASSIGNED: frozenset(
        {JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.PENDING, JobStatus.FAILED, JobStatus.CANCELLED,
         JobStatus.TIMED_OUT}
    ),
    JobStatus.RUNNING: frozenset(
        {JobStatus.COMPLETED, JobStatus.PENDING, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT}
    ),
    # An operator may retry a finished job that did not complete.
    JobStatus.FAILED: frozenset({JobStatus.PENDING}),
    JobStatus.CANCELLED: frozenset({JobStatus.PENDING}),
    JobStatus.TIMED_OUT: frozenset({JobStatus.PENDING}),
    JobStatus.COMPLETED: frozenset(),
}


class AttemptStatus(models.TextChoices):
    """Outcome of one dispatch of a job to an agent."""

    DISPATCHING = "dispatching", "Dispatching"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    LOST = "lost", "Lost"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"
    INTERRUPTED = "interrupted", "Interrupted"


ATTEMPT_TERMINAL_STATUSES = frozenset(
    {
        AttemptStatus.COMPLETED,
        AttemptStatus.FAILED,
        AttemptStatus.LOST,
        AttemptStatus.CANCELLED,
        AttemptStatus.TIMED_OUT,
        AttemptStatus.INTERRUPTED,
    }
)


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
    status = models.CharField(max_length=20, choices=ExperimentStatus.choices, default=ExperimentStatus.PENDING)
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
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING)
    status_reason = models.CharField(max_length=1000, blank=True, default="")
    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    not_before = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

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
    status = models.CharField(max_length=20, choices=AttemptStatus.choices, default=AttemptStatus.DISPATCHING)
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


class TransitionEntity(models.TextChoices):
    """Kind of object a transition belongs to."""

    EXPERIMENT = "experiment", "Experiment"
    JOB = "job", "Job"
    ATTEMPT = "attempt", "Attempt"
    AGENT = "agent", "Agent"


class StateTransition(models.Model):
    """Append-only log of every state change, with its reason (DESIGN section 4).

    Attributes:
        entity: Kind of object.
        experiment: Set for experiment, job and attempt transitions.
        job: Set for job and attempt transitions.
        attempt: Set for attempt transitions.
        agent: Set for agent transitions (and job/attempt ones that involve an agent).
        from_state: Previous state (empty at creation).
        to_state: New state.
        reason: Why, in words.
    """

    entity = models.CharField(max_length=20, choices=TransitionEntity.choices)
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="transitions"
    )
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.CASCADE, related_name="transitions")
    attempt = models.ForeignKey(
        JobAttempt, null=True, blank=True, on_delete=models.CASCADE, related_name="transitions"
    )
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="transitions"
    )
    from_state = models.CharField(max_length=20, blank=True, default="")
    to_state = models.CharField(max_length=20)
    reason = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["job", "created_at"], name="transition_job_idx"),
            models.Index(fields=["agent", "created_at"], name="transition_agent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.from_state or '-'} -> {self.to_state}: {self.reason}"
