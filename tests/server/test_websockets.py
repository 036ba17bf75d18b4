"""Websockets at /ws/events/: authentication, subscriptions, events after commit, errors; in-memory and Redis."""

from __future__ import annotations

import socket

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from common.catalog import task_params
from ruckus_server.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ONE_TARGET = 'give exactly one of "experiment": ID, "job": ID or "agents": true'


@database_sync_to_async
def make_world():
    from experiments.services import experiment_create
    from tests.factories import AgentFactory, UserFactory, api_token

    user = UserFactory(username="watcher", role="viewer")
    token = api_token(user)
    agent = AgentFactory(name="ws-agent")
    exp = experiment_create(
        name="ws", task_name="wikipedia_summarization", task_params=task_params("wikipedia_summarization", {}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"all": True}, runs_per_job=2,
    )
    return token, agent, exp, exp.jobs.get()


async def connect(path: str, headers=None) -> tuple[WebsocketCommunicator, bool, int | None]:
    comm = WebsocketCommunicator(application, path, headers=headers or [])
    connected, code = await comm.connect(timeout=5)
    return comm, connected, code


async def assert_refused_with_4401(comm: WebsocketCommunicator) -> None:
    """Anonymous clients are accepted and closed at once with 4401, before any message is read."""
    connected, _ = await comm.connect(timeout=5)
    assert connected
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    await comm.disconnect()  # what the server delivers once the close handshake is done


async def test_unauthenticated_connection_is_refused():
    await make_world()
    await assert_refused_with_4401(WebsocketCommunicator(application, "/ws/events/"))
    await assert_refused_with_4401(WebsocketCommunicator(application, "/ws/events/?token=wrong"))


async def test_subscribe_receive_state_changes_and_unsubscribe():
    from agents.services import agent_deactivate

    token, agent, exp, job = await make_world()
    comm, connected, _ = await connect(f"/ws/events/?token={token}")
    assert connected
    await comm.send_json_to({"type": "subscribe", "experiment": exp.pk})
    assert await comm.receive_json_from(timeout=5) == {"type": "subscribed", "experiment": exp.pk}
    snapshot = await comm.receive_json_from(timeout=5)
    assert snapshot["type"] == "experiment.updated" and snapshot["data"]["status"] == "pending"

    await database_sync_to_async(job.transition)("assigned", reason="test dispatch", attempt=1)
    events = [await comm.receive_json_from(timeout=5) for _ in range(2)]
    by_type = {e["type"]: e["data"] for e in events}
    assert by_type["job.updated"]["id"] == job.pk and by_type["job.updated"]["status"] == "assigned"
    assert by_type["experiment.updated"]["status"] == "running"  # derived status changed

    await comm.send_json_to({"type": "subscribe", "agents": True})
    assert await comm.receive_json_from(timeout=5) == {"type": "subscribed", "agents": True}
    assert (await comm.receive_json_from(timeout=5))["data"]["name"] == "ws-agent"
    await database_sync_to_async(agent_deactivate)(agent.pk)
    event = await comm.receive_json_from(timeout=5)
    assert event["type"] == "agent.updated" and event["data"]["status"] == "deactivated"

    await comm.send_json_to({"type": "unsubscribe", "experiment": exp.pk})
    assert await comm.receive_json_from(timeout=5) == {"type": "unsubscribed", "experiment": exp.pk}
    await database_sync_to_async(job.transition)("running", reason="agent accepted")
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_errors_name_the_problem_and_keep_the_connection():
    token, _, _, job = await make_world()
    comm, connected, _ = await connect(f"/ws/events/?token={token}")
    assert connected
    await comm.send_to(text_data="{not json")
    assert "not valid JSON" in (await comm.receive_json_from(timeout=5))["message"]
    await comm.send_json_to({"type": "subscribe", "experiment": 999999})
    assert await comm.receive_json_from(timeout=5) == {"type": "error", "message": "experiment 999999 does not exist"}
    await comm.send_json_to({"type": "subscribe", "job": "abc"})
    assert (await comm.receive_json_from(timeout=5))["message"] == "job must be a positive integer id"
    await comm.send_json_to({"type": "dance"})
    assert "unknown message type" in (await comm.receive_json_from(timeout=5))["message"]
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=5) == {"type": "pong"}
    await comm.send_json_to({"type": "subscribe", "job": job.pk})
    assert (await comm.receive_json_from(timeout=5))["type"] == "subscribed"
    assert (await comm.receive_json_from(timeout=5))["data"]["id"] == job.pk
    await comm.disconnect()


