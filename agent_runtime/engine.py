"""Multi-run job engine: runs one job at a time in a worker thread, run after run.

Run 1 is the cold run: it includes the model load (``model_load_s``; ``run_wall_s`` of the cold run
covers load + generation, which is what a cold start costs). Runs 2..N are warm. The result carries the raw
runs only: the server computes every statistic from them (over warm runs, or the cold run when it is alone).

The worker thread keeps the event loop free, so ``/health``, ``GET /jobs/{id}`` and heartbeats answer
while a model generates. Cancel and timeout are checked between tokens (via the runtime's stop check) and
between samples. Every finished run is spooled at once; a partial run is dropped when a job stops.

Measurement tasks (``hardware_benchmark``) have no samples and no model: each run calls the task's
``measure`` on the device the ``hardware`` runtime resolved, and each run carries its full benchmark result
(``SingleRunResult.benchmark``): the server keeps the latest as the agent's measured peaks.

A job with a ``load`` spec runs a sweep of load points instead of runs (:mod:`agent_runtime.load.sweep`): the
runtime loads the model once (no point includes that time), then each point runs in order; every finished point
is spooled at once, a point cut short by cancel or timeout is dropped, and the result carries the sweep
(``MultiRunJobResult.load``) and no runs.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from agent_runtime.constants import TELEMETRY_INTERVAL_S
from agent_runtime.egress import EgressRefused
from agent_runtime.load.sweep import (
    SweepHooks,
    SweepStopped,
    check_load,
    load_method,
    prompt_tokenizer,
    run_sweep,
    sweep_prompts,
)
from agent_runtime.logging import get_logger
from agent_runtime.measure import add_model_load, build_result, merge_metrics, run_metrics, sample_result
from agent_runtime.models import ModelNotFoundError
from agent_runtime.paths import PathRefused
from agent_runtime.policy import AgentPolicy
from agent_runtime.runtimes import RequestError, Runtime, RuntimeFailure, make_runtime
from agent_runtime.runtimes.hardware_runtime import HardwareRuntime
from agent_runtime.spool import Spool
from agent_runtime.tasks import MeasurementTask, Sample, Task, TaskDataError, make_task
from agent_runtime.tasks.hardware import StoppedError
from common.metrics import Metric
from common.protocol import (
    AgentActivity,
    AgentInfo,
    AgentJobState,
    ExecutionInfo,
    HardwareBenchmarkResult,
    JobProgress,
    JobRequest,
    JobStage,
    LoadPointRun,
    LoadSweepRun,
    MultiRunJobResult,
    PromptSource,
    SampleResult,
    SingleRunResult,
    utcnow,
)

log = get_logger(__name__)


class BusyError(RuntimeError):
    """Another job is running on this agent."""


class UnknownJobError(KeyError):
    """No such job on this agent."""


class JobActiveError(RuntimeError):
    """The job is still running (cannot be acknowledged yet)."""


class _Stopped(Exception):
    """Raised inside the worker when the job must stop."""


class EngineListener(Protocol):
    """Receives engine events (called from the worker thread)."""

    def on_progress(self, progress: JobProgress) -> None:
        """A job's progress changed."""

    def on_finished(self, job_id: str) -> None:
        """A job ended and its result is spooled."""


@dataclass
class JobRecord:
    """A job as the engine tracks it.

    Attributes:
        request: The job request.
        progress: Latest progress (its ``status`` is the job state).
        runs: Finished runs.
        result: Final result once the job ended.
        cancel: Set to stop the job.
        stop_state: State to end in when ``cancel`` is set (cancelled, or interrupted on shutdown).
        thread: Worker thread.
        sweep: A load job's sweep so far (its finished points).
    """

    request: JobRequest
    progress: JobProgress
    runs: list[SingleRunResult] = field(default_factory=list)
    result: MultiRunJobResult | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    stop_state: AgentJobState = AgentJobState.CANCELLED
    thread: threading.Thread | None = None
    sweep: LoadSweepRun | None = None

    @property
    def state(self) -> AgentJobState:
        """Current state."""
        return self.progress.status


