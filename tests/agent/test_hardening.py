"""The agent trusts no request: key variables, endpoints and files a job names, and its API's token and body limits.

Every refusal is checked where the job is admitted (a 422 naming the field) and again where the thing is used, and
each says the same whatever the host holds (a variable that exists or not, a file that exists or not).
"""

import asyncio
import json
import os
import socket
import threading

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import agent_runtime.api
from agent_runtime.api import create_app
from agent_runtime.cli import app as cli_app
from agent_runtime.egress import (
    CONNECTION_FAILED,
    EndpointPolicy,
    EndpointRefused,
    KeyEnvPolicy,
    KeyEnvRefused,
    SecretRefused,
    pinned_client,
)
from agent_runtime.engine import JobEngine
from agent_runtime.http_guard import RequestGuard
from agent_runtime.paths import PathPolicy, PathRefused
from agent_runtime.policy import AgentPolicy
from agent_runtime.runtimes import RequestError, RuntimeFailure, make_runtime
from agent_runtime.settings import Settings
from agent_runtime.spool import Spool
from agent_runtime.tasks import TaskDataError, make_task
from agent_runtime.tasks.base import GenerationSettings, Sample
from common.netguard import always_refused
from common.protocol import AgentJobState, JobRequest
from tests.helpers import free_port, wait_for

from .conftest import TOKEN, allowing, job_payload
from .servers import FakeServer, UvicornThread

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SAMPLE = Sample("s1", "Title", "Some document text.", "Reference.")
GEN = GenerationSettings(8, 0.0)
#: What a hostile endpoint answers: it must never reach a result or an error.
REMOTE_SECRET = "REMOTE-BODY-6f1c2a"
METRICS = "# TYPE vllm:generation_tokens_total counter\nvllm:generation_tokens_total 3\n"


# -- a local stand-in OpenAI endpoint that records every request ----------------------------------------------


def _sse(chunks: list[str]) -> str:
    lines = [{"choices": [{"index": 0, "delta": {"content": text}}]} for text in chunks]
    lines.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 5, "completion_tokens": len(chunks)}})
    return "".join(f"data: {json.dumps(x)}\n\n" for x in lines) + "data: [DONE]\n\n"


