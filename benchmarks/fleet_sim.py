"""The server at fleet scale: one asyncio process plays N push agents against a real RUCKUS server and prints figures.

The driver starts the server under test itself (or targets a running one with ``--url``/``--token``), registers N
simulated agents through the real API, lets them heartbeat, runs an experiment of J jobs on them, and measures:

- **register**: agents registered per second (``POST /api/v1/agents/``: the server calls the agent's ``/register``,
  which calls the server's ``/reach/`` back with the challenge before it answers with its ~10 KB ``AgentInfo``);
- **hb**: sustained heartbeats per second over ``--duration`` s (offered vs achieved), p50/p99 latency from send to
  answer, errors; whether the server asked for a longer interval;
- **dispatch**: the experiment's create time, then jobs per second from its creation until every job was received
  by an agent (counted on the agent side);
- **ingest**: results posted per second (agent side), p50/p99 post latency, and the time until every job is
  completed with its results readable and ROUGE-scored through the API;
- **read**: client latency and SQL query count of the list, detail and export endpoints the UI and CLI use;
- at the end, the RSS and CPU time of every server and scheduler process and of the simulator itself, and every
  error of every kind.

The exit status is 1 when any error happened (an HTTP error, a timeout, a job not done), never because of speed.

How the server is started (``--repo``, default this checkout; an older commit checked out with ``git worktree add
/tmp/ruckus-before <commit>`` is measured the same way): a private database ``ruckus_fleetsim_<pid>`` on the
Postgres of ``--pg`` (created with psycopg, dropped at the end), ``manage.py migrate``, a fleet-admin user with an
API token (``manage.py ruckus_user ... --token``, as ``tests/fleet.py`` does), then ``--server daphne|uvicorn``
with ``--workers N`` processes and ``--schedulers N`` ``manage.py run_scheduler`` processes, each run with this
interpreter (``sys.executable``) in the target checkout (``cwd`` and ``PYTHONPATH``). The server runs as in
production: ``DEBUG`` off, a random ``SECRET_KEY``, JSON logs at the default level (into the work directory),
Redis (``REDIS_URL=redis://127.0.0.1:6379/<db>``) as channel layer and cache when it answers, plain HTTP
(``SECURE_SSL_REDIRECT=false``) and loopback allowed for agent URLs (``RUCKUS_AGENT_ALLOWED_NETWORKS``).
``--env K=V`` adds or overrides server settings (``--env DB_CONN_MAX_AGE=60``). Several daphne workers share one
listening socket (``daphne --fd``); uvicorn workers are uvicorn's own ``--workers``.

The simulated agents: one uvicorn server on one port serves every agent under ``http://127.0.0.1:PORT/a/<i>``
with the real agent's API (``agent_runtime/api.py``: register, info, status, jobs, cancel, ack), each with its own
token, credential, host name and GPU UUIDs. Their calls to the server share one connection pool of ``--connections``
(default 64: the server runs each request in a thread with its own database connection, and Postgres allows 100 by
default), kept as httpx clients of 8 connections each (a single large httpx pool costs the simulator about three
times the CPU per request). Their description comes from the agent's real detection
(``agent_runtime.info.gather_agent_info`` on the recorded GPU reports in ``tests/fixtures/telemetry``, run once in
a subprocess) in ``--hw-classes`` hardware classes (agent ``i`` has class ``i % K``: 2x H100, V100, 2x MI210, CPU
only, ...), so that jobs are bound to hardware fingerprints as in a real fleet. Each agent advertises a local vLLM
server serving the benchmark's models (the gray-box ``vllm`` runtime, which needs no weights on the agent).

Jobs: the planner makes one job per (model, runtime, agent), and an experiment takes at most 50 models; J jobs are
made as ``ceil(J / N)`` models on ``ceil(J / models)`` agents (so slightly more than J when J does not divide),
split into several experiments beyond 50 models. An agent runs one job at a time, so J > N runs in waves. Each job
takes ``--job-delay`` s on its agent: a progress report halfway, then a ``MultiRunJobResult`` of a cold run plus
``--runs`` warm runs of ``--samples`` samples, with outputs and references of a few hundred words (the server
ROUGE-scores them) and per-request timings.

Usage::

    python benchmarks/fleet_sim.py                           # 1000 agents, 1000 jobs, 30 s of heartbeats
    python benchmarks/fleet_sim.py --short                   # ~50 agents, 100 jobs, 5 s: what CI runs (< 2 min)
    python benchmarks/fleet_sim.py --agents 300 --jobs 300 --duration 20 --json figures.json
    python benchmarks/fleet_sim.py --server uvicorn --workers 2 --schedulers 2 --env DB_CONN_MAX_AGE=60
    python benchmarks/fleet_sim.py --repo /tmp/ruckus-before --phases hb,dispatch
    python benchmarks/fleet_sim.py --url http://127.0.0.1:8000 --token TOKEN    # a running server (no SQL counts)

``--phases`` picks the figures (``hb,dispatch,ingest,read``; registration always runs). Heartbeats run from each
agent's registration to the end whatever the phases (agents must stay online to get jobs); ``dispatch``,
``ingest`` and ``read`` all run the jobs. SQL query counts come from the same requests made through Django's test
client in a ``manage.py shell`` of the target checkout, inside ``CaptureQueriesContext``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import psycopg
import uvicorn
from psycopg import sql

SELF_REPO = Path(__file__).resolve().parents[1]
if str(SELF_REPO) not in sys.path:
    sys.path.insert(0, str(SELF_REPO))

from common.protocol import PROTOCOL_VERSION, AgentInfo  # noqa: E402

#: Phases that print figures (registration always runs and is always reported).
PHASES = ("hb", "dispatch", "ingest", "read")
#: Models the simulated vLLM servers serve; an experiment takes at most 50.
MAX_MODELS_PER_EXPERIMENT = 50
MODEL_NAMES = [f"fleetsim/llm-{k:02d}" for k in range(MAX_MODELS_PER_EXPERIMENT)]
#: The server's default heartbeat interval (``RUCKUS_HEARTBEAT_INTERVAL_S``): the default offered rate is N / this.
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
#: Connections per httpx client of the agents' pool (see :class:`Fleet`).
POOL_SHARD = 8
#: Seconds between two polls of the API while waiting (each poll is load on the server being measured).
POLL_S = 1.0
#: Seconds of timing one read request may take in all: a slow one is timed fewer than ``--read-repeats`` times.
READ_BUDGET_S = 30.0
#: Job statuses that end a job.
TERMINAL_JOB_STATUSES = {"completed", "failed", "cancelled", "timed_out"}
#: Recorded GPU reports of the repository's tests that the hardware classes are detected from.
FIXTURES = SELF_REPO / "tests" / "fixtures" / "telemetry"

#: Hardware classes: recorded GPU report (kind, file), CPU model, system memory in GiB. GPUs of the ``none`` kind
#: are removed after detection (a CPU-only host).
HW_CLASSES: list[tuple[str, str | None, str, int]] = [
    ("nvidia", "nvidia-smi-2x-h100-mig-v12.xml", "Intel(R) Xeon(R) Platinum 8480+", 1024),
    ("nvidia", "nvidia-smi-tesla-v100-v10.xml", "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", 256),
    ("rocm", "rocm-smi-2x-mi210.json", "AMD EPYC 7763 64-Core Processor", 512),
    ("none", None, "AMD EPYC 9654 96-Core Processor", 384),
]

# Detection in a subprocess of this checkout: the torch probe it starts (a thread importing torch) would otherwise
# add hundreds of MB to the simulator's RSS, which is one of the figures. Prints one AgentInfo JSON per class.
_DETECT_SNIPPET = r"""
import json, sys, tempfile
from pathlib import Path
from agent_runtime.info import gather_agent_info
from agent_runtime.runtimes import describe_runtimes
from common.protocol import LocalServer
classes, models = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = []
with tempfile.TemporaryDirectory() as data_dir:
    for kind, fixture, cpu_model, mem_gib in classes:
        recorded = {}
        if kind == "nvidia":
            recorded["nvidia_smi_xml"] = Path(fixture)
        elif kind == "rocm":
            recorded["rocm_smi_json"] = Path(fixture)
        else:
            recorded["nvidia_smi_xml"] = Path(classes[0][1])
        info = gather_agent_info(data_dir=Path(data_dir), name="template", **recorded)
        if kind == "none":
            info.gpus = []
        info.cpu.model = cpu_model
        info.memory.total_bytes = mem_gib * 2**30
        info.memory.available_bytes = int(mem_gib * 2**30 * 0.9)
        info.local_servers = [LocalServer(
            runtime="vllm", url="http://127.0.0.1:8000", metrics_url="http://127.0.0.1:8000/metrics",
            source="probed", available=True, engine="vllm", engine_version="0.9.2", models=models,
            metrics_available=True)]
        info.runtimes = describe_runtimes(info)
        out.append(info.model_dump(mode="json"))
print("FLEETSIM_INFO=" + json.dumps(out))
"""

# The read endpoints' SQL query counts: the same requests through Django's test client in the target checkout.
_QUERIES_SNIPPET = r"""
import json, os
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION="Token " + os.environ["FLEETSIM_TOKEN"])
out = {}
for path in json.loads(os.environ["FLEETSIM_PATHS"]):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
        body = b"".join(response.streaming_content) if response.streaming else response.content
    out[path] = {"status": response.status_code, "queries": len(ctx.captured_queries), "bytes": len(body)}
