"""The Agent Protocol: every message exchanged between the RUCKUS server and its agents.

Messages carry a ``type`` and the protocol version so that either side can refuse what it does not
understand instead of misreading it. Field names here are a contract: the server's REST API, the agent's
API, the CLI and the UI all rely on them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Version of this protocol. Bump the minor part for additive changes, the major part for breaking ones.
PROTOCOL_VERSION = "1.0"

#: Bounds of ``runs_per_job`` (DESIGN section 5).
MIN_RUNS_PER_JOB = 1
MAX_RUNS_PER_JOB = 100


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class _Model(BaseModel):
    """Base for protocol models: unknown fields are kept out, values validated on assignment."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True, protected_namespaces=())


# --------------------------------------------------------------------------------------------------
# Enumerations
# --------------------------------------------------------------------------------------------------


class AccessMode(StrEnum):
    """How much of the model/serving stack the agent controls (DESIGN section 5)."""

    WHITE_BOX = "white_box"
    GRAY_BOX = "gray_box"
    BLACK_BOX = "black_box"


class AgentJobState(StrEnum):
    """State of a job as the agent sees it."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"

    @property
    def is_terminal(self) -> bool:
        """True when the job will not change state any more on the agent."""
        return self in AGENT_TERMINAL_STATES


AGENT_TERMINAL_STATES = frozenset(
    {
        AgentJobState.COMPLETED,
        AgentJobState.FAILED,
        AgentJobState.CANCELLED,
        AgentJobState.TIMED_OUT,
        AgentJobState.INTERRUPTED,
    }
)


class AgentActivity(StrEnum):
    """What an online agent is doing, as sent in heartbeats."""

    IDLE = "idle"
    BUSY = "busy"


class JobStage(StrEnum):
    """Coarse progress stage of a running job."""

    QUEUED = "queued"
    PREPARING = "preparing"
    LOADING_DATA = "loading_data"
    LOADING_MODEL = "loading_model"
    COLD_RUN = "cold_run"
    WARM_RUN = "warm_run"
    FINALIZING = "finalizing"
    DONE = "done"


# --------------------------------------------------------------------------------------------------
# Agent description (AgentInfo and its parts)
# --------------------------------------------------------------------------------------------------


class ProbeStatus(_Model):
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


class SystemInfo(_Model):
    """Operating system and interpreter of the agent host."""

    hostname: str = ""
    os: str = ""
    os_version: str = ""
    kernel: str = ""
    architecture: str = ""
    python_version: str = ""
    container: str | None = None


class CpuInfo(_Model):
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


class MemoryInfo(_Model):
    """System memory in bytes."""

    total_bytes: int = 0
    available_bytes: int | None = None
    swap_total_bytes: int | None = None


class DiskInfo(_Model):
    """Disk holding the agent's data directory."""

    path: str = ""
    total_bytes: int | None = None
    free_bytes: int | None = None


class GpuInfo(_Model):
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


class FrameworkInfo(_Model):
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


class MonitoringCapability(_Model):
    """A measurement the agent can take (``nvml``, ``gpu_power``, ``energy_counter``, ``rss`` ...)."""

    name: str
    available: bool
    reason: str | None = None


class RuntimeCapability(_Model):
    """A runtime the agent offers and the metrics it can produce.

    Attributes:
        name: Runtime name (``transformers``, ``openai``, ``vllm``).
        access_mode: White, gray or black box.
        available: Whether jobs can run with it here.
        reason: Why not, in words.
        metrics: Metric names it produces on this host.
        unavailable_metrics: Metric name -> reason it cannot be produced here.
    """

    name: str
    access_mode: AccessMode
    available: bool
    reason: str | None = None
    metrics: list[str] = Field(default_factory=list)
    unavailable_metrics: dict[str, str] = Field(default_factory=dict)


class ModelInfo(_Model):
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


