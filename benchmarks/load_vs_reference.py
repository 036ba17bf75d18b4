"""RUCKUS's load generator next to ``vllm bench serve`` (and AIPerf) on one server: same prompts, same load.

For each load point (closed-loop concurrency levels and a Poisson request rate), the script runs the reference
client and RUCKUS's generator (:func:`agent_runtime.load.generator.run_point`, figures by
:func:`common.loadmetrics.point_figures`) against the same OpenAI-compatible ``/v1/completions`` endpoint, with the
same prompt texts in the same order, the same ``max_tokens`` and ``ignore_eos`` (so every request of either client
generates exactly as many tokens), greedy decoding and the same number of requests.

Order per point, to spread the host's drift over both clients: ``vllm bench serve``, RUCKUS, ``vllm bench serve``
again on even points; RUCKUS, ``vllm bench serve``, ``vllm bench serve`` on odd ones. The two reference runs give
the reference's own run-to-run spread at that point (the Poisson point's second run draws another schedule: another
seed), and RUCKUS is judged against their mean with a tolerance that grows with that spread:

    |RUCKUS - reference mean| <= max(FLOOR[figure] * reference mean, SPREAD_FACTOR * |run 1 - run 2|, ABS_FLOOR)

where ``ABS_FLOOR`` applies to per-request latencies only (see the constants for why each number). The script prints
a Markdown table per point and figure (RUCKUS, both reference runs, the difference, the tolerance, ok) and exits 1
when any figure is out of tolerance. With ``--aiperf`` it runs AIPerf (``.venv-aiperf``) once per point as well
and prints its figures beside them (informative: it is not judged).

Usage (let the script start vLLM's CPU build with the packaged SmolLM2, ~2 minutes, then ~5 minutes of load)::

    .venv/bin/python benchmarks/load_vs_reference.py --start

or against a running server (``--tokenizer``: the model directory, for the reference client's token counts)::

    .venv/bin/python benchmarks/load_vs_reference.py --url http://127.0.0.1:8000 --tokenizer MODEL_DIR
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess  # nosec B404  # starts the reference clients by argument list
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# prompt_order: the order the generator takes prompts in, so the reference clients get them in that order too.
from agent_runtime.load.generator import LoadPrompt, LoadTarget, client_limits, prompt_order, run_point  # noqa: E402
from agent_runtime.tasks import make_task  # noqa: E402
from common.loadmetrics import point_figures  # noqa: E402
from common.protocol.load import LoadSpec, PromptSpec  # noqa: E402

LAUNCHER = REPO / "benchmarks" / "engines" / "vllm_serve.py"
AIPERF = REPO / ".venv-aiperf" / "bin" / "aiperf"
SERVED_NAME = "smollm2"

#: Figures compared: (label, key in the flat figures, kind). Kinds pick the tolerance floor.
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("request throughput (req/s)", "request_throughput", "throughput"),
    ("output throughput (tok/s)", "output_throughput", "throughput"),
    ("TTFT mean (ms)", "ttft_mean", "latency"),
    ("TTFT median (ms)", "ttft_median", "latency"),
    ("TTFT p99 (ms)", "ttft_p99", "tail"),
    ("TPOT mean (ms)", "tpot_mean", "token"),
    ("TPOT median (ms)", "tpot_median", "token"),
    ("TPOT p99 (ms)", "tpot_p99", "tail_token"),
    ("ITL mean (ms)", "itl_mean", "token"),
    ("ITL median (ms)", "itl_median", "token"),
    ("ITL p99 (ms)", "itl_p99", "tail_token"),
    ("e2e mean (ms)", "e2e_mean", "latency"),
    ("e2e median (ms)", "e2e_median", "latency"),
    ("e2e p99 (ms)", "e2e_p99", "tail"),
)
#: Relative floor of the tolerance per kind of figure. On this 2-core host (vLLM's engine and both clients share
#: the cores) the reference's own run-to-run spread at the same point was up to ~8% on means and medians and ~20% on
#: p99 of 16-32 requests (one request's worth of the tail): the floors sit at about that spread, so a figure that
#: agrees with the reference as well as the reference agrees with itself passes, and a definition that is off (a
#: token too many in TPOT: ~3% at 32 tokens is NOT caught by this; the unit tests of common.loadmetrics catch that,
#: against a port of calculate_metrics) or a generator that distorts the load (20%+) fails.
FLOOR = {"throughput": 0.10, "latency": 0.10, "token": 0.10, "tail": 0.25, "tail_token": 0.25}
#: The tolerance is at least this many times the reference's own run-to-run difference at that point.
SPREAD_FACTOR = 2.0
#: Per-request latencies (TTFT, e2e): an absolute allowance under one decode step, for the HTTP client's own fixed
#: part (connection reuse, parsing) that differs between two clients (as tests/engines/test_vllm_server.py allows).
ABS_FLOOR_S = 0.03


@dataclass(frozen=True)
class Point:
    """One load point of the comparison.

    Attributes:
        concurrency: Closed-loop concurrency (None for an open-loop point).
        rate: Open-loop Poisson rate, requests/s (None for a closed-loop point).
    """

    concurrency: int | None = None
    rate: float | None = None

    @property
    def label(self) -> str:
        """``concurrency 4`` or ``Poisson 2 req/s``."""
        return f"concurrency {self.concurrency}" if self.concurrency is not None else f"Poisson {self.rate:g} req/s"


def parse_points(text: str) -> list[Point]:
    """``c1,c2,c4,r1.5`` -> points (``cN``: concurrency N; ``rX``: Poisson at X requests/s).

    Args:
        text: Comma-separated points.

    Returns:
        The points, in order.

    Raises:
        argparse.ArgumentTypeError: A malformed point.
    """
    points: list[Point] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        try:
            if item.startswith("c") and int(item[1:]) >= 1:
                points.append(Point(concurrency=int(item[1:])))
                continue
            if item.startswith("r") and 0 < float(item[1:]) < math.inf:
                points.append(Point(rate=float(item[1:])))
                continue
        except ValueError:
            pass
        raise argparse.ArgumentTypeError(f"--points: {raw!r} is neither cN (concurrency) nor rX (requests/s)")
    return points


# -- prompts -------------------------------------------------------------------------------------------------------


def write_prompts(work: Path, count: int, doc_chars: int, seed: int) -> tuple[list[str], Path]:
    """The packaged Wikipedia articles as completion prompts, and the JSONL file the reference clients read.

    RUCKUS's generator takes a point's prompts in a seeded shuffled order; the file lists them in that order, and
    the reference clients read it unshuffled, so request ``i`` of every client carries the same prompt.

    Args:
        work: Working directory.
        count: Number of prompts (one per request of a point).
        doc_chars: Longest article text per prompt.
        seed: The sweep's seed (the generator's prompt order).

    Returns:
        The prompt texts (as the generator is given them) and the JSONL file (``{"prompt": ...}`` per line, in the
        order the generator sends them).
    """
    task = make_task("wikipedia_summarization", {"num_samples": count, "max_document_chars": doc_chars},
                     data_dir=work)
    prompts = [task.prompt_text(s) for s in task.load_samples()][:count]
    if len(prompts) < count:
        raise SystemExit(f"the packaged articles gave {len(prompts)} prompts, {count} needed")
    order = prompt_order([LoadPrompt(p, None, None, 1) for p in prompts], seed)
    sent = [next(order).text for _ in prompts]
    path = work / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in sent))
    return prompts, path


def _ms(value: float | None) -> float | None:
    """Seconds -> milliseconds (None stays None)."""
    return None if value is None else value * 1e3


# -- RUCKUS --------------------------------------------------------------------------------------------------------


def completion_body(args: argparse.Namespace) -> Any:
    """The request body RUCKUS sends: what ``vllm bench serve --backend openai`` sends for a completion.

    (``async_request_openai_completions``: model, prompt, ``max_tokens``, streaming with usage; ``--ignore-eos`` and
    ``--temperature`` add ``ignore_eos`` and ``temperature``.)
    """

    def build(prompt: LoadPrompt) -> dict[str, Any]:
        return {"model": args.model, "prompt": prompt.text, "max_tokens": prompt.output_tokens, "stream": True,
                "stream_options": {"include_usage": True}, "ignore_eos": True, "temperature": 0.0,
                "repetition_penalty": 1.0}

    return build


def ruckus_figures(figures: dict[str, Any]) -> dict[str, float | None]:
    """``point_figures`` -> the flat figures of the table (latencies in ms)."""
    flat: dict[str, float | None] = {
        "request_throughput": figures["request_throughput"], "output_throughput": figures["output_throughput"],
        "completed": figures["completed"], "duration_s": figures["duration_s"],
        "total_output_tokens": figures["total_output_tokens"],
    }
    for name in ("ttft", "tpot", "itl", "e2e"):
        dist = figures[f"{name}_s"] or {}
        for stat in ("mean", "median", "p99"):
            flat[f"{name}_{stat}"] = _ms(dist.get(stat))
    return flat


async def _ruckus_point(args: argparse.Namespace, url: str, prompts: list[str], point: Point, index: int
                        ) -> tuple[dict[str, float | None], dict[str, Any]]:
    """One point of RUCKUS's generator; the flat figures and the generator's overhead."""
    spec = LoadSpec(
        concurrency=[point.concurrency] if point.concurrency is not None else None,
        request_rate=[point.rate] if point.rate is not None else None,
        num_requests=len(prompts), seed=args.seed,
        prompts=PromptSpec(output_tokens=args.max_tokens, ignore_eos=True),
    )
    target = LoadTarget(url=f"{url}/v1/completions", headers={}, build_body=completion_body(args))
    load_prompts = [LoadPrompt(text=p, messages=None, prompt_tokens=None, output_tokens=args.max_tokens)
                    for p in prompts]
    value = point.concurrency if point.concurrency is not None else point.rate
    limits = client_limits(point.concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
        run = await run_point(client, target, load_prompts, index=index, spec=spec, value=value)
    return ruckus_figures(point_figures(run, None)), run.overhead.model_dump()


def ruckus_point(args: argparse.Namespace, url: str, prompts: list[str], point: Point, index: int
                 ) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Run one point with RUCKUS's generator (its own event loop, as the agent runs a sweep)."""
    return asyncio.run(_ruckus_point(args, url, prompts, point, index))


