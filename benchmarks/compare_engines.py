"""RUCKUS next to the reference tool on one inference server: the same prompts, the same load, side by side.

Runs a gray-box job (``vllm``, or ``llamacpp_server`` with ``--runtime``) through the agent's own engine (the
client's figures and the server's own over each run), then ``vllm bench serve`` on the same server with the same
prompt texts, the same output cap, greedy decoding and one request at a time, and prints per-request TTFT, TPOT, ITL
and e2e (mean, median, p99) for:

* **RUCKUS client**: the agent's figures over every warm request;
* **RUCKUS server-side**: the server's own figures over those requests (means: vLLM's histograms keep sums and
  counts; llama.cpp's counters give only the inter-token latency under the same definition);
* **vllm bench serve**: the reference client's figures over its requests (per-request TPOT as it defines it:
  ``(latency - ttft) / (output_len - 1)``), and the server's histograms over those.

Usage (a vLLM server already running, e.g. started with ``benchmarks/engines/vllm_serve.py``)::

    .venv/bin/python benchmarks/compare_engines.py --url http://127.0.0.1:8000 --tokenizer MODEL_DIR

or let the script start one with the packaged SmolLM2 (vLLM from ``.venv-vllm``; ``llama-server --metrics`` from
``.venv/bin``, both installed by ``make setup``)::

    .venv/bin/python benchmarks/compare_engines.py --start
    .venv/bin/python benchmarks/compare_engines.py --start --runtime llamacpp_server

Figures are printed, not judged: the test suite holds the agreement limits (tests/engines/test_vllm_server.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess  # nosec B404  # starts vLLM and its benchmark client by argument list
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent_runtime.engine import JobEngine  # noqa: E402
from agent_runtime.llamacpp_metrics import llamacpp_metrics_delta, parse_llamacpp_metrics  # noqa: E402
from agent_runtime.models import convert_packaged_smollm2  # noqa: E402
from agent_runtime.paths import packaged_smollm2_gguf  # noqa: E402
from agent_runtime.policy import AgentPolicy  # noqa: E402
from agent_runtime.settings import Settings  # noqa: E402
from agent_runtime.spool import Spool  # noqa: E402
from agent_runtime.tasks import make_task  # noqa: E402
from agent_runtime.vllm_metrics import parse_vllm_metrics, vllm_metrics_delta  # noqa: E402
from common.descriptive import mean, percentile  # noqa: E402
from common.protocol import AgentJobState, JobRequest, SampleResult  # noqa: E402

LAUNCHER = REPO / "benchmarks" / "engines" / "vllm_serve.py"
METRICS = ("ttft", "tpot", "itl", "e2e")
SERVER_NAMES = {"ttft": "server_ttft_s", "tpot": "server_tpot_s", "itl": "server_inter_token_latency_s",
                "e2e": "server_e2e_latency_s"}


def _task_params(args: argparse.Namespace) -> dict:
    """The task both clients run: the packaged Wikipedia articles, capped documents, greedy decoding."""
    return {"num_samples": args.samples, "max_new_tokens": args.max_tokens, "max_document_chars": args.doc_chars,
            "temperature": 0.0}


@contextlib.contextmanager
def started_server(args: argparse.Namespace, log: Path) -> Iterator[tuple[str, Path]]:
    """Start the engine with the packaged SmolLM2 (served as ``args.model``) and stop its process group afterwards.

    Yields:
        The server's root URL and the model directory whose tokenizer the reference client uses.
    """
    model_dir = convert_packaged_smollm2(REPO / "data" / "test-cache")
    port = args.port
    env = {**os.environ, "VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "2", "HF_HUB_OFFLINE": "1",
           "VLLM_NO_USAGE_STATS": "1"}
    if args.runtime == "vllm":
        command = [args.vllm_python, str(LAUNCHER), "serve", str(model_dir), "--served-model-name", args.model,
                   "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "2048", "--dtype", "float32",
                   "--no-enable-prefix-caching"]
    else:
        # One slot, metrics on, no prompt cache: every request processes its whole prompt, as with vLLM above.
        # Fewer threads than cores: a llama.cpp thread team waits at every step for a thread the clients' own work
        # pushed off a core, so on a small host the client would slow the server it measures.
        command = [args.llama_server, "-m", str(packaged_smollm2_gguf()), "--host", "127.0.0.1", "--port", str(port),
                   "--metrics", "-np", "1", "-c", "4096", "--no-cache-prompt", "--no-warmup", "-a", args.model,
                   "-t", str(args.threads)]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,  # nosec B603
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            time.sleep(1)
        else:
            raise SystemExit(f"the server did not answer within 900 s; see {log}")
        yield url, model_dir
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def scrape(url: str, runtime: str) -> dict[str, float]:
    """One parsed scrape of the server's ``/metrics``."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return parse_vllm_metrics(text) if runtime == "vllm" else parse_llamacpp_metrics(text)


