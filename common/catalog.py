"""Catalogue of tasks, runtimes and models that both the server and the agent know.

The server validates experiment definitions against these schemas (a bad parameter is a 400 naming the
field); the agent validates the same ``JobRequest`` with the same schemas before running it. Adding a task
or runtime starts here: add its parameter model and an entry in :data:`TASKS` or :data:`RUNTIMES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.metrics import Metric
from common.protocol import AccessMode
from common.validation import parse

P = TypeVar("P", bound=BaseModel)


class _Params(BaseModel):
    """Base for parameter schemas: unknown parameters are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


# --------------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------------


class WikipediaSummarizationParams(_Params):
    """Parameters of the ``wikipedia_summarization`` task.

    Attributes:
        num_samples: Articles per run.
        seed: Seed of the sampling across length buckets (same seed = same articles everywhere).
        max_new_tokens: Generation budget per summary.
        source: ``packaged`` (offline vital-articles file), ``wikipedia_api`` (online, cached on disk)
            or ``jsonl`` (a user file of ``{id, title, document, reference}`` lines on the agent).
        jsonl_path: Path of the JSONL file on the agent (required for ``source=jsonl``).
        titles: Article titles for ``source=wikipedia_api`` (or to pick from the packaged set).
        temperature: Sampling temperature; 0 means greedy decoding (reproducible).
        max_document_chars: Documents are cut to this many characters before prompting.
        min_document_chars: Shorter documents are skipped when sampling.
        language: Wikipedia language edition for ``source=wikipedia_api``.
    """

    num_samples: int = Field(default=5, ge=1, le=1000)
    seed: int = Field(default=42, ge=0)
    max_new_tokens: int = Field(default=64, ge=1, le=8192)
    source: Literal["packaged", "wikipedia_api", "jsonl"] = "packaged"
    jsonl_path: str | None = None
    titles: list[str] | None = None
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_document_chars: int = Field(default=2000, ge=100, le=200_000)
    min_document_chars: int = Field(default=200, ge=0, le=200_000)
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[a-z]+)?$")

    @model_validator(mode="after")
    def _source_needs(self) -> WikipediaSummarizationParams:
        """Check the parameters each source needs."""
        if self.source == "jsonl" and not self.jsonl_path:
            raise ValueError("jsonl_path is required when source is 'jsonl'")
        if self.source == "wikipedia_api" and not self.titles:
            raise ValueError("titles is required when source is 'wikipedia_api'")
        if self.min_document_chars > self.max_document_chars:
            raise ValueError("min_document_chars must not exceed max_document_chars")
        return self


#: Devices a hardware benchmark can measure; ``auto`` picks cuda, then mps, then cpu.
BenchmarkDevice = Literal["auto", "cpu", "cuda", "mps"]


class HardwareBenchmarkParams(_Params):
    """Parameters of the ``hardware_benchmark`` task (memory bandwidth and matmul throughput peaks).

    Attributes:
        quick: Smaller sizes and fewer repeats (seconds instead of about a minute).
        device: Device to measure; ``auto`` uses the runtime's device (itself ``auto`` by default).
            The CPU figures are measured on every host in addition.
        repeats: Timed repeats per figure (warm-up excluded); None = 3 in quick mode, 10 otherwise.
    """

    quick: bool = False
    device: BenchmarkDevice = "auto"
    repeats: int | None = Field(default=None, ge=1, le=100)


@dataclass(frozen=True)
class TaskDef:
    """A task known to RUCKUS.

    Attributes:
        name: Task name used in experiments and job requests.
        description: One-line description.
        params_model: Pydantic model validating the task params.
        server_metrics: Metrics the server computes on the outputs after a run.
        needs_model: False for tasks that measure the host itself (the job's model is ``{"name": "none"}``).
    """

    name: str
    description: str
    params_model: type[_Params]
    server_metrics: tuple[str, ...] = ()
    needs_model: bool = True


TASKS: dict[str, TaskDef] = {
    "wikipedia_summarization": TaskDef(
        name="wikipedia_summarization",
        description="Summarize Wikipedia articles; outputs are ROUGE-scored against the lead summary.",
        params_model=WikipediaSummarizationParams,
        server_metrics=(Metric.ROUGE1, Metric.ROUGE2, Metric.ROUGEL, Metric.ROUGELSUM),
    ),
    "hardware_benchmark": TaskDef(
        name="hardware_benchmark",
        description="Measure memory bandwidth and matrix-multiply throughput per precision (no model).",
        params_model=HardwareBenchmarkParams,
        needs_model=False,
    ),
}

#: Model name of jobs whose task needs no model (``TaskDef.needs_model`` False).
NO_MODEL_NAME = "none"


