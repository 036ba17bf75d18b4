"""A load sweep through the web UI in headless Chromium against a real server, scheduler and agent.

The agent sweeps a stand-in OpenAI-compatible endpoint (known TTFT and inter-token latency) at three concurrency
levels; the browser creates the experiment with the form's load section, watches it run live and reads the
experiment page's comparison table, curves and distributions. Like the other browser tests it needs the built UI,
Chromium and ``playwright-core`` and skips, naming what is missing, unless ``RUCKUS_REQUIRE_UI=1``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.agent.standin_endpoint import StandinEndpoint
from tests.e2e.conftest import REPO, Stack
from tests.ui.test_browser import FRONTEND, PASSWORD, REQUIRED, USERNAME, _missing

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.skipif(not REQUIRED and _missing() is not None, reason=_missing() or "")
def test_ui_load_sweep(stack: Stack, user_api: Any) -> None:
    """Create a concurrency sweep in the form (a wrong level named next to its field first), watch it complete
    live, and find its figures in the table, its curves drawn and a point's TTFT histogram of its 12 requests; a
    request-rate sweep's page names its rates, "inf" included."""
    missing = _missing()
    assert missing is None, f"RUCKUS_REQUIRE_UI=1 but {missing}"
    artifacts = Path(os.environ.get("ARTIFACTS_DIR", REPO / "test-artifacts" / "ui"))
    with StandinEndpoint(ttft_s=0.03, itl_s=0.004, eos_step_s=0.002) as endpoint:
        stack.start_server()
        stack.start_scheduler()
        stack.start_agent("load-agent", extra=["--allow-endpoint", endpoint.base_url])
        reg = user_api.post("/agents/", json={"url": stack.agent_url("load-agent"),
                                              "token": stack.agent_tokens["load-agent"], "cost_per_hour": "2.0"})
        assert reg.status_code == 201, reg.text
        # An open-loop sweep made through the API, for the page to show its rates (one of them "inf").
        rate = user_api.post("/experiments/", json={
            "name": "Rate sweep", "task": {"name": "wikipedia_summarization"},
            "models": [{"name": "smollm2-135m-instruct"}],
            "runtimes": [{"name": "openai", "params": {"base_url": endpoint.base_url, "served_model": "served-model"}}],
            "agents": {"all": True},
            "load": {"request_rate": [20, "inf"], "num_requests": 10,
                     "prompts": {"source": "synthetic", "input_tokens": 16, "output_tokens": 8}},
        })
        assert rate.status_code == 201, rate.text
        env = {
            **os.environ,
            "BASE_URL": stack.base,
            "USERNAME": USERNAME,
            "PASSWORD": PASSWORD,
            "ENDPOINT_URL": endpoint.base_url,
            "RATE_EXPERIMENT": str(rate.json()["id"]),
            "ARTIFACTS_DIR": str(artifacts),
        }
        proc = subprocess.run(
            ["node", str(FRONTEND / "e2e" / "load.mjs")], cwd=REPO, env=env, capture_output=True, text=True,
            timeout=420, check=False,
        )
    output = proc.stdout + proc.stderr
    (artifacts / "load.log").write_text(output)
    assert proc.returncode == 0, (
        f"browser load sweep failed (screenshots in {artifacts}):\n{output[-6000:]}\n"
        f"--- server log ---\n{stack.log('server')}\n--- scheduler log ---\n{stack.log('scheduler')}\n"
        f"--- agent log ---\n{stack.log('load-agent')}"
    )
    # What the page showed is what the API says: three points of 12 requests each, all served.
    experiment = user_api.get("/experiments/", params={"ordering": "-created_at"}).json()["results"][0]
    assert experiment["name"] == "Load sweep in the browser"
    sweep = user_api.get(f"/experiments/{experiment['id']}/load/").json()
    assert sweep["mode"] == "concurrency" and sweep["slo"]["ttft_ms"] == 2000
    (cell,) = sweep["cells"]
    assert [p["concurrency"] for p in cell["points"]] == [1, 2, 4]
    assert all(p["completed"] == 12 and p["failed"] == 0 for p in cell["points"])
    assert cell["max_goodput"] is not None and cell["cost_per_hour"] == "2.0000"
