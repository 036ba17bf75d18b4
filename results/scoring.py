"""Scoring of stored results, off the request path: ROUGE per sample, ROUGE means per run, a job's statistics.

The result callback only stores a result and marks it ``scoring`` (:func:`results.services.job_result_store`). A
scoring worker (``python manage.py run_scoring_worker``, or the thread the scheduler runs by default) then:

1. claims a few results waiting to be scored with ``SELECT ... FOR UPDATE SKIP LOCKED``, so that several workers
   (threads, processes, hosts) share the queue and never score one result twice;
2. ROUGE-scores every sample that has a reference (all of them in one batch: :func:`results.rouge.rouge_scores_many`),
   adds the ROUGE means to each run and recomputes the job's statistics;
3. marks each result ``scored`` (or ``failed`` with the reason) and commits, in the same transaction as the claim.

A worker that dies mid-way leaves nothing behind: its transaction rolls back, its row locks go, and the results are
``scoring`` again for the next worker. Each scored job is announced (``job.updated``, after the commit) with a new
``updated_at``, so pages showing its results read them again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from django.db import DatabaseError, OperationalError, close_old_connections, connection, transaction
from django.utils import timezone

from common.statuses import ScoringStatus
from core import events
from experiments.models import Job
from results.models import JobMetricStatistics, JobResult, RunResult, SampleResult
from results.rouge import rouge_scores_many
from results.services import job_statistics_rows, rouge_means

log = structlog.get_logger(__name__)

#: Results claimed (and committed) together: enough to batch the ROUGE tables and the writes, few enough that a
#: claim is short and several workers share a burst.
SCORING_BATCH = 8
#: Seconds an idle worker waits before looking at the queue again.
SCORING_IDLE_S = 0.5
#: Longest failure reason kept.
MAX_REASON = 1000


@dataclass
class _Scored:
    """What scoring one claimed result produced, before it is written."""

    result: JobResult
    runs: list[RunResult] = field(default_factory=list)
    samples: list[SampleResult] = field(default_factory=list)
    statistics: list[JobMetricStatistics] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def pending_count() -> int:
    """Number of stored results waiting to be scored."""
    return JobResult.objects.filter(scoring_status=ScoringStatus.SCORING).count()


def _claim(limit: int) -> list[JobResult]:
    """Lock up to ``limit`` results waiting to be scored, oldest first, skipping those another worker holds."""
    return list(
        JobResult.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("job")
        .filter(scoring_status=ScoringStatus.SCORING)
        .order_by("id")[:limit]
        .only("id", "job", "scoring_status", "job__id", "job__experiment_id", "job__agent_id")
    )


def _reason(stage: str, exc: BaseException) -> str:
    """A failure reason that names the stage and the error."""
    return f"{stage} failed: {type(exc).__name__}: {exc}"[:MAX_REASON]


def _rouge_all(samples: Sequence[SampleResult]) -> list[dict[str, float] | Exception]:
    """ROUGE of each sample with a reference and no error (``{}`` for the others), in one batch when possible.

    When the batch fails, the samples are scored one by one, so that only a sample that cannot be scored fails
    (with its exception in its place).
    """
    wanted = [i for i, s in enumerate(samples) if s.reference and not s.error]
    scores: list[dict[str, float] | Exception] = [{} for _ in samples]
    try:
        batch = rouge_scores_many([(samples[i].output, samples[i].reference) for i in wanted])
    except Exception:  # a bad text must not take the batch down: find it
        log.warning("rouge_batch_failed", exc_info=True)
        for i in wanted:
            try:
                scores[i] = rouge_scores_many([(samples[i].output, samples[i].reference)])[0]
            except Exception as exc:  # recorded on the result as its failure reason
                scores[i] = exc
        return scores
    for i, value in zip(wanted, batch, strict=True):
        scores[i] = value
    return scores


def _score(claimed: Sequence[JobResult]) -> list[_Scored]:
    """Compute the figures of claimed results in memory: sample ROUGE, run means, statistics."""
    job_ids = [r.job_id for r in claimed]
    runs_by_job: dict[int, list[RunResult]] = {}
    for run in RunResult.objects.filter(job_id__in=job_ids).order_by("job_id", "run_index"):
        runs_by_job.setdefault(run.job_id, []).append(run)
    job_of_run = {run.pk: run.job_id for runs in runs_by_job.values() for run in runs}
    samples_by_job: dict[int, list[SampleResult]] = {}
    samples = list(
        SampleResult.objects.filter(run_id__in=list(job_of_run))
        .only("id", "run_id", "sample_id", "output", "reference", "metrics", "timings", "error")
        .order_by("run_id", "id")
    )
    for sample in samples:
        samples_by_job.setdefault(job_of_run[sample.run_id], []).append(sample)
    rouge = dict(zip((s.pk for s in samples), _rouge_all(samples), strict=True))

    out = []
    for result in claimed:
        scored = _Scored(result, runs_by_job.get(result.job_id, []), samples_by_job.get(result.job_id, []))
        per_run: dict[int, list[dict[str, float]]] = {}
        run_index = {run.pk: run.run_index for run in scored.runs}
        for sample in scored.samples:
            value = rouge[sample.pk]
            if isinstance(value, Exception):
                where = f"ROUGE of sample {sample.sample_id!r} of run {run_index[sample.run_id]}"
                scored.reasons.append(_reason(where, value))
                continue
            if value:
                sample.metrics = {**(sample.metrics or {}), **value}
            per_run.setdefault(sample.run_id, []).append(value)
        for run in scored.runs:
            run.metrics = {**(run.metrics or {}), **rouge_means(per_run.get(run.pk, []))}
        # The per-request statistics take the samples in run order, then request order.
        ordered = sorted(scored.samples, key=lambda s: (run_index[s.run_id], s.pk))
        try:
            scored.statistics = job_statistics_rows(result.job, scored.runs, ordered)
        except Exception as exc:  # recorded on the result as its failure reason
            log.warning("statistics_failed", job_id=result.job_id, exc_info=True)
            scored.reasons.append(_reason("statistics", exc))
        out.append(scored)
    return out


def _update_metrics(model: type[RunResult] | type[SampleResult], rows: Sequence[RunResult | SampleResult]) -> None:
    """Write the ``metrics`` of many rows: one prepared UPDATE sent for all of them (``executemany``).

    ``bulk_update`` would build one CASE expression over the rows in Python, which cost more than the scoring
    of the samples it writes.
    """
    if not rows:
        return
    field = model._meta.get_field("metrics")
    table, column, key = model._meta.db_table, field.column, model._meta.pk.column
    quote = connection.ops.quote_name
    # The table and column names come from the model, never from input; the values are parameters.
    sql = f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE {quote(key)} = %s"  # noqa: S608  # nosec B608
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(field.get_db_prep_value(row.metrics, connection), row.pk) for row in rows])


def _write(scored: Sequence[_Scored], now: datetime) -> None:
    """Store the figures of scored results and end their scoring, a few statements for the whole batch."""
    _update_metrics(SampleResult, [s for item in scored for s in item.samples])
    _update_metrics(RunResult, [r for item in scored for r in item.runs])
    job_ids = [item.result.job_id for item in scored]
    JobMetricStatistics.objects.filter(job_id__in=job_ids).delete()
    JobMetricStatistics.objects.bulk_create([row for item in scored for row in item.statistics], batch_size=1000)
    for item in scored:
        result = item.result
        result.statistics_source = item.statistics[0].source if item.statistics else "none"
        result.scoring_status = ScoringStatus.FAILED if item.reasons else ScoringStatus.SCORED
        result.scoring_error = "; ".join(item.reasons)[:MAX_REASON]
        result.scored_at = now
    JobResult.objects.bulk_update(
        [item.result for item in scored], ["statistics_source", "scoring_status", "scoring_error", "scored_at"]
    )
    # A new updated_at on the job: websocket clients (and pages polling the job) see that its results changed.
    Job.objects.filter(pk__in=job_ids).update(updated_at=now)
    for job_id in job_ids:
        events.emit(events.JOB_UPDATED, job_id)


def _fail(claimed: Sequence[JobResult], reason: str, now: datetime) -> None:
    """End the scoring of claimed results as ``failed`` with a reason (their figures could not be written)."""
    for result in claimed:
        result.scoring_status = ScoringStatus.FAILED
        result.scoring_error = reason[:MAX_REASON]
        result.scored_at = now
    JobResult.objects.bulk_update(claimed, ["scoring_status", "scoring_error", "scored_at"])
    Job.objects.filter(pk__in=[r.job_id for r in claimed]).update(updated_at=now)
    for result in claimed:
        events.emit(events.JOB_UPDATED, result.job_id)


def score_pending(*, limit: int = SCORING_BATCH, now: datetime | None = None) -> int:
    """Claim up to ``limit`` results waiting to be scored, score them and commit.

    Args:
        limit: Most results to claim.
        now: Timestamp of the scoring (default: now).

    Returns:
        How many results were claimed and ended (scored or failed); 0 when none was waiting (or all were held by
        other workers).
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            claimed = _claim(limit)
            if not claimed:
                return 0
            scored = _score(claimed)
            _write(scored, now)
    except OperationalError:
        raise  # the database is unreachable or busy: nothing is decided, the worker tries again later
    except DatabaseError as exc:
        # Some result's figures cannot be stored (a value the column refuses...): find which, one at a time, and
        # mark only that one failed, so that it does not block the queue.
        if limit > 1:
            log.warning("scoring_batch_write_failed", error=str(exc))
            return sum(score_pending(limit=1, now=now) for _ in range(limit))
        with transaction.atomic():
            claimed = _claim(1)
            _fail(claimed, _reason("storing the figures", exc), now)
        log.warning("result_scoring_failed", job_ids=[r.job_id for r in claimed], error=str(exc))
        return len(claimed)
    for item in scored:
        if item.reasons:
            log.warning("result_scoring_failed", job_id=item.result.job_id, reason=item.result.scoring_error)
    log.info("results_scored", results=len(scored), samples=sum(len(i.samples) for i in scored))
    return len(scored)


