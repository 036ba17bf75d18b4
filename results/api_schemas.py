"""Response shapes of the results API: per-job results, experiment aggregates, the comparison matrix, the export.

The selectors (:mod:`results.selectors`) build these responses as plain dicts; the models here describe them
in the OpenAPI schema (and so in the web UI's generated types), and the API tests check every response against
them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NotRequired

from pydantic import Field, RootModel
from typing_extensions import TypedDict

from common.protocol import ExecutionInfo, MetricStatistics
from common.statuses import ExperimentStatus, JobStatus, ScoringStatus
from core.api_schemas import ResponseShape
from experiments.planning import Unrunnable


class JobMetricStatistics(MetricStatistics):
    """Statistics of one metric of one job, as stored: the protocol's statistics and the runs they cover.

    Attributes:
        source: ``warm`` (the warm runs) or ``cold`` (the single run of a one-run job).
        scope: ``run``: one value per run (for a latency, that run's mean over its requests), so ``p95`` is the
            95th percentile of run means; ``request``: one value per request of those runs pooled (per
            inter-token gap for ``inter_token_gaps_s``), so ``p95`` is the 95th percentile over requests, as
            ``vllm bench serve`` reports it. Per-request statistics carry no ``ci95`` and no outliers.
    """

    model_config = ResponseShape.model_config | {"json_schema_serialization_defaults_required": True}

    source: str
    scope: Literal["run", "request"]


class RequestStatistics(JobMetricStatistics):
    """Statistics of one latency of one job over every request (``scope`` is ``request``).

    Attributes:
        values: One value per request (per gap for ITL), in run then request order; null where the response
            leaves them out (an experiment's results and the export: ITL has one per streamed chunk), and in
            full in the job's own results (``GET /api/v1/jobs/{id}/results/``).
    """

    values: list[float] | None  # type: ignore[assignment]


class MetricDescription(ResponseShape):
    """Name, unit and direction of a metric present in some results.

    Attributes:
        name: Metric name (canonical, or a hardware benchmark figure).
        unit: Unit symbol (empty for names RUCKUS does not define).
        higher_is_better: Direction (null when unknown).
        description: What it measures.
    """

    name: str
    unit: str
    higher_is_better: bool | None
    description: str


class Efficiency(ResponseShape):
    """Fractions of the agent's measured peaks that a finished LLM job reached (see ``results.efficiency``).

    Attributes:
        device: Device the weights were on.
        dtype: Weight dtype.
        parameters: Parameter count.
        weight_bytes: Bytes of the weights (read once per decoded token).
        decode_tokens_per_s: Decode rate.
        decode_bandwidth_gbps: Memory bandwidth the decode sustained.
        peak_bandwidth_metric: Benchmark figure used as the bandwidth peak.
        peak_bandwidth_gbps: That peak: the figure's best repeat (best-of-N, as STREAM reports it).
        peak_bandwidth_mean_gbps: The mean over the figure's repeats, shown next to the peak.
        peak_bandwidth_cv: Coefficient of variation of those repeats (a high one: a busy or unstable host).
        bandwidth_fraction: Sustained / peak bandwidth.
        decode_tflops: Compute the decode sustained.
        peak_tflops_metric: Benchmark figure used as the compute peak.
        peak_tflops: That peak: the figure's best repeat, in TFLOP/s.
        peak_tflops_mean: The mean over the figure's repeats, in TFLOP/s.
        peak_tflops_cv: Coefficient of variation of those repeats.
        compute_fraction: Sustained / peak compute.
        peaks_measured_at: When the peaks were measured.
        unavailable: Figure (``bandwidth_fraction``, ``compute_fraction``) -> why it is missing.
    """

    device: str | None
    dtype: str | None
    parameters: int | None
    weight_bytes: int | None
    decode_tokens_per_s: float | None
    decode_bandwidth_gbps: float | None
    peak_bandwidth_metric: str | None
    peak_bandwidth_gbps: float | None
    peak_bandwidth_mean_gbps: float | None
    peak_bandwidth_cv: float | None
    bandwidth_fraction: float | None
    decode_tflops: float | None
    peak_tflops_metric: str | None
    peak_tflops: float | None
    peak_tflops_mean: float | None
    peak_tflops_cv: float | None
    compute_fraction: float | None
    peaks_measured_at: datetime | None
    unavailable: dict[str, str]


class SampleOutput(ResponseShape):
    """One request of a run: what the model produced and what it was measured against."""

    id: str
    title: str
    output: str
    reference: str
    prompt_tokens: int | None
    output_tokens: int | None
    metrics: dict[str, float | None]
    finish_reason: str
    error: str | None


class RunResults(ResponseShape):
    """One run of a job (run 1 is the cold run).

    Attributes:
        samples: The run's samples (absent when the request asked for none).
    """

    run_index: int
    cold_start: bool
    metrics: dict[str, float | None]
    unavailable_metrics: dict[str, str]
    telemetry: dict[str, list[float]]
    started_at: datetime | None
    finished_at: datetime | None
    samples: list[SampleOutput] = Field(default_factory=list)


class JobResults(ResponseShape):
    """Everything measured for one job: statistics, efficiency, the cold run and every run.

    Attributes:
        scoring_status: ``scoring`` while the server computes the result's ROUGE scores, run means and statistics
            (they are absent until then: ``statistics`` and ``request_statistics`` empty, ``efficiency`` null, no
            ROUGE in the runs), then ``scored``, or ``failed`` (``scoring_error`` says why); null before a result.
        scoring_error: Why scoring failed (null otherwise).
        scored_at: When scoring ended (null before).
        statistics_source: ``warm`` or ``cold`` (null before a result, and while it is being scored).
        statistics: Metric -> statistics over runs (``scope`` ``run``: one value per run, a latency's being the
            run's mean).
        request_statistics: Latency metric (``ttft_s``, ``tpot_s``, ``inter_token_gaps_s``, ``e2e_latency_s``)
            -> statistics over every request of the same runs pooled (``scope`` ``request``; every gap for ITL),
            raw values included.
        efficiency: Fractions of the agent's peaks (null for jobs without a model or a result).
        execution: Where the runtime held the model (white-box runtimes).
        cold_start: The cold run's metrics (``model_load_s`` ...).
        unavailable_metrics: Metric -> why it could not be measured.
    """

    job: int
    experiment: int
    status: JobStatus
    model: str
    runtime: str
    agent: str | None
    hardware_fingerprint: str
    scoring_status: ScoringStatus | None
    scoring_error: str | None
    scored_at: datetime | None
    statistics_source: str | None
    statistics: dict[str, JobMetricStatistics]
    request_statistics: dict[str, RequestStatistics]
    efficiency: Efficiency | None
    execution: ExecutionInfo | None
    cold_start: dict[str, float | None] | None
    unavailable_metrics: dict[str, str]
    access_mode: str | None
    error: str | None
    runs: list[RunResults]


class ExperimentJobResults(ResponseShape):
    """One job in an experiment's aggregated results.

    Attributes:
        scoring_status: ``scoring`` while the server computes the job's ROUGE scores and statistics (empty until
            then), ``scored``, or ``failed``; null for a job without a result.
        statistics: Metric -> statistics over runs (``scope`` ``run``).
        request_statistics: Latency metric -> statistics over every request (``scope`` ``request``), without
            the raw values (``values`` null: they are in the job's results).
    """

    job: int
    status: JobStatus
    model: str
    runtime: str
    agent: str | None
    agent_name: str | None
    hardware_fingerprint: str
    scoring_status: ScoringStatus | None
    statistics: dict[str, JobMetricStatistics]
    request_statistics: dict[str, RequestStatistics]
    efficiency: Efficiency | None
    cold_start: dict[str, float | None] | None
    unavailable_metrics: dict[str, str]


class ExperimentResults(ResponseShape):
    """Aggregated results of an experiment.

    Attributes:
        scoring: Jobs whose results the server is still scoring (their figures are on their way).
        unrunnable: Combinations no selected agent could run (from the experiment's plan).
        metrics: Every metric present in the jobs' statistics, with unit and direction.
        jobs: One entry per job.
    """

    experiment: int
    status: ExperimentStatus
    scoring: int
    unrunnable: list[Unrunnable]
    metrics: list[MetricDescription]
    jobs: list[ExperimentJobResults]


class ComparisonColumn(ResponseShape):
    """A column of the comparison matrix: one agent (or the fingerprint of a removed one)."""

    key: str
    agent: str | None
    agent_name: str
    hardware_fingerprint: str
    cost_per_hour: float | None


class ComparisonCell(TypedDict):
    """One job's figure in the comparison matrix.

    Attributes:
        mean: Mean of the metric (null without statistics).
        std: Its standard deviation.
        n: Number of values.
        ci95: 95% confidence interval of the mean (present with statistics; null for n < 2).
        ci_method: How ``ci95`` was computed (``common.stats.CiMethod``).
        cv: Coefficient of variation (std / mean; above ``common.descriptive.UNSTABLE_CV`` the figure is unstable).
        tokens_per_dollar: Output tokens per dollar (where the agent has a cost per hour).
        tokens_per_joule: Output tokens per joule (where GPU power was measured).
        bandwidth_fraction: Fraction of the agent's peak memory bandwidth the decode reached.
        scoring_status: Where the job's result is in scoring (``scoring``: no figure yet); null without a result.
    """

    __pydantic_config__ = ResponseShape.model_config  # type: ignore[misc]

    job: int
    status: JobStatus
    scoring_status: ScoringStatus | None
    mean: float | None
    std: float | None
    n: int
    ci95: NotRequired[tuple[float, float] | None]
    ci_method: NotRequired[str | None]
    cv: NotRequired[float | None]
    tokens_per_dollar: NotRequired[float]
    tokens_per_joule: NotRequired[float]
    bandwidth_fraction: NotRequired[float]


class ComparisonRow(ResponseShape):
    """A row of the comparison matrix: one (model, runtime); cells by column key."""

    model: str
    runtime: str
    cells: dict[str, ComparisonCell]


class Comparison(ResponseShape):
    """Comparison matrix: rows model x runtime, columns agents, cells one metric's mean ± std."""

    experiment: int
    metric: str
    unit: str
    higher_is_better: bool | None
    columns: list[ComparisonColumn]
    rows: list[ComparisonRow]


class ExportSample(SampleOutput):
    """A sample in the export, with its raw timings."""

    timings: dict[str, Any]


class ExportRun(ResponseShape):
    """One raw run in the JSON export.

    Attributes:
        scoring_status: ``scoring`` while the server is still computing the job's ROUGE scores and statistics:
            this export then has neither (export again once it is ``scored``).
        metrics: The run's own metrics (a latency's being the mean over the run's requests).
        request_statistics: The job's per-request latency statistics (over all its warm requests, so the same in
            every run of the job), without raw values (the samples' metrics and timings hold them).
    """

    experiment: int
    job: int
    model: str
    runtime: str
    agent: str | None
    agent_name: str | None
    hardware_fingerprint: str
    attempt: int | None
    run_index: int
    cold_start: bool
    started_at: datetime | None
    finished_at: datetime | None
    scoring_status: ScoringStatus | None
    metrics: dict[str, float | None]
    unavailable_metrics: dict[str, str]
    request_statistics: dict[str, RequestStatistics]
    samples: list[ExportSample]


class ExportRuns(RootModel[list[ExportRun]]):
    """The JSON export: every raw run of the experiment, in job and run order."""
