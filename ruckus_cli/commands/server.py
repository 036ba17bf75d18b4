"""``ruckus health`` (is a server up and ready?) and ``ruckus server`` (run one for development)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from common.processes import Child, Supervisor
from ruckus_cli.client import EXIT_API_ERROR, CliError, connect
from ruckus_cli.options import JsonOpt, ServerOpt, TokenOpt
from ruckus_cli.output import console, err, exits_on_error, print_json, print_table

#: Seconds ``ruckus server`` gives daphne and the scheduler to stop before killing them.
SERVER_STOP_GRACE_S = 15.0


@exits_on_error
def health(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Server, database, channel layer and agents at a glance (exit 1 when something is down)."""
    api = connect(server, token)
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
        print_json(report)
    else:
        print_table(f"RUCKUS at {api.config.server}", ["check", "state"], [[k, v] for k, v in report.items()])
    if ready.get("status") != "ok":
        raise typer.Exit(EXIT_API_ERROR)


def _say_killing(child: Child) -> None:
    """Tell the user that a process ignored SIGTERM for the whole grace period."""
    err.print(f"{child.name} did not stop within {SERVER_STOP_GRACE_S:.0f} s: killing it")


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
) -> None:
    """Run the API (daphne) and the scheduler for development (migrates first; Ctrl-C stops both)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "ruckus_server.settings")}
    env.setdefault("DEBUG", "1")
    # Bandit B603: this interpreter with fixed arguments, no shell.
    subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput"], env=env, check=True)  # nosec B603

    # Ctrl-C / SIGTERM end the wait; leaving the block stops both (a process still running after the grace
    # period is killed, and said so). The exit code stays 0 when one of them ends by itself: its own output,
    # on this terminal, says why.
    with Supervisor(stop_timeout=SERVER_STOP_GRACE_S, on_kill=_say_killing) as supervisor:
        supervisor.start("daphne", [sys.executable, "-m", "daphne", "-b", host, "-p", str(port),
                                    "ruckus_server.asgi:application"], env=env)
        supervisor.start("scheduler", [sys.executable, "-m", "django", "run_scheduler"], env=env)
        console.print(f"RUCKUS server on http://{host}:{port}/ with a scheduler; Ctrl-C stops both.")
        supervisor.wait()
