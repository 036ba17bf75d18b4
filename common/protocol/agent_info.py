"""How an agent describes itself: :class:`AgentInfo` and its parts, and the hardware fingerprint.

The server stores this description, matches jobs against it and groups agents by
:func:`hardware_fingerprint` so that a retry measures the same hardware configuration (DESIGN section 5).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from common.protocol.base import PROTOCOL_VERSION, ProtocolModel, utcnow
from common.protocol.enums import AccessMode


class ProbeStatus(ProtocolModel):
    """Outcome of one detection probe; a failed probe is reported, never fatal.

    Attributes:
        name: Probe name (``cpu``, ``nvml``, ``torch``, ``nvidia_smi`` ...).
        available: Whether the probe produced data.
        reason: Why it did not, in words (absent when available).
        duration_s: Time the probe took.
    """

    name: str
    available: bool
    reason: str | None = None
    duration_s: float | None = None


class SystemInfo(ProtocolModel):
    """Operating system and interpreter of the agent host."""

    hostname: str = ""
    os: str = ""
    os_version: str = ""
    kernel: str = ""
    architecture: str = ""
    python_version: str = ""
    container: str | None = None


class CpuInfo(ProtocolModel):
    """CPU description.

    Attributes:
        model: Brand string, e.g. ``AMD EPYC 7763 64-Core Processor``.
        vendor: Vendor id.
        architecture: ``x86_64``, ``aarch64`` ...
        physical_cores: Physical cores (None when unknown).
        logical_cores: Hardware threads.
        frequency_mhz: Current frequency.
        max_frequency_mhz: Advertised maximum frequency.
        flags: Raw ISA flags.
        isa_features: Notable ISA extensions (``avx2``, ``avx512f``, ``amx_bf16``, ``neon`` ...).
    """

    model: str = "unknown"
    vendor: str | None = None
    architecture: str = ""
    physical_cores: int | None = None
    logical_cores: int | None = None
    frequency_mhz: float | None = None
    max_frequency_mhz: float | None = None
    flags: list[str] = Field(default_factory=list)
    isa_features: list[str] = Field(default_factory=list)


class MemoryInfo(ProtocolModel):
    """System memory in bytes."""

    total_bytes: int = 0
    available_bytes: int | None = None
    swap_total_bytes: int | None = None


class DiskInfo(ProtocolModel):
    """Disk holding the agent's data directory."""

    path: str = ""
    total_bytes: int | None = None
    free_bytes: int | None = None


class GpuInfo(ProtocolModel):
    """One accelerator.

    Attributes:
        index: Device index as the backend numbers it.
        name: Product name.
        vendor: ``nvidia``, ``amd``, ``apple`` ...
        backend: ``cuda``, ``rocm`` or ``mps``.
        source: Which probe reported it (``nvml``, ``torch``, ``nvidia-smi``, ``rocm-smi``, ``system_profiler``).
        uuid: Stable device id.
        memory_total_bytes: Total device memory (for Apple: unified memory).
        memory_free_bytes: Free device memory at detection time.
        compute_capability: ``major.minor`` for NVIDIA.
        architecture: Architecture name (``Hopper``, ``gfx90a`` ...).
        driver_version: Driver version.
        cuda_version: CUDA version the driver supports.
        sm_clock_max_mhz: Max SM/graphics clock.
        memory_clock_max_mhz: Max memory clock.
        power_limit_w: Enforced power limit.
        temperature_c: Temperature at detection time.
        utilization_pct: GPU utilization at detection time.
        tensor_core_generation: Tensor core generation (1 = Volta ... 5 = Blackwell), None when none.
        tensor_core_precisions: Precisions the tensor cores accelerate.
        mig_mode: MIG mode (``Enabled``/``Disabled``) where the GPU has one.
        virtualization_mode: vGPU/pass-through mode where reported.
        pci_bus_id: PCI bus id.
    """

    index: int = 0
    name: str = "unknown"
    vendor: str = "unknown"
    backend: str | None = None
    source: str = ""
    uuid: str | None = None
    memory_total_bytes: int | None = None
    memory_free_bytes: int | None = None
    compute_capability: str | None = None
    architecture: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    sm_clock_max_mhz: float | None = None
    memory_clock_max_mhz: float | None = None
    power_limit_w: float | None = None
    temperature_c: float | None = None
    utilization_pct: float | None = None
    tensor_core_generation: int | None = None
    tensor_core_precisions: list[str] = Field(default_factory=list)
    mig_mode: str | None = None
    virtualization_mode: str | None = None
    pci_bus_id: str | None = None


