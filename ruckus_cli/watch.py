"""Following an experiment until it ends: live progress bars per job, or a silent wait for scripts.

An experiment ends when its jobs do; the server then still scores the last results (ROUGE, statistics) for a
moment. Both waits also wait for that (bounded), so that ``ruckus results show`` right after has every figure.
"""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn

from common.statuses import EXPERIMENT_TERMINAL_STATUSES, JobStatus
from ruckus_cli.client import Api, CliError
from ruckus_cli.output import console

#: Longest wait, in seconds, for the server to score an ended experiment's results (a server without a running
#: scoring worker never does: the results then say "scoring").
SCORING_WAIT_S = 300.0


def wait_for_scoring(api: Api, exp_id: int, *, interval: float = 1.0, timeout_s: float | None = None,
                     quiet: bool = False) -> int:
    """Wait until the server has scored every result of an experiment (ROUGE, statistics), at most ``timeout_s``.

    Args:
        api: Client.
        exp_id: Experiment id.
        interval: Seconds between polls.
        timeout_s: Longest wait (default :data:`SCORING_WAIT_S`).
        quiet: Print nothing (scripts).

    Returns:
        How many jobs are still being scored (0 once all are scored; also 0 from a server that does not say).
    """
    deadline = time.monotonic() + (SCORING_WAIT_S if timeout_s is None else timeout_s)
    said = False
    while True:
        try:
            waiting = int(api.get(f"/api/v1/experiments/{exp_id}/results/").get("scoring") or 0)
        except CliError:
            return 0  # the results cannot be read (an older server...): nothing to wait for
        if not waiting:
            return 0
        if time.monotonic() >= deadline:
            if not quiet:
                console.print(f"{waiting} job(s) still being scored: their ROUGE scores and statistics appear in "
                              f"`ruckus results show {exp_id}` once the server has scored them")
            return waiting
        if not quiet and not said:
            console.print(f"Scoring the results of {waiting} job(s) (ROUGE, statistics)…")
            said = True
        time.sleep(interval)


def watch_experiment(api: Api, exp_id: int, interval: float = 1.0) -> str:
    """Show a progress bar per job until the experiment ends (and its results are scored).

    Args:
        api: Client.
        exp_id: Experiment id.
        interval: Seconds between polls.

    Returns:
        The experiment's final status.
    """
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[state]}"),
                  console=console, transient=False) as progress:
        bars: dict[int, Any] = {}
        while True:
            exp = api.get(f"/api/v1/experiments/{exp_id}/")
            for job in api.paginate("/api/v1/jobs/", {"experiment": exp_id}):
                p = job.get("progress") or {}
                runs = max(int(p.get("runs_total") or exp["runs_per_job"]), 1)
                samples = max(int(p.get("samples_total") or 1), 1)
                done = runs if job["status"] == JobStatus.COMPLETED else max(int(p.get("run_index") or 1) - 1, 0) + min(
                    int(p.get("samples_done") or 0) / samples, 1)
                label = f"job {job['id']} {job['model_name']}/{job['runtime_name']} on {job['agent_name']}"
                state = job["status"] + (f" run {p.get('run_index')}/{runs} ({p.get('stage')})" if p else "")
                if job["id"] not in bars:
                    bars[job["id"]] = progress.add_task(label, total=runs, state=state)
                progress.update(bars[job["id"]], completed=done, state=state)
            if exp["status"] in EXPERIMENT_TERMINAL_STATUSES:
                break
            time.sleep(interval)
    wait_for_scoring(api, exp_id, interval=interval)
    console.print(f"Experiment #{exp_id} finished: [bold]{exp['status']}[/bold]")
    return exp["status"]


def wait_for_experiment(api: Api, exp_id: int, interval: float = 1.0) -> str:
    """Wait without output until the experiment ends (and its results are scored).

    Args:
        api: Client.
        exp_id: Experiment id.
        interval: Seconds between polls.

    Returns:
        The experiment's final status.
    """
    while True:
        status = api.get(f"/api/v1/experiments/{exp_id}/")["status"]
        if status in EXPERIMENT_TERMINAL_STATUSES:
            wait_for_scoring(api, exp_id, interval=interval, quiet=True)
            return status
        time.sleep(interval)
