"""The job engine: runs, cold/warm flags, cancel, timeout and shutdown, with a fake and a tiny real model."""

import json

import pytest

from agent_runtime.engine import BusyError, JobEngine
from agent_runtime.runtimes import Generation, RequestError, Runtime
from agent_runtime.runtimes.base import RunMeasurement
from agent_runtime.spool import Spool
from common.catalog import RUNTIMES
from common.protocol import AgentJobState, ExecutionInfo, JobRequest
from tests.helpers import wait_for

from .conftest import allowing, job_payload


@pytest.fixture
def engine(tmp_path, tiny_model_dir):
    eng = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path,
                    policy=allowing(tmp_path, paths=(tiny_model_dir.parent,)))
    yield eng
    eng.shutdown(10)


def _run(engine, payload):
    record, created = engine.submit(JobRequest.model_validate(payload))
    assert created
    record.thread.join(60)
    return record


class FakeRuntime(Runtime):
    """A runtime without a model: deterministic timings, and a log of the engine's calls.

    Every request "streams" three chunks at fixed offsets (first token after 0.5 s, then 0.2 s and 0.3 s
    gaps); the model "loads" in 2.5 s; every run reports a fixed peak RSS and no GPU.

    Attributes:
        calls: Lifecycle calls in order (``prepare``, ``load``, ``start_run(cold)``, ``generate``,
            ``finish_run``, ``close``).
        fail_samples: Ids of samples whose request fails.
    """

    name = "transformers"

    def __init__(self, request, *, data_dir, model_dirs=(), policy=None, fail_samples=()) -> None:
        params = RUNTIMES[self.name].params_model.model_validate(request.runtime.params)
        super().__init__(request, params, data_dir=data_dir, model_dirs=model_dirs, policy=policy)
        self.calls: list[str] = []
        self.fail_samples = set(fail_samples)

    @classmethod
    def capability(cls, info):
        raise NotImplementedError("not used by the engine")

    def prepare(self) -> None:
        self.calls.append("prepare")

    def load(self) -> float:
        self.calls.append("load")
        return 2.5

    def model_load_unavailable_reason(self) -> None:
        return None

    def start_run(self, cold: bool) -> None:
        self.calls.append(f"start_run({cold})")

    def generate(self, task, sample, settings, should_stop) -> Generation:
        self.calls.append("generate")
        if sample.id in self.fail_samples:
            raise RequestError(f"request for {sample.id} failed")
        return Generation(
            text=f"summary of {sample.id}",
            prompt_tokens=7,
            output_tokens=3,
            sent_at=1_000.0,
            sent=10.0,
            first_token=10.5,
            chunk_times=[10.5, 10.7, 11.0],
            finish_reason="stop",
        )

    def finish_run(self) -> RunMeasurement:
        self.calls.append("finish_run")
        return RunMeasurement(metrics={"peak_rss_bytes": 1_000.0}, unavailable={"gpu_power_w": "no GPU here"})

    def close(self) -> None:
        self.calls.append("close")

    def execution(self) -> ExecutionInfo:
        return ExecutionInfo(device="cpu", dtype="float32", parameters=10, weight_bytes=40)


def _jsonl_job(tmp_path, **overrides):
    """A job over two local JSONL samples (no packaged data, no network)."""
    path = tmp_path / "samples.jsonl"
    rows = [{"id": f"s{i}", "document": f"Document {i}. " * 40, "reference": f"Reference {i}."} for i in (1, 2)]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    task = {"name": "wikipedia_summarization", "params": {"source": "jsonl", "jsonl_path": str(path), "num_samples": 2}}
    return JobRequest.model_validate(job_payload("/fake-model", task=task, **overrides))


def _fake_engine(tmp_path, **runtime_kw):
    """An engine whose runtime factory builds a :class:`FakeRuntime`; the runtimes it built are returned too."""
    built: list[FakeRuntime] = []

    def factory(request, *, data_dir, model_dirs, policy):
        built.append(FakeRuntime(request, data_dir=data_dir, model_dirs=model_dirs, policy=policy, **runtime_kw))
        return built[-1]

    return JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path, runtime_factory=factory), built


def test_engine_with_fake_runtime_runs_and_measures(tmp_path):
    engine, built = _fake_engine(tmp_path)
    try:
        result = _run(engine, _jsonl_job(tmp_path, runs_per_job=3)).result
    finally:
        engine.shutdown(10)
    assert result.status is AgentJobState.COMPLETED, result.error
    [runtime] = built
    assert runtime.calls == [
        "prepare",
        *("start_run(True)", "load", "generate", "generate", "finish_run"),
        *("start_run(False)", "generate", "generate", "finish_run") * 2,
        "close",
    ]
    assert [r.run_index for r in result.runs] == [1, 2, 3]
    assert [r.cold_start for r in result.runs] == [True, False, False]
    for run in result.runs:
        m = run.metrics
        assert (m["ttft_s"], m["e2e_latency_s"], m["tpot_s"]) == pytest.approx((0.5, 1.0, 0.25))
        assert m["inter_token_gaps_s"] == pytest.approx(0.25)
        assert m["output_tokens"] == 6.0 and m["prompt_tokens"] == 14.0
        assert m["output_tokens_per_s"] == pytest.approx(6.0 / m["run_wall_s"])
        assert m["peak_rss_bytes"] == 1_000.0
        assert run.unavailable_metrics == {"gpu_power_w": "no GPU here"}
        assert [s.id for s in run.samples] == ["s1", "s2"] and run.samples[0].output == "summary of s1"
    # The model load belongs to the cold run only, which is reported apart.
    assert result.runs[0].metrics["model_load_s"] == 2.5
    assert all("model_load_s" not in r.metrics for r in result.runs[1:])
    assert result.cold_start == result.runs[0].metrics
    assert result.unavailable_metrics == {"gpu_power_w": "no GPU here"}
    assert result.statistics == {}  # raw runs only: the server computes statistics
    assert result.execution == ExecutionInfo(device="cpu", dtype="float32", parameters=10, weight_bytes=40)
    assert engine.spool.load_result("job-1") == result and len(engine.spool.load_runs("job-1")) == 3


