"""Local inference servers: the operator's list, probing, the gray-box runtime's capability and server choice.

The servers here are real HTTP servers on loopback (FastAPI under uvicorn) that answer like the engines do
(``/v1/models`` with vLLM's or llama.cpp's ``owned_by``, ``/version``, ``/props``, ``/metrics``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI, Response

from agent_runtime.info import with_servers
from agent_runtime.local_servers import (
    ServerSpec,
    load_servers_file,
    parse_server_spec,
    probe_server,
    probe_servers,
    served_name,
)
from agent_runtime.policy import AgentPolicy
from agent_runtime.runtimes import make_runtime
from agent_runtime.runtimes.vllm_runtime import VllmRuntime
from agent_runtime.settings import Settings
from agents.matching import _unserved
from common.protocol import AgentInfo, JobRequest, LocalServer
from tests.helpers import free_port

from .servers import UvicornThread

VLLM_METRICS = "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"smollm2\"} 0.0\n"


def engine_app(owner: str, models: list[str], *, version: dict | None = None, props: dict | None = None,
               metrics: str | None = VLLM_METRICS) -> FastAPI:
    """An app answering like an engine: its model list, its version endpoint and its metrics."""
    app = FastAPI()

    @app.get("/v1/models")
    def list_models() -> dict:
        return {"object": "list", "data": [{"id": m, "object": "model", "owned_by": owner} for m in models]}

    if version is not None:
        @app.get("/version")
        def get_version() -> dict:
            return version

    if props is not None:
        @app.get("/props")
        def get_props() -> dict:
            return props

    if metrics is not None:
        @app.get("/metrics")
        def get_metrics() -> Response:
            return Response(metrics, media_type="text/plain")

    return app


@pytest.fixture
def vllm_like():
    """A vLLM-like server serving ``smollm2``."""
    with UvicornThread(engine_app("vllm", ["smollm2"], version={"version": "0.32.0"})) as server:
        yield server


def test_parse_server_spec_normalizes_and_names_bad_values():
    spec = parse_server_spec("vllm=http://127.0.0.1:8000/v1/")
    assert (spec.runtime, spec.url, spec.api_url, spec.prometheus_url) == (
        "vllm", "http://127.0.0.1:8000", "http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/metrics")
    for bad, words in [
        ("http://127.0.0.1:8000", "expected RUNTIME=URL"),
        ("openai=http://x:1", "not a runtime that measures a local server"),
        ("vllm=ftp://x", "http:// or https://"),
        ("vllm=http://user:pw@x:1", "no user name"),
        ("vllm=http://x:1/?a=b", "query"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_server_spec(bad)


def test_servers_file(tmp_path: Path):
    path = tmp_path / "servers.toml"
    path.write_text('[[server]]\nruntime = "vllm"\nurl = "http://127.0.0.1:8001"\napi_key_env = "VLLM_KEY"\n')
    [spec] = load_servers_file(path)
    assert (spec.runtime, spec.url, spec.api_key_env) == ("vllm", "http://127.0.0.1:8001", "VLLM_KEY")
    path.write_text('[[server]]\nruntime = "vllm"\nurl = "http://x:1"\ncommand = "rm -rf /"\n')
    with pytest.raises(ValueError, match=r"server\[0\]: keys are"):
        load_servers_file(path)
    path.write_text("not toml [")
    with pytest.raises(ValueError, match="endpoints file"):
        load_servers_file(path)


def test_settings_take_endpoints_and_refuse_bad_ones(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RUCKUS_AGENT_ENDPOINTS", "vllm=http://127.0.0.1:8001,llamacpp_server=http://127.0.0.1:8081")
    settings = Settings(data_dir=tmp_path, probe_local_servers=False)
    assert [(s.runtime, s.url) for s in settings.local_servers()] == [
        ("vllm", "http://127.0.0.1:8001"), ("llamacpp_server", "http://127.0.0.1:8081")]
    # The usual ports are added when probing is on (the default; the test suite turns it off for its agents).
    monkeypatch.delenv("RUCKUS_AGENT_PROBE_LOCAL_SERVERS", raising=False)
    probed = Settings(data_dir=tmp_path).local_servers()
    assert {(s.source, s.url) for s in probed} >= {("configured", "http://127.0.0.1:8001"),
                                                    ("probed", "http://127.0.0.1:8000")}
    monkeypatch.setenv("RUCKUS_AGENT_ENDPOINTS", "vllm=not-a-url")
    with pytest.raises(ValueError, match="endpoint 'vllm=not-a-url'"):
        Settings(data_dir=tmp_path)


def test_a_configured_remote_server_becomes_an_allowed_endpoint(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, endpoints=["vllm=http://198.18.0.7:8000"], probe_local_servers=False)
    policy = AgentPolicy.from_settings(settings)
    policy.endpoints.check("http://198.18.0.7:8000/v1/chat/completions", "vllm", field="f")
    policy.endpoints.check("http://198.18.0.7:8000/metrics", "vllm", field="f")


def test_probe_reads_models_engine_version_and_metrics(vllm_like):
    found = probe_server(ServerSpec("vllm", vllm_like.url))
    assert found.available and found.models == ["smollm2"]
    assert (found.engine, found.engine_version) == ("vllm", "0.32.0")
    assert found.metrics_available and found.metrics_reason is None


def test_probe_says_why_a_server_is_unusable():
    port = free_port()
    found = probe_server(ServerSpec("vllm", f"http://127.0.0.1:{port}"))
    assert not found.available and "no answer" in found.reason
    with UvicornThread(FastAPI()) as other:  # something else on the port: 404 on /v1/models
        found = probe_server(ServerSpec("vllm", other.url))
        assert not found.available and "answered HTTP 404" in found.reason
    with UvicornThread(engine_app("vllm", ["m"], metrics=None)) as no_metrics:
        found = probe_server(ServerSpec("vllm", no_metrics.url))
        assert found.available and not found.metrics_available and "HTTP 404" in found.metrics_reason
    with UvicornThread(engine_app("vllm", ["m"], metrics="# TYPE other gauge\nother 1\n")) as foreign:
        found = probe_server(ServerSpec("vllm", foreign.url))
        assert not found.metrics_available and "no vllm:* metrics" in found.metrics_reason


def test_a_probed_port_belongs_to_the_engine_that_answers():
    llama = engine_app("llamacpp", ["SmolLM2-135M-Instruct"], props={"build_info": "b6000-abc"},
                       metrics="# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 0\n")
    with UvicornThread(llama) as server:
        gone = f"http://127.0.0.1:{free_port()}"
        found = probe_servers([ServerSpec("vllm", server.url, source="probed"),
                               ServerSpec("vllm", gone, source="probed"),
                               ServerSpec("vllm", gone, source="configured")])
    # The probed port answering as llama.cpp is listed under llamacpp_server; the silent probed port is not
    # listed; the silent configured one is, with its reason.
    assert [(s.runtime, s.source, s.available) for s in found] == [
        ("llamacpp_server", "probed", True), ("vllm", "configured", False)]
    assert (found[0].engine, found[0].engine_version, found[0].metrics_available) == ("llama.cpp", "b6000-abc", True)


def test_capability_follows_the_servers(vllm_like, tmp_path: Path):
    info = AgentInfo(name="a")
    off = with_servers(info, [ServerSpec("vllm", f"http://127.0.0.1:{free_port()}")])
    cap = next(r for r in off.runtimes if r.name == "vllm")
    assert not cap.available and "no answer" in cap.reason
    none = next(r for r in with_servers(info, []).runtimes if r.name == "vllm")
    assert not none.available and "--endpoint vllm=URL" in none.reason
    on = with_servers(info, [ServerSpec("vllm", vllm_like.url)])
    cap = next(r for r in on.runtimes if r.name == "vllm")
    assert cap.available and cap.served_models == ["smollm2"]
    # The change moves the hash the heartbeats carry.
    assert on.capabilities_hash() != off.capabilities_hash()
    assert with_servers(on, [ServerSpec("vllm", vllm_like.url)]).capabilities_hash() == on.capabilities_hash()


def _job(params: dict | None = None, model: str = "smollm2") -> JobRequest:
    return JobRequest.model_validate({
        "job_id": "j1", "attempt": 1, "attempt_token": "t" * 16,
        "model": {"name": model}, "runtime": {"name": "vllm", "params": params or {}},
        "task": {"name": "wikipedia_summarization", "params": {"num_samples": 1}}, "runs_per_job": 2,
    })


def test_the_runtime_picks_the_server_serving_the_model(vllm_like, tmp_path: Path):
    other = engine_app("vllm", ["qwen"], version={"version": "0.32.0"})
    with UvicornThread(other) as qwen:
        policy = AgentPolicy.from_settings(Settings(data_dir=tmp_path, probe_local_servers=False,
                                                    endpoints=[f"vllm={qwen.url}", f"vllm={vllm_like.url}"]))
        rt = make_runtime(_job(model="smollm2"), data_dir=tmp_path, policy=policy)
        assert rt.check() == {}
        assert rt.api_base() == f"{vllm_like.url}/v1" and rt.model_id() == "smollm2"
        assert rt.describe()["engine_version"] == "0.32.0"
        missing = make_runtime(_job(model="llama-3-70b"), data_dir=tmp_path, policy=policy)
        problem = missing.check()["runtime.params.base_url"]
        assert "no local vllm server serves model 'llama-3-70b'" in problem and "serves qwen" in problem


def test_served_names_and_server_side_matching():
    assert served_name(["HuggingFaceTB/SmolLM2-135M-Instruct"], "smollm2-135m-instruct") is not None
    assert served_name(["qwen"], "smollm2") is None
    assert _unserved(["smollm2"], "vllm", {"name": "smollm2"}, {"name": "vllm"}) is None
    why = _unserved(["qwen"], "vllm", {"name": "smollm2"}, {"name": "vllm"})
    assert why == "no local vllm server on this agent serves model 'smollm2' (served: qwen)"
    # A job naming its own server is not held to the agent's list; runtimes without servers neither.
    assert _unserved(["qwen"], "vllm", {"name": "smollm2"}, {"name": "vllm", "params": {"base_url": "http://h/v1"}}) \
        is None
    assert _unserved(None, "openai", {"name": "smollm2"}, {"name": "openai"}) is None


def test_local_server_model_is_part_of_the_protocol():
    server = LocalServer(runtime="vllm", url="http://127.0.0.1:8000", available=True, models=["m"])
    info = AgentInfo(local_servers=[server])
    assert AgentInfo.model_validate_json(info.model_dump_json()).local_servers == [server]
    assert isinstance(VllmRuntime.capability(info).served_models, list)


def test_a_hostile_server_answer_is_bounded():
    # Thousands of models with huge, unprintable names: at most MAX_MODELS kept, each cut to MAX_NAME_CHARS printable
    # characters; an answer past PROBE_MAX_BYTES is not read on (it stops being a model list).
    from agent_runtime.local_servers import MAX_MODELS, MAX_NAME_CHARS, PROBE_MAX_BYTES

    names = [("m\x00" + "x" * 5000) + str(i) for i in range(300)]
    with UvicornThread(engine_app("vllm", names, version={"version": "\x1b[31m" + "9" * 10_000})) as server:
        found = probe_server(ServerSpec("vllm", server.url))
    assert found.available and len(found.models) == MAX_MODELS
    assert all(len(m) <= MAX_NAME_CHARS and m.isprintable() for m in found.models)
    assert found.engine_version is not None and len(found.engine_version) <= MAX_NAME_CHARS
    huge = ["y" * 1000 for _ in range(PROBE_MAX_BYTES // 900)]
    with UvicornThread(engine_app("vllm", huge)) as server:
        found = probe_server(ServerSpec("vllm", server.url))
    assert not found.available and "did not answer with a model list" in found.reason
