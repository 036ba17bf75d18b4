"""Task interface: a task turns its params into samples and each sample into a prompt."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from agent_runtime.paths import PathPolicy


class TaskDataError(ValueError):
    """The task's data could not be loaded (missing file, bad line, unknown title ...).

    Attributes:
        field: Dotted request field the problem relates to (e.g. ``task.params.jsonl_path``).
    """

    def __init__(self, message: str, *, field: str = "task.params") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Sample:
    """One item of a task.

    Attributes:
        id: Stable id (same article -> same id on every agent).
        title: Label shown in results.
        document: Text the model works on.
        reference: Reference output for server-side scoring.
        meta: Extra information (source, length bucket ...).
    """

    id: str
    title: str
    document: str
    reference: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings a task asks for.

    Attributes:
        max_new_tokens: Generation budget per request.
        temperature: 0 means greedy decoding.
    """

    max_new_tokens: int
    temperature: float


class TaskBase(ABC):
    """What every task is built from: its params, the agent's data directory, an HTTP client, the path policy.

    Args:
        params: Validated task params (the catalogue's params model).
        data_dir: The agent's data directory (for caches).
        http_client: Client for online sources (tests inject a mock transport); unused by most tasks.
        paths: Where files the params name may lie (default: the data directory only).
    """

    name: ClassVar[str]

    def __init__(
        self,
        params: BaseModel,
        *,
        data_dir: Path,
        http_client: httpx.Client | None = None,
        paths: PathPolicy | None = None,
    ) -> None:
        self.params = params
        self.data_dir = Path(data_dir)
        self.http_client = http_client
        self.paths = paths or PathPolicy.for_agent(self.data_dir)

    def check(self) -> dict[str, str]:
        """Check the params can be used on this agent before the job is accepted (cheap, nothing read).

        Returns:
            ``{dotted.field: problem}``; empty when fine.
        """
        return {}


class Task(TaskBase):
    """Base class of tasks.

    Subclasses set :attr:`name` (a key of ``common.catalog.TASKS``) and implement :meth:`load_samples`
    and :meth:`messages`.

    Args:
        params: Validated task params (the catalogue's params model).
        data_dir: The agent's data directory (for caches).
        http_client: Client for online sources (tests inject a mock transport).
        paths: Where files the params name may lie (default: the data directory only).
    """

    @abstractmethod
    def load_samples(self) -> list[Sample]:
        """Return the samples of one run (identical for every run of a job)."""

    @abstractmethod
    def messages(self, sample: Sample) -> list[dict[str, str]]:
        """Return the chat messages asking the model to do the task on ``sample``."""

    @abstractmethod
    def generation(self) -> GenerationSettings:
        """Return the decoding settings."""

    def prompt_text(self, sample: Sample) -> str:
        """Plain-text prompt for endpoints without chat messages (``/v1/completions``).

        Args:
            sample: The sample.

        Returns:
            The messages flattened into one prompt.
        """
        parts = [m["content"] for m in self.messages(sample)]
        return "\n\n".join(parts) + "\n\n"


@dataclass
class Measurement:
    """What one run of a :class:`MeasurementTask` measured.

    Attributes:
        metrics: Run-level metrics.
        unavailable: Metric -> reason it could not be measured here.
        telemetry: Time series sampled during the run.
        notes: Caveats about how the figures were obtained.
        payload: The task's full result (kept by the engine, e.g. the agent's latest benchmark).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    telemetry: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    payload: BaseModel | None = None


class MeasurementTask(TaskBase):
    """Base class of tasks that measure the host itself instead of prompting a model.

    They have no samples and no model: the engine calls :meth:`measure` once per run, with the device
    the job's runtime resolved.

    Args:
        params: Validated task params.
        data_dir: The agent's data directory.
        http_client: Unused; accepted so every task is built the same way.
        paths: Unused (no file is named); accepted so every task is built the same way.
    """

    @abstractmethod
    def measure(self, *, device: str, should_stop: Callable[[], bool], telemetry_interval_s: float) -> Measurement:
        """Run one measurement.

        Args:
            device: Device the runtime resolved (``cpu``, ``cuda``, ``mps``).
            should_stop: Returns True when the job must stop.
            telemetry_interval_s: Sampling interval of the telemetry recorded during the run.

        Returns:
            The run's measurement.
        """
