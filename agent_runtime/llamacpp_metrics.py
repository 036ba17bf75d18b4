"""Server-side figures from a llama.cpp server's Prometheus ``/metrics`` (``llama-server --metrics``).

llama.cpp exports cumulative counters, not histograms (``tools/server/server-task.cpp``, ``to_metrics``):

* ``llamacpp:tokens_predicted_total``: tokens generated, the first one of each request included (it comes from
  the logits of the last prompt batch), and the end-of-generation token a request stops on.
* ``llamacpp:tokens_predicted_seconds_total``: per request, the time from sampling its first token to sampling
  its last one, summed over requests.
* ``llamacpp:prompt_tokens_total`` / ``llamacpp:prompt_tokens_cached_total``: prompt tokens processed / reused
  from the prompt cache (the cached counter is absent from older servers).
* ``llamacpp:prompt_seconds_total``: time spent processing prompts.
* ``llamacpp:requests_processing`` / ``llamacpp:requests_deferred``: gauges.
* ``llamacpp:kv_cache_usage_ratio``: KV-cache use as a fraction (older servers only).

There is no request counter, so the figures that are per request need the number of requests the interval
finished, which the client knows (it sent them): :func:`llamacpp_interval` takes it as ``requests``.

A figure carries a ``server_*`` name of :mod:`agent_runtime.vllm_metrics` only when its definition is the same:

* ``server_inter_token_latency_s`` = Δ``tokens_predicted_seconds`` / (Δ``tokens_predicted`` - requests): every
  request with n tokens spends that time over n - 1 decode steps, so this is the mean gap between consecutive
  tokens over every gap of every request, as vLLM's inter-token-latency histogram.
* ``server_generation_tokens``, ``server_requests_running``, ``server_kv_cache_usage_pct``: the same counts.
* ``server_prompt_tokens``: processed plus cached prompt tokens (vLLM counts every prompt token); left out when
  the server has no cached-token counter, since the processed count alone excludes cache hits.

``server_tpot_s`` (a mean over requests of each request's own TPOT) and ``server_ttft_s`` (arrival to first token,
queueing included) cannot be derived from these sums and are never reported for llama.cpp. Its own figures get
names of their own: ``server_prefill_s`` (prompt-processing time per request, without HTTP, queueing,
templating and tokenization), ``server_prefill_tokens_per_s``, ``server_prompt_tokens_processed`` and
``server_prompt_tokens_cached``.

llama.cpp prints every value with C++'s default six significant digits, so a counter past 10^6 moves in steps
larger than one: a figure whose rounding could move it by more than :data:`MAX_ROUNDING_ERROR` is left out, with
the reason, rather than reported with an error nobody sees. Counters that went backwards (a restarted server)
leave their figures out too; nothing is ever reported as zero for want of data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from agent_runtime.vllm_metrics import (
    SERVER_GENERATION_TOKENS,
    SERVER_ITL_S,
    SERVER_KV_CACHE_USAGE_PCT,
    SERVER_PROMPT_TOKENS,
    SERVER_REQUESTS_RUNNING,
    parse_vllm_metrics,
)
from common.metrics import Metric

PROMPT_TOKENS = "llamacpp:prompt_tokens_total"
PROMPT_TOKENS_CACHED = "llamacpp:prompt_tokens_cached_total"
PROMPT_SECONDS = "llamacpp:prompt_seconds_total"
TOKENS_PREDICTED = "llamacpp:tokens_predicted_total"
TOKENS_PREDICTED_SECONDS = "llamacpp:tokens_predicted_seconds_total"
N_DECODE = "llamacpp:n_decode_total"
REQUESTS_PROCESSING = "llamacpp:requests_processing"
REQUESTS_DEFERRED = "llamacpp:requests_deferred"
KV_CACHE_USAGE_RATIO = "llamacpp:kv_cache_usage_ratio"

#: llama.cpp's own figures (no vLLM counterpart with the same definition).
SERVER_PREFILL_S = Metric.SERVER_PREFILL_S.value
SERVER_PREFILL_TOKENS_PER_S = Metric.SERVER_PREFILL_TOKENS_PER_S.value
SERVER_PROMPT_TOKENS_PROCESSED = Metric.SERVER_PROMPT_TOKENS_PROCESSED.value
SERVER_PROMPT_TOKENS_CACHED = Metric.SERVER_PROMPT_TOKENS_CACHED.value
SERVER_REQUESTS_WAITING = Metric.SERVER_REQUESTS_WAITING.value
#: The figures :func:`llamacpp_interval` gives from a current llama-server (older servers' KV-cache gauge aside).
LLAMACPP_SERVER_FIGURES: tuple[str, ...] = (
    Metric.SERVER_ITL_S.value,
    Metric.SERVER_GENERATION_TOKENS.value,
    Metric.SERVER_PROMPT_TOKENS.value,
    Metric.SERVER_REQUESTS_RUNNING.value,
    SERVER_PREFILL_S,
    SERVER_PREFILL_TOKENS_PER_S,
    SERVER_PROMPT_TOKENS_PROCESSED,
    SERVER_PROMPT_TOKENS_CACHED,
    SERVER_REQUESTS_WAITING,
)

#: Largest relative error the six-digit printing of llama.cpp's counters may cause in a reported figure.
MAX_ROUNDING_ERROR = 0.005
#: Significant digits llama.cpp prints (``std::stringstream``'s default precision).
PRINTED_DIGITS = 6


@dataclass
class LlamaCppInterval:
    """The server's view of an interval between two scrapes.

    Attributes:
        metrics: Figure name -> value.
        unavailable: Figure name -> why the interval does not support it.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)


