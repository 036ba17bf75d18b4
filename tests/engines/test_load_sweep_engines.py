"""Load sweeps through the agent's engine against real inference servers (gray box): vLLM and llama.cpp's server.

A two-point concurrency sweep of synthetic prompts, ``ignore_eos`` asked for: every request completes and yields
exactly ``output_tokens`` tokens (the server honoured ``ignore_eos``), and the prompts have exactly
``input_tokens`` tokens as the server counts them (vLLM measured them with its own ``/tokenize``; for llama.cpp the
agent's copy of the model's tokenizer did).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.engine import JobEngine
from agent_runtime.spool import Spool
from common.protocol import AgentJobState, JobRequest
from tests.agent.conftest import allowing
from tests.engines.conftest import SERVED_NAME, RunningServer, smollm2_hf_dir

pytestmark = pytest.mark.slow

INPUT_TOKENS = 32
OUTPUT_TOKENS = 8
REQUESTS = 3


def _sweep(tmp_path: Path, runtime: str, url: str, model: dict, paths: tuple[Path, ...] = (),
           levels: tuple[int, ...] = (1, 2)):
    """Run a sweep of synthetic prompts on the completions endpoint (two points by default); return the result."""
    request = JobRequest.model_validate({
        "job_id": f"load-{runtime}", "attempt_token": "token-123456",
        "task": {"name": "wikipedia_summarization", "params": {"num_samples": 1}},
        "model": model,
        "runtime": {"name": runtime, "params": {"base_url": f"{url}/v1", "endpoint": "completions"}},
        "load": {"concurrency": list(levels), "num_requests": REQUESTS, "warmup_requests": 1, "request_timeout_s": 300,
                 "prompts": {"source": "synthetic", "input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS}},
    })
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path, policy=allowing(tmp_path, paths=paths),
                       telemetry_interval_s=0.2)
    record, _ = engine.submit(request)
    record.thread.join(600)
    assert not record.thread.is_alive()
    return record.result


def _check(result, exact_prompt_tokens: bool) -> None:
    assert result.status is AgentJobState.COMPLETED, result.error
    sweep = result.load
    assert [p.concurrency for p in sweep.points] == [1, 2] and sweep.stopped_early is None
    for point in sweep.points:
        assert len(point.requests) == REQUESTS
        for r in point.requests:
            assert r.error is None and not r.timed_out, r.error
            assert r.output_tokens == OUTPUT_TOKENS  # ignore_eos honoured
            assert 0 < r.ttft_s < r.e2e_s
            if exact_prompt_tokens:
                assert r.prompt_tokens == INPUT_TOKENS
            else:
                assert abs(r.prompt_tokens - INPUT_TOKENS) <= 1
        assert not any("black-box" in n or "not measured in tokens" in n for n in point.notes), point.notes


def test_vllm_sweep(tmp_path: Path, vllm: RunningServer) -> None:
    _check(_sweep(tmp_path, "vllm", vllm.url, {"name": SERVED_NAME}), exact_prompt_tokens=True)


def test_llamacpp_server_sweep(tmp_path: Path, llama_server: RunningServer) -> None:
    # The agent has the model's folder: its tokenizer sizes the prompts (llama.cpp may add a BOS token).
    model_dir = smollm2_hf_dir()
    result = _sweep(tmp_path, "llamacpp_server", llama_server.url,
                    {"name": "smollm2-135m-instruct", "path": str(model_dir)}, paths=(model_dir.parent,))
    _check(result, exact_prompt_tokens=False)


def test_llama_cpp_python_server_sweep(tmp_path: Path, llama_cpp_python_server: RunningServer) -> None:
    # llama-cpp-python's server takes no ignore_eos: a request may stop at EOS, and then the point says so. It
    # serves one request at a time and by default interrupts a streaming request when another arrives (its
    # interrupt_requests setting: seen as broken streams at concurrency 2), so the sweep has one point.
    model_dir = smollm2_hf_dir()
    result = _sweep(tmp_path, "llamacpp_server", llama_cpp_python_server.url,
                    {"name": "smollm2-135m-instruct", "path": str(model_dir)}, paths=(model_dir.parent,), levels=(1,))
    assert result.status is AgentJobState.COMPLETED, result.error
    for point in result.load.points:
        assert len(point.requests) == REQUESTS
        assert all(r.error is None and 0 < r.ttft_s < r.e2e_s for r in point.requests)
        short = sum(1 for r in point.requests if r.output_tokens < OUTPUT_TOKENS)
        assert all(r.output_tokens <= OUTPUT_TOKENS for r in point.requests)
        assert (short == 0) == (not any("ignore_eos was asked for" in n for n in point.notes)), point.notes
