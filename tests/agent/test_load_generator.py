"""The load generator's fidelity: what it measures against what a stand-in endpoint really sent, and when.

The stand-in (:mod:`tests.agent.standin_endpoint`) runs in its own process, streams tokens at known times and
records, on the same monotonic clock, when each request arrived and when each chunk was really written. Each test
compares the generator's figures with those actual times (so that the stand-in's own lateness cancels out), and
the achieved arrival process with the requested one. Every test prints what it measured (run with ``-s``).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import statistics
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from scipy import stats

from agent_runtime.egress import CONNECTION_FAILED, EndpointPolicy, async_pinned_client
from agent_runtime.load.arrivals import ArrivalSchedule, arrival_times
from agent_runtime.load.generator import (
    CANCELLED,
    CHUNK_COUNT_NOTE,
    LaneTransport,
    LoadPrompt,
    LoadTarget,
    run_point,
)
from common.loadmetrics import percentile_sorted, point_figures
from common.protocol.load import Arrival, LoadPointRun, LoadSpec
from tests.agent.standin_endpoint import StandinEndpoint

#: Largest differences allowed at p99 between a measured TTFT, ITL or e2e and the stand-in's actual one, seconds.
#: The goal is 1 ms everywhere; on a quiet 2-core host (one core for the stand-in, one for the generator) the
#: p99 errors measured were: concurrency 1: TTFT 2.0, ITL 0.26, e2e 1.75 ms (a constant ~1 ms of them is the
#: request's way to the stand-in, which its clock starts after); Poisson 100 and 250 req/s: TTFT 5.5, ITL 2.2,
#: e2e 6.6 ms; concurrency 64: TTFT 60, ITL 19, e2e 56 ms, where the stand-in itself reads requests late. These
#: limits sit above those figures, as guards against regressions, not as the goal met.
EXACT = {"ttft": 0.005, "itl": 0.001, "e2e": 0.005}
OPEN_LOOP = {"ttft": 0.015, "itl": 0.005, "e2e": 0.015}
CROWDED = {"ttft": 0.150, "itl": 0.050, "e2e": 0.150}
#: The stand-in's own lateness at p99 above which the host is too busy to tell a millisecond: asyncio's timers fire
#: up to 1 ms late on a quiet host (its epoll wait is rounded up to whole milliseconds); well beyond that, the host
#: is not running the stand-in's process (nor, as much, the generator's) when it should.
BUSY_HOST_LATENESS_S = 0.003
#: The timing tests: a second and third try when one fails. What varies between tries on a shared 2-core host is
#: whether the host ran both processes on time during those few seconds (another process, a page fault), not the
#: generator; a try on time passes, and a generator that mis-measures fails all three.
TIMING = pytest.mark.flaky(reruns=2)
#: Smallest Kolmogorov-Smirnov p-value accepted for "these gaps are exponential with mean 1/rate".
KS_ALPHA = 0.01

PROMPTS = [LoadPrompt(text=f"prompt {i}", messages=None, prompt_tokens=None, output_tokens=16) for i in range(8)]


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinEndpoint]:
    """One stand-in process for the module: TTFT 50 ms, ITL 5 ms, an EOS step 2 ms after the last token."""
    with StandinEndpoint(ttft_s=0.05, itl_s=0.005, eos_step_s=0.002) as endpoint:
        yield endpoint


class _Run:
    """A point run against the stand-in, with the stand-in's records of its measured requests in the same order."""

    def __init__(self, point: LoadPointRun, served: list[dict[str, Any]]) -> None:
        self.point = point
        self.served = served

    def errors(self) -> dict[str, list[float]]:
        """Measured minus actual, per request (TTFT, e2e) and per gap (ITL), seconds."""
        out: dict[str, list[float]] = {"ttft": [], "itl": [], "e2e": []}
        for req, srv in zip(self.point.requests, self.served, strict=True):
            sends = srv["sends"]
            out["ttft"].append(req.ttft_s - (sends[0] - srv["started"]))
            steps = [*sends, srv["eos"]] if srv["eos"] is not None else sends  # the EOS step is a gap too
            out["itl"] += [m - (b - a) for m, a, b in zip(req.itl_s, steps, steps[1:], strict=False)]
            last = srv["eos"] if srv["eos"] is not None else sends[-1]
            out["e2e"].append(req.e2e_s - (last - srv["started"]))
        return out

    def p99_abs_errors(self) -> dict[str, float]:
        """p99 of the absolute errors, seconds."""
        return {k: percentile_sorted(sorted(abs(x) for x in v), 99) for k, v in self.errors().items()}

    def lateness_p99(self) -> float:
        """p99 of how late the stand-in wrote its chunks (what comparing with actual times cancels out)."""
        late = sorted(s - d for srv in self.served for s, d in zip(srv["sends"], srv["due"], strict=True))
        return percentile_sorted(late, 99)

    def busy_host(self) -> str | None:
        """Why the host was too busy for a sub-millisecond check during this run, or None when it was not.

        The stand-in is a process like the generator on the same host: when the host runs it tens of milliseconds
        late (other work on its cores), it runs the generator late as well, and no client could time chunks to a
        millisecond there. Its lateness is measured in the same window as the generator's figures.
        """
        late = self.lateness_p99()
        if late <= BUSY_HOST_LATENESS_S:
            return None
        return f"the stand-in's own chunks were {late * 1e3:.1f} ms late at p99 (host load {os.getloadavg()[0]:.1f})"


