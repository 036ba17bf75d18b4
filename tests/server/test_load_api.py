"""Serving under load on the server: experiments with a load spec, dispatch, load results, the load API."""

from __future__ import annotations

import secrets

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from common.loadmetrics import point_figures
from common.protocol import (
    LoadPointRun,
    LoadSpec,
    LoadSweepRun,
    MultiRunJobResult,
    RequestRecord,
)
from common.statuses import ExperimentStatus, ScoringStatus
from experiments.models import AttemptStatus, Experiment, Job, JobAttempt, JobStatus
from results.load_schemas import ExperimentLoad, JobLoadCell
from results.models import JobResult, LoadPoint
from results.scoring import score_all_pending
from results.services import expand_requests, load_point_run
from scheduling.dispatch import job_request
from tests.factories import AgentFactory, UserFactory, agent_info
from tests.server.conftest import client_for

pytestmark = pytest.mark.django_db

LOAD = {"concurrency": [1, 2, 4], "num_requests": 6, "warmup_requests": 2, "slo": {"ttft_ms": 250, "e2e_ms": 2000}}
#: Each point's duration: 60 output tokens in 1 s, 60 in 0.6 s, 50 (one request failed) in 0.4 s.
DURATIONS = [1.0, 0.6, 0.4]


def payload(**overrides):
    data = {
        "name": "serving under load",
        "task": {"name": "wikipedia_summarization", "params": {"num_samples": 3}},
        "models": [{"name": "smollm2-135m-instruct"}],
        "runtimes": [{"name": "vllm"}],
        "agents": {"all": True},
        "runs_per_job": 3,
        "load": LOAD,
    }
    data.update(overrides)
    return data


def vllm_agent(**kwargs):
    return AgentFactory(info=agent_info(runtimes=("transformers", "vllm", "openai")), **kwargs)


def agent_client(agent) -> APIClient:
    credential = agent.set_credential()
    agent.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    return client


def running(job: Job) -> JobAttempt:
    """Put a job on its agent as the scheduler does: an attempt, assigned, running."""
    attempt = JobAttempt.objects.create(job=job, number=1, agent=job.agent, attempt_token=secrets.token_urlsafe(16),
                                        status=AttemptStatus.RUNNING)
    job.transition(JobStatus.ASSIGNED, reason="test", attempt=1)
    job.transition(JobStatus.RUNNING, reason="test")
    return attempt


def records(concurrency: int, n: int = 6) -> list[RequestRecord]:
    """Requests of a point whose latency grows with concurrency; one of six fails at concurrency 4."""
    out = []
    for i in range(n):
        ttft = 0.05 * concurrency + 0.001 * i + 0.0000004  # below a microsecond: rounded away when stored
        e2e = ttft + 0.02 * 9 * concurrency
        failed = concurrency == 4 and i == 5
        out.append(RequestRecord(
            scheduled_s=0.1 * i, sent_s=0.1 * i + 0.0005, ttft_s=ttft, e2e_s=None if failed else e2e,
            itl_s=[] if failed else [0.02 * concurrency] * 9, prompt_tokens=100, output_tokens=None if failed else 10,
            error="connection reset" if failed else None,
        ))
    return out


def sweep(spec: LoadSpec, *, points: list[LoadPointRun] | None = None, stopped_early: str | None = None
          ) -> LoadSweepRun:
    if points is None:
        points = [
            LoadPointRun(index=i, concurrency=c, duration_s=DURATIONS[i], requests=records(c), warmup_requests=2,
                         power_w=200.0 + 50 * i, power_source="nvml", notes=["ignore_eos honoured"])
            for i, c in enumerate(spec.concurrency or [])
        ]
    return LoadSweepRun(mode=spec.mode, spec=spec, points=points, stopped_early=stopped_early)


def result_message(job: Job, attempt: JobAttempt, load: LoadSweepRun | None, status: str = "completed"
                   ) -> dict:
    return MultiRunJobResult(
        job_id=str(job.pk), attempt=attempt.number, attempt_token=attempt.attempt_token, status=status,
        task="wikipedia_summarization", model=job.model_name, runtime=job.runtime_name, runs_per_job=1, runs=[],
        load=load,
    ).model_dump(mode="json")


