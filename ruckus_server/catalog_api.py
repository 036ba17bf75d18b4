"""``GET /api/v1/catalog/``: the tasks, runtimes, models and metrics this server accepts, for UIs and scripts.

Everything comes from ``common.catalog`` and ``common.metrics`` (the same definitions that validate
experiments), with each task's and runtime's parameters as JSON Schema, so a client can build its forms
from the server instead of hard-coding them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.catalog import MODELS, NO_MODEL_NAME, RUNTIMES, TASKS, runtime_task_problem
from common.metrics import BENCHMARK_METRIC_RE, METRIC_SPECS


def catalog() -> dict[str, Any]:
    """The catalogue as JSON.

    Returns:
        ``{"tasks", "runtimes", "models", "metrics", "benchmark_metric_pattern", "no_model_name"}``.
    """
    return {
        "tasks": [
            {
                "name": t.name,
                "description": t.description,
                "needs_model": t.needs_model,
                "server_metrics": list(t.server_metrics),
                "params_schema": t.params_model.model_json_schema(),
            }
            for t in TASKS.values()
        ],
        "runtimes": [
            {
                "name": r.name,
                "access_mode": r.access_mode.value,
                "description": r.description,
                "framework": r.framework,
                "needs_local_model": r.needs_local_model,
                "tasks": [t for t in TASKS if runtime_task_problem(t, r.name) is None],
                "metrics": list(r.metrics),
                "gpu_metrics": list(r.gpu_metrics),
                "params_schema": r.params_model.model_json_schema(),
            }
            for r in RUNTIMES.values()
        ],
        "models": [{**asdict(m), "aliases": list(m.aliases)} for m in MODELS.values()],
        "metrics": [
            {"name": s.name, "unit": s.unit, "description": s.description,
             "higher_is_better": s.higher_is_better, "server_side": s.server_side}
            for s in METRIC_SPECS.values()
        ],
        "benchmark_metric_pattern": BENCHMARK_METRIC_RE.pattern,
        "no_model_name": NO_MODEL_NAME,
    }


class CatalogView(APIView):
    """What experiments may use: tasks, runtimes (with parameter schemas), catalogue models and metrics."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """Return the catalogue."""
        return Response(catalog())
