"""Following an experiment until it ends: live progress bars per job, or a silent wait for scripts."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn

from common.statuses import EXPERIMENT_TERMINAL_STATUSES, JobStatus
from ruckus_cli.client import Api
from ruckus_cli.output import console


def watch_experiment(api: Api, exp_id: int, interval: float = 1.0) -> str:
    """Show a progress bar per job until the experiment ends.

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
    console.print(f"Experiment #{exp_id} finished: [bold]{exp['status']}[/bold]")
    return exp["status"]


def wait_for_experiment(api: Api, exp_id: int, interval: float = 1.0) -> str:
    """Wait without output until the experiment ends.

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
            return status
        time.sleep(interval)