async def _run(
    standin: StandinEndpoint,
    spec: LoadSpec,
    value: int | float | str,
    *,
    options: dict[str, Any] | None = None,
    prompts: list[LoadPrompt] = PROMPTS,
    chat: bool = True,
    should_stop: Any = None,
    match: bool = True,
    on_send: Any = None,
) -> _Run:
    """Run one point against the stand-in; ``options`` go into every request's ``standin`` object.

    With ``match``, the stand-in's records of the measured requests come with the point, in the same order.
    ``on_send`` is called with the event loop's time as each request's body is built (just before it is sent).
    """
    standin.records()  # forget earlier tests' requests
    ids = itertools.count()

    def build_body(prompt: LoadPrompt) -> dict[str, Any]:
        if on_send is not None:
            on_send(asyncio.get_running_loop().time())
        body: dict[str, Any] = {
            "model": "standin",
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": prompt.output_tokens,
            "standin": {"id": next(ids), **(options or {})},
        }
        if chat:
            body["messages"] = [{"role": "user", "content": prompt.text}]
        else:
            body["prompt"] = prompt.text
        return body

    url = f"{standin.base_url}/chat/completions" if chat else f"{standin.base_url}/completions"
    target = LoadTarget(url=url, headers={"authorization": "Bearer standin"}, build_body=build_body)
    async with httpx.AsyncClient(transport=LaneTransport(), timeout=60) as client:
        kwargs = {"should_stop": should_stop} if should_stop is not None else {}
        point = await run_point(client, target, prompts, index=0, spec=spec, value=value, **kwargs)
    # A request cancelled or timed out may still be unread by the stand-in when the point ends: gather its records
    # until every request sent is among them (a few polls at most; bounded).
    if not match:
        return _Run(point, [])
    expected = spec.warmup_requests + len(point.requests)
    served = standin.records()
    for _ in range(50):
        if len(served) >= expected:
            break
        await asyncio.sleep(0.1)
        served += standin.records()
    served.sort(key=lambda r: r["id"])
    # Request ids follow the order of sends (the body is built just before its send), warm-up first.
    measured = served[spec.warmup_requests :]
    assert len(measured) == len(point.requests)
    return _Run(point, measured)