print("FLEETSIM_QUERIES=" + json.dumps(out))
"""

#: Words the simulated summaries and references are made of (ROUGE tokenizes and stems every one of them).
_WORDS = (
    "the of and in to a was is for as on by with that from at his it an were are which this be or has had "
    "first also after their its new not but two they one been other city world war state people year time "
    "government during national university century including when part history river between most team "
    "known since used many three these some under would north south west east area population school "
    "company group system early million public members later each both where until period born became "
    "series film album music game season league club party election president king army region country "
    "island province language species family water energy science theory research light temperature "
    "system design engine vehicle railway station bridge building church museum library building empire "
    "dynasty republic treaty battle revolution movement council parliament minister court law economy trade "
    "industry agriculture market production network computer software data model memory process structure"
)
_VOCABULARY = tuple(_WORDS.split())


# ---------------------------------------------------------------------------------------------------------------
# Figures: latencies and errors
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Latencies:
    """Durations in seconds of one kind of request.

    Attributes:
        values: Every duration recorded.
    """

    values: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        """Record one duration.

        Args:
            seconds: The duration.
        """
        self.values.append(seconds)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile by the nearest-rank rule (None when nothing was recorded).

        Args:
            q: Between 0 and 1.
        """
        if not self.values:
            return None
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def summary_ms(self) -> dict[str, float | int | None]:
        """Count, p50, p99 and max in milliseconds."""
        def ms(v: float | None) -> float | None:
            return None if v is None else round(v * 1000, 1)

        return {"n": len(self.values), "p50_ms": ms(self.quantile(0.5)), "p99_ms": ms(self.quantile(0.99)),
                "max_ms": ms(max(self.values) if self.values else None)}


@dataclass
class WireLatencies:
    """Durations of one kind of agent call: from the call (pool wait included), and on the wire only.

    Attributes:
        total: From the call to the answer (what the agent waits).
        wire: From the request's first byte to the answer (what the server takes).
    """

    total: Latencies = field(default_factory=Latencies)
    wire: Latencies = field(default_factory=Latencies)

    def add(self, total: float, wire: float) -> None:
        """Record one call.

        Args:
            total: Seconds from the call.
            wire: Seconds on the wire.
        """
        self.total.add(total)
        self.wire.add(wire)

    def summary_ms(self) -> dict[str, Any]:
        """Both summaries (``total`` and ``wire``)."""
        return {"total": self.total.summary_ms(), "wire": self.wire.summary_ms()}


class Errors:
    """Every error of the run, counted by ``phase:kind``, with the first few details of each kind kept."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, kind: str, detail: str = "") -> None:
        """Count one error.

        Args:
            kind: ``phase:kind`` (``heartbeat:http_503``, ``result:timeout`` ...).
            detail: What happened (a few are kept per kind for the report).
        """
        self.counts[kind] += 1
        kept = self.examples.setdefault(kind, [])
        if detail and len(kept) < 3:
            kept.append(detail[:300])

    def of(self, prefix: str) -> int:
        """Errors whose kind starts with ``prefix`` (a phase)."""
        return sum(n for k, n in self.counts.items() if k.startswith(prefix))

    @property
    def total(self) -> int:
        """Every error counted."""
        return sum(self.counts.values())


_T0 = time.monotonic()


def say(message: str) -> None:
    """Print a progress line on stderr, with the seconds since start (the table goes to stdout).

    Args:
        message: What is happening.
    """
    print(f"[{time.monotonic() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def http_error_kind(exc: BaseException) -> str:
    """A short name for a failed request (``timeout``, ``ConnectError`` ...)."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return type(exc).__name__


