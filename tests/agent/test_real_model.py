import pytest

from agent_runtime.engine import JobEngine
from agent_runtime.spool import Spool
from common.protocol import AgentJobState, JobRequest

from .conftest import MODEL_CACHE


@pytest.mark.slow
def test_packaged_smollm2_three_runs(tmp_path, smollm2_dir):
    # The catalogue name resolves to the converted copy in the shared model cache.
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=MODEL_CACHE)
    request = JobRequest(
        job_id="real-1",
        attempt_token="token-123456",
        task={"name": "wikipedia_summarization", "params": {"num_samples": 2, "max_new_tokens": 32}},
        model={"name": "smollm2-135m-instruct"},
        runtime={"name": "transformers", "params": {"device": "cpu"}},
        runs_per_job=3,
    )
    record, _ = engine.submit(request)
    record.thread.join(300)
    result = record.result
    assert result.status is AgentJobState.COMPLETED, result.error
    assert [r.cold_start for r in result.runs] == [True, False, False]
    assert all("e2e_latency_s" in r.metrics and "ttft_s" in r.metrics for r in result.runs[1:])
    assert result.statistics == {}  # raw runs only: the server computes statistics
    assert result.cold_start["model_load_s"] > 0
    for run in result.runs:
        assert run.metrics["ttft_s"] < run.metrics["e2e_latency_s"]
        assert run.metrics["output_tokens_per_s"] > 0
        for s in run.samples:
            assert s.output.strip() and s.reference
            assert s.finish_reason in ("stop", "length")
    # Greedy decoding: every run writes the same summaries.
    assert [s.output for s in result.runs[1].samples] == [s.output for s in result.runs[2].samples]
    engine.shutdown(5)