class Endpoint:
    """An OpenAI-compatible endpoint whose behaviour depends on the first path segment.

    ``/ok/v1`` streams two chunks, ``/redirect/v1`` answers 302 to the metadata address, ``/fail/v1`` answers 500
    and ``/junk/v1`` a malformed stream, both with :data:`REMOTE_SECRET` in the body; ``/<kind>/metrics`` serves
    Prometheus text (``ok``) or junk; ``GET /ok/v1/models`` lists the model ``served`` as vLLM does, so an agent
    given ``--endpoint vllm=<url>/ok`` finds a vLLM server there.

    Attributes:
        requests: ``(method, path, headers, body)`` of every request, in arrival order.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST"])
        async def anything(path: str, request: Request) -> Response:
            self.requests.append((request.method, "/" + path, list(request.headers.items()), await request.body()))
            kind, _, rest = path.partition("/")
            if kind == "ok" and rest == "v1/models":
                return JSONResponse({"object": "list", "data": [{"id": "served", "owned_by": "vllm"}]})
            if rest == "metrics":
                return Response(METRICS if kind == "ok" else f"{REMOTE_SECRET} {{{{ nope", media_type="text/plain")
            if kind == "redirect":
                return Response(status_code=302, headers={"location": "http://169.254.169.254/latest/meta-data/"})
            if kind == "fail":
                return Response(status_code=500, content=f"internal: {REMOTE_SECRET}")
            if kind == "junk":
                return Response(f"data: {{{REMOTE_SECRET}\n\n", media_type="text/event-stream")
            return Response(_sse(["Hello", " world"]), media_type="text/event-stream")

        self.app = app


@pytest.fixture(scope="module")
def endpoint():
    ep = Endpoint()
    with UvicornThread(ep.app) as server:
        yield ep, server.url


def _request(runtime: str, params: dict, **kw) -> JobRequest:
    return JobRequest.model_validate({
        "job_id": "j1", "attempt_token": "attempt-token-1",
        "task": {"name": "wikipedia_summarization", "params": {"num_samples": 1, "max_new_tokens": 8}},
        "model": {"name": "served-model"}, "runtime": {"name": runtime, "params": params}, **kw,
    })


def _loaded(tmp_path, runtime: str, params: dict, policy: AgentPolicy):
    rt = make_runtime(_request(runtime, params), data_dir=tmp_path, policy=policy)
    rt.load()
    task = make_task("wikipedia_summarization", {"num_samples": 1}, data_dir=tmp_path)
    return rt, task


# -- 1. key variables -----------------------------------------------------------------------------------------


def test_unknown_unallowed_and_unset_key_variables_get_one_message(monkeypatch):
    monkeypatch.setenv("SET_BUT_NOT_ALLOWED", "value-1")
    monkeypatch.delenv("ALLOWED_BUT_UNSET", raising=False)
    monkeypatch.setenv("ALLOWED_KEY", "sk-allowed")
    policy = KeyEnvPolicy.from_names(["ALLOWED_KEY", "ALLOWED_BUT_UNSET", "RUCKUS_AGENT_TOKEN", "ruckus_x"])
    assert policy.allowed == ("ALLOWED_KEY", "ALLOWED_BUT_UNSET")
    assert policy.refused == ("RUCKUS_AGENT_TOKEN", "ruckus_x")  # listed, never allowed
    assert policy.problem("ALLOWED_KEY") is None and policy.read("ALLOWED_KEY") == "sk-allowed"
    expected = ("api_key_env 'X' is not an allowed key variable on this agent "
                "(the operator allows: ALLOWED_KEY, ALLOWED_BUT_UNSET)")
    # The same words whether the variable exists or not: a refusal tells nothing about the environment.
    for name in ("SET_BUT_NOT_ALLOWED", "NO_SUCH_VARIABLE_AT_ALL", "ALLOWED_BUT_UNSET", "RUCKUS_AGENT_TOKEN", "PATH"):
        assert policy.problem(name) == expected.replace("'X'", repr(name))
        with pytest.raises(KeyEnvRefused) as exc:
            policy.read(name)
        assert exc.value.field == "runtime.params.api_key_env" and exc.value.problem == policy.problem(name)
    monkeypatch.setenv("RUCKUS_AGENT_TOKEN", TOKEN)
    assert "RUCKUS_AGENT_TOKEN" in policy.problem("RUCKUS_AGENT_TOKEN")
    assert KeyEnvPolicy().problem("ALLOWED_KEY").endswith("(the operator allows: none)")


def test_key_variable_refused_at_admission_with_the_same_422(tmp_path, monkeypatch):
    monkeypatch.setenv("RUCKUS_AGENT_TOKEN", TOKEN)
    monkeypatch.setenv("EXISTING_SECRET", "s3cr3t-value")
    monkeypatch.delenv("MISSING_SECRET", raising=False)
    settings = Settings(data_dir=tmp_path / "agent", token=TOKEN, heartbeat_interval_s=60,
                        allowed_endpoints=["http://127.0.0.1:9/v1"], allowed_key_envs=["OPENAI_KEY"])
    bodies = {}
    with TestClient(create_app(settings)) as client:
        for name in ("RUCKUS_AGENT_TOKEN", "EXISTING_SECRET", "MISSING_SECRET", "OPENAI_KEY"):
            params = {"base_url": "http://127.0.0.1:9/v1", "api_key_env": name}
            resp = client.post("/api/v1/jobs", headers=AUTH, json=job_payload(
                "unused", model={"name": "served"}, runtime={"name": "openai", "params": params}))
            assert resp.status_code == 422, resp.text
            bodies[name] = resp.json()["errors"]
    for name, errors in bodies.items():
        assert errors == {"runtime.params.api_key_env": (
            f"api_key_env {name!r} is not an allowed key variable on this agent (the operator allows: OPENAI_KEY)")}
    assert "s3cr3t" not in json.dumps(bodies) and TOKEN not in json.dumps(bodies)


def test_key_variable_checked_again_where_it_is_read(tmp_path, endpoint, monkeypatch):
    ep, url = endpoint
    monkeypatch.setenv("RUCKUS_AGENT_TOKEN", TOKEN)
    # Admission skipped (a job straight into the engine): the runtime refuses when it reads the variable.
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path, policy=allowing(tmp_path, endpoints=(url,)))
    before = len(ep.requests)
    record, _ = engine.submit(_request("openai", {"base_url": f"{url}/ok/v1", "api_key_env": "RUCKUS_AGENT_TOKEN"}))
    record.thread.join(30)
    assert record.result.status is AgentJobState.FAILED
    assert "is not an allowed key variable on this agent" in record.result.error
    assert len(ep.requests) == before  # nothing was sent
    # A variable allowed at admission and gone since: the same refusal, at request time.
    monkeypatch.setenv("GONE_KEY", "sk-1")
    rt, task = _loaded(tmp_path, "openai", {"base_url": f"{url}/ok/v1", "api_key_env": "GONE_KEY"},
                       allowing(tmp_path, key_envs=("GONE_KEY",), endpoints=(url,)))
    assert rt.check() == {}
    monkeypatch.delenv("GONE_KEY")
    with pytest.raises(RuntimeFailure, match="'GONE_KEY' is not an allowed key variable"):
        rt.generate(task, SAMPLE, GEN, lambda: False)


def test_settings_and_flags_name_the_allowed_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("RUCKUS_AGENT_ALLOWED_KEY_ENVS", "OPENAI_API_KEY, RUCKUS_AGENT_TOKEN")
    monkeypatch.setenv("RUCKUS_AGENT_ALLOWED_ENDPOINTS", "https://api.openai.com/v1,10.0.0.0/8")
    monkeypatch.setenv("RUCKUS_AGENT_ALLOWED_PATHS", f"{tmp_path},{tmp_path / 'b'}")
    monkeypatch.setenv("RUCKUS_AGENT_MAX_BODY_BYTES", "4096")
    s = Settings()
    assert s.allowed_key_envs == ["OPENAI_API_KEY", "RUCKUS_AGENT_TOKEN"]
    assert s.allowed_endpoints == ["https://api.openai.com/v1", "10.0.0.0/8"]
    assert s.allowed_paths == [tmp_path, tmp_path / "b"] and s.max_body_bytes == 4096 and s.debug is False
    policy = AgentPolicy.from_settings(s)
    assert policy.key_envs.allowed == ("OPENAI_API_KEY",) and policy.key_envs.refused == ("RUCKUS_AGENT_TOKEN",)
    monkeypatch.setenv("RUCKUS_AGENT_ALLOWED_ENDPOINTS", '["ftp://x"]')
    with pytest.raises(ValueError, match="ftp://x"):
        Settings()
    monkeypatch.delenv("RUCKUS_AGENT_ALLOWED_ENDPOINTS")
    monkeypatch.setenv("RUCKUS_AGENT_ALLOWED_KEY_ENVS", "BAD-NAME")
    with pytest.raises(ValueError, match="BAD-NAME"):
        Settings()


def test_serve_says_at_start_that_ruckus_variables_are_never_allowed(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(agent_runtime.api, "create_app", lambda settings: seen.setdefault("settings", settings))
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: None)
    for name in ("RUCKUS_AGENT_ALLOWED_KEY_ENVS", "RUCKUS_AGENT_ALLOWED_ENDPOINTS", "RUCKUS_AGENT_ALLOWED_PATHS"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli_app, [
        "serve", "--data-dir", str(tmp_path), "--token", TOKEN, "--allow-key-env", "OPENAI_API_KEY",
        "--allow-key-env", "RUCKUS_AGENT_TOKEN", "--allow-endpoint", "https://api.openai.com/v1",
        "--allow-endpoint", "10.0.0.0/8", "--allow-path", str(tmp_path / "data"), "--debug",
    ])
    assert result.exit_code == 0, result.output
    assert "warning: key variable RUCKUS_AGENT_TOKEN" in result.output and "no job may read them" in result.output
    assert "OPENAI_API_KEY" not in result.output
    settings = seen["settings"]
    assert settings.allowed_key_envs == ["OPENAI_API_KEY", "RUCKUS_AGENT_TOKEN"] and settings.debug is True
    assert settings.allowed_endpoints == ["https://api.openai.com/v1", "10.0.0.0/8"]
    assert settings.allowed_paths == [tmp_path / "data"]
    assert AgentPolicy.from_settings(settings).key_envs.allowed == ("OPENAI_API_KEY",)


# -- 2. endpoints ---------------------------------------------------------------------------------------------


def _resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]
    return resolve


HOSTS = {
    "api.openai.com": ["104.18.6.192"],
    "localhost": ["127.0.0.1", "::1"],
    "gpu-box.lan": ["10.1.2.3"],
    "split.lan": ["10.1.2.3", "192.168.1.9"],
    "metadata.evil": ["169.254.169.254"],
    "mixed.evil": ["104.18.6.192", "169.254.169.254"],
}


@pytest.mark.parametrize(("runtime", "allowed", "url", "ok"), [
    # Nothing allowed: no black-box endpoint at all; the gray box reaches its own host only.
    ("openai", [], "http://127.0.0.1:8000/v1", False),
    ("openai", [], "https://api.openai.com/v1", False),
    ("vllm", [], "http://127.0.0.1:8000/v1", True),
    ("vllm", [], "http://[::1]:8000/v1", True),
    ("vllm", [], "http://localhost:8000/metrics", True),
    ("vllm", [], "http://10.1.2.3:8000/v1", False),
    # URL prefixes: scheme, host, port and a path prefix at a segment boundary.
    ("openai", ["https://api.openai.com/v1"], "https://api.openai.com/v1/chat/completions", True),
    ("openai", ["https://api.openai.com/v1"], "https://API.openai.com:443/v1", True),
    ("openai", ["https://api.openai.com/v1"], "https://api.openai.com/v10/chat", False),
    ("openai", ["https://api.openai.com/v1"], "https://api.openai.com/", False),
    ("openai", ["https://api.openai.com/v1"], "http://api.openai.com/v1", False),
    ("openai", ["https://api.openai.com/v1"], "https://api.openai.com:8443/v1", False),
    ("openai", ["https://api.openai.com/v1"], "https://api.openai.com/v1/../admin", False),
    ("openai", ["https://api.openai.com/v1"], "https://api.openai.com/v1/%2e%2e/admin", False),
    ("openai", ["https://api.openai.com/v1"], "https://api.openai.com.evil.test/v1", False),
    # Networks: every address the name resolves to must be inside.
    ("openai", ["10.0.0.0/8"], "http://gpu-box.lan:8000/v1", True),
    ("openai", ["10.0.0.0/8"], "http://[::ffff:10.1.2.3]:8000/v1", True),
    ("openai", ["10.0.0.0/8"], "http://split.lan:8000/v1", False),
    ("openai", ["10.0.0.0/8"], "http://unresolvable.lan/v1", False),
    # Link-local and metadata addresses never, whatever the list says, in any form.
    ("openai", ["0.0.0.0/0", "::/0"], "http://169.254.169.254/latest/meta-data/", False),
    ("openai", ["0.0.0.0/0", "::/0"], "http://[fe80::1]/v1", False),
    ("openai", ["0.0.0.0/0", "::/0"], "http://[::ffff:169.254.169.254]/", False),
    ("openai", ["0.0.0.0/0", "::/0"], "http://[64:ff9b::a9fe:a9fe]/", False),
    ("openai", ["0.0.0.0/0", "::/0"], "http://[fd00:ec2::254]/", False),
    ("openai", ["0.0.0.0/0", "::/0"], "http://metadata.evil/v1", False),
    ("openai", ["http://metadata.evil/v1"], "http://metadata.evil/v1", False),
    ("openai", ["https://mixed.evil"], "https://mixed.evil/v1", False),
    ("vllm", ["169.254.0.0/16"], "http://169.254.1.1:8000/v1", False),
])
def test_endpoint_policy(runtime, allowed, url, ok):
    policy = EndpointPolicy.from_values(allowed, resolver=_resolver(HOSTS))
    if ok:
        target = policy.check(url, runtime, field="runtime.params.base_url")
        assert target.addresses and not any(always_refused(a) for a in target.addresses)
        return
    with pytest.raises(EndpointRefused) as exc:
        policy.check(url, runtime, field="runtime.params.base_url")
    assert exc.value.field == "runtime.params.base_url"
    # One message whether the host is outside the list, resolves to a refused address or does not resolve.
    assert exc.value.problem.startswith("not an allowed endpoint on this agent (the operator allows: ")


def test_urls_with_credentials_or_other_schemes_are_refused():
    policy = EndpointPolicy.from_values(["0.0.0.0/0"])
    for url in ("http://user:pw@127.0.0.1:8000/v1", "http://user@127.0.0.1/v1", "http://:pw@127.0.0.1/"):
        with pytest.raises(EndpointRefused, match="user name or password"):
            policy.check(url, "vllm", field="runtime.params.base_url")
    with pytest.raises(EndpointRefused, match="only http and https"):
        policy.check("file:///etc/passwd", "vllm", field="runtime.params.base_url")
    for bad in ("https://user:pw@api.example.com/v1", "https://api.example.com/v1?x=1", "ftp://x", "not a url"):
        with pytest.raises(ValueError):
            EndpointPolicy.from_values([bad])


def test_endpoints_refused_at_admission(tmp_path, endpoint):
    _, url = endpoint
    # A vLLM server on the host (the stand-in), so that the gray-box runtime is available and its URLs are checked.
    settings = Settings(data_dir=tmp_path / "agent", token=TOKEN, heartbeat_interval_s=60,
                        allowed_endpoints=["0.0.0.0/0"], endpoints=[f"vllm={url}/ok"])
    cases = [
        ("openai", {"base_url": "http://169.254.169.254/v1"}, "runtime.params.base_url"),
        ("openai", {"base_url": "http://user:pw@10.0.0.1/v1"}, "runtime.params.base_url"),
        ("vllm", {"base_url": "http://127.0.0.1:8000/v1", "metrics_url": "http://169.254.169.254/metrics"},
         "runtime.params.metrics_url"),
        ("vllm", {"base_url": "http://[fe80::1]:8000/v1"}, "runtime.params.base_url"),
    ]
    with TestClient(create_app(settings)) as client:
        for runtime, params, field in cases:
            resp = client.post("/api/v1/jobs", headers=AUTH, json=job_payload(
                "unused", model={"name": "served"}, runtime={"name": runtime, "params": params}))
            assert resp.status_code == 422 and field in resp.json()["errors"], (params, resp.text)
    # Without the operator's list, a black-box endpoint is refused and the gray box keeps to loopback.
    strict = Settings(data_dir=tmp_path / "agent2", token=TOKEN, heartbeat_interval_s=60, endpoints=[f"vllm={url}/ok"])
    with TestClient(create_app(strict)) as client:
        for runtime, url, refused in (("openai", "http://127.0.0.1:9/v1", True), ("vllm", "http://127.0.0.1:9/v1",
                                                                                False)):
            resp = client.post("/api/v1/jobs", headers=AUTH, json=job_payload(
                "unused", model={"name": "served"}, runtime={"name": runtime, "params": {"base_url": url}}))
            assert ("runtime.params.base_url" in resp.json().get("errors", {})) is refused, resp.text


def test_connection_pinned_to_the_checked_address_against_dns_rebinding(endpoint, monkeypatch):
    ep, url = endpoint
    port = int(url.rsplit(":", 1)[1])
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, *args, **kwargs):
        """``rebind.test`` is loopback the first time, the metadata address (or unroutable) afterwards."""
        if host == "rebind.test":
            lookups.append(host)
            address = "127.0.0.1" if len(lookups) == 1 else "169.254.169.254"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, args[0] if args else 0))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    policy = EndpointPolicy.from_values([f"http://rebind.test:{port}/ok"])
    before = len(ep.requests)
    with pinned_client(policy, "openai", timeout=10) as client:
        resp = client.get(f"http://rebind.test:{port}/ok/metrics")
        assert resp.status_code == 200
        # Resolved once, checked, and the connection went to that address: no second lookup at connect time.
        assert lookups == ["rebind.test"]
        method, path, headers, _ = ep.requests[-1]
        assert (method, path) == ("GET", "/ok/metrics") and dict(headers)["host"] == f"rebind.test:{port}"
        # The next request resolves again: the name now points at the metadata address and is refused.
        with pytest.raises(EndpointRefused):
            client.get(f"http://rebind.test:{port}/ok/metrics")
    assert len(ep.requests) == before + 1


def test_https_keeps_the_host_name_for_sni_and_the_certificate():
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, text="ok")

    policy = EndpointPolicy.from_values(["https://api.example.test/v1"], resolver=_resolver(
        {"api.example.test": ["203.0.113.7", "203.0.113.8"]}))
    with pinned_client(policy, "openai", timeout=5, inner=httpx.MockTransport(answer)) as client:
        assert client.post("https://api.example.test/v1/chat/completions", json={"a": 1}).text == "ok"
    [request] = sent
    assert request.url.host == "203.0.113.7" and request.url.scheme == "https"
    assert request.headers["host"] == "api.example.test"
    assert request.extensions["sni_hostname"] == "api.example.test"
    assert json.loads(request.content) == {"a": 1}


def test_no_request_carries_the_agents_secrets():
    sent: list[httpx.Request] = []
    policy = EndpointPolicy.from_values(["10.0.0.0/8"])
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200))
    with pinned_client(policy, "openai", timeout=5, secrets=lambda: (TOKEN,), inner=transport) as client:
        for kwargs in ({"headers": {"Authorization": f"Bearer {TOKEN}"}}, {"json": {"prompt": f"x{TOKEN}x"}},
                       {"params": {"k": TOKEN}}):
            with pytest.raises(SecretRefused):
                client.post("http://10.0.0.1/v1/chat/completions", **kwargs)
        assert client.post("http://10.0.0.1/v1/chat/completions", json={"prompt": "fine"}).status_code == 200
    assert len(sent) == 1


def test_redirects_are_errors_and_never_followed(tmp_path, endpoint):
    ep, url = endpoint
    rt, task = _loaded(tmp_path, "openai", {"base_url": f"{url}/redirect/v1"}, allowing(tmp_path, endpoints=(url,)))
    before = len(ep.requests)
    with pytest.raises(RequestError) as exc:
        rt.generate(task, SAMPLE, GEN, lambda: False)
    assert str(exc.value) == "endpoint answered HTTP 302; redirects are not followed"
    assert len(ep.requests) == before + 1  # the metadata address was not asked


def test_errors_never_echo_what_the_endpoint_sent(tmp_path, endpoint):
    _, url = endpoint
    policy = allowing(tmp_path, endpoints=(url,))
    rt, task = _loaded(tmp_path, "openai", {"base_url": f"{url}/fail/v1"}, policy)
    with pytest.raises(RequestError) as exc:
        rt.generate(task, SAMPLE, GEN, lambda: False)
    assert str(exc.value) == "endpoint answered HTTP 500"
    rt, task = _loaded(tmp_path, "openai", {"base_url": f"{url}/junk/v1"}, policy)
    with pytest.raises(RequestError) as exc:
        rt.generate(task, SAMPLE, GEN, lambda: False)
    assert str(exc.value) == "the endpoint sent a malformed stream chunk"
    # Server metrics that are not Prometheus text: the reason says so without quoting them.
    rt, task = _loaded(tmp_path, "vllm", {"base_url": f"{url}/junk/v1"}, policy)
    rt.start_run(cold=True)
    measured = rt.finish_run()
    assert measured.unavailable["server_metrics"] == "server metrics not read: the answer is not Prometheus text"
    rt, task = _loaded(tmp_path, "vllm", {"base_url": f"{url}/ok/v1"}, policy)
    rt.start_run(cold=True)
    assert rt.generate(task, SAMPLE, GEN, lambda: False).text == "Hello world"
    assert "server_metrics" not in rt.finish_run().unavailable


def test_every_connection_failure_has_one_message(tmp_path):
    # A closed port (refused) and a server that accepts but never answers (timed out) read the same.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        messages = []
        for port in (free_port(), silent.getsockname()[1]):
            url = f"http://127.0.0.1:{port}"
            rt, task = _loaded(tmp_path, "openai", {"base_url": f"{url}/v1", "timeout_s": 0.5},
                               allowing(tmp_path, endpoints=(url,)))
            with pytest.raises(RequestError) as exc:
                rt.generate(task, SAMPLE, GEN, lambda: False)
            messages.append(str(exc.value))
        assert messages == [CONNECTION_FAILED, CONNECTION_FAILED]
    finally:
        stop.set()
        thread.join(5)
        for s in [*held, silent]:
            s.close()


def test_refused_endpoint_fails_the_job_without_any_request(tmp_path, endpoint):
    ep, url = endpoint
    engine = JobEngine(Spool(tmp_path / "spool"), data_dir=tmp_path)  # the operator allowed no endpoint
    before = len(ep.requests)
    record, _ = engine.submit(_request("openai", {"base_url": f"{url}/ok/v1"}))
    record.thread.join(30)
    assert record.result.status is AgentJobState.FAILED
    assert "not an allowed endpoint on this agent" in record.result.error
    assert len(ep.requests) == before


# -- 3. paths -------------------------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    """A data dir, a model dir, an allowed dir and, outside them all, a file and a link pointing out."""
    data, models, allowed, outside = (tmp_path / n for n in ("data", "models", "allowed", "outside"))
    for d in (data, models, allowed, outside):
        d.mkdir()
    (outside / "secret.jsonl").write_text('{"id": "1", "document": "secret", "reference": "secret"}\n')
    (data / "inside.jsonl").write_text('{"id": "1", "document": "doc", "reference": "ref"}\n')
    (data / "local-token").write_text("tok")
    (data / "spool").mkdir()
    (data / "link-out.jsonl").symlink_to(outside / "secret.jsonl")
    (allowed / "dir-link").symlink_to(outside, target_is_directory=True)
    (outside / "link-in.jsonl").symlink_to(data / "inside.jsonl")
    policy = PathPolicy.for_agent(data, [models], [allowed])
    return policy, data, models, allowed, outside


def test_paths_inside_the_allowed_directories(tree):
    policy, data, models, allowed, _ = tree
    assert policy.resolve(str(data / "inside.jsonl"), field="f") == (data / "inside.jsonl").resolve()
    assert policy.resolve("inside.jsonl", field="f") == (data / "inside.jsonl").resolve()  # from the data dir
    assert policy.resolve(str(models / "m" / "config.json"), field="f") == (models / "m" / "config.json").resolve()
    assert policy.resolve(str(allowed / "x" / ".." / "y.jsonl"), field="f") == (allowed / "y.jsonl").resolve()


@pytest.mark.parametrize("raw", [
    "../outside/secret.jsonl",  # relative: from the data dir, then out
    "{data}/../outside/secret.jsonl",
    "{outside}/secret.jsonl",
    "{outside}/does-not-exist.jsonl",
    "/etc/passwd",
    "/etc/no-such-file",
    "{data}/link-out.jsonl",  # a link inside pointing out
    "{allowed}/dir-link/secret.jsonl",  # a directory link inside pointing out
    "{outside}/link-in.jsonl",  # outside, even when it links back in
    "{data}/local-token",  # the agent's own secrets and spool
    "{data}/spool/job/spec.json",
    "{data}/registration.json",
    "",
    "a\x00b",
])
def test_paths_outside_are_refused_with_one_message(tree, raw):
    policy, data, _, allowed, outside = tree
    path = raw.format(data=data, allowed=allowed, outside=outside)
    with pytest.raises(PathRefused) as exc:
        policy.resolve(path, field="task.params.jsonl_path")
    assert str(exc.value) == (
        "task.params.jsonl_path: not a location this agent allows; a path must lie inside the agent's data "
        "directory, its model directories or a directory its operator allowed (--allow-path)")


def test_paths_textually_outside_are_refused_before_the_file_system_is_touched(tree, monkeypatch):
    policy, data, _, _, outside = tree

    def touched(*args, **kwargs):
        raise AssertionError(f"the file system was touched: {args}")

    with monkeypatch.context() as m:
        for name in ("stat", "lstat", "readlink", "open", "access", "scandir", "listdir"):
            m.setattr(os, name, touched)
        m.setattr(os.path, "realpath", touched)
        for raw in (f"{data}/../outside/secret.jsonl", f"{outside}/secret.jsonl", "/etc/shadow", "../../x"):
            with pytest.raises(PathRefused):
                policy.resolve(raw, field="model.path")


def test_jsonl_path_refused_at_admission_and_when_loaded(tree):
    policy, data, _, _, outside = tree
    for raw in (f"{outside}/secret.jsonl", f"{outside}/missing.jsonl", f"{data}/link-out.jsonl"):
        params = {"source": "jsonl", "jsonl_path": raw, "num_samples": 1, "min_document_chars": 0}
        task = make_task("wikipedia_summarization", params, data_dir=data, paths=policy)
        assert task.check() == {"task.params.jsonl_path": PathRefused("x").problem}
        with pytest.raises(TaskDataError) as exc:
            task.load_samples()
        assert exc.value.field == "task.params.jsonl_path" and "secret" not in str(exc.value).replace(raw, "")
    params = {"source": "jsonl", "jsonl_path": "inside.jsonl", "num_samples": 1, "min_document_chars": 0}
    task = make_task("wikipedia_summarization", params, data_dir=data, paths=policy)
    assert task.check() == {} and [s.document for s in task.load_samples()] == ["doc"]


def test_model_and_jsonl_paths_refused_by_the_api_alike(tmp_path, tiny_model_dir):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.jsonl").write_text('{"id": "1", "document": "d", "reference": "r"}\n')
    link = tmp_path / "agent" / "models-link"
    link.parent.mkdir()
    link.symlink_to(tiny_model_dir, target_is_directory=True)
    settings = Settings(data_dir=tmp_path / "agent", token=TOKEN, heartbeat_interval_s=60)
    answers = []
    with TestClient(create_app(settings)) as client:
        for model_path in (tiny_model_dir, tmp_path / "nope", link, "../../../../../../etc"):
            resp = client.post("/api/v1/jobs", headers=AUTH, json=job_payload(model_path))
            assert resp.status_code == 422, resp.text
            answers.append(resp.json()["errors"])
        for jsonl in (outside / "data.jsonl", outside / "missing.jsonl"):
            task = {"name": "wikipedia_summarization", "params": {"source": "jsonl", "jsonl_path": str(jsonl)}}
            resp = client.post("/api/v1/jobs", headers=AUTH, json=job_payload(tiny_model_dir, task=task))
            assert resp.status_code == 422
            assert resp.json()["errors"]["task.params.jsonl_path"] == PathRefused("x").problem
    assert all(a == {"model.path": PathRefused("x").problem} for a in answers), answers


# -- 4. token and body before anything ------------------------------------------------------------------------


def _drive(guard: RequestGuard, scope: dict, chunks: list[bytes] | None = None, *, endless: bool = False):
    """Run one request through the guard; return the answer's status, its body and how many body reads it took."""
    sent: list[dict] = []
    reads = 0

    async def receive():
        nonlocal reads
        reads += 1
        if chunks is None:
            raise AssertionError("the body was read")
        if endless:
            return {"type": "http.request", "body": b"x" * 65536, "more_body": True}
        body = chunks[reads - 1] if reads <= len(chunks) else b""
        return {"type": "http.request", "body": body, "more_body": reads < len(chunks)}

    async def send(message):
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body) if body.startswith(b"{") else body, reads