def iso_now() -> str:
    """The current UTC time as ISO 8601 (what the protocol's datetimes look like on the wire)."""
    return datetime.now(UTC).isoformat()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it).

    Args:
        host: The address to bind on.
    """
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------------------------
# The server under test
# ---------------------------------------------------------------------------------------------------------------


#: Servers started by this process: :func:`main` stops any that a failed cleanup left running.
_STARTED: list[ServerUnderTest] = []


class ServerUnderTest:
    """The server (daphne or uvicorn), its schedulers and its private database, started from a checkout.

    Args:
        args: The command line.
        workdir: Where the processes' logs go.
        errors: The run's error counter.
    """

    def __init__(self, args: argparse.Namespace, workdir: Path, errors: Errors) -> None:
        self.args = args
        self.repo = Path(args.repo).resolve()
        self.workdir = workdir
        self.errors = errors
        self.db_name = f"ruckus_fleetsim_{os.getpid()}"
        self.db_created = False
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self.env: dict[str, str] = {}
        self.redis_url: str | None = None
        self._listen_socket: socket.socket | None = None
        _STARTED.append(self)

    # -- database -------------------------------------------------------------------------------------------

    def _admin_conninfo(self) -> dict[str, Any]:
        """The ``--pg`` connection's parameters (the maintenance database of the Postgres server)."""
        return psycopg.conninfo.conninfo_to_dict(self.args.pg)

    def database_env(self) -> dict[str, str]:
        """``DATABASE_URL`` (and ``PGHOST`` for a socket directory) of the private database for the server."""
        params = self._admin_conninfo()
        user = quote(str(params.get("user") or "postgres"), safe="")
        password = quote(str(params.get("password") or ""), safe="")
        auth = f"{user}:{password}@" if password else f"{user}@"
        host = str(params.get("host") or "127.0.0.1")
        port = str(params.get("port") or 5432)
        if host.startswith("/"):
            # A socket directory cannot be written in a URL portably: libpq takes it from PGHOST (tests' way).
            return {"DATABASE_URL": f"postgres://{auth}/{self.db_name}", "PGHOST": host, "PGPORT": port}
        return {"DATABASE_URL": f"postgres://{auth}{host}:{port}/{self.db_name}"}

    def create_database(self) -> None:
        """Create the private database (dropped by :meth:`close`)."""
        with psycopg.connect(self.args.pg, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db_name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))
        self.db_created = True

    def drop_database(self) -> None:
        """Drop the private database (its connections are closed by force: the processes are gone by now)."""
        if not self.db_created:
            return
        try:
            with psycopg.connect(self.args.pg, autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db_name)))
            self.db_created = False
        except psycopg.Error as exc:
            print(f"warning: could not drop database {self.db_name}: {exc}", file=sys.stderr)

    # -- environment and processes --------------------------------------------------------------------------

    def _redis(self) -> str | None:
        """``redis://127.0.0.1:6379/<db>`` when Redis answers there (else the server's in-process defaults)."""
        if self.args.no_redis:
            return None
        try:
            with socket.create_connection(("127.0.0.1", 6379), timeout=1):
                return f"redis://127.0.0.1:6379/{self.args.redis_db}"
        except OSError:
            print("note: no Redis on 127.0.0.1:6379: the server runs with its in-memory channel layer and "
                  "database cache", file=sys.stderr)
            return None

    def build_env(self) -> dict[str, str]:
        """The environment of every server process: production settings, plus ``--env``."""
        # Settings inherited from the caller (a test run exports DEBUG=1, a shell may hold RUCKUS_*) must not leak in.
        dropped = ("RUCKUS_", "PG", "DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "LOG_", "DJANGO_",
                   "SECURE_", "ALLOWED_HOSTS", "DB_CONN")
        env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        self.redis_url = self._redis()
        env.update({
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "PYTHONPATH": str(self.repo),
            "DJANGO_SETTINGS_MODULE": "ruckus_server.settings",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Plain HTTP on loopback: without this every request would be redirected to https.
            "SECURE_SSL_REDIRECT": "false",
            # The simulated agents listen on loopback, which the URL guard allows only in DEBUG by default.
            "RUCKUS_AGENT_ALLOWED_NETWORKS": "127.0.0.0/8",
            "RUCKUS_REGISTRATION_KEY": secrets.token_urlsafe(24),
            "RUCKUS_DATA_DIR": str(self.workdir / "server-data"),
            # The API token's lifetime and page sizes stay at their defaults; the login throttles do not apply.
            **self.database_env(),
        })
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        for item in self.args.env:
            key, _, value = item.partition("=")
            env[key] = value
        return env

    def manage(self, *args: str, timeout: float = 300, extra_env: dict[str, str] | None = None) -> str:
        """Run the target checkout's ``manage.py`` with the server's environment; return its output.

        Args:
            *args: The command and its arguments.
            timeout: Seconds before it is killed.
            extra_env: More environment.

        Raises:
            RuntimeError: It failed (its output is in the message).
        """
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=self.repo, env={**self.env, **(extra_env or {})},
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def _spawn(self, name: str, argv: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
        """Start a process in its own session (so its whole group can be signalled), output into its log."""
        log = (self.workdir / f"{name}.log").open("ab")
        try:
            proc = subprocess.Popen(argv, cwd=self.repo, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, pass_fds=pass_fds)
        finally:
            log.close()
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, chars: int = 2000) -> str:
        """The end of a process's log (for failure messages)."""
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def prepare(self) -> None:
        """Create and migrate the database and create the API user (before any server process starts)."""
        self.env = self.build_env()
        if not (self.repo / "manage.py").exists():
            raise RuntimeError(f"{self.repo} is not a RUCKUS checkout (no manage.py)")
        self.create_database()
        self.manage("migrate", "--noinput", timeout=600)
        out = self.manage("ruckus_user", "fleetsim-operator", "--role", "fleet-admin", "--no-password", "--token",
                          timeout=120)
        self.token = next((line[6:] for line in out.splitlines() if line.startswith("TOKEN=")), "")
        if not self.token:
            raise RuntimeError(f"manage.py ruckus_user printed no TOKEN= line:\n{out[-1000:]}")

    def start(self) -> None:
        """Start the server processes and the schedulers (the caller waits for readiness)."""
        workers = max(1, self.args.workers)
        if self.args.server == "uvicorn":
            self._spawn("server", [sys.executable, "-m", "uvicorn", "ruckus_server.asgi:application",
                                   "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
                                   "--lifespan", "off", "--no-access-log", "--log-level", "warning"])
        elif workers == 1:
            self._spawn("server", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                                   "ruckus_server.asgi:application"])
        else:
            # Daphne has no worker option: N daphne processes accept on one listening socket handed to each.
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.listen(2048)
            sock.set_inheritable(True)
            self._listen_socket = sock
            for i in range(workers):
                self._spawn(f"server-{i}", [sys.executable, "-m", "daphne", "--fd", str(sock.fileno()),
                                            "ruckus_server.asgi:application"], pass_fds=(sock.fileno(),))
        for i in range(max(0, self.args.schedulers)):
            self._spawn(f"scheduler-{i}", [sys.executable, "manage.py", "run_scheduler", "--interval",
                                           str(self.args.scheduler_interval)])
        if self.args.scoring_workers:
            # Only checkouts that score results off the request path have this command.
            if not (self.repo / "results" / "management" / "commands" / "run_scoring_worker.py").exists():
                raise RuntimeError(f"--scoring-workers: {self.repo} has no manage.py run_scoring_worker")
            for i in range(self.args.scoring_workers):
                self._spawn(f"scoring-{i}", [sys.executable, "manage.py", "run_scoring_worker"])

    async def wait_ready(self, timeout: float) -> None:
        """Wait until ``/readyz`` answers 200 (database and channel layer answer).

        Raises:
            RuntimeError: A process died or the time ran out (with the server's log).
        """
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=3) as client:
            while time.monotonic() < deadline:
                dead = self.dead()
                if dead:
                    raise RuntimeError(f"{dead[0]} exited at start:\n{self.log_tail(dead[0])}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.3)
        name = next(iter(self.procs))
        raise RuntimeError(f"the server was not ready within {timeout:g} s:\n{self.log_tail(name)}")

    def dead(self) -> list[str]:
        """Names of the processes that have exited."""
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def resources(self, precise: bool = False) -> dict[str, dict[str, float]]:
        """RSS (MB, with the process's children: uvicorn's workers) and CPU seconds of every process.

        Args:
            precise: CPU seconds unrounded (for differences over a phase).
        """
        out: dict[str, dict[str, float]] = {}
        for name, proc in self.procs.items():
            try:
                parent = psutil.Process(proc.pid)
                members = [parent, *parent.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in members)
                cpu = sum(sum(p.cpu_times()[:2]) for p in members)
            except psutil.Error:
                continue
            out[name] = {"rss_mb": round(rss / 2**20, 1), "cpu_s": cpu if precise else round(cpu, 1),
                         "processes": len(members)}
        return out

    def query_counts(self, paths: list[str]) -> dict[str, Any]:
        """SQL queries each read request makes, through Django's test client in the target checkout.

        Args:
            paths: Request paths with their query strings.
        """
        out = self.manage("shell", "-c", _QUERIES_SNIPPET, timeout=300,
                          extra_env={"FLEETSIM_TOKEN": self.token, "FLEETSIM_PATHS": json.dumps(paths),
                                     "LOG_LEVEL": "WARNING"})
        line = next((x for x in out.splitlines() if x.startswith("FLEETSIM_QUERIES=")), None)
        if line is None:
            raise RuntimeError(f"the query count printed nothing:\n{out[-1000:]}")
        return json.loads(line.split("=", 1)[1])

    def close(self) -> None:
        """Stop every process (SIGTERM to its group, SIGKILL after 15 s) and drop the database; idempotent."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
        if self._listen_socket is not None:
            self._listen_socket.close()
            self._listen_socket = None
        self.drop_database()


# ---------------------------------------------------------------------------------------------------------------
# Simulated agents
# ---------------------------------------------------------------------------------------------------------------


def detect_templates(classes: int) -> list[dict[str, Any]]:
    """One detected ``AgentInfo`` per hardware class (from the real agent's detection, in a subprocess).

    Classes beyond the recorded ones repeat them with twice the memory per round, so each has its own fingerprint.

    Args:
        classes: How many hardware classes.

    Returns:
        The descriptions (JSON-ready dicts).
    """
    base = [(kind, str(FIXTURES / fx) if fx else None, cpu, mem) for kind, fx, cpu, mem in HW_CLASSES]
    wanted = [(*base[k % len(base)][:3], base[k % len(base)][3] * 2 ** (k // len(base))) for k in range(classes)]
    env = {**os.environ, "PYTHONPATH": str(SELF_REPO), "RUCKUS_AGENT_PROBE_LOCAL_SERVERS": "false",
           "LOG_LEVEL": "WARNING"}
    result = subprocess.run([sys.executable, "-c", _DETECT_SNIPPET, json.dumps(wanted), json.dumps(MODEL_NAMES)],
                            cwd=SELF_REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    line = next((x for x in result.stdout.splitlines() if x.startswith("FLEETSIM_INFO=")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"agent detection failed:\n{result.stdout[-1000:]}\n{result.stderr[-2000:]}")
    return json.loads(line.split("=", 1)[1])


@dataclass
class SimJob:
    """A job on a simulated agent.

    Attributes:
        request: The ``JobRequest`` as received.
        received_at: ``time.monotonic()`` when it arrived.
        state: Agent-side state (``running``, ``completed``, ``cancelled``).
        progress: The latest ``JobProgress``.
        task: The coroutine running it.

    The result is not kept: it is rebuilt, identical, from a generator seeded with the job (a thousand results of
    ~100 KB held as Python objects would make the simulator's RSS, one of the figures, mostly its own bookkeeping).
    """

    request: dict[str, Any]
    received_at: float
    state: str = "running"
    progress: dict[str, Any] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None


@dataclass
class SimAgent:
    """One simulated agent: what the real agent keeps about itself and its registration.

    Attributes:
        index: Its number (its URL is ``/a/<index>``).
        token: The bearer token the server must present.
        hw_class: Its hardware class.
        info: Its ``AgentInfo`` (JSON-ready).
        info_body: ``info`` serialized once (the answer to ``/register`` and ``/info``).
        capabilities_hash: ``AgentInfo.capabilities_hash()`` (sent with every heartbeat).
        interval: Seconds between its heartbeats.
        agent_id: Its id on the server (from ``/register``).
        credential: Its credential for calls to the server.
        server_url: Where it calls the server.
        jobs: Its jobs by id (the running one and finished ones until acknowledged).
        running: The id of the job it runs now.
    """

    index: int
    token: str
    hw_class: int
    info: dict[str, Any]
    info_body: bytes
    capabilities_hash: str
    interval: float
    agent_id: str | None = None
    credential: str | None = None
    server_url: str | None = None
    jobs: dict[str, SimJob] = field(default_factory=dict)
    running: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        """Headers of its calls to the server."""
        return {"Authorization": f"Bearer {self.credential}", "Content-Type": "application/json"}


class TextPool:
    """Pre-made summaries and references of a few hundred words, so building a result costs the simulator little.

    Args:
        rng: The random generator.
        size: Texts per kind.
    """

    def __init__(self, rng: random.Random, size: int = 64) -> None:
        self.references = [self._text(rng, rng.randint(180, 320)) for _ in range(size)]
        self.outputs = [self._text(rng, rng.randint(120, 260)) for _ in range(size * 2)]

    @staticmethod
    def _text(rng: random.Random, words: int) -> str:
        """Sentences of 8 to 24 words, capitalized and ending with a period (ROUGE-Lsum splits on them)."""
        out: list[str] = []
        left = words
        while left > 0:
            n = min(left, rng.randint(8, 24))
            sentence = [rng.choice(_VOCABULARY) for _ in range(n)]
            sentence[0] = sentence[0].capitalize()
            out.append(" ".join(sentence) + ".")
            left -= n
        return " ".join(out)


class Fleet:
    """N simulated push agents behind one HTTP server, and their calls to the RUCKUS server.

    Args:
        args: The command line.
        templates: One ``AgentInfo`` per hardware class.
        errors: The run's error counter.
    """

    def __init__(self, args: argparse.Namespace, templates: list[dict[str, Any]], errors: Errors) -> None:
        self.args = args
        self.errors = errors
        self.rng = random.Random(args.seed)
        self.texts = TextPool(self.rng)
        self.port = free_port(args.agent_host)
        self.base = f"http://{args.agent_host}:{self.port}"
        interval = args.agents / args.heartbeat_rate
        self.agents = [self._make_agent(i, templates[i % len(templates)], i % len(templates), interval)
                       for i in range(args.agents)]
        # One connection pool of --connections for every agent's calls, kept as shards of POOL_SHARD connections:
        # httpx's pool does work in proportion to its size and its queue on every request (one client of 64
        # connections costs about 3 ms of CPU per request under load, eight of 8 about 1 ms), and the simulator's
        # CPU is taken from the server it measures. Half the shards carry heartbeats, half the jobs' calls
        # (registration, progress, results): a real agent's heartbeat never waits behind its own 100 KB result
        # upload, let alone behind other agents' (the server would then see agents fall silent). Agent i uses shard
        # i % shards of each half.
        shards = max(2, math.ceil(args.connections / POOL_SHARD))
        per_shard = max(1, math.ceil(args.connections / shards))
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        clients = [httpx.AsyncClient(limits=limits, timeout=args.request_timeout) for _ in range(shards)]
        self.clients = clients
        self.hb_clients, self.job_clients = clients[: shards // 2], clients[shards // 2:]
        self._server: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._hb_tasks: list[asyncio.Task[None]] = []
        self._job_tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        # Figures.
        self.hb_window = False
        self.hb_latency = WireLatencies()
        self.hb_sent = 0
        self.hb_ok = 0
        self.hb_errors = 0
        self.hb_total_ok = 0
        self.hb_longer_interval: dict[str, float] = {}
        self.capability_pushes = 0
        self.register_calls = 0
        self.received: dict[str, float] = {}
        self.received_by_experiment: Counter[str] = Counter()
        self.duplicate_submissions = 0
        self.busy_refusals = 0
        self.result_latency = WireLatencies()
        self.progress_latency = WireLatencies()
        self.results_accepted: set[str] = set()
        self.result_first_start: float | None = None
        self.result_last_end: float | None = None
        self.server_calls = Counter[str]()

    def _make_agent(self, i: int, template: dict[str, Any], hw_class: int, interval: float) -> SimAgent:
        """An agent with its own host name, GPU UUIDs and token on a hardware class's description."""
        info = json.loads(json.dumps(template))
        host = f"fleetsim-{i:05d}"
        info["name"] = host
        info["system"]["hostname"] = host
        for gpu in info.get("gpus", []):
            gpu["uuid"] = f"GPU-{i:08x}-{gpu.get('index', 0):04x}-fleet-sim{self.rng.getrandbits(48):012x}"
        if info.get("disk"):
            info["disk"]["path"] = f"/var/lib/ruckus-agent/{host}"
        info["detected_at"] = iso_now()
        parsed = AgentInfo.model_validate(info)
        return SimAgent(index=i, token=secrets.token_urlsafe(24), hw_class=hw_class, info=info,
                        info_body=json.dumps(info).encode(), capabilities_hash=parsed.capabilities_hash(),
                        interval=interval)

    def url_of(self, agent: SimAgent) -> str:
        """The agent's base URL (what it is registered at)."""
        return f"{self.base}/a/{agent.index}"

    # -- HTTP server (the agents' API) ---------------------------------------------------------------------

    async def start(self) -> None:
        """Serve every agent's API on one port (uvicorn, in this event loop)."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.args.agent_host, self.port))
        config = uvicorn.Config(self.asgi, interface="asgi3", lifespan="off", log_level="warning", access_log=False,
                                backlog=4096, timeout_keep_alive=60)
        self._server = uvicorn.Server(config)
        # The process's signals stay the driver's (Ctrl-C must reach the cleanup), not taken over by uvicorn.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self._serve_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._serve_task.done() or time.monotonic() > deadline:
                raise RuntimeError("the simulated agents' HTTP server did not start")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop heartbeats, jobs, the HTTP server and the client (each wait bounded)."""
        self.stopping = True
        tasks = [*self._hb_tasks, *self._job_tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if self._server is not None and self._serve_task is not None:
            self._server.should_exit = True
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._serve_task, timeout=10)
        for client in self.clients:
            await client.aclose()

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The agents' API: ``/a/<i>/api/v1/...`` routed to agent ``i`` (a bare ASGI app: the simulator's CPU counts).

        Args:
            scope: The ASGI scope.
            receive: The ASGI receive channel.
            send: The ASGI send channel.
        """
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        parts = scope["path"].strip("/").split("/")
        status, answer = 404, {"detail": "not found"}
        if len(parts) >= 4 and parts[0] == "a" and parts[1].isdigit() and parts[2:4] == ["api", "v1"]:
            i = int(parts[1])
            if i < len(self.agents):
                status, answer = await self._route(self.agents[i], scope, parts[4:], body)
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    async def _route(self, agent: SimAgent, scope: dict[str, Any], rest: list[str], body: bytes
                     ) -> tuple[int, Any]:
        """Answer one call of the server to an agent, as ``agent_runtime/api.py`` does."""
        method = scope["method"]
        if rest == ["health"]:
            return 200, {"status": "ok", "protocol_version": PROTOCOL_VERSION,
                         "activity": "busy" if agent.running else "idle", "registered": bool(agent.agent_id)}
        headers = dict(scope["headers"])
        if headers.get(b"authorization", b"") != f"Bearer {agent.token}".encode():
            self.errors.add("agent_api:unauthorized", f"{method} /{'/'.join(rest)} without the agent's token")
            return 401, {"detail": "missing or invalid bearer token"}
        key = f"{method} /{rest[0] if rest else ''}{'/…' if len(rest) > 1 else ''}"
        self.server_calls[key] += 1
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            self.errors.add("agent_api:bad_json", key)
            return 422, {"detail": "invalid JSON"}
        if method == "POST" and rest == ["register"]:
            return await self._register(agent, data)
        if rest in (["info"], ["info", "refresh"]):
            return 200, agent.info_body
        if rest == ["status"]:
            return 200, {"agent_id": agent.agent_id, "mode": "push", "activity": "busy" if agent.running else "idle",
                         "running_job_id": agent.running, "contact": {"server_url": agent.server_url},
                         "reported_at": iso_now()}
        if rest == ["jobs"] and method == "POST":
            return self._submit(agent, data)
        if rest == ["jobs"]:
            return 200, [self._summary(job) for job in agent.jobs.values()]
        if len(rest) >= 2 and rest[0] == "jobs":
            job = agent.jobs.get(rest[1])
            if job is None:
                return 404, {"detail": f"unknown job {rest[1]}"}
            if len(rest) == 2:
                return 200, self._report(agent, job)
            if rest[2] == "cancel" and method == "POST":
                if job.state == "running":
                    job.state = "cancelled"
                    if job.task is not None:
                        job.task.cancel()
                    agent.running = None
                return 202, self._report(agent, job)
            if rest[2] == "ack" and method == "POST":
                if job.state == "running":
                    return 409, {"detail": "job is still running"}
                del agent.jobs[rest[1]]
                return 204, b""
        return 404, {"detail": "not found"}

    async def _register(self, agent: SimAgent, data: dict[str, Any]) -> tuple[int, Any]:
        """``POST /register``: reach the server back with the challenge first, then answer the description."""
        self.register_calls += 1
        agent_id, server_url = str(data.get("agent_id", "")), str(data.get("server_url", "")).rstrip("/")
        challenge = data.get("challenge")
        if challenge:
            try:
                r = await self.client_of(agent, heartbeat=False).post(f"{server_url}/api/v1/agents/{agent_id}/reach/",
                                           json={"type": "agent.reach", "challenge": challenge})
                r.raise_for_status()
            except httpx.HTTPError as exc:
                self.errors.add("register:reach_failed", f"{type(exc).__name__}: {exc}")
                return 502, {"detail": "the server is unreachable", "server_url": server_url,
                             "reach_error": f"{type(exc).__name__}: {exc}"}
        agent.agent_id, agent.server_url, agent.credential = agent_id, server_url, str(data.get("credential", ""))
        agent.info["agent_id"] = agent_id
        agent.info_body = json.dumps(agent.info).encode()
        return 200, agent.info_body

    def _submit(self, agent: SimAgent, request: dict[str, Any]) -> tuple[int, Any]:
        """``POST /jobs``: accept (202) when idle, the same job again idempotently, 409 when busy."""
        job_id = str(request.get("job_id", ""))
        existing = agent.jobs.get(job_id)
        if existing is not None and existing.request.get("attempt") == request.get("attempt"):
            self.duplicate_submissions += 1
            return 202, self._report(agent, existing)
        if agent.running is not None:
            self.busy_refusals += 1
            return 409, {"detail": f"busy with job {agent.running}"}
        now = time.monotonic()
        job = SimJob(request=request, received_at=now)
        job.progress = self._progress(job, "queued", 0)
        agent.jobs[job_id] = job
        agent.running = job_id
        if job_id not in self.received:
            self.received[job_id] = now
            self.received_by_experiment[str(request.get("experiment_id"))] += 1
        job.task = asyncio.create_task(self._run_job(agent, job))
        self._job_tasks.add(job.task)
        job.task.add_done_callback(self._job_tasks.discard)
        return 202, self._report(agent, job)

    @staticmethod
    def _progress(job: SimJob, stage: str, run_index: int) -> dict[str, Any]:
        """A ``JobProgress`` of the job."""
        req = job.request
        return {"type": "job.progress", "job_id": req["job_id"], "attempt": req.get("attempt", 1),
                "attempt_token": req.get("attempt_token"), "status": job.state, "stage": stage, "run_index": run_index,
                "runs_total": req.get("runs_per_job", 1),
                "samples_done": 0, "samples_total": req.get("task", {}).get("params", {}).get("num_samples", 0),
                "updated_at": iso_now()}

    def _report(self, agent: SimAgent, job: SimJob) -> dict[str, Any]:
        """An ``AgentJobReport`` of the job (with its result once it ended)."""
        result = None
        if job.state == "completed":
            result = self._result(agent, job)
        elif job.state == "cancelled":
            result = self._ended_result(job, "cancelled", "cancelled by the server")
        return {"job_id": job.request["job_id"], "attempt": job.request.get("attempt", 1), "status": job.state,
                "progress": job.progress, "runs_finished": len((result or {}).get("runs", [])), "result": result}

    @staticmethod
    def _summary(job: SimJob) -> dict[str, Any]:
        """An ``AgentJobSummary`` of the job."""
        runs = job.request.get("runs_per_job", 1)
        return {"job_id": job.request["job_id"], "attempt": job.request.get("attempt", 1), "status": job.state,
                "runs_finished": runs if job.state == "completed" else 0, "runs_total": runs}

    # -- a job's life ---------------------------------------------------------------------------------------

    async def _run_job(self, agent: SimAgent, job: SimJob) -> None:
        """Wait half the job delay, report progress, wait the rest, deliver the result (retrying failures)."""
        delay = self.args.job_delay
        try:
            await asyncio.sleep(delay / 2)
            job.progress = self._progress(job, "warm_run", 2)
            await self._post(agent, f"/api/v1/jobs/{job.request['job_id']}/progress/",
                             json.dumps(job.progress).encode(), "progress", self.progress_latency)
            await asyncio.sleep(delay / 2)
            body = json.dumps(self._result(agent, job)).encode()
            job.state = "completed"
            job.progress = self._progress(job, "done", job.request.get("runs_per_job", 1))
            # The job is no longer running on the agent: it may take the next one while the result travels.
            agent.running = None
            for attempt in range(3):
                started = time.monotonic()
                if self.result_first_start is None:
                    self.result_first_start = started
                status = await self._post(agent, f"/api/v1/jobs/{job.request['job_id']}/result/", body,
                                          "result", self.result_latency)
                if status == 200:
                    self.results_accepted.add(job.request["job_id"])
                    self.result_last_end = time.monotonic()
                    return
                if status is not None and 400 <= status < 500:
                    return  # refused (409 stale attempt, 403): a replay would be refused the same way
                await asyncio.sleep(1.0 + attempt)
            self.errors.add("result:not_delivered", f"job {job.request['job_id']} after 3 tries")
        except asyncio.CancelledError:
            if agent.running == job.request["job_id"]:
                agent.running = None
            raise

    def client_of(self, agent: SimAgent, *, heartbeat: bool) -> httpx.AsyncClient:
        """The pool shard the agent's heartbeats, or its other calls, go through."""
        shards = self.hb_clients if heartbeat else self.job_clients
        return shards[agent.index % len(shards)]

    async def timed_post(self, agent: SimAgent, url: str, body: bytes, *, heartbeat: bool = False
                         ) -> tuple[httpx.Response, float, float]:
        """POST through the shared pool; return the answer, the time from the call, and the time on the wire.

        The time on the wire starts when the request's headers go out (an httpx trace event), so it leaves out the
        wait for a free connection of the pool: the server's own answer time, as the network sees it.
        """
        sent: list[float] = []

        async def trace(event: str, info: dict[str, Any]) -> None:
            if event == "http11.send_request_headers.started":
                sent.append(time.perf_counter())

        started = time.perf_counter()
        r = await self.client_of(agent, heartbeat=heartbeat).post(url, content=body, headers=agent.auth,
                                                                  extensions={"trace": trace})
        ended = time.perf_counter()
        return r, ended - started, ended - (sent[0] if sent else started)

    async def _post(self, agent: SimAgent, path: str, body: bytes, kind: str, latencies: WireLatencies
                    ) -> int | None:
        """POST a message to the server as the agent; count errors; return the status (None: no answer)."""
        try:
            r, total, wire = await self.timed_post(agent, f"{agent.server_url}{path}", body)
        except httpx.HTTPError as exc:
            self.errors.add(f"{kind}:{http_error_kind(exc)}", f"{path}: {exc}")
            return None
        latencies.add(total, wire)
        if r.status_code != 200:
            self.errors.add(f"{kind}:http_{r.status_code}", f"{path}: {r.text[:200]}")
        return r.status_code

    def _ended_result(self, job: SimJob, status: str, error: str) -> dict[str, Any]:
        """The result of a job that ended without runs (cancelled)."""
        req = job.request
        return {"type": "job.result", "protocol_version": PROTOCOL_VERSION, "job_id": req["job_id"],
                "attempt": req.get("attempt", 1), "attempt_token": req.get("attempt_token"), "status": status,
                "task": req["task"]["name"], "model": req["model"]["name"], "runtime": req["runtime"]["name"],
                "runs_per_job": req.get("runs_per_job", 1), "runs": [], "statistics_source": "none",
                "error": error, "finished_at": iso_now()}

    def _result(self, agent: SimAgent, job: SimJob) -> dict[str, Any]:
        """A realistic ``MultiRunJobResult``: a cold run and warm runs of every sample, with per-request timings.

        The same job and attempt always give the same result (its generator is seeded with them).
        """
        req = job.request
        rng = random.Random(f"{self.args.seed}:{req['job_id']}:{req.get('attempt', 1)}")
        now = job.received_at + time.time() - time.monotonic()
        runs_total = int(req.get("runs_per_job", 1))
        samples = int(req.get("task", {}).get("params", {}).get("num_samples", self.args.samples))
        gpus = agent.info.get("gpus") or []
        runs = []
        t = now
        for run_index in range(1, runs_total + 1):
            cold = run_index == 1
            sample_rows, ttfts, tpots, e2es, tokens = [], [], [], [], 0
            run_start = t
            for k in range(samples):
                out_tokens = rng.randint(120, 256)
                ttft = rng.uniform(0.05, 0.12) * (4 if cold and k == 0 else 1)
                tpot = rng.uniform(0.008, 0.02)
                gaps = [round(rng.gauss(tpot, tpot * 0.1), 6) for _ in range(out_tokens - 1)]
                e2e = ttft + sum(gaps)
                sample_rows.append({
                    "id": f"sample-{k}", "title": f"Article {k}",
                    "output": self.texts.outputs[rng.randrange(len(self.texts.outputs))],
                    "reference": self.texts.references[k % len(self.texts.references)],
                    "prompt_tokens": 600 + 37 * k, "output_tokens": out_tokens,
                    "metrics": {"e2e_latency_s": e2e, "ttft_s": ttft, "tpot_s": (e2e - ttft) / (out_tokens - 1)},
                    "request_sent_at": t, "first_token_at": t + ttft, "finished_at": t + e2e,
                    "inter_token_gaps_s": gaps, "finish_reason": "stop",
                })
                ttfts.append(ttft)
                tpots.append((e2e - ttft) / (out_tokens - 1))
                e2es.append(e2e)
                tokens += out_tokens
                t += e2e + 0.01
            wall = t - run_start
            metrics: dict[str, float | None] = {
                "e2e_latency_s": sum(e2es) / samples, "ttft_s": sum(ttfts) / samples, "tpot_s": sum(tpots) / samples,
                "output_tokens_per_s": tokens / wall, "output_tokens": float(tokens),
                "prompt_tokens": float(sum(600 + 37 * k for k in range(samples))), "run_wall_s": wall,
                "server_ttft_s": sum(ttfts) / samples * 0.9, "server_e2e_latency_s": sum(e2es) / samples * 0.97,
                "server_generation_tokens": float(tokens), "server_requests": float(samples),
            }
            if gpus:
                metrics.update({"gpu_utilization_pct": rng.uniform(60, 95), "gpu_power_w": rng.uniform(200, 650),
                                "energy_j": wall * rng.uniform(200, 650),
                                "peak_gpu_memory_bytes": float((gpus[0].get("memory_total_bytes") or 0) * 0.9)})
            runs.append({
                "type": "run.result", "run_index": run_index, "cold_start": cold,
                "started_at": datetime.fromtimestamp(run_start, UTC).isoformat(),
                "finished_at": datetime.fromtimestamp(t, UTC).isoformat(), "metrics": metrics,
                "unavailable_metrics": {} if gpus else {"gpu_power_w": "no GPU on this host"},
                "samples": sample_rows, "notes": [],
            })
        return {
            "type": "job.result", "protocol_version": PROTOCOL_VERSION, "job_id": req["job_id"],
            "attempt": req.get("attempt", 1), "attempt_token": req.get("attempt_token"), "status": "completed",
            "task": req["task"]["name"], "model": req["model"]["name"], "runtime": req["runtime"]["name"],
            "access_mode": "gray_box", "runs_per_job": runs_total, "runs": runs, "statistics": {},
            "statistics_source": "none", "cold_start": runs[0]["metrics"] if runs else None,
            "unavailable_metrics": {"model_load_s": "the vLLM server loads the model itself",
                                    "peak_rss_bytes": "the model lives in the vLLM server process"},
            "hardware_fingerprint": None, "started_at": runs[0]["started_at"] if runs else None,
            "finished_at": runs[-1]["finished_at"] if runs else None,
        }

    # -- heartbeats -----------------------------------------------------------------------------------------

    def start_heartbeats(self, agent: SimAgent) -> None:
        """Start the agent's heartbeat loop at a random offset within its interval (spreads the load evenly)."""
        task = asyncio.create_task(self._heartbeat_loop(agent, self.rng.uniform(0, agent.interval)))
        self._hb_tasks.append(task)

    def _heartbeat_body(self, agent: SimAgent) -> bytes:
        """The agent's heartbeat, as the real agent builds it."""
        job = agent.jobs.get(agent.running) if agent.running else None
        req = job.request if job else {}
        return json.dumps({
            "type": "agent.heartbeat", "protocol_version": PROTOCOL_VERSION, "agent_id": agent.agent_id,
            "activity": "busy" if job else "idle", "running_job_id": req.get("job_id"),
            "attempt": req.get("attempt"), "attempt_token": req.get("attempt_token"),
            "progress": job.progress if job else None, "capabilities_hash": agent.capabilities_hash,
            "finished_job_ids": [], "sent_at": iso_now(),
        }).encode()

    async def _heartbeat_loop(self, agent: SimAgent, offset: float) -> None:
        """Beat every interval (one at a time, as a real agent does: a slow answer delays the next beat)."""
        loop = asyncio.get_running_loop()
        await asyncio.sleep(offset)
        due = loop.time()
        url = f"{agent.server_url}/api/v1/agents/{agent.agent_id}/heartbeat/"
        while not self.stopping:
            counted = self.hb_window
            if counted:
                self.hb_sent += 1
            try:
                r, total, wire = await self.timed_post(agent, url, self._heartbeat_body(agent), heartbeat=True)
                if r.status_code == 200:
                    self.hb_total_ok += 1
                    if counted:
                        self.hb_ok += 1
                        self.hb_latency.add(total, wire)
                    await self._heartbeat_answer(agent, r.json())
                else:
                    self.errors.add(f"heartbeat:http_{r.status_code}", r.text[:200])
                    if counted:
                        self.hb_errors += 1
            except (httpx.HTTPError, ValueError) as exc:
                self.errors.add(f"heartbeat:{http_error_kind(exc)}", str(exc))
                if counted:
                    self.hb_errors += 1
            due += agent.interval
            delay = due - loop.time()
            if delay < 0:
                due = loop.time()  # behind: beat again at once, without trying to catch up the missed beats
            await asyncio.sleep(max(0.0, delay))

    async def _heartbeat_answer(self, agent: SimAgent, answer: dict[str, Any]) -> None:
        """Follow the answer: a longer interval the server asks for, a capabilities push when its copy is stale."""
        asked = answer.get("heartbeat_interval_s")
        if isinstance(asked, int | float) and asked > agent.interval:
            self.hb_longer_interval[str(agent.agent_id)] = float(asked)
            agent.interval = float(asked)
        if answer.get("refresh_capabilities"):
            self.capability_pushes += 1
            await self._post(agent, f"/api/v1/agents/{agent.agent_id}/capabilities/", json.dumps(agent.info).encode(),
                             "capabilities", WireLatencies())


# ---------------------------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds of each process and the machine's busy share over a phase (who used the cores, and were they full).

    Args:
        server: The server under test (None: only the simulator and the machine are measured).
    """

    def __init__(self, server: ServerUnderTest | None) -> None:
        self.server = server
        self._start: tuple[dict[str, float], float, float] | None = None

    def _snapshot(self) -> tuple[dict[str, float], float, float]:
        """Per-process CPU seconds, and the machine's busy and total CPU seconds."""
        per: dict[str, float] = {}
        if self.server is not None:
            per = {name: res["cpu_s"] for name, res in self.server.resources(precise=True).items()}
        per["simulator"] = sum(psutil.Process().cpu_times()[:2])
        times = psutil.cpu_times()
        total = sum(times)
        idle = times.idle + getattr(times, "iowait", 0.0)
        return per, total - idle, total

    def start(self) -> None:
        """Begin a phase."""
        self._start = self._snapshot()

    def stop(self) -> dict[str, Any]:
        """End the phase: CPU seconds per process and the machine's busy percentage since :meth:`start`."""
        if self._start is None:
            return {}
        (before, busy0, total0), (after, busy1, total1) = self._start, self._snapshot()
        self._start = None
        return {"cpu_s": {k: round(v - before.get(k, 0.0), 1) for k, v in after.items()},
                "machine_busy_pct": round(100 * (busy1 - busy0) / max(1e-9, total1 - total0))}


class Driver:
    """Runs the phases against the server and collects their figures.

    Args:
        args: The command line.
        base: The server's URL.
        token: A fleet admin's API token.
        fleet: The simulated agents.
        errors: The run's error counter.
        server: The server under test when this process started it (None for ``--url``).
    """

    def __init__(self, args: argparse.Namespace, base: str, token: str, fleet: Fleet, errors: Errors,
                 server: ServerUnderTest | None) -> None:
        self.args = args
        self.base = base.rstrip("/")
        self.fleet = fleet
        self.errors = errors
        self.server = server
        # The driver's own calls (a user's) use a pool of their own, so they never queue behind the agents' calls.
        self.api = httpx.AsyncClient(base_url=f"{self.base}/api/v1", headers={"Authorization": f"Token {token}"},
                                     timeout=args.request_timeout * 4)
        self.figures: dict[str, dict[str, Any]] = {}
        self.experiments: list[dict[str, Any]] = []
        self.expected_jobs = 0
        self._scoring_failed: set[Any] = set()
        self.cpu = CpuMeter(server)

    async def close(self) -> None:
        """Close the driver's client."""
        await self.api.aclose()

    def check_processes(self, phase: str) -> None:
        """Count a server or scheduler process that died as an error of the phase."""
        if self.server is None:
            return
        for name in self.server.dead():
            kind = f"{phase}:process_died:{name}"
            if kind not in self.errors.counts:
                self.errors.add(kind, self.server.log_tail(name, 500))

    async def check_online(self, phase: str) -> None:
        """Count as an error of the phase every registered agent the server no longer sees online.

        The simulated agents heartbeat all along, so an agent the server marked unreachable or offline means
        heartbeats arrived too late (or not at all) for the server's liveness rules.
        """
        registered = sum(1 for a in self.fleet.agents if a.credential)
        try:
            r = await self.api.get("/agents/", params={"status": "online", "limit": 1})
            r.raise_for_status()
            online = int(r.json()["count"])
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.errors.add(f"{phase}:poll_{http_error_kind(exc)}", f"counting online agents: {exc}")
            return
        if online < registered:
            self.errors.add(f"{phase}:agents_not_online", f"{registered - online} of {registered} agents are not "
                            "online on the server (their heartbeats arrived late or not at all)")

    # -- registration ---------------------------------------------------------------------------------------

    async def register(self) -> None:
        """Register every agent through ``POST /api/v1/agents/``; start each one's heartbeats once registered."""
        sem = asyncio.Semaphore(self.args.register_concurrency)
        latency = Latencies()
        registered = 0

        async def one(agent: SimAgent) -> None:
            nonlocal registered
            async with sem:
                started = time.perf_counter()
                try:
                    r = await self.api.post("/agents/", json={"url": self.fleet.url_of(agent), "token": agent.token})
                except httpx.HTTPError as exc:
                    self.errors.add(f"register:{http_error_kind(exc)}", str(exc))
                    return
                latency.add(time.perf_counter() - started)
                if r.status_code != 201:
                    self.errors.add(f"register:http_{r.status_code}", r.text[:300])
                    return
                if r.json().get("id") != agent.agent_id or not agent.credential:
                    self.errors.add("register:mismatch", f"server id {r.json().get('id')} vs {agent.agent_id}")
                    return
                registered += 1
                self.fleet.start_heartbeats(agent)

        say(f"registering {len(self.fleet.agents)} agents")
        self.cpu.start()
        started = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*(one(a) for a in self.fleet.agents)), timeout=self.args.timeout)
        elapsed = time.monotonic() - started
        cpu = self.cpu.stop()
        fingerprints = await self._fingerprints()
        self.check_processes("register")
        await self.check_online("register")
        self.figures["register"] = {
            "agents": registered, "seconds": round(elapsed, 2), "agents_per_s": round(registered / elapsed, 1),
            "latency": latency.summary_ms(), "hardware_fingerprints": fingerprints,
            "info_bytes": len(self.fleet.agents[0].info_body) if self.fleet.agents else 0,
            "errors": self.errors.of("register:"), **cpu,
        }

    async def _fingerprints(self) -> int | None:
        """How many hardware fingerprints the registered agents have on the server (first page of 1000)."""
        try:
            r = await self.api.get("/agents/", params={"limit": 1000})
            r.raise_for_status()
            return len({row.get("hardware_fingerprint") for row in r.json()["results"]})
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.errors.add(f"register:{http_error_kind(exc)}", f"listing agents: {exc}")
            return None

    # -- heartbeats -----------------------------------------------------------------------------------------

    async def heartbeats(self) -> None:
        """Measure the heartbeats of ``--duration`` s (they run anyway; this opens the measuring window)."""
        fleet = self.fleet
        fleet.hb_latency, fleet.hb_sent, fleet.hb_ok, fleet.hb_errors = WireLatencies(), 0, 0, 0
        fleet.hb_window = True
        say(f"measuring heartbeats for {self.args.duration:g} s")
        self.cpu.start()
        started = time.monotonic()
        await asyncio.sleep(self.args.duration)
        fleet.hb_window = False
        elapsed = time.monotonic() - started
        cpu = self.cpu.stop()
        self.check_processes("heartbeat")
        await self.check_online("heartbeat")
        offered = self.args.heartbeat_rate
        self.figures["hb"] = {
            "seconds": round(elapsed, 1), "offered_per_s": round(offered, 1),
            "sent": fleet.hb_sent, "sent_per_s": round(fleet.hb_sent / elapsed, 1), "ok": fleet.hb_ok,
            "achieved_per_s": round(fleet.hb_ok / elapsed, 1),
            "latency": fleet.hb_latency.summary_ms(),
            # The window's failed beats, and what the checks after it found (a dead process, agents not online).
            "errors": fleet.hb_errors + self.errors.of("heartbeat:process_died") +
            self.errors.of("heartbeat:agents_not_online"),
            "server_asked_longer_interval": {"agents": len(fleet.hb_longer_interval),
                                             "interval_s": max(fleet.hb_longer_interval.values(), default=None)},
            "capability_pushes": fleet.capability_pushes, **cpu,
        }

    # -- jobs: create, dispatch, ingest ---------------------------------------------------------------------

    def _experiment_shapes(self) -> tuple[list[list[str]], int]:
        """The experiments that make about ``--jobs`` jobs: their model lists, and how many agents each uses."""
        agents = len([a for a in self.fleet.agents if a.credential])
        if agents == 0:
            raise RuntimeError("no agent is registered: nothing to run jobs on")
        models_needed = max(1, math.ceil(self.args.jobs / agents))
        if models_needed > MAX_MODELS_PER_EXPERIMENT * 10:
            raise RuntimeError(f"{self.args.jobs} jobs on {agents} agents needs {models_needed} models; at most "
                               f"{MAX_MODELS_PER_EXPERIMENT * 10} (10 experiments) are supported")
        per_agent = math.ceil(self.args.jobs / models_needed)
        agents_used = min(agents, per_agent)
        groups = [MODEL_NAMES[:MAX_MODELS_PER_EXPERIMENT]] * (models_needed // MAX_MODELS_PER_EXPERIMENT)
        if models_needed % MAX_MODELS_PER_EXPERIMENT:
            groups.append(MODEL_NAMES[:models_needed % MAX_MODELS_PER_EXPERIMENT])
        return groups, agents_used

    async def run_jobs(self, phases: set[str]) -> None:
        """Create the experiment(s), wait until agents received every job, then until every result is scored."""
        groups, agents_used = self._experiment_shapes()
        registered = [a for a in self.fleet.agents if a.credential]
        if agents_used >= len(registered) or agents_used > 1000:
            selection: dict[str, Any] = {"all": True}
            agents_used = len(registered)
        else:
            selection = {"ids": [a.agent_id for a in registered[:agents_used]]}
        self.cpu.start()
        t0 = time.monotonic()
        create_s: list[float] = []
        for n, models in enumerate(groups):
            started = time.perf_counter()
            r = await self.api.post("/experiments/", json={
                "name": f"fleetsim {n + 1}/{len(groups)}",
                "task": {"name": "wikipedia_summarization",
                         "params": {"num_samples": self.args.samples, "max_new_tokens": 256, "seed": 7}},
                "models": [{"name": m} for m in models],
                "runtimes": [{"name": "vllm", "params": {}}],
                "agents": selection,
                "runs_per_job": self.args.runs + 1,
            })
            create_s.append(time.perf_counter() - started)
            if r.status_code != 201:
                self.errors.add(f"dispatch:create_http_{r.status_code}", r.text[:500])
                raise RuntimeError(f"experiment creation failed ({r.status_code}): {r.text[:500]}")
            exp = r.json()
            count = int((exp.get("plan") or {}).get("job_count") or sum((exp.get("job_counts") or {}).values()))
            unrunnable = (exp.get("plan") or {}).get("unrunnable") or []
            if unrunnable:
                self.errors.add("dispatch:unrunnable", json.dumps(unrunnable)[:300])
            self.experiments.append({"id": exp["id"], "jobs": count})
        self.expected_jobs = sum(e["jobs"] for e in self.experiments)
        ids = {str(e["id"]) for e in self.experiments}
        how = (f"{len(groups)} experiment(s) x {len(groups[0])} model(s) x 1 runtime (vllm) x {agents_used} agents"
               f" = {self.expected_jobs} jobs")

        # Dispatch: every job received by an agent (counted on the agent side).
        deadline = t0 + self.args.timeout
        first: float | None = None
        # The first wave (one job per agent used) is dispatch alone; later waves wait for the earlier jobs to end.
        wave_size = min(self.expected_jobs, agents_used)
        wave_done: float | None = None
        say(f"dispatch: {how}; created in {sum(create_s):.2f} s")
        while time.monotonic() < deadline:
            got = sum(self.fleet.received_by_experiment[i] for i in ids)
            if got and first is None:
                first = time.monotonic()
            if got >= wave_size and wave_done is None:
                wave_done = time.monotonic()
            if got >= self.expected_jobs:
                break
            self.check_processes("dispatch")
            await asyncio.sleep(0.05)
        received = sum(self.fleet.received_by_experiment[i] for i in ids)
        all_received = time.monotonic()
        cpu = self.cpu.stop()
        self.cpu.start()  # the ingest phase's share
        if received < self.expected_jobs:
            self.errors.add("dispatch:timeout", f"{received}/{self.expected_jobs} jobs received in "
                            f"{self.args.timeout:g} s")
        waves = math.ceil(self.expected_jobs / max(1, agents_used))
        if "dispatch" in phases:
            self.figures["dispatch"] = {
                "jobs": self.expected_jobs, "how": how, "create_s": round(sum(create_s), 2),
                "received": received, "first_received_s": round((first or all_received) - t0, 2),
                "all_received_s": round(all_received - t0, 2),
                "jobs_per_s": round(received / max(1e-9, all_received - t0), 1),
                "first_wave_jobs": wave_size,
                "first_wave_s": round(wave_done - t0, 2) if wave_done else None,
                "first_wave_jobs_per_s": round(wave_size / max(1e-9, wave_done - t0), 1) if wave_done else None,
                "waves": waves, "busy_refusals": self.fleet.busy_refusals,
                "duplicate_submissions": self.fleet.duplicate_submissions,
                "errors": self.errors.of("dispatch:"), **cpu,
            }
            if waves > 1:
                self.figures["dispatch"]["note"] = (f"{waves} waves (one job per agent at a time): includes "
                                                    f"{waves - 1} x --job-delay and result ingest")
        await self._wait_scored(t0, phases)

    async def _wait_scored(self, t0: float, phases: set[str]) -> None:
        """Wait until every job is completed with ROUGE-scored results readable through the API."""
        say("waiting for every result to be stored and scored")
        deadline = t0 + self.args.timeout
        fleet = self.fleet
        done_at: float | None = None
        while time.monotonic() < deadline:
            self.check_processes("ingest")
            # A count of ended jobs first (one small query each); the results themselves only once all have ended.
            ended = await self._ended_jobs()
            if ended is not None and ended >= self.expected_jobs and await self._all_scored():
                done_at = time.monotonic()
                break
            await asyncio.sleep(POLL_S)
        cpu = self.cpu.stop()
        await self.check_online("ingest")
        jobs_status = await self._job_counts()
        completed = jobs_status.get("completed", 0)
        if done_at is None or completed < self.expected_jobs:
            self.errors.add("ingest:jobs_not_done", f"job statuses {jobs_status} of {self.expected_jobs} jobs")
        if "ingest" not in phases:
            return
        posted_span = ((fleet.result_last_end or 0) - (fleet.result_first_start or 0)) or 1e-9
        accepted = len(fleet.results_accepted)
        self.figures["ingest"] = {
            "results_accepted": accepted,
            "results_per_s": round(accepted / posted_span, 1) if accepted else 0.0,
            "post_latency": fleet.result_latency.summary_ms(),
            "progress_latency": fleet.progress_latency.summary_ms(),
            "result_bytes": len(json.dumps(self._sample_result())),
            "scored_after_last_result_s": (round(done_at - fleet.result_last_end, 2)
                                           if done_at and fleet.result_last_end else None),
            "scored_after_create_s": round(done_at - t0, 2) if done_at else None,
            "job_statuses": jobs_status,
            "errors": self.errors.of("ingest:") + self.errors.of("result:") + self.errors.of("progress:"), **cpu,
        }

    def _sample_result(self) -> dict[str, Any]:
        """A result like the ones posted (for its size)."""
        agent = self.fleet.agents[0]
        req = {"job_id": "1", "attempt": 1, "attempt_token": "x" * 32, "runs_per_job": self.args.runs + 1,
               "task": {"name": "wikipedia_summarization", "params": {"num_samples": self.args.samples}},
               "model": {"name": MODEL_NAMES[0]}, "runtime": {"name": "vllm"}}
        return self.fleet._result(agent, SimJob(request=req, received_at=0))

    async def _ended_jobs(self) -> int | None:
        """How many jobs of the experiments have ended (``count`` of a one-row page), None when a poll failed."""
        total = 0
        for exp in self.experiments:
            try:
                r = await self.api.get("/jobs/", params={"experiment": exp["id"], "limit": 1,
                                                         "status": ",".join(sorted(TERMINAL_JOB_STATUSES))})
                r.raise_for_status()
                total += int(r.json()["count"])
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                self.errors.add(f"ingest:poll_{http_error_kind(exc)}", str(exc))
                return None
        return total

    async def _job_counts(self) -> dict[str, int]:
        """Jobs per status over the experiments (from the experiment detail's ``job_counts``)."""
        total: Counter[str] = Counter()
        for exp in self.experiments:
            try:
                r = await self.api.get(f"/experiments/{exp['id']}/")
                r.raise_for_status()
                total.update(r.json().get("job_counts") or {})
            except (httpx.HTTPError, ValueError) as exc:
                self.errors.add(f"ingest:poll_{http_error_kind(exc)}", str(exc))
        return dict(total)

    async def _all_scored(self) -> bool:
        """Every job of every experiment is completed and its statistics carry ROUGE.

        A server that scores off the request path says so: a ``scoring`` count on the experiment's results and a
        ``scoring_status`` per job (``scoring``, then ``scored`` or ``failed``); a server that scores while it stores
        has neither. A job whose scoring failed is an error, and done.
        """
        for exp in self.experiments:
            try:
                r = await self.api.get(f"/experiments/{exp['id']}/results/")
                r.raise_for_status()
                data = r.json()
                jobs = data["jobs"]
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                self.errors.add(f"ingest:poll_{http_error_kind(exc)}", str(exc))
                return False
            if data.get("scoring"):
                return False
            for job in jobs:
                scoring = job.get("scoring_status")
                if scoring == "failed":
                    if job.get("job") not in self._scoring_failed:
                        self._scoring_failed.add(job.get("job"))
                        self.errors.add("ingest:scoring_failed", f"job {job.get('job')}: {job.get('scoring_error')}")
                    continue
                if job.get("status") != "completed" or scoring not in (None, "scored"):
                    return False
                if "rouge1" not in (job.get("statistics") or {}):
                    return False
        return True

    # -- reads ----------------------------------------------------------------------------------------------

    def read_paths(self) -> dict[str, str]:
        """The read requests measured, by label."""
        exp = self.experiments[0]["id"] if self.experiments else None
        paths = {"agents?limit=50": "/api/v1/agents/?limit=50"}
        if exp is not None:
            paths = {
                "jobs?experiment&limit=50": f"/api/v1/jobs/?experiment={exp}&limit=50",
                "jobs?experiment&limit=1000": f"/api/v1/jobs/?experiment={exp}&limit=1000",
                **paths,
                "experiment detail": f"/api/v1/experiments/{exp}/",
                "experiment results": f"/api/v1/experiments/{exp}/results/",
                "export csv": f"/api/v1/experiments/{exp}/export/?format=csv",
                "export json": f"/api/v1/experiments/{exp}/export/?format=json",
            }
        return paths

    async def reads(self) -> None:
        """Time each read request (``--read-repeats`` times, one after another) and count its SQL queries."""
        rows: dict[str, dict[str, Any]] = {}
        paths = self.read_paths()
        say(f"timing {len(paths)} read requests")
        for label, path in paths.items():
            latency = Latencies()
            size, status = 0, None
            spent = 0.0
            for _ in range(self.args.read_repeats):
                if spent > READ_BUDGET_S:
                    break  # timed at least once; a request this slow is not repeated
                started = time.perf_counter()
                try:
                    # Streamed and counted, not kept: an export is tens of MB.
                    async with self.api.stream("GET", path.removeprefix("/api/v1")) as r:
                        size = 0
                        async for chunk in r.aiter_raw():
                            size += len(chunk)
                        status = r.status_code
                except httpx.HTTPError as exc:
                    self.errors.add(f"read:{http_error_kind(exc)}", f"{path}: {exc}")
                    spent += time.perf_counter() - started
                    continue
                elapsed = time.perf_counter() - started
                spent += elapsed
                latency.add(elapsed)
                if status != 200:
                    self.errors.add(f"read:http_{status}", path)
            rows[label] = {"path": path, "status": status, "bytes": size, "latency": latency.summary_ms(),
                           "queries": None}
        if self.server is not None:
            try:
                counts = await asyncio.to_thread(self.server.query_counts, list(paths.values()))
                for row in rows.values():
                    found = counts.get(row["path"]) or {}
                    row["queries"] = found.get("queries")
                    if found.get("status") not in (200, None):
                        self.errors.add(f"read:queries_http_{found.get('status')}", row["path"])
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                self.errors.add("read:query_count_failed", str(exc)[-500:])
        self.check_processes("read")
        await self.check_online("read")
        self.figures["read"] = {"requests": rows, "errors": self.errors.of("read:")}


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def _ms(summary: dict[str, Any]) -> str:
    """``p50/p99 ms`` of a latency summary (of both, for an agent call's: on the wire, then with the pool wait)."""
    if "wire" in summary:
        if not summary["wire"].get("n"):
            return "-"
        return (f"{_ms(summary['wire'])}; with pool wait {summary['total']['p50_ms']:.1f} / "
                f"{summary['total']['p99_ms']:.1f} ms")
    if not summary.get("n"):
        return "-"
    return f"{summary['p50_ms']:.1f} / {summary['p99_ms']:.1f} ms (n={summary['n']})"


def _cpu(figures: dict[str, Any]) -> tuple[str, str, str]:
    """The table row of a phase's CPU use."""
    per = figures.get("cpu_s") or {}
    used = ", ".join(f"{name} {seconds:g}" for name, seconds in per.items())
    return ("", "CPU s (machine busy)", f"{used} ({figures.get('machine_busy_pct', '-')}% of all cores)")


def render(report: dict[str, Any]) -> str:
    """The figures as a plain-text table.

    Args:
        report: What :func:`main` collected.

    Returns:
        The table.
    """
    rows: list[tuple[str, str, str]] = []
    f = report["figures"]
    if "register" in f:
        r = f["register"]
        rows += [("register", "agents registered", f"{r['agents']} in {r['seconds']} s = {r['agents_per_s']}/s"),
                 ("", "POST /agents/ p50/p99", _ms(r["latency"])),
                 ("", "hardware fingerprints", str(r["hardware_fingerprints"])),
                 ("", "AgentInfo size", f"{r['info_bytes']} bytes"),
                 _cpu(r),
                 ("", "errors", str(r["errors"]))]
    if "hb" in f:
        h = f["hb"]
        longer = h["server_asked_longer_interval"]
        rate = f"{h['offered_per_s']}/s / {h['sent_per_s']}/s / {h['achieved_per_s']}/s over {h['seconds']} s"
        rows += [("hb", "offered / sent / answered", rate),
                 ("", "heartbeat p50/p99", _ms(h["latency"])),
                 ("", "server asked longer interval",
                  f"{longer['agents']} agents ({longer['interval_s']} s)" if longer["agents"] else "no"),
                 _cpu(h),
                 ("", "errors", str(h["errors"]))]
    if "dispatch" in f:
        d = f["dispatch"]
        rows += [("dispatch", "jobs", d["how"]),
                 ("", "experiment create", f"{d['create_s']} s"),
                 ("", "first / all received", f"{d['first_received_s']} s / {d['all_received_s']} s after create"),
                 ("", "dispatch rate", f"{d['jobs_per_s']} jobs/s ({d['received']} received, {d['waves']} wave(s))"),
                 ("", "first wave", f"{d['first_wave_jobs']} jobs in {d['first_wave_s']} s = "
                                    f"{d['first_wave_jobs_per_s']} jobs/s (dispatch alone)"),
                 ("", "409 busy / resubmitted", f"{d['busy_refusals']} / {d['duplicate_submissions']}"),
                 _cpu(d),
                 ("", "errors", str(d["errors"]))]
        if d.get("note"):
            rows.append(("", "note", d["note"]))
    if "ingest" in f:
        g = f["ingest"]
        rows += [("ingest", "results accepted", f"{g['results_accepted']} at {g['results_per_s']}/s "
                                                f"({g['result_bytes'] // 1024} KB each)"),
                 ("", "result post p50/p99", _ms(g["post_latency"])),
                 ("", "progress post p50/p99", _ms(g["progress_latency"])),
                 ("", "all scored", f"{g['scored_after_last_result_s']} s after the last result, "
                                    f"{g['scored_after_create_s']} s after create"),
                 _cpu(g),
                 ("", "errors", str(g["errors"]))]
    if "read" in f:
        first = True
        for label, row in f["read"]["requests"].items():
            queries = "-" if row["queries"] is None else str(row["queries"])
            rows.append(("read" if first else "", label,
                         f"{_ms(row['latency'])}, {queries} queries, {row['bytes'] // 1024} KB"))
            first = False
        rows.append(("", "errors", str(f["read"]["errors"])))
    for name, res in report.get("processes", {}).items():
        rows.append(("rss", name, f"{res['rss_mb']} MB, {res['cpu_s']} CPU s"
                                  + (f", {res['processes']} processes" if res.get("processes", 1) > 1 else "")))
    rows.append(("errors", "total", str(report["errors"]["total"])))
    for kind, n in sorted(report["errors"]["by_kind"].items()):
        rows.append(("", kind, str(n)))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"fleet_sim: {report['config_line']}", "-" * (w0 + w1 + 50)]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``--short`` sets the CI sizes unless given explicitly)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", default=str(SELF_REPO), help="checkout whose server is measured (default: this one)")
    p.add_argument("--url", help="measure this running server instead of starting one (needs --token)")
    p.add_argument("--token", help="a fleet admin's API token for --url")
    p.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    p.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    p.add_argument("--schedulers", type=int, default=1, help="manage.py run_scheduler processes (default 1)")
    p.add_argument("--scheduler-interval", type=float, default=1.0, help="run_scheduler --interval (default 1)")
    p.add_argument("--scoring-workers", type=int, default=0,
                   help="manage.py run_scoring_worker processes, where the checkout has it (default 0)")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="server setting (repeatable)")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                   help="Postgres maintenance database to create the private database from")
    p.add_argument("--redis-db", type=int, default=13, help="Redis database number (default 13)")
    p.add_argument("--no-redis", action="store_true", help="run the server without Redis")
    p.add_argument("--agents", type=int, help="simulated agents (default 1000; --short 50)")
    p.add_argument("--jobs", type=int, help="jobs to run (default 1000; --short 100)")
    p.add_argument("--duration", type=float, help="seconds of measured heartbeats (default 30; --short 5)")
    p.add_argument("--heartbeat-rate", type=float, help="heartbeats per second over all agents (default agents/5)")
    p.add_argument("--job-delay", type=float, default=1.0, help="seconds a job takes on its agent (default 1)")
    p.add_argument("--runs", type=int, default=3, help="warm runs per job, after the cold run (default 3)")
    p.add_argument("--samples", type=int, default=5, help="samples per run (default 5)")
    p.add_argument("--hw-classes", type=int, default=4, help="hardware classes (default 4)")
    p.add_argument("--phases", default=",".join(PHASES), help=f"figures to produce (default {','.join(PHASES)})")
    p.add_argument("--short", action="store_true", help="CI sizes: 50 agents, 100 jobs, 5 s (< 2 minutes)")
    p.add_argument("--connections", type=int, default=64,
                   help="connections of the agents' pool to the server, in all (default 64)")
    p.add_argument("--register-concurrency", type=int, default=8, help="registrations in flight (default 8)")
    p.add_argument("--request-timeout", type=float, default=30.0, help="seconds per agent request (default 30)")
    p.add_argument("--read-repeats", type=int, help="times each read request is timed (default 5; --short 3)")
    p.add_argument("--timeout", type=float,
                   help="longest wait of a phase in seconds, only to bound it (default 1800; --short 240)")
    p.add_argument("--agent-host", default="127.0.0.1", help="address the simulated agents listen on")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--keep-logs", action="store_true", help="keep the server's logs (kept anyway after errors)")
    args = p.parse_args(argv)
    short = args.short
    args.agents = args.agents or (50 if short else 1000)
    args.jobs = args.jobs or (100 if short else 1000)
    args.duration = args.duration if args.duration is not None else (5.0 if short else 30.0)
    args.heartbeat_rate = args.heartbeat_rate or args.agents / DEFAULT_HEARTBEAT_INTERVAL_S
    args.read_repeats = args.read_repeats or (3 if short else 5)
    # Generous: a timeout is an error, and speed must never fail a run (a loaded CI host is slow, not broken).
    args.timeout = args.timeout or (240.0 if short else 1800.0)
    chosen = {x.strip() for x in args.phases.split(",") if x.strip()}
    unknown = chosen - set(PHASES) - {"register"}
    if unknown:
        p.error(f"unknown phase(s) {', '.join(sorted(unknown))}; known: register, {', '.join(PHASES)}")
    args.phase_set = chosen - {"register"}
    if args.url and not args.token:
        p.error("--url needs --token (a fleet admin's API token)")
    if args.agents < 1 or args.jobs < 1 or args.heartbeat_rate <= 0:
        p.error("--agents, --jobs and --heartbeat-rate must be positive")
    return args


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start everything, run the phases, stop everything; return the report.

    Args:
        args: The command line.
        workdir: Where logs go.
    """
    errors = Errors()
    server: ServerUnderTest | None = None
    fleet: Fleet | None = None
    driver: Driver | None = None
    report: dict[str, Any] = {"figures": {}}
    try:
        if args.url:
            base, token = args.url, args.token
        else:
            server = ServerUnderTest(args, workdir, errors)
            say(f"creating database {server.db_name}, migrating, detecting the agents' hardware")
            # Detection (a few seconds, mostly torch's import) runs while the database is migrated.
            detection = asyncio.create_task(asyncio.to_thread(detect_templates, args.hw_classes))
            await asyncio.to_thread(server.prepare)
            say(f"starting {args.server} x{args.workers} and {args.schedulers} scheduler(s) on {server.base}")
            server.start()
            templates = await detection
            await server.wait_ready(120)
            base, token = server.base, server.token
        if server is None:
            templates = await asyncio.to_thread(detect_templates, args.hw_classes)
        fleet = Fleet(args, templates, errors)
        await fleet.start()
        driver = Driver(args, base, token, fleet, errors, server)
        await driver.register()
        if "hb" in args.phase_set:
            await driver.heartbeats()
        if args.phase_set & {"dispatch", "ingest", "read"}:
            await driver.run_jobs(args.phase_set)
        if "read" in args.phase_set:
            await driver.reads()
        report["figures"] = driver.figures
        report["heartbeats_ok_total"] = fleet.hb_total_ok
        report["server_calls_to_agents"] = dict(fleet.server_calls)
        report["processes"] = server.resources() if server is not None else {}
        me = psutil.Process()
        report["processes"]["simulator"] = {"rss_mb": round(me.memory_info().rss / 2**20, 1),
                                            "cpu_s": round(sum(me.cpu_times()[:2]), 1), "processes": 1}
    finally:
        # Each step runs even when an earlier one fails (main() stops a server left running as a last resort).
        if driver is not None:
            report["figures"] = driver.figures
            with contextlib.suppress(Exception):
                await driver.close()
        if fleet is not None:
            with contextlib.suppress(Exception):
                await fleet.stop()
        if server is not None:
            say("stopping the server and dropping its database")
            await asyncio.to_thread(server.close)
        report["errors"] = {"total": errors.total, "by_kind": dict(errors.counts), "examples": errors.examples}
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table; 1 when any error happened, 0 otherwise."""
    args = parse_args(argv)

    def _terminate(signum: int, frame: Any) -> None:
        # SIGTERM takes the same way out as Ctrl-C: every finally block runs (processes, database).
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="ruckus-fleetsim-"))
    target = args.url or f"{args.server} x{args.workers}, {args.schedulers} scheduler(s), repo {args.repo}"
    config_line = (f"{target}; {args.agents} agents, {args.jobs} jobs, {args.duration:g} s heartbeats at "
                   f"{args.heartbeat_rate:g}/s, job delay {args.job_delay:g} s, {args.runs}+1 runs x "
                   f"{args.samples} samples" + (f", env {' '.join(args.env)}" if args.env else ""))
    failed = True
    try:
        report = asyncio.run(run(args, workdir))
        report["config_line"] = config_line
        report["config"] = {k: v for k, v in vars(args).items() if k != "phase_set"}
        print(render(report))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2, default=str))
        for kind, examples in report["errors"]["examples"].items():
            for example in examples:
                print(f"  {kind}: {example}", file=sys.stderr)
        failed = report["errors"]["total"] > 0
    except KeyboardInterrupt:
        print("interrupted: processes stopped, database dropped", file=sys.stderr)
    except Exception as exc:
        print(f"fleet_sim failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        for server in _STARTED:
            server.close()  # a no-op unless the cleanup in run() was cut short (a second Ctrl-C)
        if failed or args.keep_logs:
            print(f"logs: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
