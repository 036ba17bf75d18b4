"""Every list endpoint makes the same few queries per page whatever the page size (no query per row).

Each list is filled with more rows than the larger page, then read at ``limit=5`` and ``limit=50``: the two pages
must cost the same number of queries, and few. The reads that nest many rows (an experiment's results, comparison
and plan over its jobs; a job's detail over its attempts and transitions) must not grow with those rows either.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Agent
from common.protocol import BenchmarkFigure, HardwareBenchmarkResult
from common.stats import describe
from experiments.models import AttemptStatus, Experiment, Job, JobAttempt, JobStatus
from results.models import JobMetricStatistics, JobResult, RunResult, StatisticsScope
from tests.factories import AgentFactory, UserFactory
from tests.server.conftest import client_for

pytestmark = pytest.mark.django_db

#: More rows than the larger page.
ROWS = 60
#: The most queries a page may make (authentication, count, the page, its prefetches).
MAX_QUERIES = 8


def _queries(api, path: str) -> int:
    """Queries made to answer ``GET path`` (which must succeed)."""
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(path)
    assert response.status_code == 200, response.content[:300]
    return len(ctx.captured_queries)


def _jobs(experiment: Experiment, agents: list[Agent], n: int) -> list[Job]:
    """``n`` jobs of an experiment over the agents, in every status, each running or finished one with attempts."""
    statuses = [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.FAILED]
    jobs = Job.objects.bulk_create(
        Job(experiment=experiment, agent=agents[i % len(agents)], model_spec={"name": "smollm2-135m-instruct"},
            runtime_spec={"name": "transformers", "params": {}}, model_name="smollm2-135m-instruct",
            runtime_name="transformers", status=statuses[i % len(statuses)],
            attempt=0 if i % len(statuses) == 0 else 2)
        for i in range(n)
    )
    JobAttempt.objects.bulk_create(
        JobAttempt(job=job, number=number, agent=job.agent, attempt_token=secrets.token_urlsafe(16),
                   status=AttemptStatus.RUNNING if number == job.attempt else AttemptStatus.LOST,
                   progress={"job_id": str(job.pk), "stage": "running", "run_index": number})
        for job in jobs for number in range(1, job.attempt + 1)
    )
    return jobs


def _give_peaks(agent: Agent) -> None:
    """Store a hardware benchmark result as the agent's latest (its peaks are shown in the agent list)."""
    bench = HardwareBenchmarkResult(
        device="cpu", repeats=3, finished_at=datetime(2026, 1, 1, tzinfo=UTC),
        figures=[BenchmarkFigure(name="bandwidth_gbps", device="cpu", precision="copy", unit="GB/s",
                                 statistics=describe([19.0, 20.0, 19.5], unit="GB/s", peak=True), best=20.0)],
    )
    experiment = Experiment.objects.create(name="peaks", task_name="hardware_benchmark")
    job = Job.objects.create(experiment=experiment, agent=agent, model_name="none", runtime_name="hardware",
                             status=JobStatus.COMPLETED)
    agent.latest_benchmark = JobResult.objects.create(job=job, benchmark=bench.model_dump(mode="json"))
    agent.save(update_fields=["latest_benchmark"])


@pytest.fixture
def fleet() -> list[Agent]:
    """Agents, some with measured peaks (their latest benchmark result is shown in the list)."""
    agents = [AgentFactory(name=f"agent-{i:03d}", labels=["lab"]) for i in range(ROWS)]
    for agent in agents[:3]:
        _give_peaks(agent)
    return agents


@pytest.mark.parametrize("path", [
    "/api/v1/agents/?",
    "/api/v1/agents/?label=lab&",
    "/api/v1/experiments/?",
    "/api/v1/experiments/?status=pending,running&",
    "/api/v1/jobs/?",
    "/api/v1/jobs/?ordering=-updated_at&",
    "/api/v1/jobs/?experiment={experiment}&",
    "/api/v1/jobs/?agent={agent}&",
])
@pytest.mark.parametrize("role", ["fleet-admin", "operator", "viewer"])
def test_list_pages_cost_the_same_queries_whatever_their_size(fleet, path, role):
    owners = [UserFactory(username=f"owner{i}", role="operator") for i in range(3)]
    big = Experiment.objects.create(name="big", task_name="wikipedia_summarization", owner=owners[0])
    _jobs(big, fleet, ROWS)
    for i in range(ROWS):
        small = Experiment.objects.create(name=f"e{i}", task_name="wikipedia_summarization",
                                          owner=owners[i % len(owners)], status="running" if i % 2 else "pending")
        _jobs(small, fleet, 2)
    # The agent filter: every agent has jobs; this one has more than a page of them.
    Job.objects.filter(experiment=big).update(agent=fleet[0])
    user = UserFactory(username=f"reader-{role}", role=role)
    api = client_for(user)
    url = path.format(experiment=big.pk, agent=fleet[0].pk)
    small_page, large_page = _queries(api, f"{url}limit=5"), _queries(api, f"{url}limit=50")
    assert api.get(f"{url}limit=50").json()["count"] > 50  # the larger page is full
    assert small_page == large_page, f"{url}: {small_page} queries for 5 rows, {large_page} for 50"
    assert large_page <= MAX_QUERIES, f"{url}: {large_page} queries"


