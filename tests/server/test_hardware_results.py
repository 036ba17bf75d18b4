"""Hardware benchmarks on the server: model-less experiments, benchmark metrics, measured peaks, efficiency."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.models import Agent
from common.catalog import task_params
from common.protocol import (
    BenchmarkFigure,
    ExecutionInfo,
    HardwareBenchmarkResult,
    MultiRunJobResult,
    SingleRunResult,
)
from common.stats import describe
from experiments.services import experiment_create
from results.models import JobMetricStatistics
from tests.factories import AgentFactory, agent_info, job_result, store_benchmark, store_scored

pytestmark = pytest.mark.django_db


def benchmark(
    bandwidth: float = 20.0, gflops_fp32: float = 300.0, fp32_repeats: list[float] | None = None
) -> HardwareBenchmarkResult:
    """A CPU benchmark with a copy bandwidth, an fp32 GFLOP/s figure and an unsupported fp16 one.

    ``bandwidth`` and ``gflops_fp32`` are the peaks (best repeats); ``fp32_repeats`` replaces the fp32 repeats.
    """
    fp32 = fp32_repeats or [gflops_fp32] * 3
    return HardwareBenchmarkResult(
        device="cpu",
        repeats=3,
        finished_at=datetime(2026, 11, 1, tzinfo=UTC),
        figures=[
            BenchmarkFigure(
                name="bandwidth_gbps", device="cpu", precision="copy", unit="GB/s",
                statistics=describe([bandwidth * 0.96, bandwidth, bandwidth * 0.98], unit="GB/s", peak=True),
                best=bandwidth,
            ),
            BenchmarkFigure(
                name="gflops", device="cpu", precision="fp32", unit="GFLOP/s",
                statistics=describe(fp32, unit="GFLOP/s", peak=True), best=max(fp32),
            ),
            BenchmarkFigure(
                name="gflops", device="cpu", precision="fp16", unit="GFLOP/s", supported=False,
                reason="no fp16 matmul kernel on this CPU",
            ),
        ],
    )


def benchmarked_agent(name: str = "bench-host", **kwargs):
    """An agent with the hardware runtime whose hardware benchmark job has completed."""
    agent = AgentFactory(name=name, info=agent_info(runtimes=("transformers", "openai", "hardware")))
    return store_benchmark(agent, benchmark(**kwargs))


def hardware_payload(**overrides):
    data = {
        "name": "fleet peaks",
        "task": {"name": "hardware_benchmark", "params": {"quick": True}},
        "runtimes": [{"name": "hardware"}],
        "agents": {"all": True},
        "runs_per_job": 2,
    }
    data.update(overrides)
    return data


def test_hardware_benchmark_experiment_needs_no_model(api):
    AgentFactory(name="a", info=agent_info(runtimes=("transformers", "hardware")))
    AgentFactory(name="b", info=agent_info(runtimes=("transformers",)))
    response = api.post("/api/v1/experiments/", hardware_payload(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [m["name"] for m in body["models"]] == ["none"]
    jobs = api.get(f"/api/v1/jobs/?experiment={body['id']}").json()["results"]
    assert [(j["model"]["name"], j["runtime"]["name"]) for j in jobs] == [("none", "hardware")]
    # The agent without the hardware runtime is reported, not silently dropped.
    assert body["plan"]["unrunnable"] == []
    excluded = body["plan"]["excluded"]
    assert [(e["agent_name"], e["model"], e["runtime"]) for e in excluded] == [("b", "none", "hardware")]
    assert "runtime 'hardware'" in excluded[0]["reason"]
    own_plan = api.get(f"/api/v1/experiments/{body['id']}/plan/").json()
    assert own_plan["excluded"] == excluded


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (hardware_payload(models=[{"name": "smollm2-135m-instruct"}]), "models", "takes no model"),
        (hardware_payload(runtimes=[{"name": "transformers"}]), "runtimes", "runs with the 'hardware' runtime"),
        (
            {
                "name": "x", "task": {"name": "wikipedia_summarization"}, "models": [{"name": "smollm2-135m-instruct"}],
                "runtimes": [{"name": "hardware"}], "agents": {"all": True},
            },
            "runtimes",
            "runs only host measurements",
        ),
        (
            {"name": "x", "task": {"name": "wikipedia_summarization"}, "runtimes": [{"name": "transformers"}],
             "agents": {"all": True}},
            "models",
            "give at least one model",
        ),
    ],
)
def test_task_runtime_and_model_mismatches_name_the_field(api, payload, field, words):
    AgentFactory()
    response = api.post("/api/v1/experiments/", payload, format="json")
    assert response.status_code == 400
    assert words in str(response.json()[field])
    # The dry-run plan validates the same way.
    assert api.post("/api/v1/experiments/plan/", payload, format="json").status_code == 400


def _benchmark_result(job_id: int, copies: list[float]) -> MultiRunJobResult:
    runs = [
        SingleRunResult(
            run_index=i + 1, cold_start=i == 0,
            metrics={"bandwidth_gbps.cpu.copy": v, "gflops.cpu.fp32": 250.0 + i, "run_wall_s": 3.0},
            unavailable_metrics={"gflops.cpu.fp16": "no fp16 matmul kernel on this CPU"},
        )
        for i, v in enumerate(copies)
    ]
    return MultiRunJobResult(
        job_id=str(job_id), attempt_token="t" * 16, task="hardware_benchmark", model="none", runtime="hardware",
        runs_per_job=len(runs), runs=runs, unavailable_metrics=runs[0].unavailable_metrics,
    )


def test_benchmark_figures_get_units_and_can_be_compared(api):
    AgentFactory(name="pi", info=agent_info(runtimes=("hardware",), cpu="Cortex-A76"))
    AgentFactory(name="epyc", info=agent_info(runtimes=("hardware",)))
    exp = experiment_create(
        name="peaks",
        task_name="hardware_benchmark", task_params=task_params("hardware_benchmark", {}),
        models=[{"name": "none"}],
        runtimes=[{"name": "hardware", "params": {}}], agents={"all": True}, runs_per_job=3,
    )
    jobs = list(exp.jobs.order_by("agent__name"))
    assert len(jobs) == 2
    store_scored(job=jobs[0], result=_benchmark_result(jobs[0].pk, [40.0, 30.0, 32.0]))
    store_scored(job=jobs[1], result=_benchmark_result(jobs[1].pk, [9.0, 4.0, 4.4]))
    stat = JobMetricStatistics.objects.get(job=jobs[0], metric="bandwidth_gbps.cpu.copy")
    assert stat.unit == "GB/s" and stat.n == 2 and stat.mean == pytest.approx(31.0)
    assert JobMetricStatistics.objects.get(job=jobs[0], metric="gflops.cpu.fp32").unit == "GFLOP/s"

    m = api.get(f"/api/v1/experiments/{exp.pk}/comparison/?metric=bandwidth_gbps.cpu.copy").json()
    assert m["unit"] == "GB/s" and m["higher_is_better"] is True
    cells = m["rows"][0]["cells"]
    by_agent = {c["agent_name"]: cells[c["key"]] for c in m["columns"]}
    assert by_agent["epyc"]["mean"] == pytest.approx(31.0)
    assert by_agent["pi"]["mean"] == pytest.approx(4.2)
    assert "bandwidth_fraction" not in by_agent["epyc"]  # a benchmark is not normalized by itself

    results = api.get(f"/api/v1/experiments/{exp.pk}/results/").json()
    names = {d["name"]: d for d in results["metrics"]}
    assert names["gflops.cpu.fp32"]["unit"] == "GFLOP/s"
    assert names["bandwidth_gbps.cpu.copy"]["description"].startswith("Measured memory bandwidth on cpu")
    assert all(j["efficiency"] is None for j in results["jobs"])

    bad = api.get(f"/api/v1/experiments/{exp.pk}/comparison/?metric=tflops.tpu.bf16")
    assert bad.status_code == 400 and "tflops.cuda.bf16" in bad.json()["metric"]


def test_agent_summary_shows_measured_peaks(api):
    agent = benchmarked_agent()
    plain = AgentFactory(name="never-benchmarked")
    summary = api.get(f"/api/v1/agents/{agent.pk}/").json()["summary"]
    peaks = summary["peaks"]
    assert peaks["figures"]["bandwidth_gbps.cpu.copy"] == {
        "value": pytest.approx(20.0), "unit": "GB/s", "mean": pytest.approx(19.6),
        "cv": pytest.approx(0.0204, abs=1e-3), "n": 3,
    }
    assert peaks["unsupported"]["gflops.cpu.fp16"] == "no fp16 matmul kernel on this CPU"
    assert peaks["measured_at"].startswith("2026-11-01")
    assert api.get(f"/api/v1/agents/{plain.pk}/").json()["summary"]["peaks"] is None


def test_peaks_are_the_latest_stored_benchmark_not_the_advertised_one(api):
    """One owner: the stored benchmark results. What an agent advertises in its capabilities is ignored."""
    info = agent_info(runtimes=("hardware",))
    agent = AgentFactory(name="host", info=info)
    Agent.objects.filter(pk=agent.pk).update(capabilities={**agent.capabilities, "benchmarks": benchmark(
        bandwidth=99.0).model_dump(mode="json")})
    assert api.get(f"/api/v1/agents/{agent.pk}/").json()["summary"]["peaks"] is None
    store_benchmark(agent, benchmark(bandwidth=30.0))
    older = benchmark(bandwidth=10.0)
    older.finished_at = datetime(2026, 10, 1, tzinfo=UTC)
    store_benchmark(agent, older)  # arrives later but was measured earlier: the newer figures stay
    figures = api.get(f"/api/v1/agents/{agent.pk}/").json()["summary"]["peaks"]["figures"]
    assert figures["bandwidth_gbps.cpu.copy"]["value"] == pytest.approx(30.0)


def _llm_experiment():
    return experiment_create(
        name="llm",
        task_name="wikipedia_summarization", task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"all": True}, runs_per_job=3,
    )


def test_efficiency_is_the_fraction_of_measured_peaks(api):
    benchmarked_agent(name="measured", bandwidth=20.0, gflops_fp32=300.0)
    AgentFactory(name="unmeasured")
    exp = _llm_experiment()
    weight_bytes = 538_060_032  # 134.5 M fp32 parameters
    for job in exp.jobs.all():
        result = job_result(job.pk, tokens_per_s=[5.0, 20.0, 22.0])
        for run in result.runs:
            run.metrics["tpot_s"] = 0.04  # 25 decode tokens/s
        result.execution = ExecutionInfo(
            device="cpu", dtype="float32", parameters=134_515_008, weight_bytes=weight_bytes
        )
        store_scored(job=job, result=result)

    results = api.get(f"/api/v1/experiments/{exp.pk}/results/").json()
    eff = {j["agent_name"]: j["efficiency"] for j in results["jobs"]}
    measured = eff["measured"]
    assert measured["decode_tokens_per_s"] == pytest.approx(25.0)
    assert measured["decode_bandwidth_gbps"] == pytest.approx(25.0 * weight_bytes / 1e9)
    assert measured["peak_bandwidth_metric"] == "bandwidth_gbps.cpu.copy"
    assert measured["peak_bandwidth_gbps"] == pytest.approx(20.0)
    assert measured["bandwidth_fraction"] == pytest.approx(25.0 * weight_bytes / 1e9 / 20.0)
    assert measured["decode_tflops"] == pytest.approx(25.0 * 2 * 134_515_008 / 1e12)
    assert measured["peak_tflops"] == pytest.approx(0.3)
    assert measured["compute_fraction"] == pytest.approx(measured["decode_tflops"] / 0.3)
    assert measured["unavailable"] == {}
    unmeasured = eff["unmeasured"]
    assert unmeasured["decode_bandwidth_gbps"] == pytest.approx(measured["decode_bandwidth_gbps"])
    assert unmeasured["bandwidth_fraction"] is None
    assert "run a hardware_benchmark job" in unmeasured["unavailable"]["bandwidth_fraction"]

    m = api.get(f"/api/v1/experiments/{exp.pk}/comparison/").json()
    cells = {c["agent_name"]: m["rows"][0]["cells"][c["key"]] for c in m["columns"]}
    assert cells["measured"]["bandwidth_fraction"] == pytest.approx(measured["bandwidth_fraction"])
    assert "bandwidth_fraction" not in cells["unmeasured"]

    job = next(j for j in results["jobs"] if j["agent_name"] == "measured")
    detail = api.get(f"/api/v1/jobs/{job['job']}/results/").json()
    assert detail["execution"]["weight_bytes"] == weight_bytes
    assert detail["efficiency"]["bandwidth_fraction"] == pytest.approx(measured["bandwidth_fraction"])


def test_efficiency_explains_what_is_missing(api):
    benchmarked_agent(name="measured")
    exp = _llm_experiment()
    job = exp.jobs.get()
    # No execution facts (e.g. an endpoint runtime), then bf16 weights the benchmark has no figure for.
    store_scored(job=job, result=job_result(job.pk))
    eff = api.get(f"/api/v1/experiments/{exp.pk}/results/").json()["jobs"][0]["efficiency"]
    assert eff["bandwidth_fraction"] is None and "did not report" in eff["unavailable"]["bandwidth_fraction"]

    job.result.execution = {"device": "cpu", "dtype": "bfloat16", "parameters": 100, "weight_bytes": 200}
    job.result.save()
    eff = api.get(f"/api/v1/experiments/{exp.pk}/results/").json()["jobs"][0]["efficiency"]
    assert eff["bandwidth_fraction"] is not None
    assert eff["compute_fraction"] is None
    assert "gflops.cpu.bf16" in eff["unavailable"]["compute_fraction"]


def test_catalog_lists_tasks_runtimes_models_and_metrics(api, anon):
    assert anon.get("/api/v1/catalog/").status_code in (401, 403)
    body = api.get("/api/v1/catalog/").json()
    tasks = {t["name"]: t for t in body["tasks"]}
    assert tasks["hardware_benchmark"]["needs_model"] is False
    assert tasks["wikipedia_summarization"]["needs_model"] is True
    assert "num_samples" in tasks["wikipedia_summarization"]["params_schema"]["properties"]
    runtimes = {r["name"]: r for r in body["runtimes"]}
    assert runtimes["hardware"]["tasks"] == ["hardware_benchmark"]
    assert "hardware_benchmark" not in runtimes["transformers"]["tasks"]
    assert "device" in runtimes["transformers"]["params_schema"]["properties"]
    assert body["models"][0]["name"] == "smollm2-135m-instruct"
    assert {"name": "output_tokens_per_s", "unit": "tok/s"}.items() <= next(
        m for m in body["metrics"] if m["name"] == "output_tokens_per_s"
    ).items()
    assert body["no_model_name"] == "none"


def test_job_results_carry_run_telemetry(api):
    AgentFactory()
    exp = experiment_create(
        name="telemetry",
        task_name="wikipedia_summarization", task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"all": True}, runs_per_job=2,
    )
    job = exp.jobs.get()
    result = job_result(job.pk, runs=2)
    result.runs[1].telemetry = {"t": [0.0, 0.5, 1.0], "cpu_percent": [90.0, 180.0, 175.0]}
    store_scored(job=job, result=result)
    runs = api.get(f"/api/v1/jobs/{job.pk}/results/").json()["runs"]
    assert runs[0]["telemetry"] == {}
    assert runs[1]["telemetry"]["cpu_percent"] == [90.0, 180.0, 175.0]


def test_a_benchmark_attached_to_another_jobs_runs_does_not_become_the_peaks(api):
    """An agent cannot set its peaks through an LLM job: only a hardware benchmark job's runs count."""
    agent = benchmarked_agent(bandwidth=20.0)
    job = _llm_experiment().jobs.get()
    forged = job_result(job.pk)
    for run in forged.runs:
        run.benchmark = benchmark(bandwidth=9999.0)
    store_scored(job=job, result=forged)
    job.result.refresh_from_db()
    assert job.result.benchmark is None
    figures = api.get(f"/api/v1/agents/{agent.pk}/").json()["summary"]["peaks"]["figures"]
    assert figures["bandwidth_gbps.cpu.copy"]["value"] == pytest.approx(20.0)


