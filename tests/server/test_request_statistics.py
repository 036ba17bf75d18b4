"""Per-request latency statistics next to the per-run ones: computation, API shape, export columns, CLI output.

The job below has two warm runs of four requests with known TTFTs, chosen so that the p95 of run means and the
p95 over requests differ: run 2 [0.1, 0.2, 0.3, 1.0] (mean 0.4), run 3 [0.1, 0.1, 0.2, 0.2] (mean 0.15).
Over runs, p95 = 0.15 + 0.95 x (0.4 - 0.15) = 0.3875; over the eight requests (sorted 0.1 0.1 0.1 0.2 0.2 0.2
0.3 1.0), p95 sits at rank 6.65: 0.3 + 0.65 x 0.7 = 0.755. The cold run (TTFT 5 s) and a failed request
(TTFT 9 s) must not count.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory
from rich.console import Console
from typer.testing import CliRunner

from common.catalog import task_params
from common.protocol import MultiRunJobResult, SampleResult, SingleRunResult
from experiments.services import experiment_create
from results.admin import JobResultAdmin
from results.api_schemas import ExperimentResults, ExportRuns, JobResults
from results.models import JobMetricStatistics, JobResult
from results.services import job_statistics_recompute
from ruckus_cli import output
from ruckus_cli.client import Api
from ruckus_cli.commands import results as results_command
from ruckus_cli.config import Config
from ruckus_cli.main import app
from tests.factories import AgentFactory, UserFactory, store_scored

pytestmark = pytest.mark.django_db

#: (id, ttft_s, inter-token gaps, output tokens, error) of each request, by run index.
REQUESTS: dict[int, list[tuple[str, float, list[float], int, str | None]]] = {
    1: [(f"s{i}", 5.0, [0.9], 2, None) for i in range(4)],
    2: [
        ("s0", 0.1, [0.01, 0.02], 3, None),
        ("s1", 0.2, [0.03], 2, None),
        ("s2", 0.3, [], 2, None),
        ("s3", 1.0, [0.5, 0.04], 3, None),
        ("s4", 9.0, [7.0], 2, "connection reset"),
    ],
    3: [
        ("s0", 0.1, [0.01], 2, None),
        ("s1", 0.1, [0.01], 2, None),
        ("s2", 0.2, [0.02], 2, None),
        ("s3", 0.2, [], 1, None),
    ],
}
RUN_P95, REQUEST_P95 = 0.3875, 0.755
ITL_POOLED = [0.01, 0.02, 0.03, 0.5, 0.04, 0.01, 0.01, 0.02]


def _sample(sample_id: str, ttft: float, gaps: list[float], tokens: int, error: str | None) -> SampleResult:
    """One request: e2e = TTFT + 1 s; TPOT only with more than one token (as the agent measures it)."""
    metrics: dict[str, float | None] = {"ttft_s": ttft, "e2e_latency_s": ttft + 1.0}
    if tokens > 1:
        metrics["tpot_s"] = 1.0 / (tokens - 1)
    if gaps:
        metrics["inter_token_gaps_s"] = sum(gaps) / len(gaps)
    return SampleResult(id=sample_id, output="text", output_tokens=tokens, metrics=metrics,
                        inter_token_gaps_s=gaps, error=error)


def _run_mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def latency_result(job_id: int, runs: tuple[int, ...] = (1, 2, 3)) -> MultiRunJobResult:
    """A result whose run metrics are the means over each run's successful requests (as the agent reports)."""
    out = []
    for index in runs:
        samples = [_sample(*r) for r in REQUESTS[index]]
        ok = [s for s in samples if s.error is None]
        metrics = {
            name: _run_mean([s.metrics[name] for s in ok if s.metrics.get(name) is not None])
            for name in ("ttft_s", "e2e_latency_s", "tpot_s")
        }
        metrics["inter_token_gaps_s"] = _run_mean([g for s in ok for g in s.inter_token_gaps_s])
        metrics["output_tokens_per_s"] = 10.0 + index
        out.append(SingleRunResult(run_index=index, cold_start=index == 1, metrics=metrics, samples=samples))
    return MultiRunJobResult(
        job_id=str(job_id), attempt=1, attempt_token="t" * 16, task="wikipedia_summarization",
        model="smollm2-135m-instruct", runtime="transformers", runs_per_job=len(runs), runs=out,
        cold_start=out[0].metrics,
    )


