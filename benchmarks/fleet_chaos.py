"""Chaos run of a fleet on separate hosts: jobs must end with exactly one stored result each, whatever breaks.

Four agents (two push, two pull behind a NAT), each in its own network namespace, a server (daphne), a scheduler
and a private Postgres on the lab's bridge address run an experiment of tiny-model jobs while faults strike at
random moments, one at a time, every kind at least once (when the jobs end first, 4 more are added):

- a partition of one agent's link, shorter or longer than the lost-agent time;
- daphne killed with SIGKILL, restarted after a random outage;
- the scheduler killed with SIGKILL, restarted;
- Postgres killed with SIGKILL, restarted (crash recovery).

At the end it reads every job's status and counts the stored result rows per job, straight from the database, and
prints one line::

    jobs=N completed=N failed=N results=N lost=0 duplicated=0 retried=N faults=N elapsed_s=S

``lost`` counts completed jobs without a stored result, ``duplicated`` the result rows beyond one per job; the
exit status is 1 when either is not zero or a job did not end. Liveness is scaled down (heartbeats every 0.5 s, an
agent lost after 6 s) so that every kind of fault, short and long, fits in a few minutes.

Needs root (network namespaces, nftables) and the project's test helpers (``tests/netlab.py``,
``tests/pgctl.py``, ``tests/fleet.py``). Usage::

    python benchmarks/fleet_chaos.py                 # ~60 jobs
    python benchmarks/fleet_chaos.py --short         # ~16 jobs, what CI runs
    python benchmarks/fleet_chaos.py --jobs 100 --seed 7
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The fleet harness is the test suite's (the same hosts, faults and processes as the multi-host tests).
from tests.agent.tiny_model import build_tiny_llama  # noqa: E402
from tests.fleet import Fleet, Timing  # noqa: E402
from tests.helpers import wait_for  # noqa: E402
from tests.netlab import NetLab  # noqa: E402
from tests.pgctl import PgServer  # noqa: E402

AGENTS = {"push1": "push", "push2": "push", "pull1": "pull", "pull2": "pull"}


@dataclass
class Outcome:
    """What a chaos run ends with."""

    jobs: int
    completed: int
    failed: int
    results: int
    lost: int
    duplicated: int
    unfinished: int
    retried: int
    faults: list[str]
    elapsed_s: float
    failures: list[str]

    @property
    def ok(self) -> bool:
        """No result lost, none stored twice, every job ended."""
        return self.lost == 0 and self.duplicated == 0 and self.unfinished == 0

    def line(self) -> str:
        """The one-line summary."""
        return (f"jobs={self.jobs} completed={self.completed} failed={self.failed} results={self.results} "
                f"lost={self.lost} duplicated={self.duplicated} retried={self.retried} faults={len(self.faults)} "
                f"elapsed_s={self.elapsed_s:.0f}")


#: Kinds of fault; every kind strikes once, in a random order, before any strikes again.
KINDS = ("partition-short", "partition-long", "server", "scheduler", "postgres")


def _fault(fleet: Fleet, kind: str, rng: random.Random, lost_after: float, log: list[str]) -> None:
    """Strike with one fault of a kind, at a random place and for a random time, and repair it (blocking)."""
    t0 = time.monotonic()
    if kind.startswith("partition"):
        name = rng.choice(sorted(AGENTS))
        duration = rng.uniform(1.0, 0.8 * lost_after) if kind == "partition-short" else rng.uniform(
            1.2 * lost_after, 2.5 * lost_after)
        fleet.lab.partition(name)
        time.sleep(duration)
        fleet.lab.heal(name)
        log.append(f"partition {name} {duration:.1f}s")
    elif kind == "server":
        duration = rng.uniform(1.0, 2.0 * lost_after)
        fleet.kill("server")
        time.sleep(duration)
        fleet.start_server()
        log.append(f"daphne kill -9, down {time.monotonic() - t0:.1f}s")
    elif kind == "scheduler":
        duration = rng.uniform(0.5, 5.0)
        fleet.kill("scheduler")
        time.sleep(duration)
        fleet.start_scheduler()
        log.append(f"scheduler kill -9, down {duration:.1f}s")
    else:
        duration = rng.uniform(1.0, 2.0 * lost_after)
        fleet.pg.kill9()
        time.sleep(duration)
        fleet.pg.restart()
        log.append(f"postgres kill -9, down {time.monotonic() - t0:.1f}s")


def run(jobs: int, seed: int, workdir: Path, *, timeout_s: float = 900, quiet: bool = False) -> Outcome:
    """Run the chaos experiment once.

    Args:
        jobs: Jobs in the experiment (rounded up to a multiple of the 4 agents; 4 more are added while a kind
            of fault has not struck yet).
        seed: Seed of the fault schedule.
        workdir: Logs and agent data.
        timeout_s: Longest wait for every job to end.
        quiet: Print nothing but the summary.

    Returns:
        The outcome.
    """
    rng = random.Random(seed)
    timing = Timing(lost_after_s=6.0)
    model = build_tiny_llama(workdir / "tiny-llama")
    faults: list[str] = []
    with PgServer("127.0.0.1", settings={"fsync": "off"}) as pg, NetLab(sorted(AGENTS)) as lab:
        pg.start()
        fleet = Fleet(lab=lab, pg=pg, workdir=workdir / "fleet", timing=timing)
        try:
            fleet.start_server()
            fleet.start_scheduler()
            for name, mode in AGENTS.items():
                fleet.start_agent(name, name, mode=mode, wait=False)
            for name, mode in AGENTS.items():
                if mode == "push":
                    wait_for(lambda n=name: _health(fleet, n), 180, interval=0.5, what=f"agent {name}")
                    fleet.register(name)
            wait_for(lambda: all(fleet.agent_record(n) for n in AGENTS), 180, interval=0.5, what="every agent")
            copies = max(1, -(-jobs // len(AGENTS)))
            start = time.monotonic()
            deadline = start + timeout_s
            experiments = [fleet.create_experiment(model, runs=3, samples=1, max_new_tokens=48, copies=copies)]
            schedule: list[str] = []
            struck: set[str] = set()
            while time.monotonic() < deadline:
                if _all_ended(fleet, experiments):
                    if struck >= set(KINDS):
                        break
                    # Every kind of fault must strike at least once: more work (4 jobs) until it has.
                    experiments.append(fleet.create_experiment(model, runs=3, samples=1, max_new_tokens=48))
                time.sleep(rng.uniform(0.5, 3.0))
                if not _all_ended(fleet, experiments):
                    if not schedule:
                        schedule = rng.sample(KINDS, len(KINDS))
                    kind = schedule.pop()
                    _fault(fleet, kind, rng, timing.lost_after_s, faults)
                    struck.add(kind)
                    if not quiet:
                        print(f"  fault {len(faults)}: {faults[-1]}", flush=True)
            elapsed = time.monotonic() - start
            final: list[dict] = []
            counts: dict[int, int] = {}
            for exp in experiments:
                final += fleet.wait_jobs_done(exp["id"], max(30.0, deadline - time.monotonic()))
                counts.update(fleet.count_results(exp["id"]))
        finally:
            fleet.close()
    completed = [j for j in final if j["status"] == "completed"]
    return Outcome(
        jobs=len(final),
        completed=len(completed),
        failed=sum(j["status"] != "completed" for j in final),
        results=sum(counts.values()),
        lost=sum(counts.get(j["id"], 0) == 0 for j in completed),
        duplicated=sum(max(0, n - 1) for n in counts.values()),
        unfinished=sum(j["status"] not in ("completed", "failed", "cancelled", "timed_out") for j in final),
        retried=sum(j["attempt"] > 1 for j in final),
        faults=faults,
        elapsed_s=elapsed,
        failures=[f"job {j['id']} ({j['agent_name']}, attempt {j['attempt']}): {j['status']}: {j['status_reason']}"
                  for j in final if j["status"] != "completed"],
    )


def _all_ended(fleet: Fleet, experiments: list[dict]) -> bool:
    """True when every job of every experiment has ended (False when the server does not answer)."""
    for exp in experiments:
        jobs = fleet.jobs(exp["id"])
        if not jobs or any(j["status"] not in ("completed", "failed", "cancelled", "timed_out") for j in jobs):
            return False
    return True


def _health(fleet: Fleet, name: str) -> bool:
    """True when a push agent answers its health check."""
    try:
        return httpx.get(f"{fleet.agent_url(name)}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=60, help="jobs in the experiment (default 60)")
    parser.add_argument("--short", action="store_true", help="16 jobs (CI)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault schedule")
    parser.add_argument("--workdir", type=Path, default=None, help="logs and agent data (default: a temp dir)")
    args = parser.parse_args(argv)
    jobs = 16 if args.short else args.jobs
    with tempfile.TemporaryDirectory(prefix="ruckus-chaos-") as tmp:
        workdir = args.workdir or Path(tmp)
        outcome = run(jobs, args.seed, workdir)
    print(outcome.line())
    for fault in outcome.faults:
        print(f"  fault: {fault}")
    for failure in outcome.failures:
        print(f"  failed: {failure}")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
