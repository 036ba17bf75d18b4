"""Response shapes of the load API: each job's sweep (its points' figures) and where it saturates.

``GET /api/v1/experiments/{id}/load/`` answers :class:`ExperimentLoad` (one :class:`LoadCell` per job) and
``GET /api/v1/jobs/{id}/load/`` one :class:`JobLoadCell` (its points with their raw per-request series). The
figures are :func:`common.loadmetrics.point_figures`'s; the summaries :func:`common.saturation.summarize_sweep`'s.
"""

from __future__ import annotations

from typing import Literal

from common.protocol import ServiceLevelObjectives
from common.statuses import JobStatus
from core.api_schemas import ResponseShape

#: A point's load: its concurrency, or its request rate in requests/s (``"inf"``: every request at once).
Load = int | float | Literal["inf"]


class Distribution(ResponseShape):
    """A per-request latency distribution of one point (seconds; population std, linear percentiles)."""

    mean: float
    median: float
    std: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float
    count: int


class PointFigures(ResponseShape):
    """The figures of one load point, computed by the server from the point's raw requests.

    The definitions are ``vllm bench serve``'s (see :mod:`common.loadmetrics`); a figure that could not be
    computed (no completed request, no telemetry, no objectives, no cost) is null.

    Attributes:
        index: Position in the sweep.
        concurrency: Concurrency of a closed-loop point.
        request_rate: Request rate of an open-loop point (``"inf"``: all at once).
        completed: Requests that succeeded.
        failed: Requests that failed (timeouts apart).
        timed_out: Requests past the spec's ``request_timeout_s``.
        error_rate: (failed + timed out) / requests.
        duration_s: First send to last request's end.
        total_input_tokens: Prompt tokens of the completed requests.
        total_output_tokens: Output tokens of the completed requests.
        request_throughput: Completed requests/s.
        output_throughput: Output tokens/s.
        total_token_throughput: Prompt and output tokens/s.
        goodput: Completed requests/s that met every objective (null without objectives).
        achieved_concurrency: Mean requests in flight (Little's law).
        slo_met: The point meets the objectives at their percentile (null without objectives).
        ttft_s: Time to first token.
        tpot_s: Time per output token after the first.
        itl_s: Gaps between streamed chunks.
        e2e_s: End-to-end latency.
        power_w: Mean power over the point.
        energy_j: Energy over the point.
        energy_per_output_token_j: Joules per output token.
        output_tokens_per_joule: Output tokens per joule.
        output_tokens_per_dollar: Output tokens per dollar of the agent's ``cost_per_hour``.
    """

    index: int
    concurrency: int | None
    request_rate: float | Literal["inf"] | None
    completed: int
    failed: int
    timed_out: int
    error_rate: float | None
    duration_s: float
    total_input_tokens: int
    total_output_tokens: int
    request_throughput: float | None
    output_throughput: float | None
    total_token_throughput: float | None
    goodput: float | None
    achieved_concurrency: float | None
    slo_met: bool | None
    ttft_s: Distribution | None
    tpot_s: Distribution | None
    itl_s: Distribution | None
    e2e_s: Distribution | None
    power_w: float | None
    energy_j: float | None
    energy_per_output_token_j: float | None
    output_tokens_per_joule: float | None
    output_tokens_per_dollar: float | None


class PointRaw(ResponseShape):
    """The per-request series of a point's completed requests, for distributions (seconds, send order).

    Attributes:
        ttft_s: One value per completed request.
        tpot_s: One value per completed request with more than one output token.
        itl_s: Every gap between streamed chunks, requests pooled in send order.
        e2e_s: One value per completed request.
    """

    ttft_s: list[float]
    tpot_s: list[float]
    itl_s: list[float]
    e2e_s: list[float]


class PointWithRaw(PointFigures):
    """A point's figures and its raw per-request series."""

    raw: PointRaw


class Peak(ResponseShape):
    """The point with the highest output throughput.

    Attributes:
        index: Its position in the sweep.
        load: Its concurrency or request rate.
        request_throughput: Its completed requests/s.
        output_throughput: Its output tokens/s.
    """

    index: int
    load: Load | None
    request_throughput: float | None
    output_throughput: float | None


class MaxGoodput(ResponseShape):
    """Among the points that meet the objectives, the one with the highest goodput.

    Attributes:
        index: Its position in the sweep.
        load: Its concurrency or request rate.
        goodput: Its requests/s that met every objective.
        output_throughput: Its output tokens/s.
        output_tokens_per_dollar: Its output tokens per dollar (null without a cost per hour).
        output_tokens_per_joule: Its output tokens per joule (null without telemetry).
    """

    index: int
    load: Load | None
    goodput: float | None
    output_throughput: float | None
    output_tokens_per_dollar: float | None
    output_tokens_per_joule: float | None


class Knee(ResponseShape):
    """The point maximizing Kleinrock's power (output throughput over median end-to-end latency).

    Attributes:
        index: Its position in the sweep.
        load: Its concurrency or request rate.
        output_throughput: Its output tokens/s.
        e2e_median_s: Its median end-to-end latency.
    """

    index: int
    load: Load | None
    output_throughput: float | None
    e2e_median_s: float | None


class LoadCell(ResponseShape):
    """One job's sweep: what it ran on, its points' figures and where it saturates.

    Attributes:
        job: The job's id.
        status: The job's status.
        agent_id: Its agent (null once removed).
        agent_name: Its agent's name (null once removed).
        hardware: The hardware fingerprint it measured.
        model: Model name.
        runtime: Runtime name.
        method: ``http`` (streaming requests to an OpenAI-compatible endpoint) or ``batch`` (white-box
            ``generate`` on batches of each concurrency).
        cost_per_hour: The agent's cost per hour, as a decimal string (null when not set).
        stopped_early: Why the sweep stopped before its last point (null when it ran them all, or has not run).
        points: The points run, in sweep order (empty until the result arrives).
        peak: The point with the highest output throughput.
        max_goodput: The best point within the objectives (null without objectives or when none meets them).
        knee: The point maximizing Kleinrock's power.
    """

    job: int
    status: JobStatus
    agent_id: str | None
    agent_name: str | None
    hardware: str
    model: str
    runtime: str
    method: Literal["http", "batch"]
    cost_per_hour: str | None
    stopped_early: str | None
    points: list[PointFigures]
    peak: Peak | None
    max_goodput: MaxGoodput | None
    knee: Knee | None


class JobLoadCell(LoadCell):
    """One job's sweep with each point's raw per-request series (``GET /api/v1/jobs/{id}/load/``)."""

    points: list[PointWithRaw]  # type: ignore[assignment]


class ExperimentLoad(ResponseShape):
    """Every job's sweep of an experiment (``GET /api/v1/experiments/{id}/load/``).

    Attributes:
        experiment: The experiment's id.
        mode: ``concurrency`` or ``request_rate`` (null for an experiment without a load sweep).
        slo: The sweep's service level objectives (null when it has none).
        cells: One per job (empty for an experiment without a load sweep).
    """

    experiment: int
    mode: Literal["concurrency", "request_rate"] | None
    slo: ServiceLevelObjectives | None
    cells: list[LoadCell]
