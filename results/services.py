"""Writes for results: store an agent's job result once; compute its ROUGE scores, run means and statistics.

Storing is idempotent: a job keeps the first result accepted for it, so replaying the same result message any
number of times stores it once (DESIGN section 3, flow 4). Storing is all the result callback does: the figures
are computed afterwards by a scoring worker (:mod:`results.scoring`), so an agent's POST does not wait for them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import structlog
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from agents.models import Agent
from common.catalog import measurement_tasks
from common.descriptive import summarize
from common.loadmetrics import point_figures
from common.metrics import PER_REQUEST_METRICS, ROUGE_METRICS, Metric, metric_spec
from common.protocol import (
    AgentJobState,
    LoadPointRun,
    LoadSpec,
    LoadSweepRun,
    MetricStatistics,
    MultiRunJobResult,
    RequestRecord,
    SingleRunResult,
)
from common.protocol.load import MAX_REQUESTS_PER_POINT, MAX_SYNTHETIC_TOKENS
from common.stats import describe_runs
from common.statuses import ScoringStatus
from core import events
from experiments.models import Job, JobAttempt
from results.models import JobMetricStatistics, JobResult, LoadPoint, RunResult, SampleResult, StatisticsScope

log = structlog.get_logger(__name__)


def _finite(value: Any) -> float | None:
    """Return a finite float or None (JSON has no NaN; a NaN metric is an absent metric)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def rouge_means(per_sample: Sequence[dict[str, float]]) -> dict[str, float | None]:
    """Run-level ROUGE: the mean of each figure over the samples that were scored.

    Args:
        per_sample: Each sample's ROUGE figures (empty for a sample without a reference or with an error).

    Returns:
        Metric -> mean; empty when no sample was scored.
    """
    scored = [s for s in per_sample if s]
    if not scored:
        return {}
    return {name: sum(s[name] for s in scored) / len(scored) for name in ROUGE_METRICS}


