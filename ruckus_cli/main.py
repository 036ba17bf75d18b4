"""ruckus: manage agents, experiments, jobs and results on a RUCKUS server.

Exit codes: 0 success, 1 the server refused or failed the request, 2 bad usage or a bad file, 3 the server cannot
be reached, 4 not logged in or not allowed. Server URL and token: --server/--token, RUCKUS_SERVER/RUCKUS_TOKEN,
or the file written by `ruckus login`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from ruckus_cli import config as cfg
from ruckus_cli.client import EXIT_API_ERROR, EXIT_USAGE, Api, CliError, flatten_errors
from ruckus_cli.files import ExperimentFile

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
agents_app = typer.Typer(help="Agents: list, register, show, remove.", no_args_is_help=True)
experiments_app = typer.Typer(help="Experiments: create, plan, list, show, cancel, watch.", no_args_is_help=True)
jobs_app = typer.Typer(help="Jobs: list, show, cancel, retry.", no_args_is_help=True)
results_app = typer.Typer(help="Results: show, export.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")
app.add_typer(experiments_app, name="experiments")
app.add_typer(jobs_app, name="jobs")
app.add_typer(results_app, name="results")

console = Console()
err = Console(stderr=True)

ServerOpt = Annotated[str | None, typer.Option("--server", help="Server URL (env RUCKUS_SERVER).")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="API token (env RUCKUS_TOKEN).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
#: Seconds ``ruckus server`` gives daphne and the scheduler to stop before killing them.
SERVER_STOP_GRACE_S = 15.0
#: First part of the flattened hardware benchmark figures.
BENCHMARK_KINDS = ("bandwidth_gbps", "tflops", "gflops")
TERMINAL_EXPERIMENT = {"completed", "partially_failed", "failed", "cancelled"}
TERMINAL_JOB = {"completed", "failed", "cancelled", "timed_out"}


def _api(server: str | None, token: str | None) -> Api:
    """An API client from flags, environment or the config file."""
    return Api(cfg.load(server, token))


def _print_json(data: Any) -> None:
    """Print JSON on stdout (machine-readable: no colors, no wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _fail(exc: CliError) -> None:
    """Report an error and exit with its code."""
    err.print(f"[red]error:[/red] {exc}", highlight=False)
    raise typer.Exit(exc.code)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a rich table."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def run(fn: Any) -> Any:
    """Decorator: turn :class:`CliError` into a message and exit code."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            _fail(exc)

    return wrapper


# --------------------------------------------------------------------------------------------------
# login, health, server
# --------------------------------------------------------------------------------------------------


@app.command()
@run
def login(
    username: Annotated[str, typer.Option(prompt=True, help="User name.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="Password.")],
    server: ServerOpt = None,
) -> None:
    """Get an API token and store it (with the server URL) in the config file."""
    conf = cfg.load(server, None)
    api = Api(cfg.Config(conf.server, None))
    answer = api.post("/api/v1/auth/token/", {"username": username, "password": password}, auth=False)
    path = cfg.save(conf.server, answer["token"])
    console.print(f"Logged in to {conf.server} as {username}; token saved in {path}")


@app.command()
@run
def health(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Server, database, channel layer and agents at a glance (exit 1 when something is down)."""
    api = _api(server, token)
    live = api.request("GET", "/healthz", auth=False).json()
    try:
        ready = api.request("GET", "/readyz", auth=False).json()
    except CliError as exc:
        ready = exc.details if isinstance(exc.details, dict) else {"status": "unavailable", "error": str(exc)}
    agents = api.paginate("/api/v1/agents/") if api.config.token else []
    counts: dict[str, int] = {}
    for agent in agents:
        counts[agent["status"]] = counts.get(agent["status"], 0) + 1
    report = {"server": live.get("status"), **{k: v for k, v in ready.items() if k != "status"},
              "ready": ready.get("status"), "agents": counts}
    if as_json:
        _print_json(report)
    else:
        _table(f"RUCKUS at {api.config.server}", ["check", "state"], [[k, v] for k, v in report.items()])
    if ready.get("status") != "ok":
        raise typer.Exit(EXIT_API_ERROR)


@app.command("server")
def server_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
) -> None:
    """Run the API (daphne) and the scheduler for development (migrates first; Ctrl-C stops both)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "ruckus_server.settings")}
    env.setdefault("DEBUG", "1")
    subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput"], env=env, check=True)
    # Ctrl-C / SIGTERM only set a flag: a KeyboardInterrupt raised in the middle of Popen's bookkeeping can
    # leave it unable to wait for its child, and then this command would never return.
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "daphne", "-b", host, "-p", str(port),
                          "ruckus_server.asgi:application"], env=env),
        subprocess.Popen([sys.executable, "-m", "django", "run_scheduler"], env=env),
    ]
    console.print(f"RUCKUS server on http://{host}:{port}/ with a scheduler; Ctrl-C stops both.")
    try:
        while not stop.wait(0.5) and all(p.poll() is None for p in procs):
            pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        # Bounded shutdown: a process still running after the grace period is killed (and said so).
        deadline = time.monotonic() + SERVER_STOP_GRACE_S
        for name, p in zip(("daphne", "scheduler"), procs, strict=True):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                err.print(f"{name} did not stop within {SERVER_STOP_GRACE_S:.0f} s: killing it")
                p.kill()
                p.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------------------------------
# agents
# --------------------------------------------------------------------------------------------------


def _agent_row(a: dict[str, Any]) -> list[Any]:
    s = a.get("summary") or {}
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in s.get("gpus", [])) or "—"
    return [a["id"], a["name"], a["status"], a["activity"], a["url"], s.get("cpu"), gpus,
            ",".join(s.get("runtimes", [])), a.get("last_seen")]


@agents_app.command("list")
@run
def agents_list(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List agents."""
    agents = _api(server, token).paginate("/api/v1/agents/")
    if as_json:
        _print_json(agents)
        return
    _table("Agents", ["id", "name", "status", "activity", "url", "cpu", "gpus", "runtimes", "last seen"],
           [_agent_row(a) for a in agents])