class BenchmarkFigure(_Model):
    """One measured hardware figure (a bandwidth or a matrix-multiply throughput) or why it is missing.

    Attributes:
        name: Figure kind: ``bandwidth_gbps`` (GB/s, 1e9 bytes), ``tflops`` (GPU, 1e12 operations/s)
            or ``gflops`` (CPU, 1e9 operations/s).
        device: Device measured (``cpu``, ``cuda``, ``mps``).
        precision: Precision for throughput figures (``fp32``, ``tf32``, ``fp16``, ``bf16``, ``int8``,
            ``fp8``); the transfer kind for bandwidth figures (``d2d``, ``h2d``, ``d2h``, ``copy``).
        unit: Unit symbol of the statistics (``GB/s``, ``TFLOP/s``, ``TOP/s``, ``GFLOP/s``).
        statistics: Statistics over the timed repeats (warm-up excluded); None when unsupported.
        supported: Whether the hardware and software here can produce this figure.
        reason: Why not, in words (absent when supported).
        params: How it was measured (sizes, bytes counted, inner iterations, timer ...).
    """

    name: str
    device: str
    precision: str
    unit: str = ""
    statistics: MetricStatistics | None = None
    supported: bool = True
    reason: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def metric_name(self) -> str:
        """Flattened metric name, e.g. ``tflops.cuda.bf16`` or ``bandwidth_gbps.cpu.copy``."""
        return f"{self.name}.{self.device}.{self.precision}"


class HardwareBenchmarkResult(_Model):
    """Outcome of one hardware benchmark: the agent's measured peaks.

    Attributes:
        type: Message type tag.
        figures: Every figure, the unsupported ones included with their reason.
        telemetry: Time series sampled while the benchmark ran (``t`` plus one list per signal).
        telemetry_summary: Run-level telemetry figures (``gpu_power_w``, ``peak_rss_bytes`` ...).
        telemetry_unavailable: Telemetry metric -> reason it could not be sampled.
        device: Device requested (``auto``, ``cpu``, ``cuda``, ``mps``).
        repeats: Timed repeats per figure.
        quick: Whether the short variant ran (smaller sizes, fewer repeats).
        environment: Software and device facts the figures depend on (torch version, GPU name, CC ...).
        started_at: Start time.
        finished_at: End time.
    """

    type: Literal["hardware.benchmark"] = "hardware.benchmark"
    figures: list[BenchmarkFigure] = Field(default_factory=list)
    telemetry: dict[str, list[float]] = Field(default_factory=dict)
    telemetry_summary: dict[str, float] = Field(default_factory=dict)
    telemetry_unavailable: dict[str, str] = Field(default_factory=dict)
    device: str = "auto"
    repeats: int = 0
    quick: bool = False
    environment: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def figure(self, metric_name: str) -> BenchmarkFigure | None:
        """The figure with flattened name ``metric_name`` (``tflops.cuda.bf16`` ...), or None."""
        return next((f for f in self.figures if f.metric_name == metric_name), None)

    def flatten(self) -> tuple[dict[str, float], dict[str, str]]:
        """One value per figure (its median over the timed repeats), plus the unsupported ones with reasons.

        The median is robust against a single disturbed repeat, while statistics over runs still see the
        spread between runs.

        Returns:
            ``(values, unavailable)`` keyed by flattened name (``bandwidth_gbps.<device>.<kind>``,
            ``tflops.<device>.<precision>``, ``gflops.cpu.<precision>``).
        """
        values: dict[str, float] = {}
        unavailable: dict[str, str] = {}
        for fig in self.figures:
            if fig.supported and fig.statistics is not None:
                values[fig.metric_name] = fig.statistics.median
            else:
                unavailable[fig.metric_name] = fig.reason or "not measured"
        return values, unavailable


class AgentInfo(_Model):
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
        probes: Outcome of every detection probe.
        detected_at: When detection ran.
        benchmarks: The latest hardware benchmark this agent ran (measured peaks), None before any.
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
    probes: list[ProbeStatus] = Field(default_factory=list)
    detected_at: datetime = Field(default_factory=utcnow)
    benchmarks: HardwareBenchmarkResult | None = None

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
    return f"cpu={info.cpu.model.strip()}|gpu={gpu_part}|mem={memory_class_gib(info.memory.total_bytes)}GiB"


