"""Every typed response matches the shape the OpenAPI schema gives it (a key the shape does not name fails).

The results, plans, catalog and agent summaries are built as plain dicts; these tests check them against the
Pydantic models that describe them in the schema, so the schema (and the UI's generated types) cannot drift
from what the server sends.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from drf_spectacular.generators import SchemaGenerator

from agents.api_schemas import AgentSummary
from common.protocol import (
    AgentInfo,
    BenchmarkFigure,
    ExecutionInfo,
    HardwareBenchmarkResult,
    JobProgress,
    ModelSpec,
    RuntimeSpec,
    TaskSpec,
)
from common.stats import describe
from experiments.models import Experiment, Job
from experiments.planning import Plan
from results.api_schemas import Comparison, ExperimentResults, ExportRuns, JobResults
from ruckus_server.catalog_api import Catalog
from tests.factories import AgentFactory, agent_info, job_result, store_benchmark, store_scored

pytestmark = pytest.mark.django_db


def _benchmarked_agent(name: str, cost: str | None = None):
    info = agent_info(runtimes=("transformers", "hardware"))
    bench = HardwareBenchmarkResult(
        device="cpu",
        repeats=3,
        finished_at=datetime(2026, 11, 1, tzinfo=UTC),
        figures=[
            BenchmarkFigure(name="bandwidth_gbps", device="cpu", precision="copy", unit="GB/s",
                            statistics=describe([19.0, 20.0, 21.0], unit="GB/s")),
            BenchmarkFigure(name="gflops", device="cpu", precision="fp16", unit="GFLOP/s", supported=False,
                            reason="no fp16 matmul kernel on this CPU"),
        ],
    )
    return store_benchmark(AgentFactory(name=name, info=info, cost_per_hour=cost), bench)


def _experiment(api, **overrides) -> dict:
    payload = {
        "name": "shapes",
        "task": {"name": "wikipedia_summarization", "params": {"num_samples": 2}},
        "models": [{"name": "smollm2-135m-instruct"}],
        "runtimes": [{"name": "transformers"}, {"name": "vllm"}],
        "agents": {"all": True},
        "runs_per_job": 3,
    }
    payload.update(overrides)
    response = api.post("/api/v1/experiments/", payload, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def _store_results(experiment_id: int) -> None:
    for job in Job.objects.filter(experiment_id=experiment_id):
        result = job_result(job.pk, tokens_per_s=[5.0, 20.0, 22.0])
        result.execution = ExecutionInfo(device="cpu", dtype="float32", parameters=134_515_008,
                                         weight_bytes=538_060_032)
        store_scored(job=job, result=result)


def test_experiment_plan_and_task_shapes(api):
    _benchmarked_agent("measured")
    body = _experiment(api)
    TaskSpec.model_validate(body["task"])
    plan = Plan.model_validate(body["plan"])
    assert plan.job_count == len(plan.jobs) == 1 and plan.unrunnable
    assert body["owner"] == "alice"

    dry = api.post("/api/v1/experiments/plan/", {**body, "name": "dry"}, format="json")
    assert dry.status_code == 200
    assert Plan.model_validate(dry.json()).jobs[0].model.name == "smollm2-135m-instruct"

    own = Plan.model_validate(api.get(f"/api/v1/experiments/{body['id']}/plan/").json())
    assert own.jobs[0].agent_name == "measured" and own.jobs[0].job is not None  # one shape, with the job ids
    assert own.model_dump(exclude={"jobs"}) == plan.model_dump(exclude={"jobs"})
    assert [j.model_dump(exclude={"job"}) for j in own.jobs] == [j.model_dump(exclude={"job"}) for j in plan.jobs]


def test_plan_stored_before_it_carried_jobs_still_reads():
    old = {"unrunnable": [], "excluded": [], "job_count": 2}
    assert Plan.model_validate(old).jobs == []
    assert Plan.model_validate({}).job_count == 0


def test_job_shapes(api):
    _benchmarked_agent("measured")
    body = _experiment(api)
    jobs = api.get(f"/api/v1/jobs/?experiment={body['id']}").json()["results"]
    for job in jobs:
        ModelSpec.model_validate(job["model"])
        RuntimeSpec.model_validate(job["runtime"])
        assert job["progress"] is None or JobProgress.model_validate(job["progress"])
    detail = api.get(f"/api/v1/jobs/{jobs[0]['id']}/").json()
    assert detail["transitions"][0]["to_state"] == "pending"


def test_results_comparison_and_export_shapes(api):
    _benchmarked_agent("measured", cost="2.5")
    AgentFactory(name="unmeasured")
    body = _experiment(api)
    _store_results(body["id"])
    job = Job.objects.filter(experiment_id=body["id"]).order_by("id").first()

    with_samples = api.get(f"/api/v1/jobs/{job.pk}/results/").json()
    assert JobResults.model_validate(with_samples).runs[0].samples
    without = api.get(f"/api/v1/jobs/{job.pk}/results/?samples=false").json()
    assert "samples" not in without["runs"][0]
    JobResults.model_validate(without)

    results = api.get(f"/api/v1/experiments/{body['id']}/results/").json()
    parsed = ExperimentResults.model_validate(results)
    assert parsed.unrunnable and any(j.efficiency and j.efficiency.bandwidth_fraction for j in parsed.jobs)

    comparison = api.get(f"/api/v1/experiments/{body['id']}/comparison/").json()
    cells = [c for row in Comparison.model_validate(comparison).rows for c in row.cells.values()]
    assert any("tokens_per_dollar" in c and "bandwidth_fraction" in c for c in cells)

    export = api.get(f"/api/v1/experiments/{body['id']}/export/?format=json")
    runs = ExportRuns.model_validate(json.loads(b"".join(export.streaming_content)))
    assert runs.root and runs.root[0].samples[0].timings is not None


def test_empty_experiment_results_shape(api):
    body = _experiment(api, agents={"labels": ["nowhere"]})
    assert Experiment.objects.get(pk=body["id"]).jobs.count() == 0
    ExperimentResults.model_validate(api.get(f"/api/v1/experiments/{body['id']}/results/").json())


def test_catalog_shape(api):
    Catalog.model_validate(api.get("/api/v1/catalog/").json())


def test_agent_shapes(api):
    _benchmarked_agent("measured")
    AgentFactory(name="plain")
    for agent in api.get("/api/v1/agents/").json()["results"]:
        AgentInfo.model_validate(agent["capabilities"])
        summary = AgentSummary.model_validate(agent["summary"])
        assert summary.cpu
        assert (summary.peaks is not None) == (agent["name"] == "measured")


def test_status_fields_share_the_serializers_enums():
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    assert not {"JobStatus", "ExperimentStatus", "AgentStatus", "AttemptStatus"} & set(components)
    status = components["ComparisonCell"]["properties"]["status"]
    assert status == {"$ref": "#/components/schemas/JobStatusEnum"}
    assert components["ExperimentResults"]["properties"]["status"] == {
        "$ref": "#/components/schemas/ExperimentStatusEnum"
    }
