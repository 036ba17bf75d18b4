"""Shared set-up of the server benchmarks: a throwaway Postgres database with the schema, and a fake fleet.

The benchmarks run the server's own code (services, views) in-process against a real Postgres database that they
create (``<prefix>_<pid>``) and drop when they finish, so they never touch a developer's or the test suite's data.
The agents are rows only (no agent process): realistic capabilities built with the test suite's
:func:`tests.factories.agent_info`, on a mix of CPU and GPU hosts with local copies of the experiment's models.

Environment: ``BENCH_ADMIN_URL`` (default ``postgres://postgres@127.0.0.1:5432/postgres``) is where the database is
created and dropped.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Where benchmark databases are created and dropped.
DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"

#: The experiment's models, each with a parameter count (the capability check estimates memory from it).
BENCH_MODELS: list[tuple[str, int]] = [
    ("smollm2-135m-instruct", 134_515_008),
    ("Qwen/Qwen2.5-0.5B-Instruct", 494_032_768),
    ("meta-llama/Llama-3.2-1B-Instruct", 1_235_814_400),
    ("google/gemma-2-2b-it", 2_614_341_888),
    ("microsoft/Phi-3-mini-4k-instruct", 3_821_079_552),
]

#: The experiment's runtimes: white-box (model checks and memory estimate), gray-box and black-box.
BENCH_RUNTIMES: list[dict[str, Any]] = [
    {"name": "transformers", "params": {}},
    {"name": "vllm", "params": {}},
    {"name": "openai", "params": {"base_url": "http://llm.internal:8000/v1"}},
]

#: Host profiles of the fake fleet: (CPU, memory GiB, GPUs as (name, GiB) pairs).
HOST_PROFILES: list[tuple[str, int, list[tuple[str, int]]]] = [
    ("AMD EPYC 7763 64-Core Processor", 256, []),
    ("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", 128, [("NVIDIA L4", 24)]),
    ("AMD EPYC 7742 64-Core Processor", 1024, [("NVIDIA A100-SXM4-80GB", 80)] * 8),
    ("Intel(R) Xeon(R) Platinum 8480+", 2048, [("NVIDIA H100 80GB HBM3", 80)] * 8),
]


def database_url(admin_url: str, name: str) -> str:
    """The admin URL with its database replaced by ``name``."""
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@contextmanager
def bench_database(prefix: str, *, keep: bool = False) -> Iterator[str]:
    """Create ``<prefix>_<pid>``, yield its URL, drop it afterwards (unless ``keep``).

    Args:
        prefix: Database name prefix (``ruckus_bench_create``).
        keep: Leave the database in place (to inspect it).

    Yields:
        The new database's URL.
    """
    admin_url = os.environ.get("BENCH_ADMIN_URL", DEFAULT_ADMIN_URL)
    name = f"{prefix}_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(admin_url, name)
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_setup(url: str) -> None:
    """Configure Django for the benchmark database (production settings, DEBUG off) and migrate it.

    DEBUG stays off as in production: with it on, Django keeps every query in memory, which would slow the very
    code being measured. Queries are counted by :class:`QueryCounter`, which works either way.

    Args:
        url: The database URL.
    """
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "ruckus_server.settings"
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The in-process test client speaks plain HTTP (a TLS-terminating proxy's job in production).
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("RUCKUS_DATA_DIR", str(Path("/tmp") / f"ruckus-bench-{os.getpid()}"))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def make_fleet(capable: int, refusing: int = 0) -> list[Any]:
    """Create agents directly in the database.

    ``capable`` agents can run every (model, runtime) of :data:`BENCH_MODELS` x :data:`BENCH_RUNTIMES` (they
    cycle through :data:`HOST_PROFILES`, so there are several hardware fingerprints); ``refusing`` more are
    offline, so the plan must explain each of their refusals, as in a real fleet.

    Args:
        capable: Agents that run everything.
        refusing: Offline agents.

    Returns:
        The agents.
    """
    from agents.models import Agent, AgentStatus
    from common.protocol import ModelInfo
    from tests.factories import agent_info

    local_models = [
        ModelInfo(name=name, repo_id=name if "/" in name else None, source="hf_cache", parameters=params)
        for name, params in BENCH_MODELS
    ]
    agents = []
    for i in range(capable + refusing):
        cpu, memory_gib, gpus = HOST_PROFILES[i % len(HOST_PROFILES)]
        info = agent_info(cpu=cpu, memory_gib=memory_gib, gpus=gpus, runtimes=("transformers", "vllm", "openai"),
                          nvml=bool(gpus))
        info = info.model_copy(update={"models": local_models, "name": f"host-{i:05d}"})
        agent = Agent(name=f"bench-{i:05d}", url=f"http://10.{i // 65536}.{i // 256 % 256}.{i % 256}:8001",
                      status=AgentStatus.ONLINE if i < capable else AgentStatus.OFFLINE,
                      labels=["bench", "gpu" if gpus else "cpu"])
        agent.set_capabilities(info)
        agents.append(agent)
    return Agent.objects.bulk_create(agents, batch_size=500)


def experiment_body(runs_per_job: int = 3) -> dict[str, Any]:
    """The API body of the benchmark's experiment (every model x runtime on every agent labelled ``bench``)."""
    return {
        "name": "fleet-scale benchmark",
        "task": {"name": "wikipedia_summarization", "params": {"num_samples": 5, "max_new_tokens": 64}},
        "models": [{"name": name} for name, _ in BENCH_MODELS],
        "runtimes": BENCH_RUNTIMES,
        "agents": {"labels": ["bench"]},
        "runs_per_job": runs_per_job,
    }


class QueryCounter:
    """Counts the queries run on the default connection while it is active (no cap, unlike Django's query log).

    Django's own ``CaptureQueriesContext`` reads the debug query log, which keeps only the last 9,000 queries and
    is emptied at each request's start; a statement wrapper counts every query, however many.
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        """Count one statement and run it."""
        self.count += 1
        return execute(sql, params, many, context)

    def __enter__(self) -> QueryCounter:
        from django.db import connection

        self._cm = connection.execute_wrapper(self)
        self._cm.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)


def table(rows: list[dict[str, Any]]) -> str:
    """A plain text table of dicts with the same keys (the benchmarks' output)."""
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    cells = [[str(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