@pytest.fixture
def load_job(api):
    """A load experiment's job running on its agent (cost 2.50/h), and that agent."""
    agent = vllm_agent(cost_per_hour="2.5")
    r = api.post("/api/v1/experiments/", payload(), format="json")
    assert r.status_code == 201, r.json()
    job = Job.objects.with_experiment().get(experiment_id=r.json()["id"])
    return job, running(job), agent


# --------------------------------------------------------------------------------------------------
# Experiments with a load spec
# --------------------------------------------------------------------------------------------------


def test_create_stores_the_load_and_every_read_returns_it(api):
    vllm_agent()
    r = api.post("/api/v1/experiments/", payload(), format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    # Stored with its defaults, as the agents will run it.
    assert body["load"] == LoadSpec.model_validate(LOAD).model_dump(mode="json")
    assert body["load"]["early_stop"] == {"latency_factor": 20.0, "max_error_rate": 0.5}
    assert Experiment.objects.get(pk=body["id"]).load == body["load"]
    assert api.get(f"/api/v1/experiments/{body['id']}/").json()["load"] == body["load"]
    assert api.get("/api/v1/experiments/").json()["results"][0]["load"] == body["load"]
    assert body["plan"]["load"]["requests_per_job"] == 3 * (6 + 2)
    # An experiment without a load says so.
    plain = api.post("/api/v1/experiments/", payload(load=None), format="json").json()
    assert plain["load"] is None and "load" not in plain["plan"]


def test_plan_preview_shows_the_points_and_the_requests_each_job_sends(api):
    vllm_agent()
    r = api.post("/api/v1/experiments/plan/", payload(), format="json")
    assert r.status_code == 200, r.json()
    preview = r.json()["load"]
    assert preview["mode"] == "concurrency" and preview["points"] == [1, 2, 4]
    assert preview["requests_per_point"] == 8 and preview["requests_per_job"] == 24
    assert "3 x (6 + 2 warm-up) = 24 requests" in preview["summary"]
    assert "runs_per_job does not apply" in preview["summary"]
    timed = {"request_rate": [1, "inf"], "duration_s": 30, "slo": {"tpot_ms": 50}}
    preview = api.post("/api/v1/experiments/plan/", payload(load=timed), format="json").json()["load"]
    assert preview["points"] == [1.0, "inf"] and preview["duration_s_per_point"] == 30
    # The plan leaves out what does not apply (as it does every null field).
    assert "requests_per_job" not in preview and "30 s per point" in preview["summary"]
    assert not Experiment.objects.exists()  # a dry run writes nothing


@pytest.mark.parametrize(
    ("load", "field", "words"),
    [
        ({"request_rate": [1, 2, -3], "num_requests": 5}, "load.request_rate[2]", "must be above 0"),
        ({"request_rate": [1, "fast"], "num_requests": 5}, "load.request_rate[1]", "requests/s or \"inf\""),
        ({"concurrency": [1, 0], "num_requests": 5}, "load.concurrency[1]", "between 1 and 4096"),
        ({"concurrency": [1], "request_rate": [1], "num_requests": 5}, "load", "exactly one of concurrency"),
        ({"concurrency": [1]}, "load", "exactly one of num_requests and duration_s"),
        ({"concurrency": [1], "num_requests": 5, "max_concurrency": 4}, "load.max_concurrency", "open-loop"),
        ({"concurrency": [1], "num_requests": 100_001}, "load.num_requests", "100000"),
        ({"concurrency": list(range(1, 34)), "num_requests": 5}, "load.concurrency", "at most 32"),
        ({"concurrency": [1], "num_requests": 5, "prompts": {"source": "jsonl"}}, "load.prompts.path", "jsonl"),
        ({"concurrency": [1], "num_requests": 5, "slo": {}}, "load.slo", "at least one of"),
        ({"concurrency": [1], "num_requests": 5, "slo": {"ttft_ms": -1}}, "load.slo.ttft_ms", "greater than 0"),
        ({"concurrency": [1], "num_request": 5}, "load.num_request", "unknown field"),
        ({"concurrency": [1], "num_requests": 5, "slo": {"ttft": 5}}, "load.slo.ttft", "unknown field"),
        ([1, 2], "load", "must be an object"),
    ],
)
def test_a_bad_load_is_refused_naming_the_field(api, load, field, words):
    vllm_agent()
    r = api.post("/api/v1/experiments/", payload(load=load), format="json")
    assert r.status_code == 400, r.json()
    assert field in r.json(), r.json()
    assert any(words in message for message in r.json()[field]), r.json()
    assert not Experiment.objects.exists()  # nothing half-written


def test_a_load_needs_a_generation_task_and_white_box_runtimes_sweep_concurrency(api):
    AgentFactory(info=agent_info(runtimes=("transformers", "hardware")))
    host = payload(task={"name": "hardware_benchmark"}, models=None, runtimes=[{"name": "hardware"}])
    host.pop("models")
    r = api.post("/api/v1/experiments/", host, format="json")
    assert r.status_code == 400 and "a load sweep needs a generation task" in r.json()["load"][0]
    rates = payload(runtimes=[{"name": "transformers"}], load={"request_rate": [1, 2], "num_requests": 5})
    r = api.post("/api/v1/experiments/", rates, format="json")
    assert r.status_code == 400 and "transformers run a load sweep as batches" in r.json()["load.request_rate"][0]
    batches = payload(runtimes=[{"name": "transformers"}], load={"concurrency": [1, 8], "num_requests": 5})
    assert api.post("/api/v1/experiments/", batches, format="json").status_code == 201


def test_the_load_cannot_change_after_creation(api):
    vllm_agent()
    exp = api.post("/api/v1/experiments/", payload(), format="json").json()
    r = api.patch(f"/api/v1/experiments/{exp['id']}/", {"load": None}, format="json")
    assert r.status_code == 400 and "cannot change after creation" in r.json()["load"][0]


def test_dispatch_sends_the_load(load_job):
    job, attempt, _ = load_job
    request = job_request(job, attempt)
    assert request.load == LoadSpec.model_validate(LOAD)
    assert request.load.slo.ttft_ms == 250
    plain = Job.objects.with_experiment().get(pk=job.pk)
    plain.experiment.load = None
    assert job_request(plain, attempt).load is None


# --------------------------------------------------------------------------------------------------
# Load results
# --------------------------------------------------------------------------------------------------


def test_a_load_result_is_stored_with_figures_the_server_computes(load_job):
    job, attempt, agent = load_job
    spec = LoadSpec.model_validate(LOAD)
    sent = sweep(spec, stopped_early=None)
    r = agent_client(agent).post(f"/api/v1/jobs/{job.pk}/result/", result_message(job, attempt, sent), format="json")
    assert r.status_code == 200, r.json()
    assert r.json() == {"stored": True, "status": "completed"}
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    assert Experiment.objects.get(pk=job.experiment_id).status == ExperimentStatus.COMPLETED
    result = JobResult.objects.get(job=job)
    # Nothing is left to score: the figures were computed as the points were stored.
    assert result.scoring_status == ScoringStatus.SCORED and result.scored_at is not None
    assert result.load == {"mode": "concurrency", "method": "http", "stopped_early": None,
                           "spec": spec.model_dump(mode="json")}
    assert "load" not in result.raw  # the requests are stored once, in the points
    assert score_all_pending() == 0
    points = list(LoadPoint.objects.filter(job=job).order_by("index"))
    assert [p.index for p in points] == [0, 1, 2] and [p.concurrency for p in points] == [1, 2, 4]
    first = points[0]
    # Times are kept to the microsecond.
    assert first.raw["ttft_s"][0] == 0.05 and len(first.raw["itl_s"][0]) == 9
    assert points[2].raw["errors"] == {"5": "connection reset"}
    assert first.power_source == "nvml" and first.notes == ["ignore_eos honoured"] and first.warmup_requests == 2
    for point, original in zip(points, sent.points, strict=True):
        # Recomputed from the stored requests, they are what is stored ...
        assert point.figures == point_figures(load_point_run(point), spec.slo, 2.5)
        # ... and what the agent's own requests give, up to the microsecond rounding.
        direct = point_figures(original, spec.slo, 2.5)
        assert point.figures["completed"] == direct["completed"]
        assert point.figures["output_throughput"] == pytest.approx(direct["output_throughput"])
        assert point.figures["ttft_s"]["p99"] == pytest.approx(direct["ttft_s"]["p99"], abs=1e-6)
    # By hand: concurrency 4, 5 of 6 completed with 10 tokens each in 0.4 s; a dollar buys 3600 / 2.5 s.
    last = points[2].figures
    assert (last["completed"], last["failed"], last["total_output_tokens"]) == (5, 1, 50)
    assert last["output_throughput"] == pytest.approx(125.0)
    assert last["output_tokens_per_dollar"] == pytest.approx(125.0 * 3600 / 2.5)
    assert last["energy_j"] == pytest.approx(300.0 * 0.4)
    # SLO e2e 2 s and TTFT 250 ms: every point's requests finish within both.
    assert [p.figures["slo_met"] for p in points] == [True, True, False]  # 1 of 6 failed: above max_error_rate 0


def test_a_replayed_load_result_is_stored_once(load_job):
    job, attempt, agent = load_job
    message = result_message(job, attempt, sweep(LoadSpec.model_validate(LOAD)))
    client = agent_client(agent)
    assert client.post(f"/api/v1/jobs/{job.pk}/result/", message, format="json").json()["stored"] is True
    assert client.post(f"/api/v1/jobs/{job.pk}/result/", message, format="json").json()["stored"] is False
    assert LoadPoint.objects.filter(job=job).count() == 3


def _point(index: int, concurrency: int | None = None, **changes) -> dict:
    base = LoadPointRun(index=index, concurrency=concurrency if concurrency is not None else [1, 2, 4][index],
                        duration_s=1.0, requests=records(1)).model_dump(mode="json")
    base.update(changes)
    return base


@pytest.mark.parametrize(
    ("points", "field", "words"),
    [
        ([_point(0), _point(0)], "load.points[1].index", "more than once"),
        ([_point(0), _point(5, concurrency=8)], "load.points[1].index", "0 to 2"),
        ([_point(1, concurrency=3)], "load.points[0].concurrency", "is 2, not 3"),
        ([_point(0, requests=[RequestRecord(scheduled_s=0, sent_s=0).model_dump(mode="json")] * 7)],
         "load.points[0].requests", "at most 6 measured requests"),
        ([_point(0, requests=[{"scheduled_s": 0, "sent_s": 0, "ttft_s": -0.5, "e2e_s": 1}])],
         "load.points[0].requests[0].ttft_s", "must not be negative"),
        ([_point(0, requests=[{"scheduled_s": 0, "sent_s": 0, "ttft_s": 2, "e2e_s": 1}])],
         "load.points[0].requests[0].ttft_s", "cannot come after the end"),
        ([_point(0, requests=[{"scheduled_s": 0, "sent_s": 0, "ttft_s": 0.1, "e2e_s": 1, "itl_s": [0.1, -2]}])],
         "load.points[0].requests[0].itl_s[1]", "must not be negative"),
        ([_point(0, warmup_requests=50)], "load.points[0].warmup_requests", "asks for 2"),
    ],
)
def test_a_bad_load_result_is_refused_naming_the_field_and_nothing_is_stored(load_job, points, field, words):
    job, attempt, agent = load_job
    message = result_message(job, attempt, sweep(LoadSpec.model_validate(LOAD), points=[]))
    message["load"]["points"] = points
    r = agent_client(agent).post(f"/api/v1/jobs/{job.pk}/result/", message, format="json")
    assert r.status_code == 400, r.json()
    assert field in r.json() and any(words in m for m in r.json()[field]), r.json()
    assert not JobResult.objects.filter(job=job).exists() and not LoadPoint.objects.exists()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING  # the agent may still deliver a sound result


def test_a_load_result_must_match_its_job(load_job, api):
    job, attempt, agent = load_job
    client = agent_client(agent)
    rates = LoadSpec.model_validate({"request_rate": [1.0], "num_requests": 6})
    wrong_mode = sweep(rates, points=[LoadPointRun(index=0, request_rate=1.0, duration_s=1.0)])
    r = client.post(f"/api/v1/jobs/{job.pk}/result/", result_message(job, attempt, wrong_mode), format="json")
    assert r.status_code == 400 and "sweeps concurrency, not request_rate" in r.json()["load.mode"][0]
    # A job without a load spec takes no load sweep.
    plain = api.post("/api/v1/experiments/", payload(load=None), format="json").json()
    other = Job.objects.with_experiment().get(experiment_id=plain["id"])
    other_attempt = running(other)
    r = client.post(f"/api/v1/jobs/{other.pk}/result/",
                    result_message(other, other_attempt, sweep(LoadSpec.model_validate(LOAD))), format="json")
    assert r.status_code == 400 and "has no load spec" in r.json()["load"][0]


def test_a_failed_load_job_keeps_the_points_it_ran_and_is_not_left_scoring(load_job):
    job, attempt, agent = load_job
    spec = LoadSpec.model_validate(LOAD)
    partial = sweep(spec, points=[LoadPointRun(index=0, concurrency=1, duration_s=1.0, requests=records(1))],
                    stopped_early="latency exploded at concurrency 2")
    message = result_message(job, attempt, partial, status="failed")
    message["error"] = "the server went away"
    r = agent_client(agent).post(f"/api/v1/jobs/{job.pk}/result/", message, format="json")
    assert r.status_code == 200 and r.json()["status"] == "failed"
    result = JobResult.objects.get(job=job)
    assert result.scoring_status == ScoringStatus.SCORED and result.load["stopped_early"].startswith("latency")
    assert LoadPoint.objects.filter(job=job).count() == 1


def test_a_failed_load_job_without_points_is_scored_like_any_other(load_job):
    job, attempt, agent = load_job
    message = result_message(job, attempt, None, status="failed")
    message["error"] = "no endpoint"
    assert agent_client(agent).post(f"/api/v1/jobs/{job.pk}/result/", message, format="json").status_code == 200
    assert score_all_pending() == 1
    assert JobResult.objects.get(job=job).scoring_status == ScoringStatus.SCORED


def test_stored_columns_give_back_the_requests():
    original = records(4)
    from results.services import compact_requests

    back = expand_requests(compact_requests(original))
    assert [r.error for r in back] == [r.error for r in original]
    assert [r.output_tokens for r in back] == [r.output_tokens for r in original]
    assert back[0].ttft_s == round(original[0].ttft_s, 6) and back[0].itl_s == [0.08] * 9


# --------------------------------------------------------------------------------------------------
# The load API
# --------------------------------------------------------------------------------------------------


def _deliver(job, attempt, agent, spec=None):
    spec = spec or LoadSpec.model_validate(LOAD)
    r = agent_client(agent).post(f"/api/v1/jobs/{job.pk}/result/", result_message(job, attempt, sweep(spec)),
                                 format="json")
    assert r.status_code == 200, r.json()


def test_experiment_load_has_every_job_with_its_points_and_saturation(api, load_job):
    job, attempt, agent = load_job
    pending = Job.objects.create(
        experiment=job.experiment, model_spec={"name": "smollm2-135m-instruct"}, runtime_spec={"name": "transformers"},
        model_name="smollm2-135m-instruct", runtime_name="transformers", agent=agent,
        hardware_fingerprint=agent.hardware_fingerprint,
    )
    _deliver(job, attempt, agent)
    r = api.get(f"/api/v1/experiments/{job.experiment_id}/load/")
    assert r.status_code == 200
    body = r.json()
    ExperimentLoad.model_validate(body)  # the documented shape, no key more
    assert body["mode"] == "concurrency" and body["slo"]["ttft_ms"] == 250
    done, waiting = body["cells"]
    assert done["job"] == job.pk and done["status"] == "completed" and done["method"] == "http"
    assert done["agent_id"] == str(agent.pk) and done["agent_name"] == agent.name
    assert done["hardware"] == agent.hardware_fingerprint and done["cost_per_hour"] == "2.5000"
    assert done["model"] == "smollm2-135m-instruct" and done["runtime"] == "vllm"
    assert [p["concurrency"] for p in done["points"]] == [1, 2, 4] and "raw" not in done["points"][0]
    # Output tokens/s 60, 100, 125 over median e2e 0.2325, 0.4625, 0.922 s: power 258, 216, 136.
    assert done["peak"] == {"index": 2, "load": 4, "request_throughput": pytest.approx(12.5),
                            "output_throughput": pytest.approx(125.0)}
    assert done["knee"]["index"] == 0 and done["knee"]["load"] == 1
    assert done["knee"]["e2e_median_s"] == pytest.approx(0.2325, abs=1e-6)
    # Concurrency 4 misses the objectives (a failed request, max_error_rate 0): the best within is concurrency 2.
    assert done["max_goodput"]["index"] == 1 and done["max_goodput"]["load"] == 2
    assert done["max_goodput"]["goodput"] == pytest.approx(10.0)
    assert done["max_goodput"]["output_tokens_per_dollar"] == pytest.approx(100.0 * 3600 / 2.5)
    # A job without its result yet: no points, and a white-box runtime makes its load as batches.
    assert waiting["job"] == pending.pk and waiting["points"] == [] and waiting["method"] == "batch"
    assert waiting["peak"] is None and waiting["knee"] is None and waiting["stopped_early"] is None
    # An experiment without a load sweep has no cells.
    plain = api.post("/api/v1/experiments/", payload(load=None), format="json").json()
    assert api.get(f"/api/v1/experiments/{plain['id']}/load/").json() == {
        "experiment": plain["id"], "mode": None, "slo": None, "cells": []}
    assert api.get("/api/v1/experiments/999999/load/").status_code == 404


def test_job_load_has_the_raw_series_of_each_point(api, load_job):
    job, attempt, agent = load_job
    _deliver(job, attempt, agent)
    r = api.get(f"/api/v1/jobs/{job.pk}/load/")
    assert r.status_code == 200
    cell = r.json()
    JobLoadCell.model_validate(cell)
    last = cell["points"][2]
    # Completed requests only: 5 of 6 at concurrency 4, 9 gaps each.
    assert len(last["raw"]["ttft_s"]) == 5 and len(last["raw"]["e2e_s"]) == 5
    assert len(last["raw"]["itl_s"]) == 45 and last["raw"]["tpot_s"][0] == pytest.approx(0.08)
    assert last["ttft_s"]["count"] == 5
    assert api.get("/api/v1/jobs/999999/load/").status_code == 404


def test_every_role_reads_the_load_and_nobody_else(load_job):
    job, attempt, agent = load_job
    _deliver(job, attempt, agent)
    for role in ("viewer", "operator", "fleet-admin"):
        client = client_for(UserFactory(username=f"reader-{role}", role=role))
        assert client.get(f"/api/v1/experiments/{job.experiment_id}/load/").status_code == 200
        assert client.get(f"/api/v1/jobs/{job.pk}/load/").status_code == 200
    nobody = client_for(UserFactory(username="no-role"))
    assert nobody.get(f"/api/v1/experiments/{job.experiment_id}/load/").status_code == 403
    assert APIClient().get(f"/api/v1/jobs/{job.pk}/load/").status_code == 401
    # The agent's credential does not open the user API.
    assert agent_client(agent).get(f"/api/v1/jobs/{job.pk}/load/").status_code == 401


def test_experiment_load_does_not_grow_with_its_jobs(api):
    agents = [vllm_agent(name=f"gpu-{i}") for i in range(2)]
    exp = api.post("/api/v1/experiments/", payload(), format="json").json()
    spec = LoadSpec.model_validate(LOAD)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(f"/api/v1/experiments/{exp['id']}/load/").status_code == 200
        return len(ctx.captured_queries)

    for job in Job.objects.with_experiment().filter(experiment_id=exp["id"]):
        _deliver(job, running(job), job.agent, spec)
    few = queries()
    experiment = Experiment.objects.get(pk=exp["id"])
    for i in range(6):
        job = Job.objects.create(
            experiment=experiment, model_spec={"name": "smollm2-135m-instruct"}, runtime_spec={"name": "vllm"},
            model_name="smollm2-135m-instruct", runtime_name="vllm", agent=agents[i % 2],
            hardware_fingerprint=agents[i % 2].hardware_fingerprint,
        )
        _deliver(Job.objects.with_experiment().get(pk=job.pk), running(job), agents[i % 2], spec)
    assert queries() == few <= 8  # authentication and permissions, the experiment, its jobs, their points


def test_a_result_may_be_larger_than_other_requests_up_to_its_own_cap(load_job, settings):
    job, attempt, agent = load_job
    message = result_message(job, attempt, sweep(LoadSpec.model_validate(LOAD)))
    client = agent_client(agent)
    # Over the limit of every other request, under the result's own: stored.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    # Over the result's own limit: 413 before the body is read, saying what to do.
    settings.RUCKUS_MAX_RESULT_BYTES = 2000
    r = client.post(f"/api/v1/jobs/{job.pk}/result/", message, format="json")
    assert r.status_code == 413, r.content[:300]
    assert "larger than this server accepts (2000 bytes, RUCKUS_MAX_RESULT_BYTES)" in r.json()["detail"]
    assert not JobResult.objects.filter(job=job).exists()
    settings.RUCKUS_MAX_RESULT_BYTES = 1_000_000
    r = client.post(f"/api/v1/jobs/{job.pk}/result/", message, format="json")
    assert r.status_code == 200 and r.json()["stored"] is True
    # The callback's body is still checked like any other: malformed JSON is a 400.
    r = client.generic("POST", f"/api/v1/jobs/{job.pk}/result/", "{not json", content_type="application/json")
    assert r.status_code == 400 and "JSON parse error" in r.json()["detail"]


def test_text_that_cannot_be_stored_is_refused_in_a_large_result_too(load_job):
    job, attempt, agent = load_job
    message = result_message(job, attempt, sweep(LoadSpec.model_validate(LOAD)))
    message["load"]["points"][0]["requests"][0]["error"] = "reset\x00"
    r = agent_client(agent).post(f"/api/v1/jobs/{job.pk}/result/", message, format="json")
    assert r.status_code == 400 and "NUL character" in r.json()["load.points.0.requests.0.error"][0]


def test_a_pulled_load_result_that_does_not_fit_is_not_stored_and_the_pass_goes_on(load_job, settings):
    from datetime import timedelta

    from django.utils import timezone

    from scheduling.recovery import pull_results

    job, attempt, _ = load_job
    message = result_message(job, attempt, sweep(LoadSpec.model_validate(LOAD)))
    message["load"]["points"][1]["index"] = 0  # a point twice

    class Agent:
        """The agent's API as the scheduler's pull sees it: the job's finished result, once asked."""

        acks: list[str] = []

        def __init__(self, url: str, token: str) -> None:
            pass

        def get_job(self, job_id: str) -> dict:
            return {"attempt": 1, "result": message}

        def ack_job(self, job_id: str) -> None:
            self.acks.append(job_id)

    later = timezone.now() + timedelta(seconds=settings.RUCKUS_PULL_AFTER_S + 1)
    pull_results(later, Agent)  # no exception: the scheduler's pass continues with its other steps
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.RUNNING and attempt.updated_at == later
    assert not JobResult.objects.filter(job=job).exists() and Agent.acks == []