def _report(name: str, run: _Run) -> str:
    """One line of what a test measured."""
    f = point_figures(run.point, None)
    err = run.p99_abs_errors()
    o = run.point.overhead
    line = (
        f"{name}: {f['completed']} requests in {f['duration_s']:.2f} s ({f['request_throughput']:.0f} req/s); "
        f"TTFT p50 {f['ttft_s']['median'] * 1e3:.2f} ms, ITL p50 {f['itl_s']['median'] * 1e3:.2f} ms, "
        f"e2e p50 {f['e2e_s']['median'] * 1e3:.2f} ms; |measured - actual| p99: TTFT {err['ttft'] * 1e3:.3f} ms, "
        f"ITL {err['itl'] * 1e3:.3f} ms, e2e {err['e2e'] * 1e3:.3f} ms; stand-in lateness p99 "
        f"{run.lateness_p99() * 1e3:.3f} ms; send lag p50/p99/max {o.send_lag_p50_s * 1e3:.3f}/"
        f"{o.send_lag_p99_s * 1e3:.3f}/{o.send_lag_max_s * 1e3:.3f} ms; CPU {o.cpu_s:.2f} s; "
        f"{o.chunk_handling_s * 1e6:.1f} us per chunk handled"
    )
    print(line)
    return line


def _faithful(run: _Run, limits: dict[str, float]) -> list[tuple[str, bool]]:
    """Every request completed and TTFT, ITL and e2e are within ``limits`` of the actual ones at p99.

    Asserted at once: completion, and the causal bound. Both sides read the same monotonic clock, so whatever the
    host's load a request is sent before the stand-in reads it and a chunk is received after it is written: a
    measured TTFT or e2e is never shorter than the actual one. Returned: the millisecond checks, for
    :func:`_check_or_skip_when_busy`.
    """
    assert all(r.error is None for r in run.point.requests), [r.error for r in run.point.requests if r.error]
    errors = run.errors()
    for figure in ("ttft", "e2e"):
        assert min(errors[figure]) > -0.0001, f"{figure} measured shorter than it was: {min(errors[figure])} s"
    return [
        (f"{name}: p99 |measured - actual| {error * 1e3:.3f} ms > {limits[name] * 1e3:g} ms", error <= limits[name])
        for name, error in run.p99_abs_errors().items()
    ]


def _check_or_skip_when_busy(run: _Run, line: str, checks: list[tuple[str, bool]]) -> None:
    """Assert timing checks on a host that ran the stand-in on time; skip, saying why, where it did not.

    A busy host is no evidence either way: the test is skipped with its figures, never passed.
    """
    failed = [message for message, ok in checks if not ok]
    if not failed:
        return
    busy = run.busy_host()
    if busy is not None:
        pytest.skip(f"host too busy to check timings to a millisecond: {busy}; {'; '.join(failed)} ({line})")
    raise AssertionError(f"{'; '.join(failed)} ({line})")


def _gaps(times: list[float]) -> list[float]:
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]


# -- fidelity -----------------------------------------------------------------------------------------------------


@TIMING
async def test_concurrency_1_measures_what_the_endpoint_sent(standin):
    run = await _run(standin, LoadSpec(concurrency=[1], num_requests=20, warmup_requests=2), 1)
    line = _report("concurrency 1", run)
    checks = _faithful(run, EXACT)
    f = point_figures(run.point, None)
    assert f["itl_s"]["count"] == 20 * 16 and f["total_output_tokens"] == 20 * 16
    assert run.point.notes == []
    # The known values: TTFT 50 ms, 15 gaps of 5 ms, then the EOS step 2 ms after the last token (an ITL gap too).
    checks += [
        (f"median TTFT {f['ttft_s']['median'] * 1e3:.3f} ms, not 50", abs(f["ttft_s"]["median"] - 0.05) < 0.005),
        (f"median ITL {f['itl_s']['median'] * 1e3:.3f} ms, not 5", abs(f["itl_s"]["median"] - 0.005) < 0.001),
        (f"median e2e {f['e2e_s']['median'] * 1e3:.3f} ms, not 127", abs(f["e2e_s"]["median"] - 0.127) < 0.005),
        (f"achieved concurrency {f['achieved_concurrency']:.3f}", abs(f["achieved_concurrency"] - 1) < 0.05),
    ]
    _check_or_skip_when_busy(run, line, checks)


