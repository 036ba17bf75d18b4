"""REST serializers for agents (credentials and tokens are never shown)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.api_schemas import AgentSummary
from agents.models import Agent
from agents.peaks import agent_peaks
from agents.urlguard import UnsafeURL, check_agent_url
from common.protocol import AgentInfo
from core.api_schemas import ModelJSONField


class AgentSerializer(serializers.ModelSerializer):
    """An agent with its capabilities and a short hardware summary."""

    summary = serializers.SerializerMethodField()
    # Not a "uri" in the schema: a pull agent has none (empty).
    url = serializers.CharField(read_only=True, help_text="Where the server calls the agent (empty for a pull agent).")
    labels = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=50)
    capabilities = ModelJSONField(AgentInfo)

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "url",
            "mode",
            "status",
            "activity",
            "status_reason",
            "heartbeat_error",
            "heartbeat_error_since",
            "labels",
            "cost_per_hour",
            "hardware_fingerprint",
            "protocol_version",
            "agent_version",
            "last_seen",
            "registered_at",
            "updated_at",
            "summary",
            "capabilities",
        ]
        read_only_fields = [
            "id",
            "url",
            "mode",
            "status",
            "activity",
            "status_reason",
            "heartbeat_error",
            "heartbeat_error_since",
            "hardware_fingerprint",
            "protocol_version",
            "agent_version",
            "last_seen",
            "registered_at",
            "updated_at",
            "summary",
            "capabilities",
        ]

    @extend_schema_field(AgentSummary)
    def get_summary(self, obj: Agent) -> dict[str, Any]:
        """CPU, memory, GPUs, runtimes, models, and measured peaks (``None`` before any hardware benchmark)."""
        info = obj.info
        if info is None:
            return {}
        return {
            "cpu": info.cpu.model,
            "cores": info.cpu.logical_cores,
            "memory_gib": round(info.memory.total_bytes / 2**30, 1) if info.memory.total_bytes else None,
            "gpus": [
                {"name": g.name, "memory_gib": round((g.memory_total_bytes or 0) / 2**30, 1),
                 "tensor_core_generation": g.tensor_core_generation}
                for g in info.gpus
            ],
            "runtimes": [r.name for r in info.runtimes if r.available],
            # A model may be present in several formats (the packaged GGUF and its converted copy): name it once.
            "models": list(dict.fromkeys(m.name for m in info.models)),
            "os": f"{info.system.os} {info.system.os_version}".strip(),
            "peaks": agent_peaks(obj),
        }

    def validate_cost_per_hour(self, value: Any) -> Any:
        """Cost must not be negative."""
        if value is not None and value < 0:
            raise serializers.ValidationError("cost_per_hour must be zero or positive (dollars per hour)")
        return value


class AgentRegisterSerializer(serializers.Serializer):
    """Input of registration by URL. The token is what the server will present to the agent."""

    url = serializers.CharField(max_length=500)
    token = serializers.CharField(max_length=500, write_only=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    labels = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=50)
    cost_per_hour = serializers.DecimalField(max_digits=10, decimal_places=4, required=False, allow_null=True,
                                             min_value=0)

    def validate_url(self, value: str) -> str:
        """Apply the URL guard (no link-local/metadata, only allowed networks)."""
        try:
            return check_agent_url(value)
        except UnsafeURL as exc:
            raise serializers.ValidationError(str(exc)) from exc
