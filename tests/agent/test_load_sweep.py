"""Load sweeps in the agent: a real JobEngine runs load jobs through the openai runtime against an
OpenAI-compatible stand-in on loopback (real HTTP, real streaming), plus admission and the pinned async client."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from agent_runtime.admission import check_job_request
from agent_runtime.egress import EndpointPolicy, EndpointRefused, SecretRefused, async_pinned_client
from agent_runtime.engine import JobEngine
from agent_runtime.load.sweep import check_load, load_modes
from agent_runtime.runtimes import RUNTIME_REGISTRY, make_runtime
from agent_runtime.runtimes.openai_runtime import OpenAIRuntime
from agent_runtime.runtimes.transformers_runtime import TransformersRuntime
from agent_runtime.spool import Spool
from common.protocol import AgentInfo, AgentJobState, JobRequest, JobStage, LoadPointRun
from tests.agent.servers import UvicornThread
from tests.helpers import wait_for

from .conftest import allowing, job_payload


class StandIn:
    """An OpenAI-compatible endpoint whose behaviour a test changes while a sweep runs.

    Each request streams ``max_tokens`` chunks of one word, ``token_s`` apart (times ``slow``), then a final chunk
    without text carrying the finish reason and the usage. ``fail`` answers every request with HTTP 500.

    Attributes:
        bodies: Every request body received.
        fail: Answer 500.
        slow: Factor on the per-token delay.
    """

    def __init__(self, token_s: float = 0.004) -> None:
        self.token_s = token_s
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.fail = False
        self.slow = 1.0
        self.eos_after: int | None = None  # stop at "EOS" after this many tokens whatever ignore_eos says
        self.in_flight = 0
        self.max_in_flight = 0
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()
        standin = self

        async def stream(body: dict, chat: bool):
            standin.in_flight += 1
            standin.max_in_flight = max(standin.max_in_flight, standin.in_flight)
            try:
                n = int(body.get("max_tokens") or 4)
                n = min(n, standin.eos_after) if standin.eos_after is not None else n
                for i in range(n):
                    await asyncio.sleep(standin.token_s * standin.slow)
                    part = {"delta": {"content": f"w{i} "}} if chat else {"text": f"w{i} "}
                    yield f"data: {json.dumps({'choices': [{'index': 0, **part}]})}\n\n"
                prompt = body.get("prompt") or " ".join(m["content"] for m in body.get("messages", []))
                last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
                        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": n}}
                yield f"data: {json.dumps(last)}\n\n"
                yield "data: [DONE]\n\n"
            finally:
                standin.in_flight -= 1

        async def handle(request: Request, chat: bool) -> Response:
            body = await request.json()
            standin.bodies.append(body)
            standin.headers.append(dict(request.headers))
            if standin.fail:
                return JSONResponse({"error": "overloaded: internal detail 10.1.2.3"}, status_code=500)
            return StreamingResponse(stream(body, chat), media_type="text/event-stream")

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            return await handle(request, True)

        @app.post("/v1/completions")
        async def completions(request: Request) -> Response:
            return await handle(request, False)

        @app.post("/v1/redirect/chat/completions")
        async def redirect() -> Response:
            return Response(status_code=307, headers={"location": "http://169.254.169.254/latest"})

        return app


@pytest.fixture
def standin():
    endpoint = StandIn()
    with UvicornThread(endpoint.app) as server:
        endpoint.url = f"{server.url}/v1"
        yield endpoint


class Progress:
    """An engine listener that records progress and runs a test's action on each report."""

    def __init__(self, action=None) -> None:
        self.seen: list = []
        self.action = action
        self.finished = threading.Event()

    def on_progress(self, progress) -> None:
        self.seen.append(progress)
        if self.action is not None:
            self.action(progress)

    def on_finished(self, job_id: str) -> None:
        self.finished.set()


def _load_job(url: str, load: dict, **overrides) -> JobRequest:
    body = job_payload(
        "/unused",
        model={"name": "served-model"},
        runtime={"name": "openai", "params": {"base_url": url, **overrides.pop("params", {})}},
        load=load,
        **overrides,
    )
    return JobRequest.model_validate(body)


def _engine(tmp_path, url, listener=None):
    policy = allowing(tmp_path, endpoints=(url,))
    return JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path, policy=policy, listener=listener,
                     telemetry_interval_s=0.05)