class FrameworkInfo(ProtocolModel):
    """An ML framework and what it can do on this host.

    Attributes:
        name: Distribution name (``torch``, ``transformers``, ``vllm`` ...).
        available: Whether it is importable.
        version: Installed version.
        features: Feature flags (``cuda``, ``bf16``, ``mps``, ``rocm``, ``cuda_version`` ...).
        reason: Why it is unavailable.
    """

    name: str
    available: bool
    version: str | None = None
    features: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None


class MonitoringCapability(ProtocolModel):
    """A measurement the agent can take (``nvml``, ``gpu_power``, ``energy_counter``, ``rss`` ...)."""

    name: str
    available: bool
    reason: str | None = None


class RuntimeCapability(ProtocolModel):
    """A runtime the agent offers and the metrics it can produce.

    Attributes:
        name: Runtime name (``transformers``, ``openai``, ``vllm``).
        access_mode: White, gray or black box.
        available: Whether jobs can run with it here.
        reason: Why not, in words.
        metrics: Metric names it produces on this host.
        unavailable_metrics: Metric name -> reason it cannot be produced here.
        served_models: For a runtime that reaches a server on the agent's host (gray box): the model names its
            answering servers serve (``GET /v1/models``); a job for another model cannot run here. None for
            runtimes that load models themselves or reach remote endpoints.
        load_modes: The load sweeps it can run (``concurrency``, ``request_rate``); empty when it cannot sweep
            (an agent older than load sweeps sends none).
    """

    name: str
    access_mode: AccessMode
    available: bool
    reason: str | None = None
    metrics: list[str] = Field(default_factory=list)
    unavailable_metrics: dict[str, str] = Field(default_factory=dict)
    served_models: list[str] | None = None
    load_modes: list[str] = Field(default_factory=list)


class LocalServer(ProtocolModel):
    """An inference server on (or next to) the agent's host, as the agent last found it.

    The operator names servers (``--endpoint vllm=http://127.0.0.1:8000``) or lets the agent probe the usual
    loopback ports; the gray-box runtime with the same name is available only while one of its servers answers.

    Attributes:
        runtime: Runtime that reaches it (``vllm``, ``llamacpp_server``).
        url: The server's root URL (its OpenAI-compatible API is ``<url>/v1``).
        metrics_url: Its Prometheus endpoint.
        source: ``configured`` (named by the operator) or ``probed`` (found on a usual loopback port).
        available: Whether it answered ``GET /v1/models`` with a model list at the last check.
        reason: Why not, in words.
        engine: The engine it identified itself as (``vllm``, ``llama.cpp``, ``ollama``), when it says.
        engine_version: Its version, when it says.
        models: Model names it serves.
        metrics_available: Whether ``/metrics`` answered with Prometheus text at the last check.
        metrics_reason: Why not, in words.
    """

    runtime: str
    url: str
    metrics_url: str | None = None
    source: Literal["configured", "probed"] = "configured"
    available: bool = False
    reason: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    models: list[str] = Field(default_factory=list)
    metrics_available: bool = False
    metrics_reason: str | None = None


class ModelInfo(ProtocolModel):
    """A model the agent can load without downloading.

    Attributes:
        name: Name jobs refer to (catalogue name or Hugging Face repo id).
        source: ``packaged``, ``hf_cache`` or ``model_dir``.
        path: Local path.
        format: ``hf`` (config + weights) or ``gguf``.
        architecture: ``LlamaForCausalLM`` ...
        parameters: Parameter count.
        size_bytes: Bytes on disk.
        dtype: Stored dtype (``bfloat16``, ``Q4_1`` ...).
        repo_id: Hugging Face repo id where known.
    """

    name: str
    source: str
    path: str | None = None
    format: str = "hf"
    architecture: str | None = None
    parameters: int | None = None
    size_bytes: int | None = None
    dtype: str | None = None
    repo_id: str | None = None