def test_busy_host_peak_is_the_best_repeat_and_efficiency_uses_it(api):
    """fp32 matmul repeats of 73, 22 and 27 GFLOP/s on a busy host: the peak is 73, the mean sits next to it."""
    benchmarked_agent(name="busy", bandwidth=20.0, fp32_repeats=[73.0, 22.0, 27.0])
    exp = _llm_experiment()
    job = exp.jobs.get()
    result = job_result(job.pk, tokens_per_s=[5.0, 20.0, 22.0])
    for run in result.runs:
        run.metrics["tpot_s"] = 0.04  # 25 decode tokens/s
    result.execution = ExecutionInfo(device="cpu", dtype="float32", parameters=134_515_008, weight_bytes=538_060_032)
    store_scored(job=job, result=result)

    eff = api.get(f"/api/v1/experiments/{exp.pk}/results/").json()["jobs"][0]["efficiency"]
    assert eff["peak_tflops"] == pytest.approx(0.073)
    assert eff["peak_tflops_mean"] == pytest.approx(0.122 / 3)
    assert eff["peak_tflops_cv"] > 0.5
    assert eff["compute_fraction"] == pytest.approx(eff["decode_tflops"] / 0.073)
    assert eff["peak_bandwidth_gbps"] == pytest.approx(20.0) and eff["peak_bandwidth_mean_gbps"] == pytest.approx(19.6)

    fig = api.get(f"/api/v1/agents/{job.agent_id}/").json()["summary"]["peaks"]["figures"]["gflops.cpu.fp32"]
    assert fig["value"] == pytest.approx(73.0) and fig["mean"] == pytest.approx(122.0 / 3) and fig["n"] == 3