@TIMING
async def test_concurrency_64_measures_what_the_endpoint_sent(standin):
    # 64 streams of 8 tokens 20 ms apart: 3,200 chunks/s, which the stand-in writes on time on a 2-core host (16
    # tokens 5 ms apart, 12,800 chunks/s, made the stand-in itself tens of milliseconds late).
    spec = LoadSpec(concurrency=[64], num_requests=256, warmup_requests=64)
    run = await _run(standin, spec, 64, options={"tokens": 8, "itl_s": 0.02})
    line = _report("concurrency 64", run)
    checks = _faithful(run, CROWDED)
    assert len({r["connection"] for r in run.served}) == 64  # one connection per worker, kept from the warm-up
    f = point_figures(run.point, None)
    checks.append((f"achieved concurrency {f['achieved_concurrency']:.1f}", abs(f["achieved_concurrency"] - 64) < 6.4))
    _check_or_skip_when_busy(run, line, checks)


@TIMING
async def test_poisson_rate_arrivals_are_exponential_and_timings_faithful(standin):
    rate = 100.0
    spec = LoadSpec(request_rate=[rate], num_requests=300, warmup_requests=8, seed=7)
    run = await _run(standin, spec, rate, options={"tokens": 8})
    line = _report("Poisson 100 req/s", run)
    checks = _faithful(run, OPEN_LOOP)
    # The schedule (seeded, so this is deterministic) and what was achieved: the generator's sends, and the arrivals
    # at the stand-in, each against the exponential of mean 1/rate.
    series = (
        ("schedule", _gaps([r.scheduled_s for r in run.point.requests])),
        ("generator sends", _gaps([r.sent_s for r in run.point.requests])),
        ("stand-in arrivals", _gaps([r["started"] for r in run.served])),
    )
    for name, gaps in series:
        ks = stats.kstest(gaps, "expon", args=(0, 1 / rate))
        mean = statistics.fmean(gaps)
        print(
            f"  {name}: KS D {ks.statistic:.4f} p {ks.pvalue:.3f}; mean gap {mean * 1e3:.3f} ms "
            f"(1/rate {1e3 / rate:.3f}); CV {statistics.pstdev(gaps) / mean:.3f} (1)"
        )
        message = f"{name}: gaps not exponential(1/{rate}): KS D {ks.statistic:.4f} p {ks.pvalue:.4f}"
        if name == "schedule":
            assert ks.pvalue > KS_ALPHA, message
        else:
            checks.append((message, ks.pvalue > KS_ALPHA))
    lag = run.point.overhead.send_lag_p99_s
    checks.append((f"send lag p99 {lag * 1e3:.3f} ms", lag < 0.010))
    _check_or_skip_when_busy(run, line, checks)


@pytest.mark.parametrize(("burstiness", "cv"), [(0.25, 2.0), (4.0, 0.5)])
@TIMING
async def test_gamma_burstiness_sets_the_coefficient_of_variation(standin, burstiness, cv):
    # The schedule itself, on many draws: gamma of shape k has CV 1/sqrt(k) and mean 1/rate.
    times = arrival_times(20_000, 200.0, Arrival.GAMMA, burstiness, seed=3)
    gaps = _gaps(times)
    assert statistics.pstdev(gaps) / statistics.fmean(gaps) == pytest.approx(cv, rel=0.05)
    assert stats.kstest(gaps, "gamma", args=(burstiness, 0, statistics.fmean(gaps) / burstiness)).pvalue > KS_ALPHA
    # What the stand-in saw of a short run.
    spec = LoadSpec(request_rate=[200.0], arrival="gamma", burstiness=burstiness, num_requests=300, seed=3)
    run = await _run(standin, spec, 200.0, options={"tokens": 2, "ttft_s": 0.01})
    line = _report(f"gamma burstiness {burstiness}", run)
    checks = []
    for name, times in (
        ("generator sends", [r.sent_s for r in run.point.requests]),
        ("stand-in arrivals", [r["started"] for r in run.served]),
    ):
        gaps = _gaps(times)
        seen = statistics.pstdev(gaps) / statistics.fmean(gaps)
        print(f"  {name}: CV {seen:.3f}, expected {cv}")
        checks.append((f"{name}: CV {seen:.3f}, expected {cv}", abs(seen - cv) < 0.25 * cv))
    _check_or_skip_when_busy(run, line, checks)


