"""A load sweep of two real runtimes on this host, with service level objectives: figures, max goodput and knee.

Each runtime serves the packaged SmolLM2 (converted to Hugging Face format) on loopback, one after the other (never
both at once: they would share the cores):

* ``vllm``: vLLM's CPU build (``.venv-vllm``; started as the engine tests start it, tests/engines/conftest.py);
* ``transformers``: ``transformers serve`` (``transformers[serving]``, in ``.venv``); ``--cb`` turns its continuous
  batching on (``--continuous-batching``: on this 2-core CPU host it was slower than without, 73 s against 28 s for
  one 16-token request under the same background load, and its paged cache took 6.7 GB).

RUCKUS's generator (:func:`agent_runtime.load.generator.run_point`) runs the same closed-loop concurrency sweep
against each one's ``/v1/completions`` (same prompts, same output length: ``ignore_eos`` for vLLM, ``min_new_tokens``
for transformers serve, which refuses fields it does not know), the figures come from
:func:`common.loadmetrics.point_figures` with the objectives, and :func:`common.saturation.summarize_sweep` picks
each cell's peak, max goodput and knee, as the server does for an experiment.

Usage::

    .venv/bin/python benchmarks/load_sweep_servers.py                       # both runtimes, c = 1,2,4,8
    .venv/bin/python benchmarks/load_sweep_servers.py --runtimes vllm --concurrency 1,2,4,8,16 --ttft-ms 1500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent_runtime.load.generator import LoadPrompt, LoadTarget, client_limits, run_point  # noqa: E402
from agent_runtime.tasks import make_task  # noqa: E402
from common.loadmetrics import early_stop_reason, point_figures  # noqa: E402
from common.protocol.load import LoadSpec, PromptSpec, ServiceLevelObjectives  # noqa: E402
from common.saturation import summarize_sweep  # noqa: E402

RUNTIMES = ("vllm", "transformers")


@contextlib.contextmanager
def started(runtime: str, work: Path, continuous_batching: bool) -> Iterator[tuple[str, str]]:
    """Start ``runtime`` with the packaged SmolLM2 (the engine tests' server code); yield its URL and model name."""
    import pytest  # the engine tests' server code signals a missing engine with pytest.skip

    from tests.engines.conftest import SERVED_NAME, serve, smollm2_hf_dir, vllm_server
    from tests.helpers import free_port

    try:
        if runtime == "vllm":
            with vllm_server(work) as server:
                yield server.url, SERVED_NAME
            return
        model_dir = smollm2_hf_dir()
        exe = Path(sys.executable).parent / "transformers"
        port = free_port()
        command = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
                   "--device", "cpu", "--log-level", "warning", str(model_dir)]
        if continuous_batching:
            command.insert(2, "--continuous-batching")
        env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        with serve(command, port, work / "transformers-serve.log", "/health", timeout_s=300, env=env) as server:
            # transformers serve answers only for the model it was started with, named by its path.
            yield server.url, str(model_dir)
    except pytest.skip.Exception as missing:
        raise SystemExit(f"cannot start {runtime}: {missing}") from None


def body_builder(runtime: str, model: str) -> Callable[[LoadPrompt], dict[str, Any]]:
    """The completion request of each runtime, generating exactly ``output_tokens`` tokens, greedily."""

    def vllm_body(prompt: LoadPrompt) -> dict[str, Any]:
        return {"model": model, "prompt": prompt.text, "max_tokens": prompt.output_tokens, "stream": True,
                "stream_options": {"include_usage": True}, "ignore_eos": True, "temperature": 0.0}

    def transformers_body(prompt: LoadPrompt) -> dict[str, Any]:
        # No ignore_eos there (unknown fields are refused with 422): a generation config whose min_new_tokens is
        # the output length keeps it from stopping early. It replaces the model's, so it is given in full.
        config = {"max_new_tokens": prompt.output_tokens, "min_new_tokens": prompt.output_tokens, "do_sample": False}
        return {"model": model, "prompt": prompt.text, "max_tokens": prompt.output_tokens, "stream": True,
                "temperature": 0.0, "generation_config": json.dumps(config)}

    return vllm_body if runtime == "vllm" else transformers_body


async def sweep(target: LoadTarget, prompts: list[LoadPrompt], spec: LoadSpec) -> tuple[list[dict], str | None]:
    """Run the spec's points in order (stopping early as an agent would); every point's figures."""
    figures: list[dict[str, Any]] = []
    for index, value in enumerate(spec.points()):
        async with httpx.AsyncClient(timeout=httpx.Timeout(spec.request_timeout_s),
                                     limits=client_limits(int(value))) as client:
            run = await run_point(client, target, prompts, index=index, spec=spec, value=value)
        figures.append(point_figures(run, spec.slo))
        print(f"  c={value}: {figures[-1]['completed']} done, {figures[-1]['output_throughput']:.1f} tok/s",
              file=sys.stderr, flush=True)
        reason = early_stop_reason(figures, spec.early_stop)
        if reason:
            return figures, reason
    return figures, None


