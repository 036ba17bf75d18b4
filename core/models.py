"""The append-only log of every state change of experiments, jobs, attempts and agents (DESIGN section 4).

The log refers to the other apps' models by name only (``"experiments.Job"``), so this module imports none of
them and every app can record its transitions here.
"""

from __future__ import annotations

from django.db import models


class TransitionEntity(models.TextChoices):
    """Kind of object a transition belongs to."""

    EXPERIMENT = "experiment", "Experiment"
    JOB = "job", "Job"
    ATTEMPT = "attempt", "Attempt"
    AGENT = "agent", "Agent"


class StateTransition(models.Model):
    """One state change with its reason.

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
        "experiments.Experiment", null=True, blank=True, on_delete=models.CASCADE, related_name="transitions"
    )
    job = models.ForeignKey(
        "experiments.Job", null=True, blank=True, on_delete=models.CASCADE, related_name="transitions"
    )
    attempt = models.ForeignKey(
        "experiments.JobAttempt", null=True, blank=True, on_delete=models.CASCADE, related_name="transitions"
    )
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="transitions"
    )
    from_state = models.CharField(max_length=20, blank=True, default="")
    to_state = models.CharField(max_length=20)
    reason = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        # The table was created by the experiments app, which owned this model first.
        db_table = "experiments_statetransition"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["job", "created_at"], name="transition_job_idx"),
            models.Index(fields=["agent", "created_at"], name="transition_agent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.from_state or '-'} -> {self.to_state}: {self.reason}"