class JobEngine:
    """Runs jobs one at a time in a worker thread and keeps their state, spool and results.

    Args:
        spool: The job spool.
        data_dir: The agent's data directory.
        model_dirs: Extra model directories.
        info_provider: Returns the agent's current description (for the hardware fingerprint).
        listener: Receives progress and completion events.
        runtime_factory: Builds a job's runtime (tests may substitute one).
        telemetry_interval_s: Seconds between two telemetry samples during a run.
        policy: What the agent's operator allows a job to name (default: nothing beyond its own directories).
    """

    def __init__(
        self,
        spool: Spool,
        *,
        data_dir: Path,
        model_dirs: tuple[Path, ...] = (),
        info_provider: Callable[[], AgentInfo | None] = lambda: None,
        listener: EngineListener | None = None,
        runtime_factory: Callable[..., Runtime] = make_runtime,
        telemetry_interval_s: float = TELEMETRY_INTERVAL_S,
        policy: AgentPolicy | None = None,
    ) -> None:
        self.spool = spool
        self.data_dir = Path(data_dir)
        self.model_dirs = model_dirs
        self.info_provider = info_provider
        self.listener = listener
        self.runtime_factory = runtime_factory
        self.telemetry_interval_s = telemetry_interval_s
        self.policy = policy or AgentPolicy.strict(self.data_dir, model_dirs)
        self._jobs: dict[str, JobRecord] = {}
        self._lock = threading.RLock()

    # ---------------------------------------------------------------------------------------------
    # Queries
    # ---------------------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord:
        """Return a job.

        Raises:
            UnknownJobError: When the agent does not know the job.
        """
        with self._lock:
            try:
                return self._jobs[job_id]
            except KeyError:
                raise UnknownJobError(job_id) from None

    def jobs(self) -> list[JobRecord]:
        """Every job the agent knows (running and unacknowledged)."""
        with self._lock:
            return list(self._jobs.values())

    def active(self) -> JobRecord | None:
        """The job that is queued or running, if any."""
        with self._lock:
            return next((j for j in self._jobs.values() if not j.state.is_terminal), None)

    def activity(self) -> AgentActivity:
        """Idle or busy."""
        return AgentActivity.BUSY if self.active() else AgentActivity.IDLE

    def finished_job_ids(self) -> list[str]:
        """Jobs whose result waits for acknowledgement."""
        with self._lock:
            return [j.request.job_id for j in self._jobs.values() if j.result is not None]

    # ---------------------------------------------------------------------------------------------
    # Commands
    # ---------------------------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Reload the spool after a start: results are offered again, unfinished jobs become ``interrupted``.

        Returns:
            Ids of the jobs found.
        """
        self.spool.clean_leftovers()
        found = []
        for job_id in self.spool.job_ids():
            try:
                spec = self.spool.load_spec(job_id)
                result = self.spool.load_result(job_id)
            except (ValidationError, OSError) as exc:
                log.error("spool.job.unreadable", job_id=job_id, error=str(exc))
                continue
            if spec is None:
                continue
            if result is None:
                runs = self.spool.load_runs(job_id)
                sweep = _spooled_sweep(self.spool, spec)
                kept = f"{len(sweep.points)} finished load point(s)" if sweep else f"{len(runs)} finished run(s)"
                info = self.info_provider()
                result = build_result(
                    spec,
                    runs,
                    AgentJobState.INTERRUPTED,
                    error=f"the agent stopped while the job was running; {kept} kept",
                    fingerprint=info.hardware_fingerprint() if info else None,
                    load=sweep,
                )
                self.spool.save_result(result)
                log.warning("job.interrupted", job_id=job_id, runs_kept=len(runs))
            progress = JobProgress(
                job_id=job_id,
                attempt=spec.attempt,
                attempt_token=spec.attempt_token,
                status=result.status,
                stage=JobStage.DONE,
                run_index=len(result.load.points) if result.load else len(result.runs),
                runs_total=_runs_total(spec),
                message=result.error,
            )
            with self._lock:
                self._jobs[job_id] = JobRecord(
                    spec, progress, runs=list(result.runs), result=result, sweep=result.load
                )
            found.append(job_id)
        return found

    def submit(self, request: JobRequest) -> tuple[JobRecord, bool]:
        """Accept a job and start it in a worker thread.

        A repeated submission of the running attempt (same job id and attempt token) is answered with
        the existing job instead of an error, so the server may safely retry a dispatch.

        Args:
            request: The validated job.

        Returns:
            ``(record, created)``.

        Raises:
            BusyError: When another job is queued or running.
        """
        with self._lock:
            current = self.active()
            if current is not None:
                same = current.request.job_id == request.job_id
                if same and current.request.attempt_token == request.attempt_token:
                    return current, False
                raise BusyError(f"agent is busy with job {current.request.job_id}")
            existing = self._jobs.get(request.job_id)
            if existing is not None and existing.request.attempt_token == request.attempt_token:
                return existing, False
            if existing is not None:
                # A new attempt replaces a finished one the server no longer wants.
                self.spool.remove(request.job_id)
                del self._jobs[request.job_id]
            self.spool.save_spec(request)
            record = JobRecord(
                request,
                JobProgress(
                    job_id=request.job_id,
                    attempt=request.attempt,
                    attempt_token=request.attempt_token,
                    status=AgentJobState.QUEUED,
                    runs_total=_runs_total(request),
                ),
            )
            self._jobs[request.job_id] = record
            record.thread = threading.Thread(
                target=self._work, args=(record,), name=f"ruckus-job-{request.job_id}", daemon=True
            )
            record.thread.start()
        log.info(
            "job.accepted",
            job_id=request.job_id,
            attempt=request.attempt,
            task=request.task.name,
            model=request.model.name,
            runtime=request.runtime.name,
            runs=request.runs_per_job,
        )
        return record, True

    def cancel(self, job_id: str, *, state: AgentJobState = AgentJobState.CANCELLED) -> JobRecord:
        """Ask a job to stop (between tokens); a finished job is left as it is.

        Args:
            job_id: Job id.
            state: Terminal state to end in (``cancelled``, or ``interrupted`` on shutdown).

        Returns:
            The job.
        """
        record = self.get(job_id)
        if not record.state.is_terminal:
            record.stop_state = state
            record.cancel.set()
            log.info("job.cancel_requested", job_id=job_id, state=state.value)
        return record

    def ack(self, job_id: str) -> None:
        """Forget a finished job: the server has its result.

        Raises:
            UnknownJobError: Unknown job.
            JobActiveError: The job is still running.
        """
        record = self.get(job_id)
        if not record.state.is_terminal:
            raise JobActiveError(f"job {job_id} is still {record.state.value}")
        with self._lock:
            self._jobs.pop(job_id, None)
        self.spool.remove(job_id)
        log.info("job.acknowledged", job_id=job_id)

    def shutdown(self, timeout_s: float) -> None:
        """Stop the running job as ``interrupted`` (its finished runs are kept) and wait for the worker.

        Args:
            timeout_s: Seconds to wait for the worker thread.
        """
        record = self.active()
        if record is None:
            return
        self.cancel(record.request.job_id, state=AgentJobState.INTERRUPTED)
        if record.thread is not None:
            record.thread.join(timeout_s)

    # ---------------------------------------------------------------------------------------------
    # Worker
    # ---------------------------------------------------------------------------------------------

    def _progress(self, record: JobRecord, **changes: object) -> None:
        """Update a job's progress and tell the listener."""
        record.progress = record.progress.model_copy(update={**changes, "updated_at": utcnow()})
        if self.listener is not None:
            try:
                self.listener.on_progress(record.progress)
            except Exception as exc:  # a listener must never break a job
                log.warning("engine.listener.failed", error=str(exc))

    def _work(self, record: JobRecord) -> None:
        """Worker thread: run every run of a job, then spool its result."""
        req = record.request
        started_at = utcnow()
        deadline = time.monotonic() + req.timeout_s if req.timeout_s else None
        timed_out = threading.Event()

        def should_stop() -> bool:
            """True once the job is cancelled or out of time (checked between tokens and samples)."""
            if record.cancel.is_set():
                return True
            if deadline is not None and time.monotonic() > deadline:
                timed_out.set()
                return True
            return False

        runtime: Runtime | None = None
        execution: ExecutionInfo | None = None
        status = AgentJobState.COMPLETED
        error: str | None = None
        self._progress(record, status=AgentJobState.RUNNING, stage=JobStage.PREPARING)
        try:
            task = make_task(req.task.name, req.task.params, data_dir=self.data_dir, paths=self.policy.paths)
            samples: list[Sample] = []
            if isinstance(task, Task) and req.load is None:  # a sweep builds its own prompts
                self._progress(record, stage=JobStage.LOADING_DATA)
                samples = task.load_samples()
                if not samples:
                    raise TaskDataError("the task produced no samples")
            runtime = self.runtime_factory(
                req, data_dir=self.data_dir, model_dirs=self.model_dirs, policy=self.policy
            )
            runtime.telemetry_interval_s = self.telemetry_interval_s
            if isinstance(task, MeasurementTask) and not isinstance(runtime, HardwareRuntime):
                raise RuntimeFailure(f"task {task.name} runs with the 'hardware' runtime, not {req.runtime.name!r}")
            runtime.prepare()
            if req.load is not None:
                self._sweep(record, runtime, task, should_stop)
            else:
                for index in range(1, req.runs_per_job + 1):
                    if should_stop():
                        raise _Stopped
                    if isinstance(task, MeasurementTask):
                        assert isinstance(runtime, HardwareRuntime)  # nosec B101  # narrowing: measurement tasks run there
                        run = self._measurement_run(record, runtime, task, index, should_stop)
                    else:
                        run = self._one_run(record, runtime, task, samples, index, should_stop)
                    # Durable first: a run is only reported as finished once it is on disk.
                    self.spool.save_run(req.job_id, run)
                    record.runs.append(run)
                    log.info(
                        "job.run.finished",
                        job_id=req.job_id,
                        run=index,
                        wall_s=run.metrics.get(Metric.RUN_WALL_S),
                    )
        except _Stopped:
            status = AgentJobState.TIMED_OUT if timed_out.is_set() and not record.cancel.is_set() else record.stop_state
            error = {
                AgentJobState.TIMED_OUT: f"timed out after {req.timeout_s} s",
                AgentJobState.CANCELLED: "cancelled",
                AgentJobState.INTERRUPTED: "the agent shut down while the job was running",
            }.get(status, status.value)
            kept = f"{len(record.sweep.points)} finished load point(s)" if record.sweep else None
            error += f"; {kept or f'{len(record.runs)} finished run(s)'} kept"
        except (
            TaskDataError, RuntimeFailure, ModelNotFoundError, PathRefused, EgressRefused, ValidationError, KeyError
        ) as exc:
            status, error = AgentJobState.FAILED, str(exc)
            log.error("job.failed", job_id=req.job_id, error=error)
        except Exception as exc:
            status, error = AgentJobState.FAILED, f"{type(exc).__name__}: {exc}"
            log.error("job.crashed", job_id=req.job_id, error=error, traceback=traceback.format_exc())
        finally:
            if runtime is not None:
                try:
                    # Read before close(), which drops the model.
                    execution = runtime.execution()
                except Exception as exc:
                    log.warning("runtime.execution.failed", job_id=req.job_id, error=str(exc))
                try:
                    runtime.close()
                except Exception as exc:
                    log.warning("runtime.close.failed", job_id=req.job_id, error=str(exc))
        self._progress(record, stage=JobStage.FINALIZING)
        info = self.info_provider()
        result = build_result(
            req,
            list(record.runs),
            status,
            error=error,
            fingerprint=info.hardware_fingerprint() if info else None,
            started_at=started_at,
            execution=execution,
            load=record.sweep,
        )
        try:
            self.spool.save_result(result)
        except OSError as exc:
            log.error("spool.result.write_failed", job_id=req.job_id, error=str(exc))
        record.result = result
        self._progress(record, status=status, stage=JobStage.DONE, message=error)
        log.info("job.finished", job_id=req.job_id, status=status.value, runs=len(record.runs))
        if self.listener is not None:
            try:
                self.listener.on_finished(req.job_id)
            except Exception as exc:
                log.warning("engine.listener.failed", error=str(exc))

    def _sweep(
        self,
        record: JobRecord,
        runtime: Runtime,
        task: Task | MeasurementTask,
        should_stop: Callable[[], bool],
    ) -> None:
        """Run a load job's sweep: load the model once, build the prompts, run the points in order.

        Every finished point is spooled before the next starts; ``record.sweep`` holds the points so far.

        Raises:
            _Stopped: Cancelled or out of time (the finished points are kept).
            RuntimeFailure: The runtime cannot run this sweep.
            TaskDataError: The prompts cannot be built (the message names the field).
        """
        req = record.request
        spec = req.load
        assert spec is not None  # nosec B101  # narrowing: only load jobs come here
        if not isinstance(task, Task):
            raise RuntimeFailure(f"load: task {req.task.name!r} has no prompts to send; a sweep needs a model task")
        problems = check_load(req, runtime, self.policy)  # checked at admission; the host may have changed since
        if problems:
            field_name, problem = next(iter(problems.items()))
            raise RuntimeFailure(f"{field_name}: {problem}")
        record.sweep = LoadSweepRun(mode=spec.mode, spec=spec, method=load_method(runtime))
        total = len(spec.points())
        self._progress(record, stage=JobStage.LOADING_MODEL, run_index=0, runs_total=total)
        load_s = runtime.load()
        notes = []
        if load_s is not None:
            notes.append(f"the model loaded in {load_s:.3g} s before the sweep; no point includes that time")
        self._progress(record, stage=JobStage.LOADING_DATA)
        tokenizer = None
        if spec.prompts.source is PromptSource.SYNTHETIC:
            tokenizer = prompt_tokenizer(
                runtime, req, data_dir=self.data_dir, model_dirs=self.model_dirs, policy=self.policy
            )
        prompts = sweep_prompts(spec, task, tokenizer, self.policy)
        per_point = spec.num_requests or 0  # a point sized by time has no request count ahead

        def point_started(index: int) -> None:
            """A point starts: it is the job's current 'run'."""
            self._progress(
                record, stage=JobStage.WARM_RUN, run_index=index + 1, samples_done=0, samples_total=per_point
            )
            log.info("job.load_point.started", job_id=req.job_id, point=index, value=spec.points()[index])

        def point_finished(point: LoadPointRun) -> None:
            """Durable first: a point counts as finished only once it is on disk."""
            self.spool.save_point(req.job_id, point)

        hooks = SweepHooks(
            should_stop=should_stop,
            on_point_start=point_started,
            on_requests=lambda done: self._progress(record, samples_done=done),
            on_point=point_finished,
        )
        try:
            run_sweep(runtime, prompts, record.sweep, hooks=hooks, telemetry_interval_s=self.telemetry_interval_s,
                      notes=notes)
        except SweepStopped:
            raise _Stopped from None
        requests = [r for p in record.sweep.points for r in p.requests]
        if requests and all(r.error is not None or r.timed_out for r in requests):
            first = next((r.error for r in requests if r.error), None) or "timed out"
            hint = ""
            if spec.prompts.wants_ignore_eos() and not getattr(runtime, "honours_ignore_eos", True):
                hint = " (the endpoint may refuse ignore_eos: set load.prompts.ignore_eos to false)"
            raise RuntimeFailure(f"every request of the sweep failed; first error: {first}{hint}")
        log.info("job.load_sweep.finished", job_id=req.job_id, points=len(record.sweep.points),
                 stopped_early=record.sweep.stopped_early)

    def _measurement_run(
        self,
        record: JobRecord,
        runtime: HardwareRuntime,
        task: MeasurementTask,
        index: int,
        should_stop: Callable[[], bool],
    ) -> SingleRunResult:
        """Execute one run of a measurement task; its full result becomes the agent's latest benchmark."""
        cold = index == 1
        self._progress(
            record,
            stage=JobStage.COLD_RUN if cold else JobStage.WARM_RUN,
            run_index=index,
            samples_done=0,
            samples_total=1,
        )
        started_at = utcnow()
        t0 = time.perf_counter()
        try:
            measurement = task.measure(
                device=runtime.device, should_stop=should_stop, telemetry_interval_s=self.telemetry_interval_s
            )
        except StoppedError:
            raise _Stopped from None
        wall = time.perf_counter() - t0
        self._progress(record, samples_done=1)
        metrics, unavailable = merge_metrics(
            {Metric.RUN_WALL_S: wall}, {}, measurement.metrics, measurement.unavailable
        )
        if cold:  # no model: the runtime says why there is no load time
            add_model_load(metrics, unavailable, None, runtime.model_load_unavailable_reason())
        # The full benchmark travels with the run: the server keeps the latest as the agent's measured peaks.
        benchmark = measurement.payload if isinstance(measurement.payload, HardwareBenchmarkResult) else None
        return SingleRunResult(
            run_index=index,
            cold_start=cold,
            started_at=started_at,
            finished_at=utcnow(),
            metrics=metrics,
            unavailable_metrics=unavailable,
            telemetry=measurement.telemetry,
            notes=measurement.notes,
            benchmark=benchmark,
        )

    def _one_run(
        self,
        record: JobRecord,
        runtime: Runtime,
        task: Task,
        samples: list[Sample],
        index: int,
        should_stop: Callable[[], bool],
    ) -> SingleRunResult:
        """Execute one run over every sample; the cold run (index 1) includes the model load."""
        cold = index == 1
        settings = task.generation()
        stage = JobStage.COLD_RUN if cold else JobStage.WARM_RUN
        self._progress(record, stage=stage, run_index=index, samples_done=0, samples_total=len(samples))
        started_at = utcnow()
        results: list[SampleResult] = []
        notes: list[str] = []
        unavailable: dict[str, str] = {}
        load_s: float | None = None
        runtime.start_run(cold)
        t0 = time.perf_counter()
        measured = None
        try:
            if cold:
                self._progress(record, stage=JobStage.LOADING_MODEL)
                load_s = runtime.load()
                self._progress(record, stage=stage)
            for j, sample in enumerate(samples):
                if should_stop():
                    raise _Stopped
                try:
                    gen = runtime.generate(task, sample, settings, should_stop)
                except RequestError as exc:
                    results.append(
                        SampleResult(id=sample.id, title=sample.title, reference=sample.reference, error=str(exc))
                    )
                    log.warning("job.request.failed", job_id=record.request.job_id, sample=sample.id, error=str(exc))
                    continue
                if gen.stopped:
                    raise _Stopped
                results.append(sample_result(sample, gen))
                notes.extend(n for n in gen.notes if n not in notes)
                self._progress(record, samples_done=j + 1)
            wall = time.perf_counter() - t0
        finally:
            measured = runtime.finish_run()
        if all(r.error is not None for r in results):
            raise RuntimeFailure(f"every request of run {index} failed; first error: {results[0].error}")
        metrics, unavailable = run_metrics(results, wall)
        if cold:
            add_model_load(metrics, unavailable, load_s, runtime.model_load_unavailable_reason())
        metrics, unavailable = merge_metrics(metrics, unavailable, measured.metrics, measured.unavailable)
        return SingleRunResult(
            run_index=index,
            cold_start=cold,
            started_at=started_at,
            finished_at=utcnow(),
            metrics=metrics,
            unavailable_metrics=unavailable,
            samples=results,
            telemetry=measured.series,
            notes=notes,
        )


def _runs_total(request: JobRequest) -> int:
    """What progress counts as the job's runs: its runs, or the points of its load sweep."""
    return len(request.load.points()) if request.load is not None else request.runs_per_job


def _spooled_sweep(spool: Spool, request: JobRequest) -> LoadSweepRun | None:
    """A load job's sweep as far as the spool kept it (None for a job without a load spec)."""
    if request.load is None:
        return None
    method = "batch" if request.runtime.name == "transformers" else "http"
    return LoadSweepRun(
        mode=request.load.mode, spec=request.load, points=spool.load_points(request.job_id), method=method
    )
