"""Gray box end to end: daphne + scheduler + an agent that finds a real vLLM server on its host.

The agent is started with ``--endpoint vllm=URL``; the server plans a ``vllm`` job only for the model that vLLM
serves, the agent picks the server by itself (no ``base_url`` in the experiment), and the results carry the
client's figures, the inference server's own figures next to them, and per-request statistics.
"""

from __future__ import annotations

import httpx
import pytest

# The end-to-end tests' process stack and API client become fixtures of this module by being imported into it; the
# vLLM server comes from this package's conftest.
from tests.e2e.conftest import Stack, stack, user_api  # noqa: F401
from tests.engines.conftest import SERVED_NAME
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TASK = {"name": "wikipedia_summarization",
        "params": {"num_samples": 2, "seed": 3, "max_new_tokens": 24, "max_document_chars": 1200}}


def test_gray_box_experiment_on_an_agent_with_a_local_vllm(stack: Stack, user_api: httpx.Client, vllm):  # noqa: F811
    stack.start_server()
    stack.start_agent("agent-v", extra=["--endpoint", f"vllm={vllm.url}", "--no-probe-local-servers"])
    reg = user_api.post("/agents/", json={"url": stack.agent_url("agent-v"), "token": stack.agent_tokens["agent-v"]})
    assert reg.status_code == 201, reg.text
    agent = reg.json()
    [server] = agent["capabilities"]["local_servers"]
    assert server["available"] and server["models"] == [SERVED_NAME] and server["engine"] == "vllm", server
    vllm_cap = next(r for r in agent["capabilities"]["runtimes"] if r["name"] == "vllm")
    assert vllm_cap["available"] and vllm_cap["served_models"] == [SERVED_NAME]

    # A model the server does not serve is unrunnable, with the reason; the served one is planned.
    plan = user_api.post("/experiments/plan/", json={
        "name": "dry", "task": TASK, "models": [{"name": SERVED_NAME}, {"name": "smollm2-135m-instruct"}],
        "runtimes": [{"name": "vllm"}], "agents": {"all": True}, "runs_per_job": 3,
    }).json()
    assert [j["model"]["name"] for j in plan["jobs"]] == [SERVED_NAME], plan
    [unrunnable] = plan["unrunnable"]
    assert "no local vllm server on this agent serves model 'smollm2-135m-instruct'" in unrunnable["reason"]

    exp = user_api.post("/experiments/", json={
        "name": "gray", "task": TASK, "models": [{"name": SERVED_NAME}], "runtimes": [{"name": "vllm"}],
        "agents": {"all": True}, "runs_per_job": 3,
    })
    assert exp.status_code == 201, exp.text
    stack.start_scheduler()
    job = wait_for(
        lambda: (j := user_api.get("/jobs/", params={"experiment": exp.json()["id"]}).json()["results"][0])[
            "status"] in ("completed", "failed") and j,
        300, interval=0.5, what="the gray-box job to finish")
    assert job["status"] == "completed", f"{job}\n{stack.log('agent-v')}"
    # The result is stored at once and scored a moment later by the scheduler's scoring thread.
    results = wait_for(
        lambda: (r := user_api.get(f"/jobs/{job['id']}/results/").json())["scoring_status"] == "scored" and r, 60,
        interval=0.2, what="the result to be scored" + stack.log("scheduler")[-2000:])
    assert results["access_mode"] == "gray_box"
    stats = results["statistics"]
    # The client's figures and the inference server's own, side by side, over the two warm runs.
    for client, server_name in (("ttft_s", "server_ttft_s"), ("tpot_s", "server_tpot_s"),
                                ("e2e_latency_s", "server_e2e_latency_s")):
        assert stats[client]["n"] == 2 and stats[server_name]["n"] == 2
        c, s = stats[client]["mean"], stats[server_name]["mean"]
        assert abs(c - s) <= 0.05 * s, f"{client}: client {c} vs server {s}"
    assert stats["server_generation_tokens"]["mean"] == stats["output_tokens"]["mean"]
    # Per request: 2 warm runs x 2 samples.
    assert results["request_statistics"]["ttft_s"]["n"] == 4