def _scope(path="/api/v1/jobs", headers=()):
    return {"type": "http", "method": "POST", "path": path, "headers": list(headers)}


@pytest.fixture
def guarded():
    calls: list[bytes] = []

    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        calls.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    return RequestGuard(app, token=lambda: TOKEN, max_body_bytes=1024, public_paths={"/api/v1/health"}), calls


def test_guard_token_before_the_body(guarded):
    guard, calls = guarded
    auth = (b"authorization", f"Bearer {TOKEN}".encode())
    for headers in ([], [(b"authorization", b"Bearer wrong-token")], [(b"authorization", f"Basic {TOKEN}".encode())],
                    [auth, auth], [(b"authorization", TOKEN.encode())]):
        status, body, reads = _drive(guard, _scope(headers=headers), None)  # reading the body fails the test
        assert (status, body, reads) == (401, {"detail": "missing or invalid bearer token"}, 0)
    # Even an oversized body is answered 401 first: nothing about the agent before the token.
    status, _, reads = _drive(guard, _scope(headers=[(b"content-length", b"999999999")]), None)
    assert (status, reads) == (401, 0)
    assert _drive(guard, _scope("/api/v1/health"), [b""])[0] == 200
    assert _drive(guard, _scope(headers=[auth, (b"content-length", b"2")]), [b"{}"])[:2] == (200, b"app")
    assert calls == [b"", b"{}"]


