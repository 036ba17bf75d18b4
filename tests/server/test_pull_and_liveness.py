"""Unit tests of pull mode and of liveness judged fairly (against the real database, with an injected clock).

Pull agents: claim, hand-over in the work answer, a lost answer handed over again, refusals, cancellations.
Liveness: a silent push agent that still answers is kept; silence while the server was not observing does not
count; a fleet that falls silent as a whole is not declared lost; a lost attempt whose agent comes back is
taken back while its job waits, and refused once the job moved on.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from agent_runtime.api import create_app
from agent_runtime.settings import Settings
from agents.models import Agent
from agents.views import server_url_for
from common.protocol import AgentStatusReport, JobProgress, JobRejection, ServerContact, WorkRequest
from common.statuses import AgentActivity, AgentMode, AgentStatus, AttemptStatus, JobStatus
from experiments.models import JobAttempt
from scheduling.callbacks import CallbackRejected, handle_progress, handle_result
from scheduling.dispatch import dispatch_pending
from scheduling.loop import Observation, scheduler_pass
from scheduling.pull import begin_work_request, work_for
from scheduling.recovery import SweepOutcome, sweep_agents
from tests.agent.servers import UvicornThread
from tests.factories import AgentFactory, job_result
from tests.helpers import free_port
from tests.server.test_scheduler import FakeAgents, _job, _reload, _running

pytestmark = pytest.mark.django_db


@pytest.fixture
def agents() -> FakeAgents:
    """A fresh scripted fleet."""
    return FakeAgents()


@pytest.fixture
def clock():
    """The scheduler's 'now' for a test."""
    return timezone.now()


def _pull_agent(**kwargs):
    agent = AgentFactory(mode=AgentMode.PULL, url="", **kwargs)
    return agent


def _idle(agent, **kwargs) -> WorkRequest:
    return WorkRequest(agent_id=str(agent.pk), **kwargs)


# ----------------------------------------------------------------------------------------------------------
# Pull mode
# ----------------------------------------------------------------------------------------------------------


def test_a_job_for_a_pull_agent_waits_for_its_work_request(agents, clock):
    job = _job(agent=_pull_agent())
    assert dispatch_pending(clock, agents) == 1
    assert agents.calls == []  # the server never calls a pull agent
    attempt = JobAttempt.objects.get(job=job)
    assert attempt.status == AttemptStatus.DISPATCHING
    answer = work_for(job.agent, _idle(job.agent), clock)
    assert answer is not None and answer.job is not None
    assert answer.job.job_id == str(job.pk) and answer.job.attempt_token == attempt.attempt_token
    _reload(job, attempt)
    assert attempt.status == AttemptStatus.RUNNING and job.status == JobStatus.RUNNING
    # While the agent reports it running, there is nothing more to say.
    busy = _idle(job.agent, activity="busy", running_job_id=str(job.pk), attempt=1,
                 attempt_token=attempt.attempt_token)
    assert work_for(job.agent, busy, clock) is None


def test_a_lost_work_answer_is_handed_over_again_with_the_same_token(agents, clock):
    job = _job(agent=_pull_agent())
    dispatch_pending(clock, agents)
    first = work_for(job.agent, _idle(job.agent), clock)
    # The answer never reached the agent: its next request says it is idle and holds nothing.
    again = work_for(job.agent, _idle(job.agent), clock)
    assert again is not None and again.job is not None
    assert again.job.attempt_token == first.job.attempt_token and again.job.attempt == 1
    # But not when the agent says it finished the job (its result is on the way).
    assert work_for(job.agent, _idle(job.agent, finished_job_ids=[str(job.pk)]), clock) is None


