"""Measurement arithmetic: per-request metrics from raw timings, run-level metrics, the job result.

Pure functions over plain values (no threads, no I/O), following the metric definitions of DESIGN section 6:

* ``e2e_latency_s``: request sent -> the last generation step (the last streamed chunk, or the final chunk without
  text that an endpoint stopping on EOS sends after it); ``ttft_s``: request sent -> first non-empty token.
* ``tpot_s``: ``(e2e - ttft) / (output_tokens - 1)``, only when more than one token came; ``output_tokens`` is the
  endpoint's own count when it gives one, which includes that EOS step, so e2e must include it too (the
  definitions of ``vllm bench serve``).
* ``inter_token_gaps_s``: every gap between consecutive chunks (a sample's metric is their mean; the run's
  metric is the mean over every gap of every request, so long answers weigh more).
* ``output_tokens_per_s``: total output tokens of the run / wall time of the run.

A metric that cannot be produced is absent with a reason, never zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from agent_runtime.runtimes.base import Generation
from agent_runtime.tasks.base import Sample
from common.catalog import RUNTIMES
from common.metrics import Metric
from common.protocol import (
    AgentJobState,
    ExecutionInfo,
    JobRequest,
    LoadSweepRun,
    MultiRunJobResult,
    SampleResult,
    SingleRunResult,
    utcnow,
)


def _mean(values: list[float]) -> float | None:
    """Mean of a list, None when empty."""
    return math.fsum(values) / len(values) if values else None


def sample_result(sample: Sample, gen: Generation) -> SampleResult:
    """Turn a generation into a sample result with its per-request metrics (DESIGN section 6).

    Args:
        sample: The sample.
        gen: What the runtime produced.

    Returns:
        The sample result.
    """
    last = gen.last_step if gen.last_step is not None else (gen.chunk_times[-1] if gen.chunk_times else None)
    e2e = (last - gen.sent) if last is not None else None
    ttft = (gen.first_token - gen.sent) if gen.first_token is not None else None
    metrics: dict[str, float | None] = {}
    if e2e is not None:
        metrics[Metric.E2E_LATENCY_S] = e2e
    if ttft is not None:
        metrics[Metric.TTFT_S] = ttft
    if e2e is not None and ttft is not None and gen.output_tokens is not None and gen.output_tokens > 1:
        metrics[Metric.TPOT_S] = (e2e - ttft) / (gen.output_tokens - 1)
    gaps = [b - a for a, b in zip(gen.chunk_times, gen.chunk_times[1:], strict=False)]
    if gaps:
        metrics[Metric.INTER_TOKEN_GAPS_S] = math.fsum(gaps) / len(gaps)
    return SampleResult(
        id=sample.id,
        title=sample.title,
        output=gen.text,
        reference=sample.reference,
        prompt_tokens=gen.prompt_tokens,
        output_tokens=gen.output_tokens,
        metrics=metrics,
        request_sent_at=gen.sent_at,
        first_token_at=gen.sent_at + ttft if ttft is not None else None,
        finished_at=gen.sent_at + e2e if e2e is not None else None,
        inter_token_gaps_s=gaps,
        finish_reason=gen.finish_reason,
    )


def run_metrics(samples: list[SampleResult], wall_s: float) -> tuple[dict[str, float | None], dict[str, str]]:
    """Aggregate per-request results into run-level metrics.

    Args:
        samples: The run's sample results (failed requests carry ``error`` and are skipped).
        wall_s: Wall time of the run.

    Returns:
        ``(metrics, unavailable)``.
    """
    ok = [s for s in samples if s.error is None]
    metrics: dict[str, float | None] = {Metric.RUN_WALL_S: wall_s}
    unavailable: dict[str, str] = {}
    for name in (Metric.E2E_LATENCY_S, Metric.TTFT_S, Metric.TPOT_S):
        value = _mean([s.metrics[name] for s in ok if s.metrics.get(name) is not None])  # type: ignore[misc]
        if value is not None:
            metrics[name] = value
        else:
            unavailable[name] = (
                "no request produced more than one token" if name == Metric.TPOT_S else "no request produced a token"
            )
    gaps = [g for s in ok for g in s.inter_token_gaps_s]
    if gaps:
        metrics[Metric.INTER_TOKEN_GAPS_S] = math.fsum(gaps) / len(gaps)
    else:
        unavailable[Metric.INTER_TOKEN_GAPS_S] = "no request streamed more than one chunk"
    if ok and all(s.output_tokens is not None for s in ok):
        total = sum(s.output_tokens or 0 for s in ok)
        metrics[Metric.OUTPUT_TOKENS] = float(total)
        metrics[Metric.OUTPUT_TOKENS_PER_S] = total / wall_s if wall_s > 0 else 0.0
    else:
        unavailable[Metric.OUTPUT_TOKENS] = unavailable[Metric.OUTPUT_TOKENS_PER_S] = "output token counts unknown"
    if ok and all(s.prompt_tokens is not None for s in ok):
        metrics[Metric.PROMPT_TOKENS] = float(sum(s.prompt_tokens or 0 for s in ok))
    else:
        unavailable[Metric.PROMPT_TOKENS] = "the runtime did not report prompt token counts"
    return metrics, unavailable


def merge_metrics(
    metrics: Mapping[str, float | None],
    unavailable: Mapping[str, str],
    more: Mapping[str, float | None],
    more_unavailable: Mapping[str, str],
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Add a second source of run metrics (telemetry, a runtime's server-side figures) to the first.

    Values of ``more`` win over those of ``metrics``; a metric either source measured is never also reported
    as unavailable.

    Args:
        metrics: Metrics so far.
        unavailable: Metric -> reason so far.
        more: Metrics to add.
        more_unavailable: Metric -> reason from the second source.

    Returns:
        ``(metrics, unavailable)``, new dicts.
    """
    merged = {**metrics, **more}
    reasons = {k: v for k, v in unavailable.items() if k not in merged}
    reasons.update((k, v) for k, v in more_unavailable.items() if k not in merged)
    return merged, reasons