def test_guard_refuses_a_large_content_length_without_reading(guarded):
    guard, calls = guarded
    auth = (b"authorization", f"Bearer {TOKEN}".encode())
    status, body, reads = _drive(guard, _scope(headers=[auth, (b"content-length", b"1025")]), None)
    assert (status, reads) == (413, 0) and "1024 bytes" in body["detail"]
    for bad in (b"-1", b"12x", b""):
        assert _drive(guard, _scope(headers=[auth, (b"content-length", bad)]), None)[:1] == (400,)
    assert _drive(guard, _scope(headers=[auth, (b"content-length", b"3"), (b"content-length", b"4")]), None)[0] == 400
    assert calls == []


def test_guard_counts_a_chunked_body_and_stops_at_the_limit(guarded):
    guard, calls = guarded
    auth = (b"authorization", f"Bearer {TOKEN}".encode())
    status, _, reads = _drive(guard, _scope(headers=[auth]), endless=True, chunks=[])
    assert status == 413 and reads == 1  # one 64 KiB chunk is already past the limit: no more is read
    status, _, reads = _drive(guard, _scope(headers=[auth]), [b"a" * 600, b"b" * 600])
    assert status == 413 and reads == 2
    # A body within the limit is handed to the application whole.
    assert _drive(guard, _scope(headers=[auth]), [b"a" * 512, b"b" * 512])[:2] == (200, b"app")
    assert calls == [b"a" * 512 + b"b" * 512]