@pytest.fixture
def job():
    """A completed-result job with the known requests above."""
    AgentFactory(name="host-0")
    exp = experiment_create(
        name="latency",
        task_name="wikipedia_summarization", task_params=task_params("wikipedia_summarization", {"num_samples": 4}),
        models=[{"name": "smollm2-135m-instruct"}],
        runtimes=[{"name": "transformers", "params": {}}],
        agents={"all": True},
        runs_per_job=3,
    )
    made = exp.jobs.get()
    store_scored(job=made, result=latency_result(made.pk))
    return made


def _stats(job, scope: str) -> dict[str, JobMetricStatistics]:
    return {s.metric: s for s in JobMetricStatistics.objects.filter(job=job, scope=scope)}


def test_per_request_statistics_pool_every_warm_request(job):
    per_run, per_request = _stats(job, "run"), _stats(job, "request")
    assert set(per_request) == {"ttft_s", "tpot_s", "inter_token_gaps_s", "e2e_latency_s"}
    assert "output_tokens_per_s" in per_run and "output_tokens_per_s" not in per_request

    run_ttft, req_ttft = per_run["ttft_s"], per_request["ttft_s"]
    assert run_ttft.values == pytest.approx([0.4, 0.15]) and run_ttft.p95 == pytest.approx(RUN_P95)
    # The failed request (9 s) and the cold run (5 s) are left out; run then request order.
    assert req_ttft.values == pytest.approx([0.1, 0.2, 0.3, 1.0, 0.1, 0.1, 0.2, 0.2])
    assert req_ttft.n == 8 and req_ttft.source == "warm" and req_ttft.unit == "s"
    assert req_ttft.p95 == pytest.approx(REQUEST_P95) and req_ttft.p99 == pytest.approx(0.951)
    assert (req_ttft.median, req_ttft.mean) == (pytest.approx(0.2), pytest.approx(0.275))
    assert (req_ttft.min, req_ttft.max) == (pytest.approx(0.1), pytest.approx(1.0))
    assert req_ttft.p90 == pytest.approx(0.3 + 0.3 * 0.7)
    # No interval and no outlier flags over requests (they are not independent draws); the runs keep theirs.
    assert req_ttft.ci_low is None and req_ttft.outliers == [] and req_ttft.outlier_rule == ""
    assert run_ttft.ci_low is not None

    # ITL pools every gap of every warm request, so it is not the mean of the runs' means.
    itl = per_request["inter_token_gaps_s"]
    assert itl.values == pytest.approx(ITL_POOLED) and itl.n == 8
    assert itl.mean == pytest.approx(sum(ITL_POOLED) / 8)
    assert per_run["inter_token_gaps_s"].values == pytest.approx([0.12, 0.04 / 3])
    # TPOT only where more than one token came: 7 of the 8 warm requests.
    assert per_request["tpot_s"].n == 7
    assert per_request["e2e_latency_s"].p95 == pytest.approx(REQUEST_P95 + 1.0)


def test_recompute_is_repeatable_and_gives_both_scopes(job):
    before = sorted(JobMetricStatistics.objects.filter(job=job).values_list("metric", "scope", "p95"))
    rows = job_statistics_recompute(job)
    assert [r.scope for r in rows] == sorted((r.scope for r in rows), key=lambda s: s != "run")  # runs first
    assert sorted(JobMetricStatistics.objects.filter(job=job).values_list("metric", "scope", "p95")) == before


def test_admin_recompute_action_restores_per_request_statistics(job):
    JobMetricStatistics.objects.filter(job=job, scope="request").delete()
    request = RequestFactory().post("/admin/results/jobresult/")
    request.user = UserFactory(username="admin", is_staff=True, is_superuser=True)
    admin = JobResultAdmin(JobResult, site)
    admin.message_user = lambda *args, **kwargs: None  # no message storage on a bare request
    admin.recompute_statistics(request, JobResult.objects.filter(job=job))
    assert _stats(job, "request")["ttft_s"].p95 == pytest.approx(REQUEST_P95)


def test_single_run_job_uses_the_cold_run_for_requests_too():
    AgentFactory(name="host-1")
    exp = experiment_create(
        name="one run",
        task_name="wikipedia_summarization", task_params=task_params("wikipedia_summarization", {"num_samples": 4}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"all": True}, runs_per_job=1,
    )
    one = exp.jobs.get()
    store_scored(job=one, result=latency_result(one.pk, runs=(1,)))
    ttft = _stats(one, "request")["ttft_s"]
    assert ttft.source == "cold" and ttft.values == [5.0] * 4


