"""Hardware-normalized efficiency: what fraction of an agent's measured peaks a job reached.

An LLM decoding at batch size 1 reads every weight once per output token, so its decode rate times the
weight bytes is the memory bandwidth it sustained; against the agent's measured peak bandwidth (its latest
``hardware_benchmark``) that says how close to the hardware's limit the runtime got, independently of how
fast the hardware is. The same decode rate times two FLOPs per parameter gives the compute it sustained,
against the measured matmul peak of the weights' precision.

The figures are lower bounds of the true traffic (KV-cache reads and activations are not counted), and the
peaks are what a copy kernel and a dense matmul reach on that agent, not datasheet values. A peak is the
figure's best repeat (best-of-N, as STREAM reports it: a busy host only slows repeats down), with the mean and
the coefficient of variation of the repeats next to it so that a reader sees how steady the host was.
"""

from __future__ import annotations

from typing import Any

from common.catalog import TASKS
from common.metrics import Metric
from common.protocol import HardwareBenchmarkResult
from experiments.models import Job

#: Precision name of a benchmark figure for each torch dtype a runtime reports.
DTYPE_PRECISION = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}

#: Benchmark figure holding the peak memory bandwidth of each device (copies count bytes read + written).
PEAK_BANDWIDTH_METRIC = {
    "cuda": "bandwidth_gbps.cuda.d2d",
    "mps": "bandwidth_gbps.mps.d2d",
    "cpu": "bandwidth_gbps.cpu.copy",
}


def peak_compute_metric(device: str, dtype: str | None) -> str | None:
    """Benchmark figure holding the matmul peak for weights of ``dtype`` on ``device``, or None if unknown."""
    precision = DTYPE_PRECISION.get(dtype or "")
    if precision is None:
        return None
    return f"gflops.cpu.{precision}" if device == "cpu" else f"tflops.{device}.{precision}"


def _peak(bench: HardwareBenchmarkResult, metric: str) -> tuple[float, float | None, float | None] | None:
    """``(best, mean, cv)`` of a supported benchmark figure, or None.

    The best repeat is the peak (older stored results without ``best``: the highest repeat).
    """
    fig = bench.figure(metric)
    if fig is None or not fig.supported or (peak := fig.peak) is None:
        return None
    st = fig.statistics
    return peak, st.mean if st else None, st.cv if st else None


def job_efficiency(
    job: Job, means: dict[str, float], bench: HardwareBenchmarkResult | None
) -> dict[str, Any] | None:
    """Fractions of the agent's measured peaks that a finished job reached, with a reason for each gap.

    Args:
        job: The job (its ``result`` carries the runtime's execution facts).
        means: The job's mean per metric (``tpot_s`` and ``output_tokens_per_s`` are used).
        bench: The agent's latest hardware benchmark, if any.

    Returns:
        None for jobs whose task needs no model (a benchmark has nothing to normalize) or without a
        result; otherwise ``device``, ``dtype``, ``weight_bytes``, ``decode_tokens_per_s``,
        ``decode_bandwidth_gbps``, ``peak_bandwidth_gbps`` (best repeat), ``peak_bandwidth_mean_gbps``,
        ``peak_bandwidth_cv``, ``bandwidth_fraction`` (of the best), ``decode_tflops``, ``peak_tflops``,
        ``peak_tflops_mean``, ``peak_tflops_cv``, ``compute_fraction`` (each None when unknown), the peak
        metrics used,
        ``peaks_measured_at``, and ``unavailable``: figure -> reason.
    """
    task = TASKS.get(job.experiment.task_name)
    result = getattr(job, "result", None)
    if (task is not None and not task.needs_model) or result is None:
        return None
    out: dict[str, Any] = {
        key: None
        for key in (
            "device", "dtype", "parameters", "weight_bytes", "decode_tokens_per_s", "decode_bandwidth_gbps",
            "peak_bandwidth_metric", "peak_bandwidth_gbps", "peak_bandwidth_mean_gbps", "peak_bandwidth_cv",
            "bandwidth_fraction", "decode_tflops", "peak_tflops_metric", "peak_tflops", "peak_tflops_mean",
            "peak_tflops_cv", "compute_fraction", "peaks_measured_at",
        )
    }
    unavailable: dict[str, str] = {}
    out["unavailable"] = unavailable
    execution = result.execution_info
    if execution is None:
        reason = (
            f"runtime {job.runtime_name!r} reaches the model through an endpoint: its device and weight size "
            "are unknown"
            if result.access_mode in ("gray_box", "black_box")
            else "the agent did not report the model's device and weight size"
        )
        unavailable["bandwidth_fraction"] = unavailable["compute_fraction"] = reason
        return out
    out.update(
        device=execution.device, dtype=execution.dtype, parameters=execution.parameters,
        weight_bytes=execution.weight_bytes,
    )
    # Decode rate: 1 / time per output token excludes the prefill; whole-run tokens/s is the fallback.
    tpot = means.get(Metric.TPOT_S)
    rate = 1.0 / tpot if tpot and tpot > 0 else means.get(Metric.OUTPUT_TOKENS_PER_S)
    if not rate:
        unavailable["bandwidth_fraction"] = unavailable["compute_fraction"] = "the job has no decode rate"
        return out
    out["decode_tokens_per_s"] = rate
    if execution.weight_bytes:
        out["decode_bandwidth_gbps"] = rate * execution.weight_bytes / 1e9
    if execution.parameters:
        out["decode_tflops"] = rate * 2.0 * execution.parameters / 1e12
    agent_name = job.agent.name if job.agent else "the agent"
    if bench is None:
        reason = f"{agent_name} has no measured peaks yet: run a hardware_benchmark job on it"
        unavailable["bandwidth_fraction"] = unavailable["compute_fraction"] = reason
        return out
    out["peaks_measured_at"] = bench.finished_at.isoformat() if bench.finished_at else None
    bw_metric = PEAK_BANDWIDTH_METRIC.get(execution.device)
    out["peak_bandwidth_metric"] = bw_metric
    found_bw = _peak(bench, bw_metric) if bw_metric else None
    if found_bw is None:
        unavailable["bandwidth_fraction"] = (
            f"{agent_name}'s latest benchmark has no {bw_metric or execution.device + ' bandwidth'} figure"
        )
    else:
        peak_bw, out["peak_bandwidth_mean_gbps"], out["peak_bandwidth_cv"] = found_bw
        out["peak_bandwidth_gbps"] = peak_bw
        if out["decode_bandwidth_gbps"] is not None and peak_bw > 0:
            out["bandwidth_fraction"] = out["decode_bandwidth_gbps"] / peak_bw
    flops_metric = peak_compute_metric(execution.device, execution.dtype)
    out["peak_tflops_metric"] = flops_metric
    found = _peak(bench, flops_metric) if flops_metric else None
    if found is None:
        unavailable["compute_fraction"] = (
            f"{agent_name}'s latest benchmark has no {flops_metric} figure"
            if flops_metric
            else f"no matmul benchmark for dtype {execution.dtype!r}"
        )
    else:
        peak, peak_mean, out["peak_tflops_cv"] = found
        # CPU figures are GFLOP/s.
        scale = 1000.0 if flops_metric and flops_metric.startswith("gflops") else 1.0
        out["peak_tflops"] = peak / scale
        out["peak_tflops_mean"] = peak_mean / scale if peak_mean is not None else None
        if out["decode_tflops"] is not None and out["peak_tflops"] > 0:
            out["compute_fraction"] = out["decode_tflops"] / out["peak_tflops"]
    return out