def _ms(dist: dict[str, Any] | None, stat: str) -> str:
    """A distribution's statistic in milliseconds."""
    return "—" if not dist or dist.get(stat) is None else f"{dist[stat] * 1e3:.0f}"


def _load(summary: dict[str, Any] | None, *keys: str) -> str:
    """``c=4 (12.3 tok/s)`` for a summary point."""
    if not summary:
        return "none"
    extra = ", ".join(f"{k} {summary[k]:.3g}" for k in keys if summary.get(k) is not None)
    return f"c={summary['load']} ({extra})"


def report(runtime: str, figures: list[dict[str, Any]], stopped: str | None, slo: ServiceLevelObjectives) -> str:
    """One cell: a row per point, then peak, max goodput and knee."""
    pct = f"p{slo.percentile:g}"
    lines = [
        f"\n**{runtime}** (SLO at {pct}: TTFT ≤ {slo.ttft_ms:g} ms, TPOT ≤ {slo.tpot_ms:g} ms)\n",
        f"| concurrency | req/s | output tok/s | goodput req/s | TTFT {pct} ms | TPOT {pct} ms | e2e median ms | "
        "achieved concurrency | SLO met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    key = pct if pct in ("p90", "p95", "p99") else "p99"
    for f in figures:
        lines.append(
            f"| {f['concurrency']} | {f['request_throughput']:.2f} | {f['output_throughput']:.1f} | "
            f"{f['goodput']:.2f} | {_ms(f['ttft_s'], key)} | {_ms(f['tpot_s'], key)} | {_ms(f['e2e_s'], 'median')} | "
            f"{f['achieved_concurrency']:.2f} | {'yes' if f['slo_met'] else 'no'} |"
        )
    summary = summarize_sweep(figures, "concurrency")
    lines.append("")
    lines.append(f"peak: {_load(summary['peak'], 'output_throughput')}; "
                 f"max goodput: {_load(summary['max_goodput'], 'goodput', 'output_throughput')}; "
                 f"knee: {_load(summary['knee'], 'output_throughput', 'e2e_median_s')}"
                 + (f"; stopped early: {stopped}" if stopped else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Sweep each runtime in turn and print its cell."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help=f"Comma-separated, of {', '.join(RUNTIMES)}.")
    parser.add_argument("--concurrency", default="1,2,4,8", help="Concurrency levels (default 1,2,4,8).")
    parser.add_argument("--requests", type=int, default=16, help="Measured requests per point.")
    parser.add_argument("--warmup", type=int, default=2, help="Warm-up requests before each point.")
    parser.add_argument("--max-tokens", type=int, default=32, help="Output tokens per request.")
    parser.add_argument("--doc-chars", type=int, default=600, help="Longest article text per prompt.")
    parser.add_argument("--ttft-ms", type=float, default=1000.0, help="TTFT objective, ms.")
    parser.add_argument("--tpot-ms", type=float, default=100.0, help="TPOT objective, ms.")
    parser.add_argument("--percentile", type=float, default=90.0, help="Percentile the objectives are judged at.")
    parser.add_argument("--cb", action="store_true", help="transformers serve with continuous batching.")
    args = parser.parse_args(argv)
    # SIGTERM (a timeout, a CI stop) unwinds like Ctrl-C, so that the server started here is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    for runtime in runtimes:
        if runtime not in RUNTIMES:
            parser.error(f"--runtimes: unknown runtime {runtime!r} (choose from {', '.join(RUNTIMES)})")
    slo = ServiceLevelObjectives(ttft_ms=args.ttft_ms, tpot_ms=args.tpot_ms, percentile=args.percentile)
    spec = LoadSpec(concurrency=[int(c) for c in args.concurrency.split(",")], num_requests=args.requests,
                    warmup_requests=args.warmup, slo=slo,
                    prompts=PromptSpec(output_tokens=args.max_tokens, ignore_eos=True))
    cells: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ruckus-load-sweep-") as tmp:
        work = Path(tmp)
        task = make_task("wikipedia_summarization", {"num_samples": args.requests,
                                                     "max_document_chars": args.doc_chars}, data_dir=work)
        prompts = [LoadPrompt(task.prompt_text(s), None, None, args.max_tokens) for s in task.load_samples()]
        for runtime in runtimes:
            started_at = time.monotonic()
            print(f"{runtime}: starting", file=sys.stderr, flush=True)
            with started(runtime, work, args.cb) as (url, model):
                target = LoadTarget(url=f"{url}/v1/completions", headers={}, build_body=body_builder(runtime, model))
                figures, stopped = asyncio.run(sweep(target, prompts, spec))
            cells.append(report(runtime, figures, stopped, slo))
            print(f"{runtime}: {time.monotonic() - started_at:.0f} s", file=sys.stderr, flush=True)
    print(f"SmolLM2-135M float32 on CPU, /v1/completions, {args.requests} requests per point (+{args.warmup} warm-up), "
          f"{args.max_tokens} output tokens each, greedy.")
    print("\n".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
