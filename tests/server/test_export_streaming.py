"""The experiment export streams (under WSGI and ASGI), reads runs a chunk at a time, and keeps its format.

The format is checked byte for byte against the implementation it replaced (kept below as the reference), which
read each query's rows for the whole experiment at once.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import warnings
from datetime import UTC, datetime
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.streaming import PIECE_BYTES, SyncStreamingResponse, pieces
from experiments.models import AttemptStatus, Experiment, Job, JobAttempt, JobStatus
from results import selectors
from results.models import JobMetricStatistics, JobResult, RunResult, SampleResult, StatisticsScope
from results.views import csv_cell
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


# --- the reference: the export as it was before it streamed in chunks ----------------------------------------------


#: Whether the export shows each job's scoring status (added while results moved to a scoring worker).
SHOWS_SCORING = "scoring_status" in selectors.EXPORT_BASE_COLUMNS


def _reference_runs(experiment: Experiment) -> list[dict[str, Any]]:
    """Every run as the former ``selectors.export_runs`` made it."""
    scoring = dict(JobResult.objects.filter(job__experiment=experiment).values_list("job_id", "scoring_status"))
    request_statistics: dict[int, dict[str, dict[str, Any]]] = {}
    rows = JobMetricStatistics.objects.filter(job__experiment=experiment, scope=StatisticsScope.REQUEST).defer("values")
    for s in rows:
        request_statistics.setdefault(s.job_id, {})[s.metric] = s.as_dict(values=False)
    scoring = dict(JobResult.objects.filter(job__experiment=experiment).values_list("job_id", "scoring_status"))
    qs = (
        RunResult.objects.filter(job__experiment=experiment)
        .select_related("job", "job__agent", "attempt")
        .prefetch_related("samples")
        .order_by("job_id", "run_index")
    )
    out = []
    for run in qs:
        job = run.job
        out.append({
            "experiment": experiment.pk,
            "job": job.pk,
            "model": job.model_name,
            "runtime": job.runtime_name,
            "agent": str(job.agent_id) if job.agent_id else None,
            "agent_name": job.agent.name if job.agent else None,
            "hardware_fingerprint": job.hardware_fingerprint,
            "attempt": run.attempt.number if run.attempt else None,
            "run_index": run.run_index,
            "cold_start": run.cold_start,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "scoring_status": scoring.get(job.pk),  # added with results scored off the request path
            "metrics": run.metrics,
            "unavailable_metrics": run.unavailable_metrics,
            "request_statistics": request_statistics.get(job.pk, {}),
            "samples": [selectors.sample_dict(s, timings=True) for s in run.samples.all()],
        })
    return out


class _Echo:
    def write(self, value: str) -> str:
        return value


def _reference_csv(experiment: Experiment) -> bytes:
    """The CSV export as the former view wrote it."""
    names: set[str] = set()
    for metrics in RunResult.objects.filter(job__experiment=experiment).values_list("metrics", flat=True):
        names.update(metrics)
    metrics = selectors.ordered_metric_names(names)
    request_columns = selectors.export_request_columns(experiment)
    writer = csv.writer(_Echo())
    header = (*selectors.EXPORT_BASE_COLUMNS, *metrics, *(column for column, _, _ in request_columns))
    parts = [writer.writerow([csv_cell(c) for c in header])]
    for run in _reference_runs(experiment):
        base = [run[c] for c in selectors.EXPORT_BASE_COLUMNS]
        per_request = [run["request_statistics"].get(m, {}).get(stat, "") for _, m, stat in request_columns]
        parts.append(writer.writerow(
            [csv_cell(v) for v in (*base, *(run["metrics"].get(m, "") for m in metrics), *per_request)]
        ))
    return "".join(parts).encode()


def _reference_json(experiment: Experiment) -> bytes:
    """The JSON export as the former view wrote it."""
    parts = ["["]
    for i, run in enumerate(_reference_runs(experiment)):
        buf = io.StringIO()
        json.dump(run, buf)
        parts.append(("" if i == 0 else ",") + buf.getvalue())
    parts.append("]")
    return "".join(parts).encode()


# --- data ----------------------------------------------------------------------------------------------------------


def _experiment(jobs: int = 3, runs: int = 3) -> Experiment:
    """An experiment with finished jobs: attempts, runs (one with a spreadsheet formula for a model name), samples
    with raw timings, and per-run and per-request statistics; one job's agent has been removed."""
    agents = [AgentFactory(name=f"host-{i}") for i in range(2)]
    experiment = Experiment.objects.create(name="export", task_name="wikipedia_summarization")
    started = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for j in range(jobs):
        agent = agents[j % 2] if j < jobs - 1 else None
        job = Job.objects.create(
            experiment=experiment, agent=agent, model_name="=HYPERLINK(1)" if j == 0 else "smollm2-135m-instruct",
            runtime_name="transformers", hardware_fingerprint=f"cpu:{j}|mem:64", status=JobStatus.COMPLETED, attempt=2,
        )
        JobAttempt.objects.create(job=job, number=1, agent=agent, attempt_token=secrets.token_urlsafe(16),
                                  status=AttemptStatus.LOST)
        attempt = JobAttempt.objects.create(job=job, number=2, agent=agent, attempt_token=secrets.token_urlsafe(16),
                                            status=AttemptStatus.COMPLETED, progress={"stage": "done"})
        if j < 2:  # the last job's result is not stored (its runs alone are)
            JobResult.objects.create(job=job, attempt=attempt, scoring_status="scored" if j == 0 else "scoring")
        for r in range(1, runs + 1):
            metrics = {"e2e_latency_s": 1.0 + r / 10, "output_tokens_per_s": 10.0 * r + j, "rouge1": 0.25}
            if r == 1:
                metrics["model_load_s"] = 2.5
            if j == 1:
                metrics["bandwidth_gbps.cpu.copy"] = 20.0
            run = RunResult.objects.create(
                job=job, attempt=attempt if r > 1 or j != 2 else None, run_index=r, cold_start=r == 1,
                metrics=metrics, unavailable_metrics={"gpu_power_w": "no NVML"}, telemetry={"t": [0, 1]},
                started_at=started, finished_at=started if r != 2 else None,
            )
            for k in range(2):
                SampleResult.objects.create(
                    run=run, sample_id=f"s{k}", title=f"Title, \"{k}\"", output="out\nput", reference="ref",
                    prompt_tokens=10, output_tokens=5 + k, metrics={"ttft_s": 0.1 * (k + 1)},
                    timings={"request_sent_at": 1.0, "inter_token_gaps_s": [0.01, 0.02]}, finish_reason="stop",
                    error="" if k else "timeout",
                )
        for metric in ("ttft_s", "e2e_latency_s"):
            JobMetricStatistics.objects.create(
                job=job, metric=metric, scope=StatisticsScope.REQUEST, n=4, mean=0.5 + j, std=0.1, min=0.1, max=0.9,
                median=0.5, p90=0.8, p95=0.85, p99=0.89, ci_low=0.4 if j else None, ci_high=0.6 if j else None,
                values=[0.1, 0.5, 0.6, 0.9],
            )
        JobMetricStatistics.objects.create(
            job=job, metric="output_tokens_per_s", scope=StatisticsScope.RUN, n=2, mean=25.0, std=5.0, min=20.0,
            max=30.0, median=25.0, p90=29.0, p95=29.5, p99=29.9, values=[20.0, 30.0],
        )
    return experiment


