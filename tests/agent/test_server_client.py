import httpx
import pytest

from agent_runtime.api import create_app
from agent_runtime.server_client import Registration, ServerClient, load_registration
from agent_runtime.settings import Settings
from common.protocol import Heartbeat, HeartbeatAnswer
from tests.helpers import free_port, wait_for

from .conftest import TOKEN, job_payload
from .servers import FakeServer, UvicornThread

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _agent_settings(tmp_path, server_url=None, **kw):
    return Settings(
        data_dir=tmp_path / "agent",
        token=TOKEN,
        server=server_url,
        registration_key="join-key-1" if server_url else None,
        heartbeat_interval_s=0.2,
        name="test-agent",
        **kw,
    )


def test_announce_register_heartbeat_progress_result(tmp_path, tiny_model_dir):
    fake = FakeServer()
    fake.result_statuses = [503, 200]  # first delivery fails: the outbox must retry
    with UvicornThread(fake.app) as server:
        port = free_port()
        settings = _agent_settings(tmp_path, server.url, public_url=f"http://127.0.0.1:{port}",
                                   allowed_paths=[tiny_model_dir.parent])
        agent_app = create_app(settings)
        with UvicornThread(agent_app, port) as agent:
            wait_for(lambda: fake.registered_info, 20)
            [announce] = fake.of("announce")[:1]
            assert announce["registration_key"] == "join-key-1" and announce["token"] == TOKEN
            assert fake.registered_info["agent_id"] == "agent-1" and fake.registered_info["runtimes"]
            assert load_registration(tmp_path / "agent").agent_id == "agent-1"
            wait_for(lambda: len(fake.of("heartbeat")) >= 2, 30)
            auths = {auth for name, auth, _ in fake.calls if name != "announce"}
            assert auths == {f"Bearer {fake.credential}"}
            hb = fake.of("heartbeat")[-1]
            assert hb["type"] == "agent.heartbeat" and hb["activity"] == "idle" and hb["capabilities_hash"]

            with httpx.Client(base_url=agent.url, headers=AUTH) as c:
                assert c.post("/api/v1/jobs", json=job_payload(tiny_model_dir)).status_code == 202
                wait_for(lambda: len(fake.of("result")) >= 2, 60)
                result = fake.of("result")[-1]
                assert result["status"] == "completed" and result["attempt_token"] == "attempt-token-1"
                assert len(result["runs"]) == 2
                # Acknowledged by the 200: the spool is cleaned up.
                wait_for(lambda: c.get("/api/v1/jobs/job-1").status_code == 404, 10)
            progress = fake.of("progress")
            assert progress and all(p["attempt_token"] == "attempt-token-1" for p in progress)
            assert any(p["status"] == "running" for p in progress)
            # The job is forgotten before its spool directory is deleted: wait for the deletion too.
            wait_for(lambda: not any((tmp_path / "agent" / "spool").iterdir()), 10, what="the spool to be emptied")

            # A capability change is pushed once, on the next heartbeat.
            service = agent_app.state.service
            before = len(fake.of("capabilities"))
            service.info.name = "renamed-agent"
            wait_for(lambda: len(fake.of("capabilities")) > before, 30)
            assert fake.of("capabilities")[-1]["name"] == "renamed-agent"

            # The server may also ask for them (its copy is stale) without any change on the agent.
            before = len(fake.of("capabilities"))
            fake.refresh_capabilities = True
            wait_for(lambda: len(fake.of("capabilities")) > before, 30)


def test_stale_result_is_dropped(tmp_path, tiny_model_dir):
    fake = FakeServer()
    fake.result_statuses = [409]
    with (
        UvicornThread(fake.app) as server,
        UvicornThread(create_app(_agent_settings(tmp_path, allowed_paths=[tiny_model_dir.parent]))) as agent,
        httpx.Client(base_url=agent.url, headers=AUTH) as c,
    ):
        reg = {"agent_id": "agent-1", "server_url": server.url, "credential": fake.credential}
        assert c.post("/api/v1/register", json=reg).status_code == 200
        assert c.post("/api/v1/jobs", json=job_payload(tiny_model_dir, runs_per_job=1)).status_code == 202
        wait_for(lambda: fake.of("result"), 30)
        wait_for(lambda: c.get("/api/v1/jobs/job-1").status_code == 404, 10)
        assert len(fake.of("result")) == 1


@pytest.mark.parametrize("status", [403])
def test_refused_announce_stops(tmp_path, status):
    fake = FakeServer()
    refused: list[int] = []

    @fake.app.post("/api/v1/agents/announce/", status_code=status)
    async def refuse() -> dict:
        refused.append(1)
        return {"detail": "bad key"}

    # The new route must win over the fake's default announce route.
    fake.app.router.routes.insert(0, fake.app.router.routes.pop())
    with UvicornThread(fake.app) as server:
        agent_app = create_app(_agent_settings(tmp_path, server.url))
        with UvicornThread(agent_app):
            announce = next(t for t in agent_app.state.service._tasks if t.get_name() == "announce")
            wait_for(announce.done, 10)  # it gave up: no retry can follow
            assert announce.exception() is None
        assert refused == [1] and fake.registered_info is None
        assert load_registration(tmp_path / "agent") is None


def _client_answering(status_code: int, body: bytes) -> ServerClient:
    """A server client whose server answers every call with ``status_code`` and ``body``."""
    transport = httpx.MockTransport(lambda request: httpx.Response(status_code, content=body))
    registration = Registration(agent_id="agent-1", server_url="http://server", credential="c" * 20)
    return ServerClient(registration, transport=transport)


@pytest.mark.parametrize(
    ("status_code", "body", "expected"),
    [
        (
            200,
            b'{"status": "online", "refresh_capabilities": true}',
            HeartbeatAnswer(status="online", refresh_capabilities=True),
        ),
        (200, b'{"status": "online", "refresh_capabilities": false}', HeartbeatAnswer(status="online")),
        (200, b'{"ok": true}', None),  # not an answer: ignored, the next heartbeat tries again
        (401, b'{"detail": "bad credential"}', None),
    ],
)
async def test_heartbeat_answer_is_parsed(status_code, body, expected):
    client = _client_answering(status_code, body)
    try:
        assert await client.heartbeat(Heartbeat(agent_id="agent-1")) == expected
    finally:
        await client.aclose()
