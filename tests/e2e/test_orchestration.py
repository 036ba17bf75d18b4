"""End to end with real processes: daphne + scheduler + agents on loopback, the packaged SmolLM2, Postgres."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import Stack
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TASK = {"name": "wikipedia_summarization", "params": {"num_samples": 2, "seed": 3, "max_new_tokens": 12}}


def experiment(api: httpx.Client, runs: int = 3, **extra: object) -> dict:
    body = {
        "name": "e2e",
        "task": TASK,
        "models": [{"name": "smollm2-135m-instruct"}],
        "runtimes": [{"name": "transformers", "params": {"device": "cpu"}}],
        "agents": {"all": True},
        "runs_per_job": runs,
        **extra,
    }
    response = api.post("/experiments/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def job_of(api: httpx.Client, exp_id: int) -> dict:
    return api.get("/jobs/", params={"experiment": exp_id}).json()["results"][0]


def test_register_run_and_collect_results(stack: Stack, user_api: httpx.Client):
    stack.start_server()
    stack.start_agent("agent-a")
    # The URL guard refuses metadata and link-local addresses with the reason.
    for url in ("http://169.254.169.254/", "http://[fe80::1]/"):
        refused = user_api.post("/agents/", json={"url": url, "token": "x"})
        assert refused.status_code == 400 and "link-local" in refused.json()["url"][0]
    reg = user_api.post("/agents/", json={"url": stack.agent_url("agent-a"), "token": stack.agent_tokens["agent-a"]})
    assert reg.status_code == 201, reg.text
    agent = reg.json()
    assert agent["status"] == "online" and "transformers" in agent["summary"]["runtimes"]
    assert "smollm2-135m-instruct" in agent["summary"]["models"]
    # Heartbeats keep it online.
    wait_for(lambda: user_api.get(f"/agents/{agent['id']}/").json()["last_seen"] != agent["last_seen"], 10,
               interval=0.2, what="a heartbeat")

    plan = user_api.post("/experiments/plan/", json={
        "name": "dry", "task": TASK, "models": [{"name": "smollm2-135m-instruct"}],
        "runtimes": [{"name": "transformers"}, {"name": "vllm"}], "agents": {"all": True}, "runs_per_job": 3,
    }).json()
    # No vLLM server runs on the agent's host: vllm is not planned, and the plan says why.
    assert len(plan["jobs"]) == 1
    [unrunnable] = plan["unrunnable"]
    assert unrunnable["runtime"] == "vllm" and "no vLLM server" in json.dumps(unrunnable), unrunnable
    exp = experiment(user_api)
    assert exp["plan"]["job_count"] == 1
    job_id = job_of(user_api, exp["id"])["id"]
    if stack.redis_url is None:
        pytest.skip("websocket events from the scheduler process need Redis (none on 127.0.0.1:6379)")
    # A websocket client (token auth) watches the job from before it is dispatched.
    token = user_api.headers["Authorization"].split()[1]
    ws = connect(f"ws://127.0.0.1:{stack.port}/ws/events/?token={token}")
    ws.send(json.dumps({"type": "subscribe", "job": job_id}))
    assert json.loads(ws.recv(timeout=10)) == {"type": "subscribed", "job": job_id}
    seen: list[str] = []
    stack.start_scheduler()
    while not seen or seen[-1] not in ("completed", "failed"):
        try:
            event = json.loads(ws.recv(timeout=240))
        except Exception as exc:  # the server's log says why the socket ended
            pytest.fail(f"websocket ended after {seen}: {exc!r}\n--- server log ---\n{stack.log('server')}")
        assert event["type"] == "job.updated" and event["data"]["id"] == job_id
        if not seen or seen[-1] != event["data"]["status"]:
            seen.append(event["data"]["status"])
    ws.close()
    assert seen == ["pending", "assigned", "running", "completed"]
    job = wait_for(
        lambda: (j := job_of(user_api, exp["id"]))["status"] in ("completed", "failed") and j, 240,
        interval=0.2, what="the job to finish" + stack.log("agent-a"))
    assert job["status"] == "completed", job
    detail = user_api.get(f"/jobs/{job['id']}/").json()
    states = [t["to_state"] for t in detail["transitions"] if t["attempt"] is None]
    assert states == ["pending", "assigned", "running", "completed"]
    # The result is stored at once and scored a moment later by the scheduler's scoring thread.
    results = wait_for(
        lambda: (r := user_api.get(f"/jobs/{job['id']}/results/").json())["scoring_status"] == "scored" and r, 60,
        interval=0.2, what="the result to be scored" + stack.log("scheduler")[-2000:])
    assert [r["cold_start"] for r in results["runs"]] == [True, False, False]
    stats = results["statistics"]
    assert stats["e2e_latency_s"]["n"] == 2 and stats["rougeL"]["n"] == 2
    assert 0 < stats["ttft_s"]["mean"] < stats["e2e_latency_s"]["mean"]
    assert results["cold_start"]["model_load_s"] > 0
    assert all(s["output"] for r in results["runs"] for s in r["samples"])
    final = user_api.get(f"/experiments/{exp['id']}/").json()
    assert final["status"] == "completed"


def test_agent_killed_mid_job_is_retried_on_same_hardware(stack: Stack, user_api: httpx.Client):
    stack.start_server()
    stack.start_scheduler()
    for name in ("agent-a", "agent-b"):
        stack.start_agent(name)
        r = user_api.post("/agents/", json={"url": stack.agent_url(name), "token": stack.agent_tokens[name]})
        assert r.status_code == 201, r.text
    agents = {a["name"]: a for a in user_api.get("/agents/").json()["results"]}
    assert agents["agent-a"]["hardware_fingerprint"] == agents["agent-b"]["hardware_fingerprint"]
    # Only agent-a is selected, so the job's hardware is agent-a's; agent-b has the same fingerprint.
    exp = experiment(user_api, runs=4, agents={"ids": [agents["agent-a"]["id"]]})
    job = wait_for(
        lambda: (j := job_of(user_api, exp["id"]))["status"] == "running" and (j.get("progress") or {}).get(
            "run_index", 0) >= 2 and j,
        240, interval=0.2, what="the job to be running its second run")
    victim = job["agent_name"]
    survivor = "agent-b" if victim == "agent-a" else "agent-a"
    from agent_runtime.server_client import load_registration

    registration = load_registration(stack.tmp / victim)
    stack.kill(victim)
    done = wait_for(
        lambda: (j := job_of(user_api, exp["id"]))["status"] in ("completed", "failed") and j, 240,
        interval=0.2, what="the retried job to finish" + stack.log("scheduler")[-1500:])
    assert done["status"] == "completed", done
    assert done["attempt"] == 2 and done["agent_name"] == survivor
    detail = user_api.get(f"/jobs/{done['id']}/").json()
    assert [a["status"] for a in detail["attempts"]] == ["lost", "completed"]
    assert any("lost" in t["reason"] for t in detail["transitions"])
    results = user_api.get(f"/jobs/{done['id']}/results/?samples=false").json()
    assert [r["run_index"] for r in results["runs"]] == [1, 2, 3, 4]  # stored once
    # A late result from the dead attempt: 409, nothing changes.
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT attempt_token FROM experiments_jobattempt WHERE job_id = %s AND number = 1", [done["id"]]
        )
        old_token = cur.fetchone()[0]
    late = httpx.post(
        f"{stack.base}/api/v1/jobs/{done['id']}/result/",
        headers={"Authorization": f"Bearer {registration.credential.get_secret_value()}"},
        json={"job_id": str(done["id"]), "attempt": 1, "attempt_token": old_token, "status": "completed",
              "runs_per_job": 4, "runs": []},
    )
    assert late.status_code == 409, late.text
    again = user_api.get(f"/jobs/{done['id']}/results/?samples=false").json()
    assert len(again["runs"]) == 4
