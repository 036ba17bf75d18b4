import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from agent_runtime.engine import JobEngine
from agent_runtime.runtimes import RequestError, make_runtime
from agent_runtime.runtimes.openai_runtime import CHUNK_COUNT_NOTE
from agent_runtime.spool import Spool
from agent_runtime.tasks import make_task
from agent_runtime.tasks.base import GenerationSettings, Sample
from common.protocol import AgentJobState, JobRequest
from tests.helpers import free_port, wait_for

from .conftest import allowing

SAMPLE = Sample("s1", "Title", "Some document text.", "Reference.")
TASK_PARAMS = {"name": "wikipedia_summarization", "params": {"num_samples": 1, "max_new_tokens": 16}}


def _request(runtime="openai", params=None, **kw):
    params = params or {"base_url": "http://endpoint.test/v1"}
    return JobRequest(
        job_id="j1",
        attempt_token="token-123456",
        task=TASK_PARAMS,
        model={"name": "served-model"},
        runtime={"name": runtime, "params": params},
        **kw,
    )


def _sse(chunks, usage=True):
    lines = []
    for text in chunks:
        lines.append({"choices": [{"index": 0, "delta": {"content": text}}]})
    last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    if usage:
        last["usage"] = {"prompt_tokens": 11, "completion_tokens": 7}
    lines.append(last)
    return "".join(f"data: {json.dumps(x)}\n\n" for x in lines) + "data: [DONE]\n\n"


def _runtime(tmp_path, handler, request=None, key_envs=()):
    policy = allowing(tmp_path, key_envs=key_envs, endpoints=("http://endpoint.test/v1",))
    rt = make_runtime(request or _request(), data_dir=tmp_path, policy=policy)
    rt.load()
    rt._client = httpx.Client(transport=httpx.MockTransport(handler))
    task = make_task("wikipedia_summarization", {"num_samples": 1}, data_dir=tmp_path)
    return rt, task