def _run_row(job: Job, attempt: JobAttempt | None, run: SingleRunResult) -> RunResult:
    """One run as an unsaved row (ROUGE means are added when the result is scored)."""
    metrics = {k: _finite(v) for k, v in run.metrics.items()}
    return RunResult(
        job=job,
        attempt=attempt,
        run_index=run.run_index,
        cold_start=run.cold_start,
        metrics={k: v for k, v in metrics.items() if v is not None},
        unavailable_metrics=run.unavailable_metrics,
        telemetry=run.telemetry,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def _sample_rows(row: RunResult, run: SingleRunResult) -> list[SampleResult]:
    """The samples of one run as unsaved rows (ROUGE is added when the result is scored)."""
    return [
        SampleResult(
            run=row,
            sample_id=sample.id[:200],  # the column's width (ids are article titles: a few are longer)
            title=(sample.title or "")[:500],
            output=sample.output,
            reference=sample.reference or "",
            prompt_tokens=sample.prompt_tokens,
            output_tokens=sample.output_tokens,
            metrics={k: v for k, v in ((k, _finite(v)) for k, v in sample.metrics.items()) if v is not None},
            timings={
                "request_sent_at": sample.request_sent_at,
                "first_token_at": sample.first_token_at,
                "finished_at": sample.finished_at,
                "inter_token_gaps_s": sample.inter_token_gaps_s,
            },
            finish_reason=(sample.finish_reason or "")[:50],
            error=sample.error or "",
        )
        for sample in run.samples
    ]


def request_series(samples: Iterable[SampleResult]) -> dict[str, list[float]]:
    """Per-request values of each latency metric in ``common.metrics.PER_REQUEST_METRICS``, pooled.

    TTFT, TPOT and e2e latency give one value per request (the sample's own metric); ITL gives every gap of
    every request (the raw ``inter_token_gaps_s`` timings, so a long answer weighs as many gaps as it has, as in
    ``vllm bench serve``). Failed requests (with an error) and absent or non-finite values are skipped.

    Args:
        samples: The requests, in run then request order.

    Returns:
        Metric -> values in that order; a metric no request produced is absent.
    """
    series: dict[str, list[float]] = {}
    for sample in samples:
        if sample.error:
            continue
        for name in PER_REQUEST_METRICS:
            if name == Metric.INTER_TOKEN_GAPS_S:
                raw = (sample.timings or {}).get(Metric.INTER_TOKEN_GAPS_S) or []
                values = [v for v in map(_finite, raw) if v is not None]
            else:
                value = _finite((sample.metrics or {}).get(name))
                values = [] if value is None else [value]
            if values:
                series.setdefault(name, []).extend(values)
    return series


def describe_requests(values: Sequence[float], unit: str = "") -> MetricStatistics:
    """Statistics over requests: n, mean, std, min, max, median, p90, p95, p99, CV and the raw values.

    No confidence interval and no outlier flags: requests of one run share the server's state, so they are not
    the independent draws a t interval assumes (over thousands of ITL gaps it would be far too narrow), and the
    tail the percentiles describe is what the robust rule would flag. The interval over runs is the one to quote.

    Args:
        values: Non-empty sequence of finite numbers.
        unit: Unit symbol.

    Returns:
        The statistics, ``ci95`` unset and ``outliers`` empty.
    """
    return summarize(values, unit).model_copy(update={"outliers": [], "outlier_rule": ""})


def _statistics_row(
    job: Job, name: str, s: MetricStatistics, *, source: str, scope: StatisticsScope
) -> JobMetricStatistics:
    """One unsaved statistics row of ``job`` from a computed :class:`MetricStatistics`."""
    return JobMetricStatistics(
        job=job,
        metric=name,
        scope=scope,
        source=source,
        n=s.n,
        mean=s.mean,
        std=s.std,
        min=s.min,
        max=s.max,
        median=s.median,
        p90=s.p90,
        p95=s.p95,
        p99=s.p99,
        cv=s.cv,
        ci_low=s.ci95[0] if s.ci95 else None,
        ci_high=s.ci95[1] if s.ci95 else None,
        ci_method=s.ci_method or "",
        outliers=s.outliers,
        outlier_rule=s.outlier_rule,
        values=s.values,
        unit=spec.unit if (spec := metric_spec(name)) else "",
    )


def job_statistics_rows(
    job: Job, runs: Sequence[RunResult], samples: Iterable[SampleResult] | None = None
) -> list[JobMetricStatistics]:
    """A job's statistics, computed from its runs and samples, as unsaved rows: per run, and per request.

    Warm runs are used; when there is none (``runs_per_job`` = 1) the cold run is used and flagged ``cold``.
    Every run metric gets statistics over the runs (``scope = run``: one value per run, for a latency the run's
    mean). The latency metrics (``PER_REQUEST_METRICS``) also get statistics over every request of those same
    runs pooled (``scope = request``; every gap for ITL), which is what peer tools mean by a p95.

    Args:
        job: The job.
        runs: Its runs.
        samples: Their samples, in run then request order (default: read from the database); samples of runs that
            are not used are skipped.

    Returns:
        The statistics rows: the per-run ones first, then the per-request ones.
    """
    ordered = sorted(runs, key=lambda r: r.run_index)
    warm = [r for r in ordered if not r.cold_start]
    source_runs, source = (warm, "warm") if warm else ([r for r in ordered if r.cold_start], "cold")
    stats = describe_runs([r.metrics for r in source_runs])
    if samples is None:
        samples = (
            SampleResult.objects.filter(run__in=source_runs)
            .order_by("run__run_index", "id")
            .only("metrics", "timings", "error")
            .iterator(chunk_size=500)
        )
    else:
        used = {r.pk for r in source_runs}
        samples = (sample for sample in samples if sample.run_id in used)
    per_request = request_series(samples)
    rows = [_statistics_row(job, name, s, source=source, scope=StatisticsScope.RUN) for name, s in stats.items()]
    rows += [
        _statistics_row(job, name, describe_requests(per_request[name]), source=source, scope=StatisticsScope.REQUEST)
        for name in PER_REQUEST_METRICS
        if name in per_request
    ]
    return rows


def job_statistics_recompute(job: Job) -> list[JobMetricStatistics]:
    """(Re)compute and store a job's statistics from its stored runs and samples (see :func:`job_statistics_rows`).

    Args:
        job: The job.

    Returns:
        The stored statistics rows: the per-run ones first, then the per-request ones.
    """
    rows = job_statistics_rows(job, list(job.runs.order_by("run_index")))
    JobMetricStatistics.objects.filter(job=job).delete()
    return JobMetricStatistics.objects.bulk_create(rows)


def _measured_at(job_result: JobResult) -> datetime:
    """When a stored benchmark was measured (the benchmark's own end, else the result's times)."""
    stamp = (job_result.benchmark or {}).get("finished_at")
    if stamp:
        return datetime.fromisoformat(stamp)
    return job_result.finished_at or job_result.received_at


def _set_latest_benchmark(agent_id: Any, job_result: JobResult) -> None:
    """Make a stored benchmark the agent's measured peaks, unless a later measurement is already recorded."""
    agent = Agent.objects.select_for_update(of=("self",)).select_related("latest_benchmark").filter(pk=agent_id).first()
    if agent is None:
        return
    current = agent.latest_benchmark
    if current is not None and _measured_at(current) > _measured_at(job_result):
        return
    agent.latest_benchmark = job_result
    agent.save(update_fields=["latest_benchmark", "updated_at"])
    events.emit(events.AGENT_UPDATED, agent.pk)


# --------------------------------------------------------------------------------------------------
# Load sweeps
# --------------------------------------------------------------------------------------------------

#: Decimal places request times are stored with (microseconds: far below any latency a network adds).
TIME_DECIMALS = 6
#: Most problems one refusal of a load result lists (the first ones; a broken generator repeats itself).
MAX_LOAD_PROBLEMS = 20


class LoadResultRefused(ValidationError):
    """A load result that does not fit its job's load spec, or holds times that cannot be: a 400 naming each field.

    Nothing of the result is stored (the caller's transaction rolls back).
    """


def _time(value: float | None) -> float | None:
    """A time rounded to microseconds (None stays None)."""
    return None if value is None else round(value, TIME_DECIMALS)


def compact_requests(records: Sequence[RequestRecord]) -> dict[str, Any]:
    """A point's requests as columns, times rounded to microseconds: what :class:`~results.models.LoadPoint` stores.

    One list per field (a list of objects would repeat every key 100,000 times); errors and timeouts, rare, are
    kept by request position.

    Args:
        records: The measured requests, in send order.

    Returns:
        ``{"scheduled_s", "sent_s", "ttft_s", "e2e_s", "itl_s", "prompt_tokens", "output_tokens"}`` lists (one
        item per request; ``itl_s`` a list per request), ``"errors"`` (position as text -> message) and
        ``"timed_out"`` (positions).
    """
    return {
        "scheduled_s": [_time(r.scheduled_s) for r in records],
        "sent_s": [_time(r.sent_s) for r in records],
        "ttft_s": [_time(r.ttft_s) for r in records],
        "e2e_s": [_time(r.e2e_s) for r in records],
        "itl_s": [[round(gap, TIME_DECIMALS) for gap in r.itl_s] for r in records],
        "prompt_tokens": [r.prompt_tokens for r in records],
        "output_tokens": [r.output_tokens for r in records],
        "errors": {str(i): r.error for i, r in enumerate(records) if r.error is not None},
        "timed_out": [i for i, r in enumerate(records) if r.timed_out],
    }


class StoredRequest(NamedTuple):
    """A stored request: :class:`~common.protocol.RequestRecord`'s fields, read back without validating them again.

    A tuple, not the pydantic model: a point holds up to 100,000 of them, and building that many models took most
    of the time of reading a point back.
    """

    scheduled_s: float
    sent_s: float
    ttft_s: float | None
    e2e_s: float | None
    itl_s: list[float]
    prompt_tokens: int | None
    output_tokens: int | None
    error: str | None
    timed_out: bool


def expand_requests(raw: dict[str, Any]) -> list[StoredRequest]:
    """The requests of a stored point, back from :func:`compact_requests`'s columns (validated when stored).

    Args:
        raw: The stored columns.

    Returns:
        The requests, in send order, with the fields :mod:`common.loadmetrics` reads.
    """
    errors = raw.get("errors") or {}
    timed_out = set(raw.get("timed_out") or [])
    columns = zip(
        raw.get("scheduled_s") or [], raw.get("sent_s") or [], raw.get("ttft_s") or [], raw.get("e2e_s") or [],
        raw.get("itl_s") or [], raw.get("prompt_tokens") or [], raw.get("output_tokens") or [], strict=True,
    )
    return [
        StoredRequest(scheduled, sent, ttft, e2e, itl, prompt, output, errors.get(str(i)), i in timed_out)
        for i, (scheduled, sent, ttft, e2e, itl, prompt, output) in enumerate(columns)
    ]


def load_point_run(point: LoadPoint) -> LoadPointRun:
    """A stored point as the protocol's :class:`LoadPointRun` (its requests rebuilt from the stored columns).

    Args:
        point: The stored point (with ``raw`` loaded).

    Returns:
        The point, as :func:`common.loadmetrics.point_figures` reads it.
    """
    return LoadPointRun.model_construct(
        index=point.index,
        concurrency=point.concurrency,
        request_rate="inf" if point.request_rate_infinite else point.request_rate,
        duration_s=point.duration_s,
        requests=expand_requests(point.raw or {}),
        warmup_requests=point.warmup_requests,
        power_w=point.power_w,
        energy_j=point.energy_j,
        power_source=point.power_source or None,
        notes=list(point.notes or []),
    )


def _bad_time(value: float | None) -> str | None:
    """Why a time cannot be (not finite, or negative), or None."""
    if value is None:
        return None
    if not math.isfinite(value):
        return "must be a finite number of seconds"
    if value < 0:
        return f"must not be negative, got {value}"
    return None


def _record_problems(record: RequestRecord, path: str) -> list[tuple[str, str]]:
    """What is wrong with one request's times."""
    problems = []
    for name in ("scheduled_s", "sent_s", "ttft_s", "e2e_s"):
        problem = _bad_time(getattr(record, name))
        if problem:
            problems.append((f"{path}.{name}", problem))
    if len(record.itl_s) > MAX_SYNTHETIC_TOKENS:
        problems.append((f"{path}.itl_s", f"at most {MAX_SYNTHETIC_TOKENS} gaps, got {len(record.itl_s)}"))
    elif record.itl_s and (min(record.itl_s) < 0 or not math.isfinite(sum(record.itl_s))):
        # Only a request with a bad gap is searched for it (a point has millions of gaps).
        for j, gap in enumerate(record.itl_s):
            problem = _bad_time(gap)
            if problem:
                problems.append((f"{path}.itl_s[{j}]", problem))
                break
    if not problems and record.ttft_s is not None and record.e2e_s is not None and record.ttft_s > record.e2e_s + 1e-6:
        problems.append((f"{path}.ttft_s", f"the first token ({record.ttft_s} s) cannot come after the end "
                                           f"({record.e2e_s} s)"))
    return problems


def _same_load(point: LoadPointRun, spec: LoadSpec, expected: int | float | str) -> bool:
    """Whether a point was run at the load its index has in the spec."""
    if spec.mode == "concurrency":
        return point.concurrency == expected and point.request_rate is None
    if point.concurrency is not None:
        return False
    if expected == "inf" or point.request_rate == "inf":
        return point.request_rate == expected
    return isinstance(point.request_rate, int | float) and math.isclose(point.request_rate, float(expected))


def load_result_problems(sweep: LoadSweepRun, spec: LoadSpec) -> dict[str, list[str]]:
    """What makes a job's load sweep impossible for its spec: mode, point indices and loads, request counts, times.

    Args:
        sweep: The sweep the agent sent.
        spec: The job's load spec (its experiment's, never the one the agent echoes).

    Returns:
        Field path (``load.points[2].requests[17].ttft_s``) -> messages; empty when the sweep is sound. At most
        :data:`MAX_LOAD_PROBLEMS` are listed.
    """
    problems: list[tuple[str, str]] = []
    if sweep.mode != spec.mode:
        problems.append(("load.mode", f"the job's load spec sweeps {spec.mode}, not {sweep.mode}"))
    if sweep.method == "batch" and spec.mode != "concurrency":
        problems.append(("load.method", "batch load is made only for concurrency sweeps"))
    values = spec.points()
    cap = spec.num_requests if spec.num_requests is not None else MAX_REQUESTS_PER_POINT
    seen: set[int] = set()
    for i, point in enumerate(sweep.points):
        path = f"load.points[{i}]"
        if point.index in seen:
            problems.append((f"{path}.index", f"point {point.index} appears more than once"))
        seen.add(point.index)
        if point.index >= len(values):
            problems.append((f"{path}.index", f"the load spec has {len(values)} point(s): 0 to {len(values) - 1}"))
        elif not _same_load(point, spec, values[point.index]):
            shown = point.concurrency if point.concurrency is not None else point.request_rate
            problems.append((f"{path}.{spec.mode}", f"point {point.index} of the load spec is "
                                                    f"{values[point.index]}, not {shown}"))
        if not math.isfinite(point.duration_s):
            problems.append((f"{path}.duration_s", "must be a finite number of seconds"))
        if len(point.requests) > cap:
            problems.append((f"{path}.requests", f"at most {cap} measured requests per point, got "
                                                 f"{len(point.requests)}"))
        if point.warmup_requests > spec.warmup_requests:
            problems.append((f"{path}.warmup_requests", f"the load spec asks for {spec.warmup_requests}, got "
                                                        f"{point.warmup_requests}"))
        for name in ("power_w", "energy_j"):
            value = getattr(point, name)
            if value is not None and not math.isfinite(value):
                problems.append((f"{path}.{name}", "must be a finite number"))
        for j, record in enumerate(point.requests):
            problems += _record_problems(record, f"{path}.requests[{j}]")
            if len(problems) >= MAX_LOAD_PROBLEMS:
                break
        if len(problems) >= MAX_LOAD_PROBLEMS:
            break
    out: dict[str, list[str]] = {}
    for key, message in problems[:MAX_LOAD_PROBLEMS]:
        out.setdefault(key, []).append(message)
    return out


def _agent_cost_per_hour(agent_id: Any) -> float | None:
    """What the agent's host costs per hour (None when unknown)."""
    cost = Agent.objects.filter(pk=agent_id).values_list("cost_per_hour", flat=True).first() if agent_id else None
    return float(cost) if cost is not None else None


def _load_point_row(
    job: Job, job_result: JobResult, point: LoadPointRun, spec: LoadSpec, cost_per_hour: float | None
) -> LoadPoint:
    """One load point as an unsaved row, its figures computed from the stored (rounded) requests."""
    raw = compact_requests(point.requests)
    # The figures come from exactly what is stored, so anyone can recompute them from the row.
    stored = point.model_copy(update={"requests": expand_requests(raw)})
    figures = point_figures(stored, spec.slo, cost_per_hour)
    infinite = point.request_rate == "inf"
    return LoadPoint(
        job=job,
        result=job_result,
        index=point.index,
        concurrency=point.concurrency,
        request_rate=None if infinite or point.request_rate is None else float(point.request_rate),
        request_rate_infinite=infinite,
        duration_s=point.duration_s,
        warmup_requests=point.warmup_requests,
        figures=figures,
        raw=raw,
        power_w=point.power_w,
        energy_j=point.energy_j,
        power_source=point.power_source or "",
        overhead=point.overhead.model_dump(mode="json"),
        notes=[note[:1000] for note in point.notes[:100]],
    )


def load_points_recompute(job: Job) -> list[LoadPoint]:
    """Compute a job's load figures again from its stored requests (after a change of objectives or cost).

    Args:
        job: The job (its experiment's load spec gives the objectives).

    Returns:
        The points, their figures updated and saved.
    """
    spec = job.experiment.load_spec
    cost = _agent_cost_per_hour(job.agent_id)
    points = list(LoadPoint.objects.filter(job=job).order_by("index"))
    for point in points:
        point.figures = point_figures(load_point_run(point), spec.slo if spec else None, cost)
    LoadPoint.objects.bulk_update(points, ["figures"])
    return points


def _store_load(job: Job, job_result: JobResult, sweep: LoadSweepRun, spec: LoadSpec, agent_id: Any) -> None:
    """Store a job's load points (validated) with their figures, and the sweep's outcome on its result."""
    cost = _agent_cost_per_hour(agent_id)
    points = sorted(sweep.points, key=lambda p: p.index)
    LoadPoint.objects.bulk_create([_load_point_row(job, job_result, p, spec, cost) for p in points], batch_size=8)


def job_result_store(
    *, job: Job, result: MultiRunJobResult, attempt: JobAttempt | None = None
) -> tuple[JobResult, bool]:
    """Store an agent's result for a job exactly once, to be scored by a scoring worker.

    The caller decides what the result means for the job's state (the callback view moves the job to
    ``completed`` or ``failed``); this function only records data. The result is stored ``scoring``: ROUGE, the run
    means and the statistics come from :func:`results.scoring.score_pending`.

    Args:
        job: The job.
        result: The result message.
        attempt: The attempt that produced it.

    Returns:
        ``(job_result, created)``; ``created`` is False when a result was already stored (replay).
    """
    with transaction.atomic():
        # Lock the job row so two concurrent deliveries of the same result serialize here.
        locked = Job.objects.select_for_update(of=("self",)).select_related("experiment").get(pk=job.pk)
        return job_result_store_locked(job=locked, result=result, attempt=attempt)


def job_result_store_locked(
    *, job: Job, result: MultiRunJobResult, attempt: JobAttempt | None = None, known_new: bool = False
) -> tuple[JobResult, bool]:
    """:func:`job_result_store` for a caller that holds the job's row lock in its transaction.

    A handful of statements whatever the size of the result: the result, then every run in one INSERT, then every
    sample of every run in one INSERT.

    Args:
        job: The job, locked, with its experiment loaded (``select_related``).
        result: The result message.
        attempt: The attempt that produced it.
        known_new: The caller has just checked, under the lock, that the job has no result yet.

    Returns:
        ``(job_result, created)``; ``created`` is False when a result was already stored (replay).

    Raises:
        LoadResultRefused: A load sweep that its job did not ask for or that does not fit its load spec (nothing
            is stored).
    """
    if not known_new:
        existing = JobResult.objects.filter(job=job).first()
        if existing is not None:
            log.info("result_replay_ignored", job_id=job.pk, attempt=result.attempt)
            return existing, False
    spec = job.experiment.load_spec
    if result.load is not None:
        if spec is None:
            raise LoadResultRefused({"load": ["this job has no load spec: its result cannot hold a load sweep"]})
        problems = load_result_problems(result.load, spec)
        if problems:
            raise LoadResultRefused(problems)
    runs = sorted(result.runs, key=lambda r: r.run_index)
    load_only = result.load is not None and not runs
    benchmark = next((r.benchmark for r in reversed(runs) if r.benchmark), None)
    # Only a hardware benchmark job measures peaks: a benchmark attached to any other job's runs is ignored.
    measures_peaks = (
        benchmark is not None
        and result.status == AgentJobState.COMPLETED
        and job.experiment.task_name in measurement_tasks()
    )
    job_result = JobResult.objects.create(
        job=job,
        attempt=attempt,
        access_mode=result.access_mode or "",
        cold_start=result.cold_start,
        unavailable_metrics=result.unavailable_metrics,
        hardware_fingerprint=result.hardware_fingerprint or "",
        error=result.error or ("" if result.status == AgentJobState.COMPLETED else result.status),
        execution=result.execution.model_dump(mode="json") if result.execution else None,
        benchmark=benchmark.model_dump(mode="json") if measures_peaks and benchmark is not None else None,
        # The load's requests are stored once, in their points, not again here.
        raw=result.model_dump(mode="json", exclude={"runs", "attempt_token", "statistics", "execution", "load"}),
        started_at=result.started_at,
        finished_at=result.finished_at,
        # A load job's figures are its points' (computed below, as it is stored): nothing is left to score.
        scoring_status=ScoringStatus.SCORED if load_only else ScoringStatus.SCORING,
        statistics_source="none" if load_only else "warm",
        scored_at=timezone.now() if load_only else None,
        load=None if result.load is None or spec is None else {
            "mode": result.load.mode,
            "method": result.load.method,
            "stopped_early": result.load.stopped_early,
            "spec": spec.model_dump(mode="json"),
        },
    )
    if result.load is not None and spec is not None:
        _store_load(job, job_result, result.load, spec, attempt.agent_id if attempt else job.agent_id)
    rows = RunResult.objects.bulk_create([_run_row(job, attempt, run) for run in runs])
    if any(row.pk is None for row in rows):  # a database that cannot return the new ids (SQLite before 3.35)
        ids = dict(RunResult.objects.filter(job=job).values_list("run_index", "pk"))
        for row in rows:
            row.pk = ids[row.run_index]
    SampleResult.objects.bulk_create(
        [sample for row, run in zip(rows, runs, strict=True) for sample in _sample_rows(row, run)], batch_size=1000
    )
    if measures_peaks:
        # The agent's peaks change on arrival (cheap, and the next job's efficiency figures need them).
        _set_latest_benchmark(attempt.agent_id if attempt else job.agent_id, job_result)
    log.info("result_stored", job_id=job.pk, runs=len(runs), samples=sum(len(r.samples) for r in runs))
    return job_result, True
