"""The agent's self-description: detection results plus the runtimes this agent offers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agent_runtime import __version__
from agent_runtime.detection import collect_agent_info
from agent_runtime.local_servers import ServerSpec, probe_servers
from agent_runtime.logging import get_logger
from agent_runtime.runtimes import describe_runtimes
from common.protocol import AgentInfo

log = get_logger(__name__)


def gather_agent_info(
    *,
    data_dir: Path,
    model_dirs: tuple[Path, ...] = (),
    name: str = "",
    agent_id: str | None = None,
    nvidia_smi_xml: Path | None = None,
    rocm_smi_json: Path | None = None,
    apple_profiler_json: Path | None = None,
    servers: Sequence[ServerSpec] = (),
) -> AgentInfo:
    """Detect the host and fill in the runtimes this agent offers.

    Args:
        data_dir: The agent's data directory.
        model_dirs: Extra model directories.
        name: Agent name.
        agent_id: Id assigned by the server, when registered.
        nvidia_smi_xml: Recorded ``nvidia-smi -q -x`` output to describe instead of this host's GPUs.
        rocm_smi_json: Recorded ``rocm-smi --json`` output.
        apple_profiler_json: Recorded ``system_profiler -json`` output.
        servers: Inference servers on this host to check (configured, then the usual ports).

    Returns:
        The full :class:`~common.protocol.AgentInfo`.
    """
    info = collect_agent_info(
        data_dir=data_dir,
        model_dirs=model_dirs,
        name=name,
        nvidia_smi_xml=nvidia_smi_xml,
        rocm_smi_json=rocm_smi_json,
        apple_profiler_json=apple_profiler_json,
    )
    info.local_servers = probe_servers(servers)
    info.runtimes = describe_runtimes(info)
    info.agent_version = info.agent_version or __version__
    if name:
        info.name = name
    info.agent_id = agent_id
    return info


def with_servers(info: AgentInfo, servers: Sequence[ServerSpec]) -> AgentInfo:
    """Check the local servers again and describe the runtimes anew (the rest of the detection stands).

    Args:
        info: The current description.
        servers: Servers to check.

    Returns:
        A new description; equal to ``info`` (same capabilities hash) when nothing changed.
    """
    updated = info.model_copy(update={"local_servers": probe_servers(servers)})
    updated.runtimes = describe_runtimes(updated)
    return updated