def test_streaming_with_usage(tmp_path, monkeypatch):
    seen = {}

    def handler(request):
        seen["body"] = json.loads(request.content)
        seen["auth"] = request.headers.get("authorization")
        return httpx.Response(
            200, text=_sse(["Hello", "", " world", "!"]), headers={"content-type": "text/event-stream"}
        )

    monkeypatch.setenv("ENDPOINT_TEST_KEY", "sk-secret")
    req = _request(params={"base_url": "http://endpoint.test/v1", "api_key_env": "ENDPOINT_TEST_KEY"})
    rt, task = _runtime(tmp_path, handler, req, key_envs=("ENDPOINT_TEST_KEY",))
    gen = rt.generate(task, SAMPLE, GenerationSettings(16, 0.0), lambda: False)
    assert gen.text == "Hello world!"
    assert gen.output_tokens == 7 and gen.prompt_tokens == 11 and not gen.notes
    assert len(gen.chunk_times) == 3  # the empty chunk is not a token
    assert gen.first_token == gen.chunk_times[0] and gen.finish_reason == "stop"
    body = seen["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["model"] == "served-model" and body["max_tokens"] == 16
    assert body["messages"][-1]["content"].endswith(SAMPLE.document)
    assert seen["auth"] == "Bearer sk-secret"


def test_streaming_without_usage_counts_chunks(tmp_path):
    rt, task = _runtime(tmp_path, lambda r: httpx.Response(200, text=_sse(["a", "b"], usage=False)))
    gen = rt.generate(task, SAMPLE, GenerationSettings(16, 0.0), lambda: False)
    assert gen.output_tokens == 2 and gen.prompt_tokens is None
    assert gen.notes == [CHUNK_COUNT_NOTE]


def test_http_error_is_a_request_error(tmp_path):
    rt, task = _runtime(tmp_path, lambda r: httpx.Response(500, text="boom"))
    with pytest.raises(RequestError, match="HTTP 500"):
        rt.generate(task, SAMPLE, GenerationSettings(16, 0.0), lambda: False)


def test_completions_endpoint(tmp_path):
    def handler(request):
        assert request.url.path == "/v1/completions"
        assert "prompt" in json.loads(request.content)
        data = {"choices": [{"index": 0, "text": "hi"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
        return httpx.Response(200, text=f"data: {json.dumps(data)}\n\ndata: [DONE]\n\n")

    req = _request(params={"base_url": "http://endpoint.test/v1", "endpoint": "completions"})
    rt, task = _runtime(tmp_path, handler, req)
    assert rt.generate(task, SAMPLE, GenerationSettings(4, 0.0), lambda: False).text == "hi"


METRICS_BEFORE = """# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_sum{model_name="m"} 10.0
vllm:e2e_request_latency_seconds_count{model_name="m"} 5
vllm:generation_tokens_total{model_name="m"} 100
"""
METRICS_AFTER = """# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_sum{model_name="m"} 12.0
vllm:e2e_request_latency_seconds_count{model_name="m"} 6
vllm:generation_tokens_total{model_name="m"} 107
"""


def test_vllm_runtime_adds_server_metrics(tmp_path):
    scrapes = [METRICS_BEFORE, METRICS_AFTER]

    def handler(request):
        if request.url.path == "/metrics":
            return httpx.Response(200, text=scrapes.pop(0))
        return httpx.Response(200, text=_sse(["x", "y"]))

    rt, task = _runtime(tmp_path, handler, _request("vllm", {"base_url": "http://endpoint.test/v1"}))
    rt.start_run(cold=True)
    rt.generate(task, SAMPLE, GenerationSettings(4, 0.0), lambda: False)
    measured = rt.finish_run()
    assert measured.metrics.get("server_e2e_latency_s") == pytest.approx(2.0)
    assert measured.metrics.get("server_generation_tokens") == pytest.approx(7)
    # No NVML here: host GPU metrics are absent with the reason.
    assert "gpu_power_w" not in measured.metrics and "NVML" in measured.unavailable["gpu_power_w"]


@pytest.fixture(scope="module")
def transformers_serve(smollm2_dir: Path):
    """A real `transformers serve` on loopback, serving the converted SmolLM2 offline."""
    port = free_port()
    exe = Path(sys.executable).parent / "transformers"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", str(smollm2_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def ready():
        if proc.poll() is not None:
            raise AssertionError(f"transformers serve exited with {proc.returncode}")
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, 120, 0.5)
        yield url, str(smollm2_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
def test_openai_runtime_against_transformers_serve(tmp_path, transformers_serve):
    url, served = transformers_serve
    # The operator allows the local endpoint (black-box endpoints are refused until allowed).
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path, policy=allowing(tmp_path, endpoints=(url,)))
    request = JobRequest(
        job_id="serve-1",
        attempt_token="token-123456",
        task={"name": "wikipedia_summarization", "params": {"num_samples": 2, "max_new_tokens": 24}},
        model={"name": "smollm2-135m-instruct"},
        runtime={"name": "openai", "params": {"base_url": f"{url}/v1", "served_model": served}},
        runs_per_job=2,
    )
    record, _ = engine.submit(request)
    record.thread.join(240)
    result = record.result
    assert result.status is AgentJobState.COMPLETED, result.error
    assert result.access_mode.value == "black_box"
    for run in result.runs:
        assert run.metrics["ttft_s"] < run.metrics["e2e_latency_s"]
        for s in run.samples:
            assert s.output and s.output_tokens > 1
            assert s.inter_token_gaps_s and all(g >= 0 for g in s.inter_token_gaps_s)
    assert "model_load_s" in result.unavailable_metrics
    assert result.statistics == {}  # raw runs only: the server computes statistics


class _TimedStream:
    """A loopback endpoint streaming 5 text chunks 20 ms apart, then, 40 ms later, the final EOS step as a chunk
    without text; ``usage.completion_tokens`` counts 6 tokens, the EOS one included (as vLLM does)."""

    GAP_S = 0.020
    EOS_GAP_S = 0.040

    def __init__(self) -> None:
        import http.server
        import threading
        import time

        stream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()

                def send(obj):
                    self.wfile.write(f"data: {json.dumps(obj)}\n\n".encode())
                    self.wfile.flush()

                for i in range(5):
                    if i:
                        time.sleep(stream.GAP_S)
                    send({"choices": [{"index": 0, "delta": {"content": f"t{i} "}}]})
                time.sleep(stream.EOS_GAP_S)
                send({"choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}]})
                send({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 6}})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_e2e_ends_at_the_eos_step_so_tpot_uses_the_servers_token_count(tmp_path):
    from agent_runtime.measure import sample_result
    from common.metrics import Metric

    stream = _TimedStream()
    try:
        base = f"http://127.0.0.1:{stream.port}/v1"
        policy = allowing(tmp_path, endpoints=(base,))
        rt = make_runtime(_request(params={"base_url": base}), data_dir=tmp_path, policy=policy)
        rt.load()
        task = make_task("wikipedia_summarization", {"num_samples": 1}, data_dir=tmp_path)
        gen = rt.generate(task, SAMPLE, GenerationSettings(16, 0.0), lambda: False)
        rt.close()
    finally:
        stream.close()
    assert gen.output_tokens == 6 and len(gen.chunk_times) == 5
    assert gen.last_step is not None and gen.last_step - gen.chunk_times[-1] >= stream.EOS_GAP_S * 0.9
    metrics = sample_result(SAMPLE, gen).metrics
    # The EOS step is a decode step the server counted: TPOT = (e2e - ttft) / (6 - 1) over 4 gaps of 20 ms and the
    # 40 ms EOS step: 24 ms. Ending e2e at the last text chunk would give 80 / 5 = 16 ms (a third low).
    expected = (4 * stream.GAP_S + stream.EOS_GAP_S) / 5
    assert metrics[Metric.TPOT_S] == pytest.approx(expected, abs=0.004)
    assert metrics[Metric.E2E_LATENCY_S] == pytest.approx(gen.last_step - gen.sent)
    # The gaps between tokens with text are unchanged (they match the server's inter-token latency).
    assert metrics[Metric.INTER_TOKEN_GAPS_S] == pytest.approx(stream.GAP_S, abs=0.004)


def test_e2e_ends_at_the_last_step_when_there_is_one_else_at_the_last_chunk():
    from agent_runtime.measure import sample_result
    from agent_runtime.runtimes.base import Generation
    from common.metrics import Metric

    base = {"text": "x", "prompt_tokens": 3, "output_tokens": 3, "sent_at": 1000.0, "sent": 10.0,
            "first_token": 10.1, "chunk_times": [10.1, 10.2, 10.3]}
    plain = sample_result(SAMPLE, Generation(**base)).metrics
    assert plain[Metric.E2E_LATENCY_S] == pytest.approx(0.3)
    assert plain[Metric.TPOT_S] == pytest.approx(0.1)
    with_eos = sample_result(SAMPLE, Generation(**base, last_step=10.5)).metrics
    assert with_eos[Metric.E2E_LATENCY_S] == pytest.approx(0.5)
    assert with_eos[Metric.TPOT_S] == pytest.approx(0.2)
    assert with_eos[Metric.INTER_TOKEN_GAPS_S] == pytest.approx(0.1)
