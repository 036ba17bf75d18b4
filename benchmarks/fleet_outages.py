"""The server's own outages with the default liveness settings: does it blame its agents?

A two-job experiment on two agents on their own hosts (one push, one pull), with the production defaults
(heartbeats every 5 s, an agent lost after 30 s, retry backoff from 5 s), run three times:

- ``none``: no fault (the baseline time);
- ``postgres``: Postgres killed (SIGKILL) in the middle and started again after ``--postgres-s`` (60 s);
- ``daphne``: the HTTP server killed (SIGKILL) in the middle and started again after ``--daphne-s`` (45 s), the
  scheduler running all along.

For each it prints the experiment's wall time, the attempts per job, the agents the server marked offline, the
attempts it declared lost, and the stored results. A server that does not blame its agents keeps one attempt per
job and marks nobody offline.

Needs root (network namespaces, nftables) and the project's test helpers. Usage::

    python benchmarks/fleet_outages.py [--runs 40] [--postgres-s 60] [--daphne-s 45]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The fleet harness is the test suite's (the same hosts and processes as the multi-host tests).
from tests.agent.tiny_model import build_tiny_llama  # noqa: E402
from tests.fleet import Fleet, Timing  # noqa: E402
from tests.helpers import wait_for  # noqa: E402
from tests.netlab import NetLab  # noqa: E402
from tests.pgctl import PgServer  # noqa: E402

DEFAULTS = Timing(heartbeat_s=5.0, lost_after_s=30.0, retry_backoff_base_s=5.0, scheduler_interval_s=1.0)


def _scenario(kind: str, outage_s: float, runs: int, model: Path, workdir: Path) -> dict[str, object]:
    """Run the experiment once with one kind of outage in the middle; return its figures."""
    with PgServer("127.0.0.1", settings={"fsync": "off"}) as pg, NetLab(["a", "b"]) as lab:
        pg.start()
        fleet = Fleet(lab=lab, pg=pg, workdir=workdir / kind, timing=DEFAULTS)
        try:
            fleet.start_server()
            fleet.start_scheduler()
            fleet.start_agent("a", "a")
            fleet.register("a")
            fleet.start_agent("b", "b", mode="pull")
            start = time.monotonic()
            exp = fleet.create_experiment(model, runs=runs, samples=2, max_new_tokens=32)
            wait_for(lambda: sum(j["status"] == "running" for j in fleet.jobs(exp["id"])) == 2, 120, interval=0.5,
                     what="both jobs to run")
            time.sleep(10)
            if kind == "postgres":
                pg.kill9()
                time.sleep(outage_s)
                pg.restart()
            elif kind == "daphne":
                fleet.kill("server")
                time.sleep(outage_s)
                fleet.start_server()
            jobs = fleet.wait_jobs_done(exp["id"], 900)
            elapsed = time.monotonic() - start
            counts = fleet.count_results(exp["id"])
            with psycopg.connect(pg.url(fleet.database), autocommit=True) as conn:
                offline = conn.execute("SELECT count(*) FROM experiments_statetransition WHERE entity = 'agent' "
                                       "AND to_state = 'offline'").fetchone()[0]
                lost = conn.execute("SELECT count(*) FROM experiments_statetransition WHERE entity = 'attempt' "
                                    "AND to_state = 'lost'").fetchone()[0]
        finally:
            fleet.close()
    return {
        "scenario": kind, "outage_s": outage_s if kind != "none" else 0, "elapsed_s": round(elapsed),
        "attempts": [j["attempt"] for j in jobs], "statuses": sorted({j["status"] for j in jobs}),
        "agents_offline": offline, "attempts_lost": lost, "results": sum(counts.values()),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns 1 when an outage cost an attempt or a result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="runs per job (sets the job length)")
    parser.add_argument("--postgres-s", type=float, default=60.0, help="Postgres outage (default 60 s)")
    parser.add_argument("--daphne-s", type=float, default=45.0, help="daphne outage (default 45 s)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ruckus-outages-") as tmp:
        model = build_tiny_llama(Path(tmp) / "tiny-llama")
        for kind, outage in (("none", 0.0), ("postgres", args.postgres_s), ("daphne", args.daphne_s)):
            rows.append(_scenario(kind, outage, args.runs, model, Path(tmp)))
            print(rows[-1], flush=True)
    print("\n| scenario | outage | experiment time | attempts per job | agents marked offline | attempts lost | "
          "results |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['outage_s']:.0f} s | {r['elapsed_s']} s | {r['attempts']} | "
              f"{r['agents_offline']} | {r['attempts_lost']} | {r['results']} |")
    bad = any(r["attempts"] != [1, 1] or r["results"] != 2 for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
