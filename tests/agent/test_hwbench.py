"""Hardware benchmark: real CPU measurements, precision support from the tensor-core table, sizing."""

from __future__ import annotations

import time

import pytest
import torch

from agent_runtime.detection.tensor_cores import tensor_cores_for_cc
from agent_runtime.hwbench import (
    BenchmarkConfig,
    BenchmarkStopped,
    DeviceUnavailable,
    latest_path,
    load_latest,
    resolve_device,
    run_benchmark,
    save_latest,
)
from agent_runtime.hwbench.bandwidth import d2d_sides
from agent_runtime.hwbench.figures import GFLOPS, measured
from agent_runtime.hwbench.matmul import gpu_side
from agent_runtime.hwbench.support import GPU_PRECISIONS, GpuFacts, cpu_bf16_problem, gpu_precision_problem
from agent_runtime.hwbench.timing import time_kernel
from agent_runtime.info import gather_agent_info
from common.catalog import RUNTIMES, TASKS, task_params
from common.descriptive import cv_warning
from common.protocol import AgentInfo

NO_CUDA = "no CUDA GPU on this host: the accelerator figures need one"
GIB = 2**30


@pytest.fixture(scope="module")
def cpu_result():
    """One quick CPU benchmark with real measurements, shared by the tests below."""
    t0 = time.perf_counter()
    result = run_benchmark(BenchmarkConfig(device="cpu", quick=True, repeats=3, telemetry_interval_s=0.1))
    result.environment["test_wall_s"] = time.perf_counter() - t0
    return result


def test_quick_cpu_benchmark_measures_real_figures(cpu_result):
    assert cpu_result.environment["test_wall_s"] < 10
    assert cpu_result.device == "cpu" and cpu_result.quick and cpu_result.repeats == 3
    copy = cpu_result.figure("bandwidth_gbps.cpu.copy")
    assert copy.supported and copy.unit == "GB/s" and copy.params["bytes_counted"] == "read + written"
    assert copy.statistics.n == 3 and len(copy.statistics.values) == 3
    assert 0.1 < copy.statistics.median < 2000
    fp32 = cpu_result.figure("gflops.cpu.fp32")
    assert fp32.supported and fp32.unit == "GFLOP/s" and fp32.statistics.n == 3
    assert 0.1 < fp32.statistics.median < 100_000
    assert fp32.params["m"] >= 256 and fp32.params["timer"] == "perf_counter"
    bf16 = cpu_result.figure("gflops.cpu.bf16")
    if bf16.supported:
        assert bf16.statistics.n == 3 and bf16.statistics.median > 0.1
    else:
        assert bf16.statistics is None and "bf16" in bf16.reason
    # A CPU-only run measures no accelerator.
    assert {f.device for f in cpu_result.figures} == {"cpu"}
    assert cpu_result.started_at <= cpu_result.finished_at


def test_benchmark_records_telemetry(cpu_result):
    series = cpu_result.telemetry
    assert {"t", "rss_bytes", "cpu_percent"} <= set(series)
    assert len({len(v) for v in series.values()}) == 1 and len(series["t"]) >= 2
    assert cpu_result.telemetry_summary["peak_rss_bytes"] > 0
    assert cpu_result.telemetry_summary["cpu_percent"] > 0


def test_flatten_names_figures_and_keeps_reasons(cpu_result):
    metrics, unavailable = cpu_result.flatten()
    copy = cpu_result.figure("bandwidth_gbps.cpu.copy")
    assert metrics["bandwidth_gbps.cpu.copy"] == copy.best == max(copy.statistics.values)
    assert "gflops.cpu.fp32" in metrics
    assert ("gflops.cpu.bf16" in metrics) != ("gflops.cpu.bf16" in unavailable)


def test_figure_is_best_of_n_with_only_slow_repeats_as_outliers():
    """A busy host's fp32 matmul repeats 73, 22, 27 GFLOP/s: the peak is 73, nothing to discard, the mean next to it."""
    fig = measured(GFLOPS, "cpu", "fp32", "GFLOP/s", [73.0, 22.0, 27.0], inner=1)
    assert fig.best == fig.peak == 73.0
    assert fig.statistics.mean == pytest.approx(122.0 / 3) and fig.statistics.outliers == []
    assert fig.statistics.outlier_rule == "modified_z_mad>3.5,low" and fig.statistics.ci95 is None
    slow = measured(GFLOPS, "cpu", "fp32", "GFLOP/s", [70.0, 71.0, 72.0, 70.5, 20.0])
    assert slow.best == 72.0 and slow.statistics.outliers == [4]
    assert cv_warning(fig.statistics.cv) == "unstable: CV 69%"