@TIMING
async def test_constant_arrivals_are_evenly_spaced(standin):
    assert arrival_times(5, 4.0, Arrival.CONSTANT) == [0.0, 0.25, 0.5, 0.75, 1.0]
    spec = LoadSpec(request_rate=[100.0], arrival="constant", num_requests=150, warmup_requests=4)
    run = await _run(standin, spec, 100.0, options={"tokens": 2, "ttft_s": 0.01})
    line = _report("constant 100 req/s", run)
    assert all(r.scheduled_s == pytest.approx(i * 0.01) for i, r in enumerate(run.point.requests))
    checks = []
    for name, times in (
        ("generator sends", [r.sent_s for r in run.point.requests]),
        ("stand-in arrivals", [r["started"] for r in run.served]),
    ):
        deviation = percentile_sorted(sorted(abs(g - 0.01) for g in _gaps(times)), 99)
        print(f"  {name}: p99 |gap - 10 ms| {deviation * 1e3:.3f} ms")
        checks.append((f"{name}: gaps 10 ms apart within {deviation * 1e3:.3f} ms at p99", deviation < 0.005))
    _check_or_skip_when_busy(run, line, checks)


@TIMING
async def test_sustains_250_requests_per_second_without_drift(standin):
    rate = 250.0
    spec = LoadSpec(request_rate=[rate], num_requests=750, warmup_requests=16, seed=1)
    run = await _run(standin, spec, rate, options={"tokens": 4, "ttft_s": 0.01, "itl_s": 0.002, "eos_step_s": 0.001})
    line = _report("Poisson 250 req/s", run)
    checks = _faithful(run, OPEN_LOOP)
    f = point_figures(run.point, None)
    lag = run.point.overhead.send_lag_p99_s
    # No drift: the last 100 requests' TTFT is as faithful as the first 100's.
    errors = run.errors()["ttft"]
    head, tail = statistics.median(errors[:100]), statistics.median(errors[-100:])
    checks += [
        (f"{f['request_throughput']:.1f} req/s achieved", abs(f["request_throughput"] - rate) < 0.1 * rate),
        (f"send lag p99 {lag * 1e3:.3f} ms", lag < 0.010),
        (f"TTFT error drifted from {head * 1e3:.3f} to {tail * 1e3:.3f} ms", abs(tail - head) < 0.002),
    ]
    _check_or_skip_when_busy(run, line, checks)


# -- behaviour ----------------------------------------------------------------------------------------------------


async def test_eos_step_ends_e2e_and_is_an_inter_token_gap_and_role_chunk_is_no_first_token(standin):
    opts = {"tokens": 3, "ttft_s": 0.03, "itl_s": 0.004, "eos_step_s": 0.02, "role_chunk": True}
    run = await _run(standin, LoadSpec(concurrency=[1], num_requests=3), 1, options=opts)
    for req, srv in zip(run.point.requests, run.served, strict=True):
        # Two gaps between three tokens, then the EOS step's (vllm bench serve counts every chunk with a choice).
        assert len(req.itl_s) == 3
        assert abs(req.itl_s[-1] - (srv["eos"] - srv["sends"][-1])) < 0.005
        # Same clock on both sides: the first text left the stand-in 30 ms after the role chunk, so a TTFT of the
        # role chunk would be shorter than the actual first token's; the e2e ends no earlier than the EOS step.
        assert req.ttft_s >= srv["sends"][0] - srv["started"]
        assert req.e2e_s >= srv["eos"] - srv["started"]
        assert abs(req.e2e_s - req.ttft_s - sum(req.itl_s)) < 1e-9  # the steps after the first span the rest
        assert (req.prompt_tokens, req.output_tokens) == (7, 3)  # from the usage chunk