def test_job_progress_comes_from_the_prefetched_attempts(api, fleet):
    experiment = Experiment.objects.create(name="e", task_name="wikipedia_summarization")
    jobs = _jobs(experiment, fleet, 8)
    listing = {j["id"]: j for j in api.get(f"/api/v1/jobs/?experiment={experiment.pk}").json()["results"]}
    for job in jobs:
        shown = listing[job.pk]["progress"]
        if job.attempt:
            assert shown["run_index"] == job.attempt  # the current attempt's, not an earlier one's
        else:
            assert shown is None


def test_experiment_list_job_counts_per_status(api, fleet):
    experiment = Experiment.objects.create(name="e", task_name="wikipedia_summarization")
    _jobs(experiment, fleet, 9)  # statuses cycle pending, running, completed, failed
    empty = Experiment.objects.create(name="empty", task_name="wikipedia_summarization")
    listing = {e["id"]: e for e in api.get("/api/v1/experiments/").json()["results"]}
    assert listing[experiment.pk]["job_counts"] == {"pending": 3, "running": 2, "completed": 2, "failed": 2}
    assert listing[empty.pk]["job_counts"] == {}
    # The single-object views count on their own, with the same answer.
    assert api.get(f"/api/v1/experiments/{experiment.pk}/").json()["job_counts"] == listing[experiment.pk]["job_counts"]


def _results(jobs: list[Job]) -> None:
    """A run and a few statistics per job, as stored results have."""
    runs = RunResult.objects.bulk_create(
        RunResult(job=job, run_index=1, metrics={"output_tokens_per_s": 10.0}) for job in jobs
    )
    JobMetricStatistics.objects.bulk_create(
        JobMetricStatistics(job=run.job, metric=metric, scope=scope, n=1, mean=1.0, std=0.0, min=1.0, max=1.0,
                            median=1.0, p90=1.0, p95=1.0, p99=1.0, values=[1.0])
        for run in runs
        for metric, scope in (("output_tokens_per_s", StatisticsScope.RUN), ("ttft_s", StatisticsScope.REQUEST))
    )


@pytest.mark.parametrize("path", [
    "/api/v1/experiments/{experiment}/",
    "/api/v1/experiments/{experiment}/plan/",
    "/api/v1/experiments/{experiment}/results/",
    "/api/v1/experiments/{experiment}/comparison/",
    "/api/v1/experiments/{experiment}/export/?format=csv",
    "/api/v1/experiments/{experiment}/export/?format=json",
])
def test_experiment_reads_do_not_grow_with_its_jobs(api, fleet, path):
    counts = []
    for n in (3, 30):
        experiment = Experiment.objects.create(name=f"e{n}", task_name="wikipedia_summarization")
        jobs = _jobs(experiment, fleet, n)
        _results(jobs)
        with CaptureQueriesContext(connection) as ctx:
            response = api.get(path.format(experiment=experiment.pk))
            if response.streaming:
                b"".join(response.streaming_content)
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], f"{path}: {counts[0]} queries for 3 jobs, {counts[1]} for 30"


def test_job_detail_does_not_grow_with_its_attempts_and_transitions(api, fleet):
    counts = []
    for attempts in (1, 6):
        experiment = Experiment.objects.create(name=f"e{attempts}", task_name="wikipedia_summarization")
        job = Job.objects.create(experiment=experiment, agent=fleet[0], model_name="m", runtime_name="transformers")
        for number in range(1, attempts + 1):
            job.transition(JobStatus.ASSIGNED, reason=f"attempt {number}", attempt=number)
            JobAttempt.objects.create(job=job, number=number, agent=fleet[0], attempt_token=secrets.token_urlsafe(16))
            job.transition(JobStatus.PENDING, reason="lost")
        counts.append(_queries(api, f"/api/v1/jobs/{job.pk}/"))
        assert len(api.get(f"/api/v1/jobs/{job.pk}/").json()["attempts"]) == attempts
    assert counts[0] == counts[1]
