"""A deterministic stand-in for an OpenAI-compatible streaming endpoint, for the load generator's fidelity tests.

It runs in its own process (``python -m tests.agent.standin_endpoint``; :class:`StandinEndpoint` starts and stops it)
so that it never competes with the generator for the interpreter, and serves HTTP/1.1 with keep-alive from a raw
asyncio server (the standard library alone: nothing between the socket and the timings). For every request to
``/v1/chat/completions`` or ``/v1/completions`` it waits a known time to first token, then streams a known number of
tokens at a known inter-token latency, then (optionally) a final choice without text (the EOS step), a usage chunk
and ``[DONE]``. Chunks are due on an absolute schedule from the request's arrival (``arrival + ttft + k * itl``), so
a late chunk never delays the next.

The defaults (TTFT, ITL, EOS step) are the process's arguments; a request's body may override them, and more, in a
``standin`` object: ``{"ttft_s", "itl_s", "tokens", "eos_step_s", "usage", "role_chunk", "status", "drop_after",
"gzip", "id"}``. ``tokens`` defaults to the body's ``max_tokens``.

Every request is recorded on the server's clock, ``time.perf_counter()`` (CLOCK_MONOTONIC on Linux, the same clock
in every process, so the generator's and the stand-in's times are comparable): when its request line began to
arrive, when its body was complete, when each chunk was actually written to the socket, and on which connection (a
number, counting from 1). ``GET /_records``
returns (and forgets) them, so that a test compares what the generator measured with what was really sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import httpx

#: The repository root (the stand-in runs as ``python -m tests.agent.standin_endpoint`` from there).
ROOT = Path(__file__).resolve().parents[2]


class _Server:
    """The stand-in's HTTP handling and its records."""

    def __init__(self, ttft_s: float, itl_s: float, eos_step_s: float | None) -> None:
        self.ttft_s = ttft_s
        self.itl_s = itl_s
        self.eos_step_s = eos_step_s
        self.records: list[dict[str, Any]] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection: requests one after another (keep-alive) until the client closes it."""
        self.connections += 1
        connection = self.connections
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                started = time.perf_counter()
                method, path, _ = line.decode("latin-1").split(" ", 2)
                length = 0
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length) if length else b""
                arrived = time.perf_counter()
                if method == "GET" and path.startswith("/_records"):
                    payload = json.dumps(self.records).encode()
                    self.records = []
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
                    )
                    await writer.drain()
                    continue
                if not await self._complete(path, json.loads(body or b"{}"), started, arrived, writer, connection):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _complete(
        self,
        path: str,
        body: dict[str, Any],
        started: float,
        arrived: float,
        writer: asyncio.StreamWriter,
        connection: int,
    ) -> bool:
        """Stream one completion; False when the connection was dropped on purpose."""
        opts = body.get("standin") or {}
        ttft = float(opts.get("ttft_s", self.ttft_s))
        itl = float(opts.get("itl_s", self.itl_s))
        tokens = int(opts.get("tokens", body.get("max_tokens") or 16))
        eos_step = opts.get("eos_step_s", self.eos_step_s)
        record: dict[str, Any] = {
            "id": opts.get("id"),
            "started": started,
            "arrived": arrived,
            "sends": [],
            "due": [],
            "eos": None,
            "role": None,
            "connection": connection,
        }
        self.records.append(record)
        status = int(opts.get("status", 200))
        if status != 200:
            payload = b'{"error": {"message": "stand-in refusal: secret-ish detail"}}'
            writer.write(
                b"HTTP/1.1 %d Refused\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (status, len(payload), payload)
            )
            await writer.drain()
            return True
        chat = path.endswith("/chat/completions")
        stream = _Stream(writer, gzip=bool(opts.get("gzip")))
        if opts.get("role_chunk") and chat:
            record["role"] = time.perf_counter()
            stream.event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        stream.send(b": ping\n\n")  # an SSE comment (a keep-alive): clients skip it
        await writer.drain()
        drop_after = opts.get("drop_after")
        for k in range(tokens):
            if drop_after is not None and k >= int(drop_after):
                writer.transport.abort()  # the connection fails midway
                return False
            due = arrived + ttft + k * itl
            await _sleep_until(due)
            choice = (
                {"index": 0, "delta": {"content": f" t{k}"}, "finish_reason": None}
                if chat
                else {"index": 0, "text": f" t{k}", "finish_reason": None}
            )
            record["due"].append(due)
            record["sends"].append(time.perf_counter())
            stream.event({"choices": [choice]})
            await writer.drain()
        if eos_step is not None:
            await _sleep_until(arrived + ttft + (tokens - 1) * itl + float(eos_step))
            choice = (
                {"index": 0, "delta": {}, "finish_reason": "length"}
                if chat
                else {"index": 0, "text": "", "finish_reason": "length"}
            )
            record["eos"] = time.perf_counter()
            stream.event({"choices": [choice]})
        if opts.get("usage", True):
            stream.event(
                {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": tokens, "total_tokens": 7 + tokens}}
            )
        stream.send(b"data: [DONE]\n\n")
        stream.end()
        await writer.drain()
        return True


class _Stream:
    """A streamed response body: HTTP/1.1 chunks, each event flushed at once (gzip-compressed when asked)."""

    def __init__(self, writer: asyncio.StreamWriter, *, gzip: bool) -> None:
        self.writer = writer
        self.gzip = zlib.compressobj(wbits=31) if gzip else None
        encoding = b"Content-Encoding: gzip\r\n" if gzip else b""
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n%sTransfer-Encoding: chunked\r\n\r\n" % encoding
        )

    def send(self, data: bytes) -> None:
        """Write ``data`` as one chunk (compressed and flushed, so that it leaves now)."""
        if self.gzip is not None:
            data = self.gzip.compress(data) + self.gzip.flush(zlib.Z_SYNC_FLUSH)
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))

    def event(self, data: dict[str, Any]) -> None:
        """Write one SSE event."""
        self.send(b"data: " + json.dumps(data).encode() + b"\n\n")

    def end(self) -> None:
        """End the body (the compressed stream's trailer first)."""
        if self.gzip is not None:
            tail = self.gzip.flush(zlib.Z_FINISH)
            self.writer.write(b"%x\r\n%s\r\n" % (len(tail), tail))
        self.writer.write(b"0\r\n\r\n")


async def _sleep_until(due: float) -> None:
    """Sleep until ``due`` on the perf_counter clock (asyncio's timers wake up to a millisecond late)."""
    delay = due - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def _serve(port: int, ttft_s: float, itl_s: float, eos_step_s: float | None) -> None:
    """Listen on 127.0.0.1 and print the port once ready."""
    server = _Server(ttft_s, itl_s, eos_step_s)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", port, backlog=4096)
    print(f"PORT {listener.sockets[0].getsockname()[1]}", flush=True)
    async with listener:
        await listener.serve_forever()


class StandinEndpoint:
    """The stand-in endpoint in its own process, for a test's duration (a context manager).

    Args:
        ttft_s: Default time to first token, seconds.
        itl_s: Default inter-token latency, seconds.
        eos_step_s: Delay of the final choice without text after the last token (None: no such step).
    """

    def __init__(self, ttft_s: float = 0.05, itl_s: float = 0.005, eos_step_s: float | None = 0.002) -> None:
        args = [sys.executable, "-m", "tests.agent.standin_endpoint", "--ttft", str(ttft_s), "--itl", str(itl_s)]
        if eos_step_s is not None:
            args += ["--eos-step", str(eos_step_s)]
        self.process = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError(f"the stand-in endpoint did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def records(self) -> list[dict[str, Any]]:
        """Every request served since the last call, on the server's clock (and forget them)."""
        return httpx.get(f"http://127.0.0.1:{self.port}/_records", timeout=30).json()

    def close(self) -> None:
        """Stop the process."""
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> StandinEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    """Run the stand-in until terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft", type=float, default=0.05)
    parser.add_argument("--itl", type=float, default=0.005)
    parser.add_argument("--eos-step", type=float, default=None)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.ttft, args.itl, args.eos_step))


if __name__ == "__main__":
    main()
