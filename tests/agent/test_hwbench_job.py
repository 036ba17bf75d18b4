"""The hardware benchmark as a job (engine, runtime checks) and as ``ruckus-agent benchmark``."""

from __future__ import annotations

import json
import time

import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from agent_runtime.api import create_app
from agent_runtime.cli import app
from agent_runtime.engine import JobEngine
from agent_runtime.hwbench import latest_path, load_latest
from agent_runtime.runtimes import make_runtime
from agent_runtime.settings import Settings
from agent_runtime.spool import Spool
from common.protocol import AgentInfo, AgentJobState, JobRequest
from tests.helpers import wait_for

from .conftest import TOKEN, job_payload


def hw_job(**overrides) -> JobRequest:
    """A hardware_benchmark job as the server sends it: no model, the hardware runtime."""
    body = {
        "job_id": "hw-1",
        "attempt_token": "attempt-token-hw",
        "task": {"name": "hardware_benchmark", "params": {"quick": True, "device": "cpu", "repeats": 2}},
        "model": {"name": "none"},
        "runtime": {"name": "hardware"},
        "runs_per_job": 2,
    }
    body.update(overrides)
    return JobRequest.model_validate(body)


@pytest.fixture
def agent_info():
    return AgentInfo(name="test-agent")


@pytest.fixture
def engine(tmp_path, agent_info):
    eng = JobEngine(
        Spool(tmp_path / "spool"), data_dir=tmp_path, info_provider=lambda: agent_info, telemetry_interval_s=0.1
    )
    yield eng
    eng.shutdown(10)


def test_job_produces_flattened_figures(engine, agent_info, tmp_path, monkeypatch):
    # A CPU without native bf16, so the job also carries an unsupported figure with its reason.
    monkeypatch.setattr("agent_runtime.hwbench.runner.cpu_isa_features", lambda: ["avx2", "fma"])
    record, created = engine.submit(hw_job())
    assert created
    record.thread.join(60)
    result = record.result
    assert result.status is AgentJobState.COMPLETED, result.error
    assert result.task == "hardware_benchmark" and result.runtime == "hardware"
    assert result.access_mode.value == "white_box"
    assert [r.cold_start for r in result.runs] == [True, False]
    for run in result.runs:
        assert 0.1 < run.metrics["bandwidth_gbps.cpu.copy"] < 2000
        assert 0.1 < run.metrics["gflops.cpu.fp32"] < 100_000
        assert run.metrics["peak_rss_bytes"] > 0 and run.metrics["run_wall_s"] > 0
        assert {"t", "rss_bytes", "cpu_percent"} <= set(run.telemetry)
        assert "best of 2 timed repeats" in run.notes[0]
        assert "gflops.cpu.bf16" not in run.metrics
    # The server's statistics over runs work unchanged: one value per warm run; the agent sends none itself.
    assert [r.metrics["gflops.cpu.fp32"] > 0 for r in result.runs if not r.cold_start] == [True]
    assert result.statistics == {}
    assert "AVX512-BF16" in result.unavailable_metrics["gflops.cpu.bf16"]
    assert "no model" in result.unavailable_metrics["model_load_s"]
    # Each run carries its full benchmark (the server keeps the latest as the peaks); the last is also on disk.
    assert latest_path(tmp_path).is_file()
    stored = load_latest(tmp_path)
    assert result.runs[-1].benchmark == stored
    assert all(run.benchmark is not None and run.benchmark.figures for run in result.runs)
    assert "benchmarks" not in agent_info.model_dump()
    assert stored.figure("gflops.cpu.fp32").statistics.values[-1] > 0


def test_job_can_be_cancelled_between_repeats(engine):
    record, _ = engine.submit(
        hw_job(task={"name": "hardware_benchmark", "params": {"quick": True, "device": "cpu", "repeats": 100}})
    )
    wait_for(lambda: record.state is AgentJobState.RUNNING)
    time.sleep(0.3)
    t0 = time.perf_counter()
    engine.cancel("hw-1")
    record.thread.join(30)
    assert time.perf_counter() - t0 < 5
    assert record.result.status is AgentJobState.CANCELLED and record.result.runs == []


def test_runtime_check_names_the_field(tmp_path):
    wrong_task = JobRequest.model_validate(
        job_payload("unused", runtime={"name": "hardware"}, model={"name": "none"}, job_id="x")
    )
    assert "runtime.name" in make_runtime(wrong_task, data_dir=tmp_path).check()
    assert make_runtime(hw_job(), data_dir=tmp_path).check() == {}
    if not torch.cuda.is_available():
        cuda = hw_job(task={"name": "hardware_benchmark", "params": {"device": "cuda"}})
        assert "no CUDA" in make_runtime(cuda, data_dir=tmp_path).check()["task.params.device"]


def test_task_with_a_model_runtime_fails_with_a_reason(engine):
    record, _ = engine.submit(hw_job(runtime={"name": "transformers", "params": {"device": "cpu"}}))
    record.thread.join(30)
    assert record.result.status is AgentJobState.FAILED
    assert "hardware" in record.result.error


def test_cli_benchmark_json_quick(tmp_path):
    result = CliRunner().invoke(
        app, ["benchmark", "--json", "--quick", "--device", "cpu", "--repeats", "2", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["type"] == "hardware.benchmark" and body["quick"] is True
    figures = {f"{f['name']}.{f['device']}.{f['precision']}": f for f in body["figures"]}
    assert figures["gflops.cpu.fp32"]["statistics"]["n"] == 2
    assert 0.1 < figures["bandwidth_gbps.cpu.copy"]["statistics"]["median"] < 2000
    assert load_latest(tmp_path) is not None


@pytest.mark.skipif(torch.cuda.is_available(), reason="this host has a CUDA GPU")
def test_cli_benchmark_refuses_a_missing_device(tmp_path):
    result = CliRunner().invoke(app, ["benchmark", "--quick", "--device", "cuda", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "cuda" in result.output


def test_agent_api_accepts_the_job_and_sends_the_peaks_with_its_runs(tmp_path):

    auth = {"Authorization": f"Bearer {TOKEN}"}
    settings = Settings(data_dir=tmp_path / "agent", token=TOKEN, heartbeat_interval_s=60, telemetry_interval_s=0.1)
    with TestClient(create_app(settings)) as client:
        info = client.get("/api/v1/info", headers=auth).json()
        assert "benchmarks" not in info
        assert next(r for r in info["runtimes"] if r["name"] == "hardware")["available"] is True
        body = hw_job(runs_per_job=1).model_dump(mode="json")
        resp = client.post("/api/v1/jobs", json=body, headers=auth)
        assert resp.status_code == 202, resp.text

        def done():
            job = client.get("/api/v1/jobs/hw-1", headers=auth).json()
            return job if job["result"] is not None else None

        result = wait_for(done, 60)["result"]
        assert result["status"] == "completed", result["error"]
        assert result["statistics"] == {} and "gflops.cpu.fp32" in result["runs"][0]["metrics"]
        assert result["runs"][0]["benchmark"]["type"] == "hardware.benchmark"
        assert "benchmarks" not in client.get("/api/v1/info", headers=auth).json()
        bad = dict(body, job_id="hw-2", task={"name": "hardware_benchmark", "params": {"repeats": 0}})
        resp = client.post("/api/v1/jobs", json=bad, headers=auth)
        assert resp.status_code == 422 and "task.params.repeats" in resp.text
