"""The CLI while the server is still scoring results (ROUGE, statistics): ``results show`` says "scoring" where
the figures will be, ``results export`` says the file lacks them, and ``experiments watch`` waits for them (mocked
server, no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from ruckus_cli import output, watch
from ruckus_cli.client import Api
from ruckus_cli.commands import experiments as experiments_command
from ruckus_cli.commands import results as results_command
from ruckus_cli.config import Config
from ruckus_cli.main import app

SERVER = "http://ruckus.test"
STATS = {"n": 2, "mean": 1.5, "std": 0.1, "min": 1.4, "max": 1.6, "median": 1.5, "p90": 1.6, "p95": 1.6, "p99": 1.6,
         "cv": 0.07, "ci95": None, "ci_method": None, "outliers": [], "outlier_rule": "", "values": [1.4, 1.6],
         "unit": "s", "source": "warm", "scope": "run"}


def _job(job: int, scoring_status: str, statistics: dict[str, Any]) -> dict[str, Any]:
    return {"job": job, "model": "m", "runtime": "transformers", "agent_name": f"host-{job}", "status": "completed",
            "scoring_status": scoring_status, "statistics": statistics, "request_statistics": {},
            "cold_start": None, "efficiency": None}


def _results(scoring: int) -> dict[str, Any]:
    """Two jobs; the second is still being scored while ``scoring`` is 1."""
    return {
        "experiment": 7, "status": "completed", "scoring": scoring, "unrunnable": [],
        "metrics": [{"name": "e2e_latency_s", "unit": "s", "higher_is_better": False, "description": ""}],
        "jobs": [_job(1, "scored", {"e2e_latency_s": STATS}),
                 _job(2, "scoring", {}) if scoring else _job(2, "scored", {"e2e_latency_s": STATS})],
    }


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A server whose results say ``state["scoring"]`` jobs are being scored (``state["reads"]`` counts reads)."""
    state: dict[str, Any] = {"scoring": 1, "reads": 0, "scored_after": None}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/experiments/7/results/":
            state["reads"] += 1
            if state["scored_after"] is not None and state["reads"] > state["scored_after"]:
                state["scoring"] = 0
            return httpx.Response(200, json=_results(state["scoring"]))
        if path == "/api/v1/experiments/7/export/":
            return httpx.Response(200, text="experiment,job,scoring_status\n7,2,scoring\n")
        if path == "/api/v1/experiments/7/":
            return httpx.Response(200, json={"id": 7, "status": "completed", "runs_per_job": 2})
        if path == "/api/v1/jobs/":
            return httpx.Response(200, json={"count": 0, "next": None, "results": []})
        return httpx.Response(404, json={"detail": "Not found."})

    def connect(server: str | None, token: str | None) -> Api:
        api = Api(Config(SERVER, "token"))
        api._http = httpx.Client(base_url=SERVER, transport=httpx.MockTransport(handler))
        return api

    for module in (results_command, experiments_command):
        monkeypatch.setattr(module, "connect", connect)
    monkeypatch.setattr(output, "console", Console(width=300))
    monkeypatch.setattr(results_command, "console", output.console)
    monkeypatch.setattr(watch, "console", output.console)
    monkeypatch.setattr(watch.time, "sleep", lambda seconds: None)
    return state


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_results_show_says_scoring_where_the_figures_will_be(server):
    text = run("results", "show", "7")
    scored = next(line for line in text.splitlines() if "host-1" in line)
    scoring = next(line for line in text.splitlines() if "host-2" in line)
    assert "1.5 ± 0.1 (2)" in scored and "scoring" not in scored
    assert "completed, scoring" in scoring and "scoring…" in scoring
    assert "1 job(s) still being scored" in text
    rows = run("results", "show", "7", "--format", "csv").splitlines()
    assert rows[0].startswith("job,model,runtime,agent,status,") and rows[0].endswith(",scoring_status")
    assert rows[2].endswith(",scoring")
    assert json.loads(run("results", "show", "7", "--format", "json"))["scoring"] == 1


def test_results_export_says_what_the_file_lacks(server, tmp_path: Path):
    text = run("results", "export", "7", "-o", str(tmp_path / "runs.csv"))
    assert "Wrote" in text and "1 job(s) were still being scored" in text
    server["scoring"] = 0
    assert "still being scored" not in run("results", "export", "7", "-o", str(tmp_path / "again.csv"))


def test_watch_waits_for_scoring_to_end(server):
    server["scored_after"] = 3
    text = run("experiments", "watch", "7")
    assert "Scoring the results of 1 job(s)" in text and "finished: completed" in text
    assert server["reads"] == 4 and server["scoring"] == 0


def test_watch_gives_up_waiting_for_scoring_after_its_limit(server, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(watch, "SCORING_WAIT_S", 0.0)
    text = run("experiments", "watch", "7")
    assert "1 job(s) still being scored" in text and "finished: completed" in text
