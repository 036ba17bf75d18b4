import pytest

from agent_runtime.engine import BusyError, JobEngine, run_metrics, sample_result
from agent_runtime.runtimes import Generation
from agent_runtime.spool import Spool
from agent_runtime.tasks.base import Sample
from common.protocol import AgentJobState, JobRequest

from .conftest import job_payload, wait_for


@pytest.fixture
def engine(tmp_path):
    eng = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path)
    yield eng
    eng.shutdown(10)


def _run(engine, payload):
    record, created = engine.submit(JobRequest.model_validate(payload))
    assert created
    record.thread.join(60)
    return record


def test_metrics_follow_the_definitions():
    gen = Generation(
        text="hi",
        prompt_tokens=5,
        output_tokens=3,
        sent_at=100.0,
        sent=10.0,
        first_token=10.5,
        chunk_times=[10.5, 10.7, 11.0],
    )
    s = sample_result(Sample("a", "A", "doc", "ref"), gen)
    assert s.metrics["ttft_s"] == pytest.approx(0.5)
    assert s.metrics["e2e_latency_s"] == pytest.approx(1.0)
    assert s.metrics["tpot_s"] == pytest.approx(0.25)
    assert s.inter_token_gaps_s == pytest.approx([0.2, 0.3])
    assert s.first_token_at == pytest.approx(100.5) and s.finished_at == pytest.approx(101.0)
    metrics, unavailable = run_metrics([s], wall_s=2.0)
    assert metrics["output_tokens_per_s"] == pytest.approx(1.5)
    assert metrics["inter_token_gaps_s"] == pytest.approx(0.25)
    # A single-token answer has no TPOT: absent with a reason, never zero.
    one = sample_result(Sample("b", "B", "d", "r"), Generation("x", 5, 1, 0.0, 0.0, 0.1, [0.1]))
    metrics, unavailable = run_metrics([one], wall_s=1.0)
    assert "tpot_s" not in metrics and "tpot_s" in unavailable


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