def _body(response: Any) -> bytes:
    assert response.status_code == 200
    assert response.streaming
    return b"".join(response.streaming_content)


# --- tests ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_content_is_byte_for_byte_the_former_format(api, fmt, monkeypatch):
    experiment = _experiment()
    expected = _reference_csv(experiment) if fmt == "csv" else _reference_json(experiment)
    # Chunks of two runs: rows cross chunk boundaries (and a job's runs are split between chunks).
    monkeypatch.setattr(selectors, "EXPORT_CHUNK_SIZE", 2)
    response = api.get(f"/api/v1/experiments/{experiment.pk}/export/?format={fmt}")
    assert isinstance(response, SyncStreamingResponse)
    assert response["Content-Disposition"] == f'attachment; filename="ruckus-experiment-{experiment.pk}.{fmt}"'
    body = _body(response)
    assert body == expected
    if fmt == "json":
        runs = json.loads(body)
        assert len(runs) == 9 and runs[0]["samples"][0]["timings"]["inter_token_gaps_s"] == [0.01, 0.02]
        assert runs[-1]["agent"] is None and runs[6]["attempt"] is None
    else:
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert len(rows) == 9 and rows[0]["model"] == "'=HYPERLINK(1)"
        assert rows[0]["ttft_s.per_request.p95"] == "0.85"