def test_a_benchmark_stored_before_best_existed_reads_its_highest_repeat(api):
    """Stored results without ``best``: the peak falls back to the highest repeat, everywhere."""
    old = benchmark().model_dump(mode="json")
    for fig in old["figures"]:
        fig.pop("best", None)
    agent = store_benchmark(AgentFactory(name="old"), HardwareBenchmarkResult.model_validate(old))
    figures = api.get(f"/api/v1/agents/{agent.pk}/").json()["summary"]["peaks"]["figures"]
    assert figures["bandwidth_gbps.cpu.copy"]["value"] == pytest.approx(20.0)
    assert figures["gflops.cpu.fp32"]["value"] == pytest.approx(300.0)


def test_job_statistics_record_a_non_negative_interval_and_its_method(api):
    AgentFactory(name="epyc", info=agent_info(runtimes=("hardware",)))
    exp = experiment_create(
        name="peaks", task_name="hardware_benchmark", task_params=task_params("hardware_benchmark", {}),
        models=[{"name": "none"}], runtimes=[{"name": "hardware", "params": {}}], agents={"all": True}, runs_per_job=4,
    )
    job = exp.jobs.get()
    store_scored(job=job, result=_benchmark_result(job.pk, [80.0, 73.0, 22.0, 27.0]))
    stat = JobMetricStatistics.objects.get(job=job, metric="bandwidth_gbps.cpu.copy")
    assert stat.ci_method == "lognormal_cox" and 0 < stat.ci_low < 22.0 and stat.ci_high > 73.0
    assert stat.outliers == [] and stat.outlier_rule == "modified_z_mad>3.5,low"  # the 73 is the peak, not noise

    m = api.get(f"/api/v1/experiments/{exp.pk}/comparison/?metric=bandwidth_gbps.cpu.copy").json()
    cell = next(iter(m["rows"][0]["cells"].values()))
    assert cell["ci_method"] == "lognormal_cox" and cell["ci95"][0] > 0 and cell["cv"] > 0.5
    detail = api.get(f"/api/v1/jobs/{job.pk}/results/").json()
    assert detail["statistics"]["bandwidth_gbps.cpu.copy"]["ci_method"] == "lognormal_cox"

