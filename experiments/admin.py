"""Admin for experiments, jobs and attempts."""

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from core.permissions import owner_id_of
from core.roles import may_manage
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


class OwnedAdmin(admin.ModelAdmin):
    """Change and delete only one's own experiments (and their jobs), unless allowed to act on anyone's."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The model permission, and for an object, ownership (or the fleet admins' override)."""
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_manage(request.user, owner_id_of(obj)))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The model permission, and for an object, ownership (or the fleet admins' override)."""
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or may_manage(request.user, owner_id_of(obj)))


@admin.register(Experiment)
class ExperimentAdmin(OwnedAdmin):
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
class JobAdmin(OwnedAdmin):
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
