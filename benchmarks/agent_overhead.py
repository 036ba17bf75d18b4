"""Agent overhead: the engine's warm-run time against a bare ``generate`` loop on the same model and prompts.

Both sides run in this process on the packaged SmolLM2 (greedy decoding, so both generate exactly the same
tokens). The bare loop is the floor: tokenize with the chat template, ``model.generate``, nothing else. The
agent adds streaming with per-token timestamps, the stop check, the telemetry sampler thread, result
assembly and spooling. Each side runs in its own process (the bare loop as a plain script, in its main
thread) so that neither inherits the other's OpenMP thread team; bare passes run before and after the
agent job so that drift in machine speed does not bias the ratio.

Usage::

    python benchmarks/agent_overhead.py [--runs 5] [--samples 3] [--max-new-tokens 48] [--data-dir data/bench]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from agent_runtime.engine import JobEngine
from agent_runtime.models import convert_packaged_smollm2
from agent_runtime.spool import Spool
from agent_runtime.tasks import make_task
from common.protocol import AgentJobState, JobRequest


def bare_passes(
    model_dir: Path, prompts: list[list[dict]], max_new_tokens: int, passes: int
) -> tuple[list[float], int]:
    """Time ``passes`` bare generate loops over the prompts (after one warm-up pass)."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    encoded = [
        tok.apply_chat_template(m, add_generation_prompt=True, return_tensors="pt", return_dict=True) for m in prompts
    ]
    kwargs = {"max_new_tokens": max_new_tokens, "do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    times, tokens = [], 0
    for i in range(passes + 1):
        t0 = time.perf_counter()
        n = 0
        for enc in encoded:
            out = model.generate(**enc, pad_token_id=pad, **kwargs)
            n += out.shape[-1] - enc["input_ids"].shape[-1]
        if i:  # pass 0 warms up
            times.append(time.perf_counter() - t0)
            tokens = n
    del model
    return times, tokens


def main() -> None:
    """Run the comparison and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="timed passes per side")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--data-dir", type=Path, default=Path("data/test-cache"))
    ap.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)  # child process mode
    args = ap.parse_args()

    model_dir = convert_packaged_smollm2(args.data_dir)
    params = {"num_samples": args.samples, "max_new_tokens": args.max_new_tokens, "seed": 3}
    task = make_task("wikipedia_summarization", params, data_dir=args.data_dir)
    prompts = [task.messages(s) for s in task.load_samples()]
    if args.bare:
        times, tokens = bare_passes(model_dir, prompts, args.max_new_tokens, args.runs)
        print(json.dumps({"times": times, "tokens": tokens}))
        return
    print(f"model {model_dir}  torch threads {torch.get_num_threads()}  samples {len(prompts)}")

    def bare_child() -> tuple[list[float], int]:
        """Run the bare loop as a plain script in a child process."""
        out = subprocess.run(
            [sys.executable, __file__, "--bare", *sys.argv[1:]], check=True, capture_output=True, text=True
        ).stdout
        data = json.loads(out.strip().splitlines()[-1])
        return data["times"], data["tokens"]

    before, bare_tokens = bare_child()

    with tempfile.TemporaryDirectory() as tmp:
        engine = JobEngine(Spool(Path(tmp) / "spool"), data_dir=args.data_dir)
        request = JobRequest(
            job_id="overhead",
            attempt_token="benchmark-token",
            task={"name": "wikipedia_summarization", "params": params},
            model={"name": "smollm2-135m-instruct", "path": str(model_dir)},
            runtime={"name": "transformers", "params": {"device": "cpu", "dtype": "float32"}},
            runs_per_job=args.runs + 1,
        )
        record, _ = engine.submit(request)
        record.thread.join()
        result = record.result
        assert result is not None and result.status is AgentJobState.COMPLETED, result and result.error
        warm = [r.metrics["run_wall_s"] for r in result.runs if not r.cold_start]
        agent_tokens = int(result.runs[-1].metrics["output_tokens"])

    after, _ = bare_child()
    bare = before + after
    bare_med, agent_med = statistics.median(bare), statistics.median(warm)
    print(f"tokens per pass: bare {bare_tokens}, agent {agent_tokens}")
    print(f"bare generate loop : median {bare_med:.3f} s  (n={len(bare)}, min {min(bare):.3f}, max {max(bare):.3f})")
    print(f"agent warm run     : median {agent_med:.3f} s  (n={len(warm)}, min {min(warm):.3f}, max {max(warm):.3f})")
    print(f"overhead ratio (agent / bare, medians): {agent_med / bare_med:.4f}")
    print(f"overhead ratio (agent / bare, minima) : {min(warm) / min(bare):.4f}")


if __name__ == "__main__":
    main()
