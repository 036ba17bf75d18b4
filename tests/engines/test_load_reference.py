"""RUCKUS's load generator against ``vllm bench serve`` on the same real vLLM server (benchmarks/load_vs_reference.py).

One closed-loop point (concurrency 2), a few requests: the script runs both clients with the same prompts, the same
``max_tokens`` with ``ignore_eos`` and the same load. Exact agreement is asserted where there is no noise (both
clients complete every request and count the same output tokens); throughputs and the TTFT, TPOT and e2e means must
agree within the script's own tolerance (the reference's run-to-run spread, with floors). The ITL tail is left out:
with a few requests its p99 is a handful of gaps (the script's full run compares it; docs/load.md).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engines.conftest import RunningServer, smollm2_hf_dir, vllm_python

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "load_vs_reference.py"
#: Figures judged here: (key, kind of tolerance).
JUDGED = (("request_throughput", "throughput"), ("output_throughput", "throughput"), ("ttft_mean", "latency"),
          ("tpot_mean", "token"), ("e2e_mean", "latency"))
REQUESTS = 8
MAX_TOKENS = 16


def test_generator_agrees_with_vllm_bench_serve(vllm: RunningServer, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("load_vs_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # its dataclasses look their module up while they are built
    spec.loader.exec_module(script)
    out = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--url", vllm.url,
         "--tokenizer", str(smollm2_hf_dir()), "--vllm-python", str(vllm_python()), "--points", "c2",
         "--requests", str(REQUESTS), "--max-tokens", str(MAX_TOKENS), "--json", str(out)],
        capture_output=True, text=True, timeout=900, check=False, cwd=REPO,
    )
    # 1: some figure out of tolerance (the ITL tail may be, by definition); anything else is a failure to run.
    assert run.returncode in (0, 1), run.stdout[-6000:] + run.stderr[-3000:]
    (point,) = json.loads(out.read_text())
    assert point["point"] == "concurrency 2"
    # ignore_eos: every request of either client generated exactly MAX_TOKENS tokens.
    for figures in (point["ruckus"], *point["bench"]):
        assert figures["completed"] == REQUESTS
        assert figures["total_output_tokens"] == REQUESTS * MAX_TOKENS
    assert point["overhead"]["cpu_s"] is not None
    for key, kind in JUDGED:
        runs = [b[key] for b in point["bench"]]
        reference = sum(runs) / len(runs)
        allowed = script.tolerance(kind, reference, runs)
        assert abs(point["ruckus"][key] - reference) <= allowed, (key, point["ruckus"][key], runs, allowed)