def test_engine_with_fake_runtime_keeps_failed_requests_apart(tmp_path):
    engine, _ = _fake_engine(tmp_path, fail_samples={"s2"})
    try:
        result = _run(engine, _jsonl_job(tmp_path, runs_per_job=1)).result
    finally:
        engine.shutdown(10)
    assert result.status is AgentJobState.COMPLETED, result.error
    [run] = result.runs
    assert run.samples[1].error == "request for s2 failed" and run.samples[1].metrics == {}
    assert run.metrics["output_tokens"] == 3.0  # from the request that worked


def test_engine_with_fake_runtime_fails_when_every_request_fails(tmp_path):
    engine, built = _fake_engine(tmp_path, fail_samples={"s1", "s2"})
    try:
        result = _run(engine, _jsonl_job(tmp_path, runs_per_job=2)).result
    finally:
        engine.shutdown(10)
    assert result.status is AgentJobState.FAILED and result.runs == []
    assert "every request of run 1 failed" in result.error
    assert built[0].calls[-1] == "close"


def test_multi_run_job(engine, tiny_model_dir):
    record = _run(engine, job_payload(tiny_model_dir, runs_per_job=3))
    result = record.result
    assert result.status is AgentJobState.COMPLETED, result.error
    assert [r.cold_start for r in result.runs] == [True, False, False]
    assert result.statistics == {} and result.statistics_source == "none"  # the server computes statistics
    assert "model_load_s" in result.cold_start
    assert "model_load_s" not in result.runs[1].metrics
    for run in result.runs:
        assert run.metrics["ttft_s"] < run.metrics["e2e_latency_s"]
        assert run.metrics["peak_rss_bytes"] > 0
        assert len(run.samples) == 2 and all(s.output_tokens == 8 for s in run.samples)
        assert all(len(s.inter_token_gaps_s) == 7 for s in run.samples)
    # CPU host: GPU metrics are absent with a reason, never zero.
    assert "gpu_power_w" not in result.runs[0].metrics
    assert "cpu" in result.unavailable_metrics["gpu_power_w"]
    assert engine.spool.load_result("job-1").status is AgentJobState.COMPLETED
    assert len(engine.spool.load_runs("job-1")) == 3
    # What efficiency needs: where the weights were and how many bytes a decode step reads.
    execution = result.execution
    assert execution is not None and execution.device == "cpu"
    assert execution.parameters and execution.parameters > 0
    assert execution.weight_bytes == execution.parameters * {"float32": 4, "bfloat16": 2}[execution.dtype]


def test_single_run_is_the_cold_run(engine, tiny_model_dir):
    result = _run(engine, job_payload(tiny_model_dir, runs_per_job=1)).result
    assert [r.cold_start for r in result.runs] == [True]
    assert result.cold_start == result.runs[0].metrics and "run_wall_s" in result.cold_start


def _long_job(tiny_model_dir, **kw):
    params = {"num_samples": 3, "max_new_tokens": 3000}
    return job_payload(tiny_model_dir, task={"name": "wikipedia_summarization", "params": params}, **kw)


def test_cancel_mid_run_and_busy(engine, tiny_model_dir):
    record, _ = engine.submit(JobRequest.model_validate(_long_job(tiny_model_dir, runs_per_job=5)))
    wait_for(lambda: record.progress.stage.value == "cold_run" and record.progress.run_index == 1, 30)
    # A second job is refused while one runs; the same attempt again is not an error.
    with pytest.raises(BusyError):
        engine.submit(JobRequest.model_validate(_long_job(tiny_model_dir, job_id="other")))
    again, created = engine.submit(JobRequest.model_validate(_long_job(tiny_model_dir, runs_per_job=5)))
    assert again is record and not created
    engine.cancel("job-1")
    record.thread.join(20)
    assert not record.thread.is_alive()
    assert record.result.status is AgentJobState.CANCELLED
    assert record.result.runs == []  # the partial cold run is dropped


def test_timeout_mid_run(engine, tiny_model_dir):
    record, _ = engine.submit(JobRequest.model_validate(_long_job(tiny_model_dir, timeout_s=1.5)))
    record.thread.join(30)
    assert record.result.status is AgentJobState.TIMED_OUT
    assert "timed out" in record.result.error


def test_shutdown_interrupts(engine, tiny_model_dir):
    record, _ = engine.submit(JobRequest.model_validate(_long_job(tiny_model_dir)))
    wait_for(lambda: record.progress.run_index == 1, 30)
    engine.shutdown(20)
    assert record.result.status is AgentJobState.INTERRUPTED


def test_missing_model_fails_with_reason(engine, tmp_path):
    record = _run(engine, job_payload(tmp_path / "nowhere"))
    assert record.result.status is AgentJobState.FAILED
    assert "nowhere" in record.result.error


def test_new_attempt_replaces_finished_one(engine, tiny_model_dir):
    _run(engine, job_payload(tiny_model_dir, runs_per_job=1))
    second = _run(engine, job_payload(tiny_model_dir, runs_per_job=1, attempt=2, attempt_token="attempt-token-2"))
    assert second.result.attempt == 2 and engine.spool.load_result("job-1").attempt == 2
