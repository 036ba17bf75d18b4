"""Writes for results: store an agent's job result once; compute its ROUGE scores, run means and statistics.

Storing is idempotent: a job keeps the first result accepted for it, so replaying the same result message any
number of times stores it once (DESIGN section 3, flow 4). Storing is all the result callback does: the figures
are computed afterwards by a scoring worker (:mod:`results.scoring`), so an agent's POST does not wait for them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import structlog
from django.db import transaction

from agents.models import Agent
from common.catalog import measurement_tasks
from common.descriptive import summarize
from common.metrics import PER_REQUEST_METRICS, ROUGE_METRICS, Metric, metric_spec
from common.protocol import AgentJobState, MetricStatistics, MultiRunJobResult, SingleRunResult
from common.stats import describe_runs
from common.statuses import ScoringStatus
from core import events
from experiments.models import Job, JobAttempt
from results.models import JobMetricStatistics, JobResult, RunResult, SampleResult, StatisticsScope

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
    """
    if not known_new:
        existing = JobResult.objects.filter(job=job).first()
        if existing is not None:
            log.info("result_replay_ignored", job_id=job.pk, attempt=result.attempt)
            return existing, False
    runs = sorted(result.runs, key=lambda r: r.run_index)
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
        statistics_source="warm",
        cold_start=result.cold_start,
        unavailable_metrics=result.unavailable_metrics,
        hardware_fingerprint=result.hardware_fingerprint or "",
        error=result.error or ("" if result.status == AgentJobState.COMPLETED else result.status),
        execution=result.execution.model_dump(mode="json") if result.execution else None,
        benchmark=benchmark.model_dump(mode="json") if measures_peaks and benchmark is not None else None,
        raw=result.model_dump(mode="json", exclude={"runs", "attempt_token", "statistics", "execution"}),
        started_at=result.started_at,
        finished_at=result.finished_at,
        scoring_status=ScoringStatus.SCORING,
    )
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
