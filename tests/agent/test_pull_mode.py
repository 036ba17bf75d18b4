"""The agent's side of addressing and pull mode, against a fake server on loopback.

- ``/register`` with a challenge: the agent calls the server back at the address it was given and refuses the
  registration (502, naming the address and the error) when it cannot;
- ``GET /api/v1/status`` tells how the agent's calls to its server are going;
- pull mode: announce with a description and no URL, then long-poll for work, run a job handed over in a work
  answer, report a refused job with the next request, stop a job named in ``cancel_job_ids``.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from typer.testing import CliRunner

from agent_runtime.api import create_app
from agent_runtime.cli import app as cli_app
from agent_runtime.server_client import Registration, load_registration, save_registration
from agent_runtime.settings import Settings
from tests.helpers import free_port, wait_for

from .conftest import TOKEN, job_payload
from .servers import FakeServer, UvicornThread

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _settings(tmp_path, **kw) -> Settings:
    return Settings(data_dir=tmp_path / "agent", token=TOKEN, heartbeat_interval_s=0.2, name="pull-agent", **kw)


def test_register_reaches_the_server_back_first(tmp_path):
    fake = FakeServer()
    with UvicornThread(fake.app) as server, UvicornThread(create_app(_settings(tmp_path))) as agent, \
            httpx.Client(base_url=agent.url, headers=AUTH) as c:
        dead = f"http://127.0.0.1:{free_port()}"
        body = {"agent_id": "agent-1", "server_url": dead, "credential": "c" * 32, "challenge": "challenge-ok"}
        refused = c.post("/api/v1/register", json=body)
        assert refused.status_code == 502
        detail = refused.json()
        assert detail["server_url"] == dead and "ConnectError" in detail["reach_error"]
        assert dead in detail["detail"]
        assert load_registration(tmp_path / "agent") is None  # nothing was changed
        # A server that does not recognise the challenge is refused too (it may be another service).
        wrong = c.post("/api/v1/register", json={**body, "server_url": server.url, "challenge": "forged"})
        assert wrong.status_code == 502 and "403" in wrong.json()["reach_error"]
        ok = c.post("/api/v1/register", json={**body, "server_url": server.url})
        assert ok.status_code == 200 and ok.json()["agent_id"] == "agent-1"
        assert load_registration(tmp_path / "agent").server_url == server.url
        assert fake.of("reach")[-1] == {"type": "agent.reach", "challenge": "challenge-ok"}


def test_status_reports_failing_calls_to_the_server(tmp_path):
    with UvicornThread(create_app(_settings(tmp_path))) as agent, \
            httpx.Client(base_url=agent.url, headers=AUTH) as c:
        assert c.get("/api/v1/status", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
        dead = f"http://127.0.0.1:{free_port()}"
        # A registration from an older server (no challenge): accepted, and the heartbeats then fail.
        reg = {"agent_id": "agent-1", "server_url": dead, "credential": "c" * 32}
        assert c.post("/api/v1/register", json=reg).status_code == 200
        report = wait_for(lambda: (r := c.get("/api/v1/status").json())["contact"]["failing_since"] and r, 20,
                          what="a failed heartbeat")
        assert report["agent_id"] == "agent-1" and report["mode"] == "push" and report["activity"] == "idle"
        contact = report["contact"]
        assert contact["server_url"] == dead and "ConnectError" in contact["last_error"]
        assert contact["consecutive_failures"] >= 1 and contact["last_success_at"] is None


def test_pull_agent_announces_polls_runs_and_is_cancelled(tmp_path, tiny_model_dir):
    fake = FakeServer()
    with UvicornThread(fake.app) as server:
        settings = _settings(tmp_path, server=server.url, registration_key="join-key-1", pull=True,
                             allowed_paths=[tiny_model_dir.parent])
        with UvicornThread(create_app(settings)):
            wait_for(lambda: fake.of("work"), 60, what="the first work request")
            [announce] = fake.of("announce")[:1]
            assert announce["mode"] == "pull" and announce["url"] is None and announce["token"] is None
            assert announce["info"]["runtimes"]
            # The agent keeps the address it announced to, not what the answer says.
            assert load_registration(tmp_path / "agent").server_url == server.url
            assert {auth for name, auth, _ in fake.calls if name == "work"} == {f"Bearer {fake.credential}"}
            # A job it cannot run is refused, and the refusal comes with its next request.
            bad = job_payload(tiny_model_dir, job_id="job-bad", attempt_token="attempt-token-bad",
                              runtime={"name": "no-such-runtime", "params": {}})
            fake.work_answers.append({"status": "online", "job": bad, "cancel_job_ids": []})
            refusal = wait_for(lambda: next((w["rejected"] for w in fake.of("work") if w["rejected"]), None), 30,
                               what="the refusal")
            assert refusal[0]["job_id"] == "job-bad" and "runtime.name" in refusal[0]["reason"]
            assert refusal[0]["busy"] is False
            # A job it can run: it runs, the next requests say so, and the result is posted.
            fake.work_answers.append({"status": "online", "job": job_payload(tiny_model_dir), "cancel_job_ids": []})
            wait_for(lambda: fake.of("result"), 120, what="the result")
            assert fake.of("result")[-1]["status"] == "completed"
            assert any(w["running_job_id"] == "job-1" and w["attempt_token"] == "attempt-token-1"
                       for w in fake.of("work"))
            # A long job named in cancel_job_ids is stopped.
            long_job = job_payload(tiny_model_dir, job_id="job-2", attempt_token="attempt-token-2", runs_per_job=50)
            fake.work_answers.append({"status": "online", "job": long_job, "cancel_job_ids": []})
            wait_for(lambda: any(w["running_job_id"] == "job-2" for w in fake.of("work")), 60, what="job-2 running")
            fake.work_answers.append({"status": "online", "job": None, "cancel_job_ids": ["job-2"]})
            cancelled = wait_for(lambda: next((r for r in fake.of("result") if r["job_id"] == "job-2"), None), 60,
                                 what="job-2's cancelled result")
            assert cancelled["status"] == "cancelled"


def test_pull_mode_refuses_a_network_facing_api(tmp_path):
    result = CliRunner().invoke(cli_app, ["serve", "--pull", "--host", "0.0.0.0", "--server", "http://127.0.0.1:1",
                                          "--registration-key", "k", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "loopback" in result.output
    result = CliRunner().invoke(cli_app, ["serve", "--pull", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--pull needs --server" in result.output


def test_pull_loop_asks_again_as_soon_as_the_server_is_back(tmp_path):
    """After failed work requests the loop backs off (up to a minute); a heartbeat getting through ends the wait."""
    state = {"up": False, "work_at": [], "failed_work_at": []}

    async def handler(request: httpx.Request) -> httpx.Response:
        if not state["up"]:
            if request.url.path.endswith("/work/"):
                state["failed_work_at"].append(time.monotonic())
            raise httpx.ConnectError("server down", request=request)
        if request.url.path.endswith("/work/"):
            state["work_at"].append(time.monotonic())
            await asyncio.sleep(0.05)
            return httpx.Response(200, json={"status": "online", "job": None, "cancel_job_ids": []})
        return httpx.Response(200, json={"status": "online", "refresh_capabilities": False})

    save_registration(tmp_path / "agent", Registration(agent_id="agent-1", server_url="http://server.invalid",
                                                       credential="c" * 32))
    settings = _settings(tmp_path, server="http://server.invalid", registration_key="k" * 8, pull=True)
    with UvicornThread(create_app(settings, transport=httpx.MockTransport(handler))) as agent, \
            httpx.Client(base_url=agent.url, headers=AUTH) as c:
        assert c.get("/api/v1/health").status_code == 200
        # Down for three failed work requests: the loop's next wait is at least 4 s.
        wait_for(lambda: len(state["failed_work_at"]) >= 3, 30, what="three failed work requests")
        time.sleep(0.5)
        back = time.monotonic()
        state["up"] = True
        wait_for(lambda: state["work_at"], 10, what="a work request")
        assert state["work_at"][0] - back < 2.0, "the pull loop slept out its backoff after the server came back"
