"""A fleet on separate hosts: every agent in its own network namespace, the server on a bridge address.

Real processes (daphne, the scheduler, agents), a private Postgres, real network separation: push agents are
registered by URL with ``RUCKUS_PUBLIC_URL`` unset; pull agents sit behind a NAT (inbound connections dropped)
and ask for work. Heartbeats come every 0.5 s; the partition test keeps the production lost-agent time (30 s,
cuts of 10 s and 45 s), the outage tests scale it down to 6 s (outages of 12 s) to stay short.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet import Fleet, Timing
from tests.helpers import wait_for
from tests.netlab import netlab_or_skip
from tests.pgctl import PgServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.agent.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with PgServer("127.0.0.1", settings={"fsync": "off"}) as server:
        server.start()
        yield server


def _fleet(tmp_path: Path, pg: PgServer, hosts: list[str], **kw) -> Iterator[Fleet]:
    with netlab_or_skip(hosts) as lab:
        fleet = Fleet(lab=lab, pg=pg, workdir=tmp_path, **kw)
        try:
            yield fleet
        finally:
            fleet.close()


def _connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def _assert_exactly_one_result_each(fleet: Fleet, experiment_id: int, jobs: list[dict]) -> None:
    counts = fleet.count_results(experiment_id)
    assert all(j["status"] == "completed" for j in jobs), [(j["id"], j["status"], j["status_reason"]) for j in jobs]
    assert counts == {j["id"]: 1 for j in jobs}


@pytest.fixture
def two_hosts(tmp_path: Path, pg: PgServer) -> Iterator[Fleet]:
    yield from _fleet(tmp_path, pg, ["a", "b"])


@pytest.fixture
def three_hosts(tmp_path: Path, pg: PgServer) -> Iterator[Fleet]:
    yield from _fleet(tmp_path, pg, ["push", "pull1", "pull2"])


def test_push_agent_on_another_host_registered_by_url_without_public_url(two_hosts: Fleet, tiny_model: Path):
    fleet = two_hosts
    fleet.start_server()
    fleet.start_scheduler()
    fleet.start_agent("agent-a", "a")
    record = fleet.register("agent-a")
    assert record["mode"] == "push" and record["status"] == "online"
    # The agent was told the address that reached the server, and it keeps reaching it.
    time.sleep(4 * fleet.timing.heartbeat_s)
    record = fleet.agent_record("agent-a")
    assert record["status"] == "online" and record["heartbeat_error"] == "", record
    exp = fleet.create_experiment(tiny_model)
    jobs = fleet.wait_jobs_done(exp["id"], 120)
    _assert_exactly_one_result_each(fleet, exp["id"], jobs)


def test_pull_agents_behind_nat_share_an_experiment_with_a_push_agent(three_hosts: Fleet, tiny_model: Path):
    fleet = three_hosts
    fleet.start_server()
    fleet.start_scheduler()
    fleet.start_agent("push", "push")
    fleet.register("push")
    for name in ("pull1", "pull2"):
        fleet.start_agent(name, name, mode="pull")
    for name in ("pull1", "pull2"):
        record = fleet.agent_record(name)
        assert record["mode"] == "pull" and record["url"] == "" and record["status"] == "online"
        # The server cannot open a connection to a pull agent's host.
        assert not _connects(fleet.lab.hosts[name].address, fleet.agents[name].port)
    exp = fleet.create_experiment(tiny_model, copies=2)
    jobs = fleet.wait_jobs_done(exp["id"], 240)
    assert len(jobs) == 6
    _assert_exactly_one_result_each(fleet, exp["id"], jobs)
    assert {j["agent_name"] for j in jobs} == {"push", "pull1", "pull2"}
    assert all(j["attempt"] == 1 for j in jobs)


def _running_job_of(fleet: Fleet, experiment_id: int, agent: str, *, min_runs: int = 0) -> dict | None:
    """A job of the agent that is running and has finished at least ``min_runs`` runs (the cold run is run 0)."""
    for job in fleet.jobs(experiment_id):
        progress = job.get("progress") or {}
        if job["agent_name"] == agent and job["status"] == "running" and progress.get("run_index", 0) > min_runs:
            return job
    return None


def _time_to_online(fleet: Fleet, name: str, timeout: float = 60) -> float:
    """Seconds until the server sees the agent online with fresh heartbeats (called right after a heal)."""
    start = time.monotonic()
    wait_for(lambda: (r := fleet.agent_record(name)) and r["status"] == "online" and not r["heartbeat_error"],
             timeout, interval=0.1, what=f"{name} to be online again")
    return time.monotonic() - start


@pytest.fixture
def partition_fleet(tmp_path: Path, pg: PgServer) -> Iterator[Fleet]:
    # The production lost-agent time (30 s): the cuts are the 10 s and 45 s.
    yield from _fleet(tmp_path, pg, ["a", "b"], timing=Timing(lost_after_s=30.0))


def test_partitions_shorter_and_longer_than_the_lost_agent_time(partition_fleet: Fleet, tiny_model: Path):
    fleet = partition_fleet
    fleet.start_server()
    fleet.start_scheduler()
    fleet.start_agent("a", "a")
    fleet.register("a")
    fleet.start_agent("b", "b", mode="pull")
    exp = fleet.create_experiment(tiny_model, runs=60, samples=2, max_new_tokens=24, copies=2)
    healed: dict[str, float] = {}

    # A cut shorter than the lost-agent time in the middle of a job: nothing is given up.
    job = wait_for(lambda: _running_job_of(fleet, exp["id"], "a", min_runs=1), 120, interval=0.2,
                   what="a job of agent a to run")
    fleet.lab.partition("a")
    time.sleep(10)
    fleet.lab.heal("a")
    healed["a (10 s cut, push)"] = _time_to_online(fleet, "a")
    with fleet.api() as api:
        attempts = api.get(f"/jobs/{job['id']}/").json()["attempts"]
    assert [x["status"] for x in attempts] == ["running"] or [x["status"] for x in attempts] == ["completed"]

    # A cut longer than the lost-agent time, while the pull agent runs a job: it is declared lost; when it comes
    # back, its attempt is taken back if the job waits, else its late result is refused (the retry's stands).
    wait_for(lambda: _running_job_of(fleet, exp["id"], "b", min_runs=1), 120, interval=0.2,
             what="a job of agent b to run")
    fleet.lab.partition("b")
    cut_at = time.monotonic()
    wait_for(lambda: (r := fleet.agent_record("b")) and r["status"] == "offline", 60, interval=0.2,
             what="b to be declared lost")
    time.sleep(max(0.0, 45 - (time.monotonic() - cut_at)))
    fleet.lab.heal("b")
    healed["b (45 s cut, pull)"] = _time_to_online(fleet, "b")

    jobs = fleet.wait_jobs_done(exp["id"], 300)
    _assert_exactly_one_result_each(fleet, exp["id"], jobs)

    # A cut while a result is being posted: the agent finishes during the cut and delivers after it. (A second
    # experiment, so that agent a surely has a job whose end can be caught.)
    exp2 = fleet.create_experiment(tiny_model, runs=16, samples=2, max_new_tokens=24)
    wait_for(lambda: _running_job_of(fleet, exp2["id"], "a", min_runs=10), 180, interval=0.1,
             what="a job of agent a near its end")
    fleet.lab.partition("a")
    # Cut until the agent has finished the job and failed to post its result (its log says so).
    started = time.monotonic()
    wait_for(lambda: "outbox.result.unreachable" in fleet.log("a", 1_000_000), 120, interval=0.2,
             what="agent a to fail posting its result\n" + fleet.log("a"))
    time.sleep(1)
    fleet.lab.heal("a")
    cut = time.monotonic() - started
    healed[f"a ({cut:.0f} s cut during result post, push)"] = _time_to_online(fleet, "a")
    jobs = fleet.wait_jobs_done(exp2["id"], 300)
    _assert_exactly_one_result_each(fleet, exp2["id"], jobs)
    print("partition healed -> agent online (s): " + ", ".join(f"{k}: {v:.2f}" for k, v in healed.items()))


@pytest.fixture
def outage_fleet(tmp_path: Path, pg: PgServer) -> Iterator[Fleet]:
    yield from _fleet(tmp_path, pg, ["a", "b"], timing=Timing(lost_after_s=6.0))


def _two_agents_busy(fleet: Fleet, tiny_model: Path) -> dict:
    fleet.start_server()
    fleet.start_scheduler()
    fleet.start_agent("a", "a")
    fleet.register("a")
    fleet.start_agent("b", "b", mode="pull")
    exp = fleet.create_experiment(tiny_model, runs=16, samples=2, max_new_tokens=24)
    for name in ("a", "b"):
        wait_for(lambda n=name: _running_job_of(fleet, exp["id"], n, min_runs=1), 120, interval=0.2,
                 what=f"a job of agent {name} to run")
    return exp


def test_server_killed_and_restarted_after_the_lost_agent_time(outage_fleet: Fleet, tiny_model: Path):
    fleet = outage_fleet
    exp = _two_agents_busy(fleet, tiny_model)
    fleet.kill("server")
    time.sleep(2 * fleet.timing.lost_after_s)  # the scheduler keeps running all along
    fleet.start_server()
    jobs = fleet.wait_jobs_done(exp["id"], 300)
    _assert_exactly_one_result_each(fleet, exp["id"], jobs)
    assert [j["attempt"] for j in jobs] == [1, 1], "the server blamed the agents for its own outage"


def test_postgres_killed_and_restarted_in_the_middle_of_an_experiment(outage_fleet: Fleet, tiny_model: Path):
    fleet = outage_fleet
    exp = _two_agents_busy(fleet, tiny_model)
    fleet.pg.kill9()
    time.sleep(2 * fleet.timing.lost_after_s)
    fleet.pg.restart()
    jobs = fleet.wait_jobs_done(exp["id"], 300)
    _assert_exactly_one_result_each(fleet, exp["id"], jobs)
    assert [j["attempt"] for j in jobs] == [1, 1], "the server blamed the agents for its database's outage"
    assert "scheduler_recovered" in fleet.log("scheduler", 100_000)
