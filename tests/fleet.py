"""A RUCKUS fleet on separate hosts of one machine: for multi-host tests and the chaos benchmark.

The server (daphne), its schedulers and a private Postgres (:class:`tests.pgctl.PgServer`) run in the root network
namespace, on the lab's bridge address; every agent runs in a namespace of its own (:class:`tests.netlab.NetLab`),
with its own address, so nothing is shared through a loopback. Push agents listen on their host's address and are
registered by URL; pull agents keep their API on their own loopback, sit behind a NAT (inbound connections
dropped) and announce themselves with the registration key.

Nothing here touches the machine's own Postgres: the fleet's database is a copy of a migrated template on the
private server, which a test may kill and restart.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import free_port, wait_for
from tests.netlab import NetLab
from tests.pgctl import PgServer

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: The registration key of every fleet's server.
REGISTRATION_KEY = "fleet-join-key-for-tests"
#: Name of the migrated template database on a fleet's Postgres server.
TEMPLATE_DB = "ruckus_fleet_template"


@dataclass
class Timing:
    """Liveness settings of a fleet (scaled down from the defaults, 5 s and 30 s, so tests stay short)."""

    heartbeat_s: float = 0.5
    lost_after_s: float = 6.0
    retry_backoff_base_s: float = 0.5
    scheduler_interval_s: float = 0.2


@dataclass
class AgentProc:
    """One agent process of the fleet."""

    name: str
    host: str
    mode: str
    port: int
    token: str
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    agent_id: str | None = None


@dataclass
class Fleet:
    """The processes of one fleet; :meth:`close` stops them all (the lab and Postgres belong to the caller).

    Attributes:
        lab: The network lab (agents' hosts).
        pg: The private Postgres server.
        workdir: Where logs and agent data go.
        database: The fleet's database on ``pg``.
        timing: Liveness settings.
        extra_env: More environment for the server and scheduler.
    """

    lab: NetLab
    pg: PgServer
    workdir: Path
    database: str = ""
    timing: Timing = field(default_factory=Timing)
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    agents: dict[str, AgentProc] = field(default_factory=dict)
    port: int = 0
    api_token: str = ""

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        if not self.database:
            self.database = f"fleet_{secrets.token_hex(4)}"
            create_fleet_database(self.pg, self.database)

    # -- environment ------------------------------------------------------------------------------------------

    @property
    def base(self) -> str:
        """The server's URL on the lab's bridge (what agents reach)."""
        return f"http://{self.lab.server_address}:{self.port}"

    def server_env(self) -> dict[str, str]:
        """Environment of the server and the schedulers. ``RUCKUS_PUBLIC_URL`` is deliberately not set."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUCKUS_", "PG"))}
        env.update({
            "DATABASE_URL": self.pg.url(self.database),
            "DEBUG": "1",
            "LOG_FORMAT": "console",
            "LOG_LEVEL": "INFO",
            "ALLOWED_HOSTS": f"localhost,127.0.0.1,{self.lab.server_address}",
            "RUCKUS_AGENT_ALLOWED_NETWORKS": str(self.lab.subnet),
            "RUCKUS_REGISTRATION_KEY": REGISTRATION_KEY,
            "RUCKUS_HEARTBEAT_INTERVAL_S": str(self.timing.heartbeat_s),
            "RUCKUS_AGENT_LOST_AFTER_S": str(self.timing.lost_after_s),
            "RUCKUS_RETRY_BACKOFF_BASE_S": str(self.timing.retry_backoff_base_s),
            "RUCKUS_DISPATCH_STALE_S": "5",
            "RUCKUS_PULL_AFTER_S": "5",
            "RUCKUS_PULL_WAIT_S": "10",
            "RUCKUS_DATA_DIR": str(self.workdir / "server-data"),
            **self.extra_env,
        })
        env.pop("REDIS_URL", None)  # one server process: the in-memory channel layer is enough
        return env

    def agent_env(self) -> dict[str, str]:
        """Environment of an agent (no server settings: the agent learns everything from its registration)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUCKUS_", "PG", "DATABASE_URL"))}
        # No probes of the usual inference-server ports: what runs on the machine must not change the tests.
        env.update({"RUCKUS_AGENT_HEARTBEAT_INTERVAL_S": str(self.timing.heartbeat_s), "LOG_LEVEL": "INFO",
                    "RUCKUS_AGENT_PROBE_LOCAL_SERVERS": "false"})
        return env

    # -- processes --------------------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], host: str | None = None) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("ab")
        if host is None:
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        else:
            proc = self.lab.popen(host, argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def log(self, name: str, chars: int = 3000) -> str:
        """The end of a process's output (for failure messages)."""
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def start_server(self) -> None:
        """Start daphne on the bridge address and wait until it is ready (its database answers)."""
        self._spawn("server", [str(BIN / "daphne"), "-b", self.lab.server_address, "-p", str(self.port),
                               "ruckus_server.asgi:application"], self.server_env())
        wait_for(lambda: _ok(f"{self.base}/readyz"), 60, interval=0.2,
                 what="the server to be ready\n" + self.log("server"))
        if not self.api_token:
            self.api_token = create_api_token(self.server_env())

    def start_scheduler(self, name: str = "scheduler") -> None:
        """Start a scheduler process."""
        self._spawn(name, [sys.executable, "manage.py", "run_scheduler", "--interval",
                           str(self.timing.scheduler_interval_s)], self.server_env())

    def start_agent(self, name: str, host: str, *, mode: str = "push", wait: bool = True,
                    extra: Sequence[str] = ()) -> AgentProc:
        """Start an agent on a host of the lab (a pull agent is put behind a NAT first).

        Args:
            name: Agent name (also its log's name).
            host: The lab host it runs on.
            mode: ``push`` (listens on the host's address; register it with :meth:`register`) or ``pull``
                (announces itself; its API stays on the host's loopback).
            wait: Wait until a push agent answers its health check / a pull agent appears on the server.
            extra: More ``ruckus-agent serve`` options (``--allow-endpoint URL`` ...).

        Returns:
            The agent.
        """
        agent = self.agents.get(name) or AgentProc(
            name=name, host=host, mode=mode, port=free_port(), token=secrets.token_urlsafe(16),
            data_dir=self.workdir / f"agent-{name}")
        self.agents[name] = agent
        # The tiny model is built beside the work directory (tmp_path_factory, or the benchmarks' temp dir).
        argv = [str(BIN / "ruckus-agent"), "serve", "--port", str(agent.port), "--data-dir", str(agent.data_dir),
                "--token", agent.token, "--name", name, "--allow-path", str(self.workdir.parent)]
        if mode == "pull":
            self.lab.block_inbound(host)
            argv += ["--pull", "--host", "127.0.0.1", "--server", self.base, "--registration-key", REGISTRATION_KEY]
        else:
            argv += ["--host", self.lab.hosts[host].address]
        argv += list(extra)
        agent.proc = self._spawn(name, argv, self.agent_env(), host=host)
        if wait:
            if mode == "pull":
                wait_for(lambda: self.agent_record(name), 120, interval=0.3,
                         what=f"pull agent {name} to announce itself\n" + self.log(name))
            else:
                wait_for(lambda: _ok(f"{self.agent_url(name)}/api/v1/health"), 120, interval=0.3,
                         what=f"agent {name}\n" + self.log(name))
        return agent

    def agent_url(self, name: str) -> str:
        """A push agent's URL on its host's address."""
        agent = self.agents[name]
        return f"http://{self.lab.hosts[agent.host].address}:{agent.port}"

    def register(self, name: str) -> dict[str, Any]:
        """Register a push agent by URL (as a user would, through the API)."""
        agent = self.agents[name]
        with self.api() as api:
            r = api.post("/agents/", json={"url": self.agent_url(name), "token": agent.token, "name": name})
        assert r.status_code == 201, r.text
        agent.agent_id = r.json()["id"]
        return r.json()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a process group and wait for the process."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)

    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    # -- API --------------------------------------------------------------------------------------------------

    def api(self, timeout: float = 30) -> httpx.Client:
        """A user's API client (a fresh one: callers use it as a context manager)."""
        return httpx.Client(base_url=f"{self.base}/api/v1", headers={"Authorization": f"Token {self.api_token}"},
                            timeout=timeout)

    def agent_record(self, name: str) -> dict[str, Any] | None:
        """The server's record of an agent by name (None when unknown or the server does not answer)."""
        try:
            with self.api(timeout=5) as api:
                rows = api.get("/agents/", params={"search": name, "limit": 100}).json()["results"]
        except (httpx.HTTPError, ValueError, KeyError):
            return None
        row = next((r for r in rows if r["name"] == name), None)
        if row is not None:
            self.agents[name].agent_id = row["id"]
        return row

    def create_experiment(self, model_path: Path, *, runs: int = 2, samples: int = 1, max_new_tokens: int = 8,
                          copies: int = 1) -> dict[str, Any]:
        """An experiment on every agent with the tiny model (``copies`` models: that many jobs per agent)."""
        models = [{"name": f"local/tiny-llama-{i}", "path": str(model_path)} for i in range(copies)]
        with self.api() as api:
            r = api.post("/experiments/", json={
                "name": "fleet",
                "task": {"name": "wikipedia_summarization",
                         "params": {"num_samples": samples, "seed": 3, "max_new_tokens": max_new_tokens}},
                "models": models,
                "runtimes": [{"name": "transformers", "params": {"device": "cpu"}}],
                "agents": {"all": True},
                "runs_per_job": runs,
            })
        assert r.status_code == 201, r.text
        return r.json()

    def jobs(self, experiment_id: int) -> list[dict[str, Any]]:
        """The experiment's jobs (empty when the server does not answer)."""
        try:
            with self.api(timeout=10) as api:
                return api.get("/jobs/", params={"experiment": experiment_id, "limit": 1000}).json()["results"]
        except (httpx.HTTPError, ValueError, KeyError):
            return []

    def wait_jobs_done(self, experiment_id: int, timeout: float, on_wait: Callable[[], None] | None = None
                       ) -> list[dict[str, Any]]:
        """Wait until every job of the experiment has ended; return them."""
        def done() -> list[dict[str, Any]] | None:
            if on_wait is not None:
                on_wait()
            jobs = self.jobs(experiment_id)
            ended = jobs and all(j["status"] in ("completed", "failed", "cancelled", "timed_out") for j in jobs)
            return jobs if ended else None

        return wait_for(done, timeout, interval=0.5, what=f"the jobs of experiment {experiment_id} to end; "
                        f"server log:\n{self.log('server', 1500)}\nscheduler log:\n{self.log('scheduler', 2500)}")

    def count_results(self, experiment_id: int) -> dict[int, int]:
        """Stored results per job, read straight from the database (``{job id: rows}``)."""
        import psycopg

        with psycopg.connect(self.pg.url(self.database), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT j.id, count(r.id) FROM experiments_job j LEFT JOIN results_jobresult r ON r.job_id = j.id "
                "WHERE j.experiment_id = %s GROUP BY j.id", (experiment_id,)).fetchall()
        return {int(job_id): int(n) for job_id, n in rows}


def _ok(url: str) -> bool:
    """True when ``GET url`` answers 200."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run ``manage.py`` with an environment; return its output (raise with it on failure)."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def create_fleet_database(pg: PgServer, name: str) -> None:
    """Create a fleet's database as a copy of a migrated template (migrated once per Postgres server)."""
    import psycopg

    with psycopg.connect(pg.url(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE_DB,)).fetchone()
    if not exists:
        pg.create_database(TEMPLATE_DB)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({"DATABASE_URL": pg.url(TEMPLATE_DB), "DEBUG": "1"})
        _manage(env, "migrate", "--noinput")
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')


def create_api_token(env: dict[str, str]) -> str:
    """Create a user with an API token in the fleet's database and return the token."""
    out = _manage(env, "ruckus_user", "fleet-operator", "--role", "fleet-admin", "--no-password", "--token",
                  timeout=120)
    return next(line[6:] for line in out.splitlines() if line.startswith("TOKEN="))