def test_cpu_bf16_needs_native_instructions():
    reason = cpu_bf16_problem([])
    assert "AVX512-BF16" in reason and "AMX" in reason
    assert cpu_bf16_problem(["avx2", "fma"]) == reason
    if torch.backends.mkldnn.is_available():
        assert cpu_bf16_problem(["avx512_bf16"]) is None
        assert cpu_bf16_problem(["amx_bf16"]) is None


@pytest.mark.parametrize(
    ("cc", "generation"),
    [
        ("7.0", 1),
        ("7.5", 2),
        ("8.0", 3),
        ("8.6", 3),
        ("8.7", 3),
        ("8.9", 4),
        ("9.0", 4),
        ("10.0", 5),
        ("10.3", 5),
        ("12.0", 5),
        ("12.1", 5),
    ],
)
def test_tensor_core_generations(cc, generation):
    assert tensor_cores_for_cc(cc).generation == generation
    assert tensor_cores_for_cc("6.1") is None


def _nvidia(cc: str) -> GpuFacts:
    return GpuFacts(device="cuda", name=f"GPU {cc}", compute_capability=cc, tensor_cores=tensor_cores_for_cc(cc))


def _problems(facts: GpuFacts) -> dict[str, str | None]:
    return {p: gpu_precision_problem(facts, p) for p in GPU_PRECISIONS}


def test_gpu_precisions_follow_the_tensor_core_table():
    volta = _problems(_nvidia("7.0"))
    assert volta["fp32"] is None and volta["fp16"] is None
    assert "TF32" in volta["tf32"] and "bf16" in volta["bf16"] and "int8" in volta["int8"] and "fp8" in volta["fp8"]
    turing = _problems(_nvidia("7.5"))
    assert turing["int8"] is None and turing["bf16"] is not None and turing["fp8"] is not None
    ampere = _problems(_nvidia("8.0"))
    assert all(ampere[p] is None for p in ("fp32", "tf32", "fp16", "bf16", "int8"))
    assert "8.9" in ampere["fp8"]
    for cc in ("8.9", "9.0", "10.0", "12.0"):
        assert all(v is None for v in _problems(_nvidia(cc)).values()), cc
    # A GPU without tensor cores still runs fp32 and fp16 on its CUDA cores.
    pascal = _problems(GpuFacts(device="cuda", name="P100", compute_capability="6.0"))
    assert pascal["fp32"] is None and pascal["fp16"] is None and pascal["bf16"] is not None


def test_mps_and_rocm_precisions_are_explained():
    mps = _problems(GpuFacts(device="mps", name="Apple GPU"))
    assert mps["fp32"] is None and mps["fp16"] is None and mps["bf16"] is None
    assert all(mps[p] for p in ("tf32", "int8", "fp8"))
    rocm = GpuFacts(device="cuda", name="AMD Instinct MI210", architecture="gfx90a", hip=True)
    assert "ROCm" in gpu_precision_problem(rocm, "tf32") and "NVIDIA" in gpu_precision_problem(rocm, "fp8")


def test_sizes_adapt_to_free_memory():
    assert d2d_sides(141 * GIB, quick=False) == [512, 1024, 2048, 4096, 8192, 16384]
    assert d2d_sides(141 * GIB, quick=True)[-1] == 4096
    # 1 GiB free: the two tensors may take a quarter, so 4096^2 fp32 (2 x 64 MiB) is the largest.
    assert d2d_sides(GIB, quick=False)[-1] == 4096
    assert d2d_sides(None, quick=False) == [512]
    assert gpu_side("bf16", 141 * GIB, quick=False) == 16384
    assert gpu_side("fp32", 141 * GIB, quick=False) == 8192
    assert gpu_side("bf16", 141 * GIB, quick=True) == 4096
    assert gpu_side("bf16", 2 * GIB, quick=False) == 8192  # (2 x 2 + 4 B) x 8192^2 = 512 MiB = a quarter
    assert gpu_side("bf16", GIB, quick=False) == 4096