def _run(engine, request, timeout=60):
    record, created = engine.submit(request)
    assert created
    record.thread.join(timeout)
    assert not record.thread.is_alive()
    return record


SYNTHETIC = {"source": "synthetic", "input_tokens": 12, "output_tokens": 5}


def test_concurrency_sweep_runs_points_in_order_with_raw_records(tmp_path, standin):
    progress = Progress()
    engine = _engine(tmp_path, standin.url, progress)
    load = {"concurrency": [1, 2, 4], "num_requests": 8, "warmup_requests": 2, "prompts": SYNTHETIC}
    record = _run(engine, _load_job(standin.url, load))
    result = record.result
    assert result.status is AgentJobState.COMPLETED, result.error
    assert result.runs == [] and result.load is not None
    sweep = result.load
    assert sweep.mode == "concurrency" and sweep.method == "http" and sweep.stopped_early is None
    assert [(p.index, p.concurrency) for p in sweep.points] == [(0, 1), (1, 2), (2, 4)]
    for point in sweep.points:
        assert len(point.requests) == 8 and point.warmup_requests == 2 and point.duration_s > 0
        for r in point.requests:
            assert r.error is None and not r.timed_out
            assert 0 < r.ttft_s <= r.e2e_s and len(r.itl_s) == 5 and r.output_tokens == 5  # 4 gaps + the final one
            assert r.prompt_tokens == 12  # the stand-in counts words: synthetic prompts are 12 words here
        assert any("black-box endpoint" in n for n in point.notes)
        assert any("ignore_eos" in n for n in point.notes)
        assert any("not measured in tokens" in n for n in point.notes)
        assert point.power_w is None and point.energy_j is None
    # Requests as a sequential run sends them, plus ignore_eos (synthetic prompts ask for it).
    body = standin.bodies[-1]
    assert body["model"] == "served-model" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 5
    assert body["temperature"] == 0.0 and body["ignore_eos"] is True
    assert body["messages"][0]["role"] == "user" and len(body["messages"][0]["content"].split()) == 12
    assert len(standin.bodies) == 3 * (8 + 2)
    assert standin.max_in_flight <= 4
    # Progress: each point is the job's current run; requests counted within it.
    assert {p.runs_total for p in progress.seen} == {3}
    points_seen = [p.run_index for p in progress.seen if p.stage is JobStage.WARM_RUN]
    assert sorted(set(points_seen)) == [1, 2, 3] and points_seen == sorted(points_seen)
    assert any(p.samples_done == 8 and p.samples_total == 8 for p in progress.seen)
    # Every point was spooled as it finished, and the result too.
    spooled = Spool(tmp_path / "spool").load_points("job-1")
    assert [p.index for p in spooled] == [0, 1, 2]
    assert Spool(tmp_path / "spool").load_result("job-1").load.points == sweep.points


def test_request_rate_sweep_on_the_completions_endpoint(tmp_path, standin):
    engine = _engine(tmp_path, standin.url)
    load = {"request_rate": [40.0, "inf"], "num_requests": 6, "prompts": {"source": "synthetic",
                                                                          "input_tokens": 4, "output_tokens": 3,
                                                                          "ignore_eos": False}}
    result = _run(engine, _load_job(standin.url, load, params={"endpoint": "completions"})).result
    assert result.status is AgentJobState.COMPLETED, result.error
    assert [(p.index, p.request_rate) for p in result.load.points] == [(0, 40.0), (1, "inf")]
    assert all(len(p.requests) == 6 and all(r.error is None for r in p.requests) for p in result.load.points)
    body = standin.bodies[-1]
    assert "ignore_eos" not in body and isinstance(body["prompt"], str) and "messages" not in body


