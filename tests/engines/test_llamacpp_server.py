"""The gray-box llamacpp_server runtime against real llama.cpp servers on loopback.

``llama-server --metrics``: the client's figures and the server's counters describe the same requests, so they
must agree: token counts exactly, the mean gap between consecutive tokens within 2%. ``python -m
llama_cpp.server`` has no ``/metrics``: every client figure, and the server's figures missing with the reason.
"""

from __future__ import annotations

import math

import httpx
import pytest

from agent_runtime.engine import JobEngine
from agent_runtime.llamacpp_metrics import llamacpp_interval, parse_llamacpp_metrics
from agent_runtime.local_servers import parse_server_spec
from agent_runtime.policy import AgentPolicy
from agent_runtime.spool import Spool
from common.protocol import AgentJobState, JobRequest, MultiRunJobResult

pytestmark = pytest.mark.slow

#: Largest relative difference allowed between a client figure and the server's figure of the same definition.
AGREEMENT = 0.02


def _job(url: str, runs: int = 2, samples: int = 3, max_new_tokens: int = 48) -> JobRequest:
    return JobRequest(
        job_id="llamacpp-server-1",
        attempt_token="token-123456",
        task={
            "name": "wikipedia_summarization",
            "params": {"num_samples": samples, "max_new_tokens": max_new_tokens, "max_document_chars": 1500},
        },
        model={"name": "smollm2-135m-instruct"},
        runtime={"name": "llamacpp_server", "params": {"base_url": f"{url}/v1", "timeout_s": 120}},
        runs_per_job=runs,
    )


def _run(tmp_path, request: JobRequest, policy: AgentPolicy | None = None) -> MultiRunJobResult:
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path, policy=policy)
    try:
        record, _ = engine.submit(request)
        record.thread.join(180)
        assert record.result is not None, "the job did not finish within 180 s"
        return record.result
    finally:
        engine.shutdown(5)


def test_client_and_server_figures_agree(tmp_path, llama_server):
    result = _run(tmp_path, _job(llama_server.url))
    assert result.status is AgentJobState.COMPLETED, result.error
    for run in result.runs:
        m, samples = run.metrics, run.samples
        assert all(s.error is None for s in samples)
        # Token counts: the server's own, exactly (usage in the stream; the EOS token counted on both sides).
        assert m["server_generation_tokens"] == sum(s.output_tokens for s in samples)
        assert m["server_prompt_tokens"] == sum(s.prompt_tokens for s in samples)
        # Decode: the client's (e2e - ttft) over (n - 1) gaps per request, summed over requests, is the server's
        # generation seconds over its decode steps (first token to last token, per request).
        client_gap = math.fsum(s.metrics["e2e_latency_s"] - s.metrics["ttft_s"] for s in samples) / sum(
            s.output_tokens - 1 for s in samples
        )
        server_gap = m["server_inter_token_latency_s"]
        assert abs(client_gap - server_gap) / server_gap < AGREEMENT, (client_gap, server_gap)
        if len({s.output_tokens for s in samples}) == 1:  # equal lengths: the per-request mean is the same figure
            assert abs(m["tpot_s"] - server_gap) / server_gap < AGREEMENT, (m["tpot_s"], server_gap)
        # Prefill: the server's share of TTFT (no HTTP, templating, tokenization) is below the client's TTFT.
        assert 0 < m["server_prefill_s"] <= m["ttft_s"]
        # Figures whose definitions differ from vLLM's are never reported under vLLM's names.
        assert "server_ttft_s" not in m and "server_tpot_s" not in m
        shown = ("ttft_s", "tpot_s", "server_prefill_s", "server_inter_token_latency_s")
        print("llama-server run:", {k: round(m[k], 5) for k in shown}, "client gap", round(client_gap, 5))  # -s


def test_real_scrape_parses_into_the_interval(llama_server):
    text = httpx.get(f"{llama_server.url}/metrics", timeout=5).text
    scrape = parse_llamacpp_metrics(text)
    for name in ("llamacpp:prompt_tokens_total", "llamacpp:tokens_predicted_total",
                 "llamacpp:tokens_predicted_seconds_total", "llamacpp:prompt_seconds_total",
                 "llamacpp:n_decode_total", "llamacpp:requests_processing"):
        assert name in scrape, name
    same = llamacpp_interval(scrape, scrape, requests=0)
    assert same.metrics["server_generation_tokens"] == 0
    assert "server_inter_token_latency_s" in same.unavailable  # nothing generated in an empty interval


def test_server_without_metrics_gives_client_figures_and_the_reason(tmp_path, llama_cpp_python_server):
    result = _run(tmp_path, _job(llama_cpp_python_server.url, runs=1, samples=2, max_new_tokens=16))
    assert result.status is AgentJobState.COMPLETED, result.error
    run = result.runs[0]
    assert run.metrics["ttft_s"] > 0 and run.metrics["output_tokens_per_s"] > 0
    assert run.unavailable_metrics["server_metrics"] == (
        "server metrics not read: the metrics URL answered HTTP 404"
    )
    assert not any(k.startswith("server_") for k in run.metrics)
    # It streams no usage: output tokens are counted from the chunks, and the run says so.
    assert any("output_tokens counts non-empty streamed chunks" in note for note in run.notes)


def test_job_without_base_url_goes_to_the_server_the_operator_named(tmp_path, llama_server):
    # As `ruckus-agent serve --endpoint llamacpp_server=URL` (Ollama: its URL on port 11434) sets it up.
    policy = AgentPolicy.strict(tmp_path)
    policy = AgentPolicy(policy.key_envs, policy.endpoints, policy.paths,
                         servers=(parse_server_spec(f"llamacpp_server={llama_server.url}"),))
    request = _job(llama_server.url, runs=1, samples=1, max_new_tokens=8)
    request.runtime.params.pop("base_url")
    result = _run(tmp_path, request, policy)
    assert result.status is AgentJobState.COMPLETED, result.error
    assert result.runs[0].metrics["server_generation_tokens"] == result.runs[0].samples[0].output_tokens