def parse_llamacpp_metrics(text: str) -> dict[str, float]:
    """Flatten a llama.cpp ``/metrics`` answer into ``{sample name: value}``.

    Args:
        text: The body of ``GET /metrics``.

    Returns:
        Sample name -> value (labelled series summed), e.g. ``llamacpp:tokens_predicted_total``.

    Raises:
        ValueError: The text is not valid Prometheus exposition.
    """
    return parse_vllm_metrics(text)


def _rounding(value: float) -> float:
    """Largest error the six-significant-digit printing of ``value`` may hide (0 for exactly printed integers)."""
    if value == 0 or (value.is_integer() and abs(value) < 10**PRINTED_DIGITS):
        return 0.0
    return 0.5 * 10 ** (math.floor(math.log10(abs(value))) - PRINTED_DIGITS + 1)


class _Delta:
    """Counter increases between two scrapes, each with the rounding error it may carry."""

    def __init__(self, before: dict[str, float], after: dict[str, float]) -> None:
        self.before = before
        self.after = after

    def get(self, name: str) -> tuple[float, float] | None:
        """``(increase, rounding bound)`` of a counter; None when absent or when it went backwards (a restart)."""
        if name not in self.after:
            return None
        old = self.before.get(name, 0.0)
        delta = self.after[name] - old
        if delta < 0:
            return None
        return delta, _rounding(self.after[name]) + _rounding(old)


def _ratio(
    out: LlamaCppInterval, name: str, num: tuple[float, float], den: tuple[float, float], what: str
) -> None:
    """Store ``num / den`` under ``name`` when the denominator is positive and the rounding small enough."""
    (n, n_err), (d, d_err) = num, den
    if d <= 0 or n <= 0:
        out.unavailable[name] = f"no {what} in the interval"
        return
    if n_err / n + d_err / d > MAX_ROUNDING_ERROR:
        out.unavailable[name] = (
            "the server's counters are printed with six significant digits and have grown too large for this "
            "interval to be measured from them (restart the server to reset them)"
        )
        return
    out.metrics[name] = n / d


def llamacpp_interval(before: dict[str, float], after: dict[str, float], requests: int | None) -> LlamaCppInterval:
    """Server-side figures over the interval between two :func:`parse_llamacpp_metrics` scrapes.

    Args:
        before: Scrape taken before the run.
        after: Scrape taken after it.
        requests: Requests that finished on the server in the interval (the client's count), None when unknown;
            the per-request figures need it.

    Returns:
        The figures the scrapes support and, for the others, why not.
    """
    out = LlamaCppInterval()
    delta = _Delta(before, after)
    restarted = "the counter went backwards or is missing (a restarted server, or not a llama.cpp server)"
    predicted, predicted_s = delta.get(TOKENS_PREDICTED), delta.get(TOKENS_PREDICTED_SECONDS)
    prompt, prompt_s = delta.get(PROMPT_TOKENS), delta.get(PROMPT_SECONDS)
    prompt_cached = delta.get(PROMPT_TOKENS_CACHED)

    if predicted is not None:
        out.metrics[SERVER_GENERATION_TOKENS] = predicted[0]
    else:
        out.unavailable[SERVER_GENERATION_TOKENS] = restarted
    if prompt is not None:
        out.metrics[SERVER_PROMPT_TOKENS_PROCESSED] = prompt[0]
        if prompt_cached is not None:
            out.metrics[SERVER_PROMPT_TOKENS_CACHED] = prompt_cached[0]
            out.metrics[SERVER_PROMPT_TOKENS] = prompt[0] + prompt_cached[0]
        else:
            out.unavailable[SERVER_PROMPT_TOKENS] = (
                "this llama.cpp server does not count prompt tokens reused from its cache"
            )
    else:
        out.unavailable[SERVER_PROMPT_TOKENS_PROCESSED] = restarted

    if predicted is None or predicted_s is None:
        out.unavailable[SERVER_ITL_S] = restarted
    elif requests is None:
        out.unavailable[SERVER_ITL_S] = "the number of requests in the interval is unknown"
    else:
        steps = (predicted[0] - requests, predicted[1])
        _ratio(out, SERVER_ITL_S, predicted_s, steps, "request generated more than one token")

    if prompt is None or prompt_s is None:
        out.unavailable[SERVER_PREFILL_TOKENS_PER_S] = restarted
    else:
        _ratio(out, SERVER_PREFILL_TOKENS_PER_S, prompt, prompt_s, "prompt was processed")
    if prompt_s is None:
        out.unavailable[SERVER_PREFILL_S] = restarted
    elif requests is None:
        out.unavailable[SERVER_PREFILL_S] = "the number of requests in the interval is unknown"
    else:
        _ratio(out, SERVER_PREFILL_S, prompt_s, (float(requests), 0.0), "prompt was processed")

    if REQUESTS_PROCESSING in after:
        out.metrics[SERVER_REQUESTS_RUNNING] = after[REQUESTS_PROCESSING]
    if REQUESTS_DEFERRED in after:
        out.metrics[SERVER_REQUESTS_WAITING] = after[REQUESTS_DEFERRED]
    if KV_CACHE_USAGE_RATIO in after:
        out.metrics[SERVER_KV_CACHE_USAGE_PCT] = after[KV_CACHE_USAGE_RATIO] * 100.0
    return out


def llamacpp_metrics_delta(
    before: dict[str, float], after: dict[str, float], requests: int | None = None
) -> dict[str, float]:
    """The figures of :func:`llamacpp_interval` alone (the shape :func:`vllm_metrics_delta` returns).

    Args:
        before: Scrape taken before the run.
        after: Scrape taken after it.
        requests: Requests that finished in the interval, when known.

    Returns:
        The figures the two scrapes support; unsupported ones are absent.
    """
    return llamacpp_interval(before, after, requests).metrics