def test_errors_at_a_point_stop_the_sweep(tmp_path, standin):
    def overload(progress):
        if progress.stage is JobStage.WARM_RUN and progress.run_index == 2:
            standin.fail = True  # the endpoint breaks down from the second point on

    engine = _engine(tmp_path, standin.url, Progress(overload))
    load = {"concurrency": [1, 2, 4, 8], "num_requests": 4, "prompts": SYNTHETIC}
    result = _run(engine, _load_job(standin.url, load)).result
    assert result.status is AgentJobState.COMPLETED, result.error
    sweep = result.load
    assert [p.concurrency for p in sweep.points] == [1, 2]
    assert sweep.stopped_early.startswith("after point 1: 100% of requests failed")
    failed = sweep.points[1].requests
    assert all(r.error and r.ttft_s is None for r in failed)
    # Nothing the endpoint said leaks into the records: only the status code.
    assert all("10.1.2.3" not in r.error and "overloaded" not in r.error for r in failed)
    assert len(standin.bodies) == 8  # the third and fourth points never ran


def test_latency_explosion_stops_the_sweep(tmp_path, standin):
    def saturate(progress):
        if progress.stage is JobStage.WARM_RUN and progress.run_index == 2:
            standin.slow = 100.0  # every token now takes 100 times as long (far above the factor on a busy host)

    engine = _engine(tmp_path, standin.url, Progress(saturate))
    load = {"concurrency": [1, 2, 4], "num_requests": 3, "prompts": SYNTHETIC,
            "early_stop": {"latency_factor": 10, "max_error_rate": None}}
    result = _run(engine, _load_job(standin.url, load)).result
    assert result.status is AgentJobState.COMPLETED, result.error
    assert [p.concurrency for p in result.load.points] == [1, 2]
    assert "median e2e latency" in result.load.stopped_early and "10 times" in result.load.stopped_early


def test_every_request_failing_fails_the_job_with_its_points(tmp_path, standin):
    standin.fail = True
    engine = _engine(tmp_path, standin.url)
    load = {"concurrency": [1, 2], "num_requests": 2, "prompts": SYNTHETIC}
    result = _run(engine, _load_job(standin.url, load)).result
    assert result.status is AgentJobState.FAILED
    assert result.error.startswith("every request of the sweep failed; first error: ")
    assert "500" in result.error and len(result.load.points) == 1
    assert result.error.endswith("(the endpoint may refuse ignore_eos: set load.prompts.ignore_eos to false)")


def test_cancel_mid_point_keeps_finished_points_and_drops_the_partial_one(tmp_path, standin):
    engine_box = {}

    def cancel_in_second_point(progress):
        if progress.stage is JobStage.WARM_RUN and progress.run_index == 2 and progress.samples_done >= 1:
            standin.slow = 1000.0  # what is still in flight would take seconds per token
            engine_box["engine"].cancel("job-1")

    engine = _engine(tmp_path, standin.url, Progress(cancel_in_second_point))
    engine_box["engine"] = engine
    load = {"concurrency": [1, 2, 4], "num_requests": 40, "prompts": SYNTHETIC}
    record = _run(engine, _load_job(standin.url, load), timeout=30)
    result = record.result
    assert result.status is AgentJobState.CANCELLED
    assert result.error == "cancelled; 1 finished load point(s) kept"
    assert [p.index for p in result.load.points] == [0]
    assert [p.index for p in Spool(tmp_path / "spool").load_points("job-1")] == [0]
    wait_for(lambda: standin.in_flight == 0, 10, what="the cancelled requests to be closed")


def test_timeout_mid_sweep(tmp_path, standin):
    standin.slow = 25.0  # 0.1 s per token: each request takes about half a second
    engine = _engine(tmp_path, standin.url)
    load = {"concurrency": [1, 1, 1], "num_requests": 2, "prompts": SYNTHETIC}
    result = _run(engine, _load_job(standin.url, load, timeout_s=1.5), timeout=30).result
    assert result.status is AgentJobState.TIMED_OUT
    assert len(result.load.points) <= 2 and result.error.startswith("timed out after 1.5 s")


def test_restart_keeps_spooled_points(tmp_path):
    spool = Spool(tmp_path / "spool")
    request = _load_job("http://127.0.0.1:9/v1", {"concurrency": [1, 2, 4], "num_requests": 2})
    spool.save_spec(request)
    spool.save_point("job-1", LoadPointRun(index=0, concurrency=1, duration_s=1.5))
    engine = JobEngine(spool, data_dir=tmp_path)
    assert engine.recover() == ["job-1"]
    record = engine.get("job-1")
    assert record.result.status is AgentJobState.INTERRUPTED and record.result.runs == []
    assert [p.index for p in record.result.load.points] == [0] and record.result.load.mode == "concurrency"
    assert "1 finished load point(s) kept" in record.result.error
    assert record.progress.run_index == 1 and record.progress.runs_total == 3