# --------------------------------------------------------------------------------------------------
# Job specification
# --------------------------------------------------------------------------------------------------


class TaskSpec(_Model):
    """Task to run and its parameters (validated against the task registry, see ``common.catalog``)."""

    name: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


class ModelSpec(_Model):
    """Model to benchmark.

    Attributes:
        name: Catalogue name (``smollm2-135m-instruct``) or Hugging Face repo id (``owner/name``); for
            black-box runtimes, the name the endpoint serves.
        revision: Optional Hugging Face revision.
        path: Optional local path on the agent (overrides discovery).
        dtype: Optional dtype override (``float32``, ``float16``, ``bfloat16``, ``auto``).
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True, protected_namespaces=())

    name: str = Field(min_length=1, max_length=200)
    revision: str | None = None
    path: str | None = None
    dtype: str | None = None


class RuntimeSpec(_Model):
    """Runtime to run the model with and its parameters."""

    name: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


class JobRequest(_Model):
    """What the server POSTs to an agent's ``/api/v1/jobs`` (DESIGN section 3, flow 3).

    Attributes:
        type: Message type tag.
        protocol_version: Protocol version of the sender.
        job_id: Server job id.
        attempt: Attempt number (1-based).
        attempt_token: Random token of this attempt; callbacks must carry it.
        experiment_id: Server experiment id, for the agent's logs.
        task: Task and params.
        model: Model.
        runtime: Runtime and params.
        runs_per_job: Number of sequential runs (run 1 is the cold run).
        timeout_s: Wall-clock budget for the whole job on the agent.
        requested_metrics: Metrics the experiment asked for (others may be produced too).
    """

    type: Literal["job.request"] = "job.request"
    protocol_version: str = PROTOCOL_VERSION
    job_id: str = Field(min_length=1, max_length=64)
    attempt: int = Field(default=1, ge=1)
    attempt_token: str = Field(min_length=8, max_length=128)
    experiment_id: str | None = None
    task: TaskSpec
    model: ModelSpec
    runtime: RuntimeSpec
    runs_per_job: int = Field(default=1, ge=MIN_RUNS_PER_JOB, le=MAX_RUNS_PER_JOB)
    timeout_s: float | None = Field(default=None, gt=0)
    requested_metrics: list[str] = Field(default_factory=list)

    @field_validator("job_id", mode="before")
    @classmethod
    def _job_id_to_str(cls, v: Any) -> Any:
        """Accept integer ids (the server's primary keys) and carry them as strings."""
        return str(v) if isinstance(v, int) else v


class JobProgress(_Model):
    """Progress of a job, sent agent -> server and returned by the agent's ``GET /jobs/{id}``.

    Attributes:
        type: Message type tag.
        job_id: Server job id.
        attempt: Attempt number.
        attempt_token: Token of the attempt (checked by the server).
        status: Agent-side state.
        stage: Coarse stage.
        run_index: 1-based index of the current run (0 before the first run).
        runs_total: ``runs_per_job``.
        samples_done: Samples finished in the current run.
        samples_total: Samples per run.
        message: Human-readable detail (error text on failure).
        updated_at: When this progress was produced.
    """

    type: Literal["job.progress"] = "job.progress"
    job_id: str
    attempt: int = 1
    attempt_token: str | None = None
    status: AgentJobState
    stage: JobStage = JobStage.QUEUED
    run_index: int = 0
    runs_total: int = 1
    samples_done: int = 0
    samples_total: int = 0
    message: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


class SampleResult(_Model):
    """One request of a run: the model's output, the reference, and per-request timings.

    Attributes:
        id: Sample id (stable across runs of a job).
        title: Article title or other label.
        output: Generated text.
        reference: Reference text for scoring.
        prompt_tokens: Tokens in the prompt.
        output_tokens: Tokens generated.
        metrics: Per-request metrics (``e2e_latency_s``, ``ttft_s``, ``tpot_s``; ROUGE added by the server).
        request_sent_at: Wall-clock time the request was sent (epoch seconds).
        first_token_at: Wall-clock time of the first non-empty token (epoch seconds).
        finished_at: Wall-clock time of the last token (epoch seconds).
        inter_token_gaps_s: Every gap between consecutive streamed chunks.
        finish_reason: ``stop``, ``length`` ...
        error: Error text when this request failed.
    """

    id: str
    title: str | None = None
    output: str = ""
    reference: str | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    request_sent_at: float | None = None
    first_token_at: float | None = None
    finished_at: float | None = None
    inter_token_gaps_s: list[float] = Field(default_factory=list)
    finish_reason: str | None = None
    error: str | None = None


class SingleRunResult(_Model):
    """One run of a job over all of its samples.

    Attributes:
        run_index: 1-based index; run 1 is the cold run.
        cold_start: True for the cold run (includes model load).
        started_at: Start time.
        finished_at: End time.
        metrics: Run-level scalar metrics (DESIGN section 6 names).
        unavailable_metrics: Metric -> reason it could not be measured (absent, never zero).
        samples: Per-request results.
        telemetry: Optional time series (``{"t": [...], "gpu_power_w": [...]}``) for plots.
        notes: Caveats about how figures were obtained (e.g. token counts from streamed chunks).
    """

    type: Literal["run.result"] = "run.result"
    run_index: int = Field(ge=1)
    cold_start: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    unavailable_metrics: dict[str, str] = Field(default_factory=dict)
    samples: list[SampleResult] = Field(default_factory=list)
    telemetry: dict[str, list[float]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


class MetricStatistics(_Model):
    """Statistics of one metric over runs (see ``common.stats.describe``).

    Attributes:
        n: Number of values.
        mean: Mean.
        std: Sample standard deviation.
        min: Minimum.
        max: Maximum.
        median: Median.
        p90: 90th percentile.
        p95: 95th percentile.
        p99: 99th percentile.
        cv: Coefficient of variation (std / mean), None when the mean is 0.
        ci95: 95% confidence interval of the mean (Student's t), None for n < 2.
        outliers: Indices into ``values`` flagged by ``outlier_rule``.
        outlier_rule: The robust rule used.
        values: Raw values, in run order.
        unit: Unit symbol.
    """

    n: int = Field(ge=1)
    mean: float
    std: float
    min: float
    max: float
    median: float
    p90: float
    p95: float
    p99: float
    cv: float | None = None
    ci95: tuple[float, float] | None = None
    outliers: list[int] = Field(default_factory=list)
    outlier_rule: str = "modified_z_mad>3.5"
    values: list[float] = Field(default_factory=list)
    unit: str = ""


class ExecutionInfo(_Model):
    """Where and how a white-box runtime held the model: what hardware-normalized efficiency needs.

    Attributes:
        device: Device the weights were on (``cpu``, ``cuda``, ``mps``).
        dtype: Weight dtype (``bfloat16`` ...).
        parameters: Parameter count of the loaded model (shared tensors counted once).
        weight_bytes: Bytes of those parameters: what one decode step reads at batch size 1.
    """

    device: str
    dtype: str | None = None
    parameters: int | None = Field(default=None, ge=0)
    weight_bytes: int | None = Field(default=None, ge=0)


class MultiRunJobResult(_Model):
    """Complete result of a job: every run, statistics over warm runs, the cold run apart.

    Attributes:
        type: Message type tag.
        protocol_version: Protocol version.
        job_id: Server job id.
        attempt: Attempt number.
        attempt_token: Token of the attempt (checked by the server).
        status: Final agent-side state.
        task: Task name.
        model: Model name.
        runtime: Runtime name.
        access_mode: Access mode of the runtime.
        runs_per_job: Runs requested.
        runs: Runs finished (the cold run first).
        statistics: Metric -> statistics over warm runs (over the cold run only when runs_per_job is 1).
        statistics_source: ``warm`` or ``cold`` (the latter only when there is no warm run).
        cold_start: The cold run's run-level metrics, including ``model_load_s``.
        unavailable_metrics: Metric -> reason it could not be produced.
        hardware_fingerprint: Fingerprint of the agent that ran the job.
        execution: Device, dtype and weight size of the loaded model (white-box runtimes only).
        error: Error text when the job failed.
        started_at: Start time.
        finished_at: End time.
    """

    type: Literal["job.result"] = "job.result"
    protocol_version: str = PROTOCOL_VERSION
    job_id: str
    attempt: int = 1
    attempt_token: str | None = None
    status: AgentJobState = AgentJobState.COMPLETED
    task: str = ""
    model: str = ""
    runtime: str = ""
    access_mode: AccessMode | None = None
    runs_per_job: int = Field(default=1, ge=MIN_RUNS_PER_JOB, le=MAX_RUNS_PER_JOB)
    runs: list[SingleRunResult] = Field(default_factory=list)
    statistics: dict[str, MetricStatistics] = Field(default_factory=dict)
    statistics_source: Literal["warm", "cold", "none"] = "warm"
    cold_start: dict[str, float | None] | None = None
    unavailable_metrics: dict[str, str] = Field(default_factory=dict)
    hardware_fingerprint: str | None = None
    execution: ExecutionInfo | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @field_validator("job_id", mode="before")
    @classmethod
    def _job_id_to_str(cls, v: Any) -> Any:
        """Accept integer ids and carry them as strings."""
        return str(v) if isinstance(v, int) else v


# --------------------------------------------------------------------------------------------------
# Registration and heartbeats
# --------------------------------------------------------------------------------------------------


class RegisterRequest(_Model):
    """Server -> agent ``POST /api/v1/register``: the server hands over its URL and the agent's credential."""

    type: Literal["agent.register"] = "agent.register"
    protocol_version: str = PROTOCOL_VERSION
    agent_id: str = Field(min_length=1)
    server_url: str = Field(min_length=1)
    credential: str = Field(min_length=16)


class AnnounceRequest(_Model):
    """Agent -> server self-announce: asks the server to register it (then the server calls ``/register``).

    Attributes:
        url: URL where the server can reach the agent.
        token: Bearer token the server must use when calling the agent.
        registration_key: Shared key proving the agent may join.
        name: Suggested agent name.
    """

    type: Literal["agent.announce"] = "agent.announce"
    protocol_version: str = PROTOCOL_VERSION
    url: str = Field(min_length=1)
    token: str = Field(min_length=1)
    registration_key: str = Field(min_length=1)
    name: str | None = None


class Heartbeat(_Model):
    """Agent -> server every heartbeat interval: small on purpose (DESIGN section 3, flow 2).

    Attributes:
        type: Message type tag.
        protocol_version: Protocol version.
        agent_id: Server-assigned id.
        activity: Idle or busy.
        running_job_id: Job running now.
        attempt: Its attempt number.
        attempt_token: Its attempt token.
        progress: Its progress.
        capabilities_hash: :meth:`AgentInfo.capabilities_hash`; a change asks the server to refresh.
        finished_job_ids: Jobs with results waiting in the spool for acknowledgement.
        sent_at: Send time.
    """

    type: Literal["agent.heartbeat"] = "agent.heartbeat"
    protocol_version: str = PROTOCOL_VERSION
    agent_id: str
    activity: AgentActivity = AgentActivity.IDLE
    running_job_id: str | None = None
    attempt: int | None = None
    attempt_token: str | None = None
    progress: JobProgress | None = None
    capabilities_hash: str | None = None
    finished_job_ids: list[str] = Field(default_factory=list)
    sent_at: datetime = Field(default_factory=utcnow)


ProtocolMessage = Annotated[
    AgentInfo | JobRequest | JobProgress | MultiRunJobResult | Heartbeat | RegisterRequest | AnnounceRequest,
    Field(discriminator="type"),
]

# The benchmark models refer to MetricStatistics, which is defined further down the module.
BenchmarkFigure.model_rebuild()
HardwareBenchmarkResult.model_rebuild()
AgentInfo.model_rebuild()
