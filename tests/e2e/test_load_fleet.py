"""A load sweep across a fleet: each agent on its own host drives the endpoint next to it, the server compares them.

Two hosts, each a network namespace with an agent and a stand-in OpenAI-compatible endpoint on the host's own
loopback (the same port on both: one experiment's ``base_url`` reaches, on every host, the server beside that
agent, as a fleet of serving boxes each with its local agent would). The endpoints differ by known amounts (time
to first token and between tokens), so the comparison the server returns must put each host's figures where its
endpoint put them, and the SLO must split the cells: one host meets it, the other does not.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet import Fleet
from tests.helpers import free_port
from tests.netlab import netlab_or_skip
from tests.pgctl import PgServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
#: Known behaviour of each host's endpoint: (time to first token, time between tokens), seconds.
ENDPOINTS = {"fast": (0.040, 0.004), "slow": (0.150, 0.012)}
#: Tokens each request asks for (the stand-in streams exactly ``max_tokens``).
TOKENS = 8
#: Largest difference allowed between the agent's median and the endpoint's own (its request's arrival to its chunk
#: writes, on its clock): across the host's loopback only the HTTP exchange and the scheduling of three processes
#: (server, agent, endpoint) on a busy 2-core machine separate the two (5.6 ms seen at e2e). The millisecond
#: fidelity of the generator itself is tests/agent/test_load_generator.py's; here the hosts differ by 110 ms.
TOLERANCE_S = 0.010
#: Warm-up requests before each point.
WARMUP = 2
#: Measured requests per point.
REQUESTS = 16


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with PgServer("127.0.0.1", settings={"fsync": "off"}) as server:
        server.start()
        yield server


@pytest.fixture
def fleet(tmp_path: Path, pg: PgServer) -> Iterator[Fleet]:
    with netlab_or_skip(list(ENDPOINTS)) as lab:
        fleet = Fleet(lab=lab, pg=pg, workdir=tmp_path)
        try:
            yield fleet
        finally:
            fleet.close()


def _start_endpoint(fleet: Fleet, host: str, port: int) -> None:
    """Start the stand-in endpoint on the host's loopback (the lab kills it at the end)."""
    ttft, itl = ENDPOINTS[host]
    proc = fleet.lab.popen(host, [sys.executable, "-m", "tests.agent.standin_endpoint", "--port", str(port),
                                  "--ttft", str(ttft), "--itl", str(itl), "--eos-step", "0.002"],
                           cwd=ROOT, stdout=subprocess.PIPE, text=True,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    line = proc.stdout.readline() if proc.stdout else ""
    assert line.startswith(f"PORT {port}"), f"the stand-in endpoint on {host} did not start: {line!r}"


def _served(fleet: Fleet, host: str, port: int) -> list[dict]:
    """What the host's endpoint served, on its own clock, in the order requests began to arrive."""
    script = f"import httpx; print(httpx.get('http://127.0.0.1:{port}/_records', timeout=30).text)"
    done = fleet.lab.run(host, [sys.executable, "-c", script], timeout=60)
    assert done.returncode == 0, done.stderr
    return sorted(json.loads(done.stdout), key=lambda r: r["started"])


def _median(values: list[float]) -> float:
    return statistics.median(values)


def test_each_host_sweeps_its_own_endpoint_and_the_server_compares_them(fleet: Fleet):
    port = free_port()  # free here; every namespace starts with no listener at all
    base_url = f"http://127.0.0.1:{port}/v1"
    fleet.start_server()
    fleet.start_scheduler()
    for host in ENDPOINTS:
        _start_endpoint(fleet, host, port)
        fleet.start_agent(f"agent-{host}", host, extra=["--allow-endpoint", base_url])
        fleet.register(f"agent-{host}")
    with fleet.api() as api:
        r = api.post("/experiments/", json={
            "name": "load across hosts",
            "task": {"name": "wikipedia_summarization", "params": {"num_samples": 4, "max_new_tokens": TOKENS}},
            "models": [{"name": "standin"}],
            "runtimes": [{"name": "openai", "params": {"base_url": base_url, "endpoint": "completions"}}],
            "agents": {"all": True},
            "load": {"concurrency": [1, 4], "num_requests": REQUESTS, "warmup_requests": WARMUP, "seed": 7,
                     "slo": {"ttft_ms": 120, "percentile": 90}},
        })
        assert r.status_code == 201, r.text
        experiment = r.json()
        jobs = fleet.wait_jobs_done(experiment["id"], 240)
        assert len(jobs) == 2 and all(j["status"] == "completed" for j in jobs), \
            [(j["id"], j["status"], j.get("status_reason")) for j in jobs]
        comparison = api.get(f"/experiments/{experiment['id']}/load/").json()
    assert comparison["mode"] == "concurrency"
    cells = {cell["agent_name"]: cell for cell in comparison["cells"]}
    assert set(cells) == {"agent-fast", "agent-slow"}
    for host, (ttft, itl) in ENDPOINTS.items():
        cell = cells[f"agent-{host}"]
        assert [p["concurrency"] for p in cell["points"]] == [1, 4] and cell["stopped_early"] is None
        served = _served(fleet, host, port)
        assert len(served) == 2 * (WARMUP + REQUESTS)
        for i, point in enumerate(cell["points"]):
            figures = f"{host} at concurrency {point['concurrency']}: {point}"
            assert point["completed"] == REQUESTS and point["failed"] == 0, figures
            assert point["total_output_tokens"] == REQUESTS * TOKENS, figures
            # The endpoint's own view of the same requests (points run one after the other, warm-up first).
            mine = served[i * (WARMUP + REQUESTS) + WARMUP:(i + 1) * (WARMUP + REQUESTS)]
            their_ttft = _median([r["sends"][0] - r["started"] for r in mine])
            their_e2e = _median([r["eos"] - r["started"] for r in mine])
            assert their_ttft >= ttft  # a schedule can only run late
            assert abs(point["ttft_s"]["median"] - their_ttft) <= TOLERANCE_S, figures
            assert abs(point["e2e_s"]["median"] - their_e2e) <= TOLERANCE_S, figures
            print(f"{host} c={point['concurrency']}: TTFT median {point['ttft_s']['median'] * 1000:.2f} ms "
                  f"(endpoint's clock {their_ttft * 1000:.2f}, set {ttft * 1000:.0f}), e2e median "
                  f"{point['e2e_s']['median'] * 1000:.2f} ms (endpoint's clock {their_e2e * 1000:.2f}), "
                  f"ITL median {point['itl_s']['median'] * 1000:.2f} ms (set {itl * 1000:.0f}), "
                  f"{point['request_throughput']:.2f} req/s, achieved concurrency {point['achieved_concurrency']:.2f}")
        # Four requests in flight on an endpoint that serves them in parallel: well over twice the throughput.
        one, four = cell["points"]
        assert four["request_throughput"] > 2.5 * one["request_throughput"], cell["points"]
        assert 3.0 <= four["achieved_concurrency"] <= 4.0 + 1e-9, four
    # The SLO (p90 TTFT within 120 ms) splits the fleet: only the fast host has a max goodput.
    fast, slow = cells["agent-fast"], cells["agent-slow"]
    assert all(p["slo_met"] for p in fast["points"]) and not any(p["slo_met"] for p in slow["points"])
    assert fast["max_goodput"]["load"] == 4 and slow["max_goodput"] is None
    assert fast["peak"]["load"] == 4
