"""Runtime registry: how the agent runs a model, and which metrics each way can produce.

Adding a runtime: add its params model and entry in ``common.catalog.RUNTIMES``, subclass
:class:`~agent_runtime.runtimes.base.Runtime`, and register the class here.
"""

from __future__ import annotations

from pathlib import Path

from agent_runtime.policy import AgentPolicy
from agent_runtime.runtimes.base import (
    Generation,
    RequestError,
    RunMeasurement,
    Runtime,
    RuntimeFailure,
    StopCheck,
)
from agent_runtime.runtimes.hardware_runtime import HardwareRuntime
from agent_runtime.runtimes.llamacpp_runtime import LlamaCppRuntime
from agent_runtime.runtimes.llamacpp_server_runtime import LlamaCppServerRuntime
from agent_runtime.runtimes.openai_runtime import OpenAIRuntime
from agent_runtime.runtimes.transformers_runtime import TransformersRuntime
from agent_runtime.runtimes.vllm_runtime import VllmRuntime
from common.catalog import runtime_params
from common.protocol import AgentInfo, JobRequest, RuntimeCapability

#: Runtime name -> implementation.
RUNTIME_REGISTRY: dict[str, type[Runtime]] = {
    TransformersRuntime.name: TransformersRuntime,
    LlamaCppRuntime.name: LlamaCppRuntime,
    OpenAIRuntime.name: OpenAIRuntime,
    VllmRuntime.name: VllmRuntime,
    LlamaCppServerRuntime.name: LlamaCppServerRuntime,
    HardwareRuntime.name: HardwareRuntime,
}


def describe_runtimes(info: AgentInfo) -> list[RuntimeCapability]:
    """Describe every registered runtime on the host ``info`` describes.

    Args:
        info: The agent's detected description (frameworks, GPUs, monitoring).

    Returns:
        One capability per runtime, with the metrics it can produce and the reasons for the others.
    """
    return [cls.capability(info) for cls in RUNTIME_REGISTRY.values()]


def make_runtime(
    request: JobRequest, *, data_dir: Path, model_dirs: tuple[Path, ...] = (), policy: AgentPolicy | None = None
) -> Runtime:
    """Build the runtime a job asks for.

    Args:
        request: The job.
        data_dir: The agent's data directory.
        model_dirs: Extra model directories.
        policy: What the agent's operator allows a job to name (default: nothing beyond its own directories).

    Returns:
        The runtime (nothing loaded yet).

    Raises:
        KeyError: Unknown runtime.
        pydantic.ValidationError: Bad runtime params.
    """
    cls = RUNTIME_REGISTRY[request.runtime.name]
    params = runtime_params(request.runtime.name, request.runtime.params)
    return cls(request, params, data_dir=data_dir, model_dirs=model_dirs, policy=policy)


__all__ = [
    "RUNTIME_REGISTRY",
    "Generation",
    "RequestError",
    "RunMeasurement",
    "Runtime",
    "RuntimeFailure",
    "StopCheck",
    "describe_runtimes",
    "make_runtime",
]
