"""``ruckus experiments``: create (from a file), plan, list, show, cancel and watch experiments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from common.statuses import ExperimentStatus
from ruckus_cli.client import EXIT_API_ERROR, EXIT_USAGE, CliError, connect
from ruckus_cli.files import ExperimentFile
from ruckus_cli.load_output import sweep_text, validate_load
from ruckus_cli.options import FileOpt, JsonOpt, ServerOpt, TokenOpt
from ruckus_cli.output import console, exits_on_error, print_json, print_table
from ruckus_cli.watch import watch_experiment

app = typer.Typer(help="Experiments: create, plan, list, show, cancel, watch.", no_args_is_help=True)


def _submit_file(path: Path, endpoint: str, server: str | None, token: str | None) -> Any:
    """POST an experiment file; map validation errors back to file lines."""
    doc = ExperimentFile(path)
    validate_load(doc)  # a load sweep's errors name the file's lines before anything is sent
    try:
        return connect(server, token).post(endpoint, doc.data)
    except CliError as exc:
        # Field errors name the file's fields; a {"detail": ...} answer is about the request, reported as is.
        if exc.code == EXIT_API_ERROR and isinstance(exc.details, dict) and "detail" not in exc.details:
            raise CliError("the experiment file is not valid:\n" + doc.explain(exc.details),
                           EXIT_USAGE, exc.details) from exc
        raise


@app.command("create")
@exits_on_error
def experiments_create(file: FileOpt, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
                       watch: Annotated[bool, typer.Option(help="Watch it run afterwards.")] = False) -> None:
    """Create an experiment from a file."""
    exp = _submit_file(file, "/api/v1/experiments/", server, token)
    if as_json:
        print_json(exp)
    else:
        jobs = exp["plan"].get("job_count", 0)
        console.print(f"Created experiment #{exp['id']} ({exp['status']}) with {jobs} job(s)")
        if exp.get("load"):
            console.print(f"Each job runs a {escape(sweep_text(exp['load']))}")
        for item in exp["plan"].get("unrunnable", []):
            console.print(f"[yellow]not run[/yellow] {item['model']} / {item['runtime']}: {item['reason']}")
        not_run = {(u["model"], u["runtime"]) for u in exp["plan"].get("unrunnable", [])}
        for item in exp["plan"].get("excluded", []):
            combo = f"{item['model']} / {item['runtime']}"
            if (item["model"], item["runtime"]) not in not_run:  # those are explained as "not run" above
                console.print(f"left out {item['agent_name']} for {combo}: {item['reason']}")
    if watch:
        watch_experiment(connect(server, token), exp["id"])


@app.command("plan")
@exits_on_error
def experiments_plan(
    file: FileOpt, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Dry run: which jobs a file would create, and why other combinations cannot run."""
    plan = _submit_file(file, "/api/v1/experiments/plan/", server, token)
    if as_json:
        print_json(plan)
        return
    print_table("Jobs that will run", ["model", "runtime", "agent", "hardware"],
                [[j["model"]["name"], j["runtime"]["name"], j["agent_name"], j["hardware_fingerprint"]]
                 for j in plan["jobs"]])
    if (plan.get("load") or {}).get("summary"):
        console.print(f"Load: {escape(plan['load']['summary'])}", highlight=False)
    if plan["unrunnable"]:
        print_table("Cannot run", ["model", "runtime", "reason"],
                    [[u["model"], u["runtime"], u["reason"]] for u in plan["unrunnable"]])
    if plan.get("excluded"):
        print_table("Agents left out", ["model", "runtime", "agent", "reason"],
                    [[e["model"], e["runtime"], e["agent_name"], e["reason"]] for e in plan["excluded"]])


@app.command("list")
@exits_on_error
def experiments_list(status: Annotated[str | None, typer.Option(help="Filter, e.g. running,pending")] = None,
                     server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List experiments."""
    items = connect(server, token).paginate("/api/v1/experiments/", {"status": status} if status else None)
    if as_json:
        print_json(items)
        return
    print_table("Experiments", ["id", "name", "status", "jobs", "runs/job", "created"],
                [[e["id"], e["name"], e["status"], json.dumps(e["job_counts"]), e["runs_per_job"], e["created_at"]]
                 for e in items])


@app.command("show")
@exits_on_error
def experiments_show(
    exp_id: int, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Show an experiment and its jobs."""
    api = connect(server, token)
    exp = api.get(f"/api/v1/experiments/{exp_id}/")
    jobs = api.paginate("/api/v1/jobs/", {"experiment": exp_id})
    if as_json:
        print_json({**exp, "jobs": jobs})
        return
    runs = f"load: {escape(sweep_text(exp['load']))}" if exp.get("load") else f"{exp['runs_per_job']} runs/job"
    console.print(f"#{exp['id']} {exp['name']}: [bold]{exp['status']}[/bold], task {exp['task']['name']}, {runs}")
    print_table("Jobs", ["id", "model", "runtime", "agent", "status", "attempt", "reason"],
                [[j["id"], j["model_name"], j["runtime_name"], j["agent_name"], j["status"], j["attempt"],
                  j["status_reason"]] for j in jobs])
    for item in exp["plan"].get("unrunnable", []):
        console.print(f"[yellow]not run[/yellow] {item['model']} / {item['runtime']}: {item['reason']}")


@app.command("cancel")
@exits_on_error
def experiments_cancel(exp_id: int, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Cancel every unfinished job of an experiment."""
    exp = connect(server, token).post(f"/api/v1/experiments/{exp_id}/cancel/")
    console.print(f"Experiment #{exp_id} is {exp['status']}")


@app.command("watch")
@exits_on_error
def experiments_watch(exp_id: int, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Live progress bars per job until the experiment ends (exit 1 unless it completed)."""
    status = watch_experiment(connect(server, token), exp_id)
    if status != ExperimentStatus.COMPLETED:
        raise typer.Exit(EXIT_API_ERROR)
