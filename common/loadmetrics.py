"""Figures of one load point from its raw per-request timings, with the definitions of ``vllm bench serve``.

The agent records every request of a load point (:class:`~common.protocol.load.RequestRecord`); the server (and the
agent, to stop a sweep early) derives the point's figures here, from the same code, so that a figure in RUCKUS means
what the same figure means in ``vllm bench serve``. Pure Python (no NumPy: ``common`` is installed on agents that
have none); each series is sorted once and every percentile read from it.

Definitions and where they come from (vLLM, ``vllm/benchmarks/serve.py``, function ``calculate_metrics``, and
``vllm/benchmarks/lib/endpoint_request_func.py``, functions ``async_request_openai_completions`` and
``async_request_openai_chat_completions``):

* **completed**: requests that succeeded (``calculate_metrics``: ``outputs[i].success``). Here: no error and not
  timed out. **failed** counts the other errors, **timed_out** those past ``request_timeout_s``; the three add up
  to the point's requests. **error_rate** = (failed + timed_out) / requests.
* **duration_s**: the point's benchmark duration, from the first send to the last request's end
  (``benchmark``'s ``benchmark_duration``); the agent measures it into ``LoadPointRun.duration_s``.
* **total_input_tokens**, **total_output_tokens**: prompt and output tokens of the completed requests only
  (``calculate_metrics``: ``total_input`` adds ``prompt_len`` of successful requests; a failed request's output
  length is 0). Output tokens are the server's ``usage.completion_tokens`` (``output.output_tokens``).
* **request_throughput** = completed / duration; **output_throughput** = total output tokens / duration;
  **total_token_throughput** = (input + output tokens) / duration (``BenchmarkMetrics`` in ``calculate_metrics``).
* **ttft_s**: time to first token, per completed request (``output.ttft``).
* **tpot_s**: per completed request with more than one output token, (e2e - ttft) / (output_tokens - 1)
  (``calculate_metrics``: ``latency_minus_ttft / (output_len - 1)``, appended to ``tpots`` only when
  ``output_len > 1``).
* **itl_s**: every gap between consecutive streamed chunks, all completed requests pooled
  (``calculate_metrics``: ``itls += outputs[i].itl``).
* **e2e_s**: end-to-end latency per completed request, from the send to the last chunk (``output.latency``).
* Each distribution: mean (``np.mean``), median (``np.median``), **population** standard deviation (``np.std``,
  denominator n), percentiles by linear interpolation between closest ranks (``np.percentile``'s default
  ``linear`` method), min, max and count. ``vllm bench serve`` reports 0 for a distribution without values
  (``np.mean(ttfts or 0)``); here it is None, so that "nothing measured" never reads as "instant".
* **goodput**: completed requests meeting every objective given (ttft <= ``ttft_ms``, tpot <= ``tpot_ms``,
  e2e <= ``e2e_ms``) / duration (``calculate_metrics``: ``request_goodput = good_completed / dur_s``, comparing
  ``s >= r`` per objective; a request with at most one output token has a TPOT of 0 there).

Figures ``vllm bench serve`` does not have:

* **achieved_concurrency**: mean requests in flight by Little's law, the sum of the time every request spent in
  flight (its ``e2e_s``: completed requests and failed or timed-out ones alike, up to their failure) / duration.
* **slo_met**: the ``slo.percentile`` of each targeted figure (TTFT, TPOT, e2e) is within its target and the error
  rate is at most ``slo.max_error_rate``. A point without completed requests does not meet them; a TPOT target is
  met when no completed request had more than one output token (TPOT 0, as in goodput).
* **power_w**, **energy_j**: the point's telemetry; energy is power x duration when only power was measured.
  **energy_per_output_token_j** = energy / total output tokens; **output_tokens_per_joule** its inverse;
  **output_tokens_per_dollar** = output_throughput x 3600 / cost per hour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from common.protocol.load import EarlyStop, LoadPointRun, RequestRecord, ServiceLevelObjectives

__all__ = [
    "DISTRIBUTIONS",
    "PERCENTILES",
    "distribution",
    "early_stop_reason",
    "percentile_sorted",
    "point_figures",
    "point_series",
]

#: The per-request distributions of a point, in the order they are shown.
DISTRIBUTIONS = ("ttft_s", "tpot_s", "itl_s", "e2e_s")
#: The percentiles every distribution reports (besides the median).
PERCENTILES = (90, 95, 99)


def percentile_sorted(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of an already sorted series, as ``np.percentile`` computes it (``linear``).

    Args:
        values: Non-empty series in ascending order.
        q: Percentile between 0 and 100.

    Returns:
        The value at rank ``(n - 1) * q / 100``, interpolated linearly between the two closest ranks.

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of an empty series")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be between 0 and 100, got {q}")
    rank = (len(values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    frac = rank - low
    a, b = values[low], values[high]
    # NumPy's _lerp: interpolate from the nearer end, so that the result is exact at either rank and monotonic.
    return a + (b - a) * frac if frac < 0.5 else b - (b - a) * (1.0 - frac)


def distribution(values: Sequence[float]) -> dict[str, float | int] | None:
    """Mean, median, population std, p90/p95/p99, min, max and count of a series (sorted once).

    Args:
        values: The series (any order).

    Returns:
        ``{mean, median, std, p90, p95, p99, min, max, count}``, or None for an empty series.
    """
    return _distribution_of_sorted(sorted(values)) if values else None


def _distribution_of_sorted(ordered: Sequence[float]) -> dict[str, float | int] | None:
    """:func:`distribution` of a series already in ascending order (None when empty)."""
    if not ordered:
        return None
    n = len(ordered)
    mean = math.fsum(ordered) / n
    # Two passes, like np.std: the one-pass formula loses precision when the spread is small next to the mean.
    std = math.sqrt(math.fsum((x - mean) * (x - mean) for x in ordered) / n)
    out: dict[str, float | int] = {"mean": mean, "median": percentile_sorted(ordered, 50), "std": std}
    for q in PERCENTILES:
        out[f"p{q}"] = percentile_sorted(ordered, q)
    out["min"] = ordered[0]
    out["max"] = ordered[-1]
    out["count"] = n
    return out


def _completed(record: RequestRecord) -> bool:
    """A request succeeded: no error, not timed out, and it has its latencies."""
    return record.error is None and not record.timed_out and record.ttft_s is not None and record.e2e_s is not None


def _tpot(record: RequestRecord) -> float | None:
    """Time per output token after the first, or None with at most one output token (vLLM's ``tpots``)."""
    tokens = record.output_tokens or 0
    if tokens <= 1 or record.e2e_s is None or record.ttft_s is None:
        return None
    return (record.e2e_s - record.ttft_s) / (tokens - 1)


def point_series(point: LoadPointRun) -> dict[str, list[float]]:
    """The raw per-request series of a point's completed requests (what the distributions are made of).

    Args:
        point: The measured load point.

    Returns:
        ``{"ttft_s": [...], "tpot_s": [...], "itl_s": [...], "e2e_s": [...]}``, each in send order (``itl_s``
        pooled over requests, each request's gaps in order).
    """
    ttft: list[float] = []
    tpot: list[float] = []
    itl: list[float] = []
    e2e: list[float] = []
    for record in point.requests:
        if not _completed(record):
            continue
        ttft.append(record.ttft_s)  # type: ignore[arg-type]  # _completed checked it
        e2e.append(record.e2e_s)  # type: ignore[arg-type]
        value = _tpot(record)
        if value is not None:
            tpot.append(value)
        itl.extend(record.itl_s)
    return {"ttft_s": ttft, "tpot_s": tpot, "itl_s": itl, "e2e_s": e2e}


def _good(record: RequestRecord, slo: ServiceLevelObjectives) -> bool:
    """A completed request meets every objective given (``calculate_metrics``'s goodput test)."""
    if slo.ttft_ms is not None and record.ttft_s * 1000.0 > slo.ttft_ms:  # type: ignore[operator]
        return False
    if slo.tpot_ms is not None and (_tpot(record) or 0.0) * 1000.0 > slo.tpot_ms:
        return False
    return not (slo.e2e_ms is not None and record.e2e_s * 1000.0 > slo.e2e_ms)  # type: ignore[operator]


def _meets(
    ordered: dict[str, list[float]], completed: int, error_rate: float | None, slo: ServiceLevelObjectives
) -> bool:
    """Whether a point meets the objectives at ``slo.percentile`` (and within ``slo.max_error_rate``)."""
    if completed == 0 or error_rate is None or error_rate > slo.max_error_rate:
        return False
    targets = (("ttft_s", slo.ttft_ms), ("tpot_s", slo.tpot_ms), ("e2e_s", slo.e2e_ms))
    for key, target_ms in targets:
        if target_ms is None:
            continue
        values = ordered[key]
        if not values:
            # Only TPOT can be empty with completed requests (none had two tokens): TPOT 0, as goodput counts it.
            continue
        if percentile_sorted(values, slo.percentile) * 1000.0 > target_ms:
            return False
    return True


def _per(numerator: float, denominator: float | None) -> float | None:
    """A ratio, or None when the denominator is missing or not positive."""
    if denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def point_figures(
    point: LoadPointRun, slo: ServiceLevelObjectives | None, cost_per_hour: float | None = None
) -> dict[str, Any]:
    """Every figure of one load point (definitions in the module docstring).

    Args:
        point: The measured load point.
        slo: The sweep's objectives (None: no goodput and no ``slo_met``).
        cost_per_hour: What the hardware costs per hour (None: no tokens per dollar).

    Returns:
        A JSON-ready dict: ``index, concurrency, request_rate, completed, failed, timed_out, error_rate,
        duration_s, total_input_tokens, total_output_tokens, request_throughput, output_throughput,
        total_token_throughput, goodput, achieved_concurrency, slo_met, ttft_s, tpot_s, itl_s, e2e_s, power_w,
        energy_j, energy_per_output_token_j, output_tokens_per_joule, output_tokens_per_dollar``. Ratios over a
        zero duration or zero tokens are None.
    """
    completed = failed = timed_out = 0
    total_input = total_output = 0
    in_flight_s = 0.0
    good = 0
    for record in point.requests:
        if record.e2e_s is not None:
            in_flight_s += record.e2e_s
        if record.timed_out:
            timed_out += 1
        elif not _completed(record):
            failed += 1
        else:
            completed += 1
            total_input += record.prompt_tokens or 0
            total_output += record.output_tokens or 0
            if slo is not None and _good(record, slo):
                good += 1
    total = len(point.requests)
    error_rate = (failed + timed_out) / total if total else None
    duration = point.duration_s if point.duration_s > 0 else None
    # Each series sorted once: its distribution and the objectives' percentile both read the sorted copy.
    ordered = {key: sorted(values) for key, values in point_series(point).items()}
    output_throughput = _per(total_output, duration)
    energy = point.energy_j
    if energy is None and point.power_w is not None and duration is not None:
        energy = point.power_w * duration
    dollars_per_hour = cost_per_hour if cost_per_hour is not None and cost_per_hour > 0 else None
    return {
        "index": point.index,
        "concurrency": point.concurrency,
        "request_rate": point.request_rate,
        "completed": completed,
        "failed": failed,
        "timed_out": timed_out,
        "error_rate": error_rate,
        "duration_s": point.duration_s,
        "total_input_tokens": total_input,
        "total_output_tokens": total_output,
        "request_throughput": _per(completed, duration),
        "output_throughput": output_throughput,
        "total_token_throughput": _per(total_input + total_output, duration),
        "goodput": _per(good, duration) if slo is not None else None,
        "achieved_concurrency": _per(in_flight_s, duration),
        "slo_met": _meets(ordered, completed, error_rate, slo) if slo is not None else None,
        **{key: _distribution_of_sorted(ordered[key]) for key in DISTRIBUTIONS},
        "power_w": point.power_w,
        "energy_j": energy,
        "energy_per_output_token_j": _per(energy, total_output) if energy is not None else None,
        "output_tokens_per_joule": _per(total_output, energy) if total_output else None,
        "output_tokens_per_dollar": (
            output_throughput * 3600.0 / dollars_per_hour
            if output_throughput is not None and dollars_per_hour is not None
            else None
        ),
    }


def _median_e2e(figures: dict[str, Any]) -> float | None:
    """A point's median e2e latency, seconds, or None when it completed no request."""
    e2e = figures.get("e2e_s")
    return e2e.get("median") if isinstance(e2e, dict) else None


def early_stop_reason(figures: Sequence[dict[str, Any]], early_stop: EarlyStop) -> str | None:
    """Why a sweep should stop after its latest point, or None to go on.

    The latest point (the last of ``figures``) stops the sweep when more than ``early_stop.max_error_rate`` of its
    requests failed or timed out, or when its median e2e latency is more than ``early_stop.latency_factor`` times
    the first point's (latency has exploded: the server is far past saturation).

    Args:
        figures: :func:`point_figures` of the points run so far, in sweep order.
        early_stop: The sweep's early-stop rule.

    Returns:
        A sentence saying why, or None.
    """
    if not figures:
        return None
    latest = figures[-1]
    error_rate = latest.get("error_rate")
    if early_stop.max_error_rate is not None and error_rate is not None and error_rate > early_stop.max_error_rate:
        return f"{error_rate * 100:.3g}% of requests failed or timed out (limit {early_stop.max_error_rate * 100:.3g}%)"
    if early_stop.latency_factor is not None and len(figures) > 1:
        first, last = _median_e2e(figures[0]), _median_e2e(latest)
        if first is not None and last is not None and first > 0 and last > early_stop.latency_factor * first:
            return (
                f"median e2e latency {last:.3g} s is more than {early_stop.latency_factor:g} times "
                f"the first point's {first:.3g} s"
            )
    return None
