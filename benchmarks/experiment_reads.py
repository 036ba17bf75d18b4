"""Reading a fleet-scale experiment: queries per list page, and the CSV/JSON export's time and memory.

Creates its own Postgres database (``ruckus_bench_reads_<pid>``, dropped at the end; see ``benchdb.py``) and fills
it directly: ``--agents`` fake agents, ``--experiments`` small experiments, and one experiment of ``--jobs`` finished
jobs (each with an attempt and its progress, ``--runs`` runs of ``--samples`` samples with raw timings, and per-run
and per-request statistics: what a real result stores). Then, through the REST API in-process:

- ``lists``: each list endpoint at ``limit`` 5, 50 and 1000: queries, seconds, bytes (a list whose queries grow
  with the page makes one or more queries per row);
- ``reads``: the experiment's results, comparison, plan, and one job's detail (queries should not grow with jobs);
- ``export``: ``GET /experiments/{id}/export/?format=csv|json``, served in-process both as WSGI (Django's test
  client) and as ASGI (Django's ASGI handler, which daphne runs): whether it streams, time to the first byte, total
  time, size, queries (WSGI), and the peak Python memory allocated while the response is produced and read
  (tracemalloc, a separate pass).

Usage::

    python benchmarks/experiment_reads.py [--jobs 1000] [--agents 1000] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import time
import tracemalloc
from typing import Any

from benchdb import QueryCounter, bench_database, django_setup, make_fleet, table

#: Inter-token gaps stored per sample (a 100-token answer).
GAPS_PER_SAMPLE = 100


def _fill(agents: list[Any], n_experiments: int, n_jobs: int, runs: int, samples: int) -> Any:
    """Create the experiments, the big experiment's jobs, attempts, runs, samples and statistics; return it."""
    from django.utils import timezone

    from experiments.models import AttemptStatus, Experiment, Job, JobAttempt, JobStatus
    from results.models import JobMetricStatistics, JobResult, RunResult, SampleResult, StatisticsScope

    rnd = random.Random(1)
    now = timezone.now()
    small = Experiment.objects.bulk_create(
        Experiment(name=f"small {i}", task_name="wikipedia_summarization",
                   model_specs=[{"name": "smollm2-135m-instruct"}],
                   runtime_specs=[{"name": "transformers", "params": {}}], agent_selection={"all": True})
        for i in range(n_experiments)
    )
    Job.objects.bulk_create(
        Job(experiment=e, model_spec={"name": "smollm2-135m-instruct"}, runtime_spec={"name": "transformers"},
            model_name="smollm2-135m-instruct", runtime_name="transformers", agent=agents[j % len(agents)],
            status=(JobStatus.PENDING, JobStatus.RUNNING, JobStatus.COMPLETED)[j % 3])
        for e in small for j in range(5)
    )
    big = Experiment.objects.create(
        name="big", task_name="wikipedia_summarization", model_specs=[{"name": "smollm2-135m-instruct"}],
        runtime_specs=[{"name": "transformers", "params": {}}], agent_selection={"all": True}, runs_per_job=runs,
        status="completed",
    )
    jobs = Job.objects.bulk_create(
        (Job(experiment=big, model_spec={"name": "smollm2-135m-instruct"}, runtime_spec={"name": "transformers"},
             model_name="smollm2-135m-instruct", runtime_name="transformers", agent=agents[j % len(agents)],
             hardware_fingerprint=agents[j % len(agents)].hardware_fingerprint, status=JobStatus.COMPLETED,
             attempt=1, started_at=now, finished_at=now)
         for j in range(n_jobs)),
        batch_size=1000,
    )
    attempts = JobAttempt.objects.bulk_create(
        (JobAttempt(job=job, number=1, agent=job.agent, attempt_token=secrets.token_urlsafe(24),
                    status=AttemptStatus.COMPLETED, progress={"job_id": str(job.pk), "stage": "done",
                                                              "run_index": runs, "runs_total": runs})
         for job in jobs),
        batch_size=1000,
    )
    JobResult.objects.bulk_create(
        (JobResult(job=job, attempt=a, access_mode="white-box", hardware_fingerprint=job.hardware_fingerprint,
                   cold_start={"model_load_s": 2.5}) for job, a in zip(jobs, attempts, strict=True)),
        batch_size=1000,
    )
    run_rows = RunResult.objects.bulk_create(
        (RunResult(job=job, attempt=a, run_index=i + 1, cold_start=i == 0, started_at=now, finished_at=now,
                   metrics={"e2e_latency_s": rnd.uniform(1, 2), "ttft_s": rnd.uniform(0.05, 0.2),
                            "tpot_s": rnd.uniform(0.01, 0.02), "output_tokens_per_s": rnd.uniform(20, 80),
                            "rouge1": rnd.random(), "rougeL": rnd.random()})
         for job, a in zip(jobs, attempts, strict=True) for i in range(runs)),
        batch_size=2000,
    )
    for start in range(0, len(run_rows), 500):
        SampleResult.objects.bulk_create(
            SampleResult(run=run, sample_id=f"article-{k}", title=f"Article {k}", output="Lorem ipsum dolor. " * 8,
                         reference="The reference summary of the article. " * 4, prompt_tokens=900, output_tokens=100,
                         metrics={"ttft_s": rnd.uniform(0.05, 0.2), "e2e_latency_s": rnd.uniform(1, 2)},
                         timings={"request_sent_at": 1.7e9, "first_token_at": 1.7e9 + 0.1, "finished_at": 1.7e9 + 1.5,
                                  "inter_token_gaps_s": [rnd.uniform(0.005, 0.03) for _ in range(GAPS_PER_SAMPLE)]},
                         finish_reason="length")
            for run in run_rows[start:start + 500] for k in range(samples)
        )
    stats = []
    for job in jobs:
        for metric in ("e2e_latency_s", "ttft_s", "tpot_s", "output_tokens_per_s", "rouge1", "rougeL"):
            stats.append(JobMetricStatistics(job=job, metric=metric, scope=StatisticsScope.RUN, n=runs - 1, mean=1.0,
                                             std=0.1, min=0.9, max=1.1, median=1.0, p90=1.1, p95=1.1, p99=1.1,
                                             values=[1.0] * (runs - 1)))
        for metric in ("e2e_latency_s", "ttft_s", "tpot_s"):
            stats.append(JobMetricStatistics(job=job, metric=metric, scope=StatisticsScope.REQUEST,
                                             n=samples * (runs - 1), mean=1.0, std=0.1, min=0.9, max=1.1, median=1.0,
                                             p90=1.1, p95=1.1, p99=1.1, values=[1.0] * (samples * (runs - 1))))
    JobMetricStatistics.objects.bulk_create(stats, batch_size=2000)
    return big


