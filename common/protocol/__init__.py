"""The Agent Protocol: every message exchanged between the RUCKUS server and its agents.

Messages carry a ``type`` and the protocol version so that either side can refuse what it does not
understand instead of misreading it. Field names here are a contract: the server's REST API, the agent's
API, the CLI and the UI all rely on them.

The models live in one module per idea (:mod:`~common.protocol.enums`, :mod:`~common.protocol.agent_info`,
:mod:`~common.protocol.benchmarks`, :mod:`~common.protocol.jobs`, :mod:`~common.protocol.load`,
:mod:`~common.protocol.results`, :mod:`~common.protocol.messages`); every public name is re-exported here, so
``from common.protocol import X`` is the way to use them.
"""

from __future__ import annotations

from common.protocol.agent_info import (
    AgentInfo,
    CpuInfo,
    DiskInfo,
    FrameworkInfo,
    GpuInfo,
    LocalServer,
    MemoryInfo,
    ModelInfo,
    MonitoringCapability,
    ProbeStatus,
    RuntimeCapability,
    SystemInfo,
    hardware_fingerprint,
    memory_class_gib,
)
from common.protocol.base import MAX_RUNS_PER_JOB, MIN_RUNS_PER_JOB, PROTOCOL_VERSION, ProtocolModel, utcnow
from common.protocol.benchmarks import BenchmarkFigure, HardwareBenchmarkResult
from common.protocol.enums import (
    AGENT_TERMINAL_STATES,
    AccessMode,
    AgentActivity,
    AgentJobState,
    AgentMode,
    JobStage,
)
from common.protocol.jobs import JobProgress, JobRequest, ModelSpec, RuntimeSpec, TaskSpec
from common.protocol.load import (
    INFINITE_RATE,
    MAX_LOAD_POINTS,
    Arrival,
    EarlyStop,
    GeneratorOverhead,
    LoadPointRun,
    LoadSpec,
    LoadSweepRun,
    PromptSource,
    PromptSpec,
    RequestRecord,
    ServiceLevelObjectives,
)
from common.protocol.messages import (
    MAX_WORK_WAIT_S,
    AgentJobReport,
    AgentJobSummary,
    AgentStatusReport,
    AnnounceAnswer,
    AnnounceRequest,
    Heartbeat,
    HeartbeatAnswer,
    JobRejection,
    PullRegistration,
    ReachAnswer,
    ReachRequest,
    RegisterRequest,
    ServerContact,
    WorkAnswer,
    WorkRequest,
)
from common.protocol.results import ExecutionInfo, MultiRunJobResult, SampleResult, SingleRunResult
from common.protocol.statistics import MetricStatistics

__all__ = [
    "AGENT_TERMINAL_STATES",
    "INFINITE_RATE",
    "MAX_LOAD_POINTS",
    "MAX_RUNS_PER_JOB",
    "MAX_WORK_WAIT_S",
    "MIN_RUNS_PER_JOB",
    "PROTOCOL_VERSION",
    "AccessMode",
    "AgentActivity",
    "AgentInfo",
    "AgentJobReport",
    "AgentJobState",
    "AgentJobSummary",
    "AgentMode",
    "AgentStatusReport",
    "AnnounceAnswer",
    "AnnounceRequest",
    "Arrival",
    "BenchmarkFigure",
    "CpuInfo",
    "DiskInfo",
    "EarlyStop",
    "ExecutionInfo",
    "FrameworkInfo",
    "GeneratorOverhead",
    "GpuInfo",
    "HardwareBenchmarkResult",
    "Heartbeat",
    "HeartbeatAnswer",
    "JobProgress",
    "JobRejection",
    "JobRequest",
    "JobStage",
    "LoadPointRun",
    "LoadSpec",
    "LoadSweepRun",
    "LocalServer",
    "MemoryInfo",
    "MetricStatistics",
    "ModelInfo",
    "ModelSpec",
    "MonitoringCapability",
    "MultiRunJobResult",
    "ProbeStatus",
    "PromptSource",
    "PromptSpec",
    "ProtocolModel",
    "PullRegistration",
    "ReachAnswer",
    "ReachRequest",
    "RegisterRequest",
    "RequestRecord",
    "RuntimeCapability",
    "RuntimeSpec",
    "SampleResult",
    "ServerContact",
    "ServiceLevelObjectives",
    "SingleRunResult",
    "SystemInfo",
    "TaskSpec",
    "WorkAnswer",
    "WorkRequest",
    "hardware_fingerprint",
    "memory_class_gib",
    "utcnow",
]