def server_delta(runtime: str, before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
    """The server's figures between two scrapes (llama.cpp needs the number of requests in between)."""
    if runtime == "vllm":
        return vllm_metrics_delta(before, after)
    return llamacpp_metrics_delta(before, after, requests)


def ruckus_run(args: argparse.Namespace, url: str, work: Path) -> tuple[dict[str, list[float]], dict[str, float]]:
    """The gray-box job: per-request values over the warm runs, and the server's means over those runs."""
    policy = AgentPolicy.from_settings(Settings(data_dir=work, endpoints=[f"{args.runtime}={url}"],
                                                probe_local_servers=False))
    request = JobRequest(
        job_id="compare-1", attempt_token="compare-token-1",
        task={"name": "wikipedia_summarization", "params": _task_params(args)},
        model={"name": args.model},
        # Completions: the same prompt text vllm bench serve sends from a custom dataset with --skip-chat-template.
        runtime={"name": args.runtime, "params": {"endpoint": "completions"}},
        runs_per_job=args.runs,
    )
    engine = JobEngine(Spool(work / "spool"), data_dir=work, policy=policy)
    try:
        record, _ = engine.submit(request)
        record.thread.join(3600)
        result = record.result
    finally:
        engine.shutdown(5)
    if result is None or result.status is not AgentJobState.COMPLETED:
        raise SystemExit(f"the RUCKUS job did not complete: {result.error if result else 'no result'}")
    warm = [r for r in result.runs if not r.cold_start] or result.runs
    samples: list[SampleResult] = [s for r in warm for s in r.samples if s.error is None]
    values: dict[str, list[float]] = {
        "ttft": [s.metrics["ttft_s"] for s in samples if s.metrics.get("ttft_s") is not None],
        "tpot": [s.metrics["tpot_s"] for s in samples if s.metrics.get("tpot_s") is not None],
        "itl": [g for s in samples for g in s.inter_token_gaps_s],
        "e2e": [s.metrics["e2e_latency_s"] for s in samples if s.metrics.get("e2e_latency_s") is not None],
        "output_tokens": [float(s.output_tokens or 0) for s in samples],
    }
    server = {k: mean([r.metrics[v] for r in warm if v in r.metrics]) for k, v in SERVER_NAMES.items()
              if any(v in r.metrics for r in warm)}
    return values, server


def bench_run(args: argparse.Namespace, url: str, tokenizer: Path, work: Path
              ) -> tuple[dict[str, list[float]], dict[str, float]]:
    """``vllm bench serve`` with the same prompts (each warm run's worth), one at a time; raw values and the
    server's histogram means over its requests."""
    task = make_task("wikipedia_summarization", _task_params(args), data_dir=work)
    prompts = [task.prompt_text(s) for s in task.load_samples()]
    repeats = max(1, args.runs - 1)
    dataset = work / "prompts.jsonl"
    dataset.write_text("".join(json.dumps({"prompt": p}) + "\n" for _ in range(repeats) for p in prompts))
    base = [
        args.vllm_python, str(LAUNCHER), "bench", "serve", "--backend", "vllm" if args.runtime == "vllm" else "openai",
        "--base-url", url,
        "--endpoint", "/v1/completions", "--model", args.model, "--tokenizer", str(tokenizer),
        "--dataset-name", "custom", "--dataset-path", str(dataset), "--skip-chat-template", "--disable-shuffle",
        "--custom-output-len", str(args.max_tokens), "--temperature", "0", "--max-concurrency", "1",
        "--request-rate", "inf", "--disable-tqdm",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_TARGET_DEVICE": "cpu"}

    def bench(*more: str) -> None:
        run = subprocess.run([*base, *more], capture_output=True, text=True, timeout=3600, check=False,  # nosec B603
                             env=env)
        (work / "bench.log").write_text(run.stdout + run.stderr)
        if run.returncode != 0:
            raise SystemExit(f"vllm bench serve failed ({run.returncode}):\n{(run.stdout + run.stderr)[-3000:]}")

    # A first pass over the prompts, as RUCKUS's cold run: its requests stay out of the server's figures.
    bench("--num-prompts", str(len(prompts)))
    before = scrape(url, args.runtime)
    bench("--num-prompts", str(len(prompts) * repeats), "--save-result", "--save-detailed", "--result-dir",
          str(work), "--result-filename", "bench.json", "--percentile-metrics", "ttft,tpot,itl,e2el",
          "--metric-percentiles", "50,90,95,99")
    after = scrape(url, args.runtime)
    data = json.loads((work / "bench.json").read_text())
    ok = [i for i, err in enumerate(data["errors"]) if not err]
    ttfts, lats, outs = data["ttfts"], data["latencies"], data["output_lens"]
    values = {
        "ttft": [ttfts[i] for i in ok],
        "tpot": [(lats[i] - ttfts[i]) / (outs[i] - 1) for i in ok if outs[i] > 1],
        "itl": [g for i in ok for g in data["itls"][i]],
        "e2e": [lats[i] for i in ok],
        "output_tokens": [float(outs[i]) for i in ok],
    }
    delta = server_delta(args.runtime, before, after, len(data["errors"]))
    return values, {k: delta[v] for k, v in SERVER_NAMES.items() if v in delta}


def _fmt(values: Sequence[float]) -> str:
    """``mean / p50 / p99`` in milliseconds."""
    if not values:
        return "—"
    return f"{mean(values) * 1e3:8.2f} / {percentile(values, 50) * 1e3:8.2f} / {percentile(values, 99) * 1e3:8.2f}"


def report(ruckus: dict[str, list[float]], ruckus_server: dict[str, float], bench: dict[str, list[float]],
           bench_server: dict[str, float]) -> str:
    """The comparison table (Markdown)."""
    lines = [
        "| metric | RUCKUS client mean / p50 / p99 (ms) | RUCKUS server-side mean (ms) | vllm bench serve mean / p50 / "
        "p99 (ms) | bench server-side mean (ms) | RUCKUS vs bench (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for name in METRICS:
        r, b = ruckus[name], bench[name]
        diff = (mean(r) - mean(b)) / mean(b) if r and b and mean(b) else math.nan
        lines.append(
            f"| {name} | {_fmt(r)} | {ruckus_server.get(name, math.nan) * 1e3:.2f} | {_fmt(b)} | "
            f"{bench_server.get(name, math.nan) * 1e3:.2f} | {diff:+.2%} |"
        )
    lines.append(f"| requests / output tokens | {len(ruckus['e2e'])} / {sum(ruckus['output_tokens']):.0f} | | "
                 f"{len(bench['e2e'])} / {sum(bench['output_tokens']):.0f} | | |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run both clients and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", choices=("vllm", "llamacpp_server"), default="vllm",
                        help="The engine: vLLM, or a llama.cpp server (llama-server --metrics).")
    parser.add_argument("--url", help="Root URL of a running server (default: --start one).")
    parser.add_argument("--start", action="store_true", help="Start the engine with the packaged SmolLM2.")
    parser.add_argument("--llama-server", default=str(REPO / ".venv" / "bin" / "llama-server"))
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="llama-server threads with --start (default: all cores but one, left to the clients).")
    parser.add_argument("--port", type=int, default=8000, help="Port for --start.")
    parser.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"))
    parser.add_argument("--tokenizer", type=Path, help="Model directory for vllm bench's tokenizer.")
    parser.add_argument("--model", default="smollm2", help="Served model name.")
    parser.add_argument("--samples", type=int, default=8, help="Prompts per run.")
    parser.add_argument("--runs", type=int, default=3, help="RUCKUS runs (the first is the cold run).")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--doc-chars", type=int, default=1500, help="Longest article text in a prompt.")
    args = parser.parse_args(argv)
    if not args.url and not args.start:
        parser.error("give --url of a running server, or --start")
    with tempfile.TemporaryDirectory(prefix="ruckus-compare-") as tmp:
        work = Path(tmp)
        with contextlib.ExitStack() as stack:
            if args.start:
                url, model_dir = stack.enter_context(started_server(args, work / "vllm.log"))
            else:
                url, model_dir = args.url.rstrip("/"), args.tokenizer
            if model_dir is None:
                parser.error("--tokenizer is needed with --url")
            ruckus, ruckus_server = ruckus_run(args, url, work / "ruckus")
            bench, bench_server = bench_run(args, url, Path(model_dir), work)
        print(report(ruckus, ruckus_server, bench, bench_server))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
