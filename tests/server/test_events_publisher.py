"""The background event publisher: one thread per process builds queued events and sends them in order.

The test process sends events inline (tests/settings.py); these tests drive a :class:`core.events.Publisher` of
their own and wait for it to drain before the test database is flushed.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from core import events
from core.events import Publisher
from tests.factories import AgentFactory


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict[str, Any]]]:
    """Every (group, message) the publisher sends, instead of a channel layer's."""
    out: list[tuple[str, dict[str, Any]]] = []

    async def record(layer: Any, messages: list[tuple[str, dict[str, Any]]]) -> None:
        out.extend(messages)

    monkeypatch.setattr(events, "_send_all", record)
    return out


@pytest.mark.django_db(transaction=True)  # the thread reads committed rows on a connection of its own
def test_repeats_of_a_queued_object_go_out_once_with_the_latest_state(sent, monkeypatch):
    agents = [AgentFactory(name=f"pub{i}") for i in range(3)]
    gate, building = threading.Event(), threading.Event()
    real = events._message

    def held(event: str, object_id: Any):
        building.set()
        assert gate.wait(30)
        return real(event, object_id)

    monkeypatch.setattr(events, "_message", held)
    publisher = Publisher()
    try:
        publisher.enqueue(events.AGENT_UPDATED, agents[0].pk)
        assert building.wait(30)  # the thread is busy with the first batch
        for agent in (agents[1], agents[2], agents[1], agents[1]):
            publisher.enqueue(events.AGENT_UPDATED, agent.pk)
        agents[1].name = "renamed"
        agents[1].save(update_fields=["name"])
        gate.set()
    finally:
        gate.set()
        assert publisher.flush(30), "the publisher did not drain"
    ids = [message["data"]["id"] for _, message in sent]
    # Order of first change kept; the three queued changes of agent 1 became one event.
    assert ids == [str(agents[0].pk), str(agents[1].pk), str(agents[2].pk)]
    assert sent[1][1]["data"]["name"] == "renamed"  # built from the committed state when it went out
    assert {group for group, _ in sent} == {events.AGENTS_GROUP}


@pytest.mark.django_db(transaction=True)
def test_a_failed_build_loses_only_its_batch(sent, monkeypatch):
    agent = AgentFactory(name="pub-ok")
    calls = {"n": 0}
    real = events._message

    def flaky(event: str, object_id: Any):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return real(event, object_id)

    monkeypatch.setattr(events, "_message", flaky)
    publisher = Publisher()
    publisher.enqueue(events.AGENT_UPDATED, agent.pk)
    assert publisher.flush(30)
    publisher.enqueue(events.AGENT_UPDATED, agent.pk)
    assert publisher.flush(30)
    assert [m["data"]["id"] for _, m in sent] == [str(agent.pk)]  # the thread lived on after the failure
