"""A job's load sweep: its load points in order, each measured with its telemetry, stopped early when it must.

The engine hands a job with a ``load`` spec to :func:`run_sweep` once its runtime has loaded the model (that load
is part of no point). Endpoint runtimes (``openai``, ``vllm``, ``llamacpp_server``) make the load with streaming
HTTP requests (:func:`agent_runtime.load.generator.run_point`, one event loop for the whole sweep, one client
pinned to the addresses the endpoint policy checked); the white-box ``transformers`` runtime runs each
concurrency as batches of that size (:func:`agent_runtime.load.batch.run_batch_point`).

After each point its figures are computed with :func:`common.loadmetrics.point_figures` (the server computes
the same from the same raw records) and :func:`common.loadmetrics.early_stop_reason` decides whether the sweep
goes on. Cancel and timeout are checked between points and, through ``should_stop``, within them; a point cut
short is dropped, like a partial run. Every finished point is handed to ``on_point`` (the engine spools it)
before the next starts.

Runtimes on the agent's host have each point's GPU power and energy read through NVML
(:class:`agent_runtime.telemetry.RunMonitor`); a black-box endpoint's host is out of sight, which its points'
notes say.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from agent_runtime.load.batch import run_batch_point
from agent_runtime.load.generator import LoadPrompt, run_point
from agent_runtime.load.prompts import HFTokenizer, PromptError, PromptSet, PromptTokenizer, build_prompts
from agent_runtime.logging import get_logger
from agent_runtime.models import resolve_model
from agent_runtime.paths import PathRefused
from agent_runtime.policy import AgentPolicy
from agent_runtime.runtimes.base import Runtime, RuntimeFailure
from agent_runtime.runtimes.openai_runtime import OpenAIRuntime
from agent_runtime.runtimes.transformers_runtime import TransformersRuntime
from agent_runtime.tasks.base import Task
from agent_runtime.telemetry import RunMonitor
from common.loadmetrics import early_stop_reason, point_figures
from common.metrics import Metric
from common.protocol import AccessMode, JobRequest, LoadPointRun, LoadSpec, LoadSweepRun, PromptSource

log = get_logger(__name__)

#: Distinct prompts built for a sweep whose points are sized by time (they cycle through them).
DURATION_PROMPTS = 2048
#: Seconds between two progress reports within a point.
PROGRESS_INTERVAL_S = 0.5


class SweepStopped(Exception):
    """The job was cancelled or ran out of time during the sweep; the points finished before are kept."""


def load_modes(runtime_cls: type[Runtime]) -> tuple[str, ...]:
    """The load sweeps a runtime can run: ``concurrency`` and/or ``request_rate``; empty when it cannot sweep.

    Args:
        runtime_cls: The runtime's class.

    Returns:
        The modes.
    """
    return tuple(getattr(runtime_cls, "load_modes", ()))


def load_method(runtime: Runtime) -> Literal["http", "batch"]:
    """How a runtime makes the load: streaming HTTP requests, or batches on a white-box model."""
    return "batch" if isinstance(runtime, TransformersRuntime) else "http"


def check_load(job: JobRequest, runtime: Runtime, policy: AgentPolicy) -> dict[str, str]:
    """Check a job's load spec can run here, before the job is accepted (nothing is read or sent).

    Args:
        job: The job (``job.load`` set).
        runtime: The job's runtime, built for the check.
        policy: What the operator allows (the JSONL file's location).

    Returns:
        ``{dotted.field: problem}``; empty when the sweep can run.
    """
    spec = job.load
    if spec is None:
        return {}
    if spec.mode not in load_modes(type(runtime)):
        return _mode_problem(runtime, spec)
    if spec.prompts.source is PromptSource.JSONL:
        try:
            policy.paths.resolve(spec.prompts.path or "", field="load.prompts.path")
        except PathRefused as exc:
            return {exc.field: exc.problem}
    return {}


def prompt_tokenizer(runtime: Runtime, request: JobRequest, *, data_dir: Path, model_dirs: tuple[Path, ...],
                     policy: AgentPolicy) -> PromptTokenizer | None:
    """The model's tokenizer for synthetic prompts, where the agent has it; None otherwise.

    In order: the white-box runtime's loaded tokenizer; the gray-box server's own (``/tokenize``, vLLM); the
    model's folder on the agent (found as the white-box runtime finds weights, nothing converted or downloaded).

    Args:
        runtime: The job's runtime (loaded).
        request: The job.
        data_dir: The agent's data directory.
        model_dirs: Its model directories.
        policy: What the operator allows (``model.path``).

    Returns:
        The tokenizer, or None.
    """
    if isinstance(runtime, TransformersRuntime) and runtime.tokenizer is not None:
        return HFTokenizer(runtime.tokenizer)
    server = getattr(runtime, "server_tokenizer", None)
    if callable(server):
        found = server()
        if found is not None:
            return found
    try:
        resolved = resolve_model(
            request.model.name, data_dir=data_dir, path=request.model.path, revision=request.model.revision,
            model_dirs=model_dirs, convert=False, paths=policy.paths,
        )
        if resolved.gguf_file is not None:
            return None  # a GGUF file's tokenizer needs the whole file read: not worth it for prompt lengths
        # Imported only once a model folder is found: transformers takes seconds to import.
        from transformers import AutoTokenizer

        return HFTokenizer(AutoTokenizer.from_pretrained(resolved.path, local_files_only=True))  # nosec B615
    except Exception as exc:  # no tokenizer is a normal case: the prompts say they are approximate
        log.info("load.tokenizer.unavailable", model=request.model.name, reason=type(exc).__name__)
        return None


def sweep_prompts(
    spec: LoadSpec, task: Task, tokenizer: PromptTokenizer | None, policy: AgentPolicy
) -> PromptSet:
    """The prompts of a sweep: enough for one point's requests and warm-up (cycled by the points).

    Raises:
        PromptError: They cannot be built (the message names the field).
    """
    n = (spec.num_requests + spec.warmup_requests) if spec.num_requests is not None else DURATION_PROMPTS
    return build_prompts(spec.prompts, task, tokenizer, policy.paths, n, seed=spec.seed)


@dataclass
class SweepHooks:
    """What the sweep tells its caller.

    Attributes:
        should_stop: True once the job must stop (cancel, timeout); checked between points and within them.
        on_point_start: ``(index)`` when a point starts.
        on_requests: ``(requests done in the point)``, at most every :data:`PROGRESS_INTERVAL_S` (HTTP points).
        on_point: ``(point)`` when a point finished, before the next starts (the engine spools it).
    """

    should_stop: Callable[[], bool] = lambda: False
    on_point_start: Callable[[int], None] = lambda index: None
    on_requests: Callable[[int], None] = lambda done: None
    on_point: Callable[[LoadPointRun], None] = lambda point: None


@dataclass
class _Telemetry:
    """Per-point telemetry of a runtime on the agent's host (None for black-box endpoints)."""

    interval_s: float
    watch_host: bool
    monitor: RunMonitor | None = field(default=None, init=False)

    def start(self) -> None:
        """Start sampling the host's GPUs (NVML), when the runtime's model lives on this host."""
        if self.watch_host:
            self.monitor = RunMonitor(gpu=True, interval_s=self.interval_s)
            self.monitor.start()

    def stop(self, point: LoadPointRun) -> LoadPointRun:
        """Stop sampling and put the point's power and energy (or why they are missing) on it."""
        if self.monitor is None:
            return point
        report = self.monitor.stop()
        self.monitor = None
        power = report.metrics.get(Metric.GPU_POWER_W)
        energy = report.metrics.get(Metric.ENERGY_J)
        if power is None and energy is None:
            why = report.unavailable.get(Metric.GPU_POWER_W) or "no power reading"
            return point.model_copy(update={"notes": [*point.notes, f"no GPU power or energy: {why}"]})
        return point.model_copy(update={"power_w": power, "energy_j": energy, "power_source": "nvml"})


def _eos_note(point: LoadPointRun, spec: LoadSpec, prompts: Sequence[LoadPrompt]) -> str | None:
    """Say so when requests asked to ignore EOS still ended before their ``output_tokens`` (measured, not assumed).

    Args:
        point: The finished point.
        spec: The sweep.
        prompts: The sweep's prompts (each request asked for at least the fewest ``output_tokens`` among them).

    Returns:
        The note, or None.
    """
    if not spec.prompts.wants_ignore_eos() or not prompts:
        return None
    floor = min(p.output_tokens for p in prompts)
    short = sum(
        1 for r in point.requests
        if r.error is None and not r.timed_out and r.output_tokens is not None and r.output_tokens < floor
    )
    if not short:
        return None
    return (f"{short} of {len(point.requests)} requests ended before their output_tokens although ignore_eos was "
            "asked for: the server does not honour it")


def _finish_point(
    point: LoadPointRun, sweep: LoadSweepRun, figures: list[dict[str, Any]], notes: Sequence[str],
    hooks: SweepHooks, prompts: Sequence[LoadPrompt],
) -> bool:
    """Keep a finished point (notes added, handed to ``on_point``), then say whether the sweep goes on."""
    eos = _eos_note(point, sweep.spec, prompts)
    notes = [*notes, eos] if eos else notes
    point = point.model_copy(update={"notes": [*point.notes, *(n for n in notes if n not in point.notes)]})
    hooks.on_point(point)
    sweep.points.append(point)
    figures.append(point_figures(point, sweep.spec.slo))
    reason = early_stop_reason(figures, sweep.spec.early_stop)
    remaining = len(sweep.spec.points()) - len(sweep.points)
    if reason is not None and remaining > 0:
        sweep.stopped_early = f"after point {point.index}: {reason}"[:500]
        log.info("load.sweep.stopped_early", point=point.index, reason=reason, points_left=remaining)
        return False
    return True


def _counting_hook(on_done: Callable[[], None]) -> Callable[[httpx.Response], Any]:
    """An httpx response hook that calls ``on_done`` when a response's stream is closed (the request ended)."""

    class _Counted(httpx.AsyncByteStream):
        """The response's stream, telling when it is closed."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.closed = False

        async def __aiter__(self) -> Any:
            async for chunk in self.inner:
                yield chunk

        async def aclose(self) -> None:
            try:
                await self.inner.aclose()
            finally:
                if not self.closed:
                    self.closed = True
                    on_done()

    async def hook(response: httpx.Response) -> None:
        """Wrap the response's stream."""
        response.stream = _Counted(response.stream)

    return hook


async def _http_sweep(
    runtime: OpenAIRuntime, prompts: list[LoadPrompt], sweep: LoadSweepRun, notes: list[str], hooks: SweepHooks,
    telemetry: _Telemetry,
) -> None:
    """Run every point of an HTTP sweep in one event loop with one pinned client."""
    spec = sweep.spec
    target = runtime.load_target(spec.prompts)
    figures: list[dict[str, Any]] = []
    warmup = spec.warmup_requests
    done = 0
    last_report = 0.0

    def finished_one() -> None:
        """One more request ended: report the point's progress now and then."""
        nonlocal done, last_report
        done += 1
        now = time.monotonic()
        if now - last_report >= PROGRESS_INTERVAL_S:
            last_report = now
            hooks.on_requests(max(0, done - warmup))

    client = runtime.load_client(spec.request_timeout_s)
    client.event_hooks["response"].append(_counting_hook(finished_one))
    async with client:
        for index, value in enumerate(spec.points()):
            if hooks.should_stop():
                raise SweepStopped
            hooks.on_point_start(index)
            done, last_report = 0, 0.0
            telemetry.start()
            try:
                point = await run_point(
                    client, target, prompts, index=index, spec=spec, value=value, should_stop=hooks.should_stop
                )
            except BaseException:
                telemetry.stop(LoadPointRun(index=index, duration_s=0))  # the sampler thread must end too
                raise
            point = telemetry.stop(point)
            if hooks.should_stop():
                raise SweepStopped  # the point was cut short: dropped, like a partial run
            hooks.on_requests(len(point.requests))
            if not _finish_point(point, sweep, figures, notes, hooks, prompts):
                return


def _batch_sweep(
    runtime: TransformersRuntime, prompts: list[LoadPrompt], sweep: LoadSweepRun, notes: list[str],
    hooks: SweepHooks, telemetry: _Telemetry,
) -> None:
    """Run every point of a batch sweep on the white-box model (concurrency levels only)."""
    spec = sweep.spec
    figures: list[dict[str, Any]] = []
    for index, value in enumerate(spec.points()):
        if hooks.should_stop():
            raise SweepStopped
        hooks.on_point_start(index)
        telemetry.start()
        try:
            point = run_batch_point(
                runtime, prompts, index=index, spec=spec, value=int(value), should_stop=hooks.should_stop
            )
        except BaseException:
            telemetry.stop(LoadPointRun(index=index, duration_s=0))
            raise
        point = telemetry.stop(point)
        if hooks.should_stop():
            raise SweepStopped
        hooks.on_requests(len(point.requests))
        if not _finish_point(point, sweep, figures, notes, hooks, prompts):
            return


def run_sweep(
    runtime: Runtime,
    prompts: PromptSet,
    sweep: LoadSweepRun,
    *,
    hooks: SweepHooks,
    telemetry_interval_s: float,
    notes: Sequence[str] = (),
) -> LoadSweepRun:
    """Run a sweep's points in order on a loaded runtime, adding each finished point to ``sweep``.

    Args:
        runtime: The job's runtime, its model loaded (or its endpoint client open).
        prompts: The sweep's prompts.
        sweep: The sweep so far (its spec, mode and method set; points are appended as they finish).
        hooks: Stop check and progress callbacks.
        telemetry_interval_s: Seconds between two telemetry samples.
        notes: Caveats every point carries (besides the prompts' and the runtime's).

    Returns:
        ``sweep``, with its points and why it stopped early (if it did).

    Raises:
        SweepStopped: Cancelled or out of time; ``sweep`` keeps the points finished before.
        RuntimeFailure: The runtime cannot run this sweep.
    """
    spec = sweep.spec
    if spec.mode not in load_modes(type(runtime)):
        raise RuntimeFailure(check_load_message(runtime, spec))
    all_notes = [*prompts.notes, *notes]
    telemetry = _Telemetry(telemetry_interval_s, watch_host=runtime.access_mode() is not AccessMode.BLACK_BOX)
    if isinstance(runtime, TransformersRuntime):
        _batch_sweep(runtime, prompts.prompts, sweep, all_notes, hooks, telemetry)
    elif isinstance(runtime, OpenAIRuntime):
        all_notes.extend(runtime.load_notes(spec.prompts))
        if spec.prompts.source is PromptSource.SYNTHETIC and getattr(runtime.params, "endpoint", "chat") == "chat":
            all_notes.append("chat endpoint: the server's chat template adds its own tokens to each prompt")
        asyncio.run(_http_sweep(runtime, prompts.prompts, sweep, all_notes, hooks, telemetry))
    else:
        raise RuntimeFailure(f"load: runtime {runtime.name!r} cannot run a load sweep")
    return sweep


def check_load_message(runtime: Runtime, spec: LoadSpec) -> str:
    """The refusal of a sweep the runtime cannot run, as ``field: problem``."""
    field_, problem = next(iter(_mode_problem(runtime, spec).items()))
    return f"{field_}: {problem}"


def _mode_problem(runtime: Runtime, spec: LoadSpec) -> dict[str, str]:
    """The mode part of :func:`check_load`."""
    modes = load_modes(type(runtime))
    if not modes:
        return {"load": f"runtime {runtime.name!r} cannot run a load sweep"}
    if isinstance(runtime, TransformersRuntime):
        return {"load.request_rate": (
            "the transformers runtime sweeps concurrency as batch sizes; use an endpoint runtime "
            "(vllm, openai) for request rates"
        )}
    return {f"load.{spec.mode}": f"runtime {runtime.name!r} sweeps only {', '.join(modes)}"}


__all__ = [
    "DURATION_PROMPTS",
    "PromptError",
    "SweepHooks",
    "SweepStopped",
    "check_load",
    "load_method",
    "load_modes",
    "prompt_tokenizer",
    "run_sweep",
    "sweep_prompts",
]
