"""Heartbeats at fleet scale: the interval grows with the fleet, silence is judged by each agent's own interval.

Also the heartbeat's fast path (one conditional update) against concurrent changes, and the quiet request log.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from agents import liveness
from agents.models import Agent
from agents.services import agent_deactivate, agent_heartbeat
from common.protocol import Heartbeat
from common.statuses import AgentActivity, AgentStatus
from core.logfilters import QuietHeartbeats
from core.models import StateTransition
from scheduling.recovery import sweep_agents
from tests.factories import AgentFactory
from tests.server.test_agent_callbacks import agent_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_fleet_count():
    """Each test counts its own fleet (the count is cached per process)."""
    liveness.forget_fleet_size()
    yield
    liveness.forget_fleet_size()


def test_the_interval_grows_with_the_fleet(settings):
    settings.RUCKUS_HEARTBEAT_INTERVAL_S = 5.0
    settings.RUCKUS_HEARTBEAT_MAX_RATE = 1000.0
    settings.RUCKUS_HEARTBEAT_INTERVAL_MAX_S = 60.0
    assert liveness.interval_for_fleet(0) == 5.0
    assert liveness.interval_for_fleet(5000) == 5.0  # 1,000 a second at 5 s
    assert liveness.interval_for_fleet(10_000) == 10.0
    assert liveness.interval_for_fleet(1_000_000) == 60.0  # capped
    settings.RUCKUS_HEARTBEAT_MAX_RATE = 0  # fixed interval
    assert liveness.interval_for_fleet(1_000_000) == 5.0


def test_a_heartbeat_answer_carries_the_fleet_interval_and_the_row_keeps_it(settings):
    settings.RUCKUS_HEARTBEAT_INTERVAL_S = 5.0
    settings.RUCKUS_HEARTBEAT_MAX_RATE = 1.0  # a tiny deployment: 12 agents already need 12 s
    agents = [AgentFactory(last_seen=timezone.now()) for _ in range(12)]
    answer = agent_client(agents[0]).post(f"/api/v1/agents/{agents[0].pk}/heartbeat/",
                                          {"agent_id": str(agents[0].pk)}, format="json").json()
    assert answer["heartbeat_interval_s"] == 12.0 and answer["status"] == AgentStatus.ONLINE
    assert Agent.objects.get(pk=agents[0].pk).heartbeat_interval_s == 12.0


def test_silence_is_judged_by_the_interval_each_agent_was_told(settings):
    settings.RUCKUS_HEARTBEAT_INTERVAL_S = 5.0
    settings.RUCKUS_AGENT_LOST_AFTER_S = 30.0
    now = timezone.now()
    base = AgentFactory(last_seen=now - timedelta(seconds=16), heartbeat_interval_s=5.0)
    told_20 = AgentFactory(last_seen=now - timedelta(seconds=50), heartbeat_interval_s=20.0)
    told_20_silent = AgentFactory(last_seen=now - timedelta(seconds=61), heartbeat_interval_s=20.0)
    never_told = AgentFactory(last_seen=now - timedelta(seconds=14), heartbeat_interval_s=None)
    sweep_agents(now, client_factory=_nobody_answers)
    status = dict(Agent.objects.values_list("pk", "status"))
    assert status[base.pk] == AgentStatus.UNREACHABLE  # 3 beats of 5 s missed
    assert status[told_20.pk] == AgentStatus.ONLINE  # 50 s < 3 beats of 20 s
    assert status[told_20_silent.pk] == AgentStatus.UNREACHABLE
    assert status[never_told.pk] == AgentStatus.ONLINE
    reason = StateTransition.objects.filter(agent=told_20_silent).last().reason
    assert reason == "no heartbeat for 60 s"
    # Lost: 30 s at the 5 s interval is 6 beats; at 20 s the same 6 beats are 120 s.
    later = now + timedelta(seconds=60)
    AgentFactory(last_seen=later, heartbeat_interval_s=5.0)  # the fleet is heard: silence is the agents' own
    sweep_agents(later, client_factory=_nobody_answers)
    status = dict(Agent.objects.values_list("pk", "status"))
    assert status[base.pk] == AgentStatus.OFFLINE  # 76 s silent > 30 s
    assert status[told_20_silent.pk] == AgentStatus.OFFLINE  # 121 s silent > 120 s
    assert status[told_20.pk] == AgentStatus.UNREACHABLE  # 110 s silent: unreachable, not yet lost


def _nobody_answers(url: str, token: str):
    """A client factory whose agents never answer the direct check."""
    from agents.client import AgentCallError

    class _Silent:
        def status(self, timeout: float | None = None):
            raise AgentCallError("no answer")

    return _Silent()


def test_the_fast_path_does_not_overwrite_a_concurrent_change():
    """The authenticated copy says online; a deactivation lands before the heartbeat's write: it stays."""
    agent = AgentFactory(last_seen=timezone.now())
    stale = Agent.objects.get(pk=agent.pk)  # what authentication read
    agent_deactivate(agent.pk)
    answer = agent_heartbeat(stale, Heartbeat(agent_id=str(agent.pk)))
    assert answer.status == AgentStatus.DEACTIVATED
    assert Agent.objects.get(pk=agent.pk).status == AgentStatus.DEACTIVATED


def test_the_fast_path_touches_only_time_and_interval():
    agent = AgentFactory(last_seen=timezone.now() - timedelta(seconds=3))
    before = Agent.objects.get(pk=agent.pk)
    answer = agent_heartbeat(before, Heartbeat(agent_id=str(agent.pk), capabilities_hash=agent.capabilities_hash))
    after = Agent.objects.get(pk=agent.pk)
    assert answer.status == AgentStatus.ONLINE and answer.refresh_capabilities is False
    assert after.last_seen > before.last_seen and after.heartbeat_interval_s == answer.heartbeat_interval_s
    assert not StateTransition.objects.filter(agent=agent).exclude(pk__in=_transitions(before)).exists()
    # A change of activity takes the full path.
    agent_heartbeat(after, Heartbeat(agent_id=str(agent.pk), activity=AgentActivity.BUSY))
    assert Agent.objects.get(pk=agent.pk).activity == AgentActivity.BUSY


def _transitions(agent: Agent) -> list[int]:
    return list(StateTransition.objects.filter(agent=agent).values_list("pk", flat=True))


@pytest.mark.parametrize(
    ("event", "keep"),
    [
        ({"event": "request_finished", "code": 200, "request": "POST /api/v1/agents/a1/heartbeat/"}, False),
        ({"event": "request_finished", "code": 401, "request": "POST /api/v1/agents/a1/heartbeat/"}, True),
        ({"event": "request_finished", "code": 200, "request": "POST /api/v1/agents/a1/capabilities/"}, True),
        ({"event": "request_finished", "code": 200, "request": "GET /api/v1/agents/a1/heartbeat/x"}, True),
        ({"event": "agent_status", "code": 200, "request": "POST /api/v1/agents/a1/heartbeat/"}, True),
    ],
)
def test_only_successful_heartbeats_leave_no_request_line(event, keep):
    record = logging.LogRecord("django_structlog", logging.INFO, __file__, 1, event, None, None)
    assert QuietHeartbeats().filter(record) is keep
