"""The gray-box ``vllm`` runtime (and the black-box ``openai`` one) against a real vLLM server on loopback.

The agent finds the server (``--endpoint vllm=URL``), advertises the runtime with the model it serves and the
engine's version, picks it for a job that names no ``base_url``, and measures by the definitions of ``vllm bench
serve``: the client's figures must agree with the server's own histograms over the same requests (TTFT, TPOT and
e2e within 2%, TTFT and e2e with a fixed per-request allowance; token counts exactly).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agent_runtime.admission import check_job_request
from agent_runtime.engine import JobEngine
from agent_runtime.info import with_servers
from agent_runtime.policy import AgentPolicy
from agent_runtime.settings import Settings
from agent_runtime.spool import Spool
from agent_runtime.vllm_metrics import parse_vllm_metrics, vllm_metrics_delta
from common.protocol import AgentInfo, AgentJobState, JobRequest, ModelSpec, MultiRunJobResult
from tests.engines.conftest import SERVED_NAME

pytestmark = pytest.mark.slow

#: Largest relative difference allowed between a client figure and the server's figure of the same definition.
AGREEMENT = 0.02
#: The same for the black-box job, one cold run: its first request also sets the connection up, and a single run of
#: eight requests averages less of the host's noise than the gray-box job's two warm runs.
BLACK_BOX_AGREEMENT = 0.03
#: Article text per prompt: long enough that the prefill (about a second on 2 cores) dwarfs the few milliseconds the
#: client adds to TTFT by the server's clock (HTTP, request validation, streaming).
DOCUMENT_CHARS = 3000
#: Figures compared: client metric -> the server's metric of the same definition.
PAIRS = {"ttft_s": "server_ttft_s", "tpot_s": "server_tpot_s", "e2e_latency_s": "server_e2e_latency_s"}


def _policy(tmp_path: Path, url: str) -> AgentPolicy:
    """An agent whose operator named the server (and probes nothing else)."""
    return AgentPolicy.from_settings(Settings(data_dir=tmp_path, endpoints=[f"vllm={url}"],
                                              probe_local_servers=False))


def _request(runtime: str, params: dict, *, runs: int = 3, samples: int = 4) -> JobRequest:
    return JobRequest(
        job_id=f"{runtime}-1",
        attempt_token="token-123456",
        task={"name": "wikipedia_summarization",
              "params": {"num_samples": samples, "max_new_tokens": 48, "max_document_chars": DOCUMENT_CHARS}},
        model={"name": SERVED_NAME},
        runtime={"name": runtime, "params": params},
        runs_per_job=runs,
    )


def _run(tmp_path: Path, policy: AgentPolicy, request: JobRequest) -> MultiRunJobResult:
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path, policy=policy)
    try:
        record, _ = engine.submit(request)
        record.thread.join(300)
        assert record.result is not None, "the job did not finish within 300 s"
        return record.result
    finally:
        engine.shutdown(5)


#: Per request, a client's TTFT and e2e also hold the HTTP, tokenization and streaming that the server's clock does
#: not see. On a 2-core host where the engine keeps the cores busy that part was 9 ms of a 240 ms TTFT on a quiet
#: run and 16.5 ms of 270 ms on a loaded one. Their relative limit applies above this absolute one, which stays
#: under one decode step (checked against the server's TPOT), so a definition off by one token still fails.
#: Per-token figures (TPOT, ITL) carry no such fixed part and keep the relative limit alone.
REQUEST_FLOOR_S = 0.03
PER_REQUEST = ("ttft_s", "e2e_latency_s")


def _close(client: float, server: float, limit: float = AGREEMENT, floor: float = 0.0) -> bool:
    return abs(client - server) <= max(limit * server, floor)


def test_the_agent_finds_the_server_and_advertises_what_it_serves(tmp_path, vllm):
    policy = _policy(tmp_path, vllm.url)
    info = with_servers(AgentInfo(name="a"), policy.servers)
    [server] = info.local_servers
    assert server.available and server.models == [SERVED_NAME], server
    assert server.engine == "vllm" and server.engine_version == "0.32.0"
    assert server.metrics_available, server.metrics_reason
    cap = next(r for r in info.runtimes if r.name == "vllm")
    assert cap.available and cap.served_models == [SERVED_NAME]


def test_gray_box_job_agrees_with_the_servers_histograms(tmp_path, vllm):
    # No base_url: the agent picks the local server serving the model.
    result = _run(tmp_path, _policy(tmp_path, vllm.url), _request("vllm", {}))
    assert result.status is AgentJobState.COMPLETED, f"{result.error}\n{vllm.log.read_text()[-3000:]}"
    assert result.access_mode.value == "gray_box"
    warm = [r for r in result.runs if not r.cold_start]
    assert len(warm) == 2
    for run in result.runs:
        m = run.metrics
        assert all(s.error is None for s in run.samples)
        # The server's token counters count what the client was told in usage, EOS step included.
        assert m["server_generation_tokens"] == sum(s.output_tokens for s in run.samples)
        assert m["server_prompt_tokens"] == sum(s.prompt_tokens for s in run.samples)
        assert m["server_requests"] == len(run.samples)
    figures = {}
    for client, server in PAIRS.items():
        c = sum(r.metrics[client] for r in warm) / len(warm)
        s = sum(r.metrics[server] for r in warm) / len(warm)
        figures[client] = (c, s)
        print(f"{client}: client {c * 1000:.2f} ms, server {s * 1000:.2f} ms ({(c - s) / s:+.2%})")
    table = "; ".join(f"{k} client {c:.5f} s, server {s:.5f} s" for k, (c, s) in figures.items())
    assert figures["tpot_s"][1] > REQUEST_FLOOR_S, "the allowance must stay under one decode step"
    assert all(_close(c, s, AGREEMENT, REQUEST_FLOOR_S if k in PER_REQUEST else 0.0)
               for k, (c, s) in figures.items()), table
    # The client sees a request start before the server does and end after it.
    assert all(c >= s * 0.995 for k, (c, s) in figures.items() if k != "tpot_s"), table


def test_black_box_openai_runtime_on_the_same_server_agrees_too(tmp_path, vllm):
    metrics_url = f"{vllm.url}/metrics"
    before = parse_vllm_metrics(httpx.get(metrics_url, timeout=10).text)
    request = _request("openai", {"base_url": f"{vllm.url}/v1", "served_model": SERVED_NAME}, runs=1, samples=8)
    result = _run(tmp_path, _policy(tmp_path, vllm.url), request)
    after = parse_vllm_metrics(httpx.get(metrics_url, timeout=10).text)
    assert result.status is AgentJobState.COMPLETED, result.error
    assert result.access_mode.value == "black_box"
    [run] = result.runs
    server = vllm_metrics_delta(before, after)
    assert server["server_generation_tokens"] == sum(s.output_tokens for s in run.samples)
    for client, name in PAIRS.items():
        c, s = run.metrics[client], server[name]
        print(f"black box {client}: client {c * 1000:.2f} ms, server {s * 1000:.2f} ms ({(c - s) / s:+.2%})")
        floor = REQUEST_FLOOR_S if client in PER_REQUEST else 0.0
        assert floor < server["server_tpot_s"], "the allowance must stay under one decode step"
        assert _close(c, s, BLACK_BOX_AGREEMENT, floor), f"{client}: {c} vs {s}"


def test_a_model_the_server_does_not_serve_is_refused_with_the_reason(tmp_path, vllm):
    policy = _policy(tmp_path, vllm.url)
    info = with_servers(AgentInfo(name="a"), policy.servers)
    request = _request("vllm", {}, runs=1, samples=1).model_copy(update={"model": ModelSpec(name="qwen2.5-7b")})
    errors = check_job_request(request, info, data_dir=tmp_path, model_dirs=(), policy=policy)
    assert "no local vllm server serves model 'qwen2.5-7b'" in errors["runtime.params.base_url"]
    assert f"serves {SERVED_NAME}" in errors["runtime.params.base_url"]
