"""Capability matching: can this agent run this (model, runtime) with these metrics? If not, why not.

Every refusal is a sentence a user can act on ("needs 16.0 GiB of GPU memory; largest GPU has 8.0 GiB"),
because combinations that no agent can run are reported, never silently dropped (DESIGN section 5).
"""

from __future__ import annotations

from typing import Any

from agents.models import Agent, AgentStatus
from common.catalog import DTYPE_BYTES, RUNTIMES, TASKS, find_model, model_names
from common.protocol import AgentInfo, ModelInfo

#: Multiplier on weight bytes for activations, KV cache and framework overhead when loading a model.
MEMORY_OVERHEAD_FACTOR = 1.2
#: Dtype assumed for the memory estimate when a model spec does not say (what the runtime picks on GPUs).
DEFAULT_ESTIMATE_DTYPE = "bfloat16"

_GIB = 2**30


def _loadable(model: ModelInfo, formats: tuple[str, ...]) -> bool:
    """Whether a runtime that loads ``formats`` (empty: any) can load this local copy.

    The packaged GGUF counts as Hugging Face format: the agent converts it into that format on first use.
    """
    if not formats or model.format in formats:
        return True
    return "hf" in formats and model.source == "packaged" and model.format == "gguf"


def _agent_model(info: AgentInfo, name: str, formats: tuple[str, ...] = ()) -> ModelInfo | None:
    """Find the agent's local copy of a model by catalogue name, alias or repo id, in a format the runtime loads."""
    wanted = model_names(name)
    for model in info.models:
        names = {model.name.lower()}
        if model.repo_id:
            names.add(model.repo_id.lower())
        if names & wanted and _loadable(model, formats):
            return model
    return None


def estimate_model_bytes(model_spec: dict[str, Any], local: ModelInfo | None) -> int | None:
    """Estimate the memory a white-box runtime needs to load a model.

    Args:
        model_spec: The job's model spec (``name``, optional ``dtype``).
        local: The agent's local copy, when known (may carry the parameter count).

    Returns:
        Bytes needed, or None when the parameter count is unknown.
    """
    if local is not None and local.format == "gguf" and local.size_bytes:
        # A GGUF file is loaded as stored (quantized): its size is the weights' size.
        return int(local.size_bytes * MEMORY_OVERHEAD_FACTOR)
    catalog = find_model(model_spec.get("name", ""))
    params = (local.parameters if local and local.parameters else None) or (catalog.parameters if catalog else None)
    if not params:
        return None
    dtype = model_spec.get("dtype") or DEFAULT_ESTIMATE_DTYPE
    per_param = DTYPE_BYTES.get(dtype, DTYPE_BYTES[DEFAULT_ESTIMATE_DTYPE])
    return int(params * per_param * MEMORY_OVERHEAD_FACTOR)


def unmet_requirement(
    agent: Agent,
    model_spec: dict[str, Any],
    runtime_spec: dict[str, Any],
    requested_metrics: list[str] | None = None,
    *,
    info: AgentInfo | None = None,
) -> str | None:
    """Say why ``agent`` cannot run the combination, or None when it can.

    Args:
        agent: Candidate agent.
        model_spec: Model spec of the job.
        runtime_spec: Runtime spec of the job.
        requested_metrics: Metrics the experiment asked for.
        info: The agent's capabilities already parsed (``agent.info``), for callers that check one agent against
            many combinations: parsing them is most of the cost of a check.

    Returns:
        None when the agent can run it, otherwise the reason in words.
    """
    if agent.status == AgentStatus.DEACTIVATED:
        return "agent is deactivated"
    if agent.status == AgentStatus.OFFLINE:
        return "agent is offline"
    info = info if info is not None else agent.info
    if info is None:
        return "agent has not reported its capabilities yet"
    runtime_name = runtime_spec.get("name", "")
    rdef = RUNTIMES.get(runtime_name)
    if rdef is None:
        return f"unknown runtime {runtime_name!r}"
    cap = next((r for r in info.runtimes if r.name == runtime_name), None)
    if cap is None:
        return f"runtime {runtime_name!r} is not offered by this agent"
    if not cap.available:
        return f"runtime {runtime_name!r} is unavailable here: {cap.reason or 'no reason given'}"
    for metric in requested_metrics or []:
        if metric in cap.metrics:
            continue
        why = cap.unavailable_metrics.get(metric)
        if why:
            return f"metric {metric!r} cannot be measured with {runtime_name!r} here: {why}"
        if metric not in _server_metrics():
            return f"runtime {runtime_name!r} does not produce metric {metric!r}"
    served = _unserved(cap.served_models, runtime_name, model_spec, runtime_spec)
    if served:
        return served
    if rdef.needs_local_model:
        model_name = model_spec.get("name", "")
        local = None if model_spec.get("path") else _agent_model(info, model_name, rdef.model_formats)
        if local is None and not model_spec.get("path"):
            other = _agent_model(info, model_name)
            if other is not None:
                return (
                    f"runtime {runtime_name!r} loads {' or '.join(rdef.model_formats)} models; this agent has "
                    f"{model_name!r} only in {other.format} format"
                )
            return f"model {model_name!r} is not available locally (not in its model cache or model dirs)"
        need = estimate_model_bytes(model_spec, local)
        if need is not None:
            reason = _memory_shortfall(info, need, runtime_spec)
            if reason:
                return reason
    return None


def _unserved(
    served_models: list[str] | None, runtime_name: str, model_spec: dict[str, Any], runtime_spec: dict[str, Any]
) -> str | None:
    """For a runtime that measures the agent's local servers: why none of them serves the job's model.

    A job that names its own server (``base_url``) is not checked: the agent's list covers only its servers.
    """
    params = runtime_spec.get("params") or {}
    if served_models is None or params.get("base_url"):
        return None
    wanted = str(params.get("served_model") or model_spec.get("name", ""))
    names = model_names(wanted)
    if any(m.lower() in names for m in served_models):
        return None
    listed = ", ".join(served_models[:10]) + (" ..." if len(served_models) > 10 else "")
    return f"no local {runtime_name} server on this agent serves model {wanted!r} (served: {listed or 'none'})"


def _server_metrics() -> set[str]:
    """Metrics the server computes itself (every agent 'produces' them)."""
    return {m for task in TASKS.values() for m in task.server_metrics}


def _memory_shortfall(info: AgentInfo, need: int, runtime_spec: dict[str, Any]) -> str | None:
    """Compare the memory a model needs with what the agent has on the device it will use."""
    params = runtime_spec.get("params") or {}
    device = params.get("device", "auto")
    if "n_gpu_layers" in params or runtime_spec.get("name") == "llama_cpp":
        # llama.cpp stays on the CPU unless layers are offloaded (runtime.params.n_gpu_layers).
        device = "auto" if params.get("n_gpu_layers") else "cpu"
    gpus = [g for g in info.gpus if g.memory_total_bytes]
    use_gpu = device in ("cuda", "mps") or (device == "auto" and bool(gpus))
    if use_gpu and gpus:
        largest = max(g.memory_total_bytes or 0 for g in gpus)
        if need > largest:
            return (
                f"needs {need / _GIB:.1f} GiB of GPU memory; largest GPU has {largest / _GIB:.1f} GiB"
            )
        return None
    if use_gpu and not gpus:
        return f"device {device!r} requested but the agent has no GPU"
    total = info.memory.total_bytes
    if total and need > total:
        return f"needs {need / _GIB:.1f} GiB of memory; agent has {total / _GIB:.1f} GiB"
    return None
