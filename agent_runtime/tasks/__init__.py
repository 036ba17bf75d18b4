"""Task registry: each task of ``common.catalog.TASKS`` that this agent can run.

Adding a task: add its params model and entry in ``common.catalog``, subclass
:class:`~agent_runtime.tasks.base.Task`, and register the class here.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from agent_runtime.paths import PathPolicy
from agent_runtime.tasks.base import (
    GenerationSettings,
    Measurement,
    MeasurementTask,
    Sample,
    Task,
    TaskDataError,
)
from agent_runtime.tasks.hardware import HardwareBenchmark
from agent_runtime.tasks.wikipedia import WikipediaSummarization
from common.catalog import task_params

#: Task name -> implementation.
TASK_REGISTRY: dict[str, type[Task] | type[MeasurementTask]] = {
    WikipediaSummarization.name: WikipediaSummarization,
    HardwareBenchmark.name: HardwareBenchmark,
}


def make_task(
    name: str,
    params: dict,
    *,
    data_dir: Path,
    http_client: httpx.Client | None = None,
    paths: PathPolicy | None = None,
) -> Task | MeasurementTask:
    """Build the task ``name`` with validated params.

    Args:
        name: Task name.
        params: Raw params (validated with ``common.catalog``).
        data_dir: The agent's data directory.
        http_client: Optional HTTP client for online sources.
        paths: Where files the params name may lie (default: the data directory only).

    Returns:
        The task: a :class:`Task` (samples and prompts) or a :class:`MeasurementTask` (measures the host).

    Raises:
        KeyError: Unknown task.
        pydantic.ValidationError: Bad params.
    """
    cls = TASK_REGISTRY[name]
    return cls(task_params(name, params), data_dir=data_dir, http_client=http_client, paths=paths)


__all__ = [
    "TASK_REGISTRY",
    "GenerationSettings",
    "Measurement",
    "MeasurementTask",
    "Sample",
    "Task",
    "TaskDataError",
    "make_task",
]
