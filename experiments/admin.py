"""Admin for experiments, jobs and attempts."""

import json

from django.contrib import admin
from django.utils.html import format_html

from experiments.models import Experiment, Job, JobAttempt


def _pretty(value: object) -> str:
    """Readable JSON block."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


class JobInline(admin.TabularInline):
    """Jobs of an experiment."""

    model = Job
    fields = ["model_name", "runtime_name", "agent", "status", "attempt", "updated_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """Experiments with status, owner and dates."""

    list_display = ["id", "name", "task_name", "status", "runs_per_job", "owner", "created_at", "finished_at"]
    list_filter = ["status", "task_name", "created_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["spec_pretty", "plan_pretty", "status", "created_at", "updated_at", "started_at",
                       "finished_at"]
    exclude = ["task_params", "model_specs", "runtime_specs", "agent_selection", "plan"]
    inlines = [JobInline]

    @admin.display(description="specification")
    def spec_pretty(self, obj: Experiment) -> str:
        """Task, models, runtimes and agent selection as readable JSON."""
        return _pretty({"task": {"name": obj.task_name, "params": obj.task_params}, "models": obj.model_specs,
                        "runtimes": obj.runtime_specs, "agents": obj.agent_selection})

    @admin.display(description="plan")
    def plan_pretty(self, obj: Experiment) -> str:
        """Expansion plan as readable JSON."""
        return _pretty(obj.plan)


class AttemptInline(admin.TabularInline):
    """Attempts of a job (tokens hidden)."""

    model = JobAttempt
    fields = ["number", "agent", "status", "outcome", "lease_deadline", "started_at", "finished_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Jobs with their placement and state."""

    list_display = ["id", "experiment", "model_name", "runtime_name", "agent", "status", "attempt", "updated_at"]
    list_filter = ["status", "runtime_name", "model_name"]
    search_fields = ["model_name", "runtime_name", "hardware_fingerprint", "experiment__name"]
    raw_id_fields = ["experiment", "agent"]
    readonly_fields = ["created_at", "updated_at", "started_at", "finished_at"]
    inlines = [AttemptInline]


@admin.register(JobAttempt)
class JobAttemptAdmin(admin.ModelAdmin):
    """Attempts (the token is never displayed)."""

    list_display = ["id", "job", "number", "agent", "status", "lease_deadline", "finished_at"]
    list_filter = ["status"]
    raw_id_fields = ["job", "agent"]
    exclude = ["attempt_token"]
