"""Admin for the transition log (read-only: the log is append-only)."""

from django.contrib import admin
from django.http import HttpRequest

from core.models import StateTransition


@admin.register(StateTransition)
class StateTransitionAdmin(admin.ModelAdmin):
    """The append-only transition log."""

    list_display = ["created_at", "entity", "experiment", "job", "agent", "from_state", "to_state", "reason"]
    list_filter = ["entity", "to_state"]
    search_fields = ["reason"]
    raw_id_fields = ["experiment", "job", "attempt", "agent"]

    def has_change_permission(self, request: HttpRequest, obj: StateTransition | None = None) -> bool:
        """The log is append-only."""
        return False
