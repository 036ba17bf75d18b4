import pytest
from fastapi.testclient import TestClient

from agent_runtime.api import create_app
from agent_runtime.server_client import load_registration
from agent_runtime.settings import Settings
from tests.helpers import wait_for

from .conftest import TOKEN, job_payload

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path, tiny_model_dir):
    # The tiny model lives outside the data directory: the operator allows its directory.
    settings = Settings(data_dir=tmp_path / "agent", token=TOKEN, heartbeat_interval_s=60,
                        allowed_paths=[tiny_model_dir.parent])
    with TestClient(create_app(settings)) as c:
        yield c


def _wait_done(client, job_id="job-1", timeout=60):
    def done():
        body = client.get(f"/api/v1/jobs/{job_id}", headers=AUTH).json()
        return body if body["result"] is not None else None

    return wait_for(done, timeout)


def test_health_is_public_everything_else_needs_the_token(client):
    assert client.get("/api/v1/health").json()["status"] == "ok"
    for method, path in [("get", "/api/v1/info"), ("get", "/api/v1/jobs"), ("post", "/api/v1/jobs")]:
        resp = getattr(client, method)(path)
        assert resp.status_code == 401, path
        assert resp.headers["www-authenticate"] == "Bearer"
    wrong = client.get("/api/v1/info", headers={"Authorization": "Bearer wrong-token-xx"})
    assert wrong.status_code == 401
    info = client.get("/api/v1/info", headers=AUTH).json()
    assert {r["name"] for r in info["runtimes"]} == {
        "transformers", "llama_cpp", "openai", "vllm", "llamacpp_server", "hardware",
    }
    # The API's description is served only in debug mode (tests/agent/test_hardening.py).
    assert client.get("/openapi.json", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"task": {"name": "wikipedia_summarization", "params": {"num_samples": 0}}}, "task.params.num_samples"),
        ({"task": {"name": "wikipedia_summarization", "params": {"bogus": 1}}}, "task.params.bogus"),
        ({"task": {"name": "nope"}}, "task.name"),
        ({"runs_per_job": 101}, "runs_per_job"),
        ({"runtime": {"name": "transformers", "params": {"device": "tpu"}}}, "runtime.params.device"),
        ({"runtime": {"name": "openai", "params": {}}}, "runtime.params.base_url"),
        (
            {"runtime": {"name": "openai", "params": {"base_url": "http://x/v1", "api_key_env": "RUCKUS_NOT_SET_X"}}},
            "runtime.params.api_key_env",
        ),
        ({"model": {"name": "no-such-model"}}, "model.name"),
        ({"job_id": "../etc"}, "job_id"),
        ({"attempt_token": "short"}, "attempt_token"),
    ],
)
def test_bad_input_is_422_naming_the_field(client, tiny_model_dir, change, field):
    resp = client.post("/api/v1/jobs", json=job_payload(tiny_model_dir, **change), headers=AUTH)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert field in body["errors"], body
    assert field in body["detail"]


def test_job_lifecycle(client, tiny_model_dir):
    resp = client.post("/api/v1/jobs", json=job_payload(tiny_model_dir), headers=AUTH)
    assert resp.status_code == 202, resp.text
    assert resp.json()["job_id"] == "job-1"
    body = _wait_done(client)
    assert body["status"] == "completed"
    result = body["result"]
    assert len(result["runs"]) == 2 and result["runs"][0]["cold_start"] is True
    assert "e2e_latency_s" in result["runs"][1]["metrics"] and result["statistics"] == {}
    assert result["runs"][1]["samples"][0]["reference"]
    listed = client.get("/api/v1/jobs", headers=AUTH).json()
    assert listed == [{"job_id": "job-1", "attempt": 1, "status": "completed", "runs_finished": 2, "runs_total": 2}]
    assert client.post("/api/v1/jobs/job-1/ack", headers=AUTH).status_code == 204
    assert client.get("/api/v1/jobs/job-1", headers=AUTH).status_code == 404
    assert client.post("/api/v1/jobs/job-1/ack", headers=AUTH).status_code == 404


def test_busy_then_cancel(client, tiny_model_dir):
    long_task = {"name": "wikipedia_summarization", "params": {"num_samples": 3, "max_new_tokens": 3000}}
    assert (
        client.post("/api/v1/jobs", json=job_payload(tiny_model_dir, task=long_task), headers=AUTH).status_code == 202
    )
    other = client.post("/api/v1/jobs", json=job_payload(tiny_model_dir, job_id="job-2"), headers=AUTH)
    assert other.status_code == 409 and "busy" in other.json()["detail"]
    # The API stays responsive while the job generates.
    assert client.get("/api/v1/health").json()["activity"] == "busy"
    assert client.post("/api/v1/jobs/job-1/ack", headers=AUTH).status_code == 409
    assert client.post("/api/v1/jobs/job-1/cancel", headers=AUTH).status_code == 202
    body = _wait_done(client, timeout=20)
    assert body["status"] == "cancelled"
    assert client.post("/api/v1/jobs/unknown/cancel", headers=AUTH).status_code == 404


def test_info_refresh_detects_again(client, tmp_path):
    assert client.post("/api/v1/info/refresh").status_code == 401
    before = client.get("/api/v1/info", headers=AUTH).json()
    resp = client.post("/api/v1/info/refresh", headers=AUTH)
    assert resp.status_code == 200
    after = resp.json()
    assert after["type"] == "agent.info" and after["detected_at"] > before["detected_at"]
    assert client.get("/api/v1/info", headers=AUTH).json()["detected_at"] >= after["detected_at"]


def test_register_persists_and_answers_full_info(client, tmp_path):
    body = {"agent_id": "agent-7", "server_url": "http://127.0.0.1:9/", "credential": "c" * 32}
    resp = client.post("/api/v1/register", json=body, headers=AUTH)
    assert resp.status_code == 200
    info = resp.json()
    assert info["agent_id"] == "agent-7" and info["runtimes"]
    assert info["type"] == "agent.info"
    reg = load_registration(tmp_path / "agent")
    assert reg.agent_id == "agent-7" and reg.server_url == "http://127.0.0.1:9"
    assert client.get("/api/v1/health").json()["registered"] is True
    short = client.post("/api/v1/register", json={**body, "credential": "short"}, headers=AUTH)
    assert short.status_code == 422 and "credential" in short.json()["errors"]
