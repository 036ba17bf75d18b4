"""The fleet benchmark's CI run: ``benchmarks/fleet_sim.py --short`` against this checkout.

The benchmark starts the real server (daphne), a scheduler and 50 simulated agents, runs 100 jobs through them and
reads the results back; its private database is created on the Postgres server the test suite uses (``DATABASE_URL``
or the embedded one) and dropped at the end. The test checks that it exits 0 and that every phase reported figures
without a single error; speed is never checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def admin_dsn() -> str:
    """The maintenance database of the test suite's Postgres server (where the benchmark creates its own)."""
    db = settings.DATABASES["default"]
    user = quote(str(db.get("USER") or "postgres"), safe="")
    password = str(db.get("PASSWORD") or "")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = str(db.get("HOST") or "127.0.0.1")
    port = str(db.get("PORT") or 5432)
    if host.startswith("/"):  # the embedded server's socket directory
        return f"postgresql://{auth}@/postgres?host={quote(host, safe='')}&port={port}"
    return f"postgresql://{auth}@{host}:{port}/postgres"


@pytest.mark.timeout(900)
def test_short_fleet_benchmark_reports_every_phase_without_errors(tmp_path: Path) -> None:
    figures_file = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/fleet_sim.py", "--short", "--pg", admin_dsn(), "--json", str(figures_file)],
        cwd=REPO, capture_output=True, text=True, timeout=840, check=False,
    )
    output = f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-4000:]}"
    assert run.returncode == 0, output
    report: dict[str, Any] = json.loads(figures_file.read_text())
    assert report["errors"]["total"] == 0, output
    figures = report["figures"]
    for phase in ("register", "hb", "dispatch", "ingest", "read"):
        assert phase in figures, f"no {phase} figures\n{output}"
        assert figures[phase]["errors"] == 0, output

    assert figures["register"]["agents"] == 50
    assert figures["register"]["hardware_fingerprints"] == 4
    assert figures["hb"]["ok"] > 0 and figures["hb"]["latency"]["wire"]["p50_ms"] is not None
    jobs = figures["dispatch"]["jobs"]
    assert jobs >= 100
    assert figures["dispatch"]["received"] == jobs
    assert figures["ingest"]["results_accepted"] == jobs
    assert figures["ingest"]["scored_after_create_s"] is not None
    assert figures["ingest"]["job_statuses"] == {"completed": jobs}
    for label, row in figures["read"]["requests"].items():
        assert row["status"] == 200, label
        assert row["latency"]["n"] >= 1, label
        assert row["queries"] is not None and row["queries"] > 0, label
    assert {"server", "scheduler-0", "simulator"} <= set(report["processes"])
