"""Agent Protocol models and the catalogue."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.catalog import (
    WikipediaSummarizationParams,
    find_model,
    measurement_tasks,
    runtime_task_problem,
    task_params,
    validate_model_name,
    validation_errors,
)
from common.metrics import is_known_metric, metric_spec
from common.protocol import (
    PROTOCOL_VERSION,
    AgentInfo,
    CpuInfo,
    GpuInfo,
    JobRequest,
    MemoryInfo,
    MultiRunJobResult,
    hardware_fingerprint,
    memory_class_gib,
)

GIB = 2**30


def _request(**overrides):
    data = {
        "job_id": 7,
        "attempt": 1,
        "attempt_token": "abcdefgh12345678",
        "task": {"name": "wikipedia_summarization", "params": {"num_samples": 2}},
        "model": {"name": "smollm2-135m-instruct"},
        "runtime": {"name": "transformers", "params": {}},
        "runs_per_job": 3,
    }
    data.update(overrides)
    return data


def test_job_request_roundtrip_and_int_job_id():
    req = JobRequest.model_validate(_request())
    assert req.job_id == "7"
    assert req.protocol_version == PROTOCOL_VERSION
    again = JobRequest.model_validate_json(req.model_dump_json())
    assert again == req


@pytest.mark.parametrize("runs", [0, 101])
def test_job_request_runs_per_job_bounds(runs):
    with pytest.raises(ValidationError) as exc:
        JobRequest.model_validate(_request(runs_per_job=runs))
    assert exc.value.errors()[0]["loc"] == ("runs_per_job",)


def test_memory_class_rounds_to_power_of_two():
    assert memory_class_gib(int(15.6 * GIB)) == 16
    assert memory_class_gib(16 * GIB) == 16
    assert memory_class_gib(24 * GIB) == 32
    assert memory_class_gib(0) == 0


def test_hardware_fingerprint_groups_gpus_and_ignores_free_memory():
    a = AgentInfo(
        cpu=CpuInfo(model="Intel Xeon"),
        memory=MemoryInfo(total_bytes=int(250 * GIB), available_bytes=1),
        gpus=[GpuInfo(index=i, name="NVIDIA H100 80GB HBM3", memory_total_bytes=80 * GIB) for i in range(2)],
    )
    b = a.model_copy(update={"memory": MemoryInfo(total_bytes=256 * GIB, available_bytes=99)})
    assert hardware_fingerprint(a) == "cpu=Intel Xeon|gpu=2x NVIDIA H100 80GB HBM3 (80 GiB)|mem=256GiB"
    assert hardware_fingerprint(a) == hardware_fingerprint(b)
    c = a.model_copy(update={"gpus": a.gpus[:1]})
    assert hardware_fingerprint(c) != hardware_fingerprint(a)


def test_result_defaults_and_statistics_source():
    res = MultiRunJobResult(job_id=3)
    assert res.job_id == "3" and res.statistics_source == "warm" and res.runs == []


def test_task_params_defaults_and_errors_name_fields():
    params = task_params("wikipedia_summarization", {})
    assert isinstance(params, WikipediaSummarizationParams) and params.num_samples == 5
    errors = validation_errors(WikipediaSummarizationParams, {"num_samples": 0, "colour": "red"}, "task.params")
    assert set(errors) == {"task.params.num_samples", "task.params.colour"}
    assert errors["task.params.colour"] == "unknown parameter"
    errors = validation_errors(WikipediaSummarizationParams, {"source": "jsonl"}, "p")
    assert "jsonl_path is required" in next(iter(errors.values()))


def test_model_name_validation_depends_on_runtime():
    assert find_model("HuggingFaceTB/SmolLM2-135M-Instruct").name == "smollm2-135m-instruct"
    assert validate_model_name("smollm2-135m-instruct", "transformers") is None
    assert validate_model_name("Qwen/Qwen2.5-0.5B-Instruct", "transformers") is None
    assert "unknown model" in validate_model_name("gpt-4o-mini", "transformers")
    # A black-box endpoint may serve any name.
    assert validate_model_name("gpt-4o-mini", "openai") is None


def test_common_does_not_import_django_or_fastapi():
    import subprocess
    import sys

    code = (
        "import sys, common.protocol, common.stats, common.catalog, common.metrics;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('django','fastapi')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_benchmark_metric_specs_and_units():
    assert metric_spec("bandwidth_gbps.cuda.d2d").unit == "GB/s"
    assert metric_spec("tflops.cuda.bf16").unit == "TFLOP/s"
    assert metric_spec("tflops.cuda.int8").unit == "TOP/s"
    assert metric_spec("gflops.cpu.fp32").unit == "GFLOP/s"
    assert metric_spec("gflops.cpu.fp32").higher_is_better is True
    assert metric_spec("output_tokens_per_s").unit == "tok/s"
    for bad in ("tflops.tpu.bf16", "tflops.cuda", "bandwidth_gbps.cuda.d2d.x", "vibes"):
        assert not is_known_metric(bad), bad


def test_runtime_task_compatibility_is_explained():
    assert measurement_tasks() == ["hardware_benchmark"]
    assert runtime_task_problem("hardware_benchmark", "hardware") is None
    assert runtime_task_problem("wikipedia_summarization", "transformers") is None
    assert "runs with the 'hardware' runtime" in runtime_task_problem("hardware_benchmark", "vllm")
    assert "runs only host measurements" in runtime_task_problem("wikipedia_summarization", "hardware")