def _get(client: Any, path: str) -> tuple[int, float, int, Any]:
    """GET ``path`` and read the whole body: (queries, seconds, bytes, response)."""
    with QueryCounter() as counter:
        start = time.perf_counter()
        response = client.get(path)
        size = len(b"".join(response.streaming_content) if response.streaming else response.content)
        elapsed = time.perf_counter() - start
    assert response.status_code == 200, (path, response.status_code)
    return counter.count, elapsed, size, response


def _export(client: Any, path: str) -> dict[str, Any]:
    """Time an export (first byte, total), count its queries, then measure its peak memory in a second pass."""
    with QueryCounter() as counter:
        start = time.perf_counter()
        response = client.get(path)
        first = None
        size = 0
        chunks = response.streaming_content if response.streaming else [response.content]
        for chunk in chunks:
            if first is None:
                first = time.perf_counter() - start
            size += len(chunk)
        total = time.perf_counter() - start
    tracemalloc.start()
    response = client.get(path)
    for _chunk in response.streaming_content if response.streaming else [response.content]:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"streaming": response.streaming, "first_byte_s": f"{first or 0:.2f}", "total_s": f"{total:.2f}",
            "MB": f"{size / 1e6:.1f}", "queries": counter.count, "peak_MiB": f"{peak / 2**20:.1f}"}


