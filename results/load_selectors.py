"""Reads of load sweeps: each job's points (figures as stored), where the sweep saturates, raw series.

An experiment's sweeps are read in a fixed number of queries whatever its size: its jobs (with agent and result)
in one, their points' figures in another (without the raw requests, which only a job's own view reads).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from common.catalog import RUNTIMES
from common.loadmetrics import point_series
from common.protocol import AccessMode
from common.saturation import summarize_sweep
from experiments.models import Experiment, Job
from results.models import LoadPoint
from results.services import load_point_run

#: The columns of a job that a cell shows.
_JOB_FIELDS = (
    "id", "experiment_id", "status", "model_name", "runtime_name", "hardware_fingerprint", "agent_id",
    "agent__id", "agent__name", "agent__cost_per_hour", "result__id", "result__load",
)


def _method(job: Job) -> str:
    """How the job made (or will make) its load: as its result says, else as its runtime does."""
    result = getattr(job, "result", None)
    stored = (result.load or {}).get("method") if result is not None else None
    if stored:
        return stored
    runtime = RUNTIMES.get(job.runtime_name)
    return "batch" if runtime is not None and runtime.access_mode == AccessMode.WHITE_BOX else "http"


def load_cell(job: Job, points: Iterable[dict[str, Any]], mode: str | None) -> dict[str, Any]:
    """One job's cell: what it ran on, its points and its saturation summary.

    Args:
        job: The job, with ``agent`` and ``result`` loaded (``select_related``).
        points: Its points (figures dicts, or figures with ``raw``), in sweep order.
        mode: The sweep's axis (None: the experiment has no load sweep).

    Returns:
        The cell (:class:`results.load_schemas.LoadCell`).
    """
    points = list(points)
    result = getattr(job, "result", None)
    agent = job.agent
    summary = (
        summarize_sweep(points, mode) if mode is not None else {"peak": None, "max_goodput": None, "knee": None}
    )
    return {
        "job": job.pk,
        "status": job.status,
        "agent_id": str(agent.pk) if agent is not None else None,
        "agent_name": agent.name if agent is not None else None,
        "hardware": job.hardware_fingerprint,
        "model": job.model_name,
        "runtime": job.runtime_name,
        "method": _method(job),
        # A decimal string, as the agents API shows the cost (no binary rounding of money).
        "cost_per_hour": str(agent.cost_per_hour) if agent is not None and agent.cost_per_hour is not None else None,
        "stopped_early": (result.load or {}).get("stopped_early") if result is not None else None,
        "points": points,
        **summary,
    }


def _jobs(experiment_id: int) -> list[Job]:
    """An experiment's jobs with their agent and result (only the columns a cell shows), in id order."""
    return list(
        Job.objects.filter(experiment_id=experiment_id)
        .select_related("agent", "result")
        .only(*_JOB_FIELDS)
        .order_by("id")
    )


def experiment_load(experiment: Experiment) -> dict[str, Any]:
    """Every job's sweep of an experiment, in three queries (experiment apart) whatever its size.

    Args:
        experiment: The experiment.

    Returns:
        :class:`results.load_schemas.ExperimentLoad` as a dict.
    """
    spec = experiment.load_spec
    if spec is None:
        return {"experiment": experiment.pk, "mode": None, "slo": None, "cells": []}
    figures: dict[int, list[dict[str, Any]]] = {}
    rows = (
        LoadPoint.objects.filter(job__experiment_id=experiment.pk)
        .order_by("job_id", "index")
        .values_list("job_id", "figures")
    )
    for job_id, point in rows:
        figures.setdefault(job_id, []).append(point)
    return {
        "experiment": experiment.pk,
        "mode": spec.mode,
        "slo": spec.slo.model_dump(mode="json") if spec.slo is not None else None,
        "cells": [load_cell(job, figures.get(job.pk, []), spec.mode) for job in _jobs(experiment.pk)],
    }


def job_load(job_id: int) -> dict[str, Any] | None:
    """One job's sweep with each point's raw per-request series (the completed requests' TTFT, TPOT, ITL, e2e).

    Args:
        job_id: The job.

    Returns:
        :class:`results.load_schemas.JobLoadCell` as a dict, or None when there is no such job.
    """
    job = (
        Job.objects.filter(pk=job_id)
        .select_related("agent", "result", "experiment")
        .only(*_JOB_FIELDS, "experiment__id", "experiment__load", "experiment__owner_id")
        .first()
    )
    if job is None:
        return None
    spec = job.experiment.load_spec
    points = []
    for row in LoadPoint.objects.filter(job_id=job.pk).order_by("index"):
        points.append({**row.figures, "raw": point_series(load_point_run(row))})
    return load_cell(job, points, spec.mode if spec is not None else None)
