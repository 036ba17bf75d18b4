"""White-box runtime: Hugging Face transformers on the agent itself.

Generation runs in a thread and streams through a :class:`~transformers.TextIteratorStreamer`; a subclass
records the time each token arrives, which gives TTFT and the inter-token gaps. A stopping criterion
checks for cancel/timeout between tokens.
"""

from __future__ import annotations

import gc
import importlib.util
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

from agent_runtime.constants import GENERATION_JOIN_TIMEOUT_S
from agent_runtime.models import ModelNotFoundError, ResolvedModel, resolve_model
from agent_runtime.paths import SMOLLM2_NAME, PathRefused, packaged_smollm2_gguf
from agent_runtime.runtimes.base import (
    Generation,
    RunMeasurement,
    Runtime,
    RuntimeFailure,
    StopCheck,
    gpu_host_metrics,
)
from agent_runtime.tasks.base import GenerationSettings, Sample, Task
from agent_runtime.telemetry import RunMonitor
from common.catalog import TransformersParams, find_model
from common.metrics import Metric
from common.protocol import AgentInfo, ExecutionInfo, RuntimeCapability

_GPU_HOST = (Metric.GPU_POWER_W, Metric.GPU_UTILIZATION_PCT, Metric.ENERGY_J)

T = TypeVar("T")


def _make_streamer_class() -> type:
    """Build the timing streamer class (transformers is imported lazily: the agent runs without it)."""
    from transformers import TextIteratorStreamer

    class TimedStreamer(TextIteratorStreamer):
        """A ``TextIteratorStreamer`` that also records the arrival time and id of every new token."""

        def __init__(self, tokenizer: Any, **kwargs: Any) -> None:
            super().__init__(tokenizer, **kwargs)
            self.token_times: list[float] = []
            self.token_ids: list[int] = []

        def put(self, value: Any) -> None:
            """Record the new tokens' arrival, then stream them as usual."""
            if not (self.skip_prompt and self.next_tokens_are_prompt):
                now = time.perf_counter()
                ids = value.reshape(-1).tolist()
                self.token_ids.extend(ids)
                self.token_times.extend([now] * len(ids))
            super().put(value)

    return TimedStreamer


def _make_stop_criteria(should_stop: StopCheck) -> Any:
    """Build a stopping criterion that ends generation when ``should_stop()`` turns true."""
    import torch
    from transformers import StoppingCriteria

    class _Stop(StoppingCriteria):
        """Stops every sequence once the job is cancelled or out of time."""

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> Any:
            stop = should_stop()
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return _Stop()


def pick_device(requested: str) -> str:
    """Resolve ``auto`` to cuda, then mps, then cpu.

    Args:
        requested: ``auto``, ``cpu``, ``cuda`` or ``mps``.

    Returns:
        The device name.

    Raises:
        RuntimeFailure: When an explicit device is not available.
    """
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if requested == "cuda" and not cuda:
        raise RuntimeFailure("runtime.params.device: cuda requested but torch sees no CUDA device")
    if requested == "mps" and not mps:
        raise RuntimeFailure("runtime.params.device: mps requested but it is not available")
    return requested


def pick_dtype(requested: str, device: str) -> Any:
    """Resolve ``auto`` to bfloat16 (GPUs that support it), float16 (other GPUs) or float32 (CPU).

    Args:
        requested: ``auto`` or a dtype name.
        device: Device the model runs on.

    Returns:
        The ``torch.dtype``.
    """
    import torch

    if requested != "auto":
        return getattr(torch, requested)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


