"""Results of a job: per-request samples, runs, the job's result, and the statistics format."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from common.protocol.base import MAX_RUNS_PER_JOB, MIN_RUNS_PER_JOB, PROTOCOL_VERSION, ProtocolModel
from common.protocol.benchmarks import HardwareBenchmarkResult
from common.protocol.enums import AccessMode, AgentJobState
from common.protocol.load import LoadSweepRun
from common.protocol.statistics import MetricStatistics

#: Longest metric name a run may report (the server's statistics are stored per metric name).
MAX_METRIC_NAME_CHARS = 100


class SampleResult(ProtocolModel):
    """One request of a run: the model's output, the reference, and per-request timings.

    Attributes:
        id: Sample id (stable across runs of a job).
        title: Article title or other label.
        output: Generated text.
        reference: Reference text for scoring.
        prompt_tokens: Tokens in the prompt.
        output_tokens: Tokens generated.
        metrics: Per-request metrics (``e2e_latency_s``, ``ttft_s``, ``tpot_s``; ROUGE added by the server).
        request_sent_at: Wall-clock time the request was sent (epoch seconds).
        first_token_at: Wall-clock time of the first non-empty token (epoch seconds).
        finished_at: Wall-clock time of the last token (epoch seconds).
        inter_token_gaps_s: Every gap between consecutive streamed chunks.
        finish_reason: ``stop``, ``length`` ...
        error: Error text when this request failed.
    """

    id: str
    title: str | None = None
    output: str = ""
    reference: str | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    request_sent_at: float | None = None
    first_token_at: float | None = None
    finished_at: float | None = None
    inter_token_gaps_s: list[float] = Field(default_factory=list)
    finish_reason: str | None = None
    error: str | None = None


class SingleRunResult(ProtocolModel):
    """One run of a job over all of its samples.

    Attributes:
        run_index: 1-based index; run 1 is the cold run.
        cold_start: True for the cold run (includes model load).
        started_at: Start time.
        finished_at: End time.
        metrics: Run-level scalar metrics (DESIGN section 6 names).
        unavailable_metrics: Metric -> reason it could not be measured (absent, never zero).
        samples: Per-request results.
        telemetry: Optional time series (``{"t": [...], "gpu_power_w": [...]}``) for plots.
        notes: Caveats about how figures were obtained (e.g. token counts from streamed chunks).
        benchmark: The hardware benchmark this run measured (``hardware_benchmark`` jobs): the server keeps
            the latest one as the agent's measured peaks.
    """

    type: Literal["run.result"] = "run.result"
    run_index: int = Field(ge=1)
    cold_start: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    unavailable_metrics: dict[str, str] = Field(default_factory=dict)
    samples: list[SampleResult] = Field(default_factory=list)
    telemetry: dict[str, list[float]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    benchmark: HardwareBenchmarkResult | None = None

    @field_validator("metrics", "unavailable_metrics")
    @classmethod
    def _metric_names_fit(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Metric names are at most :data:`MAX_METRIC_NAME_CHARS` characters (the server stores them so)."""
        long = [name for name in value if len(name) > MAX_METRIC_NAME_CHARS]
        if long:
            raise ValueError(f"metric name longer than {MAX_METRIC_NAME_CHARS} characters: {long[0][:40]!r}...")
        return value


class ExecutionInfo(ProtocolModel):
    """Where and how a white-box runtime held the model: what hardware-normalized efficiency needs.

    Attributes:
        device: Device the weights were on (``cpu``, ``cuda``, ``mps``).
        dtype: Weight dtype (``bfloat16`` ...).
        parameters: Parameter count of the loaded model (shared tensors counted once).
        weight_bytes: Bytes of those parameters: what one decode step reads at batch size 1.
    """

    device: str
    dtype: str | None = None
    parameters: int | None = Field(default=None, ge=0)
    weight_bytes: int | None = Field(default=None, ge=0)


class MultiRunJobResult(ProtocolModel):
    """Complete result of a job: every run, the cold run's metrics apart.

    Attributes:
        type: Message type tag.
        protocol_version: Protocol version.
        job_id: Server job id.
        attempt: Attempt number.
        attempt_token: Token of the attempt (checked by the server).
        status: Final agent-side state.
        task: Task name.
        model: Model name.
        runtime: Runtime name.
        access_mode: Access mode of the runtime.
        runs_per_job: Runs requested.
        runs: Runs finished (the cold run first): the raw data the server computes every statistic from.
        statistics: Legacy, ignored by the server (which alone computes statistics, from ``runs``): older
            agents sent metric -> statistics over their warm runs here; current agents leave it empty.
        statistics_source: Legacy, ignored by the server: ``warm`` or ``cold`` from older agents, ``none``
            from current agents (they send no statistics).
        cold_start: The cold run's run-level metrics, including ``model_load_s``.
        unavailable_metrics: Metric -> reason it could not be produced.
        hardware_fingerprint: Fingerprint of the agent that ran the job.
        execution: Device, dtype and weight size of the loaded model (white-box runtimes only).
        error: Error text when the job failed.
        started_at: Start time.
        finished_at: End time.
        load: The load sweep's points and raw per-request timings (jobs with a load spec; ``runs`` is empty).
    """

    type: Literal["job.result"] = "job.result"
    protocol_version: str = PROTOCOL_VERSION
    job_id: str
    attempt: int = 1
    attempt_token: str | None = None
    status: AgentJobState = AgentJobState.COMPLETED
    task: str = ""
    model: str = ""
    runtime: str = ""
    access_mode: AccessMode | None = None
    runs_per_job: int = Field(default=1, ge=MIN_RUNS_PER_JOB, le=MAX_RUNS_PER_JOB)
    runs: list[SingleRunResult] = Field(default_factory=list)
    statistics: dict[str, MetricStatistics] = Field(default_factory=dict)
    statistics_source: Literal["warm", "cold", "none"] = "warm"
    cold_start: dict[str, float | None] | None = None
    unavailable_metrics: dict[str, str] = Field(default_factory=dict)
    hardware_fingerprint: str | None = None
    execution: ExecutionInfo | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    load: LoadSweepRun | None = None

    @field_validator("job_id", mode="before")
    @classmethod
    def _job_id_to_str(cls, v: Any) -> Any:
        """Accept integer ids and carry them as strings."""
        return str(v) if isinstance(v, int) else v