def test_a_refused_job_counts_as_a_failed_dispatch_and_busy_does_not(agents, clock):
    job = _job(agent=_pull_agent(), max_attempts=3)
    dispatch_pending(clock, agents)
    handed = work_for(job.agent, _idle(job.agent), clock).job
    refusal = JobRejection(job_id=handed.job_id, attempt=1, attempt_token=handed.attempt_token,
                           reason="model.path: not inside the agent's model directories")
    begin_work_request(job.agent, _idle(job.agent, rejected=[refusal]), clock)
    _reload(job)
    assert job.status == JobStatus.PENDING and "model.path" in job.status_reason and job.max_attempts == 3
    assert Agent.objects.get(pk=job.agent_id).activity == AgentActivity.IDLE
    later = clock + timedelta(seconds=3600)
    dispatch_pending(later, agents)
    handed = work_for(job.agent, _idle(job.agent), later).job
    busy = JobRejection(job_id=handed.job_id, attempt=2, attempt_token=handed.attempt_token, reason="busy",
                        busy=True)
    begin_work_request(job.agent, _idle(job.agent, rejected=[busy]), later)
    _reload(job)
    assert job.status == JobStatus.PENDING and job.max_attempts == 4  # busy: the attempt did not count


def test_cancellation_reaches_a_pull_agent_in_its_work_answer(agents, clock):
    job = _job(agent=_pull_agent())
    dispatch_pending(clock, agents)
    attempt_token = work_for(job.agent, _idle(job.agent), clock).job.attempt_token
    job.refresh_from_db()
    job.cancel("operator", clock)
    running = _idle(job.agent, activity="busy", running_job_id=str(job.pk), attempt=1, attempt_token=attempt_token)
    answer = work_for(job.agent, running, clock)
    assert answer is not None and answer.cancel_job_ids == [str(job.pk)]
    _reload(job)
    assert job.cancel_requested is False
    # Should that answer be lost, the next request still names the job, which is no longer current: again.
    assert work_for(job.agent, running, clock).cancel_job_ids == [str(job.pk)]


def test_the_work_endpoint_serves_pull_agents_only(settings):
    settings.RUCKUS_PULL_WAIT_S = 0.2
    pull, push = _pull_agent(), AgentFactory()
    credentials = {}
    for agent in (pull, push):
        credentials[agent.pk] = agent.set_credential()
        agent.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credentials[pull.pk]}")
    r = client.post(f"/api/v1/agents/{pull.pk}/work/", {"agent_id": str(pull.pk), "wait_s": 5}, format="json")
    assert r.status_code == 200 and r.json() == {"status": "online", "job": None, "cancel_job_ids": []}
    assert client.post(f"/api/v1/agents/{push.pk}/work/", {"agent_id": str(push.pk)},
                       format="json").status_code == 403  # another agent's work
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credentials[push.pk]}")
    r = client.post(f"/api/v1/agents/{push.pk}/work/", {"agent_id": str(push.pk)}, format="json")
    assert r.status_code == 409 and "push mode" in r.json()["detail"]


# ----------------------------------------------------------------------------------------------------------
# Liveness
# ----------------------------------------------------------------------------------------------------------


def test_a_silent_push_agent_that_answers_is_kept_with_its_reason(agents, clock):
    job = _job()
    attempt = _running(job, clock)
    agent = Agent.objects.get(pk=job.agent_id)
    Agent.objects.filter(pk=agent.pk).update(last_seen=clock)
    # The agent's clock is an hour ahead: its heartbeats began failing 20 s before it answered, by its clock.
    skew = timedelta(hours=1)
    later = clock + timedelta(seconds=settings.RUCKUS_AGENT_LOST_AFTER_S + 1)
    agents.alive[agent.url] = AgentStatusReport(reported_at=later + skew, contact=ServerContact(
        server_url="http://127.0.0.1:8000", failing_since=later + skew - timedelta(seconds=20),
        last_error="ConnectError: [Errno 111] Connection refused"))
    sweep_agents(later, client_factory=agents)
    agent.refresh_from_db()
    _reload(attempt)
    assert agent.status == AgentStatus.ONLINE and attempt.status == AttemptStatus.RUNNING
    assert "http://127.0.0.1:8000" in agent.heartbeat_error and "Connection refused" in agent.heartbeat_error
    assert agent.heartbeat_error_since == later - timedelta(seconds=20)  # on the server's clock
    # A heartbeat that arrives clears it.
    client = APIClient()
    credential = agent.set_credential()
    agent.save()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    assert client.post(f"/api/v1/agents/{agent.pk}/heartbeat/", {"agent_id": str(agent.pk)},
                       format="json").status_code == 200
    agent.refresh_from_db()
    assert agent.heartbeat_error == "" and agent.heartbeat_error_since is None