async def _asgi_get(path: str, query: str, token: str) -> tuple[float | None, int, int]:
    """GET through Django's ASGI handler, as daphne serves it: (seconds to the first body byte, bytes, status)."""
    from django.core.handlers.asgi import ASGIHandler

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query.encode(),
        "headers": [(b"host", b"testserver"), (b"authorization", f"Token {token}".encode())],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }
    requested = False
    never = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await never  # the client stays connected until the response is complete

    first: float | None = None
    size = 0
    status = 0
    start = time.perf_counter()

    async def send(message: dict[str, Any]) -> None:
        nonlocal first, size, status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message.get("body"):
            first = first if first is not None else time.perf_counter() - start
            size += len(message["body"])

    await ASGIHandler()(scope, receive, send)
    return first, size, status


def _export_asgi(path: str, query: str, token: str) -> dict[str, Any]:
    """Time an export served over ASGI (first byte, total), then measure its peak memory in a second pass."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        first, size, status = asyncio.run(_asgi_get(path, query, token))
        total = time.perf_counter() - start
    assert status == 200, status
    # Django warns when it must read a synchronous iterator whole before serving it asynchronously.
    buffered = any("must consume synchronous iterators" in str(w.message) for w in caught)
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        asyncio.run(_asgi_get(path, query, token))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"streaming": not buffered, "first_byte_s": f"{first or 0:.2f}", "total_s": f"{total:.2f}",
            "MB": f"{size / 1e6:.1f}", "queries": "", "peak_MiB": f"{peak / 2**20:.1f}"}


def main() -> None:
    """Set up the database and its data, measure lists, reads and exports, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--experiments", type=int, default=1100, help="small experiments (5 jobs each)")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs of the big experiment")
    parser.add_argument("--runs", type=int, default=3, help="runs per job")
    parser.add_argument("--samples", type=int, default=5, help="samples per run")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    with bench_database("ruckus_bench_reads", keep=args.keep) as url:
        django_setup(url)
        from django.contrib.auth import get_user_model
        from rest_framework.test import APIClient

        start = time.perf_counter()
        agents = make_fleet(args.agents)
        big = _fill(agents, args.experiments, args.jobs, args.runs, args.samples)
        print(f"data: {args.agents} agents, {args.experiments} + 1 experiments, {args.jobs} jobs x {args.runs} runs x "
              f"{args.samples} samples, in {time.perf_counter() - start:.1f} s")
        user = get_user_model().objects.create_superuser("bench", password="bench")
        client = APIClient()
        client.force_authenticate(user)

        rows = []
        lists = {"agents": "/api/v1/agents/?", "experiments": "/api/v1/experiments/?",
                 "jobs": f"/api/v1/jobs/?experiment={big.pk}&"}
        for name, path in lists.items():
            for limit in (5, 50, 1000):
                queries, seconds, size, _ = _get(client, f"{path}limit={limit}")
                rows.append({"endpoint": name, "limit": limit, "queries": queries, "seconds": f"{seconds:.2f}",
                             "MB": f"{size / 1e6:.2f}"})
        print(table(rows))

        job_id = big.jobs.order_by("id").values_list("id", flat=True).first()
        rows = []
        for name, path in {"experiment results": f"/api/v1/experiments/{big.pk}/results/",
                           "comparison": f"/api/v1/experiments/{big.pk}/comparison/",
                           "experiment plan": f"/api/v1/experiments/{big.pk}/plan/",
                           "job detail": f"/api/v1/jobs/{job_id}/",
                           "job results": f"/api/v1/jobs/{job_id}/results/"}.items():
            queries, seconds, size, _ = _get(client, path)
            rows.append({"endpoint": name, "queries": queries, "seconds": f"{seconds:.2f}", "MB": f"{size / 1e6:.2f}"})
        print(table(rows))

        from knox.models import AuthToken

        token = AuthToken.objects.create(user=user)[1]
        rows = []
        for fmt in ("csv", "json"):
            path = f"/api/v1/experiments/{big.pk}/export/"
            rows.append({"export": fmt, "server": "wsgi", **_export(client, f"{path}?format={fmt}")})
            rows.append({"export": fmt, "server": "asgi", **_export_asgi(path, f"format={fmt}", token)})
        print(table(rows))


if __name__ == "__main__":
    main()
