"""Agent -> server calls: credential auth, heartbeats, capabilities, progress/result with attempt tokens."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import AgentStatus
from common.catalog import task_params
from experiments.models import AttemptStatus, JobAttempt, JobStatus
from experiments.services import experiment_create
from results.models import RunResult
from scheduling.recovery import sweep_agents
from tests.factories import AgentFactory, job_result

pytestmark = pytest.mark.django_db


def agent_client(agent) -> APIClient:
    credential = agent.set_credential()
    agent.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    return client


def running_job(agent):
    exp = experiment_create(
        name="cb",
        task_name="wikipedia_summarization", task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"ids": [str(agent.pk)]}, runs_per_job=3,
    )
    job = exp.jobs.get()
    attempt = JobAttempt.objects.create(job=job, number=1, agent=agent, attempt_token=secrets.token_urlsafe(16),
                                        status=AttemptStatus.RUNNING)
    job.transition(JobStatus.ASSIGNED, reason="test", attempt=1)
    job.transition(JobStatus.RUNNING, reason="test")
    return job, attempt


def test_agent_credential_does_not_open_the_user_api():
    client = agent_client(AgentFactory())
    assert client.get("/api/v1/experiments/").status_code == 401


def test_heartbeat_and_capabilities(api):
    agent = AgentFactory(status=AgentStatus.UNREACHABLE)
    client = agent_client(agent)
    r = client.post(f"/api/v1/agents/{agent.pk}/heartbeat/", {"agent_id": str(agent.pk), "activity": "busy",
                                                              "capabilities_hash": "different"}, format="json")
    assert r.status_code == 200 and r.json() == {"status": "online", "refresh_capabilities": True,
                                                 "heartbeat_interval_s": settings.RUCKUS_HEARTBEAT_INTERVAL_S}
    agent.refresh_from_db()
    assert agent.activity == "busy" and agent.last_seen is not None
    assert agent.transitions.last().reason == "heartbeat received"
    other = AgentFactory()
    assert client.post(f"/api/v1/agents/{other.pk}/heartbeat/", {"agent_id": str(other.pk)},
                       format="json").status_code == 403
    info = agent.info.model_copy(update={"name": "renamed-host"})
    r = client.post(f"/api/v1/agents/{agent.pk}/capabilities/", info.model_dump(mode="json"), format="json")
    assert r.status_code == 200
    agent.refresh_from_db()
    assert agent.capabilities["name"] == "renamed-host"
    bad = client.post(f"/api/v1/agents/{agent.pk}/capabilities/", {"cpu": {"logical_cores": "many"}}, format="json")
    assert bad.status_code == 400 and "cpu.logical_cores" in bad.json()
    assert APIClient().post(f"/api/v1/agents/{agent.pk}/heartbeat/", {}, format="json").status_code in (401, 403)


def test_silent_agent_goes_unreachable_then_offline_and_its_attempt_is_lost(settings):
    settings.RUCKUS_HEARTBEAT_INTERVAL_S = 5
    settings.RUCKUS_AGENT_LOST_AFTER_S = 30
    agent = AgentFactory()
    job, attempt = running_job(agent)
    agent.last_seen = timezone.now() - timedelta(seconds=20)
    agent.save()
    sweep_agents()
    agent.refresh_from_db()
    assert agent.status == AgentStatus.UNREACHABLE
    sweep_agents(now=timezone.now() + timedelta(seconds=15))
    agent.refresh_from_db()
    attempt.refresh_from_db()
    job.refresh_from_db()
    assert agent.status == AgentStatus.OFFLINE
    assert attempt.status == AttemptStatus.LOST
    assert job.status == JobStatus.PENDING and job.not_before > timezone.now()
    assert "retry 2/3" in job.status_reason


def test_result_callback_tokens_ownership_and_replays():
    agent_a, agent_b = AgentFactory(name="a"), AgentFactory(name="b")
    job, attempt = running_job(agent_a)
    client_a, client_b = agent_client(agent_a), agent_client(agent_b)
    message = job_result(job.pk, token=attempt.attempt_token).model_dump(mode="json")
    # Agent B may not post to agent A's job.
    assert client_b.post(f"/api/v1/jobs/{job.pk}/result/", message, format="json").status_code == 403
    # A token that is not the job's current attempt: 409, nothing stored.
    stale = {**message, "attempt_token": "not-the-current-token"}
    assert client_a.post(f"/api/v1/jobs/{job.pk}/result/", stale, format="json").status_code == 409
    assert not RunResult.objects.filter(job=job).exists()
    progress = {"job_id": str(job.pk), "attempt": 1, "attempt_token": attempt.attempt_token, "status": "running",
                "stage": "warm_run", "run_index": 2, "runs_total": 3}
    assert client_a.post(f"/api/v1/jobs/{job.pk}/progress/", progress, format="json").status_code == 200
    job.refresh_from_db()
    assert job.current_attempt.progress["run_index"] == 2
    # The same result posted 5 times is stored once.
    answers = [client_a.post(f"/api/v1/jobs/{job.pk}/result/", message, format="json") for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["stored"] for a in answers] == [True, False, False, False, False]
    assert RunResult.objects.filter(job=job).count() == 3
    job.refresh_from_db()
    attempt.refresh_from_db()
    agent_a.refresh_from_db()
    assert job.status == JobStatus.COMPLETED and attempt.status == AttemptStatus.COMPLETED
    assert agent_a.activity == "idle"
    # Progress after the end is stale.
    assert client_a.post(f"/api/v1/jobs/{job.pk}/progress/", progress, format="json").status_code == 409
    assert client_a.post("/api/v1/jobs/999999/result/", message, format="json").status_code == 404


def test_interrupted_result_sends_the_job_to_retry():
    agent = AgentFactory()
    job, attempt = running_job(agent)
    message = job_result(job.pk, token=attempt.attempt_token, runs=1).model_dump(mode="json")
    message["status"] = "interrupted"
    r = agent_client(agent).post(f"/api/v1/jobs/{job.pk}/result/", message, format="json")
    assert r.status_code == 200 and r.json()["status"] == "pending"
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.INTERRUPTED


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://169.254.169.254/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://8.8.8.8:9000", "outside the allowed agent networks"),
        ("ftp://127.0.0.1/", "http:// or https://"),
        ("http://user:pw@127.0.0.1/", "credentials"),
    ],
)
def test_url_guard_refuses_with_reason(api, url, needle):
    r = api.post("/api/v1/agents/", {"url": url, "token": "tok"}, format="json")
    assert r.status_code == 400 and needle in r.json()["url"][0]


def test_registration_of_unreachable_agent_stores_nothing(api):
    from agents.models import Agent

    r = api.post("/api/v1/agents/", {"url": "http://127.0.0.1:9", "token": "tok"}, format="json")
    assert r.status_code == 502 and "did not answer" in r.json()["detail"]
    assert not Agent.objects.exists()


def test_announce_needs_the_registration_key(settings):
    client = APIClient()
    body = {"url": "http://127.0.0.1:9", "token": "tok", "registration_key": "k"}
    settings.RUCKUS_REGISTRATION_KEY = ""
    assert client.post("/api/v1/agents/announce/", body, format="json").status_code == 403
    settings.RUCKUS_REGISTRATION_KEY = "right-key"
    r = client.post("/api/v1/agents/announce/", body, format="json")
    assert r.status_code == 403 and r.json()["detail"] == "wrong registration key"
    bad = client.post("/api/v1/agents/announce/", {**body, "registration_key": "right-key",
                                                    "url": "http://169.254.169.254/"}, format="json")
    assert bad.status_code == 400 and "link-local" in bad.json()["url"]
