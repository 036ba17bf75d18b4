"""``ruckus jobs``: list, show, cancel and retry jobs."""

from __future__ import annotations

from typing import Annotated

import typer

from ruckus_cli.client import connect
from ruckus_cli.options import JsonOpt, ServerOpt, TokenOpt
from ruckus_cli.output import console, exits_on_error, print_json, print_table

app = typer.Typer(help="Jobs: list, show, cancel, retry.", no_args_is_help=True)


@app.command("list")
@exits_on_error
def jobs_list(experiment: Annotated[int | None, typer.Option(help="Experiment id.")] = None,
              status: Annotated[str | None, typer.Option(help="Filter, e.g. failed,timed_out")] = None,
              server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List jobs."""
    params = {k: v for k, v in {"experiment": experiment, "status": status}.items() if v is not None}
    jobs = connect(server, token).paginate("/api/v1/jobs/", params)
    if as_json:
        print_json(jobs)
        return
    print_table("Jobs", ["id", "experiment", "model", "runtime", "agent", "status", "attempt", "updated"],
                [[j["id"], j["experiment"], j["model_name"], j["runtime_name"], j["agent_name"], j["status"],
                  j["attempt"], j["updated_at"]] for j in jobs])


@app.command("show")
@exits_on_error
def jobs_show(job_id: int, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Show a job with its attempts and transition log."""
    job = connect(server, token).get(f"/api/v1/jobs/{job_id}/")
    if as_json:
        print_json(job)
        return
    console.print(f"job #{job['id']} {job['model_name']}/{job['runtime_name']} on {job['agent_name']}: "
                  f"[bold]{job['status']}[/bold] (attempt {job['attempt']}/{job['max_attempts']})")
    print_table("Transitions", ["at", "entity", "from", "to", "reason"],
                [[t["created_at"], t["entity"], t["from_state"], t["to_state"], t["reason"]]
                 for t in job["transitions"]])


@app.command("cancel")
@exits_on_error
def jobs_cancel(job_id: int, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Cancel a job."""
    job = connect(server, token).post(f"/api/v1/jobs/{job_id}/cancel/")
    console.print(f"job #{job_id} is {job['status']}")


@app.command("retry")
@exits_on_error
def jobs_retry(job_id: int, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Retry a failed, cancelled or timed-out job."""
    job = connect(server, token).post(f"/api/v1/jobs/{job_id}/retry/")
    console.print(f"job #{job_id} is {job['status']}")
