"""Runtime interface: load a model (or connect to an endpoint) and stream one generation at a time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from agent_runtime.constants import TELEMETRY_INTERVAL_S
from agent_runtime.policy import AgentPolicy
from agent_runtime.tasks.base import GenerationSettings, Sample, Task
from agent_runtime.telemetry import nvml_status
from common.catalog import RUNTIMES, RuntimeDef
from common.protocol import AccessMode, AgentInfo, ExecutionInfo, JobRequest, RuntimeCapability


def gpu_host_metrics(
    info: AgentInfo, names: tuple[str, ...], *, gpu: bool | None = None
) -> tuple[list[str], dict[str, str]]:
    """Split GPU host metrics (utilization, power, energy: read through NVML) into measurable and not, with why.

    Args:
        info: The host's description (its ``nvml`` monitoring capability, when detected).
        names: The runtime's GPU host metrics.
        gpu: Whether the runtime's work runs on an NVIDIA GPU here; None when the runtime does not know (a server on
            the host may use one): then NVML alone decides.

    Returns:
        ``(metrics, unavailable)``: the names NVML can give, and the others with the reason.
    """
    nvml = next((m for m in info.monitoring if m.name == "nvml"), None)
    ok, reason = (nvml.available, nvml.reason) if nvml else nvml_status()
    if gpu is False:
        return [], dict.fromkeys(names, "no NVIDIA GPU on this host")
    if ok:
        return list(names), {}
    return [], dict.fromkeys(names, reason or "NVML unavailable")


#: Callable the engine passes to runtimes: True when the job must stop (cancel or timeout).
StopCheck = Callable[[], bool]


class RuntimeFailure(RuntimeError):
    """The runtime cannot go on (model not loadable, generation crashed); the job fails with this message."""


class RequestError(RuntimeError):
    """One request failed (HTTP error, broken stream); recorded on its sample, the run goes on."""


@dataclass
class Generation:
    """What one request produced, with raw timings.

    Attributes:
        text: Generated text.
        prompt_tokens: Tokens in the prompt (None when the runtime cannot know).
        output_tokens: Tokens generated (None when unknown).
        sent_at: Wall-clock time the request was sent (epoch seconds).
        sent: ``time.perf_counter()`` when the request was sent.
        first_token: ``perf_counter`` of the first non-empty token/chunk (None when nothing came).
        chunk_times: ``perf_counter`` of every streamed token/chunk, in order.
        last_step: ``perf_counter`` of the request's last generation step when it came after the last chunk with
            text: an endpoint that stops on EOS streams that step as a chunk without text (and counts its token in
            ``usage.completion_tokens``). None when the last text chunk was the last step.
        finish_reason: ``stop``, ``length``, ``cancelled`` ...
        stopped: True when the stop check ended the request early.
        notes: Caveats about how a figure was obtained (e.g. token counts from chunks).
    """

    text: str
    prompt_tokens: int | None
    output_tokens: int | None
    sent_at: float
    sent: float
    first_token: float | None
    chunk_times: list[float] = field(default_factory=list)
    last_step: float | None = None
    finish_reason: str | None = None
    stopped: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class RunMeasurement:
    """Run-level measurements a runtime adds (telemetry, server-side metrics).

    Attributes:
        metrics: Metric name -> value.
        unavailable: Metric name -> reason.
        series: Time series for plots.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)


class Runtime(ABC):
    """Base class of runtimes.

    A runtime object lives for one job: :meth:`load` once (inside the cold run), then
    :meth:`start_run` / :meth:`generate` per sample / :meth:`finish_run` for every run, then :meth:`close`.

    Args:
        request: The job.
        params: Validated runtime params (the catalogue's params model).
        data_dir: The agent's data directory.
        model_dirs: Extra model directories.
        policy: What the agent's operator allows a job to name (default: :meth:`AgentPolicy.strict`).
    """

    name: ClassVar[str]
    #: Telemetry sampling interval; the engine sets the agent's ``telemetry_interval_s`` on each runtime.
    telemetry_interval_s: float = TELEMETRY_INTERVAL_S

    def __init__(
        self,
        request: JobRequest,
        params: BaseModel,
        *,
        data_dir: Path,
        model_dirs: tuple[Path, ...] = (),
        policy: AgentPolicy | None = None,
    ) -> None:
        self.request = request
        self.params = params
        self.data_dir = Path(data_dir)
        self.model_dirs = model_dirs
        self.policy = policy or AgentPolicy.strict(self.data_dir, model_dirs)

    @classmethod
    def definition(cls) -> RuntimeDef:
        """The catalogue entry of this runtime."""
        return RUNTIMES[cls.name]

    @classmethod
    def access_mode(cls) -> AccessMode:
        """White, gray or black box."""
        return cls.definition().access_mode

    @classmethod
    @abstractmethod
    def capability(cls, info: AgentInfo) -> RuntimeCapability:
        """Describe what this runtime can do on the host ``info`` describes."""

    def check(self) -> dict[str, str]:
        """Check the job can run before accepting it (cheap, no model load).

        Returns:
            ``{dotted.field: problem}``; empty when fine.
        """
        return {}

    def prepare(self) -> None:  # noqa: B027 - optional hook, most runtimes need nothing
        """Do slow one-off preparation outside the timed cold run (e.g. convert a model)."""

    @abstractmethod
    def load(self) -> float | None:
        """Load the model (cold run only).

        Returns:
            Seconds the load took, or None when the runtime does not load a model itself.
        """

    @abstractmethod
    def model_load_unavailable_reason(self) -> str | None:
        """Why ``model_load_s`` cannot be measured (None when it can)."""

    def start_run(self, cold: bool) -> None:  # noqa: B027 - optional hook
        """Begin run-level measurement."""

    def finish_run(self) -> RunMeasurement:
        """End run-level measurement.

        Returns:
            The run-level measurements.
        """
        return RunMeasurement()

    @abstractmethod
    def generate(self, task: Task, sample: Sample, settings: GenerationSettings, should_stop: StopCheck) -> Generation:
        """Run one request and stream its output, recording per-token timings.

        Args:
            task: The task (builds prompts).
            sample: The sample.
            settings: Decoding settings.
            should_stop: Returns True when the job must stop; checked between tokens.

        Returns:
            The generation.

        Raises:
            RequestError: The request failed; the engine records it on the sample.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model / connections."""

    def describe(self) -> dict[str, Any]:
        """Details worth recording in logs (device, dtype, endpoint)."""
        return {}

    def execution(self) -> ExecutionInfo | None:
        """Device, dtype and weight size of the loaded model; None where the runtime cannot see them.

        Gray- and black-box runtimes reach a model through an endpoint and never see its weights.
        """
        return None