def test_results_api_labels_each_scope(api, job):
    body = api.get(f"/api/v1/jobs/{job.pk}/results/?samples=false").json()
    JobResults.model_validate(body)
    assert body["statistics"]["ttft_s"]["scope"] == "run"
    assert body["statistics"]["ttft_s"]["p95"] == pytest.approx(RUN_P95)
    request_ttft = body["request_statistics"]["ttft_s"]
    assert request_ttft["scope"] == "request" and request_ttft["source"] == "warm"
    assert request_ttft["p95"] == pytest.approx(REQUEST_P95) and len(request_ttft["values"]) == 8
    assert request_ttft["ci95"] is None
    assert set(body["request_statistics"]) == {"ttft_s", "tpot_s", "inter_token_gaps_s", "e2e_latency_s"}

    agg = api.get(f"/api/v1/experiments/{job.experiment_id}/results/").json()
    ExperimentResults.model_validate(agg)
    entry = agg["jobs"][0]
    assert entry["statistics"]["ttft_s"]["scope"] == "run" and entry["statistics"]["ttft_s"]["values"]
    assert entry["request_statistics"]["ttft_s"]["p95"] == pytest.approx(REQUEST_P95)
    assert entry["request_statistics"]["inter_token_gaps_s"]["values"] is None  # raw values: the job's results

    # The comparison matrix compares run means: n is the number of warm runs.
    cmp = api.get(f"/api/v1/experiments/{job.experiment_id}/comparison/?metric=ttft_s").json()
    cell = next(iter(cmp["rows"][0]["cells"].values()))
    assert cell["n"] == 2 and cell["mean"] == pytest.approx(0.275)


def test_export_has_labelled_per_request_columns(api, job):
    r = api.get(f"/api/v1/experiments/{job.experiment_id}/export/?format=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert len(rows) == 3
    header = list(rows[0])
    request_columns = [c for c in header if ".per_request." in c]
    assert request_columns[:9] == [f"ttft_s.per_request.{s}" for s in
                                   ("n", "mean", "median", "p90", "p95", "p99", "std", "min", "max")]
    assert {c.split(".")[0] for c in request_columns} == {"ttft_s", "tpot_s", "inter_token_gaps_s", "e2e_latency_s"}
    assert header.index("ttft_s") < header.index("ttft_s.per_request.n")  # run metrics first
    # The run's own column is its mean; the per-request columns are the job's, on each of its rows.
    assert float(rows[1]["ttft_s"]) == pytest.approx(0.4) and float(rows[2]["ttft_s"]) == pytest.approx(0.15)
    assert [float(row["ttft_s.per_request.p95"]) for row in rows] == pytest.approx([REQUEST_P95] * 3)
    assert {row["inter_token_gaps_s.per_request.n"] for row in rows} == {"8"}

    j = api.get(f"/api/v1/experiments/{job.experiment_id}/export/?format=json")
    runs = json.loads(b"".join(j.streaming_content))
    ExportRuns.model_validate(runs)
    assert runs[1]["request_statistics"]["ttft_s"]["p95"] == pytest.approx(REQUEST_P95)
    assert runs[1]["request_statistics"]["ttft_s"]["scope"] == "request"
    assert runs[1]["request_statistics"]["ttft_s"]["values"] is None


def _cli(monkeypatch: pytest.MonkeyPatch, body: dict[str, Any], *args: str) -> str:
    """Run ``ruckus results show`` against the server's real response body (served without a network)."""

    def connect(server: str | None, token: str | None) -> Api:
        api = Api(Config("http://ruckus.test", "token"))
        api._http = httpx.Client(base_url="http://ruckus.test",
                                 transport=httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
        return api

    monkeypatch.setattr(results_command, "connect", connect)
    monkeypatch.setattr(output, "console", Console(width=400))
    result = CliRunner().invoke(app, ["results", "show", "1", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_shows_per_run_and_per_request_apart(api, job, monkeypatch):
    body = api.get(f"/api/v1/experiments/{job.experiment_id}/results/").json()
    table = _cli(monkeypatch, body, "--metric", "ttft_s")
    assert "ttft_s (s) per run" in table and "ttft_s (s) per request p50 / p95 / p99" in table
    assert "0.2 / 0.755 / 0.951 (n=8)" in table
    assert "0.275 ± 0.18 (2)" in table  # per run: mean ± std over the 2 warm runs' means

    rows = list(csv.DictReader(io.StringIO(_cli(monkeypatch, body, "--metric", "ttft_s", "--format", "csv"))))
    assert float(rows[0]["ttft_s.per_request.p95"]) == pytest.approx(REQUEST_P95)
    assert rows[0]["ttft_s.per_request.n"] == "8"
    assert float(rows[0]["ttft_s_mean"]) == pytest.approx(0.275) and rows[0]["ttft_s_n"] == "2"