def test_prompt_file_error_fails_the_job_naming_the_line(tmp_path, standin):
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "ok"}\n{"prompt": ""}\n')
    engine = _engine(tmp_path, standin.url)
    load = {"concurrency": [1], "num_requests": 2, "prompts": {"source": "jsonl", "path": "prompts.jsonl"}}
    result = _run(engine, _load_job(standin.url, load)).result
    assert result.status is AgentJobState.FAILED
    assert result.error == "load.prompts.path: line 2: prompt: must be a non-empty string"
    assert standin.bodies == []


# -- admission ------------------------------------------------------------------------------------------


def _check(tmp_path, request, **policy_kw):
    return check_job_request(request, None, data_dir=tmp_path, model_dirs=(), policy=allowing(tmp_path, **policy_kw))


def test_admission_refuses_a_runtime_that_cannot_sweep(tmp_path):
    body = job_payload("/unused", task={"name": "hardware_benchmark", "params": {}},
                       model={"name": "none"}, runtime={"name": "hardware", "params": {}},
                       load={"concurrency": [1], "num_requests": 1})
    errors = _check(tmp_path, JobRequest.model_validate(body))
    assert errors == {"load": "runtime 'hardware' cannot run a load sweep"}


def test_admission_refuses_request_rates_on_transformers(tmp_path, tiny_model_dir):
    request = JobRequest.model_validate(job_payload(tiny_model_dir, load={"request_rate": [1.0], "num_requests": 1}))
    errors = _check(tmp_path, request, paths=(tiny_model_dir.parent,))
    assert errors == {"load.request_rate": (
        "the transformers runtime sweeps concurrency as batch sizes; use an endpoint runtime (vllm, openai) "
        "for request rates"
    )}
    ok = JobRequest.model_validate(job_payload(tiny_model_dir, load={"concurrency": [1, 2], "num_requests": 1}))
    assert _check(tmp_path, ok, paths=(tiny_model_dir.parent,)) == {}


def test_admission_refuses_a_prompt_file_outside_the_allowed_places(tmp_path):
    url = "http://127.0.0.1:9/v1"
    load = {"concurrency": [1], "num_requests": 1, "prompts": {"source": "jsonl", "path": "../elsewhere.jsonl"}}
    errors = _check(tmp_path, _load_job(url, load), endpoints=(url,))
    assert list(errors) == ["load.prompts.path"] and errors["load.prompts.path"].startswith("not a location")
    load["prompts"]["path"] = "mine.jsonl"
    assert _check(tmp_path, _load_job(url, load), endpoints=(url,)) == {}
    # The endpoint must still be allowed: the sweep goes nowhere the operator did not allow.
    assert "runtime.params.base_url" in _check(tmp_path, _load_job(url, load))


def test_runtimes_advertise_their_load_modes(tmp_path):
    assert load_modes(OpenAIRuntime) == ("concurrency", "request_rate")
    assert load_modes(RUNTIME_REGISTRY["vllm"]) == load_modes(RUNTIME_REGISTRY["llamacpp_server"])
    assert load_modes(TransformersRuntime) == ("concurrency",)
    assert load_modes(RUNTIME_REGISTRY["hardware"]) == ()
    info = AgentInfo(name="test-agent")
    assert OpenAIRuntime.capability(info).load_modes == ["concurrency", "request_rate"]
    assert RUNTIME_REGISTRY["vllm"].capability(info).load_modes == ["concurrency", "request_rate"]
    runtime = make_runtime(_load_job("http://127.0.0.1:9/v1", {"concurrency": [1], "num_requests": 1}),
                           data_dir=tmp_path)
    assert check_load(runtime.request, runtime, allowing(tmp_path)) == {}


# -- the generator's client --------------------------------------------------------------------------------


