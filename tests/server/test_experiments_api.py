"""Experiment API: creation with expansion, validation naming fields, update, delete, cancel, filters."""

from __future__ import annotations

import pytest

from agents.models import AgentStatus
from core.models import StateTransition
from experiments.models import Job, JobStatus
from tests.factories import AgentFactory, agent_info

pytestmark = pytest.mark.django_db


def payload(**overrides):
    data = {
        "name": "summaries on the fleet",
        "description": "first look",
        "task": {"name": "wikipedia_summarization", "params": {"num_samples": 3, "seed": 7}},
        "models": [{"name": "smollm2-135m-instruct"}],
        "runtimes": [{"name": "transformers", "params": {"device": "cpu"}}],
        "agents": {"all": True},
        "runs_per_job": 3,
    }
    data.update(overrides)
    return data


def test_create_expands_into_one_job_per_capable_agent_and_reports_the_rest(api):
    cpu_a = AgentFactory(name="cpu-a")
    cpu_b = AgentFactory(name="cpu-b")
    AgentFactory(name="blackbox-only", info=agent_info(runtimes=("openai",)))
    response = api.post("/api/v1/experiments/", payload(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert body["task"] == {
        "name": "wikipedia_summarization",
        "params": body["task"]["params"],
    }
    # Params are normalized with every default the agents will use.
    assert body["task"]["params"]["num_samples"] == 3 and body["task"]["params"]["max_new_tokens"] == 64
    jobs = Job.objects.filter(experiment_id=body["id"])
    assert {j.agent_id for j in jobs} == {cpu_a.pk, cpu_b.pk}
    assert all(j.status == JobStatus.PENDING and j.attempt == 0 for j in jobs)
    assert body["job_counts"] == {"pending": 2}
    assert body["plan"]["unrunnable"] == []
    assert StateTransition.objects.filter(job__experiment_id=body["id"], to_state="pending").count() == 2


def test_unrunnable_combination_is_reported_with_reason(api):
    AgentFactory(name="small", info=agent_info(runtimes=("transformers",)))
    response = api.post(
        "/api/v1/experiments/",
        payload(runtimes=[{"name": "transformers"}, {"name": "vllm", "params": {}}]),
        format="json",
    )
    assert response.status_code == 201
    unrunnable = response.json()["plan"]["unrunnable"]
    assert len(unrunnable) == 1
    assert unrunnable[0]["runtime"] == "vllm"
    assert "small: runtime 'vllm' is unavailable here" in unrunnable[0]["reason"]


def test_memory_requirement_reason_in_words(api):
    AgentFactory(name="tiny-gpu", info=agent_info(gpus=[("GeForce GT 710", 1)], models=("Org/Big-Model",)))
    from agents.matching import unmet_requirement
    from agents.models import Agent

    agent = Agent.objects.get(name="tiny-gpu")
    # 134M params x 2 bytes x 1.2 fits in 1 GiB; a 70B model would not.
    assert unmet_requirement(agent, {"name": "smollm2-135m-instruct"}, {"name": "transformers"}) is not None
    agent.capabilities["models"][0]["parameters"] = 70_000_000_000
    agent.save()
    reason = unmet_requirement(agent, {"name": "Org/Big-Model"}, {"name": "transformers"})
    assert reason == "needs 156.5 GiB of GPU memory; largest GPU has 1.0 GiB"


def test_no_agents_makes_a_failed_experiment_with_the_reason(api):
    response = api.post("/api/v1/experiments/", payload(), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "failed"
    assert body["plan"]["unrunnable"][0]["reason"] == "no agent matches the agent selection"


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ({"runs_per_job": 0}, ("runs_per_job",)),
        ({"runs_per_job": 101}, ("runs_per_job",)),
        ({"task": {"name": "translate_klingon"}}, ("task", "name")),
        (
            {"task": {"name": "wikipedia_summarization", "params": {"num_samples": -1}}},
            ("task", "params", "num_samples"),
        ),
        ({"task": {"name": "wikipedia_summarization", "params": {"sead": 1}}}, ("task", "params", "sead")),
        ({"runtimes": [{"name": "tensorflow-serving"}]}, ("runtimes", 0, "name")),
        ({"runtimes": [{"name": "openai", "params": {"base_url": "ftp://x"}}]}, ("runtimes", 0, "params", "base_url")),
        ({"models": [{"name": "not a model"}]}, ("models", 0, "name")),
        ({"models": []}, ("models",)),
        ({"agents": {"all": True, "labels": ["gpu"]}}, ("agents", "non_field_errors")),
        ({"agents": {"ids": ["00000000-0000-0000-0000-000000000000"]}}, ("agents", "ids")),
        ({"requested_metrics": ["happiness"]}, ("requested_metrics",)),
    ],
)
def test_bad_experiment_gets_400_naming_the_field(api, override, path):
    response = api.post("/api/v1/experiments/", payload(**override), format="json")
    assert response.status_code == 400
    node = response.json()
    for key in path:
        # DRF reports errors inside lists as {"<index>": {...}}.
        key = str(key) if isinstance(key, int) else key
        assert key in node, (path, response.json())
        node = node[key]
    assert node, response.json()
    from experiments.models import Experiment

    assert not Experiment.objects.exists()  # nothing half-written


def test_runs_per_job_message_is_clear(api):
    response = api.post("/api/v1/experiments/", payload(runs_per_job=500), format="json")
    assert response.json()["runs_per_job"] == ["runs_per_job must be between 1 and 100"]


def test_update_allows_rename_but_not_spec_changes(api):
    AgentFactory()
    exp = api.post("/api/v1/experiments/", payload(), format="json").json()
    ok = api.patch(f"/api/v1/experiments/{exp['id']}/", {"name": "renamed"}, format="json")
    assert ok.status_code == 200 and ok.json()["name"] == "renamed"
    bad = api.patch(f"/api/v1/experiments/{exp['id']}/", {"runs_per_job": 5}, format="json")
    assert bad.status_code == 400
    assert bad.json()["runs_per_job"] == ["cannot change after creation; create a new experiment"]


def test_cancel_then_delete(api):
    AgentFactory()
    exp = api.post("/api/v1/experiments/", payload(), format="json").json()
    job = Job.objects.get(experiment_id=exp["id"])
    job.status = JobStatus.RUNNING
    job.save()
    assert api.delete(f"/api/v1/experiments/{exp['id']}/").status_code == 409
    cancelled = api.post(f"/api/v1/experiments/{exp['id']}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.cancel_requested  # the agent must be told
    assert api.post(f"/api/v1/experiments/{exp['id']}/cancel/").status_code == 409
    assert api.delete(f"/api/v1/experiments/{exp['id']}/").status_code == 204
    assert not Job.objects.filter(pk=job.pk).exists()


def test_list_filters_search_and_pagination(api):
    AgentFactory()
    for i in range(3):
        api.post("/api/v1/experiments/", payload(name=f"exp {i}"), format="json")
    listing = api.get("/api/v1/experiments/?limit=2")
    body = listing.json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    assert api.get("/api/v1/experiments/?status=pending").json()["count"] == 3
    assert api.get("/api/v1/experiments/?status=completed,failed").json()["count"] == 0
    assert api.get("/api/v1/experiments/?search=exp 1").json()["count"] == 1
    names = [e["name"] for e in api.get("/api/v1/experiments/?ordering=name").json()["results"]]
    assert names == sorted(names)


def test_offline_agent_is_not_planned(api):
    AgentFactory(name="gone", status=AgentStatus.OFFLINE)
    body = api.post("/api/v1/experiments/", payload(), format="json").json()
    assert "gone: agent is offline" in body["plan"]["unrunnable"][0]["reason"]


def test_plan_dry_run_and_experiment_plan(api):
    AgentFactory(name="cpu-a")
    AgentFactory(name="bb", info=agent_info(runtimes=("openai",)))
    body = payload(runtimes=[{"name": "transformers"}, {"name": "vllm"}])
    plan = api.post("/api/v1/experiments/plan/", body, format="json")
    assert plan.status_code == 200
    data = plan.json()
    assert [(j["agent_name"], j["runtime"]["name"]) for j in data["jobs"]] == [("cpu-a", "transformers")]
    reasons = {u["runtime"]: u["reason"] for u in data["unrunnable"]}
    assert "runtime 'vllm' is unavailable here" in reasons["vllm"]
    from experiments.models import Experiment

    assert not Experiment.objects.exists()  # a dry run writes nothing
    assert api.post("/api/v1/experiments/plan/", payload(runs_per_job=0), format="json").status_code == 400
    exp = api.post("/api/v1/experiments/", body, format="json").json()
    own = api.get(f"/api/v1/experiments/{exp['id']}/plan/").json()
    assert [j["agent_name"] for j in own["jobs"]] == ["cpu-a"] and own["unrunnable"][0]["runtime"] == "vllm"