async def test_completions_endpoint_and_no_usage_counts_chunks(standin):
    run = await _run(
        standin, LoadSpec(concurrency=[2], num_requests=4), 2, options={"tokens": 5, "usage": False}, chat=False
    )
    assert [r.output_tokens for r in run.point.requests] == [5] * 4
    assert [r.prompt_tokens for r in run.point.requests] == [None] * 4  # the prompts' own count: unknown
    assert run.point.notes == [CHUNK_COUNT_NOTE]


async def test_a_compressed_stream_is_decoded(standin):
    # The generator asks for an uncompressed stream; a server that compresses anyway is still read right.
    run = await _run(standin, LoadSpec(concurrency=[2], num_requests=4), 2, options={"tokens": 5, "gzip": True})
    assert [(r.error, r.output_tokens, len(r.itl_s)) for r in run.point.requests] == [(None, 5, 5)] * 4
    assert all(r.e2e_s >= srv["eos"] - srv["started"] for r, srv in zip(run.point.requests, run.served, strict=True))


async def test_http_error_connection_failure_and_timeout_are_recorded(standin):
    run = await _run(standin, LoadSpec(concurrency=[2], num_requests=2), 2, options={"status": 503})
    assert [r.error for r in run.point.requests] == ["endpoint answered HTTP 503"] * 2  # the body is not repeated
    run = await _run(standin, LoadSpec(concurrency=[1], num_requests=2), 1, options={"drop_after": 2})
    assert [r.error for r in run.point.requests] == [CONNECTION_FAILED] * 2
    assert all(len(r.itl_s) == 1 for r in run.point.requests)  # what arrived before the failure is kept
    spec = LoadSpec(concurrency=[1], num_requests=1, request_timeout_s=0.05)
    run = await _run(standin, spec, 1, options={"ttft_s": 1.0, "tokens": 1})
    (req,) = run.point.requests
    assert req.timed_out and req.error == "timed out after 0.05 s"
    assert req.e2e_s == pytest.approx(0.05, abs=0.02)
    f = point_figures(run.point, None)
    assert (f["completed"], f["failed"], f["timed_out"], f["error_rate"]) == (0, 0, 1, 1.0)


async def test_stopping_cancels_what_is_in_flight(standin):
    loop = asyncio.get_running_loop()
    sends: list[float] = []
    asked: list[float] = []

    def should_stop() -> bool:
        """True from 0.3 s after the first send (the requests last 0.6 s)."""
        asked.append(loop.time())
        return bool(sends) and loop.time() - sends[0] >= 0.3

    spec = LoadSpec(concurrency=[4], num_requests=100)
    options = {"ttft_s": 0.02, "tokens": 60, "itl_s": 0.01}
    run = await _run(standin, spec, 4, options=options, should_stop=should_stop, match=False, on_send=sends.append)
    assert [r.error for r in run.point.requests] == [CANCELLED] * 4  # the four in flight, and no more sent
    assert 0.3 <= run.point.duration_s < 0.6
    assert sum(1 for t in asked if t > sends[0]) >= 5  # asked while the requests were in flight, every 50 ms


async def test_open_loop_cap_and_infinite_rate(standin):
    spec = LoadSpec(request_rate=["inf"], max_concurrency=4, num_requests=12)
    run = await _run(standin, spec, "inf", options={"tokens": 2, "ttft_s": 0.05})
    starts = sorted(r["started"] for r in run.served)
    # All due at once, at most 4 in flight: three waves about 55 ms apart.
    assert starts[4] - starts[0] > 0.04  # the fifth waited for the first to end
    assert run.point.overhead.send_lag_max_s > 0.08  # the wait for a free slot is send lag
    assert all(r.scheduled_s == 0.0 for r in run.point.requests)


async def test_duration_sized_point_and_warm_up(standin):
    spec = LoadSpec(concurrency=[2], duration_s=0.5, warmup_requests=3)
    run = await _run(standin, spec, 2, options={"tokens": 2, "ttft_s": 0.05})
    assert run.point.warmup_requests == 3
    assert 12 <= len(run.point.requests) <= 22  # about 0.5 s / 55 ms x 2 workers, the last ones awaited
    assert all(r.sent_s < 0.5 for r in run.point.requests)