def test_empty_experiment_exports_a_header_and_an_empty_array(api):
    experiment = Experiment.objects.create(name="empty", task_name="wikipedia_summarization")
    csv_body = _body(api.get(f"/api/v1/experiments/{experiment.pk}/export/?format=csv"))
    assert csv_body == _reference_csv(experiment) and csv_body.startswith(b"experiment,job,")
    assert _body(api.get(f"/api/v1/experiments/{experiment.pk}/export/?format=json")) == b"[]"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_queries_grow_with_chunks_not_runs(api, fmt, monkeypatch):
    """Each chunk of runs costs the same few queries (its samples, its jobs' statistics), never one per run."""
    monkeypatch.setattr(selectors, "EXPORT_CHUNK_SIZE", 3)
    counts = []
    for jobs in (2, 4, 6):  # 3 runs each: 2, 4 and 6 chunks
        experiment = _experiment(jobs=jobs)
        with CaptureQueriesContext(connection) as ctx:
            _body(api.get(f"/api/v1/experiments/{experiment.pk}/export/?format={fmt}"))
        counts.append(len(ctx.captured_queries))
    per_two_chunks = counts[1] - counts[0]
    assert counts[2] - counts[1] == per_two_chunks
    assert per_two_chunks <= 2 * (2 if fmt == "json" else 1), counts


def test_the_csv_export_reads_no_samples(api):
    experiment = _experiment(jobs=1)
    with CaptureQueriesContext(connection) as ctx:
        _body(api.get(f"/api/v1/experiments/{experiment.pk}/export/?format=csv"))
    assert not [q for q in ctx.captured_queries if "results_sampleresult" in q["sql"]]


def test_export_streams_piece_by_piece_under_asgi(api):
    """Under ASGI (daphne) Django reads a plain synchronous iterator whole before sending anything; this one is
    sent piece by piece, without Django's warning that it had to."""
    experiment = _experiment(jobs=2)
    response = api.get(f"/api/v1/experiments/{experiment.pk}/export/?format=json")

    async def read() -> list[bytes]:
        return [piece async for piece in response]  # what Django's ASGI handler does

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        body = b"".join(async_to_sync(read)())
    assert body == _reference_json(experiment)


def test_sync_streaming_response_makes_each_piece_when_asked():
    made: list[int] = []

    def rows():
        for i in range(5):
            made.append(i)
            yield f"row {i}\n"

    response = SyncStreamingResponse(rows())

    async def first_two() -> list[bytes]:
        out = []
        async for piece in response:
            out.append(piece)
            if len(out) == 2:
                break
        return out

    assert async_to_sync(first_two)() == [b"row 0\n", b"row 1\n"]
    assert made == [0, 1]  # nothing was read ahead


def test_pieces_sends_the_first_part_at_once_then_gathers_the_rest():
    parts = ["[", *("x" * 1000 for _ in range(200)), "]"]
    out = list(pieces(parts))
    assert out[0] == b"["
    assert all(len(p) >= PIECE_BYTES for p in out[1:-1]) and b"".join(out) == "".join(parts).encode()
    assert list(pieces([])) == []
