"""How the CLIs print peaks and intervals: best-of-N peaks with their mean, non-negative 95% CIs with their method,
and ``unstable: CV 69%`` next to a figure whose repeats or runs varied a lot (mocked server, no network).

The example throughout is a quick CPU benchmark on a busy host: fp32 matmul repeats of 73, 22 and 27 GFLOP/s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

import agent_runtime.hwbench as hwbench
from agent_runtime.cli import app as agent_app
from agent_runtime.hwbench.figures import BANDWIDTH, GFLOPS, measured
from common.protocol import HardwareBenchmarkResult
from common.stats import describe
from ruckus_cli import output
from ruckus_cli.client import Api
from ruckus_cli.commands import agents as agents_command
from ruckus_cli.commands import results as results_command
from ruckus_cli.config import Config
from ruckus_cli.main import app

SERVER = "http://ruckus.test"
AGENT_ID = "11111111-1111-4111-8111-111111111111"
BUSY = [73.0, 22.0, 27.0]

PEAKS = {
    "measured_at": "2026-11-30T05:20:00Z", "quick": True, "unsupported": {},
    "figures": {
        "bandwidth_gbps.cpu.copy": {"value": 12.5, "unit": "GB/s", "mean": 12.3, "cv": 0.02, "n": 3},
        "gflops.cpu.fp32": {"value": 73.0, "unit": "GFLOP/s", "mean": 122.0 / 3, "cv": 0.6913, "n": 3},
    },
}
AGENT = {
    "id": AGENT_ID, "name": "busy", "url": "http://10.0.0.5:8100", "mode": "push", "status": "online",
    "activity": "idle", "status_reason": "", "heartbeat_error": "", "heartbeat_error_since": None, "labels": [],
    "cost_per_hour": None, "hardware_fingerprint": "cpu:x86_64", "protocol_version": "1.1", "agent_version": "0.1.0",
    "last_seen": None, "capabilities": None, "summary": {"cpu": "Xeon", "peaks": PEAKS},
}


def _results() -> dict[str, Any]:
    """Results of a hardware benchmark job whose warm runs' fp32 peaks were 73, 22 and 27 GFLOP/s."""
    stats = describe(BUSY, unit="GFLOP/s", peak=True).model_dump(mode="json")
    return {
        "metrics": [{"name": "gflops.cpu.fp32", "unit": "GFLOP/s", "higher_is_better": True, "description": ""}],
        "jobs": [{
            "job": 1, "model": "none", "runtime": "hardware", "agent_name": "busy", "status": "completed",
            "statistics": {"gflops.cpu.fp32": stats}, "request_statistics": {}, "cold_start": None,
            "efficiency": None,
        }],
        "unrunnable": [],
    }


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Answer the CLI from the agent and results above; wide output so rows stay whole."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/experiments/" and request.method == "POST":
            return httpx.Response(201, json={"id": 7, "job_counts": {"pending": 1}, "status": "pending"})
        if path == "/api/v1/experiments/7/":
            return httpx.Response(200, json={"id": 7, "status": "completed"})
        if path == "/api/v1/experiments/7/results/":
            return httpx.Response(200, json=_results())
        if path.startswith(f"/api/v1/agents/{AGENT_ID}/"):
            return httpx.Response(200, json=AGENT)
        return httpx.Response(404, json={"detail": "Not found."})

    def connect(server: str | None, token: str | None) -> Api:
        api = Api(Config(SERVER, "token"))
        api._http = httpx.Client(base_url=SERVER, transport=httpx.MockTransport(handler))
        return api

    monkeypatch.setattr(agents_command, "connect", connect)
    monkeypatch.setattr(results_command, "connect", connect)
    monkeypatch.setattr(output, "console", Console(width=300))
    monkeypatch.setattr(results_command, "console", output.console)
    return lambda: None


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_agents_show_prints_the_best_repeat_with_the_mean_and_flags_a_high_cv(serve):
    text = run("agents", "show", AGENT_ID)
    fp32 = next(line for line in text.splitlines() if "gflops.cpu.fp32" in line)
    assert "73 GFLOP/s (best of 3; mean 40.67; unstable: CV 69%)" in fp32
    copy = next(line for line in text.splitlines() if "bandwidth_gbps.cpu.copy" in line)
    assert "12.5 GB/s (best of 3; mean 12.3)" in copy and "unstable" not in copy


def test_agents_benchmark_table_shows_peaks_the_same_way(serve, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(agents_command, "watch_experiment", lambda api, exp_id: "completed")
    text = run("agents", "benchmark", AGENT_ID)
    assert "best repeat of each figure" in text
    assert "73 GFLOP/s (best of 3; mean 40.67; unstable: CV 69%)" in text


def test_results_show_prints_a_non_negative_interval_its_method_and_the_cv_flag(serve):
    text = run("results", "show", "7")
    assert "40.67 ± 28 (3)" in text
    interval = next(line for line in text.splitlines() if "CI [" in line)
    low = float(interval.split("CI [", 1)[1].split(",", 1)[0])
    assert 0 < low < 22  # Student's t read -29 here
    assert "unstable: CV 69%" in text
    assert "95% CI of the mean (never below zero for a non-negative metric): log-normal (modified Cox)" in text


def test_results_csv_carries_the_cv_and_interval(serve):
    text = run("results", "show", "7", "--format", "csv")
    header, first = text.splitlines()[:2]
    row = dict(zip(header.split(","), first.split(","), strict=True))
    assert float(row["gflops.cpu.fp32_ci_low"]) > 0 and row["gflops.cpu.fp32_ci_method"] == "lognormal_cox"
    assert float(row["gflops.cpu.fp32_cv"]) == pytest.approx(0.6913, abs=1e-4)


def test_agent_benchmark_prints_best_of_n_and_the_instability(monkeypatch: pytest.MonkeyPatch, tmp_path):
    figures = [
        measured(BANDWIDTH, "cpu", "copy", "GB/s", [12.5, 12.2, 12.3]),
        measured(GFLOPS, "cpu", "fp32", "GFLOP/s", BUSY),
    ]

    def fake_run(config: Any, on_figure: Callable[[Any], None] | None = None, **_: Any) -> HardwareBenchmarkResult:
        for fig in figures:
            if on_figure is not None:
                on_figure(fig)
        return HardwareBenchmarkResult(figures=figures, device="cpu", repeats=3, quick=True)

    monkeypatch.setattr(hwbench, "run_benchmark", fake_run)
    result = CliRunner().invoke(agent_app, ["benchmark", "--quick", "--no-save", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    fp32 = next(line for line in result.output.splitlines() if "gflops.cpu.fp32" in line)
    assert "73.00 GFLOP/s  best of 3 (mean 40.67, cv 69.1%)  unstable: CV 69%" in fp32
    copy = next(line for line in result.output.splitlines() if "bandwidth_gbps.cpu.copy" in line)
    assert "12.50 GB/s     best of 3" in copy and "unstable" not in copy
    assert "95%" not in result.output  # the agent computes no interval