def add_model_load(
    metrics: dict[str, float | None], unavailable: dict[str, str], load_s: float | None, reason: str | None
) -> None:
    """Record the cold run's ``model_load_s``, or why it is missing.

    Args:
        metrics: The cold run's metrics (updated).
        unavailable: The cold run's missing metrics (updated).
        load_s: Seconds the model load took, None when not measured.
        reason: Why it was not measured (the runtime's words), when known.
    """
    if load_s is not None:
        metrics[Metric.MODEL_LOAD_S] = load_s
    else:
        unavailable[Metric.MODEL_LOAD_S] = reason or "not measured"


def job_unavailable_metrics(runs: list[SingleRunResult]) -> dict[str, str]:
    """Metrics no run of a job produced, each with the first reason a run gave.

    Args:
        runs: The job's runs.

    Returns:
        Metric -> reason; a metric any run measured is left out.
    """
    produced = {k for r in runs for k in r.metrics}
    unavailable: dict[str, str] = {}
    for r in runs:
        for k, v in r.unavailable_metrics.items():
            if k not in produced:
                unavailable.setdefault(k, v)
    return unavailable


def build_result(
    request: JobRequest,
    runs: list[SingleRunResult],
    status: AgentJobState,
    *,
    error: str | None = None,
    fingerprint: str | None = None,
    started_at: object = None,
    execution: ExecutionInfo | None = None,
    load: LoadSweepRun | None = None,
) -> MultiRunJobResult:
    """Assemble a job result: the raw runs, the cold run's metrics apart (the server computes statistics).

    A load job's result carries its sweep (``load``: the points run, each with its raw request timings) and no
    runs.

    Args:
        request: The job.
        runs: Finished runs in order.
        status: Final state.
        error: Error text for failed/stopped jobs.
        fingerprint: Hardware fingerprint of this agent.
        started_at: When the job started.
        execution: Device, dtype and weight size of the loaded model, when the runtime knows them.
        load: The sweep of a load job (its finished points).

    Returns:
        The result.
    """
    cold = next((r for r in runs if r.cold_start), None)
    rdef = RUNTIMES.get(request.runtime.name)
    return MultiRunJobResult(
        job_id=request.job_id,
        attempt=request.attempt,
        attempt_token=request.attempt_token,
        status=status,
        task=request.task.name,
        model=request.model.name,
        runtime=request.runtime.name,
        access_mode=rdef.access_mode if rdef else None,
        runs_per_job=request.runs_per_job,
        runs=runs,
        statistics_source="none",
        cold_start=dict(cold.metrics) if cold else None,
        unavailable_metrics=job_unavailable_metrics(runs),
        hardware_fingerprint=fingerprint,
        execution=execution,
        load=load,
        error=error,
        started_at=started_at,  # type: ignore[arg-type]
        finished_at=utcnow(),
    )
