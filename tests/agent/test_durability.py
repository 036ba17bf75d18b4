import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_for

from .conftest import TOKEN, job_payload

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _start_agent(data_dir: Path, port: int, models: Path) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "ruckus-agent"
    cmd = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), "--token", TOKEN,
           "--allow-path", str(models)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"agent exited with {proc.returncode}")
        try:
            return httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 60, 0.2)
    return proc


def _stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        proc.wait(30)


@pytest.mark.slow
def test_kill_9_mid_job_then_restart(tmp_path, tiny_model_dir):
    data_dir = tmp_path / "agent"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start_agent(data_dir, port, tiny_model_dir.parent)
    try:
        task = {"name": "wikipedia_summarization", "params": {"num_samples": 1, "max_new_tokens": 200}}
        resp = httpx.post(
            f"{url}/api/v1/jobs", json=job_payload(tiny_model_dir, task=task, runs_per_job=100), headers=AUTH
        )
        assert resp.status_code == 202, resp.text
        wait_for(lambda: httpx.get(f"{url}/api/v1/jobs/job-1", headers=AUTH).json()["runs_finished"] >= 2, 60)
        _stop(proc, signal.SIGKILL)
    finally:
        _stop(proc, signal.SIGKILL)
    runs_on_disk = len(list((data_dir / "spool" / "job-1").glob("run-*.json")))
    assert runs_on_disk >= 2

    proc = _start_agent(data_dir, port, tiny_model_dir.parent)
    try:
        body = httpx.get(f"{url}/api/v1/jobs/job-1", headers=AUTH).json()
        assert body["status"] == "interrupted"
        result = body["result"]
        assert result["status"] == "interrupted" and "finished run(s) kept" in result["error"]
        assert len(result["runs"]) == runs_on_disk and result["runs"][0]["cold_start"] is True
        assert all("run_wall_s" in run["metrics"] for run in result["runs"])
        assert result["statistics"] == {}  # raw runs only: the server computes statistics

        # A new, short job completes; its result stays unacknowledged across a restart.
        assert httpx.post(f"{url}/api/v1/jobs/job-1/ack", headers=AUTH).status_code == 204
        short = job_payload(tiny_model_dir, job_id="job-2", runs_per_job=1)
        assert httpx.post(f"{url}/api/v1/jobs", json=short, headers=AUTH).status_code == 202
        wait_for(lambda: httpx.get(f"{url}/api/v1/jobs/job-2", headers=AUTH).json()["status"] == "completed", 60)
    finally:
        _stop(proc)
    proc = _start_agent(data_dir, port, tiny_model_dir.parent)
    try:
        body = httpx.get(f"{url}/api/v1/jobs/job-2", headers=AUTH).json()
        assert body["status"] == "completed" and len(body["result"]["runs"]) == 1
        assert httpx.get(f"{url}/api/v1/jobs/job-1", headers=AUTH).status_code == 404
        assert httpx.post(f"{url}/api/v1/jobs/job-2/ack", headers=AUTH).status_code == 204
        assert httpx.get(f"{url}/api/v1/jobs/job-2", headers=AUTH).status_code == 404
        assert not (data_dir / "spool" / "job-2").exists()
    finally:
        _stop(proc)