def test_async_pinned_client_keeps_to_the_policy(standin):
    policy = EndpointPolicy.from_values([standin.url])

    async def main():
        async with async_pinned_client(policy, "openai", timeout=5, secrets=lambda: ("agent-secret-0001",)) as c:
            ok = await c.post(f"{standin.url}/completions", json={"max_tokens": 1, "prompt": "x"})
            assert ok.status_code == 200 and "data:" in ok.text
            redirected = await c.post(f"{standin.url}/redirect/chat/completions", json={})
            assert redirected.status_code == 307  # not followed
            with pytest.raises(EndpointRefused):
                await c.post("http://127.0.0.2:1/v1/completions", json={})
            with pytest.raises(SecretRefused):
                await c.post(f"{standin.url}/completions", json={"prompt": "agent-secret-0001"})

    asyncio.run(main())
    assert [b.get("prompt") for b in standin.bodies] == ["x"]  # the refused ones were never sent


def test_load_target_builds_the_sequential_request(tmp_path, monkeypatch):
    from agent_runtime.load.generator import LoadPrompt
    from common.protocol import PromptSpec

    monkeypatch.setenv("ENDPOINT_KEY", "sk-test")
    request = _load_job("http://127.0.0.1:9/v1", {"concurrency": [1], "num_requests": 1},
                        params={"api_key_env": "ENDPOINT_KEY", "served_model": "m-served"})
    policy = allowing(tmp_path, key_envs=("ENDPOINT_KEY",), endpoints=("http://127.0.0.1:9/v1",))
    runtime = make_runtime(request, data_dir=tmp_path, policy=policy)
    target = runtime.load_target(PromptSpec())
    assert target.url == "http://127.0.0.1:9/v1/chat/completions"
    assert target.headers["Authorization"] == "Bearer sk-test"
    body = target.build_body(LoadPrompt("plain", [{"role": "user", "content": "hi"}], None, 7))
    assert body == {"model": "m-served", "stream": True, "stream_options": {"include_usage": True},
                    "max_tokens": 7, "temperature": 0.0, "messages": [{"role": "user", "content": "hi"}]}
    assert runtime.load_notes(PromptSpec()) == [
        "black-box endpoint: the serving host's power and energy are out of the agent's sight"
    ]
    assert isinstance(runtime.load_client(30.0), httpx.AsyncClient)


# -- white box: batches on the model itself ------------------------------------------------------------------------


def test_transformers_sweep_runs_batches_on_the_loaded_model(tmp_path, tiny_model_dir):
    progress = Progress()
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path, listener=progress, telemetry_interval_s=0.05,
                       policy=allowing(tmp_path, paths=(tiny_model_dir.parent,)))
    load = {"concurrency": [1, 2], "num_requests": 3, "prompts": {"source": "synthetic", "input_tokens": 8,
                                                                   "output_tokens": 4}}
    result = _run(engine, JobRequest.model_validate(job_payload(tiny_model_dir, load=load)), timeout=120).result
    assert result.status is AgentJobState.COMPLETED, result.error
    sweep = result.load
    assert sweep.method == "batch" and [p.concurrency for p in sweep.points] == [1, 2]
    for point in sweep.points:
        assert len(point.requests) == 3
        # The runtime's own tokenizer made the prompts: exactly input_tokens each, ignore_eos honoured.
        assert all(r.error is None and r.prompt_tokens == 8 and r.output_tokens == 4 for r in point.requests)
        assert any(n.startswith("the model loaded in ") for n in point.notes)
        assert any("static batching" in n for n in point.notes)
        # Power where NVML reads it, else the reason.
        assert point.power_w is not None or any(n.startswith("no GPU power or energy") for n in point.notes)
    assert result.execution is not None and result.execution.device == "cpu"
    assert max(p.run_index for p in progress.seen) == 2


# -- gray box: the server's tokenizer --------------------------------------------------------------------------------


class TokenizingServer:
    """A vLLM-like server's /tokenize and /detokenize over a word vocabulary (one token per word)."""

    def __init__(self) -> None:
        self.vocab: list[str] = []
        self.calls = 0
        app = FastAPI()
        server = self

        @app.post("/tokenize")
        async def tokenize(request: Request) -> dict:
            body = await request.json()
            server.calls += 1
            ids = []
            for word in body["prompt"].split():
                if word not in server.vocab:
                    server.vocab.append(word)
                ids.append(server.vocab.index(word))
            return {"count": len(ids), "max_model_len": 4096, "tokens": ids}

        @app.post("/detokenize")
        async def detokenize(request: Request) -> dict:
            body = await request.json()
            return {"prompt": " ".join(server.vocab[i] for i in body["tokens"])}

        self.app = app


