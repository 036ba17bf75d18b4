"""Multi-process fixtures: real daphne, scheduler and agent processes on loopback over the test Postgres.

The test database is the one pytest-django created; tests using these fixtures must commit
(``django_db(transaction=True)``) so that the child processes see the data.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection

from tests.helpers import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: Converted SmolLM2 shared across test sessions (``data/`` is git-ignored).
MODEL_CACHE = REPO / "data" / "test-cache"
HEARTBEAT_S = 0.5
LOST_AFTER_S = 4.0


def redis_url() -> str | None:
    """URL of the local Redis when it answers (events cross processes only through Redis)."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return "redis://127.0.0.1:6379/0"
    except OSError:
        return None


def _database_env() -> dict[str, str]:
    """Environment pointing a child process at the test database (socket directories via PGHOST)."""
    s = connection.settings_dict
    host = s.get("HOST") or ""
    env = {"DATABASE_URL": f"postgres://{s['USER']}:{s.get('PASSWORD') or ''}@/{s['NAME']}"}
    if host.startswith("/"):
        env["PGHOST"] = host
    else:
        port = s.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{s['USER']}:{s.get('PASSWORD') or ''}@{host}:{port}/{s['NAME']}"
    return env


class Stack:
    """Processes of one test: a server, schedulers and agents, all killed at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **_database_env(),
            "DEBUG": "1",
            "LOG_FORMAT": "console",
            "LOG_LEVEL": "INFO",
            "RUCKUS_PUBLIC_URL": self.base,
            "RUCKUS_HEARTBEAT_INTERVAL_S": str(HEARTBEAT_S),
            "RUCKUS_AGENT_LOST_AFTER_S": str(LOST_AFTER_S),
            "RUCKUS_RETRY_BACKOFF_BASE_S": "0.5",
            "RUCKUS_REGISTRATION_KEY": "join-key-for-tests",
            "RUCKUS_AGENT_HEARTBEAT_INTERVAL_S": str(HEARTBEAT_S),
        }
        self.redis_url = redis_url()
        if self.redis_url:
            # The scheduler's state changes reach websocket clients of daphne only through a shared layer.
            self.env["REDIS_URL"] = self.redis_url
        self.agent_tokens: dict[str, str] = {}
        self.agent_ports: dict[str, int] = {}

    def spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        """Start a process with its output in ``<tmp>/<name>.log``."""
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        """Output of a process so far (for failure messages)."""
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def start_server(self) -> None:
        """Start daphne and wait for /healthz."""
        self.spawn("server", [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port),
                              "ruckus_server.asgi:application"])
        wait_for(lambda: self._ok(f"{self.base}/healthz"), 60, interval=0.2, what="the server")

    def start_scheduler(self, name: str = "scheduler") -> subprocess.Popen[bytes]:
        """Start a scheduler process."""
        return self.spawn(name, [sys.executable, "manage.py", "run_scheduler", "--interval", "0.2"])

    def start_agent(self, name: str, *, port: int | None = None, extra: list[str] | None = None) -> None:
        """Start an agent with the converted SmolLM2 in its model cache and wait for its health."""
        from agent_runtime.models import convert_packaged_smollm2

        data_dir = self.tmp / name
        models = data_dir / "models"
        models.mkdir(parents=True, exist_ok=True)
        link = models / "smollm2-135m-instruct"
        if not link.exists():
            link.symlink_to(convert_packaged_smollm2(MODEL_CACHE), target_is_directory=True)
        self.agent_ports[name] = port or self.agent_ports.get(name) or free_port()
        self.agent_tokens.setdefault(name, secrets.token_urlsafe(16))
        # Test models (tmp_path_factory) live beside this test's directory: the agent may read them.
        self.spawn(name, [str(BIN / "ruckus-agent"), "serve", "--host", "127.0.0.1", "--port",
                          str(self.agent_ports[name]), "--data-dir", str(data_dir), "--token",
                          self.agent_tokens[name], "--name", name, "--allow-path", str(self.tmp.parent),
                          *(extra or [])])
        wait_for(lambda: self._ok(f"{self.agent_url(name)}/api/v1/health"), 120, interval=0.2, what=f"agent {name}")

    def agent_url(self, name: str) -> str:
        """Base URL of an agent."""
        return f"http://127.0.0.1:{self.agent_ports[name]}"

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send a signal to a process group and wait for it."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)

    @staticmethod
    def _ok(url: str) -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """Stop everything (SIGTERM, then SIGKILL)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def stack(tmp_path: Path, transactional_db: Any) -> Iterator[Stack]:
    """A fresh process stack over the committed test database."""
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def user_api(stack: Stack, transactional_db: Any) -> httpx.Client:
    """An API client for the running server, authenticated with a real user token."""
    from django.contrib.auth import get_user_model

    from tests.factories import api_token, set_role

    user = get_user_model().objects.create_user("operator", password="operator-password-123")
    set_role(user, "fleet-admin")
    token = api_token(user)
    return httpx.Client(base_url=f"{stack.base}/api/v1", headers={"Authorization": f"Token {token}"},
                        timeout=60)