class TransformersRuntime(Runtime):
    """Hugging Face transformers, loaded and run by the agent (white box)."""

    name = "transformers"
    params: TransformersParams
    #: Load sweeps it can run (``RuntimeCapability.load_modes``): concurrency levels as batch sizes on the loaded
    #: model (there is no arrival process to follow without a server).
    load_modes: ClassVar[tuple[str, ...]] = ("concurrency",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model: Any = None
        self.tokenizer: Any = None
        self.device = "cpu"
        self.dtype: Any = None
        self.resolved: ResolvedModel | None = None
        self._monitor: RunMonitor | None = None
        self._streamer_cls: type | None = None
        self._special_ids: set[int] = set()
        # One long-lived thread does all torch work of the job (load and every generate): each new
        # thread that computes gets its own OpenMP team, and the idle teams' spinning workers steal
        # cores from the active one (measured: ~40% slower generation on a 2-core host).
        self._torch_thread: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        """The job's single torch worker thread."""
        if self._torch_thread is None:
            self._torch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ruckus-torch")
        return self._torch_thread

    @classmethod
    def capability(cls, info: AgentInfo) -> RuntimeCapability:
        """Available when torch and transformers are installed; GPU metrics need CUDA and NVML."""
        rdef = cls.definition()
        frameworks = {f.name: f for f in info.frameworks}
        problems: list[str] = []
        not_installed = False
        for name in ("torch", "transformers"):
            framework = frameworks.get(name)
            if framework is None:
                if importlib.util.find_spec(name) is None:
                    problems.append(f"{name} is not installed")
                    not_installed = True
            elif not framework.available:
                # Detection's own reason: not installed, not importable, or an import still running past its
                # deadline on a busy host (which is no reason to tell the operator to install anything).
                problems.append(framework.reason or f"{name} is unavailable")
                not_installed = not_installed or framework.version is None
        if problems:
            hint = " (pip install 'ruckus[transformers]')" if not_installed else ""
            return RuntimeCapability(
                name=cls.name,
                access_mode=rdef.access_mode,
                available=False,
                reason="; ".join(problems) + hint,
                unavailable_metrics={m: "runtime unavailable" for m in (*rdef.metrics, *rdef.gpu_metrics)},
            )
        torch_fw = frameworks.get("torch")
        has_cuda = any((g.backend or "") == "cuda" for g in info.gpus) or bool(
            torch_fw and torch_fw.features.get("cuda")
        )
        metrics = [m for m in rdef.metrics if m != Metric.PEAK_GPU_MEMORY_BYTES]
        unavailable: dict[str, str] = {}
        if has_cuda:
            metrics.append(Metric.PEAK_GPU_MEMORY_BYTES)
        else:
            unavailable[Metric.PEAK_GPU_MEMORY_BYTES] = "no CUDA GPU: models run on the CPU (or MPS)"
        gpu_metrics, gpu_unavailable = gpu_host_metrics(info, rdef.gpu_metrics, gpu=bool(has_cuda))
        metrics.extend(gpu_metrics)
        unavailable.update(gpu_unavailable)
        return RuntimeCapability(
            name=cls.name,
            access_mode=rdef.access_mode,
            available=True,
            metrics=metrics,
            unavailable_metrics=unavailable,
            load_modes=list(cls.load_modes),
        )

    def check(self) -> dict[str, str]:
        """The model must exist locally (without converting it yet)."""
        spec = self.request.model
        try:
            resolve_model(
                spec.name,
                data_dir=self.data_dir,
                path=spec.path,
                revision=spec.revision,
                model_dirs=self.model_dirs,
                convert=False,
                paths=self.policy.paths,
            )
        except PathRefused as exc:
            return {exc.field: exc.problem}
        except ModelNotFoundError as exc:

            entry = find_model(spec.name)
            if entry is not None and entry.name == SMOLLM2_NAME and packaged_smollm2_gguf() is not None:
                return {}  # converted on first use
            return {"model.path" if spec.path else "model.name": str(exc)}
        return {}

    def prepare(self) -> None:
        """Resolve the model, converting the packaged GGUF if needed (not part of the timed load)."""
        spec = self.request.model
        try:
            self.resolved = resolve_model(
                spec.name,
                data_dir=self.data_dir,
                path=spec.path,
                revision=spec.revision,
                model_dirs=self.model_dirs,
                paths=self.policy.paths,
            )
        except (ModelNotFoundError, PathRefused) as exc:
            raise RuntimeFailure(str(exc)) from exc
        self.device = pick_device(self.params.device)
        requested = self.params.dtype
        if requested == "auto" and self.request.model.dtype and self.request.model.dtype != "auto":
            requested = self.request.model.dtype
        try:
            self.dtype = pick_dtype(requested, self.device)
        except AttributeError as exc:
            raise RuntimeFailure(f"model.dtype: unknown dtype {requested!r}") from exc
        if self.params.threads:
            import torch

            torch.set_num_threads(self.params.threads)
        self._streamer_cls = _make_streamer_class()

    def load(self) -> float:
        """Load tokenizer and weights onto the device, timed (on the job's torch thread)."""
        return self._executor().submit(self._load).result()

    def _load(self) -> float:
        """Load tokenizer and weights onto the device, timed."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        assert self.resolved is not None, "prepare() must run before load()"  # nosec B101  # narrowing
        kwargs: dict[str, Any] = {"local_files_only": True}
        if self.resolved.gguf_file:
            kwargs["gguf_file"] = self.resolved.gguf_file
        t0 = time.perf_counter()
        try:
            # Bandit B615: a local directory (local_files_only in kwargs): nothing is downloaded.
            self.tokenizer = AutoTokenizer.from_pretrained(self.resolved.path, **kwargs)  # nosec B615
            model_kwargs = dict(kwargs, dtype=self.dtype)
            if self.params.attn_implementation:
                model_kwargs["attn_implementation"] = self.params.attn_implementation
            model = AutoModelForCausalLM.from_pretrained(self.resolved.path, **model_kwargs)  # nosec B615
            model.to(self.device)
            model.eval()
        except (OSError, ValueError) as exc:
            raise RuntimeFailure(f"cannot load model {self.request.model.name!r}: {exc}") from exc
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        self.model = model
        self._special_ids = set(self.tokenizer.all_special_ids)
        return elapsed

    def model_load_unavailable_reason(self) -> str | None:
        """The white-box runtime always measures the load."""
        return None

    def start_run(self, cold: bool) -> None:
        """Reset the CUDA peak-memory counter and start the RSS/GPU sampler."""
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
        self._monitor = RunMonitor(gpu=self.device == "cuda", interval_s=self.telemetry_interval_s)
        self._monitor.start()

    def finish_run(self) -> RunMeasurement:
        """Stop the sampler and read the CUDA peak memory."""
        assert self._monitor is not None  # nosec B101  # narrowing: start() set it
        report = self._monitor.stop()
        out = RunMeasurement(dict(report.metrics), dict(report.unavailable), report.series)
        if self.device == "cuda":
            import torch

            out.metrics[Metric.PEAK_GPU_MEMORY_BYTES] = float(torch.cuda.max_memory_allocated())
        else:
            reason = f"the model runs on {self.device}, not on a CUDA GPU"
            out.unavailable[Metric.PEAK_GPU_MEMORY_BYTES] = reason
            for m in _GPU_HOST:
                out.unavailable[m] = reason
        return out

    def encode_prompt(
        self, messages: list[dict[str, Any]] | None, text: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        """Tokenize a prompt as :meth:`generate` sends it (on the CPU; the caller moves it to the device).

        Chat messages go through the model's chat template, with the assistant's turn opened; text, or messages
        when the tokenizer has no chat template, is tokenized as plain text.

        Args:
            messages: Chat messages (``role`` and ``content``), or None for a plain-text prompt.
            text: The plain-text prompt (used when ``messages`` is None or the tokenizer has no chat template;
                when None there, the messages' contents joined by blank lines).

        Returns:
            The tokenizer's output (``input_ids`` and ``attention_mask``, batch of one) and notes on how the
            prompt was built.

        Raises:
            ValueError: When neither messages nor text is given.
        """
        notes: list[str] = []
        if messages is not None and getattr(self.tokenizer, "chat_template", None):
            enc = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            return dict(enc), notes
        if messages is not None:
            notes.append("the tokenizer has no chat template: the prompt is plain text")
            if text is None:
                text = "\n\n".join(str(m.get("content", "")) for m in messages) + "\n\n"
        if text is None:
            raise ValueError("prompt: give chat messages or a text prompt")
        return dict(self.tokenizer(text, return_tensors="pt")), notes

    def eos_token_ids(self) -> set[int]:
        """The token ids that end a generation (the loaded model's generation config; empty when it has none)."""
        eos = self.model.generation_config.eos_token_id
        return set(eos if isinstance(eos, list) else [eos] if eos is not None else [])

    def run_on_torch_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the job's torch thread (where the model was loaded) and return its result.

        Args:
            fn: The work (model calls, tensor building).

        Returns:
            What ``fn`` returned; its exception propagates.
        """
        return self._executor().submit(fn).result()

    def _encode(self, task: Task, sample: Sample) -> tuple[Any, list[str]]:
        """Tokenize the prompt with the model's chat template (plain text when it has none)."""
        enc, notes = self.encode_prompt(task.messages(sample), task.prompt_text(sample))
        return {k: v.to(self.device) for k, v in enc.items()}, notes

    def generate(self, task: Task, sample: Sample, settings: GenerationSettings, should_stop: StopCheck) -> Generation:
        """Generate with streaming in a thread and per-token timestamps."""
        from transformers import StoppingCriteriaList

        inputs, notes = self._encode(task, sample)
        assert self._streamer_cls is not None  # nosec B101  # narrowing: load() set it
        streamer = self._streamer_cls(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        gen_kwargs: dict[str, Any] = {
            **inputs,
            "max_new_tokens": settings.max_new_tokens,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_make_stop_criteria(should_stop)]),
            "pad_token_id": self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id,
        }
        if settings.temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=settings.temperature)
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)

        def _run() -> None:
            """Generation on the torch thread; on error the streamer is ended so the consumer never hangs."""
            try:
                self.model.generate(**gen_kwargs)
            except BaseException:
                streamer.end()
                raise

        prompt_tokens = int(inputs["input_ids"].shape[-1])
        sent_at = time.time()
        sent = time.perf_counter()
        future: Future = self._executor().submit(_run)
        text = "".join(streamer)
        try:
            future.result(GENERATION_JOIN_TIMEOUT_S)
        except Exception as exc:
            raise RuntimeFailure(f"generation failed: {exc}") from exc
        ids, times = streamer.token_ids, streamer.token_times
        first = next(
            (t for i, t in zip(ids, times, strict=True) if i not in self._special_ids and self.tokenizer.decode([i])),
            None,
        )
        eos_ids = self.eos_token_ids()
        stopped = should_stop() and (not ids or ids[-1] not in eos_ids) and len(ids) < settings.max_new_tokens
        finish = "cancelled" if stopped else "stop" if ids and ids[-1] in eos_ids else "length"
        return Generation(
            text=text.strip(),
            prompt_tokens=prompt_tokens,
            output_tokens=len(ids),
            sent_at=sent_at,
            sent=sent,
            first_token=first,
            chunk_times=list(times),
            finish_reason=finish,
            stopped=stopped,
            notes=notes,
        )

    def close(self) -> None:
        """Drop the model, stop the torch thread and return the memory."""
        if self._torch_thread is not None:
            self._torch_thread.shutdown(wait=True)
            self._torch_thread = None
        self.model = None
        self.tokenizer = None
        gc.collect()
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()

    def execution(self) -> ExecutionInfo | None:
        """Device, dtype, parameter count and weight bytes of the loaded model (None before the load)."""
        if self.model is None:
            return None
        # ``parameters()`` yields a tied tensor (embeddings / LM head) once, as a decode step reads it once.
        params = list(self.model.parameters())
        return ExecutionInfo(
            device=self.device,
            dtype=str(self.dtype).removeprefix("torch."),
            parameters=sum(p.numel() for p in params),
            weight_bytes=sum(p.numel() * p.element_size() for p in params),
        )

    def describe(self) -> dict[str, Any]:
        """Device, dtype and model location."""
        return {
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "model_path": self.resolved.path if self.resolved else None,
            "model_source": self.resolved.source if self.resolved else None,
        }
