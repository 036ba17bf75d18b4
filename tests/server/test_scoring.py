"""Results scored off the request path: the scoring queue and its workers, what the API shows meanwhile, the
queries of a result POST, and an experiment's status when its jobs finish at the same moment."""

from __future__ import annotations

import csv
import io
import json
import secrets
import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from common.catalog import task_params
from common.metrics import ROUGE_METRICS
from common.protocol import MultiRunJobResult, SampleResult, SingleRunResult
from common.statuses import AttemptStatus, ExperimentStatus, JobStatus, ScoringStatus
from experiments.models import Experiment, JobAttempt
from experiments.services import experiment_create
from results import scoring
from results.api_schemas import ExperimentResults, JobResults
from results.models import JobMetricStatistics, JobResult, RunResult
from results.models import SampleResult as StoredSample
from results.scoring import ScoringThread, pending_count, score_all_pending, score_pending
from results.services import job_result_store
from scheduling.callbacks import handle_result
from tests.factories import AgentFactory, job_result
from tests.server.test_rouge import reference_scores

# --- the scoring queue ----------------------------------------------------------------------------------------------

def _experiment(agents: list, *, runs: int = 3, name: str = "scoring") -> Experiment:
    return experiment_create(
        name=name,
        task_name="wikipedia_summarization", task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"ids": [str(a.pk) for a in agents]}, runs_per_job=runs,
    )


def _running(job, agent) -> JobAttempt:
    attempt = JobAttempt.objects.create(job=job, number=1, agent=agent, attempt_token=secrets.token_urlsafe(16),
                                        status=AttemptStatus.RUNNING)
    job.transition(JobStatus.ASSIGNED, reason="test", attempt=1, agent=agent)
    job.transition(JobStatus.RUNNING, reason="test")
    return attempt


def _agent_client(agent) -> APIClient:
    credential = agent.set_credential()
    agent.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    return client


@pytest.mark.django_db
def test_a_result_is_stored_scoring_and_shown_without_figures_until_a_worker_scores_it(api):
    agent = AgentFactory()
    exp = _experiment([agent])
    job = exp.jobs.get()
    attempt = _running(job, agent)
    message = job_result(job.pk, token=attempt.attempt_token).model_dump(mode="json")
    r = _agent_client(agent).post(f"/api/v1/jobs/{job.pk}/result/", message, format="json")
    assert r.status_code == 200 and r.json() == {"stored": True, "status": "completed"}

    # Stored and final, not scored yet: the figures are absent and the API says why.
    stored = JobResult.objects.get(job=job)
    assert stored.scoring_status == ScoringStatus.SCORING and stored.scored_at is None
    assert not JobMetricStatistics.objects.filter(job=job).exists()
    assert all("rouge1" not in s.metrics for s in StoredSample.objects.filter(run__job=job))
    assert pending_count() == 1
    body = api.get(f"/api/v1/jobs/{job.pk}/results/").json()
    JobResults.model_validate(body)
    assert body["scoring_status"] == "scoring" and body["statistics"] == {} and body["request_statistics"] == {}
    assert body["efficiency"] is None and body["statistics_source"] is None
    assert all("rouge1" not in run["metrics"] for run in body["runs"])
    agg = api.get(f"/api/v1/experiments/{exp.pk}/results/").json()
    ExperimentResults.model_validate(agg)
    assert agg["scoring"] == 1 and agg["jobs"][0]["scoring_status"] == "scoring" and agg["jobs"][0]["statistics"] == {}
    cell = api.get(f"/api/v1/experiments/{exp.pk}/comparison/?metric=rougeL").json()["rows"][0]["cells"]
    assert [c["scoring_status"] for c in cell.values()] == ["scoring"]
    assert all(c["mean"] is None for c in cell.values())
    export = json.loads(b"".join(api.get(f"/api/v1/experiments/{exp.pk}/export/?format=json").streaming_content))
    assert {run["scoring_status"] for run in export} == {"scoring"}
    csv_rows = list(csv.DictReader(io.StringIO(
        b"".join(api.get(f"/api/v1/experiments/{exp.pk}/export/?format=csv").streaming_content).decode())))
    assert {row["scoring_status"] for row in csv_rows} == {"scoring"}

    # A worker scores it: ROUGE per sample (as rouge-score computes it), run means, statistics.
    assert score_pending() == 1
    stored.refresh_from_db()
    assert stored.scoring_status == ScoringStatus.SCORED and stored.scoring_error == "" and stored.scored_at
    paris = StoredSample.objects.filter(run__job=job, run__run_index=2, sample_id="Paris").get()
    sample = job_result(job.pk).runs[1].samples[0]
    assert {k: paris.metrics[k] for k in ROUGE_METRICS} == reference_scores(sample.output, sample.reference)
    run = RunResult.objects.get(job=job, run_index=2)
    assert run.metrics["rouge1"] == pytest.approx(paris.metrics["rouge1"] / 2)  # the other sample scores 0
    assert run.metrics["e2e_latency_s"] == 1.1  # the agent's own metrics stay
    assert JobMetricStatistics.objects.filter(job=job, metric="rougeL").get().n == 2
    body = api.get(f"/api/v1/jobs/{job.pk}/results/").json()
    JobResults.model_validate(body)
    assert body["scoring_status"] == "scored" and body["statistics"]["rougeL"]["n"] == 2
    assert body["statistics_source"] == "warm"
    agg = api.get(f"/api/v1/experiments/{exp.pk}/results/").json()
    assert agg["scoring"] == 0 and agg["jobs"][0]["statistics"]["rouge1"]["n"] == 2
    # Nothing is left to score; a replayed result changes nothing.
    assert score_pending() == 0
    r = _agent_client(agent).post(f"/api/v1/jobs/{job.pk}/result/", message, format="json")
    assert r.json()["stored"] is False
    assert JobResult.objects.get(job=job).scoring_status == ScoringStatus.SCORED