async def test_foreign_browser_origin_is_refused():
    token, *_ = await make_world()
    _, connected, _ = await connect(f"/ws/events/?token={token}", headers=[(b"origin", b"http://evil.example")])
    assert not connected


@database_sync_to_async
def session_cookie(username: str) -> bytes:
    from django.test import Client

    from tests.factories import UserFactory

    client = Client()
    client.force_login(UserFactory(username=username, role="viewer"))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def test_browser_session_from_an_allowed_origin_is_accepted_and_foreign_origin_refused():
    _, _, exp, _ = await make_world()
    cookie = await session_cookie("browser-user")
    comm, connected, _ = await connect(
        "/ws/events/", headers=[(b"cookie", cookie), (b"origin", b"http://localhost:8000")]
    )
    assert connected
    await comm.send_json_to({"type": "subscribe", "experiment": exp.pk})
    assert await comm.receive_json_from(timeout=5) == {"type": "subscribed", "experiment": exp.pk}
    assert (await comm.receive_json_from(timeout=5))["data"]["id"] == exp.pk
    await comm.disconnect()
    # The same cookie from a page on another site is what cross-site websocket hijacking would use.
    _, connected, _ = await connect("/ws/events/", headers=[(b"cookie", cookie), (b"origin", b"http://evil.example")])
    assert not connected


async def test_garbled_tokens_are_refused_without_breaking_the_handshake():
    await make_world()
    for query in (b"token=%00abc", b"token=\xff\xfe", b"token=" + b"a" * 500):
        comm = WebsocketCommunicator(application, "/ws/events/")
        comm.scope["query_string"] = query
        await assert_refused_with_4401(comm)


async def test_bad_subscription_targets_get_errors_and_the_connection_stays_open():
    token, *_ = await make_world()
    comm, connected, _ = await connect(f"/ws/events/?token={token}")
    assert connected
    cases = [
        ({"type": "subscribe", "experiment": "\u00b2"}, "experiment must be a positive integer id"),
        ({"type": "subscribe", "experiment": 10**30}, "experiment must be a positive integer id"),
        ({"type": "subscribe", "job": 0}, "job must be a positive integer id"),
        ({"type": "subscribe", "job": True}, "job must be a positive integer id"),
        ({"type": "subscribe", "agents": False}, "agents must be true"),
        ({"type": "subscribe", "experiment": 1, "job": 1}, ONE_TARGET),
        ({"type": "unsubscribe"}, ONE_TARGET),
    ]
    for message, error in cases:
        await comm.send_json_to(message)
        assert await comm.receive_json_from(timeout=5) == {"type": "error", "message": error}, message
    await comm.send_to(text_data="[1, 2]")
    assert await comm.receive_json_from(timeout=5) == {"type": "error", "message": "message must be a JSON object"}
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=5) == {"type": "pong"}
    await comm.disconnect()