def test_api_body_limit_and_docs_over_http(tmp_path):
    settings = Settings(data_dir=tmp_path / "agent", token=TOKEN, heartbeat_interval_s=60, max_body_bytes=4096)
    with UvicornThread(create_app(settings)) as agent, httpx.Client(base_url=agent.url, timeout=30) as c:
        big = b'{"job_id": "' + b"x" * 10_000 + b'"}'
        assert c.post("/api/v1/jobs", content=big).status_code == 401
        assert c.post("/api/v1/jobs", content=big, headers=AUTH).status_code == 413

        def chunked():
            for _ in range(40):
                yield b"x" * 1024

        resp = c.post("/api/v1/jobs", content=chunked(), headers={**AUTH, "Content-Type": "application/json"})
        assert resp.status_code == 413
        assert c.get("/api/v1/health").status_code == 200
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 401
            assert c.get(path, headers=AUTH).status_code == 404
    debug = Settings(data_dir=tmp_path / "agent2", token=TOKEN, heartbeat_interval_s=60, debug=True)
    with TestClient(create_app(debug)) as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 200
        assert c.get("/api/v1/jobs").status_code == 401


# -- 5. the agent's token never leaves it ---------------------------------------------------------------------


def test_agent_token_never_leaves_the_agent(tmp_path, endpoint, monkeypatch):
    ep, url = endpoint
    monkeypatch.setenv("RUCKUS_AGENT_TOKEN", TOKEN)  # as an operator may start it
    monkeypatch.setenv("ENDPOINT_API_KEY", "sk-endpoint-key-1")
    monkeypatch.setenv("LEAKY_KEY", TOKEN)  # the operator allowed a variable that holds the token itself
    fake = FakeServer()
    settings = Settings(data_dir=tmp_path / "agent", token=TOKEN, heartbeat_interval_s=0.2,
                        endpoints=[f"vllm={url}/ok"], allowed_endpoints=[url],
                        allowed_key_envs=["ENDPOINT_API_KEY", "LEAKY_KEY"])
    first = len(ep.requests)
    with UvicornThread(fake.app) as server, UvicornThread(create_app(settings)) as agent, \
            httpx.Client(base_url=agent.url, headers=AUTH, timeout=30) as c:
        reg = {"agent_id": "agent-1", "server_url": server.url, "credential": fake.credential,
               "challenge": "challenge-ok"}
        assert c.post("/api/v1/register", json=reg).status_code == 200
        refused = c.post("/api/v1/jobs", json=job_payload("unused", model={"name": "served"}, runtime={
            "name": "openai", "params": {"base_url": f"{url}/ok/v1", "api_key_env": "RUCKUS_AGENT_TOKEN"}}))
        assert refused.status_code == 422 and TOKEN not in refused.text
        for job_id, env in (("job-ok", "ENDPOINT_API_KEY"), ("job-leak", "LEAKY_KEY")):
            params = {"base_url": f"{url}/ok/v1", "api_key_env": env}
            body = job_payload("unused", job_id=job_id, model={"name": "served"}, runs_per_job=2,
                               runtime={"name": "vllm", "params": params})
            assert c.post("/api/v1/jobs", json=body).status_code == 202
            wait_for(lambda job_id=job_id: any(r["job_id"] == job_id for r in fake.of("result")), 60,
                     what=f"the result of {job_id}")
        wait_for(lambda: len(fake.of("heartbeat")) >= 2, 30)
    results = {r["job_id"]: r for r in fake.of("result")}
    assert results["job-ok"]["status"] == "completed", results["job-ok"]["error"]
    outputs = [s["output"] for run in results["job-ok"]["runs"] for s in run["samples"]]
    assert outputs == ["Hello world"] * 4  # 2 runs of 2 samples
    assert all("server_metrics" not in run["unavailable_metrics"] for run in results["job-ok"]["runs"])
    # The variable holding the token was allowed, yet the request carrying it was never sent.
    assert results["job-leak"]["status"] == "failed"
    assert "one of the agent's own secrets" in results["job-leak"]["error"]
    seen = ep.requests[first:]
    assert seen, "the endpoint saw no request"
    # The agent's checks of its local server carry no key (the operator named none for it); the jobs' requests
    # carry the allowed key: chat and metrics requests of job-ok only.
    probes = {"/ok/v1/models", "/ok/version", "/ok/metrics"}
    auths = {dict(headers).get("authorization") for method, path, headers, _ in seen
             if not (method == "GET" and path in probes and "authorization" not in dict(headers))}
    assert auths == {"Bearer sk-endpoint-key-1"}
    for method, path, headers, body in seen:
        assert TOKEN not in f"{method} {path} {headers}" and TOKEN.encode() not in body
    for name, auth, body in fake.calls:
        # The server gets the agent's server credential (the reach call carries the registration's challenge).
        assert auth == (None if name == "reach" else f"Bearer {fake.credential}"), name
        assert TOKEN not in json.dumps(body), name
    assert {"reach", "heartbeat", "progress", "result"} <= {name for name, _, _ in fake.calls}