def test_an_unanswering_silent_agent_shows_since_when(agents, clock):
    job = _job()
    Agent.objects.filter(pk=job.agent_id).update(last_seen=clock)
    sweep_agents(clock + timedelta(seconds=3 * settings.RUCKUS_HEARTBEAT_INTERVAL_S + 1), client_factory=agents)
    agent = Agent.objects.get(pk=job.agent_id)
    assert agent.status == AgentStatus.UNREACHABLE and "no heartbeat" in agent.heartbeat_error
    assert agent.heartbeat_error_since == clock


def test_silence_while_the_server_was_not_observing_does_not_count(agents, clock):
    job = _job()
    attempt = _running(job, clock)
    Agent.objects.filter(pk=job.agent_id).update(last_seen=clock)
    agents.jobs[str(job.pk)] = {"attempt": 1}  # the agent runs it (and answers when the scheduler asks)
    # The database was down for 60 s: the scheduler's passes failed, heartbeats were not recorded.
    back = clock + timedelta(seconds=60)
    observation = Observation()
    observation.interrupt()
    scheduler_pass(back, agents, observation)
    assert Agent.objects.get(pk=job.agent_id).status == AgentStatus.ONLINE
    assert observation.since == back
    # Counted from the return, the agent must stay silent the whole lost-agent time to be lost.
    almost = back + timedelta(seconds=settings.RUCKUS_AGENT_LOST_AFTER_S - 1)
    scheduler_pass(almost, agents, observation)
    _reload(attempt)
    assert attempt.status == AttemptStatus.RUNNING
    scheduler_pass(back + timedelta(seconds=settings.RUCKUS_AGENT_LOST_AFTER_S + 1), agents, observation)
    _reload(attempt)
    assert attempt.status == AttemptStatus.LOST


def test_a_fleet_silent_as_a_whole_is_not_declared_lost(agents, clock):
    jobs = [_job(), _job()]
    attempts = [_running(j, clock) for j in jobs]
    Agent.objects.update(last_seen=clock)
    much_later = clock + timedelta(seconds=10 * settings.RUCKUS_AGENT_LOST_AFTER_S)
    assert sweep_agents(much_later, client_factory=agents) is SweepOutcome.FLEET_SILENT
    assert set(Agent.objects.values_list("status", flat=True)) == {AgentStatus.UNREACHABLE}
    for attempt in attempts:
        _reload(attempt)
        assert attempt.status == AttemptStatus.RUNNING
    # When one agent is heard again, the other one is judged on its own (after the grace the caller gives).
    Agent.objects.filter(pk=jobs[0].agent_id).update(last_seen=much_later, status=AgentStatus.ONLINE)
    assert sweep_agents(much_later, client_factory=agents) is SweepOutcome.OBSERVING
    _reload(attempts[1])
    assert attempts[1].status == AttemptStatus.LOST


def test_a_lost_attempt_is_taken_back_when_its_agent_reports_it(agents, clock):
    job = _job()
    attempt = _running(job, clock)
    Agent.objects.filter(pk=job.agent_id).update(last_seen=clock)
    sweep_agents(clock + timedelta(seconds=settings.RUCKUS_AGENT_LOST_AFTER_S + 1), client_factory=agents)
    _reload(job, attempt)
    assert attempt.status == AttemptStatus.LOST and job.status == JobStatus.PENDING
    # The partition heals before the retry was dispatched: the agent's progress takes the attempt back...
    progress = JobProgress(job_id=str(job.pk), attempt=1, attempt_token=attempt.attempt_token, status="running")
    handle_progress(job.pk, job.agent, progress)
    _reload(job, attempt)
    assert attempt.status == AttemptStatus.RUNNING and job.status == JobStatus.RUNNING and job.attempt == 1
    assert Agent.objects.get(pk=job.agent_id).activity == AgentActivity.BUSY
    # ...and its result completes the job, once.
    result = job_result(job.pk, token=attempt.attempt_token)
    assert handle_result(job.pk, job.agent, result)["stored"] is True
    _reload(job)
    assert job.status == JobStatus.COMPLETED and job.attempt == 1


