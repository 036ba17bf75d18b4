"""``python manage.py demo``: the one-command demo.

Migrates the embedded database, starts the API server (daphne), the scheduler and one local agent, registers
the agent, runs the Wikipedia summarization experiment with the packaged SmolLM2, shows progress, prints a
results table, then keeps everything running until Ctrl-C (which stops every process it started).
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken
from rich.console import Console
from rich.table import Table

from common.processes import Child, ChildExited, StopRequested, Supervisor
from common.statuses import EXPERIMENT_TERMINAL_STATUSES
from ruckus_server.spa import index_path

#: Metrics of the results table, in order.
TABLE_METRICS = [
    ("e2e_latency_s", "E2E latency (s)"),
    ("ttft_s", "TTFT (s)"),
    ("output_tokens_per_s", "Output tok/s"),
    ("rougeL", "ROUGE-L"),
]
DEMO_USER = "admin"
STARTUP_TIMEOUT_S = 120.0
EXPERIMENT_TIMEOUT_S = 900.0
#: Seconds the demo's processes get to exit after SIGTERM before they are killed.
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_http(supervisor: Supervisor, child: Child, url: str, timeout: float, console: Console) -> None:
    """Wait until ``url`` answers 200 while ``child`` runs; print the end of its log if it dies first."""
    try:
        supervisor.wait_ready(child, lambda: answers(url), timeout)
    except ChildExited:
        console.print(child.exit_report(), markup=False, highlight=False)
        raise CommandError(f"process for {url} exited with code {child.returncode}; see the log above") from None
    except TimeoutError:
        raise CommandError(f"{url} did not come up within {timeout:.0f} s") from None


class Command(BaseCommand):
    """Run the end-to-end demo on this machine."""

    help = "Start server, scheduler and a local agent; benchmark the packaged SmolLM2; keep serving."

    def add_arguments(self, parser: Any) -> None:
        """Command-line options."""
        parser.add_argument("--port", type=int, default=8000, help="API/UI port (default 8000)")
        parser.add_argument("--samples", type=int, default=4, help="articles per run (default 4)")
        parser.add_argument("--runs", type=int, default=3, help="runs per job (default 3)")
        parser.add_argument("--max-new-tokens", type=int, default=48, help="generation budget (default 48)")
        parser.add_argument("--exit", action="store_true", help="stop after printing the results")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the demo."""
        # Wide enough for the results table even when output is not a terminal.
        console = Console(width=max(Console().width, 132))
        import logging

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll would drown the progress
        # Ctrl-C and SIGTERM set the supervisor's flag, which every wait below checks; leaving the block stops
        # every process started here, each in its own process group (SIGTERM, then SIGKILL after 10 s).
        with Supervisor(stop_timeout=STOP_TIMEOUT_S, new_session=True) as supervisor:
            try:
                self._run(console, options, supervisor)
            except StopRequested:
                console.print("\n[bold]Stopping...[/bold]")

    def _run(self, console: Console, options: dict[str, Any], supervisor: Supervisor) -> None:
        """Start everything, run the experiment, print results, wait for Ctrl-C."""
        data_dir = Path(settings.RUCKUS_DATA_DIR)
        log_dir = data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        agent_dir = data_dir.parent / "agent"
        bin_dir = Path(sys.executable).parent

        console.rule("[bold]RUCKUS demo")
        console.print(f"Database: {settings.DATABASES['default']['NAME']}")
        call_command("migrate", verbosity=0, interactive=False)
        User = get_user_model()
        password = os.environ.get("RUCKUS_DEMO_PASSWORD") or secrets.token_urlsafe(9)
        user, _ = User.objects.get_or_create(username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True})
        user.set_password(password)
        user.save()
        token = AuthToken.objects.create(user=user)[1]

        port = options["port"]
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DEBUG": os.environ.get("DEBUG", "1"), "RUCKUS_PUBLIC_URL": base,
               "LOG_FORMAT": "console"}
        console.print("Preparing the packaged SmolLM2 (converted once into the agent's model cache)...")
        supervisor.run("prepare-models",
                       [str(bin_dir / "ruckus-agent"), "prepare-models", "--data-dir", str(agent_dir)], env=env)
        server = supervisor.start("server", [str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                                             "ruckus_server.asgi:application"], env=env,
                                  log_path=log_dir / "server.log")
        supervisor.start("scheduler", [sys.executable, "manage.py", "run_scheduler"], env=env,
                         log_path=log_dir / "scheduler.log")
        agent_port = free_port()
        agent_token = secrets.token_urlsafe(24)
        agent = supervisor.start(
            "agent",
            [str(bin_dir / "ruckus-agent"), "serve", "--host", "127.0.0.1", "--port", str(agent_port),
             "--data-dir", str(agent_dir), "--token", agent_token, "--name", "local-agent"],
            env=env, log_path=log_dir / "agent.log",
        )
        wait_http(supervisor, server, f"{base}/healthz", STARTUP_TIMEOUT_S, console)
        wait_http(supervisor, agent, f"http://127.0.0.1:{agent_port}/api/v1/health", STARTUP_TIMEOUT_S, console)
        console.print(f"Server {base}, scheduler and agent on port {agent_port} are up (logs in {log_dir}).")

        api = httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Token {token}"}, timeout=60)
        reg = api.post("/agents/", json={"url": f"http://127.0.0.1:{agent_port}", "token": agent_token})
        if reg.status_code != 201:
            raise CommandError(f"registering the agent failed: {reg.status_code} {reg.text}")
        summary = reg.json()["summary"]
        console.print(
            f"Registered agent [bold]{reg.json()['name']}[/bold]: {summary.get('cpu')}, {summary.get('cores')} "
            f"threads, {summary.get('memory_gib')} GiB, runtimes {summary.get('runtimes')}"
        )

        exp = api.post("/experiments/", json={
            "name": "Demo: SmolLM2-135M summarizing Wikipedia",
            "description": "Packaged model, packaged articles, one local agent.",
            "task": {"name": "wikipedia_summarization",
                     "params": {"num_samples": options["samples"], "seed": 42,
                                "max_new_tokens": options["max_new_tokens"]}},
            "models": [{"name": "smollm2-135m-instruct"}],
            "runtimes": [{"name": "transformers", "params": {"device": "auto"}}],
            "agents": {"all": True},
            "runs_per_job": options["runs"],
        })
        if exp.status_code != 201:
            raise CommandError(f"creating the experiment failed: {exp.status_code} {exp.text}")
        exp_id = exp.json()["id"]
        console.print(f"Experiment #{exp_id} created with {exp.json()['plan']['job_count']} job(s).")
        started = time.monotonic()
        last = ""
        with console.status("Running...") as status:
            while True:
                body = api.get(f"/experiments/{exp_id}/").json()
                jobs = api.get("/jobs/", params={"experiment": exp_id}).json()["results"]
                parts = []
                for job in jobs:
                    p = job.get("progress") or {}
                    detail = ""
                    if p:
                        detail = (
                            f" run {p.get('run_index', 0)}/{p.get('runs_total', '?')} sample "
                            f"{p.get('samples_done', 0)}/{p.get('samples_total', '?')} ({p.get('stage')})"
                        )
                    parts.append(f"job {job['id']}: {job['status']}{detail}")
                line = f"[{time.monotonic() - started:5.0f} s] experiment {body['status']}; " + "; ".join(parts)
                if line.split("] ", 1)[1] != last:
                    console.print(line)
                    last = line.split("] ", 1)[1]
                status.update(line)
                if body["status"] in EXPERIMENT_TERMINAL_STATUSES:
                    break
                if time.monotonic() - started > EXPERIMENT_TIMEOUT_S:
                    raise CommandError("the experiment did not finish in time; see the logs")
                supervisor.sleep(1.0)
        console.print(f"Experiment finished as [bold]{body['status']}[/bold] in {time.monotonic() - started:.0f} s.")
        self._print_results(console, api, exp_id)
        console.rule()
        ui = f"UI: {base}/  " if index_path().is_file() else "UI: not built (make ui)  "
        console.print(f"{ui}API: {base}/api/v1/  docs: {base}/api/docs/  admin: {base}/admin/")
        console.print(f"Login: [bold]{DEMO_USER}[/bold] / [bold]{password}[/bold]   API token: {token}")
        if options["exit"]:
            return
        console.print("Everything keeps running; press Ctrl-C to stop.")
        exited = supervisor.wait(interval=1.0)
        if exited is None:
            raise StopRequested
        console.print(exited.exit_report(), markup=False, highlight=False)
        raise CommandError("a demo process exited unexpectedly; see the logs in " + str(log_dir))

    def _print_results(self, console: Console, api: httpx.Client, exp_id: int) -> None:
        """Print mean ± std of the key metrics per job, with the cold run apart."""
        results = api.get(f"/experiments/{exp_id}/results/").json()
        table = Table(title=f"Experiment #{exp_id}: warm runs, mean ± std (n runs); cold run apart")
        table.add_column("job")
        for _, label in TABLE_METRICS:
            table.add_column(label, justify="right")
        table.add_column("cold: load / e2e (s)", justify="right")
        for job in results["jobs"]:
            stats = job["statistics"]
            cells = []
            for name, _ in TABLE_METRICS:
                s = stats.get(name)
                cells.append(f"{s['mean']:.3f} ± {s['std']:.3f} ({s['n']})" if s else "—")
            cold = job.get("cold_start") or {}
            load = cold.get("model_load_s")
            e2e = cold.get("e2e_latency_s")
            cold_text = f"{load:.2f} / {e2e:.2f}" if load is not None and e2e is not None else "—"
            table.add_row(f"#{job['job']}", *cells, cold_text)
        for job in results["jobs"]:
            console.print(f"job #{job['job']}: {job['model']} / {job['runtime']} on {job['agent_name']} "
                          f"({job['status']}; {job['hardware_fingerprint']})")
        console.print(table)
        for item in results.get("unrunnable", []):
            console.print(f"[yellow]Not run[/yellow] {item['model']} / {item['runtime']}: {item['reason']}")