async def test_prompt_order_is_seeded(standin):
    prompts = [LoadPrompt(text=f"p{i}", messages=None, prompt_tokens=i, output_tokens=1) for i in range(5)]
    spec = LoadSpec(concurrency=[1], num_requests=10, seed=42)
    first = await _run(standin, spec, 1, prompts=prompts, options={"ttft_s": 0.001})
    again = await _run(standin, spec, 1, prompts=prompts, options={"ttft_s": 0.001, "usage": False})
    order = [r.prompt_tokens for r in again.point.requests]
    assert sorted(order[:5]) == [0, 1, 2, 3, 4] and order[5:] == order[:5]  # a shuffled order, cycled
    other = await _run(
        standin, spec.model_copy(update={"seed": 44}), 1, prompts=prompts, options={"ttft_s": 0.001, "usage": False}
    )
    assert [r.prompt_tokens for r in other.point.requests] != order
    assert len(first.point.requests) == 10


async def test_bad_input_is_refused():
    spec = LoadSpec(concurrency=[1], num_requests=1)
    target = LoadTarget(url="http://127.0.0.1:9/v1/completions", headers={}, build_body=lambda p: {})
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="prompts"):
            await run_point(client, target, [], index=0, spec=spec, value=1)
        with pytest.raises(ValueError, match="concurrency"):
            await run_point(client, target, PROMPTS, index=0, spec=spec, value=0)


# -- the schedule -------------------------------------------------------------------------------------------------


def test_schedule_is_seeded_and_normalized_like_vllm():
    times = arrival_times(1000, 50.0, Arrival.POISSON, seed=5)
    assert times == arrival_times(1000, 50.0, "poisson", seed=5)
    assert times != arrival_times(1000, 50.0, Arrival.POISSON, seed=6)
    assert times[0] == 0.0 and all(b >= a for a, b in itertools.pairwise(times))
    # vllm bench serve rescales n intervals to n / rate; the clock here starts at the first send, so the first
    # interval (before it) is left out.
    assert times[-1] < 1000 / 50.0 and times[-1] == pytest.approx(1000 / 50.0, rel=0.01)
    assert arrival_times(3, "inf", Arrival.POISSON) == [0.0, 0.0, 0.0]
    endless = iter(ArrivalSchedule(10.0, Arrival.CONSTANT))
    assert [next(endless) for _ in range(3)] == [0.0, 0.1, 0.2]
    with pytest.raises(ValueError, match="request_rate"):
        ArrivalSchedule(0.0, Arrival.POISSON)
    with pytest.raises(ValueError, match="burstiness"):
        ArrivalSchedule(1.0, Arrival.GAMMA, burstiness=0)
    assert math.isclose(
        statistics.fmean(_gaps(arrival_times(50_000, 10.0, Arrival.POISSON, seed=1))), 0.1, rel_tol=0.001
    )


async def test_lanes_under_the_agents_pinned_client(standin):
    # The agent's pinned client (address checks, no redirects) with lanes as its innermost transport: every worker
    # keeps one connection of its own from point to point.
    policy = EndpointPolicy.from_values([f"http://127.0.0.1:{standin.port}/"])
    client = async_pinned_client(policy, "openai", timeout=30, inner=LaneTransport())
    url = f"{standin.base_url}/completions"
    target = LoadTarget(url=url, headers={}, build_body=lambda p: {"max_tokens": 2, "standin": {"ttft_s": 0.005}})
    spec = LoadSpec(concurrency=[3], num_requests=12)
    standin.records()
    async with client:
        for index in range(2):
            point = await run_point(client, target, PROMPTS, index=index, spec=spec, value=3)
            assert [r.error for r in point.requests] == [None] * 12
    connections = [r["connection"] for r in standin.records()]
    assert len(connections) == 24 and len(set(connections)) == 3