@pytest.mark.django_db
def test_scoring_announces_the_job_with_a_new_updated_at(django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("core.events._publish", lambda event, object_id: sent.append((event, object_id)))
    agent = AgentFactory()
    job = _experiment([agent]).jobs.get()
    job_result_store(job=job, result=job_result(job.pk))
    job.refresh_from_db()
    before = job.updated_at
    with django_capture_on_commit_callbacks(execute=True):
        assert score_pending() == 1
    job.refresh_from_db()
    assert job.updated_at > before
    assert ("job.updated", job.pk) in sent


@pytest.mark.django_db
def test_a_result_that_cannot_be_scored_fails_with_the_reason_and_the_others_are_scored(monkeypatch):
    agents = [AgentFactory(name=f"h{i}") for i in range(3)]
    jobs = list(_experiment(agents).jobs.order_by("id"))
    bad = jobs[1]
    for job in jobs:
        result = job_result(job.pk)
        if job == bad:
            for run in result.runs:
                run.samples[0].output = "POISON output"
        job_result_store(job=job, result=result)
    real = scoring.rouge_scores_many

    def fussy(pairs):
        if any(o.startswith("POISON") for o, _ in pairs):
            raise ValueError("cannot tokenize this")
        return real(pairs)

    monkeypatch.setattr(scoring, "rouge_scores_many", fussy)
    assert score_all_pending() == 3
    states = dict(JobResult.objects.values_list("job_id", "scoring_status"))
    assert states == {jobs[0].pk: "scored", bad.pk: "failed", jobs[2].pk: "scored"}
    failed = JobResult.objects.get(job=bad)
    assert "ROUGE of sample" in failed.scoring_error and "ValueError: cannot tokenize this" in failed.scoring_error
    # What could be computed still is: the statistics of its other metrics, and the ROUGE of its other samples.
    assert JobMetricStatistics.objects.filter(job=bad, metric="output_tokens_per_s").exists()
    assert JobMetricStatistics.objects.filter(job=jobs[0], metric="rougeL").exists()


@pytest.mark.django_db
def test_run_scoring_worker_once_scores_what_is_waiting(capsys):
    agents = [AgentFactory(name=f"w{i}") for i in range(2)]
    for job in _experiment(agents).jobs.all():
        job_result_store(job=job, result=job_result(job.pk))
    call_command("run_scoring_worker", "--once", "--batch", "1")
    assert "scored 2 result(s)" in capsys.readouterr().out
    assert pending_count() == 0
    assert set(JobResult.objects.values_list("scoring_status", flat=True)) == {"scored"}


@pytest.mark.django_db(transaction=True)  # the scheduler drops its connections between passes, as in production
def test_run_scheduler_once_scores_unless_told_not_to():
    job = _experiment([AgentFactory()], name="scheduler").jobs.get()
    job_result_store(job=job, result=job_result(job.pk))
    call_command("run_scheduler", "--once", "--no-scoring")
    assert pending_count() == 1
    call_command("run_scheduler", "--once")
    assert pending_count() == 0
    assert JobResult.objects.get(job=job).scoring_status == ScoringStatus.SCORED


@pytest.mark.django_db
def test_run_scoring_worker_refuses_bad_options():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--processes must be at least 1, not 0"):
        call_command("run_scoring_worker", "--processes", "0")
    with pytest.raises(CommandError, match="--batch must be at least 1"):
        call_command("run_scoring_worker", "--batch", "0")


# --- workers in parallel (real transactions, one connection per thread) --------------------------------------------

def _in_thread(target, *args):
    """Run ``target`` in a thread with its own database connection; return the thread and its outcome box."""
    box: dict = {}

    def body():
        try:
            box["value"] = target(*args)
        except BaseException as exc:  # handed to the test, which re-raises it
            box["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread, box


@pytest.mark.django_db(transaction=True)
def test_workers_share_the_queue_and_score_each_result_once():
    agents = [AgentFactory(name=f"p{i}") for i in range(12)]
    jobs = list(_experiment(agents, name="queue").jobs.order_by("id"))
    for job in jobs:
        job_result_store(job=job, result=job_result(job.pk))
    start = threading.Barrier(3)

    def worker():
        start.wait(10)
        total = 0
        while done := score_pending(limit=2):
            total += done
        return total

    runs = [_in_thread(worker) for _ in range(3)]
    for thread, _ in runs:
        thread.join(60)
    for _, box in runs:
        assert "error" not in box, box.get("error")
    assert sum(box["value"] for _, box in runs) == len(jobs)  # each result claimed by exactly one worker
    assert pending_count() == 0
    # One set of statistics per job (a result scored twice would have been replaced, not doubled, but counted twice).
    assert JobMetricStatistics.objects.filter(metric="rougeL").count() == len(jobs)


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_dies_mid_way_leaves_its_results_to_another(monkeypatch):
    agents = [AgentFactory(name=f"d{i}") for i in range(2)]
    jobs = list(_experiment(agents, name="dies").jobs.order_by("id"))
    for job in jobs:
        job_result_store(job=job, result=job_result(job.pk))
    claimed, release = threading.Event(), threading.Event()
    real_write = scoring._write

    def dying_write(scored, now):
        claimed.set()
        release.wait(30)
        raise SystemExit("worker killed")  # like a process that dies: nothing is committed

    monkeypatch.setattr(scoring, "_write", dying_write)
    thread, box = _in_thread(score_pending)
    assert claimed.wait(30)
    # While it holds its claim, another worker skips those results instead of waiting for them.
    monkeypatch.setattr(scoring, "_write", real_write)
    assert score_pending() == 0
    release.set()
    thread.join(30)
    assert isinstance(box.get("error"), SystemExit)
    assert pending_count() == len(jobs)  # rolled back: still waiting
    assert score_all_pending() == len(jobs)
    assert set(JobResult.objects.values_list("scoring_status", flat=True)) == {"scored"}


@pytest.mark.django_db(transaction=True)
def test_the_schedulers_scoring_thread_scores_results_as_they_arrive():
    agent = AgentFactory()
    job = _experiment([agent], name="thread").jobs.get()
    worker = ScoringThread(idle_s=0.05)
    worker.start()
    try:
        job_result_store(job=job, result=job_result(job.pk))
        for _ in range(200):
            if JobResult.objects.get(job=job).scoring_status != ScoringStatus.SCORING:
                break
            threading.Event().wait(0.05)
    finally:
        worker.stop(timeout=30)
    assert not worker.is_alive()
    assert JobResult.objects.get(job=job).scoring_status == ScoringStatus.SCORED and worker.scored == 1


# --- queries of a result POST ---------------------------------------------------------------------------------------

#: Most SQL statements one result POST may take, whatever its number of runs and samples (savepoints aside). It was
#: 28 for 3 runs of 5 samples, and grew with every run, when ROUGE and statistics were computed in the request.
MAX_QUERIES_PER_RESULT = 20


def _big_result(job_id: int, token: str, runs: int, samples: int) -> MultiRunJobResult:
    return MultiRunJobResult(
        job_id=str(job_id), attempt=1, attempt_token=token, task="wikipedia_summarization",
        model="smollm2-135m-instruct", runtime="transformers", runs_per_job=runs,
        runs=[
            SingleRunResult(
                run_index=i + 1, cold_start=i == 0,
                metrics={"e2e_latency_s": 1.0 + i, "output_tokens_per_s": 10.0 + i},
                samples=[
                    SampleResult(id=f"article {k}", title=f"Article {k}", output=f"Output {k} of run {i}.",
                                 reference=f"The reference of article {k}.", output_tokens=5,
                                 metrics={"ttft_s": 0.1, "e2e_latency_s": 1.0})
                    for k in range(samples)
                ],
            )
            for i in range(runs)
        ],
    )


def _post_counting_queries(runs: int, samples: int) -> list[str]:
    """Post a final result of ``runs`` runs of ``samples`` samples; return the SQL it ran (savepoints aside)."""
    agent = AgentFactory()
    job = _experiment([agent], runs=runs, name=f"queries {runs}x{samples}").jobs.get()
    attempt = _running(job, agent)
    client = _agent_client(agent)
    message = _big_result(job.pk, attempt.attempt_token, runs, samples).model_dump(mode="json")
    with CaptureQueriesContext(connection) as queries:
        r = client.post(f"/api/v1/jobs/{job.pk}/result/", message, format="json")
    assert r.status_code == 200 and r.json() == {"stored": True, "status": "completed"}
    assert StoredSample.objects.filter(run__job=job).count() == runs * samples
    # The test's own transaction turns the request's transactions into savepoints: they are not the request's work.
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.mark.django_db
def test_a_result_post_takes_a_bounded_number_of_queries_whatever_its_size():
    small = _post_counting_queries(1, 1)
    big = _post_counting_queries(10, 30)
    listing = "\n".join(sql[:150] for sql in big)
    assert len(big) == len(small), listing
    assert len(big) <= MAX_QUERIES_PER_RESULT, f"{len(big)} queries:\n{listing}"
    # One INSERT for all the runs and one for all the samples; nothing is scored in the request.
    assert sum(sql.startswith('INSERT INTO "results_runresult"') for sql in big) == 1
    assert sum(sql.startswith('INSERT INTO "results_sampleresult"') for sql in big) == 1
    assert not any("results_jobmetricstatistics" in sql for sql in big)


# --- an experiment's status when its jobs finish together -----------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("repeat", range(3))
def test_jobs_finishing_at_the_same_moment_complete_their_experiment(repeat, monkeypatch):
    """Final results of all of an experiment's jobs, committed concurrently, end the experiment ``completed``.

    Each result arrives in its own transaction on its own connection; a barrier holds every one of them just before
    it re-derives the experiment's status, so all the counts happen while the others' job updates are in flight.
    Without the experiment row lock in ``Experiment.refresh_status`` each transaction counts the other jobs as still
    running and the experiment stays ``running`` with every job done.
    """
    size = 4
    agents = [AgentFactory(name=f"race{repeat}-{i}") for i in range(size)]
    exp = _experiment(agents, name=f"race {repeat}", runs=2)
    jobs = list(exp.jobs.order_by("id"))
    assert len(jobs) == size
    attempts = [_running(job, agent) for job, agent in zip(jobs, agents, strict=True)]
    exp.refresh_from_db()
    assert exp.status == ExperimentStatus.RUNNING
    barrier = threading.Barrier(size)
    real_refresh = Experiment.refresh_status

    def refresh_together(self, *args, **kwargs):
        barrier.wait(30)
        return real_refresh(self, *args, **kwargs)

    monkeypatch.setattr(Experiment, "refresh_status", refresh_together)
    posts = [
        _in_thread(handle_result, job.pk, agent, job_result(job.pk, runs=2, token=attempt.attempt_token))
        for job, agent, attempt in zip(jobs, agents, attempts, strict=True)
    ]
    for thread, _ in posts:
        thread.join(60)
    for _, box in posts:
        assert "error" not in box, box.get("error")
        assert box["value"] == {"stored": True, "status": JobStatus.COMPLETED}
    exp.refresh_from_db()
    assert exp.status == ExperimentStatus.COMPLETED
    assert exp.finished_at is not None
