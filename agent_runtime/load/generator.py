"""The load generator: one load point of streaming requests to an OpenAI-compatible endpoint, timed per request.

A point is either closed-loop (``value`` workers, each sending its next request as soon as the previous one ends, so
that ``value`` requests are always in flight) or open-loop (requests sent on the arrival schedule of
:mod:`agent_runtime.load.arrivals`, at most ``max_concurrency`` in flight: a request that waits for a free slot is
sent late, and that wait counts as send lag, as in ``vllm bench serve``). Warm-up requests go first and are left
out of the point. Prompts are taken in a seeded shuffled order, cycling.

What is timed, on ``time.perf_counter()`` (monotonic) at the arrival of each streamed line, as ``vllm bench serve``
times it (``vllm/benchmarks/lib/endpoint_request_func.py``) with one deliberate difference, from the contract of
:class:`~common.protocol.load.RequestRecord`:

* ``ttft_s``: from the send to the first chunk **with text** (vLLM: the first chunk with a choice, which for a
  chat stream can be the role-only chunk some servers send before any token; on vLLM's own server the two are the
  same chunk).
* ``itl_s``: from that first text on, the gaps between consecutive chunks with a choice, text or not (a token the
  detokenizer holds back, the final EOS step), as vLLM counts them.
* ``e2e_s``: from the send to the last chunk with a choice, the final EOS step without text included (vLLM's
  ``latency``). A request that fails keeps the time it spent in flight until it failed as its ``e2e_s`` (the
  figures use it only for the achieved concurrency).
* ``output_tokens``: the server's ``usage.completion_tokens``, else the number of chunks with text (the point's
  notes say so); ``prompt_tokens``: the server's ``usage.prompt_tokens``, else the prompt's own count.

A request fails on an HTTP error status (the error names the status, never the body), a connection failure (one
fixed message), a malformed stream, or a stream without text; it times out after ``request_timeout_s``; a request
still in flight when the point is stopped is recorded with the error ``cancelled``.

The generator measures its own cost (:class:`~common.protocol.load.GeneratorOverhead`): the lag of each send behind
its schedule, the process's CPU time over the point, and the mean time spent handling one streamed line.

What keeps the generator out of its own measurements: the request body is serialized before the clock starts; lines
are split from the bytes of each network read, stamped once per read before any parsing; responses are read to
their end, so that connections stay open for the next request; each worker (or open-loop slot) has a lane of its
own, a connection pool of one connection (:class:`LaneTransport`), because httpx's shared pool does work in
proportion to the square of the concurrency on every request; httpx's HTTP modules and the TLS context are made
before the first request; and, as in ``vllm bench serve``, the garbage collector's heap is frozen for the point.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import importlib
import json
import random
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from agent_runtime.egress import CONNECTION_FAILED
from agent_runtime.load.arrivals import ArrivalSchedule, arrival_times
from agent_runtime.runtimes.base import RequestError
from agent_runtime.runtimes.openai_runtime import read_chunk
from common.loadmetrics import percentile_sorted
from common.protocol.load import GeneratorOverhead, LoadPointRun, LoadSpec, RequestRecord

__all__ = [
    "CANCELLED",
    "CHUNK_COUNT_NOTE",
    "LANE",
    "NO_TEXT",
    "LaneTransport",
    "LoadPrompt",
    "LoadTarget",
    "client_limits",
    "run_point",
]

#: Error of a request still in flight when the point was stopped.
CANCELLED = "cancelled"
#: Error of a stream that ended without any text.
NO_TEXT = "the endpoint streamed no text"
#: Note of a point where some request's output tokens were counted as chunks (no usage from the endpoint).
CHUNK_COUNT_NOTE = "the endpoint sent no usage for some requests: their output_tokens count chunks with text"
#: Request extension naming the lane (:class:`LaneTransport`) a request goes through.
LANE = "ruckus_lane"
#: Modules httpx imports at its first request (its HTTP/1.1 machinery and the event loop backend): most of a second
#: on a busy host, which would fall inside the first request's TTFT and stall every request behind it.
_HTTP_STACK = ("h11", "httpcore._async.connection_pool", "httpcore._backends.auto", "httpcore._backends.anyio",
               "anyio._backends._asyncio")  # fmt: skip
#: How often a running point asks ``should_stop`` while requests are in flight, seconds.
_STOP_POLL_S = 0.05


@dataclass
class LoadPrompt:
    """One prompt of a sweep and the tokens to generate for it.

    Attributes:
        text: The prompt as plain text (completions endpoints), or None.
        messages: The prompt as chat messages (chat endpoints), or None.
        prompt_tokens: Its length in tokens where known (the server's usage wins).
        output_tokens: Tokens to generate (``max_tokens``).
    """

    text: str | None
    messages: list[dict] | None
    prompt_tokens: int | None
    output_tokens: int


@dataclass
class LoadTarget:
    """Where a sweep's requests go and how each is built.

    Attributes:
        url: The endpoint URL (``.../chat/completions`` or ``.../completions``).
        headers: Headers of every request (authorization).
        build_body: The JSON body of one request (streaming, with usage) for a prompt.
    """

    url: str
    headers: dict[str, str]
    build_body: Callable[[LoadPrompt], dict]


def client_limits(max_in_flight: int | None) -> httpx.Limits:
    """Connection limits for a point with at most ``max_in_flight`` requests in flight (None: no limit).

    Every request in flight needs its own connection (HTTP/1.1 streams one response per connection): a pool smaller
    than the concurrency would make requests queue inside the client, unseen, and late. These are for a plain pooled
    client; one whose innermost transport is a :class:`LaneTransport` needs none (each lane holds one connection).

    Args:
        max_in_flight: The point's concurrency or ``max_concurrency``; None for an uncapped open-loop point.

    Returns:
        The limits, to give ``httpx.AsyncClient(limits=...)``.
    """
    if max_in_flight is None:
        return httpx.Limits(max_connections=None, max_keepalive_connections=None)
    return httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)


class LaneTransport(httpx.AsyncBaseTransport):
    """Connections in lanes: each lane its own small connection pool, so that the cost of a request stays flat.

    httpx's connection pool checks every connection it holds on every request and every response it releases (a
    list of its idle connections per connection, a ``poll`` of each idle socket): at 64 connections and more that
    work grows with the square of the concurrency and, on a small host, delays the very chunks being timed. The
    generator sends each request on a lane (the closed loop's worker, or a free slot of the open loop) named by the
    request extension :data:`LANE`; this transport gives every lane a pool of its own, which holds one connection
    since a lane carries one request at a time. A request without a lane goes through lane ``None``, an ordinary
    pool. Use it as the innermost transport (e.g. the ``inner`` transport of the agent's pinned client).

    Args:
        factory: Makes the pool of a new lane (default: an ``httpx.AsyncHTTPTransport`` sharing one TLS context with
            the other lanes: building a context reads the CA bundle, a tenth of a second of CPU that would stall
            the event loop, and every request in flight with it, at each new lane).
    """

    def __init__(self, factory: Callable[[], httpx.AsyncBaseTransport] | None = None) -> None:
        self._factory = factory or self._default_pool
        # Built now, with the client, not at the first request: it would stall that request and all behind it.
        _import_http_stack()
        self._tls = ssl.create_default_context() if factory is None else None
        self._lanes: dict[object, httpx.AsyncBaseTransport] = {}

    def _default_pool(self) -> httpx.AsyncBaseTransport:
        """A lane's pool: no limits (a lane holds one request at a time), the shared TLS context."""
        return httpx.AsyncHTTPTransport(verify=self._tls or True)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request on its lane's pool.

        Args:
            request: The request; its extension :data:`LANE` names the lane.

        Returns:
            The response.
        """
        lane = request.extensions.get(LANE)
        pool = self._lanes.get(lane)
        if pool is None:
            pool = self._lanes[lane] = self._factory()
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        """Close every lane's pool."""
        lanes, self._lanes = list(self._lanes.values()), {}
        for pool in lanes:
            await pool.aclose()


def _import_http_stack() -> None:
    """Import what httpx would import at its first request, before any point's clock starts."""
    for name in _HTTP_STACK:
        with contextlib.suppress(ImportError):  # another httpx version, other modules: the first request pays
            importlib.import_module(name)


class _Flight:
    """One request's progress, on the generator's clock (what is known of it if it is cancelled midway)."""

    __slots__ = ("chunks", "ended", "error", "first", "itl", "last_step", "last_text", "prompt", "scheduled",
                 "sent", "timed_out", "usage")  # fmt: skip

    def __init__(self, scheduled: float, prompt: LoadPrompt) -> None:
        self.scheduled = scheduled
        self.prompt = prompt
        self.sent: float | None = None
        self.first: float | None = None
        self.last_text: float | None = None
        self.last_step: float | None = None
        self.ended: float | None = None
        self.itl: list[float] = []
        self.chunks = 0
        self.usage: dict[str, Any] | None = None
        self.error: str | None = None
        self.timed_out = False

    def record(self, t0: float) -> tuple[RequestRecord, bool]:
        """The request as a record, times from ``t0``, and whether its output tokens were counted as chunks."""
        sent = self.sent if self.sent is not None else self.scheduled
        error = self.error
        if error is None and self.first is None:
            error = NO_TEXT
        usage = self.usage or {}
        output_tokens = _count(usage.get("completion_tokens"))
        counted = output_tokens is None
        if counted:
            output_tokens = self.chunks
        prompt_tokens = _count(usage.get("prompt_tokens"))
        if prompt_tokens is None:
            prompt_tokens = self.prompt.prompt_tokens
        # A success ends at its last step (the EOS chunk included); a failure keeps its time in flight until it failed.
        last = self.last_step if self.last_step is not None else self.last_text
        end = last if error is None else self.ended
        record = RequestRecord(
            scheduled_s=self.scheduled - t0,
            sent_s=sent - t0,
            ttft_s=self.first - sent if self.first is not None else None,
            e2e_s=end - sent if end is not None else None,
            itl_s=self.itl,
            prompt_tokens=prompt_tokens,
            output_tokens=output_tokens,
            error=error,
            timed_out=self.timed_out,
        )
        return record, counted and error is None


def _count(value: Any) -> int | None:
    """A token count from the endpoint's usage, or None when it is not a non-negative integer."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


class _LaneIds:
    """Free lane numbers, lowest first (so that a point reuses the lanes, and connections, of the one before)."""

    __slots__ = ("_free", "_next")

    def __init__(self) -> None:
        self._free: list[int] = []
        self._next = 0

    def take(self) -> int:
        """A free lane."""
        if self._free:
            return heapq.heappop(self._free)
        self._next += 1
        return self._next - 1

    def give(self, lane: int) -> None:
        """Free a lane."""
        heapq.heappush(self._free, lane)


class _Handling:
    """Time spent handling streamed chunks (split, parse and record), and how many, summed over a point."""

    __slots__ = ("lines", "seconds")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.lines = 0


async def _send(
    client: httpx.AsyncClient,
    target: LoadTarget,
    flight: _Flight,
    timeout_s: float,
    handling: _Handling | None,
    lane: int | None = None,
) -> None:
    """Send one request and stream its answer into ``flight`` (errors are recorded there, never raised).

    ``asyncio.CancelledError`` (the point was stopped) propagates; the flight then holds what arrived so far.
    """
    # The body is serialized before the clock starts: building it is the generator's work, not the endpoint's.
    content = json.dumps(target.build_body(flight.prompt)).encode()
    # An uncompressed stream is read as it comes off the connection, without httpx's decoders (a fifth of the
    # generator's CPU per chunk); a server that compresses anyway is decoded.
    headers = {**target.headers, "content-type": "application/json", "accept-encoding": "identity"}
    perf = time.perf_counter
    flight.sent = perf()
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream(
                "POST", target.url, content=content, headers=headers, extensions={LANE: lane}
            ) as resp:
                if not resp.is_success:
                    # The status alone: nothing the endpoint sent is repeated (redirects are never followed).
                    flight.error = f"endpoint answered HTTP {resp.status_code}"
                    return
                # Lines are split here from the bytes as they arrive (one timestamp per network read, before any
                # parsing), rather than by httpx's text and line decoders, which cost more per line than the rest.
                pending = b""
                done = False
                plain = resp.headers.get("content-encoding", "identity").strip().lower() in ("", "identity")
                async for data in resp.aiter_raw() if plain else resp.aiter_bytes():
                    now = perf()
                    lines = (pending + data).split(b"\n")
                    pending = lines.pop()
                    if not done:
                        done, chunks = _take_lines(lines, now, flight)
                        if handling is not None:
                            handling.seconds += perf() - now
                            handling.lines += chunks
                    # After [DONE], read on to the end of the response (it ends there): a response left unread
                    # closes its connection, and the next request would pay for a new one inside its TTFT.
    except asyncio.CancelledError:
        flight.error = CANCELLED  # the point was stopped while this request was in flight
        raise
    except TimeoutError:
        flight.timed_out = True
        flight.error = f"timed out after {timeout_s:g} s"
    except RequestError as exc:
        flight.error = str(exc)
    except httpx.HTTPError:
        # One message for every way the connection fails: nothing about the far side leaks into results.
        flight.error = CONNECTION_FAILED
    finally:
        flight.ended = perf()


def _take_lines(lines: list[bytes], now: float, flight: _Flight) -> tuple[bool, int]:
    """Record the SSE lines of one network read, all arrived at ``now``.

    Returns:
        Whether ``[DONE]`` was among them, and how many chunks (``data:`` lines) were handled.

    Raises:
        RequestError: A malformed chunk.
    """
    chunks = 0
    for raw in lines:
        if not raw.startswith(b"data:"):
            continue  # SSE comments, event names, keep-alives and the blank lines between events
        data = raw[5:].strip()
        if data == b"[DONE]":
            return True, chunks
        chunks += 1
        step = read_chunk(data.decode("utf-8", "replace"))
        if step.usage is not None:
            flight.usage = step.usage
        if step.has_choice:
            # From the first text on, every chunk with a choice is a generation step, text or not (a token the
            # detokenizer holds back, the final EOS step): vllm bench serve's ITL counts each of them.
            if flight.first is not None:
                flight.itl.append(now - flight.last_step)  # type: ignore[operator]
            elif step.text:
                flight.first = now
            flight.last_step = now
        if step.text:
            flight.last_text = now
            flight.chunks += 1
    return False, chunks


def prompt_order(prompts: Sequence[LoadPrompt], seed: int) -> Iterator[LoadPrompt]:
    """The prompts in a seeded shuffled order, cycling (the same seed, the same order)."""
    order = list(range(len(prompts)))
    random.Random(f"{seed}:prompts").shuffle(order)  # nosec B311 - a reproducible prompt order, not a secret
    while True:
        for i in order:
            yield prompts[i]


async def _warm_up(
    client: httpx.AsyncClient,
    target: LoadTarget,
    prompts: Iterator[LoadPrompt],
    count: int,
    width: int,
    timeout_s: float,
) -> None:
    """Send ``count`` requests, ``width`` at a time, and forget them (connections and caches are warm after)."""
    if count <= 0:
        return
    slots = asyncio.Semaphore(max(1, width))

    lanes = _LaneIds()

    async def one(prompt: LoadPrompt) -> None:
        async with slots:
            lane = lanes.take()
            try:
                await _send(client, target, _Flight(time.perf_counter(), prompt), timeout_s, None, lane)
            finally:
                lanes.give(lane)

    await asyncio.gather(*(one(next(prompts)) for _ in range(count)))


async def _watch_stop(should_stop: Callable[[], bool], stopped: asyncio.Event) -> None:
    """Set ``stopped`` as soon as ``should_stop()`` says so (polled while requests are in flight)."""
    while not stopped.is_set():
        if should_stop():
            stopped.set()
            return
        await asyncio.sleep(_STOP_POLL_S)


async def _closed_loop(
    client: httpx.AsyncClient,
    target: LoadTarget,
    prompts: Iterator[LoadPrompt],
    flights: list[_Flight],
    *,
    workers: int,
    count: int | None,
    until: float | None,
    timeout_s: float,
    handling: _Handling,
    stopped: asyncio.Event,
) -> None:
    """``workers`` workers, each sending its next request when its previous one ends."""
    remaining = [count]

    async def worker(lane: int) -> None:
        perf = time.perf_counter
        while not stopped.is_set():
            now = perf()
            if until is not None and now >= until:
                return
            if remaining[0] is not None:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            flight = _Flight(now, next(prompts))  # scheduled: the moment its slot freed
            flights.append(flight)
            await _send(client, target, flight, timeout_s, handling, lane)

    await asyncio.gather(*(worker(lane) for lane in range(workers)))


async def _open_loop(
    client: httpx.AsyncClient,
    target: LoadTarget,
    prompts: Iterator[LoadPrompt],
    flights: list[_Flight],
    *,
    schedule: Iterator[float],
    t0: float,
    until: float | None,
    cap: int | None,
    timeout_s: float,
    handling: _Handling,
    stopped: asyncio.Event,
) -> None:
    """Send on the schedule (seconds from ``t0``), at most ``cap`` in flight; wait for every request sent."""
    slots = asyncio.Semaphore(cap) if cap is not None else None
    pending: set[asyncio.Task[None]] = set()
    perf = time.perf_counter

    lanes = _LaneIds()

    async def one(flight: _Flight) -> None:
        lane = lanes.take()
        try:
            await _send(client, target, flight, timeout_s, handling, lane)
        finally:
            lanes.give(lane)
            if slots is not None:
                slots.release()

    try:
        for offset in schedule:
            due = t0 + offset
            if until is not None and due >= until:
                break
            delay = due - perf()
            if delay > 0:
                await asyncio.sleep(delay)
            if stopped.is_set():
                break
            if slots is not None:
                # Waiting for a free slot delays the send past its schedule: that is send lag, as in vllm bench serve.
                await slots.acquire()
            flight = _Flight(due, next(prompts))
            flights.append(flight)
            task = asyncio.create_task(one(flight))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
    except asyncio.CancelledError:
        # Stopped: the requests in flight are this loop's own tasks, not children of what it was awaiting.
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise


async def run_point(
    client: httpx.AsyncClient,
    target: LoadTarget,
    prompts: Sequence[LoadPrompt],
    *,
    index: int,
    spec: LoadSpec,
    value: int | float | str,
    should_stop: Callable[[], bool] = lambda: False,
) -> LoadPointRun:
    """Run one load point and return every measured request's raw timings.

    Args:
        client: The HTTP client, reused across requests and points. Best with a :class:`LaneTransport` as its
            innermost transport (each request goes out on its lane: see the module docstring); else its connection
            limits sized to the point (:func:`client_limits`). Its own timeouts no shorter than
            ``spec.request_timeout_s``.
        target: Where requests go and how each is built.
        prompts: The sweep's prompts (taken in a seeded shuffled order, cycling).
        index: The point's position in the sweep.
        spec: The sweep (arrival, burstiness, max_concurrency, num_requests or duration_s, warmup_requests, seed,
            request_timeout_s).
        value: This point's concurrency (closed loop) or request rate (open loop, requests/s or ``"inf"``).
        should_stop: Asked between requests and while requests are in flight; once it says so, no request is
            sent and those in flight are cancelled (recorded with the error ``cancelled``).

    Returns:
        The point: its requests in send order (warm-up excluded), duration, overhead and notes.

    Raises:
        ValueError: No prompts, or a ``value`` that does not fit the sweep's mode.
    """
    if not prompts:
        raise ValueError("prompts: a load point needs at least one prompt")
    closed = spec.mode == "concurrency"
    if closed and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"concurrency: a closed-loop point needs a whole number of requests >= 1, got {value!r}")
    _import_http_stack()
    order = prompt_order(prompts, spec.seed)
    timeout_s = spec.request_timeout_s
    width = int(value) if closed else (spec.max_concurrency or spec.warmup_requests)
    await _warm_up(client, target, order, spec.warmup_requests, width, timeout_s)

    flights: list[_Flight] = []
    handling = _Handling()
    stopped = asyncio.Event()
    if should_stop():
        stopped.set()
    # As vllm bench serve does (freeze_gc_heap): what exists now is set aside from garbage collection for the point,
    # so that a full collection of the process's older objects never stalls the chunks being timed.
    gc.collect()
    gc.freeze()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    until = t0 + spec.duration_s if spec.duration_s is not None else None
    if closed:
        workers = int(value) if spec.num_requests is None else min(int(value), spec.num_requests)
        body = _closed_loop(client, target, order, flights, workers=workers, count=spec.num_requests, until=until,
                            timeout_s=timeout_s, handling=handling, stopped=stopped)  # fmt: skip
    else:
        if spec.num_requests is not None:
            schedule: Iterator[float] = iter(arrival_times(spec.num_requests, value, spec.arrival, spec.burstiness,
                                                           spec.seed))  # fmt: skip
        else:
            schedule = iter(ArrivalSchedule(value, spec.arrival, spec.burstiness, spec.seed))
        body = _open_loop(
            client, target, order, flights, schedule=schedule, t0=t0, until=until,
            cap=spec.max_concurrency, timeout_s=timeout_s, handling=handling, stopped=stopped,
        )  # fmt: skip
    run = asyncio.ensure_future(body)
    watcher = asyncio.ensure_future(_watch_stop(should_stop, stopped))
    stop_wait = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({run, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            # Stopped: cancel what is in flight (each request's task is cancelled with its parent gather).
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        else:
            run.result()  # a bug in the generator itself surfaces here, not as silently missing requests
    finally:
        stopped.set()
        for task in (watcher, stop_wait):
            task.cancel()
        await asyncio.gather(watcher, stop_wait, return_exceptions=True)
        gc.unfreeze()
    cpu_s = time.process_time() - cpu0
    return _point(flights, t0, index=index, spec=spec, value=value, cpu_s=cpu_s, handling=handling)


def _point(
    flights: list[_Flight],
    t0: float,
    *,
    index: int,
    spec: LoadSpec,
    value: int | float | str,
    cpu_s: float,
    handling: _Handling,
) -> LoadPointRun:
    """The point's record from its requests' flights."""
    records: list[RequestRecord] = []
    counted = False
    first_send: float | None = None
    last_end: float | None = None
    for flight in sorted(flights, key=lambda f: f.sent if f.sent is not None else f.scheduled):
        if flight.ended is None:
            # Never finished: the point was stopped while it was in flight (or before it was sent).
            flight.error = flight.error or CANCELLED
            flight.ended = time.perf_counter() if flight.sent is not None else None
        record, by_chunks = flight.record(t0)
        counted = counted or by_chunks
        records.append(record)
        if flight.sent is not None:
            first_send = flight.sent if first_send is None else min(first_send, flight.sent)
            end = flight.ended
            if record.error is None and record.e2e_s is not None:
                end = flight.sent + record.e2e_s
            if end is not None:
                last_end = end if last_end is None else max(last_end, end)
    lags = sorted(max(0.0, r.sent_s - r.scheduled_s) for r in records)
    overhead = GeneratorOverhead(
        send_lag_p50_s=percentile_sorted(lags, 50) if lags else None,
        send_lag_p99_s=percentile_sorted(lags, 99) if lags else None,
        send_lag_max_s=lags[-1] if lags else None,
        cpu_s=cpu_s,
        chunk_handling_s=handling.seconds / handling.lines if handling.lines else None,
    )
    closed = spec.mode == "concurrency"
    return LoadPointRun(
        index=index,
        concurrency=int(value) if closed else None,
        request_rate=None if closed else value,  # type: ignore[arg-type]  # a rate or "inf", checked by the model
        duration_s=max(0.0, last_end - first_send) if first_send is not None and last_end is not None else 0.0,
        requests=records,
        warmup_requests=spec.warmup_requests,
        overhead=overhead,
        notes=[CHUNK_COUNT_NOTE] if counted else [],
    )