def test_vllm_runtime_measures_synthetic_prompts_with_the_servers_tokenizer(tmp_path):
    from agent_runtime.load.prompts import synthetic_prompts
    from agent_runtime.load.sweep import prompt_tokenizer
    from common.protocol import PromptSpec

    server = TokenizingServer()
    with UvicornThread(server.app) as running:
        request = JobRequest.model_validate(job_payload(
            "/unused", model={"name": "served-model"}, load={"concurrency": [1], "num_requests": 1},
            runtime={"name": "vllm", "params": {"base_url": f"{running.url}/v1"}},
        ))
        runtime = make_runtime(request, data_dir=tmp_path)  # loopback: the gray-box runtime's own host
        runtime.load()
        try:
            tokenizer = prompt_tokenizer(runtime, request, data_dir=tmp_path, model_dirs=(),
                                         policy=allowing(tmp_path))
            assert tokenizer is not None and tokenizer.candidate_ids() is None
            built = synthetic_prompts(10, 3, 4, seed=5, tokenizer=tokenizer)
            assert [p.prompt_tokens for p in built.prompts] == [10] * 4
            assert all(len(p.text.split()) == 10 for p in built.prompts)
            # A gray-box server honours ignore_eos: the body asks for it and no point says otherwise.
            spec = PromptSpec(source="synthetic", input_tokens=10, output_tokens=3)
            assert runtime.load_target(spec).build_body(built.prompts[0])["ignore_eos"] is True
            assert runtime.load_notes(spec) == []
        finally:
            runtime.close()
    # Once the server is gone, there is no tokenizer (and no error): prompts will say they are approximate.
    assert prompt_tokenizer(runtime, request, data_dir=tmp_path, model_dirs=(), policy=allowing(tmp_path)) is None


def test_async_pinned_client_connects_to_the_checked_address():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok")

    answers = {"api.example.test": ["93.184.216.34"], "rebound.example.test": ["169.254.169.254"]}
    policy = EndpointPolicy.from_values(["https://api.example.test/v1", "https://rebound.example.test/v1"],
                                        resolver=lambda host, port: answers[host])

    async def main():
        async with async_pinned_client(policy, "openai", timeout=5, inner=httpx.MockTransport(handler)) as client:
            assert (await client.post("https://api.example.test/v1/completions", json={})).text == "ok"
            with pytest.raises(EndpointRefused):  # a name that resolves to a metadata address: never sent
                await client.post("https://rebound.example.test/v1/completions", json={})

    asyncio.run(main())
    [request] = seen
    assert request.url.host == "93.184.216.34" and request.headers["host"] == "api.example.test"
    assert request.extensions["sni_hostname"] == "api.example.test"


def test_a_server_that_ignores_ignore_eos_is_noted(tmp_path, standin):
    standin.eos_after = 2
    engine = _engine(tmp_path, standin.url)
    load = {"concurrency": [1], "num_requests": 3, "prompts": SYNTHETIC}
    result = _run(engine, _load_job(standin.url, load)).result
    assert result.status is AgentJobState.COMPLETED, result.error
    [point] = result.load.points
    assert all(r.output_tokens == 2 for r in point.requests)
    assert ("3 of 3 requests ended before their output_tokens although ignore_eos was asked for: the server does "
            "not honour it") in point.notes


def test_async_pinned_client_resends_a_request_dropped_without_a_response():
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request.content)
        if len(attempts) <= 2:  # two stale kept-alive connections in a row
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, text="ok")

    policy = EndpointPolicy.from_values(["127.0.0.0/8"])

    async def main():
        async with async_pinned_client(policy, "openai", timeout=5, inner=httpx.MockTransport(handler)) as client:
            assert (await client.post("http://127.0.0.1:9/v1/completions", json={"p": 1})).text == "ok"
            assert attempts == [b'{"p":1}'] * 3  # the same body each time
            attempts.clear()

            async def body():
                yield b"{}"

            with pytest.raises(httpx.RemoteProtocolError):  # a streamed body cannot be sent again
                await client.post("http://127.0.0.1:9/v1/completions", content=body())
            assert len(attempts) == 1

    asyncio.run(main())