def score_all_pending(*, limit: int = SCORING_BATCH) -> int:
    """Score every result waiting, batch after batch, until the queue is empty (tests, the demo, ``--once``).

    Args:
        limit: Results per batch.

    Returns:
        How many results were scored or failed.
    """
    total = 0
    while done := score_pending(limit=limit):
        total += done
    return total


def run_scoring(
    stop: threading.Event,
    *,
    batch: int = SCORING_BATCH,
    idle_s: float = SCORING_IDLE_S,
    on_error: Callable[[Exception], Any] | None = None,
) -> int:
    """Score results until ``stop`` is set: the loop of a scoring worker (a process, or a thread of the scheduler).

    A failing pass (database down) is logged once per outage and retried after ``idle_s``; a pass that found
    nothing waits ``idle_s``. Connections the database closed are dropped before each pass (a long-running worker,
    DESIGN section 9).

    Args:
        stop: Set to make the loop return after the current batch.
        batch: Results per claim.
        idle_s: Seconds to wait when there is nothing to score, or after a failure.
        on_error: Called with each failure (tests); default: log it.

    Returns:
        How many results this loop scored.
    """
    total = 0
    failing = False
    while not stop.is_set():
        close_old_connections()
        try:
            started = time.monotonic()
            done = score_pending(limit=batch)
            if failing:
                log.info("scoring_recovered")
            failing = False
        except Exception as exc:  # one bad pass must not end the worker; the next one retries
            if on_error is not None:
                on_error(exc)
            elif not failing:
                log.exception("scoring_pass_failed")
            failing = True
            stop.wait(idle_s)
            continue
        total += done
        if done:
            log.debug("scoring_pass", results=done, seconds=round(time.monotonic() - started, 3))
        else:
            stop.wait(idle_s)
    close_old_connections()
    return total


class ScoringThread(threading.Thread):
    """A scoring worker in a thread (the scheduler's: one deployment process scores without another process).

    The thread has its own database connection (Django connections are per thread) and stops at :meth:`stop`.
    """

    def __init__(self, *, batch: int = SCORING_BATCH, idle_s: float = SCORING_IDLE_S) -> None:
        super().__init__(name="ruckus-scoring", daemon=True)
        self._stop_event = threading.Event()
        self._batch = batch
        self._idle_s = idle_s
        self.scored = 0

    def run(self) -> None:
        """Score until stopped."""
        try:
            self.scored = run_scoring(self._stop_event, batch=self._batch, idle_s=self._idle_s)
        finally:
            close_old_connections()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to end after its current batch and wait for it.

        Args:
            timeout: Longest wait in seconds (None: until it ends).
        """
        self._stop_event.set()
        self.join(timeout)
