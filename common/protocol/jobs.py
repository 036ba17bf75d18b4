"""What a job is and how far it got: the server's job request and the agent's progress reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from common.protocol.base import MAX_RUNS_PER_JOB, MIN_RUNS_PER_JOB, PROTOCOL_VERSION, ProtocolModel, utcnow
from common.protocol.enums import AgentJobState, JobStage
from common.protocol.load import LoadSpec


class TaskSpec(ProtocolModel):
    """Task to run and its parameters (validated against the task registry, see ``common.catalog``)."""

    name: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


class ModelSpec(ProtocolModel):
    """Model to benchmark.

    Attributes:
        name: Catalogue name (``smollm2-135m-instruct``) or Hugging Face repo id (``owner/name``); for
            black-box runtimes, the name the endpoint serves.
        revision: Optional Hugging Face revision.
        path: Optional local path on the agent (overrides discovery).
        dtype: Optional dtype override (``float32``, ``float16``, ``bfloat16``, ``auto``).
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True, protected_namespaces=())

    name: str = Field(min_length=1, max_length=200)
    revision: str | None = None
    path: str | None = None
    dtype: str | None = None


class RuntimeSpec(ProtocolModel):
    """Runtime to run the model with and its parameters."""

    name: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


class JobRequest(ProtocolModel):
    """What the server POSTs to an agent's ``/api/v1/jobs`` (DESIGN section 3, flow 3).

    Attributes:
        type: Message type tag.
        protocol_version: Protocol version of the sender.
        job_id: Server job id.
        attempt: Attempt number (1-based).
        attempt_token: Random token of this attempt; callbacks must carry it.
        experiment_id: Server experiment id, for the agent's logs.
        task: Task and params.
        model: Model.
        runtime: Runtime and params.
        runs_per_job: Number of sequential runs (run 1 is the cold run).
        timeout_s: Wall-clock budget for the whole job on the agent.
        requested_metrics: Metrics the experiment asked for (others may be produced too).
        load: A load sweep to run instead of sequential runs (serving under load); None for sequential runs.
    """

    type: Literal["job.request"] = "job.request"
    protocol_version: str = PROTOCOL_VERSION
    job_id: str = Field(min_length=1, max_length=64)
    attempt: int = Field(default=1, ge=1)
    attempt_token: str = Field(min_length=8, max_length=128)
    experiment_id: str | None = None
    task: TaskSpec
    model: ModelSpec
    runtime: RuntimeSpec
    runs_per_job: int = Field(default=1, ge=MIN_RUNS_PER_JOB, le=MAX_RUNS_PER_JOB)
    timeout_s: float | None = Field(default=None, gt=0)
    requested_metrics: list[str] = Field(default_factory=list)
    load: LoadSpec | None = None

    @field_validator("job_id", mode="before")
    @classmethod
    def _job_id_to_str(cls, v: Any) -> Any:
        """Accept integer ids (the server's primary keys) and carry them as strings."""
        return str(v) if isinstance(v, int) else v


class JobProgress(ProtocolModel):
    """Progress of a job, sent agent -> server and returned by the agent's ``GET /jobs/{id}``.

    Attributes:
        type: Message type tag.
        job_id: Server job id.
        attempt: Attempt number.
        attempt_token: Token of the attempt (checked by the server).
        status: Agent-side state.
        stage: Coarse stage.
        run_index: 1-based index of the current run (0 before the first run).
        runs_total: ``runs_per_job``.
        samples_done: Samples finished in the current run.
        samples_total: Samples per run.
        message: Human-readable detail (error text on failure).
        updated_at: When this progress was produced.
    """

    type: Literal["job.progress"] = "job.progress"
    job_id: str
    attempt: int = 1
    attempt_token: str | None = None
    status: AgentJobState
    stage: JobStage = JobStage.QUEUED
    run_index: int = 0
    runs_total: int = 1
    samples_done: int = 0
    samples_total: int = 0
    message: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)
