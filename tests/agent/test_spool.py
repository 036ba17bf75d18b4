from agent_runtime.engine import JobEngine
from agent_runtime.spool import Spool, is_safe_job_id
from common.protocol import AgentJobState, JobRequest, SingleRunResult


def _req(job_id="j1"):
    return JobRequest(
        job_id=job_id,
        attempt_token="token-123456",
        task={"name": "wikipedia_summarization"},
        model={"name": "m"},
        runtime={"name": "transformers"},
        runs_per_job=5,
    )


def test_spooled_files_are_private(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.save_spec(_req())
    assert [p.name for p in (spool.root / "j1").iterdir()] == ["spec.json"]
    assert oct((spool.root / "j1" / "spec.json").stat().st_mode & 0o777) == "0o600"  # it carries the attempt token


def test_safe_job_ids():
    assert is_safe_job_id("42") and is_safe_job_id("job-1.a_b")
    assert not is_safe_job_id("../x") and not is_safe_job_id(".hidden") and not is_safe_job_id("a/b")


def test_recover_marks_interrupted_and_keeps_runs(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.save_spec(_req())
    spool.save_run(
        "j1", SingleRunResult(run_index=1, cold_start=True, metrics={"run_wall_s": 2.0, "model_load_s": 1.0})
    )
    spool.save_run("j1", SingleRunResult(run_index=2, metrics={"run_wall_s": 1.0}))
    # Leftovers of a crash: a temp file and a job directory without a spec.
    (spool.root / "j1" / ".run-0003.json.abc.tmp").write_text("{")
    (spool.root / "half").mkdir()
    engine = JobEngine(spool, data_dir=tmp_path)
    assert engine.recover() == ["j1"]
    record = engine.get("j1")
    assert record.state is AgentJobState.INTERRUPTED
    assert [r.run_index for r in record.result.runs] == [1, 2]
    assert [r.metrics["run_wall_s"] for r in record.result.runs] == [2.0, 1.0]
    assert record.result.cold_start["model_load_s"] == 1.0
    assert not (spool.root / "half").exists()
    assert not list((spool.root / "j1").glob("*.tmp"))
    # The interrupted result is spooled: a second restart finds the same thing.
    again = JobEngine(spool, data_dir=tmp_path)
    again.recover()
    assert again.get("j1").state is AgentJobState.INTERRUPTED
    again.ack("j1")
    assert spool.job_ids() == []
