"""Fault tolerance with real processes: interrupted dispatches, a spooled result delivered after restarts,
and two schedulers sharing 200 jobs without dispatching any twice."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from tests.e2e.conftest import Stack
from tests.helpers import free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def register(stack: Stack, api: httpx.Client, name: str) -> dict:
    r = api.post("/agents/", json={"url": stack.agent_url(name), "token": stack.agent_tokens[name]})
    assert r.status_code == 201, r.text
    return r.json()


def create(api: httpx.Client, *, models: list[dict], runs: int, agents: dict, samples: int = 1,
           max_new_tokens: int = 4) -> dict:
    r = api.post("/experiments/", json={
        "name": "faults",
        "task": {"name": "wikipedia_summarization",
                 "params": {"num_samples": samples, "seed": 5, "max_new_tokens": max_new_tokens}},
        "models": models,
        "runtimes": [{"name": "transformers", "params": {"device": "cpu"}}],
        "agents": agents,
        "runs_per_job": runs,
    })
    assert r.status_code == 201, r.text
    return r.json()


def jobs_of(api: httpx.Client, exp_id: int) -> list[dict]:
    return api.get("/jobs/", params={"experiment": exp_id, "limit": 500}).json()["results"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.agent.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


def test_scheduler_killed_mid_dispatch_loses_nothing_and_runs_nothing_twice(
    stack: Stack, user_api: httpx.Client, tiny_model: Path
):
    from agents.client import AgentClient
    from experiments.models import Job
    from scheduling.dispatch import claim

    stack.env["RUCKUS_DISPATCH_STALE_S"] = "1"
    stack.start_server()
    for name in ("agent-a", "agent-b"):
        stack.start_agent(name)
        register(stack, user_api, name)
    exp = create(user_api, models=[{"name": "local/tiny-llama", "path": str(tiny_model)}], runs=2,
                 agents={"all": True})
    jobs = Job.objects.filter(experiment_id=exp["id"]).select_related("agent")
    job_a, job_b = sorted(jobs, key=lambda j: j.agent.name)
    # The state a scheduler leaves when it dies after claiming but before the agent got the job...
    assert claim(job_a.pk, timezone.now()) is not None
    # ...and when it dies after the agent accepted the job but before recording it.
    sent = claim(job_b.pk, timezone.now())
    AgentClient(sent.agent_url, sent.agent_token).submit_job(sent.request)
    stack.start_scheduler()
    def all_completed() -> list[dict] | None:
        js = jobs_of(user_api, exp["id"])
        return js if all(j["status"] == "completed" for j in js) else None

    done = wait_for(all_completed, 120, interval=0.2, what="both jobs to complete")
    by_agent = {j["agent_name"]: j for j in done}
    a = user_api.get(f"/jobs/{by_agent['agent-a']['id']}/").json()
    assert [x["status"] for x in a["attempts"]] == ["failed", "completed"]
    assert "dispatch interrupted" in a["attempts"][0]["outcome"]
    assert a["max_attempts"] == 4  # the interrupted dispatch did not use up an attempt
    b = user_api.get(f"/jobs/{by_agent['agent-b']['id']}/").json()
    assert [x["status"] for x in b["attempts"]] == ["completed"]  # the agent's run was kept, not repeated
    for job in (a, b):
        runs = user_api.get(f"/jobs/{job['id']}/results/?samples=false").json()["runs"]
        assert [r["run_index"] for r in runs] == [1, 2]


def test_spooled_result_is_delivered_after_server_and_agent_restart(stack: Stack, user_api: httpx.Client):
    # A long loss timeout: this test is about delivery, not loss detection.
    stack.env["RUCKUS_AGENT_LOST_AFTER_S"] = "600"
    stack.env["RUCKUS_PULL_AFTER_S"] = "600"
    stack.start_server()
    stack.start_scheduler()
    stack.start_agent("agent-a")
    register(stack, user_api, "agent-a")
    exp = create(user_api, models=[{"name": "smollm2-135m-instruct"}], runs=2, agents={"all": True}, samples=2,
                 max_new_tokens=24)
    job = wait_for(lambda: (j := jobs_of(user_api, exp["id"])[0])["status"] == "running" and j, 60, interval=0.2,
                   what="dispatch")
    # The server goes away while the agent works; the agent finishes and keeps the result in its spool.
    stack.kill("scheduler", signal.SIGTERM)
    assert stack.procs["scheduler"].returncode == 0 and "scheduler_stopped" in stack.log("scheduler")
    stack.kill("server")
    agent_api = httpx.Client(base_url=f"{stack.agent_url('agent-a')}/api/v1",
                             headers={"Authorization": f"Bearer {stack.agent_tokens['agent-a']}"})
    wait_for(lambda: agent_api.get(f"/jobs/{job['id']}").json()["status"] == "completed", 180,
               interval=0.2, what="the agent to finish the job")
    # Then the agent dies too, with the result still unacknowledged.
    stack.kill("agent-a")
    stack.start_server()
    stack.start_scheduler()
    stack.start_agent("agent-a")
    final = wait_for(
        lambda: (j := jobs_of(user_api, exp["id"])[0])["status"] in ("completed", "failed") and j, 120,
        interval=0.2, what="the spooled result to be delivered" + stack.log("agent-a")[-2000:])
    assert final["status"] == "completed" and final["attempt"] == 1
    runs = user_api.get(f"/jobs/{final['id']}/results/?samples=false").json()["runs"]
    assert [r["run_index"] for r in runs] == [1, 2]
    # Acknowledged: the agent cleaned its spool.
    wait_for(lambda: agent_api.get(f"/jobs/{job['id']}").status_code == 404, 30, interval=0.2,
             what="the agent to drop the result")


def test_two_schedulers_dispatch_200_jobs_exactly_once(stack: Stack, user_api: httpx.Client, tiny_model: Path):
    from django.db.models import Count

    from experiments.models import JobAttempt

    stack.start_server()
    names = [f"agent-{i}" for i in range(4)]
    for name in names:
        stack.start_agent(name)
        register(stack, user_api, name)
    model = {"name": "local/tiny-llama", "path": str(tiny_model)}
    exp = create(user_api, models=[model] * 50, runs=1, agents={"all": True}, max_new_tokens=1)
    assert exp["plan"]["job_count"] == 200
    stack.start_scheduler("scheduler-1")
    stack.start_scheduler("scheduler-2")
    wait_for(
        lambda: user_api.get(f"/experiments/{exp['id']}/").json()["status"] in ("completed", "partially_failed",
                                                                              "failed"),
        600, interval=0.2, what="all 200 jobs to finish" + stack.log("scheduler-1")[-1500:])
    jobs = jobs_of(user_api, exp["id"])
    assert len(jobs) == 200 and all(j["status"] == "completed" for j in jobs)
    attempts = JobAttempt.objects.filter(job__experiment_id=exp["id"])
    per_job = attempts.values("job_id").annotate(n=Count("id"))
    assert {row["n"] for row in per_job} == {1}, "a job was dispatched more than once"
    assert attempts.count() == 200
    # Both schedulers took part (otherwise the test proves nothing about concurrency).
    for name in ("scheduler-1", "scheduler-2"):
        assert "scheduler_dispatched" in stack.log(name), stack.log(name)[-500:]


def test_agent_self_announces_with_the_registration_key(stack: Stack, user_api: httpx.Client):
    stack.start_server()
    port = free_port()
    stack.start_agent("announcer", port=port, extra=[
        "--server", stack.base, "--registration-key", "join-key-for-tests", "--public-url", f"http://127.0.0.1:{port}",
    ])
    agent = wait_for(
        lambda: next((a for a in user_api.get("/agents/").json()["results"] if a["name"] == "announcer"), None), 60,
        interval=0.2, what="the agent to announce itself" + stack.log("announcer")[-1500:])
    assert agent["status"] == "online" and agent["url"] == f"http://127.0.0.1:{port}"
    # It then heartbeats with the credential it received through /register.
    wait_for(lambda: user_api.get(f"/agents/{agent['id']}/").json()["last_seen"] != agent["last_seen"], 15,
               interval=0.2, what="a heartbeat from the announced agent")
