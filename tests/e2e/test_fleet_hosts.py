"""A fleet on separate hosts: every agent in its own network namespace, the server on a bridge address.

Real processes (daphne, the scheduler, agents), a private Postgres, real network separation: push agents are
registered by URL with ``RUCKUS_PUBLIC_URL`` unset; pull agents sit behind a NAT (inbound connections dropped)
and ask for work. Timing is scaled down (heartbeats every 0.5 s, an agent lost after 6 s) so that partitions
and outages longer and shorter than the lost-agent time fit in a test.
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
