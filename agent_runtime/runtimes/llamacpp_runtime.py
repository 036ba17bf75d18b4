"""White-box runtime: llama.cpp in the agent's own process (llama-cpp-python), loading a GGUF file as stored.

This is the fleet's small end (a Raspberry Pi, a laptop, a Mac): the quantized GGUF runs without conversion. The
runtime tokenizes the prompt itself (with the chat template stored in the GGUF file, or the plain prompt), so the
prompt and output token counts are exact, and drives llama.cpp's token generator one token at a time, so every
token gets its own ``perf_counter`` timestamp, taken when it is sampled (the instant a server would stream it).

Every request processes its whole prompt: the context's cache of the previous request is dropped first, so a warm
run that repeats the cold run's prompts measures the same work (llama-cpp-python would otherwise reuse the longest
common prefix and skip most of the prefill).

``llama_cpp`` is an optional dependency (``pip install 'ruckus[llamacpp]'``): it is imported only when a job runs.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent_runtime.constants import GENERATION_JOIN_TIMEOUT_S
from agent_runtime.detection.models import read_gguf_summary
from agent_runtime.models import ModelNotFoundError, resolve_gguf
from agent_runtime.paths import PathRefused
from agent_runtime.runtimes.base import (
    Generation,
    RequestError,
    RunMeasurement,
    Runtime,
    RuntimeFailure,
    StopCheck,
    gpu_host_metrics,
)
from agent_runtime.tasks.base import GenerationSettings, Sample, Task
from agent_runtime.telemetry import RunMonitor
from common.catalog import LlamaCppParams
from common.metrics import Metric
from common.protocol import AgentInfo, ExecutionInfo, RuntimeCapability

#: Install advice when llama-cpp-python is missing.
INSTALL_HINT = "pip install 'ruckus[llamacpp]'"
_GPU_HOST = (Metric.GPU_POWER_W, Metric.GPU_UTILIZATION_PCT, Metric.ENERGY_J)
_NO_GPU_MEMORY = "llama.cpp does not report the device memory it allocates"


def gpu_backend(system_info: str) -> str | None:
    """The GPU backend a llama.cpp build offloads to, from ``llama_print_system_info()``.

    Args:
        system_info: The build's system-info line (``CPU : SSE3 = 1 | ... | CUDA : ARCHS = 890 | ...``).

    Returns:
        ``cuda``, ``rocm``, ``metal``, ``vulkan`` or ``sycl``; None for a CPU-only build.
    """
    text = system_info.upper()
    for marker, device in (("CUDA", "cuda"), ("HIP", "rocm"), ("ROCM", "rocm"), ("METAL", "metal"),
                           ("VULKAN", "vulkan"), ("SYCL", "sycl")):
        if marker in text:
            return device
    return None


def _chat_formatter(llm: Any) -> Any:
    """The chat formatter of the GGUF file's own template (as llama-cpp-python builds its default), or None."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None

    def token_text(key: str) -> str:
        raw = llm.metadata.get(key)
        try:
            token = int(raw) if raw is not None else -1
        except ValueError:
            token = -1
        return llm._model.token_get_text(token) if 0 <= token < llm.n_vocab() else ""

    # Jinja2ChatFormatter renders in jinja2's sandbox: the template comes from the model file.
    return Jinja2ChatFormatter(
        template=template,
        eos_token=token_text("tokenizer.ggml.eos_token_id"),
        bos_token=token_text("tokenizer.ggml.bos_token_id"),
        add_generation_prompt=True,
    )


