"""Metric names and their definitions (DESIGN section 6).

Every producer (agent runtimes, the server's post-processing) and every consumer (statistics,
comparison, UI) uses these constants so that a metric is spelled one way everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Metric(StrEnum):
    """Canonical metric names."""

    E2E_LATENCY_S = "e2e_latency_s"
    TTFT_S = "ttft_s"
    TPOT_S = "tpot_s"
    INTER_TOKEN_GAPS_S = "inter_token_gaps_s"  # noqa: S105  # nosec B105  # a metric name, not a secret
    OUTPUT_TOKENS_PER_S = "output_tokens_per_s"
    OUTPUT_TOKENS = "output_tokens"
    PROMPT_TOKENS = "prompt_tokens"
    RUN_WALL_S = "run_wall_s"
    MODEL_LOAD_S = "model_load_s"
    PEAK_RSS_BYTES = "peak_rss_bytes"
    PEAK_GPU_MEMORY_BYTES = "peak_gpu_memory_bytes"
    GPU_UTILIZATION_PCT = "gpu_utilization_pct"
    GPU_POWER_W = "gpu_power_w"
    ENERGY_J = "energy_j"
    CPU_PERCENT = "cpu_percent"
    GPU_TEMPERATURE_C = "gpu_temperature_c"
    GPU_SM_CLOCK_MHZ = "gpu_sm_clock_mhz"
    # The inference server's own figures over a run (gray box: its Prometheus metrics, scraped before and after).
    SERVER_TTFT_S = "server_ttft_s"
    SERVER_TPOT_S = "server_tpot_s"
    SERVER_ITL_S = "server_inter_token_latency_s"
    SERVER_E2E_LATENCY_S = "server_e2e_latency_s"
    SERVER_GENERATION_TOKENS = "server_generation_tokens"
    SERVER_PROMPT_TOKENS = "server_prompt_tokens"
    SERVER_REQUESTS = "server_requests"
    SERVER_KV_CACHE_USAGE_PCT = "server_kv_cache_usage_pct"
    SERVER_REQUESTS_RUNNING = "server_requests_running"
    # llama.cpp's own figures (its counters define no vLLM figure of the same name: docs/engines.md).
    SERVER_PREFILL_S = "server_prefill_s"
    SERVER_PREFILL_TOKENS_PER_S = "server_prefill_tokens_per_s"
    SERVER_PROMPT_TOKENS_PROCESSED = "server_prompt_tokens_processed"
    SERVER_PROMPT_TOKENS_CACHED = "server_prompt_tokens_cached"
    SERVER_REQUESTS_WAITING = "server_requests_waiting"
    ROUGE1 = "rouge1"
    ROUGE2 = "rouge2"
    ROUGEL = "rougeL"
    ROUGELSUM = "rougeLsum"


@dataclass(frozen=True)
class MetricSpec:
    """Describes one metric for display and comparison.

    Attributes:
        name: Canonical metric name.
        unit: Unit symbol shown next to values.
        description: One-line definition.
        higher_is_better: Direction used when ranking configurations.
        server_side: True when the server computes it (post-processing), not the agent.
    """

    name: str
    unit: str
    description: str
    higher_is_better: bool
    server_side: bool = False


METRIC_SPECS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(Metric.E2E_LATENCY_S, "s", "Request sent to last token (mean over a run's requests)", False),
        MetricSpec(Metric.TTFT_S, "s", "Request sent to first non-empty token (mean over requests)", False),
        MetricSpec(Metric.TPOT_S, "s", "(e2e - ttft) / (output_tokens - 1), requests with > 1 token", False),
        MetricSpec(Metric.INTER_TOKEN_GAPS_S, "s", "Mean gap between consecutive streamed chunks (ITL)", False),
        MetricSpec(Metric.OUTPUT_TOKENS_PER_S, "tok/s", "Sum of output tokens / wall time of the run", True),
        MetricSpec(Metric.OUTPUT_TOKENS, "tok", "Sum of output tokens in the run", True),
        MetricSpec(Metric.PROMPT_TOKENS, "tok", "Sum of prompt tokens in the run", False),
        MetricSpec(Metric.RUN_WALL_S, "s", "Wall time of the whole run", False),
        MetricSpec(Metric.MODEL_LOAD_S, "s", "Model load time (cold run only)", False),
        MetricSpec(Metric.PEAK_RSS_BYTES, "B", "Peak resident set size of the agent process", False),
        MetricSpec(Metric.PEAK_GPU_MEMORY_BYTES, "B", "Peak GPU memory allocated", False),
        MetricSpec(Metric.GPU_UTILIZATION_PCT, "%", "Mean GPU utilization while the run was active", True),
        MetricSpec(Metric.GPU_POWER_W, "W", "Mean GPU board power while the run was active", False),
        MetricSpec(Metric.ENERGY_J, "J", "GPU energy used by the run (NVML energy counter)", False),
        MetricSpec(Metric.CPU_PERCENT, "%", "Mean CPU use of the agent process (100 = one core busy)", False),
        MetricSpec(Metric.GPU_TEMPERATURE_C, "°C", "Highest GPU temperature while the run was active", False),
        MetricSpec(Metric.GPU_SM_CLOCK_MHZ, "MHz", "Mean GPU SM clock while the run was active", True),
        MetricSpec(Metric.SERVER_TTFT_S, "s", "TTFT by the inference server's own histogram (mean over the run)",
                   False),
        MetricSpec(Metric.SERVER_TPOT_S, "s", "TPOT by the inference server's own histogram (mean over the run)",
                   False),
        MetricSpec(Metric.SERVER_ITL_S, "s", "Inter-token latency by the inference server's own histogram (mean)",
                   False),
        MetricSpec(Metric.SERVER_E2E_LATENCY_S, "s", "Request latency by the inference server's own histogram (mean)",
                   False),
        MetricSpec(Metric.SERVER_GENERATION_TOKENS, "tok", "Tokens the inference server generated in the run", True),
        MetricSpec(Metric.SERVER_PROMPT_TOKENS, "tok", "Prompt tokens the inference server processed in the run",
                   False),
        MetricSpec(Metric.SERVER_REQUESTS, "", "Requests the inference server finished in the run", True),
        MetricSpec(Metric.SERVER_KV_CACHE_USAGE_PCT, "%", "The inference server's KV-cache use at the run's end",
                   False),
        MetricSpec(Metric.SERVER_REQUESTS_RUNNING, "", "Requests running on the inference server at the run's end",
                   False),
        MetricSpec(Metric.SERVER_PREFILL_S, "s", "Prompt-processing time per request by the server (no HTTP, queue)",
                   False),
        MetricSpec(Metric.SERVER_PREFILL_TOKENS_PER_S, "tok/s", "Prompt tokens the server processed per second", True),
        MetricSpec(Metric.SERVER_PROMPT_TOKENS_PROCESSED, "tok", "Prompt tokens the server processed (no cache hits)",
                   False),
        MetricSpec(Metric.SERVER_PROMPT_TOKENS_CACHED, "tok", "Prompt tokens the server reused from its prompt cache",
                   True),
        MetricSpec(Metric.SERVER_REQUESTS_WAITING, "", "Requests waiting on the inference server at the run's end",
                   False),
        MetricSpec(Metric.ROUGE1, "", "ROUGE-1 F-measure (server-side)", True, server_side=True),
        MetricSpec(Metric.ROUGE2, "", "ROUGE-2 F-measure (server-side)", True, server_side=True),
        MetricSpec(Metric.ROUGEL, "", "ROUGE-L F-measure (server-side)", True, server_side=True),
        MetricSpec(Metric.ROUGELSUM, "", "ROUGE-Lsum F-measure (server-side)", True, server_side=True),
    )
}

#: The inference server's own figures (gray-box runtimes), and the client figure each one sits next to.
SERVER_FIGURES: dict[str, str] = {
    Metric.SERVER_TTFT_S: Metric.TTFT_S,
    Metric.SERVER_TPOT_S: Metric.TPOT_S,
    Metric.SERVER_ITL_S: Metric.INTER_TOKEN_GAPS_S,
    Metric.SERVER_E2E_LATENCY_S: Metric.E2E_LATENCY_S,
    Metric.SERVER_GENERATION_TOKENS: Metric.OUTPUT_TOKENS,
    Metric.SERVER_PROMPT_TOKENS: Metric.PROMPT_TOKENS,
    Metric.SERVER_REQUESTS: "",
    Metric.SERVER_KV_CACHE_USAGE_PCT: "",
    Metric.SERVER_REQUESTS_RUNNING: "",
}

ROUGE_METRICS: tuple[str, ...] = (Metric.ROUGE1, Metric.ROUGE2, Metric.ROUGEL, Metric.ROUGELSUM)

#: Latency metrics that also get statistics over every warm request (``scope = "request"``), next to those over
#: run means: what ``vllm bench serve``, GuideLLM and AIPerf report as p95. ITL pools every gap of every request.
PER_REQUEST_METRICS: tuple[str, ...] = (Metric.TTFT_S, Metric.TPOT_S, Metric.INTER_TOKEN_GAPS_S, Metric.E2E_LATENCY_S)


#: Hardware benchmark figures, flattened: ``bandwidth_gbps.<device>.<kind>``, ``tflops.<device>.<precision>``,
#: ``gflops.cpu.<precision>`` (see ``common.protocol.BenchmarkFigure``).
BENCHMARK_METRIC_RE = re.compile(
    r"^(?P<kind>bandwidth_gbps|tflops|gflops)\.(?P<device>cpu|cuda|mps)\.(?P<what>[a-z0-9]+)$"
)

_BENCHMARK_DESCRIPTIONS = {
    "bandwidth_gbps": "Measured memory bandwidth on {device} ({what})",
    "tflops": "Measured {what} matrix-multiply throughput on {device}",
    "gflops": "Measured {what} matrix-multiply throughput on {device}",
}


def benchmark_unit(kind: str, what: str) -> str:
    """Unit of a benchmark figure.

    Args:
        kind: ``bandwidth_gbps``, ``tflops`` or ``gflops``.
        what: Precision or transfer kind (integer precisions count operations, not FLOPs).

    Returns:
        The unit symbol.
    """
    if kind == "bandwidth_gbps":
        return "GB/s"
    scale = "T" if kind == "tflops" else "G"
    return f"{scale}OP/s" if what.startswith("int") else f"{scale}FLOP/s"


def metric_spec(name: str) -> MetricSpec | None:
    """Describe a metric: a canonical one, or a flattened hardware benchmark figure.

    Args:
        name: Metric name (``output_tokens_per_s``, ``tflops.cuda.bf16`` ...).

    Returns:
        Its spec, or None for a name RUCKUS does not define.
    """
    spec = METRIC_SPECS.get(name)
    if spec is not None:
        return spec
    match = BENCHMARK_METRIC_RE.match(name)
    if match is None:
        return None
    kind, device, what = match["kind"], match["device"], match["what"]
    return MetricSpec(
        name=name,
        unit=benchmark_unit(kind, what),
        description=_BENCHMARK_DESCRIPTIONS[kind].format(device=device, what=what),
        higher_is_better=True,
    )


def is_known_metric(name: str) -> bool:
    """Tell whether ``name`` is a metric RUCKUS defines (canonical or a hardware benchmark figure).

    Args:
        name: Metric name to check.

    Returns:
        True when :func:`metric_spec` describes it.
    """
    return metric_spec(name) is not None
