"""Reads for results: per-job results, experiment aggregates, the comparison matrix and raw export rows."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.db.models import Prefetch

from agents.models import Agent
from agents.peaks import agent_benchmark
from common.loadcolumns import cell_columns, request_columns
from common.metrics import METRIC_SPECS, PER_REQUEST_METRICS, Metric, metric_spec
from experiments.models import Experiment, Job
from results.efficiency import job_efficiency
from results.load_selectors import load_cell
from results.models import JobMetricStatistics, LoadPoint, RunResult, SampleResult, StatisticsScope


def sample_dict(sample: SampleResult, *, timings: bool = False) -> dict[str, Any]:
    """One stored sample as JSON (raw timings only for exports: they are long)."""
    data = {
        "id": sample.sample_id,
        "title": sample.title,
        "output": sample.output,
        "reference": sample.reference,
        "prompt_tokens": sample.prompt_tokens,
        "output_tokens": sample.output_tokens,
        "metrics": sample.metrics,
        "finish_reason": sample.finish_reason,
        "error": sample.error or None,
    }
    if timings:
        data["timings"] = sample.timings
    return data


def split_statistics(
    rows: Iterable[JobMetricStatistics], *, request_values: bool = True
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Split a job's statistics rows into ``(per_run, per_request)`` dicts keyed by metric.

    Args:
        rows: The job's statistics rows (both scopes).
        request_values: Keep the per-request raw values (one per request, one per gap for ITL); without them
            ``values`` is None.

    Returns:
        Metric -> statistics over runs, and metric -> statistics over requests.
    """
    per_run: dict[str, dict[str, Any]] = {}
    per_request: dict[str, dict[str, Any]] = {}
    for s in rows:
        if s.scope == StatisticsScope.REQUEST:
            per_request[s.metric] = s.as_dict(values=request_values)
        else:
            per_run[s.metric] = s.as_dict()
    return per_run, per_request


def ordered_metric_names(names: Iterable[str]) -> list[str]:
    """``names`` without repeats: canonical metrics in catalogue order, then the others (benchmark figures) sorted."""
    present = set(names)
    return [m for m in METRIC_SPECS if m in present] + sorted(present - set(METRIC_SPECS))


def metric_descriptions(names: Iterable[str]) -> list[dict[str, Any]]:
    """Name, unit, direction and description of each metric in ``names`` (known metrics in catalogue order).

    Args:
        names: Metric names present in some results.

    Returns:
        One dict per name; names RUCKUS does not define get an empty unit and no direction.
    """
    out = []
    for name in ordered_metric_names(names):
        spec = metric_spec(name)
        out.append(
            {
                "name": name,
                "unit": spec.unit if spec else "",
                "higher_is_better": spec.higher_is_better if spec else None,
                "description": spec.description if spec else "",
            }
        )
    return out


def job_results(job: Job, *, include_samples: bool = True) -> dict[str, Any]:
    """Everything measured for one job: statistics, cold run, every run (and its samples).

    Args:
        job: The job.
        include_samples: Include per-sample outputs and references.

    Returns:
        A JSON-ready dict.
    """
    result = getattr(job, "result", None)
    scoring = result is not None and result.is_scoring
    # While the result is being scored its figures are not there yet (or are being replaced): none are shown.
    statistics, request_statistics = split_statistics([] if scoring else job.statistics.all())
    runs = RunResult.objects.filter(job=job).order_by("run_index")
    if include_samples:
        runs = runs.prefetch_related("samples")
    return {
        "job": job.pk,
        "experiment": job.experiment_id,
        "status": job.status,
        "model": job.model_name,
        "runtime": job.runtime_name,
        "agent": str(job.agent_id) if job.agent_id else None,
        "hardware_fingerprint": job.hardware_fingerprint,
        "scoring_status": result.scoring_status if result else None,
        "scoring_error": (result.scoring_error or None) if result else None,
        "scored_at": result.scored_at if result else None,
        "statistics_source": result.statistics_source if result and not scoring else None,
        "statistics": statistics,
        "request_statistics": request_statistics,
        "efficiency": None if scoring else job_efficiency(job, _means(statistics), agent_benchmark(job.agent)),
        "execution": result.execution if result else None,
        "cold_start": result.cold_start if result else None,
        "unavailable_metrics": result.unavailable_metrics if result else {},
        "access_mode": result.access_mode if result else None,
        "error": (result.error or None) if result else None,
        "runs": [
            {
                "run_index": r.run_index,
                "cold_start": r.cold_start,
                "metrics": r.metrics,
                "unavailable_metrics": r.unavailable_metrics,
                "telemetry": r.telemetry,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                **(
                    {
                        "samples": [sample_dict(s) for s in r.samples.all()]
                    }
                    if include_samples
                    else {}
                ),
            }
            for r in runs
        ],
    }


