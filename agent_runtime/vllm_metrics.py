"""Server-side figures from a vLLM server's Prometheus ``/metrics`` endpoint (gray-box runtime).

:func:`parse_vllm_metrics` flattens one scrape; :func:`vllm_metrics_delta` turns two scrapes taken
around a run into the server's own view of that run. Both vLLM engine generations are understood:
V0 and V1 share most names, V1 renamed ``gpu_cache_usage_perc`` to ``kv_cache_usage_perc`` and added
``inter_token_latency_seconds`` and the per-request ``request_time_per_output_token_seconds``.

Figures that the interval does not support (no request finished, a counter went backwards because
the server restarted) are left out of the result, never reported as zero.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from common.metrics import Metric

#: Time-to-first-token histogram (V0 and V1).
TTFT = "vllm:time_to_first_token_seconds"
#: End-to-end request latency histogram (V0 and V1).
E2E = "vllm:e2e_request_latency_seconds"
#: Per-request time per output token (V1 from 0.9 on): the same definition as the client's ``tpot_s``.
REQUEST_TPOT = "vllm:request_time_per_output_token_seconds"
#: Per-token decode latency: V0 and early V1 name, and the later V1 name.
TPOT_V0 = "vllm:time_per_output_token_seconds"
ITL_V1 = "vllm:inter_token_latency_seconds"
GENERATION_TOKENS = "vllm:generation_tokens_total"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
REQUEST_SUCCESS = "vllm:request_success_total"
KV_CACHE_V1 = "vllm:kv_cache_usage_perc"
KV_CACHE_V0 = "vllm:gpu_cache_usage_perc"
RUNNING = "vllm:num_requests_running"

#: Result names of :func:`vllm_metrics_delta` (the canonical ``server_*`` metric names).
SERVER_TTFT_S = Metric.SERVER_TTFT_S.value
SERVER_E2E_LATENCY_S = Metric.SERVER_E2E_LATENCY_S.value
SERVER_TPOT_S = Metric.SERVER_TPOT_S.value
SERVER_ITL_S = Metric.SERVER_ITL_S.value
SERVER_GENERATION_TOKENS = Metric.SERVER_GENERATION_TOKENS.value
SERVER_PROMPT_TOKENS = Metric.SERVER_PROMPT_TOKENS.value
SERVER_REQUESTS = Metric.SERVER_REQUESTS.value
SERVER_KV_CACHE_USAGE_PCT = Metric.SERVER_KV_CACHE_USAGE_PCT.value
SERVER_REQUESTS_RUNNING = Metric.SERVER_REQUESTS_RUNNING.value


def parse_vllm_metrics(text: str) -> dict[str, float]:
    """Flatten a Prometheus text exposition into ``{sample name: value}``.

    Counters and gauges are summed across their label sets (several models or engines behind one
    server), except the ``*_perc`` usage gauges, which are fractions per engine and are averaged.
    Histograms and summaries keep ``<name>_sum`` and ``<name>_count`` (buckets and quantiles are
    dropped); ``_created`` timestamps are dropped.

    Args:
        text: The body of ``GET /metrics``.

    Returns:
        Sample name -> value, e.g. ``vllm:time_to_first_token_seconds_sum``,
        ``vllm:generation_tokens_total``, ``vllm:kv_cache_usage_perc``.

    Raises:
        ValueError: The text is not valid Prometheus exposition.
    """
    if text and not text.endswith("\n"):
        text += "\n"  # the parser needs the last line terminated; some exporters omit it
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if name.endswith(("_bucket", "_created", "_gcount", "_gsum")) or "quantile" in sample.labels:
                continue
            sums[name] = sums.get(name, 0.0) + float(sample.value)
            counts[name] = counts.get(name, 0) + 1
    return {
        name: (value / counts[name] if name.endswith("_perc") and counts[name] > 1 else value)
        for name, value in sums.items()
    }


def _histogram_mean(before: dict[str, float], after: dict[str, float], name: str) -> float | None:
    """Mean of the observations a histogram received between two scrapes."""
    try:
        d_sum = after[f"{name}_sum"] - before.get(f"{name}_sum", 0.0)
        d_count = after[f"{name}_count"] - before.get(f"{name}_count", 0.0)
    except KeyError:
        return None
    if d_count <= 0 or d_sum < 0:
        return None  # nothing observed, or the server restarted in between
    return d_sum / d_count


def _counter_delta(before: dict[str, float], after: dict[str, float], name: str) -> float | None:
    """Increase of a counter between two scrapes (None when absent or reset)."""
    if name not in after:
        return None
    delta = after[name] - before.get(name, 0.0)
    return delta if delta >= 0 else None


def vllm_metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Server-side figures over the interval between two :func:`parse_vllm_metrics` scrapes.

    Result names:

    * ``server_ttft_s``: mean time to first token of the requests finished in the interval.
    * ``server_e2e_latency_s``: mean end-to-end latency of those requests.
    * ``server_tpot_s``: mean time per output token; the per-request histogram
      (``request_time_per_output_token_seconds``) where the server has it, else the per-token
      decode histogram (``time_per_output_token_seconds`` / ``inter_token_latency_seconds``).
    * ``server_inter_token_latency_s``: mean gap between consecutive tokens (per-token histogram).
    * ``server_generation_tokens`` / ``server_prompt_tokens``: tokens generated / prefilled.
    * ``server_requests``: requests finished successfully.
    * ``server_kv_cache_usage_pct``: KV-cache usage at the second scrape, in percent (vLLM reports a
      fraction).
    * ``server_requests_running``: requests running at the second scrape.

    Args:
        before: Scrape taken before the run.
        after: Scrape taken after it.

    Returns:
        The figures the two scrapes support; unsupported ones are absent.
    """
    out: dict[str, float | None] = {
        SERVER_TTFT_S: _histogram_mean(before, after, TTFT),
        SERVER_E2E_LATENCY_S: _histogram_mean(before, after, E2E),
        SERVER_GENERATION_TOKENS: _counter_delta(before, after, GENERATION_TOKENS),
        SERVER_PROMPT_TOKENS: _counter_delta(before, after, PROMPT_TOKENS),
        SERVER_REQUESTS: _counter_delta(before, after, REQUEST_SUCCESS),
    }
    itl = _histogram_mean(before, after, ITL_V1)
    if itl is None:
        itl = _histogram_mean(before, after, TPOT_V0)
    out[SERVER_ITL_S] = itl
    per_request = _histogram_mean(before, after, REQUEST_TPOT)
    out[SERVER_TPOT_S] = per_request if per_request is not None else itl
    kv = after.get(KV_CACHE_V1, after.get(KV_CACHE_V0))
    out[SERVER_KV_CACHE_USAGE_PCT] = kv * 100.0 if kv is not None else None
    out[SERVER_REQUESTS_RUNNING] = after.get(RUNNING)
    return {name: value for name, value in out.items() if value is not None}