# -- vllm bench serve ----------------------------------------------------------------------------------------------


def bench_figures(data: dict[str, Any]) -> dict[str, float | None]:
    """``vllm bench serve``'s saved result -> the flat figures of the table (it reports latencies in ms)."""
    flat: dict[str, float | None] = {
        "request_throughput": data["request_throughput"], "output_throughput": data["output_throughput"],
        "completed": data["completed"], "duration_s": data["duration"],
        "total_output_tokens": data["total_output_tokens"],
    }
    for name, theirs in (("ttft", "ttft"), ("tpot", "tpot"), ("itl", "itl"), ("e2e", "e2el")):
        for stat, key in (("mean", f"mean_{theirs}_ms"), ("median", f"median_{theirs}_ms"),
                          ("p99", f"p99_{theirs}_ms")):
            flat[f"{name}_{stat}"] = data.get(key)
    return flat


def bench_point(args: argparse.Namespace, url: str, tokenizer: Path, dataset: Path, count: int, point: Point,
                work: Path, name: str, seed: int) -> dict[str, float | None]:
    """Run one point with ``vllm bench serve`` and read its saved result."""
    command = [
        args.vllm_python, str(LAUNCHER), "bench", "serve", "--backend", "openai", "--base-url", url,
        "--endpoint", "/v1/completions", "--model", args.model, "--tokenizer", str(tokenizer),
        "--dataset-name", "custom", "--dataset-path", str(dataset), "--skip-chat-template", "--disable-shuffle",
        "--custom-output-len", str(args.max_tokens), "--ignore-eos", "--temperature", "0",
        "--num-prompts", str(count), "--seed", str(seed), "--disable-tqdm",
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99",
        "--save-result", "--result-dir", str(work), "--result-filename", f"{name}.json",
    ]
    if point.concurrency is not None:
        command += ["--request-rate", "inf", "--max-concurrency", str(point.concurrency)]
    else:
        command += ["--request-rate", f"{point.rate:g}", "--burstiness", "1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_TARGET_DEVICE": "cpu"}
    run = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False, env=env)  # nosec B603
    (work / f"{name}.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        raise SystemExit(f"vllm bench serve failed ({run.returncode}):\n{(run.stdout + run.stderr)[-3000:]}")
    data = json.loads((work / f"{name}.json").read_text())
    if data["completed"] != count:
        raise SystemExit(f"vllm bench serve completed {data['completed']} of {count} requests; see {work / name}.log")
    return bench_figures(data)


# -- AIPerf --------------------------------------------------------------------------------------------------------


def aiperf_figures(data: dict[str, Any]) -> dict[str, float | None]:
    """AIPerf's ``profile_export_aiperf.json`` -> the flat figures (it reports latencies in ms)."""

    def stat(metric: str, key: str) -> float | None:
        value = (data.get(metric) or {}).get(key)
        return float(value) if value is not None else None

    flat: dict[str, float | None] = {
        "request_throughput": stat("request_throughput", "avg"),
        "output_throughput": stat("output_token_throughput", "avg"),
        "completed": stat("request_count", "avg"),
    }
    for name, theirs in (("ttft", "time_to_first_token"), ("tpot", "inter_token_latency"),
                         ("itl", "inter_chunk_latency"), ("e2e", "request_latency")):
        for ours, key in (("mean", "avg"), ("median", "p50"), ("p99", "p99")):
            flat[f"{name}_{ours}"] = stat(theirs, key)
    return flat


def aiperf_point(args: argparse.Namespace, url: str, tokenizer: Path, dataset: Path, point: Point,
                 work: Path, name: str) -> dict[str, float | None]:
    """Run one point with AIPerf (the prompts of ``dataset``, in its order) and read its JSON export."""
    prompts = [json.loads(line)["prompt"] for line in dataset.read_text().splitlines()]
    own = work / "aiperf-prompts.jsonl"
    own.write_text("".join(json.dumps({"text": p}) + "\n" for p in prompts))
    out = work / name
    command = [
        str(args.aiperf), "profile", "--model", args.model, "--url", url, "--endpoint-type", "completions",
        "--streaming", "--tokenizer", str(tokenizer), "--input-file", str(own), "--use-server-token-count",
        "--use-legacy-max-tokens",
        "--custom-dataset-type", "single_turn", "--dataset-sampling-strategy", "sequential",
        "--request-count", str(len(prompts)), "--random-seed", str(args.seed),
        "--extra-inputs", "ignore_eos:true", "--extra-inputs", "temperature:0",
        "--extra-inputs", f"max_tokens:{args.max_tokens}", "--output-artifact-dir", str(out),
        "--ui-type", "none", "--workers-max", "1",
    ]
    if point.concurrency is not None:
        command += ["--concurrency", str(point.concurrency)]
    else:
        command += ["--request-rate", f"{point.rate:g}", "--arrival-pattern", "poisson"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False, env=env)  # nosec B603
    (work / f"{name}.log").write_text(run.stdout + run.stderr)
    export = next(iter(sorted(out.rglob("profile_export_aiperf.json"))), None)
    if run.returncode != 0 or export is None:
        raise RuntimeError(f"aiperf failed ({run.returncode}): {(run.stdout + run.stderr)[-2000:]}")
    return aiperf_figures(json.loads(export.read_text()))


# -- the comparison ------------------------------------------------------------------------------------------------


@dataclass
class PointResult:
    """Every client's figures at one point.

    Attributes:
        point: The load point.
        ruckus: RUCKUS's flat figures.
        bench: ``vllm bench serve``'s flat figures, one dict per run (two).
        overhead: RUCKUS's generator overhead at the point.
        aiperf: AIPerf's flat figures (None when not run); ``aiperf_error`` says why it failed.
        order: The order the clients ran in.
    """

    point: Point
    ruckus: dict[str, float | None]
    bench: list[dict[str, float | None]]
    overhead: dict[str, Any]
    aiperf: dict[str, float | None] | None = None
    aiperf_error: str | None = None
    order: list[str] = field(default_factory=list)


def tolerance(kind: str, reference: float, runs: Sequence[float]) -> float:
    """The largest difference allowed from the reference mean (see the module docstring)."""
    allowed = max(FLOOR[kind] * abs(reference), SPREAD_FACTOR * (max(runs) - min(runs)))
    if kind in ("latency", "tail"):
        allowed = max(allowed, ABS_FLOOR_S * 1e3)
    return allowed


def judge(result: PointResult) -> list[dict[str, Any]]:
    """One row per figure: RUCKUS, the reference runs and mean, the difference, the tolerance, whether it holds."""
    rows = []
    for label, key, kind in FIGURES:
        runs = [b[key] for b in result.bench if b.get(key) is not None]
        ours = result.ruckus.get(key)
        if ours is None or not runs:
            rows.append({"label": label, "ruckus": ours, "runs": runs, "ok": False, "diff": None, "tol": None})
            continue
        reference = sum(runs) / len(runs)
        diff = ours - reference
        tol = tolerance(kind, reference, runs)
        rows.append({"label": label, "ruckus": ours, "runs": runs, "reference": reference, "diff": diff,
                     "rel": diff / reference if reference else math.nan, "tol": tol, "ok": abs(diff) <= tol,
                     "aiperf": (result.aiperf or {}).get(key)})
    return rows


def _num(value: float | None) -> str:
    """A figure with 4 significant digits (— for none)."""
    return "—" if value is None else f"{value:.4g}"


def table(results: list[PointResult], with_aiperf: bool) -> str:
    """The Markdown tables, one per point."""
    lines: list[str] = []
    for result in results:
        ovh = result.overhead
        lines.append(f"\n**{result.point.label}** (order: {', '.join(result.order)}; RUCKUS send lag p99 "
                     f"{_num(_ms(ovh.get('send_lag_p99_s')))} ms, generator CPU {_num(ovh.get('cpu_s'))} s)\n")
        head = "| figure | RUCKUS | vllm bench run 1 / run 2 | difference | tolerance | ok |"
        rule = "|---|---|---|---|---|---|"
        if with_aiperf:
            head, rule = head + " AIPerf |", rule + "---|"
        lines += [head, rule]
        for row in judge(result):
            runs = " / ".join(_num(r) for r in row["runs"])
            diff = "—" if row["diff"] is None else f"{row['diff']:+.4g} ({row['rel']:+.1%})"
            tol = "—" if row["tol"] is None else f"±{row['tol']:.4g}"
            ok = "yes" if row["ok"] else "NO"
            line = f"| {row['label']} | {_num(row['ruckus'])} | {runs} | {diff} | {tol} | {ok} |"
            if with_aiperf:
                line += f" {_num(row.get('aiperf')) if result.aiperf else (result.aiperf_error or '—')[:60]} |"
            lines.append(line)
    return "\n".join(lines)


@contextlib.contextmanager
def started_vllm(work: Path) -> Iterator[tuple[str, Path]]:
    """vLLM's CPU build serving the packaged SmolLM2 as the engine tests start it (tests/engines/conftest.py)."""
    import pytest  # the engine tests' server code signals a missing engine with pytest.skip

    from tests.engines.conftest import smollm2_hf_dir, vllm_server

    try:
        model_dir = smollm2_hf_dir()
        with vllm_server(work) as server:
            yield server.url, model_dir
    except pytest.skip.Exception as missing:
        raise SystemExit(f"cannot start vLLM: {missing}") from None


def warm_up(url: str, model: str, prompt: str, max_tokens: int, n: int = 4) -> None:
    """A few requests first: the first ones after vLLM starts are slower (allocation, warm caches)."""
    with httpx.Client(timeout=600) as client:
        for _ in range(n):
            client.post(f"{url}/v1/completions", json={"model": model, "prompt": prompt, "max_tokens": max_tokens,
                                                        "ignore_eos": True, "temperature": 0.0}).raise_for_status()


def compare(args: argparse.Namespace, url: str, tokenizer: Path, work: Path) -> list[PointResult]:
    """Run every point with every client, alternating the order from point to point."""
    prompts, dataset = write_prompts(work, args.requests, args.doc_chars, args.seed)
    warm_up(url, args.model, prompts[0], args.max_tokens)
    results: list[PointResult] = []
    for index, point in enumerate(args.points):
        started = time.monotonic()
        bench: list[dict[str, float | None]] = []
        order = ["vllm bench", "RUCKUS", "vllm bench"] if index % 2 == 0 else ["RUCKUS", "vllm bench", "vllm bench"]
        ruckus: dict[str, float | None] = {}
        overhead: dict[str, Any] = {}
        for step in order:
            if step == "RUCKUS":
                ruckus, overhead = ruckus_point(args, url, prompts, point, index)
            else:
                # The Poisson point's second reference run draws another schedule, so that the spread the tolerance
                # is built on includes what a different schedule (RUCKUS draws its own) does to the figures.
                seed = args.seed + (len(bench) if point.rate is not None else 0)
                bench.append(bench_point(args, url, tokenizer, dataset, len(prompts), point, work,
                                         f"bench-{index}-{len(bench)}", seed))
        result = PointResult(point, ruckus, bench, overhead, order=order)
        if args.aiperf:
            try:
                result.aiperf = aiperf_point(args, url, tokenizer, dataset, point, work, f"aiperf-{index}")
                result.order.append("AIPerf")
            except (RuntimeError, OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                result.aiperf_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        results.append(result)
        print(f"{point.label}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison, print the tables; 1 when a figure is out of tolerance."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="Root URL of a running vLLM server (default: --start one).")
    parser.add_argument("--start", action="store_true", help="Start vLLM's CPU build with the packaged SmolLM2.")
    parser.add_argument("--tokenizer", type=Path, help="Model directory for the reference clients (with --url).")
    parser.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"))
    parser.add_argument("--aiperf", nargs="?", const=AIPERF, default=None, type=Path,
                        help=f"Also run AIPerf (default executable: {AIPERF}).")
    parser.add_argument("--model", default=SERVED_NAME, help="Served model name.")
    parser.add_argument("--points", type=parse_points, default=parse_points("c1,c2,c4,r2"),
                        help="Load points: cN = concurrency N, rX = Poisson at X requests/s (default c1,c2,c4,r2).")
    parser.add_argument("--requests", type=int, default=16, help="Requests per point (distinct prompts).")
    parser.add_argument("--max-tokens", type=int, default=32, help="Output tokens per request (ignore_eos).")
    parser.add_argument("--doc-chars", type=int, default=600, help="Longest article text per prompt.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Also write every figure to this JSON file.")
    args = parser.parse_args(argv)
    # SIGTERM (a timeout, a CI stop) unwinds like Ctrl-C, so that a server started here is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.url and not args.start:
        parser.error("give --url of a running server, or --start")
    if args.aiperf is not None and not shutil.which(str(args.aiperf)):
        parser.error(f"--aiperf: {args.aiperf} is not an executable (python -m venv .venv-aiperf && "
                     ".venv-aiperf/bin/pip install aiperf)")
    with tempfile.TemporaryDirectory(prefix="ruckus-load-ref-") as tmp:
        work = Path(tmp)
        with contextlib.ExitStack() as stack:
            if args.start:
                url, tokenizer = stack.enter_context(started_vllm(work))
            else:
                if args.tokenizer is None:
                    parser.error("--tokenizer is needed with --url")
                url, tokenizer = args.url.rstrip("/"), args.tokenizer
            results = compare(args, url, tokenizer, work)
    print(f"vLLM CPU, SmolLM2-135M float32, /v1/completions, {args.requests} requests per point, "
          f"{args.max_tokens} output tokens each (ignore_eos), greedy.")
    print(table(results, args.aiperf is not None))
    rows = [(r.point.label, row) for r in results for row in judge(r)]
    bad = [f"{label}: {row['label']}" for label, row in rows if not row["ok"]]
    if args.json:
        args.json.write_text(json.dumps([{"point": r.point.label, "ruckus": r.ruckus, "bench": r.bench,
                                          "aiperf": r.aiperf, "overhead": r.overhead} for r in results], indent=1))
    if bad:
        print(f"\nOUT OF TOLERANCE ({len(bad)} of {len(rows)}): " + "; ".join(bad))
        return 1
    print(f"\nAll {len(rows)} figures within tolerance.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
