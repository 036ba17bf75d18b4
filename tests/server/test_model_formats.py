"""Matching by model format: ``llama_cpp`` loads GGUF files, ``transformers`` Hugging Face directories."""

from __future__ import annotations

import pytest

from agents.matching import estimate_model_bytes, unmet_requirement
from agents.models import Agent
from common.protocol import ModelInfo
from tests.factories import GIB, AgentFactory, agent_info

pytestmark = pytest.mark.django_db


def _agent(*models: ModelInfo, gpus=None) -> Agent:
    info = agent_info(runtimes=("transformers", "llama_cpp", "openai"), models=(), gpus=gpus)
    info.models = list(models)
    return AgentFactory(info=info)


def _model(name: str, fmt: str, source: str = "model_dir", size: int = 100 * 2**20) -> ModelInfo:
    return ModelInfo(name=name, source=source, format=fmt, parameters=134_515_008, size_bytes=size)


def test_llama_cpp_needs_a_gguf_copy():
    agent = _agent(_model("Org/Model", "hf", source="hf_cache"))
    assert unmet_requirement(agent, {"name": "Org/Model"}, {"name": "llama_cpp"}) == (
        "runtime 'llama_cpp' loads gguf models; this agent has 'Org/Model' only in hf format"
    )
    assert unmet_requirement(agent, {"name": "Org/Model"}, {"name": "transformers"}) is None


def test_transformers_needs_a_hugging_face_copy_or_the_packaged_gguf():
    agent = _agent(_model("small-q4", "gguf"), _model("smollm2-135m-instruct", "gguf", source="packaged"))
    assert unmet_requirement(agent, {"name": "small-q4"}, {"name": "transformers"}) == (
        "runtime 'transformers' loads hf models; this agent has 'small-q4' only in gguf format"
    )
    assert unmet_requirement(agent, {"name": "small-q4"}, {"name": "llama_cpp"}) is None
    # The packaged GGUF is converted on first use.
    assert unmet_requirement(agent, {"name": "smollm2-135m-instruct"}, {"name": "transformers"}) is None
    assert unmet_requirement(agent, {"name": "smollm2-135m-instruct"}, {"name": "llama_cpp"}) is None


def test_gguf_memory_is_its_file_size_and_llama_cpp_stays_on_the_cpu():
    q4 = _model("big-q4", "gguf", size=6 * GIB)
    assert estimate_model_bytes({"name": "big-q4"}, q4) == int(6 * GIB * 1.2)
    # A 1 GiB GPU does not matter to llama.cpp without offloaded layers: the 16 GiB host memory does.
    agent = _agent(q4, gpus=[("GeForce GT 710", 1)])
    assert unmet_requirement(agent, {"name": "big-q4"}, {"name": "llama_cpp", "params": {}}) is None
    reason = unmet_requirement(agent, {"name": "big-q4"}, {"name": "llama_cpp", "params": {"n_gpu_layers": -1}})
    assert reason == "needs 7.2 GiB of GPU memory; largest GPU has 1.0 GiB"
