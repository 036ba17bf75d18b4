"""``ruckus health`` (is a server up and ready?) and ``ruckus server`` (run one for development)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Annotated

import typer

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


def serve(
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
