"""``GET /api/v1/catalog/``: the tasks, runtimes, models and metrics this server accepts, for UIs and scripts.

Everything comes from ``common.catalog`` and ``common.metrics`` (the same definitions that validate
experiments), with each task's and runtime's parameters as JSON Schema, so a client can build its forms
from the server instead of hard-coding them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.catalog import MODELS, NO_MODEL_NAME, RUNTIMES, TASKS, runtime_task_problem
from common.metrics import BENCHMARK_METRIC_RE, METRIC_SPECS
from common.protocol import AccessMode
from core.api_schemas import ResponseShape
from core.permissions import Rule
from core.roles import VIEW_EXPERIMENTS


class CatalogTask(ResponseShape):
    """A task experiments may run.

    Attributes:
        name: Task name.
        description: One-line description.
        needs_model: False for tasks that measure the host itself.
        server_metrics: Metrics the server computes on the outputs.
        params_schema: JSON Schema of the task's parameters.
    """

    name: str
    description: str
    needs_model: bool
    server_metrics: list[str]
    params_schema: dict[str, Any]


class CatalogRuntime(ResponseShape):
    """A runtime experiments may use.

    Attributes:
        name: Runtime name.
        access_mode: White, gray or black box.
        description: One-line description.
        framework: Python distribution the agent needs (null when only HTTP is needed).
        needs_local_model: True when the agent loads the weights itself.
        tasks: Tasks it can run.
        metrics: Metrics it can produce when the host allows it.
        gpu_metrics: Metrics that additionally need NVML on the host.
        params_schema: JSON Schema of the runtime's parameters.
    """

    name: str
    access_mode: AccessMode
    description: str
    framework: str | None
    needs_local_model: bool
    tasks: list[str]
    metrics: list[str]
    gpu_metrics: list[str]
    params_schema: dict[str, Any]


class CatalogModelEntry(ResponseShape):
    """A catalogue model (``common.catalog.CatalogModel``)."""

    name: str
    repo_id: str
    architecture: str
    parameters: int
    default_dtype: str
    packaged: bool
    context_length: int | None
    aliases: list[str]


class CatalogMetric(ResponseShape):
    """A canonical metric.

    Attributes:
        server_side: True when the server computes it (post-processing), not the agent.
    """

    name: str
    unit: str
    description: str
    higher_is_better: bool
    server_side: bool


class Catalog(ResponseShape):
    """What experiments may use.

    Attributes:
        benchmark_metric_pattern: Regular expression of hardware benchmark figure names.
        no_model_name: The model name of jobs whose task needs no model.
    """

    tasks: list[CatalogTask]
    runtimes: list[CatalogRuntime]
    models: list[CatalogModelEntry]
    metrics: list[CatalogMetric]
    benchmark_metric_pattern: str
    no_model_name: str


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

    access_rules = {"GET": Rule(VIEW_EXPERIMENTS)}

    @extend_schema(responses=Catalog)
    def get(self, request: Request) -> Response:
        """Return the catalogue."""
        return Response(catalog())
