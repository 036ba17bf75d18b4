"""The ``ruckus`` CLI against a live server, scheduler and agent (real processes on loopback)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import BIN, REPO, Stack
from tests.helpers import free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def ruckus(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ruckus"), *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli_env(stack: Stack, tmp_path: Path, transactional_db) -> dict[str, str]:
    from django.contrib.auth import get_user_model

    from tests.factories import set_role

    set_role(get_user_model().objects.create_user("cli-user", password="cli-password-123"), "fleet-admin")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUCKUS_")}
    env.update({"RUCKUS_CONFIG": str(tmp_path / "config.toml"), "COLUMNS": "200"})
    return env


def test_cli_end_to_end(stack: Stack, cli_env: dict[str, str], tmp_path: Path):
    stack.start_server()
    stack.start_scheduler()
    stack.start_agent("cli-agent")
    env = cli_env

    # Not logged in: exit 4 with a hint; unreachable server: exit 3.
    r = ruckus("agents", "list", "--server", stack.base, env=env)
    assert r.returncode == 4 and "ruckus login" in r.stderr
    r = ruckus("agents", "list", "--server", f"http://127.0.0.1:{free_port()}", "--token", "x", env=env)
    assert r.returncode == 3 and "cannot reach" in r.stderr

    r = ruckus("login", "--server", stack.base, "--username", "cli-user", "--password", "wrong", env=env)
    assert r.returncode == 1 and "wrong username or password" in r.stderr
    r = ruckus("login", "--server", stack.base, "--username", "cli-user", "--password", "cli-password-123", env=env)
    assert r.returncode == 0, r.stderr
    assert "as cli-user (fleet-admin)" in r.stdout and "Token expires: " in r.stdout
    config = Path(env["RUCKUS_CONFIG"])
    assert stat.S_IMODE(config.stat().st_mode) == 0o600 and stack.base in config.read_text()

    health = json.loads(ruckus("health", "--json", env=env).stdout)
    assert health["server"] == "ok" and health["ready"] == "ok" and health["database"] == "postgresql"
    assert health["channel_layer"].startswith("ok")

    r = ruckus("agents", "register", stack.agent_url("cli-agent"), "--agent-token", stack.agent_tokens["cli-agent"],
               "--label", "lab", "--cost-per-hour", "1.5", "--json", env=env)
    assert r.returncode == 0, r.stderr
    agent = json.loads(r.stdout)
    assert agent["labels"] == ["lab"] and agent["cost_per_hour"] == "1.5000"
    listed = json.loads(ruckus("agents", "list", "--json", env=env).stdout)
    assert [a["id"] for a in listed] == [agent["id"]] and listed[0]["status"] == "online"
    shown = json.loads(ruckus("agents", "show", agent["id"], "--json", env=env).stdout)
    assert shown["capabilities"]["cpu"]["model"]
    assert shown["mode"] == "push" and shown["heartbeat_error"] == "" and shown["url"] == stack.agent_url("cli-agent")
    shown_text = ruckus("agents", "show", agent["id"], env=env).stdout
    assert "runtime transformers" in shown_text and "heartbeat error" not in shown_text
    assert "push" in ruckus("agents", "list", env=env).stdout

    plan = json.loads(ruckus("experiments", "plan", "-f", str(REPO / "examples/hardware-comparison.yaml"), "--json",
                             env=env).stdout)
    assert len(plan["jobs"]) == 1 and plan["jobs"][0]["agent_name"] == "cli-agent", (
        plan, ruckus("agents", "show", agent["id"], env=env).stdout)

    # A bad file: every problem is reported with its line and field, exit code 2.
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\n"
        "task:\n"
        "  name: wikipedia_summarization\n"
        "  params:\n"
        "    num_samples: -1\n"
        "models:\n"
        "  - name: smollm2-135m-instruct\n"
        "runtimes:\n"
        "  - name: transformers\n"
        "agents: {all: true}\n"
        "runs_per_job: 0\n"
    )
    r = ruckus("experiments", "create", "-f", str(bad), env=env)
    assert r.returncode == 2
    assert f"{bad}:5: task.params.num_samples:" in r.stderr
    assert f"{bad}:11: runs_per_job: runs_per_job must be between 1 and 100" in r.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntask: [unclosed\n")
    r = ruckus("experiments", "plan", "-f", str(broken), env=env)
    assert r.returncode == 2 and f"{broken}:" in r.stderr and "not valid YAML" in r.stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: x\nrun_per_job: 3\n")
    r = ruckus("experiments", "plan", "-f", str(typo), env=env)
    assert r.returncode == 2 and f"{typo}:2: unknown field 'run_per_job'" in r.stderr

    small = tmp_path / "small.yaml"
    small.write_text(
        (REPO / "examples/cpu-smoke.yaml").read_text().replace("num_samples: 3", "num_samples: 2")
        .replace("max_new_tokens: 48", "max_new_tokens: 8").replace("runs_per_job: 3", "runs_per_job: 2")
    )
    created = json.loads(ruckus("experiments", "create", "-f", str(small), "--json", env=env).stdout)
    exp_id = str(created["id"])
    r = ruckus("experiments", "watch", exp_id, env=env)
    assert r.returncode == 0 and "finished: completed" in r.stdout, r.stdout + r.stderr
    listed = json.loads(ruckus("experiments", "list", "--json", env=env).stdout)
    assert listed[0]["id"] == created["id"] and listed[0]["status"] == "completed"
    shown = json.loads(ruckus("experiments", "show", exp_id, "--json", env=env).stdout)
    assert shown["jobs"][0]["status"] == "completed"

    results = json.loads(ruckus("results", "show", exp_id, "--format", "json", env=env).stdout)
    stats = results["jobs"][0]["statistics"]
    assert stats["e2e_latency_s"]["n"] == 1 and "rougeL" in stats
    csv_text = ruckus("results", "show", exp_id, "--format", "csv", "--metric", "ttft_s", env=env).stdout
    assert csv_text.splitlines()[0].startswith("job,model,runtime,agent,status,ttft_s_mean,ttft_s_std,ttft_s_n")
    table = ruckus("results", "show", exp_id, env=env).stdout
    assert "cli-agent" in table and "±" in table
    out = tmp_path / "runs.csv"
    r = ruckus("results", "export", exp_id, "-o", str(out), env=env)
    assert r.returncode == 0 and len(out.read_text().splitlines()) == 3  # header + 2 runs
    assert not out.with_name("runs.csv.part").exists()

    # Measure the agent's peaks; the LLM job above is then shown as a fraction of them.
    r = ruckus("agents", "benchmark", agent["id"], "--runs", "2", "--json", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    bench = json.loads(r.stdout)
    assert bench["status"] == "completed"
    copy = bench["peaks"]["figures"]["bandwidth_gbps.cpu.copy"]
    assert copy["unit"] == "GB/s" and 0.1 < copy["value"] < 10_000
    assert "gflops.cpu.fp32" in bench["peaks"]["figures"]
    assert "bandwidth_gbps.cpu.copy" in ruckus("agents", "show", agent["id"], env=env).stdout
    bench_table = ruckus("results", "show", str(bench["experiment"]), env=env).stdout
    assert "bandwidth_gbps.cpu.copy (GB/s)" in bench_table
    eff = json.loads(ruckus("results", "show", exp_id, "--format", "json", env=env).stdout)["jobs"][0]["efficiency"]
    assert eff["device"] == "cpu" and eff["weight_bytes"] > 100e6
    assert eff["peak_bandwidth_gbps"] == pytest.approx(copy["value"])
    assert 0 < eff["bandwidth_fraction"] < 5, eff

    jobs = json.loads(ruckus("jobs", "list", "--experiment", exp_id, "--json", env=env).stdout)
    job_id = str(jobs[0]["id"])
    assert "completed" in ruckus("jobs", "show", job_id, env=env).stdout
    r = ruckus("jobs", "retry", job_id, env=env)
    assert r.returncode == 1 and "completed; create a new experiment" in r.stderr
    r = ruckus("agents", "remove", agent["id"], "--yes", env=env)
    assert r.returncode == 0


def test_ruckus_server_runs_api_and_scheduler(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "PGHOST", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({"RUCKUS_DATA_DIR": str(tmp_path), "DEBUG": "1", "PYTHONPATH": str(REPO)})
    log = tmp_path / "server.log"
    proc = subprocess.Popen([str(BIN / "ruckus"), "server", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()["database"] == "sqlite"
            except (httpx.HTTPError, ValueError):
                return False

        wait_for(up, 90, interval=0.2, what="ruckus server: " + (log.read_text()[-1500:] if log.exists() else ""))
        assert (tmp_path / "ruckus.sqlite3").exists()
        children = subprocess.run(["pgrep", "-f", "run_scheduler", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert children, "the scheduler was not started"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("ruckus server did not stop on SIGINT: " + log.read_text()[-3000:])
    assert proc.returncode == 0, log.read_text()[-2000:]
    # Its children (daphne, the scheduler) stopped with it: nothing is left in its process group.
    wait_for(lambda: subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True).returncode == 1, 15,
             interval=0.2, what="the server's children to exit")
