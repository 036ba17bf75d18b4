"""Result storage (idempotent), ROUGE post-processing, statistics, results/comparison/export endpoints."""

from __future__ import annotations

import csv
import io
import json

import pytest

from common.catalog import task_params
from experiments.services import experiment_create
from results.models import JobMetricStatistics, RunResult, SampleResult
from results.rouge import rouge_scores, split_sentences
from tests.factories import AgentFactory, job_result, store_scored

pytestmark = pytest.mark.django_db


def setup_experiment(agents=1, cost=None):
    made = [AgentFactory(name=f"host-{i}", cost_per_hour=cost) for i in range(agents)]
    exp = experiment_create(
        name="results",
        task_name="wikipedia_summarization", task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": "smollm2-135m-instruct"}],
        runtimes=[{"name": "transformers", "params": {}}],
        agents={"all": True},
        runs_per_job=3,
    )
    return exp, made


def test_rouge_known_values():
    assert rouge_scores("the cat sat", "the cat sat") == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0, "rougeLsum": 1.0}
    s = rouge_scores("the cat", "the cat sat on the mat")
    # unigram overlap 2: precision 2/2, recall 2/6 -> F = 0.5
    assert s["rouge1"] == pytest.approx(0.5)
    assert rouge_scores("", "reference")["rougeL"] == 0.0
    assert split_sentences("One thing. Two things! 3 items? ok") == "One thing.\nTwo things!\n3 items? ok"


def test_store_result_scores_rouge_and_uses_warm_runs_only():
    exp, _ = setup_experiment()
    job = exp.jobs.get()
    result, created = store_scored(job=job, result=job_result(job.pk, tokens_per_s=[1.0, 20.0, 22.0]))
    assert created
    runs = list(RunResult.objects.filter(job=job).order_by("run_index"))
    assert [r.cold_start for r in runs] == [True, False, False]
    paris = SampleResult.objects.filter(run=runs[1], sample_id="Paris").get()
    assert 0.5 < paris.metrics["rouge1"] < 1.0
    moon = SampleResult.objects.filter(run=runs[1], sample_id="Moon").get()
    assert moon.metrics["rouge1"] == 0.0
    assert runs[1].metrics["rouge1"] == pytest.approx((paris.metrics["rouge1"] + 0.0) / 2)
    tps = JobMetricStatistics.objects.get(job=job, metric="output_tokens_per_s")
    assert tps.source == "warm" and tps.n == 2 and tps.values == [20.0, 22.0] and tps.mean == 21.0
    assert JobMetricStatistics.objects.filter(job=job, metric="rougeL").exists()
    # model_load_s is a cold-run metric: reported apart, not in the warm statistics.
    assert not JobMetricStatistics.objects.filter(job=job, metric="model_load_s").exists()
    assert result.cold_start["model_load_s"] == 2.5


def test_replaying_the_same_result_five_times_stores_it_once():
    exp, _ = setup_experiment()
    job = exp.jobs.get()
    message = job_result(job.pk)
    outcomes = [store_scored(job=job, result=message)[1] for _ in range(5)]
    assert outcomes == [True, False, False, False, False]
    assert RunResult.objects.filter(job=job).count() == 3
    assert SampleResult.objects.filter(run__job=job).count() == 6


def test_single_run_job_uses_the_cold_run_and_says_so():
    exp, _ = setup_experiment()
    job = exp.jobs.get()
    result, _ = store_scored(job=job, result=job_result(job.pk, runs=1))
    assert result.statistics_source == "cold"
    by_scope = {s.scope: s.source for s in JobMetricStatistics.objects.filter(job=job, metric="e2e_latency_s")}
    assert by_scope == {"run": "cold", "request": "cold"}


def test_results_endpoints(api):
    exp, _ = setup_experiment()
    job = exp.jobs.get()
    store_scored(job=job, result=job_result(job.pk))
    body = api.get(f"/api/v1/jobs/{job.pk}/results/").json()
    assert body["statistics"]["output_tokens_per_s"]["n"] == 2
    assert body["statistics"]["output_tokens_per_s"]["ci95"][0] < body["statistics"]["output_tokens_per_s"]["mean"]
    assert body["cold_start"]["model_load_s"] == 2.5
    assert body["runs"][0]["samples"][0]["reference"].startswith("Paris is the capital")
    assert "samples" not in api.get(f"/api/v1/jobs/{job.pk}/results/?samples=false").json()["runs"][0]
    agg = api.get(f"/api/v1/experiments/{exp.pk}/results/").json()
    assert agg["jobs"][0]["statistics"]["rougeL"]["n"] == 2
    assert api.get("/api/v1/jobs/99999/results/").status_code == 404


def test_comparison_matrix_with_cost_and_power(api):
    exp, _ = setup_experiment(agents=2, cost="3.6")
    j1, j2 = exp.jobs.order_by("id")
    store_scored(job=j1, result=job_result(j1.pk, tokens_per_s=[1, 10, 20], power_w=100.0))
    store_scored(job=j2, result=job_result(j2.pk, tokens_per_s=[1, 30, 30]))
    m = api.get(f"/api/v1/experiments/{exp.pk}/comparison/?metric=output_tokens_per_s").json()
    assert m["unit"] == "tok/s" and m["higher_is_better"] is True
    assert [c["agent_name"] for c in m["columns"]] == ["host-0", "host-1"]
    row = m["rows"][0]
    assert (row["model"], row["runtime"]) == ("smollm2-135m-instruct", "transformers")
    c1 = row["cells"][str(j1.agent_id)]
    c2 = row["cells"][str(j2.agent_id)]
    assert c1["mean"] == 15.0 and c1["std"] == pytest.approx(7.0710678)
    # 15 tok/s * 3600 s / $3.6 = 15000 tokens per dollar; 15 tok/s / 100 W = 0.15 tokens per joule
    assert c1["tokens_per_dollar"] == pytest.approx(15000.0)
    assert c1["tokens_per_joule"] == pytest.approx(0.15)
    assert c2["mean"] == 30.0 and "tokens_per_joule" not in c2  # no power measured: absent, never zero
    bad = api.get(f"/api/v1/experiments/{exp.pk}/comparison/?metric=vibes")
    assert bad.status_code == 400 and "metric" in bad.json()


def test_export_csv_and_json_stream_every_run(api):
    exp, _ = setup_experiment(agents=2)
    for job in exp.jobs.all():
        store_scored(job=job, result=job_result(job.pk))
    r = api.get(f"/api/v1/experiments/{exp.pk}/export/?format=csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert r.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert len(rows) == 6
    assert rows[0]["cold_start"] == "True" and rows[0]["model_load_s"] == "2.5"
    assert rows[1]["model_load_s"] == "" and float(rows[1]["rouge1"]) > 0
    j = api.get(f"/api/v1/experiments/{exp.pk}/export/?format=json")
    data = json.loads(b"".join(j.streaming_content))
    assert len(data) == 6 and len(data[0]["samples"]) == 2 and data[0]["samples"][0]["output"]
    bad = api.get(f"/api/v1/experiments/{exp.pk}/export/?format=xlsx")
    assert bad.status_code == 400 and "format" in bad.json()