@agents_app.command("register")
@run
def agents_register(
    url: Annotated[str, typer.Argument(help="Agent base URL, e.g. http://10.0.0.5:8100")],
    agent_token: Annotated[str, typer.Option("--agent-token", help="The agent's --token.")],
    name: Annotated[str | None, typer.Option(help="Name (default: what the agent reports).")] = None,
    label: Annotated[list[str] | None, typer.Option(help="Label (repeatable).")] = None,
    cost_per_hour: Annotated[float | None, typer.Option(help="Dollars per hour.")] = None,
    server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Register an agent by URL (the server calls the agent and stores what it reports)."""
    body: dict[str, Any] = {"url": url, "token": agent_token}
    if name:
        body["name"] = name
    if label:
        body["labels"] = label
    if cost_per_hour is not None:
        body["cost_per_hour"] = cost_per_hour
    agent = _api(server, token).post("/api/v1/agents/", body)
    if as_json:
        _print_json(agent)
    else:
        console.print(f"Registered {agent['name']} ({agent['id']}): {agent['hardware_fingerprint']}")


@agents_app.command("show")
@run
def agents_show(agent_id: str, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Show one agent with its capabilities."""
    agent = _api(server, token).get(f"/api/v1/agents/{agent_id}/")
    if as_json:
        _print_json(agent)
        return
    caps = agent.get("capabilities") or {}
    rows = [["name", agent["name"]], ["status", f"{agent['status']} ({agent['status_reason']})"],
            ["url", agent["url"]], ["fingerprint", agent["hardware_fingerprint"]],
            ["cpu", (caps.get("cpu") or {}).get("model")],
            ["memory GiB", round(((caps.get("memory") or {}).get("total_bytes") or 0) / 2**30, 1)]]
    for gpu in caps.get("gpus", []):
        rows.append([f"gpu {gpu['index']}", f"{gpu['name']}, {round((gpu.get('memory_total_bytes') or 0) / 2**30, 1)}"
                     f" GiB, CC {gpu.get('compute_capability')}, tensor cores gen {gpu.get('tensor_core_generation')}"])
    for rt in caps.get("runtimes", []):
        rows.append([f"runtime {rt['name']}", "available" if rt["available"] else f"unavailable: {rt.get('reason')}"])
    for model in caps.get("models", []):
        rows.append(["model", f"{model['name']} ({model.get('format')}, {model.get('source')})"])
    peaks = (agent.get("summary") or {}).get("peaks")
    if peaks is None:
        rows.append(["measured peaks", "none yet: `ruckus agents benchmark ID`"])
    else:
        when = f"measured {peaks.get('measured_at')}" + (" (quick)" if peaks.get("quick") else "")
        rows.append(["measured peaks", when])
        for name, fig in peaks["figures"].items():
            rows.append([f"  {name}", f"{fig['value']:.4g} {fig['unit']}"])
        for name, reason in peaks["unsupported"].items():
            rows.append([f"  {name}", f"not measured: {reason}"])
    _table(f"Agent {agent['id']}", ["field", "value"], rows)


@agents_app.command("benchmark")
@run
def agents_benchmark(
    agent_id: str,
    quick: Annotated[bool, typer.Option("--quick/--full", help="Short benchmark (seconds) or the full one.")] = True,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps")] = "auto",
    runs: Annotated[int, typer.Option(help="Runs (the first is the cold run, reported apart).")] = 3,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Watch it to the end.")] = True,
    server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Measure an agent's peaks (memory bandwidth, matmul throughput per precision) with a hardware benchmark job."""
    api = _api(server, token)
    agent = api.get(f"/api/v1/agents/{agent_id}/")
    exp = api.post("/api/v1/experiments/", {
        "name": f"hardware benchmark: {agent['name']}",
        "task": {"name": "hardware_benchmark", "params": {"quick": quick, "device": device}},
        "runtimes": [{"name": "hardware"}],
        "agents": {"ids": [agent["id"]]},
        "runs_per_job": runs,
    })
    if not exp.get("job_counts"):
        reasons = "; ".join(e["reason"] for e in (exp.get("plan") or {}).get("excluded", [])) or "no job was planned"
        raise CliError(f"agent {agent['name']} cannot run the benchmark: {reasons}", EXIT_API_ERROR, exp)
    if not wait:
        if as_json:
            _print_json(exp)
        else:
            console.print(f"Experiment #{exp['id']} measures {agent['name']}")
        return
    status = _wait_quietly(api, exp["id"]) if as_json else _watch(api, exp["id"])
    if status == "completed":
        # Ask for the agent's capabilities now rather than at its next heartbeat: they carry the new peaks.
        api.post(f"/api/v1/agents/{agent['id']}/refresh/", {})
    peaks = api.get(f"/api/v1/agents/{agent['id']}/")["summary"].get("peaks")
    if as_json:
        _print_json({"experiment": exp["id"], "status": status, "peaks": peaks})
    else:
        console.print(f"Experiment #{exp['id']} {status}")
        if peaks:
            _table(f"Measured peaks of {agent['name']}", ["figure", "value"],
                   [[name, f"{fig['value']:.4g} {fig['unit']}"] for name, fig in peaks["figures"].items()])
    if status != "completed":
        raise typer.Exit(EXIT_API_ERROR)


@agents_app.command("remove")
@run
def agents_remove(
    agent_id: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Remove an agent (refused while it runs jobs)."""
    if not yes:
        typer.confirm(f"Remove agent {agent_id}?", abort=True)
    _api(server, token).delete(f"/api/v1/agents/{agent_id}/")
    console.print(f"Removed agent {agent_id}")


# --------------------------------------------------------------------------------------------------
# experiments
# --------------------------------------------------------------------------------------------------


def _submit_file(path: Path, endpoint: str, server: str | None, token: str | None) -> Any:
    """POST an experiment file; map validation errors back to file lines."""
    doc = ExperimentFile(path)
    try:
        return _api(server, token).post(endpoint, doc.data)
    except CliError as exc:
        if exc.code == EXIT_API_ERROR and isinstance(exc.details, dict):
            raise CliError("the experiment file is not valid:\n" + doc.explain(flatten_errors(exc.details)),
                           EXIT_USAGE, exc.details) from exc
        raise


FileOpt = Annotated[Path, typer.Option("-f", "--file", exists=True, dir_okay=False, help="Experiment YAML/JSON.")]


@experiments_app.command("create")
@run
def experiments_create(file: FileOpt, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
                       watch: Annotated[bool, typer.Option(help="Watch it run afterwards.")] = False) -> None:
    """Create an experiment from a file."""
    exp = _submit_file(file, "/api/v1/experiments/", server, token)
    if as_json:
        _print_json(exp)
    else:
        jobs = exp["plan"].get("job_count", 0)
        console.print(f"Created experiment #{exp['id']} ({exp['status']}) with {jobs} job(s)")
        for item in exp["plan"].get("unrunnable", []):
            console.print(f"[yellow]not run[/yellow] {item['model']} / {item['runtime']}: {item['reason']}")
        not_run = {(u["model"], u["runtime"]) for u in exp["plan"].get("unrunnable", [])}
        for item in exp["plan"].get("excluded", []):
            combo = f"{item['model']} / {item['runtime']}"
            if (item["model"], item["runtime"]) not in not_run:  # those are explained as "not run" above
                console.print(f"left out {item['agent_name']} for {combo}: {item['reason']}")
    if watch:
        _watch(_api(server, token), exp["id"])


@experiments_app.command("plan")
@run
def experiments_plan(
    file: FileOpt, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Dry run: which jobs a file would create, and why other combinations cannot run."""
    plan = _submit_file(file, "/api/v1/experiments/plan/", server, token)
    if as_json:
        _print_json(plan)
        return
    _table("Jobs that will run", ["model", "runtime", "agent", "hardware"],
           [[j["model"]["name"], j["runtime"]["name"], j["agent_name"], j["hardware_fingerprint"]]
            for j in plan["jobs"]])
    if plan["unrunnable"]:
        _table("Cannot run", ["model", "runtime", "reason"],
               [[u["model"], u["runtime"], u["reason"]] for u in plan["unrunnable"]])
    if plan.get("excluded"):
        _table("Agents left out", ["model", "runtime", "agent", "reason"],
               [[e["model"], e["runtime"], e["agent_name"], e["reason"]] for e in plan["excluded"]])


@experiments_app.command("list")
@run
def experiments_list(status: Annotated[str | None, typer.Option(help="Filter, e.g. running,pending")] = None,
                     server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List experiments."""
    items = _api(server, token).paginate("/api/v1/experiments/", {"status": status} if status else None)
    if as_json:
        _print_json(items)
        return
    _table("Experiments", ["id", "name", "status", "jobs", "runs/job", "created"],
           [[e["id"], e["name"], e["status"], json.dumps(e["job_counts"]), e["runs_per_job"], e["created_at"]]
            for e in items])


@experiments_app.command("show")
@run
def experiments_show(
    exp_id: int, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Show an experiment and its jobs."""
    api = _api(server, token)
    exp = api.get(f"/api/v1/experiments/{exp_id}/")
    jobs = api.paginate("/api/v1/jobs/", {"experiment": exp_id})
    if as_json:
        _print_json({**exp, "jobs": jobs})
        return
    console.print(f"#{exp['id']} {exp['name']}: [bold]{exp['status']}[/bold], task {exp['task']['name']}, "
                  f"{exp['runs_per_job']} runs/job")
    _table("Jobs", ["id", "model", "runtime", "agent", "status", "attempt", "reason"],
           [[j["id"], j["model_name"], j["runtime_name"], j["agent_name"], j["status"], j["attempt"],
             j["status_reason"]] for j in jobs])
    for item in exp["plan"].get("unrunnable", []):
        console.print(f"[yellow]not run[/yellow] {item['model']} / {item['runtime']}: {item['reason']}")


@experiments_app.command("cancel")
@run
def experiments_cancel(exp_id: int, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Cancel every unfinished job of an experiment."""
    exp = _api(server, token).post(f"/api/v1/experiments/{exp_id}/cancel/")
    console.print(f"Experiment #{exp_id} is {exp['status']}")


def _watch(api: Api, exp_id: int, interval: float = 1.0) -> str:
    """Show a progress bar per job until the experiment ends; return its final status."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[state]}"),
                  console=console, transient=False) as progress:
        bars: dict[int, Any] = {}
        while True:
            exp = api.get(f"/api/v1/experiments/{exp_id}/")
            for job in api.paginate("/api/v1/jobs/", {"experiment": exp_id}):
                p = job.get("progress") or {}
                runs = max(int(p.get("runs_total") or exp["runs_per_job"]), 1)
                samples = max(int(p.get("samples_total") or 1), 1)
                done = runs if job["status"] == "completed" else max(int(p.get("run_index") or 1) - 1, 0) + min(
                    int(p.get("samples_done") or 0) / samples, 1)
                label = f"job {job['id']} {job['model_name']}/{job['runtime_name']} on {job['agent_name']}"
                state = job["status"] + (f" run {p.get('run_index')}/{runs} ({p.get('stage')})" if p else "")
                if job["id"] not in bars:
                    bars[job["id"]] = progress.add_task(label, total=runs, state=state)
                progress.update(bars[job["id"]], completed=done, state=state)
            if exp["status"] in TERMINAL_EXPERIMENT:
                break
            time.sleep(interval)
    console.print(f"Experiment #{exp_id} finished: [bold]{exp['status']}[/bold]")
    return exp["status"]


def _wait_quietly(api: Api, exp_id: int, interval: float = 1.0) -> str:
    """Wait without output until the experiment ends; return its final status."""
    while True:
        status = api.get(f"/api/v1/experiments/{exp_id}/")["status"]
        if status in TERMINAL_EXPERIMENT:
            return status
        time.sleep(interval)


@experiments_app.command("watch")
@run
def experiments_watch(exp_id: int, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Live progress bars per job until the experiment ends (exit 1 unless it completed)."""
    status = _watch(_api(server, token), exp_id)
    if status != "completed":
        raise typer.Exit(EXIT_API_ERROR)


# --------------------------------------------------------------------------------------------------
# jobs
# --------------------------------------------------------------------------------------------------


@jobs_app.command("list")
@run
def jobs_list(experiment: Annotated[int | None, typer.Option(help="Experiment id.")] = None,
              status: Annotated[str | None, typer.Option(help="Filter, e.g. failed,timed_out")] = None,
              server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List jobs."""
    params = {k: v for k, v in {"experiment": experiment, "status": status}.items() if v is not None}
    jobs = _api(server, token).paginate("/api/v1/jobs/", params)
    if as_json:
        _print_json(jobs)
        return
    _table("Jobs", ["id", "experiment", "model", "runtime", "agent", "status", "attempt", "updated"],
           [[j["id"], j["experiment"], j["model_name"], j["runtime_name"], j["agent_name"], j["status"], j["attempt"],
             j["updated_at"]] for j in jobs])


@jobs_app.command("show")
@run
def jobs_show(job_id: int, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Show a job with its attempts and transition log."""
    job = _api(server, token).get(f"/api/v1/jobs/{job_id}/")
    if as_json:
        _print_json(job)
        return
    console.print(f"job #{job['id']} {job['model_name']}/{job['runtime_name']} on {job['agent_name']}: "
                  f"[bold]{job['status']}[/bold] (attempt {job['attempt']}/{job['max_attempts']})")
    _table("Transitions", ["at", "entity", "from", "to", "reason"],
           [[t["created_at"], t["entity"], t["from_state"], t["to_state"], t["reason"]] for t in job["transitions"]])


@jobs_app.command("cancel")
@run
def jobs_cancel(job_id: int, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Cancel a job."""
    job = _api(server, token).post(f"/api/v1/jobs/{job_id}/cancel/")
    console.print(f"job #{job_id} is {job['status']}")


@jobs_app.command("retry")
@run
def jobs_retry(job_id: int, server: ServerOpt = None, token: TokenOpt = None) -> None:
    """Retry a failed, cancelled or timed-out job."""
    job = _api(server, token).post(f"/api/v1/jobs/{job_id}/retry/")
    console.print(f"job #{job_id} is {job['status']}")


# --------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------


@results_app.command("show")
@run
def results_show(
    exp_id: int,
    metric: Annotated[list[str] | None, typer.Option(help="Metric(s) to show (repeatable).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Per-job statistics (warm runs: mean ± std, n) with the cold run apart."""
    if fmt not in ("table", "json", "csv"):
        raise CliError(f"--format must be table, json or csv, not {fmt!r}", EXIT_USAGE)
    data = _api(server, token).get(f"/api/v1/experiments/{exp_id}/results/")
    present = [m["name"] for m in data.get("metrics", [])]
    default = [m for m in ("e2e_latency_s", "ttft_s", "output_tokens_per_s", "rougeL") if m in present]
    # A hardware benchmark has no latency: show its figures (bandwidth_gbps.*, tflops.*, gflops.*).
    metrics = metric or default or [m for m in present if m.split(".", 1)[0] in BENCHMARK_KINDS] or present[:6]
    units = {m["name"]: m["unit"] for m in data.get("metrics", [])}
    if fmt == "json":
        _print_json(data)
        return
    rows = []
    for job in data["jobs"]:
        row: dict[str, Any] = {"job": job["job"], "model": job["model"], "runtime": job["runtime"],
                               "agent": job["agent_name"], "status": job["status"]}
        for m in metrics:
            s = job["statistics"].get(m)
            row[f"{m}_mean"], row[f"{m}_std"], row[f"{m}_n"] = (s["mean"], s["std"], s["n"]) if s else (None,) * 3
        row["cold_model_load_s"] = (job.get("cold_start") or {}).get("model_load_s")
        eff = job.get("efficiency") or {}
        row["peak_bandwidth_fraction"] = eff.get("bandwidth_fraction")
        rows.append(row)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["job"])
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(buf.getvalue())
        return
    table_rows = []
    for r in rows:
        cells = [f"{r[f'{m}_mean']:.4g} ± {r[f'{m}_std']:.2g} ({r[f'{m}_n']})" if r[f"{m}_mean"] is not None else "—"
                 for m in metrics]
        load, frac = r["cold_model_load_s"], r["peak_bandwidth_fraction"]
        table_rows.append([r["job"], f"{r['model']} / {r['runtime']} / {r['agent']}", r["status"], *cells,
                           f"{load:.2f}" if load is not None else "—",
                           f"{frac:.1%}" if frac is not None else "—"])
    headers = [f"{m} ({units[m]})" if units.get(m) else m for m in metrics]
    _table(f"Experiment #{exp_id} (warm runs; cold run apart)",
           ["job", "model / runtime / agent", "status", *headers, "cold load (s)", "of peak BW"], table_rows)
    for item in data.get("unrunnable", []):
        console.print(f"[yellow]not run[/yellow] {item['model']} / {item['runtime']}: {item['reason']}")


@results_app.command("export")
@run
def results_export(
    exp_id: int,
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv or json (default: from the file name)")] = None,
    server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Export every raw run of an experiment (streamed to the file)."""
    fmt = fmt or ("csv" if output.suffix.lower() == ".csv" else "json")
    if fmt not in ("csv", "json"):
        raise CliError(f"--format must be csv or json, not {fmt!r}", EXIT_USAGE)
    api = _api(server, token)
    tmp = output.with_name(output.name + ".part")
    with api._http.stream("GET", f"/api/v1/experiments/{exp_id}/export/", params={"format": fmt}) as response:
        if response.status_code >= 400:
            response.read()
            raise CliError(f"export failed ({response.status_code}): {response.text[:300]}", EXIT_API_ERROR)
        with tmp.open("wb") as fh:
            for chunk in response.iter_bytes():
                fh.write(chunk)
    tmp.replace(output)  # never leave a half-written export under the requested name
    console.print(f"Wrote {output} ({output.stat().st_size} bytes)")


def main() -> None:
    """Console-script entry point."""
    app()