def _means(statistics: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Metric -> mean, from a job's statistics as the API shows them."""
    return {metric: s["mean"] for metric, s in statistics.items()}


def _benchmarks_by_agent(jobs: Iterable[Job]) -> dict[Any, Any]:
    """Each agent's latest hardware benchmark, parsed once per agent."""
    ids = {j.agent_id for j in jobs if j.agent_id is not None}
    agents = Agent.objects.select_related("latest_benchmark").filter(pk__in=ids)
    return {agent.pk: agent_benchmark(agent) for agent in agents}


def experiment_results(experiment: Experiment) -> dict[str, Any]:
    """Aggregated results of an experiment: one entry per job with statistics, efficiency and the cold run.

    Args:
        experiment: The experiment.

    Returns:
        ``{"experiment", "status", "scoring", "metrics": [...], "jobs": [...], "unrunnable": [...]}``; ``metrics``
        describes every metric present in the jobs' statistics (unit, direction); ``scoring`` counts the jobs whose
        results are still being scored (their statistics are empty until then).
    """
    # Per-request raw values stay in the job's own results (ITL alone has one per streamed chunk): they are not
    # even read here, since the UI polls this endpoint while jobs run.
    per_run = JobMetricStatistics.objects.filter(scope=StatisticsScope.RUN)
    per_request = JobMetricStatistics.objects.filter(scope=StatisticsScope.REQUEST).defer("values")
    jobs = list(
        experiment.jobs.select_related("agent", "result")
        .prefetch_related(
            Prefetch("statistics", queryset=per_run, to_attr="run_statistics"),
            Prefetch("statistics", queryset=per_request, to_attr="request_statistics"),
        )
        .order_by("id")
    )
    benchmarks = _benchmarks_by_agent(jobs)
    entries = []
    names: set[str] = set()
    scoring_jobs = 0
    for j in jobs:
        result = getattr(j, "result", None)
        scoring = result is not None and result.is_scoring
        scoring_jobs += scoring
        statistics, request_statistics = split_statistics(
            [] if scoring else [*j.run_statistics, *j.request_statistics], request_values=False
        )
        names.update(statistics)
        entries.append(
            {
                "job": j.pk,
                "status": j.status,
                "model": j.model_name,
                "runtime": j.runtime_name,
                "agent": str(j.agent_id) if j.agent_id else None,
                "agent_name": j.agent.name if j.agent else None,
                "hardware_fingerprint": j.hardware_fingerprint,
                "scoring_status": result.scoring_status if result else None,
                "statistics": statistics,
                "request_statistics": request_statistics,
                "efficiency": None if scoring else job_efficiency(j, _means(statistics), benchmarks.get(j.agent_id)),
                "cold_start": result.cold_start if result else None,
                "unavailable_metrics": result.unavailable_metrics if result else {},
            }
        )
    return {
        "experiment": experiment.pk,
        "status": experiment.status,
        "scoring": scoring_jobs,
        "unrunnable": experiment.plan.get("unrunnable", []),
        "metrics": metric_descriptions(names),
        "jobs": entries,
    }


def experiment_comparison(experiment: Experiment, metric: str = Metric.OUTPUT_TOKENS_PER_S) -> dict[str, Any]:
    """Comparison matrix: rows model x runtime, columns agents (hardware), cells mean ± std of ``metric``.

    Each cell also carries throughput per dollar (output tokens per dollar, where the agent has a
    ``cost_per_hour``), per watt (output tokens per joule, where GPU power was measured) and the fraction
    of the agent's measured peak memory bandwidth the decode reached (``bandwidth_fraction``, where the
    agent has run a hardware benchmark and the runtime reports its weights).

    Args:
        experiment: The experiment.
        metric: Metric to show in the cells.

    Returns:
        ``{"metric", "unit", "higher_is_better", "columns": [...], "rows": [...]}``.
    """
    jobs = list(
        experiment.jobs.select_related("agent", "result").order_by("model_name", "runtime_name", "agent__name")
    )
    stats: dict[tuple[int, str], JobMetricStatistics] = {
        (s.job_id, s.metric): s
        for s in JobMetricStatistics.objects.filter(
            job__in=jobs,
            scope=StatisticsScope.RUN,  # the matrix compares run means (± std over runs, the CI over runs)
            metric__in=[metric, Metric.OUTPUT_TOKENS_PER_S, Metric.GPU_POWER_W, Metric.TPOT_S],
        )
    }
    benchmarks = _benchmarks_by_agent(jobs)
    means: dict[int, dict[str, float]] = {}
    for (job_id, name), s in stats.items():
        means.setdefault(job_id, {})[name] = s.mean
    columns: dict[str, dict[str, Any]] = {}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for job in jobs:
        col_key = str(job.agent_id) if job.agent_id else f"fingerprint:{job.hardware_fingerprint}"
        if col_key not in columns:
            columns[col_key] = {
                "key": col_key,
                "agent": str(job.agent_id) if job.agent_id else None,
                "agent_name": job.agent.name if job.agent else "(removed agent)",
                "hardware_fingerprint": job.hardware_fingerprint,
                "cost_per_hour": float(job.agent.cost_per_hour) if job.agent and job.agent.cost_per_hour else None,
            }
        row = rows.setdefault(
            (job.model_name, job.runtime_name),
            {"model": job.model_name, "runtime": job.runtime_name, "cells": {}},
        )
        result = getattr(job, "result", None)
        scoring = result is not None and result.is_scoring
        cell: dict[str, Any] = {
            "job": job.pk, "status": job.status, "scoring_status": result.scoring_status if result else None,
            "mean": None, "std": None, "n": 0,
        }
        row["cells"][col_key] = cell
        if scoring:
            continue  # no figure until the result is scored
        s = stats.get((job.pk, metric))
        if s is not None:
            cell.update(mean=s.mean, std=s.std, n=s.n, ci95=[s.ci_low, s.ci_high] if s.ci_low is not None else None,
                        ci_method=s.ci_method if s.ci_low is not None else None, cv=s.cv)
        tps = stats.get((job.pk, Metric.OUTPUT_TOKENS_PER_S))
        cost = columns[col_key]["cost_per_hour"]
        if tps is not None and cost:
            cell["tokens_per_dollar"] = tps.mean * 3600.0 / cost
        power = stats.get((job.pk, Metric.GPU_POWER_W))
        if tps is not None and power is not None and power.mean > 0 and math.isfinite(power.mean):
            cell["tokens_per_joule"] = tps.mean / power.mean
        efficiency = job_efficiency(job, means.get(job.pk, {}), benchmarks.get(job.agent_id))
        if efficiency is not None and efficiency["bandwidth_fraction"] is not None:
            cell["bandwidth_fraction"] = efficiency["bandwidth_fraction"]
    spec = metric_spec(metric)
    return {
        "experiment": experiment.pk,
        "metric": metric,
        "unit": spec.unit if spec else "",
        "higher_is_better": spec.higher_is_better if spec else None,
        "columns": list(columns.values()),
        "rows": list(rows.values()),
    }


#: Columns of the CSV export before the metric columns.
EXPORT_BASE_COLUMNS = [
    "experiment",
    "job",
    "model",
    "runtime",
    "agent",
    "agent_name",
    "hardware_fingerprint",
    "attempt",
    "run_index",
    "cold_start",
    "started_at",
    "finished_at",
    "scoring_status",
]


def export_metric_names(experiment: Experiment) -> list[str]:
    """Every run-level metric name present in the experiment, known metrics first.

    The runs' metrics are read a chunk at a time (only that column), so memory does not grow with the experiment.
    """
    names: set[str] = set()
    rows = RunResult.objects.filter(job__experiment=experiment).order_by().values_list("metrics", flat=True)
    for metrics in rows.iterator(chunk_size=EXPORT_CHUNK_SIZE * 10):
        names.update(metrics)
    return ordered_metric_names(names)


#: Statistics of each per-request latency in the CSV export, as ``<metric>.per_request.<statistic>`` columns.
EXPORT_REQUEST_STATISTICS = ("n", "mean", "median", "p90", "p95", "p99", "std", "min", "max")


def export_request_columns(experiment: Experiment) -> list[tuple[str, str, str]]:
    """The CSV export's per-request columns: ``(column, metric, statistic)`` for each latency some job has.

    Args:
        experiment: The experiment.

    Returns:
        ``("ttft_s.per_request.p95", "ttft_s", "p95")`` ..., metrics in ``PER_REQUEST_METRICS`` order.
    """
    present = set(
        JobMetricStatistics.objects.filter(job__experiment=experiment, scope=StatisticsScope.REQUEST)
        .values_list("metric", flat=True)
        .distinct()
    )
    return [
        (f"{metric}.per_request.{stat}", metric, stat)
        for metric in PER_REQUEST_METRICS
        if metric in present
        for stat in EXPORT_REQUEST_STATISTICS
    ]


#: Runs read per chunk by the export. Each chunk costs the same few queries (its runs with their jobs, agents and
#: attempts; their jobs' per-request statistics; their samples, in the JSON export), whatever the experiment's size.
EXPORT_CHUNK_SIZE = 200

#: The columns the export reads: the run's own, and the few it shows of its job, agent, attempt and result. The rest
#: (an agent's capabilities, a job's specs, an attempt's progress, a run's telemetry) would be decoded for every run.
_EXPORT_RUN_FIELDS = (
    "run_index", "cold_start", "started_at", "finished_at", "metrics", "unavailable_metrics",
    "job", "job__model_name", "job__runtime_name", "job__hardware_fingerprint", "job__agent", "job__agent__name",
    "attempt", "attempt__number", "job__result", "job__result__scoring_status",
)


def _request_statistics_by_job(job_ids: Iterable[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """Job id -> metric -> per-request statistics of these jobs (without raw values: the samples hold them)."""
    out: dict[int, dict[str, dict[str, Any]]] = {}
    rows = JobMetricStatistics.objects.filter(job_id__in=job_ids, scope=StatisticsScope.REQUEST).defer("values")
    for s in rows:
        out.setdefault(s.job_id, {})[s.metric] = s.as_dict(values=False)
    return out


def _samples_by_run(run_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """Run id -> its samples as the export shows them (with raw timings), in sample order."""
    out: dict[int, list[dict[str, Any]]] = {}
    for sample in SampleResult.objects.filter(run_id__in=run_ids).order_by("run_id", "id"):
        out.setdefault(sample.run_id, []).append(sample_dict(sample, timings=True))
    return out


def export_runs(experiment: Experiment, *, samples: bool = True) -> Iterator[dict[str, Any]]:
    """Yield every raw run of an experiment (with samples), in job and run order, a chunk at a time.

    Each run carries its job's per-request statistics (``request_statistics``: over all of the job's warm
    requests, so the same for every run of a job), next to its own run-level ``metrics``. Runs are read
    :data:`EXPORT_CHUNK_SIZE` at a time (with their jobs, agents, attempts and results' scoring statuses), and
    each chunk's samples and statistics in one query each: memory stays flat and the number of queries grows with
    the chunks, not with the runs.

    A chunk's rows are plain values, not prefetched into the runs: prefetching links each sample and its run both
    ways, and such cycles wait for a full garbage collection, so memory grew with the export however it streamed.

    Args:
        experiment: The experiment.
        samples: Read and include each run's samples (the CSV export has no column for them).

    Yields:
        One dict per run (``samples`` empty when not read).
    """
    runs = (
        RunResult.objects.filter(job__experiment=experiment)
        .select_related("job", "job__agent", "job__result", "attempt")
        .only(*_EXPORT_RUN_FIELDS)
        .order_by("job_id", "run_index")
        .iterator(chunk_size=EXPORT_CHUNK_SIZE)
    )
    while chunk := list(islice(runs, EXPORT_CHUNK_SIZE)):
        request_statistics = _request_statistics_by_job({run.job_id for run in chunk})
        run_samples = _samples_by_run([run.pk for run in chunk]) if samples else {}
        for run in chunk:
            job = run.job
            result = getattr(job, "result", None)  # a job whose result is not stored has none
            yield {
                "experiment": experiment.pk,
                "job": job.pk,
                "model": job.model_name,
                "runtime": job.runtime_name,
                "agent": str(job.agent_id) if job.agent_id else None,
                "agent_name": job.agent.name if job.agent else None,
                "hardware_fingerprint": job.hardware_fingerprint,
                "attempt": run.attempt.number if run.attempt else None,
                "run_index": run.run_index,
                "cold_start": run.cold_start,
                "started_at": run.started_at.isoformat() if run.started_at else None,
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "scoring_status": result.scoring_status if result is not None else None,
                "metrics": run.metrics,
                "unavailable_metrics": run.unavailable_metrics,
                "request_statistics": request_statistics.get(job.pk, {}),
                "samples": run_samples.get(run.pk, []),
            }
        # Let this chunk's rows go before the next chunk's are read: one chunk in memory at a time, not two.
        del run_samples, request_statistics


#: What the export can hold (``?kind=``): the runs (sequential jobs), a load sweep's points, or its raw requests.
EXPORT_KINDS = ("runs", "load_points", "load_requests")

#: Jobs read per chunk by the load points export (each chunk's points' figures in one query).
LOAD_EXPORT_JOB_CHUNK = 200

#: The columns the load exports read of a job (and its agent and result): what a cell shows, no specs or logs.
_LOAD_EXPORT_JOB_FIELDS = (
    "id", "experiment_id", "status", "model_name", "runtime_name", "hardware_fingerprint", "agent_id",
    "agent__id", "agent__name", "agent__cost_per_hour", "result__id", "result__load",
)


def _load_export_jobs(experiment: Experiment) -> Iterator[Job]:
    """The experiment's jobs with their agent and result, in id order, read a chunk at a time."""
    return (
        Job.objects.filter(experiment_id=experiment.pk)
        .select_related("agent", "result")
        .only(*_LOAD_EXPORT_JOB_FIELDS)
        .order_by("id")
        .iterator(chunk_size=LOAD_EXPORT_JOB_CHUNK)
    )


def export_load_points(experiment: Experiment) -> Iterator[dict[str, Any]]:
    """Yield one row per (job, load point) of an experiment's sweep, in job and point order.

    Each row is the job's columns (:data:`common.loadcolumns.LOAD_CELL_COLUMNS`) followed by the point's figures
    as the load endpoints send them (latencies as dicts of statistics; the CSV export flattens them with
    :func:`common.loadcolumns.flatten_point`). Jobs are read :data:`LOAD_EXPORT_JOB_CHUNK` at a time with their
    points' figures in one query per chunk (the raw requests are not read).

    Args:
        experiment: The experiment (none for an experiment without a load sweep).

    Yields:
        One dict per point.
    """
    spec = experiment.load_spec
    if spec is None:
        return
    jobs = _load_export_jobs(experiment)
    while chunk := list(islice(jobs, LOAD_EXPORT_JOB_CHUNK)):
        figures: dict[int, list[dict[str, Any]]] = {}
        rows = LoadPoint.objects.filter(job_id__in=[job.pk for job in chunk]).order_by("job_id", "index")
        for job_id, point in rows.values_list("job_id", "figures"):
            figures.setdefault(job_id, []).append(point)
        for job in chunk:
            columns = cell_columns(load_cell(job, [], spec.mode), experiment.pk, spec.mode)
            for point in figures.get(job.pk, []):
                yield {**columns, **point}
        del figures


#: Points read at a time by the raw requests export: one, since a point may hold 100,000 requests (measured on four
#: points of 25,000 requests of 64 tokens: the export's peak Python memory was 128 MB reading one at a time, 160 MB
#: reading four).
LOAD_EXPORT_POINT_CHUNK = 1


def export_load_requests(experiment: Experiment) -> Iterator[dict[str, Any]]:
    """Yield one row per measured request of an experiment's sweep, in job, point and send order.

    Each row is the job's columns, the point's ``point`` (index), ``concurrency`` and ``request_rate``, and the
    request's own (:data:`common.loadcolumns.LOAD_REQUEST_OWN_COLUMNS`: its raw times as the agent measured them,
    microseconds apart; ``itl_s`` its inter-token gaps as a JSON list). Points are read
    :data:`LOAD_EXPORT_POINT_CHUNK` at a time, so memory holds one point's requests however large the sweep.

    Args:
        experiment: The experiment (none for an experiment without a load sweep).

    Yields:
        One dict per request.
    """
    spec = experiment.load_spec
    if spec is None:
        return
    cells: dict[int, dict[str, Any]] = {}
    for job in _load_export_jobs(experiment):
        cells[job.pk] = cell_columns(load_cell(job, [], spec.mode), experiment.pk, spec.mode)
    points = (
        LoadPoint.objects.filter(job__experiment_id=experiment.pk)
        .order_by("job_id", "index")
        .only("job_id", "index", "concurrency", "request_rate", "request_rate_infinite", "raw")
        .iterator(chunk_size=LOAD_EXPORT_POINT_CHUNK)
    )
    for point in points:
        head = {
            **cells[point.job_id],
            "point": point.index,
            "concurrency": point.concurrency,
            "request_rate": "inf" if point.request_rate_infinite else point.request_rate,
        }
        raw = point.raw or {}
        errors, timed_out = raw.get("errors") or {}, set(raw.get("timed_out") or [])
        for number, request in enumerate(_raw_requests(raw)):
            request["error"] = errors.get(str(number))
            request["timed_out"] = number in timed_out
            yield {**head, **request_columns(request, number)}


def _raw_requests(raw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A stored point's requests (:func:`results.services.compact_requests`'s columns), one dict each."""
    fields = ("scheduled_s", "sent_s", "ttft_s", "e2e_s", "itl_s", "prompt_tokens", "output_tokens")
    for values in zip(*(raw.get(field) or [] for field in fields), strict=True):
        yield dict(zip(fields, values, strict=True))