# --------------------------------------------------------------------------------------------------
# Runtimes
# --------------------------------------------------------------------------------------------------


class TransformersParams(_Params):
    """Parameters of the white-box ``transformers`` runtime.

    Attributes:
        device: ``auto`` picks cuda, then mps, then cpu.
        dtype: Weights dtype; ``auto`` = bfloat16 on GPUs that support it, float16 on other GPUs,
            float32 on CPU.
        threads: CPU threads for torch (None = torch's default).
        attn_implementation: Optional attention implementation (``sdpa``, ``eager`` ...).
    """

    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    threads: int | None = Field(default=None, ge=1, le=1024)
    attn_implementation: str | None = None


class OpenAIParams(_Params):
    """Parameters of the black-box ``openai`` runtime (any OpenAI-compatible endpoint).

    Attributes:
        base_url: Endpoint base URL, e.g. ``https://api.example.com/v1``.
        api_key_env: Name of the environment variable *on the agent* holding the API key; keys are
            never sent to or stored on the server.
        served_model: Model name the endpoint expects (default: the job's model name).
        endpoint: ``chat`` (``/chat/completions``) or ``completions``.
        timeout_s: Per-request timeout.
    """

    base_url: str = Field(min_length=1, pattern=r"^https?://")
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    served_model: str | None = None
    endpoint: Literal["chat", "completions"] = "chat"
    timeout_s: float = Field(default=120.0, gt=0, le=3600)


class VllmParams(_Params):
    """Parameters of the gray-box ``vllm`` runtime (a vLLM server on the agent's host).

    Attributes:
        base_url: OpenAI-compatible API of the server; default: the agent picks the local server of this runtime
            that serves the job's model (the servers its operator named or it found on the usual ports).
        metrics_url: Prometheus endpoint (default: the picked server's, or ``<base_url without /v1>/metrics``).
        api_key_env: Environment variable on the agent holding the server's API key, if any.
        served_model: Model name the server serves (default: the job's model name).
        endpoint: ``chat`` (``/chat/completions``, the server applies the chat template) or ``completions``
            (the task's plain-text prompt, as ``vllm bench serve --backend vllm`` sends it).
        timeout_s: Per-request timeout.
    """

    base_url: str | None = Field(default=None, pattern=r"^https?://")
    metrics_url: str | None = Field(default=None, pattern=r"^https?://")
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    served_model: str | None = None
    endpoint: Literal["chat", "completions"] = "chat"
    timeout_s: float = Field(default=120.0, gt=0, le=3600)


class HardwareParams(_Params):
    """Parameters of the white-box ``hardware`` runtime (runs host measurement tasks, no model).

    Attributes:
        device: ``auto`` picks cuda, then mps, then cpu.
    """

    device: BenchmarkDevice = "auto"


class LlamaCppParams(_Params):
    """Parameters of the white-box ``llama_cpp`` runtime (llama-cpp-python loading a GGUF file in the agent).

    Attributes:
        mode: ``chat`` formats the task's messages with the chat template stored in the GGUF file;
            ``completion`` sends the task's plain-text prompt.
        n_ctx: Context window in tokens (prompt and generation together).
        n_batch: Prompt tokens processed per decode call.
        n_threads: CPU threads for generation (None = llama.cpp's default, the physical cores).
        n_threads_batch: CPU threads for prompt processing (None = ``n_threads``).
        n_gpu_layers: Layers offloaded to the GPU of a CUDA, Metal or Vulkan build (-1 = all, 0 = CPU only).
    """

    mode: Literal["chat", "completion"] = "chat"
    n_ctx: int = Field(default=4096, ge=64, le=1_048_576)
    n_batch: int = Field(default=512, ge=1, le=65_536)
    n_threads: int | None = Field(default=None, ge=1, le=1024)
    n_threads_batch: int | None = Field(default=None, ge=1, le=1024)
    n_gpu_layers: int = Field(default=0, ge=-1, le=100_000)


_CLIENT_METRICS = (
    Metric.E2E_LATENCY_S,
    Metric.TTFT_S,
    Metric.TPOT_S,
    Metric.INTER_TOKEN_GAPS_S,
    Metric.OUTPUT_TOKENS_PER_S,
    Metric.OUTPUT_TOKENS,
    Metric.PROMPT_TOKENS,
    Metric.RUN_WALL_S,
)