def test_time_kernel_repeats_and_stop():
    calls = []
    timing = time_kernel(lambda: calls.append(1), device="cpu", repeats=4, warmup=2, min_repeat_s=0.001)
    assert len(timing.seconds) == 4 and timing.inner >= 1 and timing.timer == "perf_counter"
    assert len(calls) == 2 + 1 + 4 * timing.inner  # warm-up and calibration are not timed repeats
    with pytest.raises(BenchmarkStopped):
        time_kernel(lambda: None, device="cpu", repeats=3, should_stop=lambda: True)


def test_latest_result_is_stored_locally_not_advertised(tmp_path, cpu_result):
    assert load_latest(tmp_path) is None
    path = save_latest(tmp_path, cpu_result)
    assert path == latest_path(tmp_path) == tmp_path / "hwbench" / "latest.json"
    assert load_latest(tmp_path).figures == cpu_result.figures
    info = gather_agent_info(data_dir=tmp_path)
    assert "benchmarks" not in info.model_dump()  # peaks travel with benchmark job results only
    hardware = next(r for r in info.runtimes if r.name == "hardware")
    assert hardware.available and hardware.access_mode.value == "white_box"
    path.write_text("{not json")
    assert load_latest(tmp_path) is None


def test_agent_info_of_an_older_agent_with_advertised_peaks_still_validates(cpu_result):
    old = {**AgentInfo().model_dump(mode="json"), "benchmarks": cpu_result.model_dump(mode="json")}
    assert "benchmarks" not in AgentInfo.model_validate(old).model_dump()


def test_catalog_entries():
    task = TASKS["hardware_benchmark"]
    assert task.needs_model is False and TASKS["wikipedia_summarization"].needs_model is True
    params = task_params("hardware_benchmark", {"quick": True, "device": "cpu", "repeats": 2})
    assert params.quick and params.device == "cpu" and params.repeats == 2
    with pytest.raises(ValueError):
        task_params("hardware_benchmark", {"device": "tpu"})
    runtime = RUNTIMES["hardware"]
    assert runtime.access_mode.value == "white_box" and not runtime.needs_local_model
    assert runtime.params_model.model_validate({}).device == "auto"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this host has a CUDA GPU")
def test_explicit_cuda_without_gpu_is_refused():
    with pytest.raises(DeviceUnavailable, match="cuda"):
        resolve_device("cuda")
    assert resolve_device("auto") in ("cpu", "mps")


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_quick_benchmark():
    result = run_benchmark(BenchmarkConfig(device="cuda", quick=True, repeats=3))
    for kind in ("d2d", "h2d", "d2h"):
        fig = result.figure(f"bandwidth_gbps.cuda.{kind}")
        assert fig.supported and fig.statistics.n == 3 and fig.params["timer"] == "cuda_events"
        assert 0.1 < fig.statistics.median < 20_000
    assert result.figure("bandwidth_gbps.cuda.h2d").params["pinned"] is True
    facts_cc = result.environment.get("compute_capability")
    cores = tensor_cores_for_cc(facts_cc)
    for precision in GPU_PRECISIONS:
        fig = result.figure(f"tflops.cuda.{precision}")
        assert fig is not None
        if fig.supported:
            assert fig.statistics.n == 3 and 0.001 < fig.statistics.median < 100_000
        else:
            assert fig.reason
    assert result.figure("tflops.cuda.fp32").supported
    if cores is not None and "bf16" in cores.precisions:
        assert result.figure("tflops.cuda.bf16").supported
    assert "gpu_power_w" in result.telemetry_summary or "gpu_power_w" in result.telemetry_unavailable


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_fp8_only_from_ada_on():
    result = run_benchmark(BenchmarkConfig(device="cuda", quick=True, repeats=2))
    major, minor = torch.cuda.get_device_capability()
    fp8 = result.figure("tflops.cuda.fp8")
    if (major, minor) < (8, 9):
        assert not fp8.supported and "8.9" in fp8.reason
