"""Admin for agents: status, hardware and capabilities at a glance (secrets excluded)."""

import json

from django.contrib import admin
from django.utils.html import format_html

from agents.models import Agent


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    """Agents list with status, hardware fingerprint and last heartbeat."""

    list_display = [
        "name", "mode", "status", "activity", "url", "hardware_fingerprint", "cost_per_hour", "last_seen",
    ]
    list_filter = ["mode", "status", "activity", "protocol_version"]
    search_fields = ["name", "url", "hardware_fingerprint"]
    readonly_fields = [
        "id", "capabilities_pretty", "capabilities_hash", "hardware_fingerprint", "protocol_version",
        "agent_version", "last_seen", "heartbeat_error", "heartbeat_error_since", "registered_at", "updated_at",
    ]
    exclude = ["capabilities", "credential_hash", "token_encrypted"]

    @admin.display(description="capabilities")
    def capabilities_pretty(self, obj: Agent) -> str:
        """Readable JSON of the AgentInfo."""
        return format_html("<pre>{}</pre>", json.dumps(obj.capabilities, indent=2, sort_keys=True))