@pytest.mark.parametrize("line", ['[1, 2]', '{"choices": 5}', '{"choices": ["x"]}', '"text"', "{not json"])
def test_malformed_stream_chunks_are_refused_without_quoting_them(tmp_path, line):
    rt, task = _loaded(tmp_path, "openai", {"base_url": "http://10.0.0.1/v1"},
                       allowing(tmp_path, endpoints=("10.0.0.0/8",)))
    rt._client = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, text=f"data: {line}\n\ndata: [DONE]\n\n")))
    with pytest.raises(RequestError) as exc:
        rt.generate(task, SAMPLE, GEN, lambda: False)
    assert str(exc.value) == "the endpoint sent a malformed stream chunk"


def test_odd_usage_figures_fall_back_to_counting_chunks(tmp_path):
    rt, task = _loaded(tmp_path, "openai", {"base_url": "http://10.0.0.1/v1"},
                       allowing(tmp_path, endpoints=("10.0.0.0/8",)))
    chunk = {"choices": [{"delta": {"content": "hi"}}], "usage": {"completion_tokens": "lots", "prompt_tokens": 1}}
    rt._client = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, text=f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n")))
    gen = rt.generate(task, SAMPLE, GEN, lambda: False)
    assert gen.output_tokens == 1 and gen.prompt_tokens is None and gen.text == "hi"