class AgentInfo(ProtocolModel):
    """Everything an agent advertises about itself (answer to ``/register`` and ``/info``).

    Attributes:
        type: Message type tag.
        protocol_version: Protocol version the agent speaks.
        agent_id: Id the server assigned (None before registration).
        name: Human name of the agent.
        agent_version: RUCKUS version of the agent.
        system: OS and interpreter.
        cpu: CPU.
        memory: System memory.
        disk: Disk of the data directory.
        gpus: Accelerators.
        frameworks: ML frameworks.
        runtimes: Runtimes and the metrics each can produce.
        monitoring: Measurements available.
        models: Locally available models.
        local_servers: Inference servers on the agent's host (configured or found on the usual ports) and whether
            they answer; only answering ones and, for probed ports, ones that were found are listed.
        probes: Outcome of every detection probe.
        detected_at: When detection ran.

    An agent's measured peaks are not part of its description: they travel with the runs of its
    ``hardware_benchmark`` jobs (``SingleRunResult.benchmark``) and the server keeps the latest. A ``benchmarks``
    key sent by older agents is ignored.
    """

    type: Literal["agent.info"] = "agent.info"
    protocol_version: str = PROTOCOL_VERSION
    agent_id: str | None = None
    name: str = ""
    agent_version: str = ""
    system: SystemInfo = Field(default_factory=SystemInfo)
    cpu: CpuInfo = Field(default_factory=CpuInfo)
    memory: MemoryInfo = Field(default_factory=MemoryInfo)
    disk: DiskInfo | None = None
    gpus: list[GpuInfo] = Field(default_factory=list)
    frameworks: list[FrameworkInfo] = Field(default_factory=list)
    runtimes: list[RuntimeCapability] = Field(default_factory=list)
    monitoring: list[MonitoringCapability] = Field(default_factory=list)
    models: list[ModelInfo] = Field(default_factory=list)
    local_servers: list[LocalServer] = Field(default_factory=list)
    probes: list[ProbeStatus] = Field(default_factory=list)
    detected_at: datetime = Field(default_factory=utcnow)

    def hardware_fingerprint(self) -> str:
        """Readable hardware fingerprint (DESIGN section 5), see :func:`hardware_fingerprint`."""
        return hardware_fingerprint(self)

    def capabilities_hash(self) -> str:
        """Hash of the parts that matter for scheduling; heartbeats carry it to signal a change."""
        payload = self.model_dump_json(exclude={"detected_at", "probes", "agent_id", "memory", "disk", "gpus"})
        gpus = [(g.name, g.memory_total_bytes, g.uuid) for g in self.gpus]
        return hashlib.sha256(f"{payload}|{gpus}|{self.memory.total_bytes}".encode()).hexdigest()[:16]


def memory_class_gib(total_bytes: int) -> int:
    """Round system memory up to a power-of-two GiB class, so 15.6 GiB and 16 GiB compare equal.

    Args:
        total_bytes: Total system memory in bytes.

    Returns:
        The memory class in GiB (0 when unknown).
    """
    if total_bytes <= 0:
        return 0
    gib = total_bytes / 2**30
    cls = 1
    while cls < gib * 0.97:  # 3% slack: firmware reserves a little of the nominal size
        cls *= 2
    return cls


#: Longest hardware fingerprint: a longer one (many kinds of GPU, long names) ends in a hash of the whole.
MAX_FINGERPRINT_CHARS = 500


def hardware_fingerprint(info: AgentInfo) -> str:
    """Fingerprint of the hardware a job measures: CPU model, GPU model x count x memory, memory class.

    Two agents with the same fingerprint measure the same hardware configuration, so a retry may move
    between them (DESIGN section 5).

    Args:
        info: The agent's description.

    Returns:
        A readable string such as ``cpu=AMD EPYC 7763|gpu=2x NVIDIA A100 80GB (80 GiB)|mem=256GiB``.
    """
    gpu_part = "none"
    if info.gpus:
        groups: dict[tuple[str, int], int] = {}
        for g in info.gpus:
            key = (g.name, round((g.memory_total_bytes or 0) / 2**30))
            groups[key] = groups.get(key, 0) + 1
        gpu_part = ",".join(f"{count}x {name} ({gib} GiB)" for (name, gib), count in sorted(groups.items()))
    text = f"cpu={info.cpu.model.strip()}|gpu={gpu_part}|mem={memory_class_gib(info.memory.total_bytes)}GiB"
    if len(text) <= MAX_FINGERPRINT_CHARS:
        return text
    # Still one fingerprint per configuration, within what the server stores.
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{text[:MAX_FINGERPRINT_CHARS - 20]}...#{digest}"