class LlamaCppRuntime(Runtime):
    """llama.cpp through llama-cpp-python, loaded and run by the agent (white box)."""

    name = "llama_cpp"
    params: LlamaCppParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.llm: Any = None
        self.model_file: Path | None = None
        self.device = "cpu"
        self.file_type: str | None = None
        self._formatter: Any = None
        # Tokens that end an answer besides the model's end-of-generation ones: the chat template's stop tokens.
        self._stop_ids: set[int] = set()
        self._monitor: RunMonitor | None = None
        # One long-lived thread does all llama.cpp work of the job (load and every request): the ggml thread pool
        # it starts stays with that thread, as the transformers runtime keeps one torch thread.
        self._worker: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        """The job's single llama.cpp worker thread."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ruckus-llamacpp")
        return self._worker

    @classmethod
    def capability(cls, info: AgentInfo) -> RuntimeCapability:
        """Available when llama-cpp-python is installed; GPU host metrics need an NVIDIA GPU and NVML."""
        rdef = cls.definition()
        framework = next((f for f in info.frameworks if f.name == "llama_cpp"), None)
        if framework is None or not framework.available:
            # Detection's own reason ("not installed: pip install ...", or installed but not importable).
            reason = (framework.reason if framework is not None else None) or f"not installed: {INSTALL_HINT}"
            return RuntimeCapability(
                name=cls.name,
                access_mode=rdef.access_mode,
                available=False,
                reason=reason,
                unavailable_metrics={m: "runtime unavailable" for m in (*rdef.metrics, *rdef.gpu_metrics)},
            )
        # Measured when the job offloads layers to the GPU (runtime.params.n_gpu_layers).
        has_nvidia = any((g.backend or "") == "cuda" for g in info.gpus)
        gpu_metrics, unavailable = gpu_host_metrics(info, rdef.gpu_metrics, gpu=has_nvidia)
        metrics = [*rdef.metrics, *gpu_metrics]
        unavailable[Metric.PEAK_GPU_MEMORY_BYTES] = _NO_GPU_MEMORY
        return RuntimeCapability(
            name=cls.name,
            access_mode=rdef.access_mode,
            available=True,
            metrics=metrics,
            unavailable_metrics=unavailable,
        )

    def _resolve(self) -> Path:
        """The job's GGUF file (raises what :func:`resolve_gguf` raises)."""
        spec = self.request.model
        return resolve_gguf(
            spec.name, path=spec.path, revision=spec.revision, model_dirs=self.model_dirs, paths=self.policy.paths
        )

    def check(self) -> dict[str, str]:
        """The model must be a local GGUF file the operator allowed; llama-cpp-python must be installed."""
        try:
            self._resolve()
        except PathRefused as exc:
            return {exc.field: exc.problem}
        except ModelNotFoundError as exc:
            return {"model.path" if self.request.model.path else "model.name": str(exc)}
        return {}

    def prepare(self) -> None:
        """Find the GGUF file and read its header (quantization type); nothing is loaded yet."""
        try:
            import llama_cpp  # noqa: F401  # the import error is the job's error, before any run starts
        except ImportError as exc:
            raise RuntimeFailure(f"runtime llama_cpp: llama-cpp-python is not installed ({INSTALL_HINT})") from exc
        try:
            self.model_file = self._resolve()
        except (ModelNotFoundError, PathRefused) as exc:
            raise RuntimeFailure(str(exc)) from exc
        try:
            self.file_type = read_gguf_summary(self.model_file).file_type
        except (OSError, ValueError) as exc:
            raise RuntimeFailure(f"model {self.request.model.name!r}: not a readable GGUF file ({exc})") from exc

    def load(self) -> float:
        """Load the GGUF file with llama.cpp, timed (on the job's llama.cpp thread)."""
        return self._executor().submit(self._load).result()

    def _load(self) -> float:
        """Create the ``Llama`` object (weights mapped, context allocated) and the chat formatter."""
        import llama_cpp

        assert self.model_file is not None, "prepare() must run before load()"  # nosec B101  # narrowing
        p = self.params
        if p.n_gpu_layers != 0:
            if not llama_cpp.llama_supports_gpu_offload():
                raise RuntimeFailure(
                    "runtime.params.n_gpu_layers: this llama-cpp-python build has no GPU backend (set 0, or install "
                    "a CUDA or Metal build)"
                )
            info = llama_cpp.llama_print_system_info()
            backend = gpu_backend(info.decode(errors="replace") if isinstance(info, bytes) else str(info))
            self.device = backend or ("metal" if platform.system() == "Darwin" else "gpu")
        t0 = time.perf_counter()
        try:
            llm = llama_cpp.Llama(
                model_path=os.fspath(self.model_file),
                n_ctx=p.n_ctx,
                n_batch=p.n_batch,
                n_threads=p.n_threads,
                n_threads_batch=p.n_threads_batch or p.n_threads,
                n_gpu_layers=p.n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise RuntimeFailure(f"cannot load model {self.request.model.name!r}: {exc}") from exc
        elapsed = time.perf_counter() - t0
        self.llm = llm
        if p.mode == "chat":
            self._formatter = _chat_formatter(llm)
        return elapsed

    def model_load_unavailable_reason(self) -> str | None:
        """The white-box runtime always measures the load."""
        return None

    def start_run(self, cold: bool) -> None:
        """Start the RSS (and, with layers on an NVIDIA GPU, NVML) sampler."""
        self._monitor = RunMonitor(gpu=self.device == "cuda", interval_s=self.telemetry_interval_s)
        self._monitor.start()

    def finish_run(self) -> RunMeasurement:
        """Stop the sampler."""
        assert self._monitor is not None  # nosec B101  # narrowing: start_run() set it
        report = self._monitor.stop()
        out = RunMeasurement(dict(report.metrics), dict(report.unavailable), report.series)
        out.unavailable[Metric.PEAK_GPU_MEMORY_BYTES] = _NO_GPU_MEMORY
        if self.device != "cuda":
            reason = f"the model runs on {self.device}, not on an NVIDIA GPU"
            for m in _GPU_HOST:
                out.unavailable[m] = reason
        return out

    def _single_tokens(self, texts: Any) -> set[int]:
        """The ids of those stop strings that are one (special) token each, such as a template's end-of-turn."""
        ids: set[int] = set()
        for text in [texts] if isinstance(texts, str) else list(texts or []):
            tokens = self.llm.tokenize(str(text).encode("utf-8"), add_bos=False, special=True)
            if len(tokens) == 1:
                ids.add(tokens[0])
        return ids

    def _prompt_tokens(self, task: Task, sample: Sample) -> tuple[list[int], list[str]]:
        """Tokenize the prompt: the GGUF's chat template in ``chat`` mode, else (or without one) the plain text."""
        notes: list[str] = []
        if self.params.mode == "chat" and self._formatter is not None:
            formatted = self._formatter(messages=task.messages(sample))
            self._stop_ids = self._single_tokens(formatted.stop)
            # The template writes the special tokens (turn markers) as text: they are parsed as such.
            tokens = self.llm.tokenize(
                formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
            )
            return tokens, notes
        if self.params.mode == "chat":
            notes.append("the GGUF file has no chat template: the prompt is plain text")
        # The task's text is data: a special token's spelling inside it stays text.
        return self.llm.tokenize(task.prompt_text(sample).encode("utf-8"), add_bos=True, special=False), notes

    def generate(self, task: Task, sample: Sample, settings: GenerationSettings, should_stop: StopCheck) -> Generation:
        """Generate one answer token by token on the llama.cpp thread, timing each token."""
        future = self._executor().submit(self._generate, task, sample, settings, should_stop)
        try:
            # No deadline here: a long answer on a small board is legitimate, and the job's own timeout reaches the
            # generation through should_stop between tokens.
            return future.result()
        except (RequestError, RuntimeFailure):
            raise
        except Exception as exc:
            raise RuntimeFailure(f"generation failed: {exc}") from exc

    def _generate(self, task: Task, sample: Sample, settings: GenerationSettings, should_stop: StopCheck) -> Generation:
        """Body of :meth:`generate`."""
        import llama_cpp

        llm = self.llm
        tokens, notes = self._prompt_tokens(task, sample)
        # llama.cpp may round the context up; llama-cpp-python's token buffer keeps the size asked for.
        n_ctx = min(llm.n_ctx(), self.params.n_ctx)
        if len(tokens) >= n_ctx:
            raise RequestError(
                f"the prompt has {len(tokens)} tokens; runtime.params.n_ctx ({n_ctx}) leaves no room to generate"
            )
        budget = min(settings.max_new_tokens, n_ctx - len(tokens))
        if budget < settings.max_new_tokens:
            notes.append(f"generation capped at {budget} tokens by runtime.params.n_ctx")
        vocab = llm._model.vocab
        ids: list[int] = []
        times: list[float] = []
        first: float | None = None
        finish = "length"
        stopped = False
        # Greedy at temperature 0; otherwise plain temperature sampling (no top-k/top-p/min-p truncation).
        sampling: dict[str, Any] = {"temp": settings.temperature, "top_k": 0, "top_p": 1.0, "min_p": 0.0}
        llm.reset()  # no prefix reuse from the previous request: every request processes its whole prompt
        sent_at = time.time()
        sent = time.perf_counter()
        stream = llm.generate(tokens, reset=True, **sampling)
        try:
            for token in stream:
                now = time.perf_counter()
                ids.append(token)
                times.append(now)
                if token in self._stop_ids or llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                if first is None and llm.detokenize([token], special=False):
                    first = now
                if len(ids) >= budget:
                    break
                if should_stop():
                    stopped, finish = True, "cancelled"
                    break
        finally:
            with contextlib.suppress(Exception):
                stream.close()
        content = [t for t in ids if t not in self._stop_ids and not llama_cpp.llama_vocab_is_eog(vocab, t)]
        text = llm.detokenize(content, special=False).decode("utf-8", errors="replace")
        return Generation(
            text=text.strip(),
            prompt_tokens=len(tokens),
            output_tokens=len(ids),
            sent_at=sent_at,
            sent=sent,
            first_token=first,
            chunk_times=times,
            finish_reason=finish,
            stopped=stopped,
            notes=notes,
        )

    def close(self) -> None:
        """Free the model and context and stop the worker thread."""
        llm, self.llm = self.llm, None
        if llm is not None and self._worker is not None:
            # Freed on the thread that created it, like every other call into the library.
            with contextlib.suppress(Exception):
                self._worker.submit(llm.close).result(GENERATION_JOIN_TIMEOUT_S)
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None
        self._formatter = None
        gc.collect()

    def execution(self) -> ExecutionInfo | None:
        """Device, GGUF quantization type, parameter count and tensor bytes of the loaded model."""
        if self.llm is None:
            return None
        model = self.llm._model
        return ExecutionInfo(
            device=self.device,
            dtype=self.file_type,
            parameters=int(model.n_params()),
            weight_bytes=int(model.size()),
        )

    def describe(self) -> dict[str, Any]:
        """Device, quantization type and model file."""
        return {
            "device": self.device,
            "dtype": self.file_type,
            "model_path": os.fspath(self.model_file) if self.model_file else None,
            "mode": self.params.mode,
        }