@dataclass(frozen=True)
class RuntimeDef:
    """A runtime known to RUCKUS.

    Attributes:
        name: Runtime name used in experiments and job requests.
        access_mode: White, gray or black box.
        description: One-line description.
        params_model: Pydantic model validating the runtime params.
        framework: Python distribution the agent needs (None when only HTTP is needed).
        metrics: Metrics the runtime can produce when the host allows it.
        gpu_metrics: Metrics that additionally need NVML on the host.
        needs_local_model: True when the agent loads weights itself (memory requirement applies).
        model_formats: Formats of a local copy the runtime loads (``hf``, ``gguf``); empty = any.
    """

    name: str
    access_mode: AccessMode
    description: str
    params_model: type[_Params]
    framework: str | None
    metrics: tuple[str, ...]
    gpu_metrics: tuple[str, ...] = ()
    needs_local_model: bool = False
    model_formats: tuple[str, ...] = ()


_GPU_HOST_METRICS = (Metric.GPU_UTILIZATION_PCT, Metric.GPU_POWER_W, Metric.ENERGY_J)

RUNTIMES: dict[str, RuntimeDef] = {
    "transformers": RuntimeDef(
        name="transformers",
        access_mode=AccessMode.WHITE_BOX,
        description="Hugging Face transformers on the agent (loads the model itself).",
        params_model=TransformersParams,
        framework="transformers",
        metrics=(*_CLIENT_METRICS, Metric.MODEL_LOAD_S, Metric.PEAK_RSS_BYTES, Metric.PEAK_GPU_MEMORY_BYTES),
        gpu_metrics=_GPU_HOST_METRICS,
        needs_local_model=True,
        # Hugging Face format; the packaged SmolLM2 GGUF counts too (converted into that format on first use).
        model_formats=("hf",),
    ),
    "llama_cpp": RuntimeDef(
        name="llama_cpp",
        access_mode=AccessMode.WHITE_BOX,
        description="llama.cpp in the agent (llama-cpp-python): loads a GGUF file itself, quantized as stored.",
        params_model=LlamaCppParams,
        framework="llama_cpp",
        metrics=(*_CLIENT_METRICS, Metric.MODEL_LOAD_S, Metric.PEAK_RSS_BYTES),
        gpu_metrics=_GPU_HOST_METRICS,
        needs_local_model=True,
        model_formats=("gguf",),
    ),
    "vllm": RuntimeDef(
        name="vllm",
        access_mode=AccessMode.GRAY_BOX,
        description="A vLLM server on the agent's host, via its OpenAI-compatible API and /metrics.",
        params_model=VllmParams,
        framework=None,
        metrics=_CLIENT_METRICS,
        gpu_metrics=(*_GPU_HOST_METRICS, Metric.PEAK_GPU_MEMORY_BYTES),
    ),
    "llamacpp_server": RuntimeDef(
        name="llamacpp_server",
        access_mode=AccessMode.GRAY_BOX,
        description="A llama.cpp server (llama-server, llama-cpp-python's server, Ollama) on the agent's host, "
        "via its OpenAI-compatible API and, where it has one, its /metrics.",
        params_model=VllmParams,
        framework=None,
        metrics=_CLIENT_METRICS,
        gpu_metrics=_GPU_HOST_METRICS,
    ),
    "openai": RuntimeDef(
        name="openai",
        access_mode=AccessMode.BLACK_BOX,
        description="Any remote OpenAI-compatible endpoint (client-side metrics only).",
        params_model=OpenAIParams,
        framework=None,
        metrics=_CLIENT_METRICS,
    ),
    "hardware": RuntimeDef(
        name="hardware",
        access_mode=AccessMode.WHITE_BOX,
        description="The agent's own hardware, measured with torch (bandwidth, matmul throughput; no model).",
        params_model=HardwareParams,
        framework="torch",
        # Figures are named per device and precision (``tflops.cuda.bf16``), so they are not listed here.
        metrics=(Metric.RUN_WALL_S, Metric.PEAK_RSS_BYTES, Metric.CPU_PERCENT),
        gpu_metrics=_GPU_HOST_METRICS,
    ),
}


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogModel:
    """A model RUCKUS knows by a short name.

    Attributes:
        name: Short name used in experiments.
        repo_id: Hugging Face repo id.
        architecture: Model class.
        parameters: Parameter count.
        default_dtype: Dtype of the reference weights.
        packaged: True when an offline copy ships as a Python package (no hub download).
        context_length: Maximum context in tokens.
        aliases: Other accepted names.
    """

    name: str
    repo_id: str
    architecture: str
    parameters: int
    default_dtype: str
    packaged: bool = False
    context_length: int | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)


MODELS: dict[str, CatalogModel] = {
    "smollm2-135m-instruct": CatalogModel(
        name="smollm2-135m-instruct",
        repo_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        architecture="LlamaForCausalLM",
        parameters=134_515_008,
        default_dtype="bfloat16",
        packaged=True,
        context_length=8192,
        aliases=("HuggingFaceTB/SmolLM2-135M-Instruct",),
    ),
}

#: A Hugging Face repo id: ``owner/name`` with the characters the hub allows.
HF_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")

