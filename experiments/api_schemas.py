"""Response shapes of the experiments API that its serializers leave open.

An experiment's response carries its task (write-only in the serializer, added to every response) and its
stored :class:`~experiments.planning.Plan`; :class:`ExperimentResponseSchema` names both in the schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension

from common.protocol import TaskSpec
from experiments.planning import Plan
from experiments.serializers import ExperimentSerializer


class ExperimentResponseSchema(OpenApiSerializerExtension):
    """The experiment as responses show it: with its task, its stored plan typed, and a null owner allowed."""

    target_class = ExperimentSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        """The serializer's own schema, completed for responses."""
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "response":
            return schema
        task = auto_schema.resolve_serializer(TaskSpec, direction).ref
        plan = auto_schema.resolve_serializer(Plan, direction).ref
        properties: dict[str, Any] = {}
        for name, prop in schema["properties"].items():
            properties[name] = prop
            if name == "description":
                properties["task"] = {"allOf": [task], "readOnly": True}
        properties["plan"] = {"allOf": [plan], "readOnly": True}
        if "owner" in properties:
            properties["owner"] = {**properties["owner"], "nullable": True}
        schema["properties"] = properties
        schema["required"] = sorted({*schema.get("required", []), "task"})
        return schema