def test_a_lost_attempt_stays_lost_once_its_job_moved_on(agents, clock):
    job = _job()
    attempt = _running(job, clock)
    job.agent.__class__.objects.filter(pk=job.agent_id).update(last_seen=clock)
    other = AgentFactory()
    sweep_agents(clock + timedelta(seconds=settings.RUCKUS_AGENT_LOST_AFTER_S + 1), client_factory=agents)
    Agent.objects.filter(pk=other.pk).update(last_seen=clock + timedelta(seconds=3600))
    dispatch_pending(clock + timedelta(seconds=3600), agents)  # the retry went to the other agent
    _reload(job, attempt)
    assert job.attempt == 2 and job.agent_id == other.pk
    result = job_result(job.pk, token=attempt.attempt_token)
    with pytest.raises(CallbackRejected) as refused:
        handle_result(job.pk, attempt.agent, result)
    assert refused.value.status == 409
    _reload(attempt)
    assert attempt.status == AttemptStatus.LOST


def test_a_heartbeat_naming_a_lost_attempt_takes_it_back(agents, clock):
    job = _job()
    attempt = _running(job, clock)
    agent = Agent.objects.get(pk=job.agent_id)
    Agent.objects.filter(pk=agent.pk).update(last_seen=clock)
    sweep_agents(clock + timedelta(seconds=settings.RUCKUS_AGENT_LOST_AFTER_S + 1), client_factory=agents)
    credential = agent.set_credential()
    agent.save(update_fields=["credential_hash"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    r = client.post(f"/api/v1/agents/{agent.pk}/heartbeat/", {
        "agent_id": str(agent.pk), "activity": "busy", "running_job_id": str(job.pk), "attempt": 1,
        "attempt_token": attempt.attempt_token}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "online"
    _reload(job, attempt)
    assert attempt.status == AttemptStatus.RUNNING and job.status == JobStatus.RUNNING


def test_refresh_of_a_pull_agent_is_refused_with_the_reason(api):
    agent = _pull_agent()
    r = api.post(f"/api/v1/agents/{agent.pk}/refresh/")
    assert r.status_code == 409 and "pull agent" in r.json()["detail"]


def test_registration_fails_naming_the_address_the_agent_could_not_reach(api, settings, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    settings.RUCKUS_PUBLIC_URL = dead
    token = "agent-token-for-the-test"
    agent_app = create_app(Settings(data_dir=tmp_path / "agent", token=token, name="far-agent"))
    with UvicornThread(agent_app) as agent:
        r = api.post("/api/v1/agents/", {"url": agent.url, "token": token}, format="json")
    assert r.status_code == 502
    detail = r.json()["detail"]
    assert f"could not reach the server at {dead}" in detail and "ConnectError" in detail
    assert "RUCKUS_PUBLIC_URL" in detail
    assert not Agent.objects.exists()  # nothing half-registered stays


def test_an_attempt_lost_while_a_work_request_is_held_is_taken_back_not_cancelled(agents, clock):
    """The agent's poll was held when the sweep gave its attempt up: the next look revives it, no cancel."""
    job = _job(agent=_pull_agent())
    dispatch_pending(clock, agents)
    handed = work_for(job.agent, _idle(job.agent), clock).job
    running = _idle(job.agent, activity="busy", running_job_id=str(job.pk), attempt=1,
                    attempt_token=handed.attempt_token)
    begin_work_request(job.agent, running, clock)  # the request arrives; then the server holds it
    Agent.objects.filter(pk=job.agent_id).update(last_seen=clock)
    sweep_agents(clock + timedelta(seconds=settings.RUCKUS_AGENT_LOST_AFTER_S + 1), client_factory=agents)
    _reload(job)
    assert job.status == JobStatus.PENDING  # lost during the hold
    assert work_for(job.agent, running, clock) is None  # no cancellation: the attempt is taken back
    _reload(job)
    assert job.status == JobStatus.RUNNING and job.attempt == 1


def test_agents_are_told_the_address_that_reached_the_server(settings):
    settings.RUCKUS_PUBLIC_URL = ""
    settings.ALLOWED_HOSTS = ["198.18.0.1", "ruckus.example.org"]
    factory = APIRequestFactory()
    forged = {"HTTP_HOST": "198.18.0.1:8123", "HTTP_X_FORWARDED_HOST": "ruckus.example.org",
              "HTTP_X_FORWARDED_PROTO": "https"}
    # Without a configured proxy, X-Forwarded-* are a client's claims: ignored.
    assert server_url_for(Request(factory.post("/api/v1/agents/", **forged))) == "http://198.18.0.1:8123"
    # Behind a proxy (RUCKUS_BEHIND_PROXY sets Django's own settings), they name the public address.
    settings.USE_X_FORWARDED_HOST = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert server_url_for(Request(factory.post("/api/v1/agents/", **forged))) == "https://ruckus.example.org"
    # A configured public URL wins over both.
    settings.RUCKUS_PUBLIC_URL = "https://ruckus.internal:8443"
    assert server_url_for(Request(factory.post("/api/v1/agents/", **forged))) == "https://ruckus.internal:8443"


@pytest.mark.parametrize("job_id", ["9" * 30, "١٢", "-1", "1e3", "", " 7"])
def test_hostile_job_ids_from_an_agent_are_refused_cleanly(job_id):
    """Job ids an agent sends (heartbeat, work request, callback URL) that cannot be ids: no 500, nothing changes."""
    pull = _pull_agent()
    credential = pull.set_credential()
    pull.save(update_fields=["credential_hash"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    body = {"agent_id": str(pull.pk), "activity": "busy", "running_job_id": job_id, "attempt": 1,
            "attempt_token": "t" * 20}
    assert client.post(f"/api/v1/agents/{pull.pk}/heartbeat/", body, format="json").status_code == 200
    r = client.post(f"/api/v1/agents/{pull.pk}/work/", {**body, "wait_s": 0}, format="json")
    assert r.status_code == 200 and r.json()["job"] is None
    if job_id.strip():
        progress = {"job_id": job_id, "attempt": 1, "attempt_token": "t" * 20, "status": "running"}
        r = client.post(f"/api/v1/jobs/{job_id}/progress/", progress, format="json")
        assert r.status_code == 404, r.content


def test_pull_announce_checks_key_and_fields_and_registers(settings):
    settings.RUCKUS_REGISTRATION_KEY = "right-key"
    client = APIClient()
    info = AgentFactory.build().info.model_dump(mode="json")
    body = {"mode": "pull", "registration_key": "right-key", "info": info, "name": "nat-host"}
    assert client.post("/api/v1/agents/announce/", {**body, "registration_key": "wrong"},
                       format="json").status_code == 403
    missing = client.post("/api/v1/agents/announce/", {k: v for k, v in body.items() if k != "info"}, format="json")
    assert missing.status_code == 400 and "info" in str(missing.json())
    hostile = client.post("/api/v1/agents/announce/", {**body, "info": {**info, "cpu": {"logical_cores": "x"}}},
                          format="json")
    assert hostile.status_code == 400 and "cpu.logical_cores" in str(hostile.json())
    assert not Agent.objects.exists()
    r = client.post("/api/v1/agents/announce/", body, format="json")
    assert r.status_code == 201
    answer = r.json()
    agent = Agent.objects.get(pk=answer["agent_id"])
    assert agent.mode == AgentMode.PULL and agent.url == "" and agent.name == "nat-host"
    assert answer["registration"]["server_url"] == "http://testserver"
    assert agent.check_credential(answer["registration"]["credential"])