#: Bytes per parameter for memory requirement estimates.
DTYPE_BYTES: dict[str, float] = {
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "int8": 1,
    "fp8": 1,
    "int4": 0.5,
}


def find_model(name: str) -> CatalogModel | None:
    """Look a model up by catalogue name or alias (case-insensitive).

    Args:
        name: Name or alias.

    Returns:
        The catalogue entry, or None.
    """
    key = name.strip().lower()
    for model in MODELS.values():
        if key == model.name or key in (a.lower() for a in model.aliases):
            return model
    return None


def model_names(name: str) -> set[str]:
    """Every lower-cased name a model goes by: the name itself and its catalogue name, repo id and aliases.

    Args:
        name: A model name (catalogue name, alias, repo id or any name a server uses).

    Returns:
        The names, lower case.
    """
    names = {name.strip().lower()}
    catalog = find_model(name)
    if catalog is not None:
        names |= {catalog.name.lower(), catalog.repo_id.lower(), *(a.lower() for a in catalog.aliases)}
    return names


def validate_model_name(name: str, runtime: str | None = None) -> str | None:
    """Check a model name for a runtime.

    White-box runtimes need a catalogue model or a Hugging Face repo id (the agent must find the
    weights). Gray/black-box runtimes send the name to an endpoint, which may serve any name.

    Args:
        name: Model name from the experiment.
        runtime: Runtime it will run with (None: only catalogue or repo id accepted).

    Returns:
        None when the name is acceptable, otherwise the problem in words.
    """
    if not name or not name.strip():
        return "model name must not be empty"
    if find_model(name) or HF_REPO_ID_RE.match(name):
        return None
    rdef = RUNTIMES.get(runtime or "")
    if rdef is not None and not rdef.needs_local_model:
        return None
    known = ", ".join(sorted(MODELS))
    return f"unknown model {name!r}: use a catalogue name ({known}) or a Hugging Face repo id 'owner/name'"


def runtime_task_problem(task: str, runtime: str) -> str | None:
    """Check that ``runtime`` can run ``task``: model tasks need a model runtime, host measurements ``hardware``.

    Args:
        task: Task name (from :data:`TASKS`).
        runtime: Runtime name (from :data:`RUNTIMES`).

    Returns:
        None when they fit, otherwise the problem in words.
    """
    tdef, rdef = TASKS.get(task), RUNTIMES.get(runtime)
    if tdef is None or rdef is None:
        return None  # unknown names are reported by their own validation
    measures_host = rdef.name == "hardware"
    if tdef.needs_model and measures_host:
        return f"runtime 'hardware' runs only host measurements ({', '.join(measurement_tasks())}), not {task!r}"
    if not tdef.needs_model and not measures_host:
        return f"task {task!r} measures the host itself and runs with the 'hardware' runtime, not {runtime!r}"
    return None


def measurement_tasks() -> list[str]:
    """Names of the tasks that measure the host and need no model (``TaskDef.needs_model`` False)."""
    return [name for name, t in TASKS.items() if not t.needs_model]


def validation_errors(model: type[BaseModel], data: dict[str, Any], prefix: str) -> dict[str, str]:
    """Validate ``data`` against a params model and return ``{"prefix.field": message}`` for every problem.

    Args:
        model: Params model.
        data: Input mapping.
        prefix: Dotted prefix put before each field path (e.g. ``task.params``).

    Returns:
        Empty dict when valid.
    """
    return parse_params(model, data, prefix)[1]


def parse_params(model: type[P], data: dict[str, Any], prefix: str = "") -> tuple[P | None, dict[str, str]]:
    """Validate params once: the params (defaults filled in) or the errors naming each bad parameter.

    Args:
        model: Params model.
        data: Input mapping.
        prefix: Dotted prefix put before each field path in the errors.

    Returns:
        ``(params, {})`` when valid, ``(None, {"prefix.field": message})`` otherwise.
    """
    return parse(model, data, prefix, unknown="unknown parameter", default_field=prefix or "params")


def task_params(name: str, params: dict[str, Any]) -> BaseModel:
    """Validate and return the params of task ``name``.

    Args:
        name: Task name.
        params: Raw params.

    Returns:
        The validated params model (defaults filled in).

    Raises:
        KeyError: Unknown task.
        pydantic.ValidationError: Bad params.
    """
    return TASKS[name].params_model.model_validate(params)


def runtime_params(name: str, params: dict[str, Any]) -> BaseModel:
    """Validate and return the params of runtime ``name``.

    Args:
        name: Runtime name.
        params: Raw params.

    Returns:
        The validated params model (defaults filled in).

    Raises:
        KeyError: Unknown runtime.
        pydantic.ValidationError: Bad params.
    """
    return RUNTIMES[name].params_model.model_validate(params)
