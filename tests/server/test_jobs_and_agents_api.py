"""Jobs API (filters, cancel, retry, transition log) and agents API (edit, deactivate, delete, no secrets)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, AgentStatus
from common.catalog import task_params
from experiments.models import Job, JobStatus
from experiments.services import experiment_create
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def make_experiment(runtimes=("transformers",), name="e"):
    return experiment_create(
        name=name,
        task_name="wikipedia_summarization", task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": "smollm2-135m-instruct"}],
        runtimes=[{"name": r, "params": {}} for r in runtimes],
        agents={"all": True},
        runs_per_job=2,
    )


def test_job_fields_and_filters(api):
    a1, a2 = AgentFactory(name="a1"), AgentFactory(name="a2")
    exp1 = make_experiment(name="one")
    exp2 = make_experiment(name="two")
    assert Job.objects.count() == 4
    listing = api.get("/api/v1/jobs/").json()
    assert listing["count"] == 4
    job = listing["results"][0]
    for field in ("id", "experiment", "status", "agent", "attempt", "model", "runtime", "progress"):
        assert field in job
    assert api.get(f"/api/v1/jobs/?experiment={exp1.pk}").json()["count"] == 2
    assert api.get(f"/api/v1/jobs/?agent={a1.pk}").json()["count"] == 2
    running = Job.objects.filter(experiment=exp2, agent=a2).get()
    running.transition(JobStatus.ASSIGNED, reason="test dispatch")
    assert [j["id"] for j in api.get("/api/v1/jobs/?status=assigned").json()["results"]] == [running.pk]
    assert api.get("/api/v1/jobs/?status=assigned,pending").json()["count"] == 4
    # updated_after serves the polling loop: only what changed since the last poll.
    since = (timezone.now() - timedelta(seconds=1)).isoformat()
    Job.objects.exclude(pk=running.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    changed = api.get("/api/v1/jobs/", {"updated_after": since}).json()
    assert [j["id"] for j in changed["results"]] == [running.pk]
    assert api.get("/api/v1/jobs/?updated_after=yesterday").status_code == 400


def test_cancel_and_retry_with_transition_log(api):
    AgentFactory()
    exp = make_experiment()
    job = exp.jobs.get()
    r = api.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert api.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 409
    exp.refresh_from_db()
    assert exp.status == "cancelled"
    r = api.post(f"/api/v1/jobs/{job.pk}/retry/")
    assert r.status_code == 200 and r.json()["status"] == "pending"
    exp.refresh_from_db()
    assert exp.status == "pending"
    detail = api.get(f"/api/v1/jobs/{job.pk}/").json()
    states = [(t["from_state"], t["to_state"]) for t in detail["transitions"]]
    assert states == [("", "pending"), ("pending", "cancelled"), ("cancelled", "pending")]
    assert detail["transitions"][1]["reason"] == "cancelled by user"
    # Retrying a pending job is refused with the reason.
    refused = api.post(f"/api/v1/jobs/{job.pk}/retry/")
    assert refused.status_code == 409 and "only finished jobs" in refused.json()["detail"]


def test_state_machine_refuses_illegal_transition():
    from experiments.models import InvalidTransition

    AgentFactory()
    job = make_experiment().jobs.get()
    with pytest.raises(InvalidTransition):
        job.transition(JobStatus.COMPLETED, reason="skipping ahead")


def test_experiment_status_is_derived_from_jobs():
    from experiments.models import derive_experiment_status as d

    assert d({"pending": 2}) == "pending"
    assert d({"pending": 1, "running": 1}) == "running"
    assert d({"pending": 1, "completed": 1}) == "running"
    assert d({"completed": 2}) == "completed"
    assert d({"completed": 1, "failed": 1}) == "partially_failed"
    assert d({"failed": 1, "timed_out": 1}) == "failed"
    assert d({"cancelled": 2}) == "cancelled"
    assert d({"completed": 1, "cancelled": 1}) == "cancelled"
    assert d({}) == "failed"


def test_agent_list_hides_secrets_and_shows_summary(api):
    agent = AgentFactory(name="box")
    credential = agent.set_credential()
    agent.save()
    body = api.get("/api/v1/agents/").json()["results"][0]
    text = str(body)
    assert credential not in text and agent.token not in text
    assert "credential_hash" not in body and "token_encrypted" not in body
    assert body["summary"]["cpu"] == "AMD EPYC 7763 64-Core Processor"
    assert body["summary"]["runtimes"] == ["transformers", "openai"]
    assert agent.check_credential(credential) and not agent.check_credential("guess")


def test_agent_token_is_encrypted_at_rest():
    agent = AgentFactory()
    agent.token = "server-uses-this-to-call-the-agent"
    agent.save()
    stored = Agent.objects.values_list("token_encrypted", flat=True).get(pk=agent.pk)
    assert "server-uses-this" not in stored
    assert Agent.objects.get(pk=agent.pk).token == "server-uses-this-to-call-the-agent"


def test_agent_edit_deactivate_activate_delete(api):
    agent = AgentFactory()
    r = api.patch(f"/api/v1/agents/{agent.pk}/", {"labels": ["gpu", "lab"], "cost_per_hour": "2.50"}, format="json")
    assert r.status_code == 200 and r.json()["labels"] == ["gpu", "lab"] and r.json()["cost_per_hour"] == "2.5000"
    assert api.get("/api/v1/agents/?label=lab").json()["count"] == 1
    assert api.get("/api/v1/agents/?label=nothing").json()["count"] == 0
    bad = api.patch(f"/api/v1/agents/{agent.pk}/", {"cost_per_hour": "-1"}, format="json")
    assert bad.status_code == 400 and "cost_per_hour" in bad.json()
    # Read-only fields are ignored, not silently applied.
    api.patch(f"/api/v1/agents/{agent.pk}/", {"status": "offline"}, format="json")
    agent.refresh_from_db()
    assert agent.status == AgentStatus.ONLINE
    r = api.post(f"/api/v1/agents/{agent.pk}/deactivate/")
    assert r.json()["status"] == "deactivated"
    assert agent.transitions.get().to_state == "deactivated"
    assert api.post(f"/api/v1/agents/{agent.pk}/activate/").json()["status"] == "offline"
    job = make_experiment().jobs.first()
    assert job is None  # an offline agent gets no jobs
    agent.status = AgentStatus.ONLINE
    agent.save()
    job = make_experiment().jobs.get()
    job.transition(JobStatus.ASSIGNED, reason="dispatch")
    assert api.delete(f"/api/v1/agents/{agent.pk}/").status_code == 409
    job.transition(JobStatus.CANCELLED, reason="stop")
    assert api.delete(f"/api/v1/agents/{agent.pk}/").status_code == 204


def test_agent_selection_by_labels_and_ids(api):
    gpu = AgentFactory(name="gpu", labels=["gpu", "lab"])
    AgentFactory(name="cpu", labels=["lab"])
    exp = experiment_create(
        name="by label", task_name="wikipedia_summarization", task_params=task_params("wikipedia_summarization", {}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"labels": ["gpu", "lab"]}, runs_per_job=1,
    )
    assert [j.agent_id for j in exp.jobs.all()] == [gpu.pk]
    body = api.post("/api/v1/experiments/", {
        "name": "by id", "task": {"name": "wikipedia_summarization"}, "models": [{"name": "smollm2-135m-instruct"}],
        "runtimes": [{"name": "transformers"}], "agents": {"ids": [str(gpu.pk)]}, "runs_per_job": 1,
    }, format="json").json()
    assert [j.agent_id for j in Job.objects.filter(experiment_id=body["id"])] == [gpu.pk]