async def test_job_change_arrives_once_when_subscribed_to_its_experiment_and_the_job():

    token, _, exp, job = await make_world()
    comm, connected, _ = await connect(f"/ws/events/?token={token}")
    assert connected
    await comm.send_json_to({"type": "subscribe", "job": job.pk})
    assert (await comm.receive_json_from(timeout=5))["type"] == "subscribed"
    assert (await comm.receive_json_from(timeout=5))["type"] == "job.updated"
    await comm.send_json_to({"type": "subscribe", "experiment": exp.pk})
    assert (await comm.receive_json_from(timeout=5))["type"] == "subscribed"
    assert (await comm.receive_json_from(timeout=5))["type"] == "experiment.updated"

    await database_sync_to_async(job.transition)("assigned", reason="test dispatch", attempt=1)
    received = [await comm.receive_json_from(timeout=5) for _ in range(2)]
    assert sorted(e["type"] for e in received) == ["experiment.updated", "job.updated"]
    # No second copy of the job event from the other group.
    assert await comm.receive_nothing(timeout=0.5)

    # Still subscribed to the job alone: its changes keep coming, the experiment's do not.
    await comm.send_json_to({"type": "unsubscribe", "experiment": exp.pk})
    assert await comm.receive_json_from(timeout=5) == {"type": "unsubscribed", "experiment": exp.pk}
    await database_sync_to_async(job.transition)("completed", reason="done")
    event = await comm.receive_json_from(timeout=5)
    assert event["type"] == "job.updated" and event["data"]["status"] == "completed"
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def channel_layer(settings):
    """Switch the channel layer for one test: ``channel_layer(backend, **config)``; the default comes back after."""
    from channels.layers import channel_layers

    def use(backend: str, **config: object) -> None:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, **({"CONFIG": config} if config else {})}}
        channel_layers.backends.clear()

    yield use
    channel_layers.backends.clear()


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
async def test_events_through_the_redis_channel_layer(channel_layer):

    channel_layer("channels_redis.core.RedisChannelLayer", hosts=["redis://127.0.0.1:6379/0"], prefix="ruckus-test")
    token, _, _, job = await make_world()
    comm, connected, _ = await connect(f"/ws/events/?token={token}")
    assert connected
    await comm.send_json_to({"type": "subscribe", "job": job.pk})
    assert (await comm.receive_json_from(timeout=5))["type"] == "subscribed"
    await comm.receive_json_from(timeout=5)  # snapshot
    await database_sync_to_async(job.transition)("assigned", reason="via redis", attempt=1)
    event = await comm.receive_json_from(timeout=5)
    assert event == {"type": "job.updated", "data": event["data"]} and event["data"]["status"] == "assigned"
    await comm.disconnect()


async def test_changes_from_other_processes_arrive_by_polling_without_redis(channel_layer):
    """With the in-memory layer, a change written without an event (as by the scheduler process) still arrives."""
    from experiments.models import Job

    channel_layer("channels.layers.InMemoryChannelLayer")
    token, _, exp, job = await make_world()
    comm, connected, _ = await connect(f"/ws/events/?token={token}")
    assert connected
    await comm.send_json_to({"type": "subscribe", "experiment": exp.pk})
    assert (await comm.receive_json_from(timeout=5))["type"] == "subscribed"
    assert (await comm.receive_json_from(timeout=5))["type"] == "experiment.updated"
    # Nothing changed: polling sends nothing (the baseline is what the client already has).
    assert await comm.receive_nothing(timeout=1.5)
    await database_sync_to_async(
        lambda: Job.objects.filter(pk=job.pk).update(status="assigned", status_reason="elsewhere")
    )()
    try:
        # The job changed, and with it the experiment's job counts.
        events = {e["type"]: e["data"] for e in [await comm.receive_json_from(timeout=5) for _ in range(2)]}
        assert events["job.updated"]["id"] == job.pk
        assert events["job.updated"]["status"] == "assigned"
        assert events["job.updated"]["status_reason"] == "elsewhere"
        assert events["experiment.updated"]["job_counts"] == {"assigned": 1}
        assert await comm.receive_nothing(timeout=1.5)  # each sent once
    finally:
        await comm.disconnect()


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
async def test_an_idle_redis_layer_waits_past_the_client_read_timeout(channel_layer):
    """A receive idle longer than redis-py's default 5 s read timeout keeps waiting (it used to raise, closing 1011)."""
    import asyncio

    from channels.layers import get_channel_layer

    from ruckus_server.settings import redis_channel_layer

    config = redis_channel_layer("redis://127.0.0.1:6379/0")
    channel_layer(config["BACKEND"], **config["CONFIG"], prefix="ruckus-idle-test")
    layer = get_channel_layer()
    channel = await layer.new_channel()
    with pytest.raises(asyncio.TimeoutError):  # our own deadline, not redis.exceptions.TimeoutError
        await asyncio.wait_for(layer.receive(channel), timeout=12)
    await layer.send(channel, {"type": "still.alive"})
    assert (await asyncio.wait_for(layer.receive(channel), timeout=5))["type"] == "still.alive"
