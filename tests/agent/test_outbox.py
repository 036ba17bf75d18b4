"""Retries towards the server: result delivery until acknowledged, self-announce until answered, prompt stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from tenacity import RetryCallState, Retrying, wait_fixed, wait_none

from agent_runtime import service as service_module
from agent_runtime.constants import BACKOFF_INITIAL_S, BACKOFF_JITTER_S, BACKOFF_MAX_S
from agent_runtime.server_client import Registration, ServerClient, retry_wait
from agent_runtime.service import AgentService
from agent_runtime.settings import Settings
from common.protocol import AgentJobState, JobRequest, MultiRunJobResult

from .conftest import TOKEN, job_payload

SERVER = "http://server.test"


class ScriptedServer:
    """An httpx transport answering each endpoint with scripted responses (the last one repeats).

    Attributes:
        calls: Endpoint names in arrival order.
        on_call: Called with the endpoint name on every call, before the answer goes back.
    """

    def __init__(self, **scripts: list[int | type[Exception]]) -> None:
        self.scripts = scripts
        self.calls: list[str] = []
        self.changed = asyncio.Event()
        self.on_call: Callable[[str], None] | None = None

    def _handle(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.rstrip("/").rsplit("/", 1)[-1]  # announce, result, heartbeat ...
        self.calls.append(endpoint)
        self.changed.set()
        if self.on_call is not None:
            self.on_call(endpoint)
        script = self.scripts.get(endpoint, [200])
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, type):
            raise answer("scripted failure", request=request)
        return httpx.Response(answer, json={"detail": "scripted"})

    def count(self, endpoint: str) -> int:
        """Calls received on ``endpoint``."""
        return self.calls.count(endpoint)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate`` holds, re-checking after every call the server receives."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    @property
    def transport(self) -> httpx.MockTransport:
        """The transport to hand to the agent."""
        return httpx.MockTransport(self._handle)


def _service(tmp_path, fake: ScriptedServer, **settings) -> AgentService:
    return AgentService(
        Settings(data_dir=tmp_path / "agent", token=TOKEN, name="test-agent", **settings), transport=fake.transport
    )


def _with_finished_job(service: AgentService) -> None:
    """Spool a finished job and register the agent, as a restarted agent would find itself."""
    request = JobRequest.model_validate(job_payload("/nowhere"))
    service.spool.save_spec(request)
    service.spool.save_result(
        MultiRunJobResult(job_id=request.job_id, attempt_token=request.attempt_token, status=AgentJobState.COMPLETED)
    )
    assert service.engine.recover() == [request.job_id]
    registration = Registration(agent_id="agent-1", server_url=SERVER, credential="server-issued-credential-0001")
    service.registration = registration
    service.client = ServerClient(registration, transport=service.transport)


async def _stop(task: asyncio.Task) -> None:
    task.cancel()
    async with asyncio.timeout(5):  # promptly, even while a retry waits out its backoff
        await asyncio.gather(task, return_exceptions=True)


def test_retry_wait_doubles_from_the_initial_delay_and_stays_bounded():
    wait = retry_wait()
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    for attempt in range(1, 30):
        state.attempt_number = attempt
        base = min(BACKOFF_INITIAL_S * 2 ** (attempt - 1), BACKOFF_MAX_S)
        for _ in range(20):
            assert base <= wait(state) <= base + BACKOFF_JITTER_S


async def test_result_is_delivered_until_acknowledged(tmp_path, monkeypatch):
    monkeypatch.setattr(service_module, "retry_wait", wait_none)
    server = ScriptedServer(result=[503, httpx.ConnectError, 200])
    service = _service(tmp_path, server)
    _with_finished_job(service)
    outbox = asyncio.create_task(service._outbox_loop())
    try:
        await server.wait_until(lambda: server.count("result") == 3)
        async with asyncio.timeout(5):
            while service.spool.job_ids():
                await asyncio.sleep(0.01)
    finally:
        await _stop(outbox)
    assert server.count("result") == 3
    assert service.spool.job_ids() == []  # acknowledged: forgotten


async def test_stale_result_is_dropped_without_retry(tmp_path, monkeypatch):
    monkeypatch.setattr(service_module, "retry_wait", wait_none)
    server = ScriptedServer(result=[409])
    service = _service(tmp_path, server)
    _with_finished_job(service)
    outbox = asyncio.create_task(service._outbox_loop())
    try:
        async with asyncio.timeout(5):
            while service.spool.job_ids():
                await asyncio.sleep(0.01)
    finally:
        await _stop(outbox)
    assert server.count("result") == 1


async def test_shutdown_stops_a_delivery_waiting_to_retry(tmp_path, monkeypatch):
    monkeypatch.setattr(service_module, "retry_wait", lambda: wait_fixed(3600))
    server = ScriptedServer(result=[503])
    service = _service(tmp_path, server)
    _with_finished_job(service)
    outbox = asyncio.create_task(service._outbox_loop())
    await server.wait_until(lambda: server.count("result") == 1)
    await _stop(outbox)
    # Not acknowledged: the result stays spooled for the next start.
    assert service.spool.load_result("job-1") is not None
    assert server.count("result") == 1


async def test_announce_is_retried_until_the_server_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(service_module, "retry_wait", wait_none)
    server = ScriptedServer(announce=[httpx.ConnectError, 503, 429, 202])
    service = _service(tmp_path, server, server=SERVER, registration_key="join-key-1")
    async with asyncio.timeout(5):
        await service._announce_loop()
    assert server.count("announce") == 4


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_announce_is_not_retried(tmp_path, monkeypatch, status):
    monkeypatch.setattr(service_module, "retry_wait", wait_none)
    server = ScriptedServer(announce=[status, 202])
    service = _service(tmp_path, server, server=SERVER, registration_key="join-key-1")
    async with asyncio.timeout(5):
        await service._announce_loop()  # returns: nothing is left to retry
    assert server.count("announce") == 1


async def test_announce_stops_once_registered(tmp_path, monkeypatch):
    monkeypatch.setattr(service_module, "retry_wait", wait_none)
    server = ScriptedServer(announce=[503])
    service = _service(tmp_path, server, server=SERVER, registration_key="join-key-1")
    registration = Registration(agent_id="agent-1", server_url=SERVER, credential="server-issued-credential-0001")

    def register_on_second_call(endpoint: str) -> None:
        # The server registers the agent (its /register call) while the second announce is answered.
        if server.count("announce") == 2:
            service.registration = registration

    server.on_call = register_on_second_call
    async with asyncio.timeout(5):
        await service._announce_loop()
    assert server.count("announce") == 2


async def test_shutdown_stops_announce_waiting_to_retry(tmp_path, monkeypatch):
    monkeypatch.setattr(service_module, "retry_wait", lambda: wait_fixed(3600))
    server = ScriptedServer(announce=[503])
    service = _service(tmp_path, server, server=SERVER, registration_key="join-key-1")
    announce = asyncio.create_task(service._announce_loop())
    await server.wait_until(lambda: server.count("announce") == 1)
    await _stop(announce)
    assert announce.cancelled()
