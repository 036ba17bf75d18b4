"""The experiment export of a load sweep: ``?kind=load_points`` (one row per job and point, figures flattened in CSV)
and ``?kind=load_requests`` (one row per measured request, its raw times), streamed like the runs' export.

Results are stored as an agent's arrive (:func:`results.services.job_result_store`), so the exported figures are the
server's own, and each is checked against the load endpoint's (``GET /api/v1/experiments/{id}/load/``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rich.console import Console
from typer.testing import CliRunner

from common.catalog import task_params
from common.loadcolumns import LOAD_POINT_COLUMNS, LOAD_REQUEST_COLUMNS, flatten_point
from common.protocol import LoadPointRun, LoadSweepRun, MultiRunJobResult, RequestRecord
from common.protocol.load import LoadSpec
from experiments.models import Experiment
from experiments.services import experiment_create
from results.services import job_result_store
from ruckus_cli import output
from ruckus_cli.client import Api
from ruckus_cli.commands import experiments as experiments_command
from ruckus_cli.commands import results as results_command
from ruckus_cli.config import Config
from ruckus_cli.main import app as cli_app
from tests.factories import AgentFactory, agent_info

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SPEC = {
    "request_rate": [2, "inf"],
    "num_requests": 4,
    "seed": 1,
    "slo": {"ttft_ms": 100, "percentile": 50},
    "prompts": {"source": "synthetic", "input_tokens": 16, "output_tokens": 4},
}


def _requests(index: int) -> list[RequestRecord]:
    """Four requests of a point: at point 1 (``inf``) the last one fails and the third times out."""
    out = []
    for i in range(4):
        ttft = 0.05 * (i + 1) * (index + 1)
        out.append(RequestRecord(scheduled_s=0.5 * i, sent_s=0.5 * i + 0.001, ttft_s=ttft, e2e_s=ttft + 0.3,
                                 itl_s=[0.1, 0.1, 0.1], prompt_tokens=16, output_tokens=4))
    if index == 1:
        out[2] = out[2].model_copy(update={"timed_out": True, "e2e_s": None, "itl_s": [0.1]})
        out[3] = RequestRecord(scheduled_s=1.5, sent_s=1.501, error="=HYPERLINK(\"x\") connection reset")
    return out


def _sweep(job_id: int, spec: LoadSpec) -> MultiRunJobResult:
    """A job's result: its sweep of two points, the second stopped early (as an agent would send it)."""
    points = [
        LoadPointRun(index=i, request_rate=rate, duration_s=2.5 + i, requests=_requests(i), power_w=100.0 + i)
        for i, rate in enumerate(spec.points())
    ]
    return MultiRunJobResult(
        job_id=str(job_id), attempt=1, attempt_token="t" * 16, task="wikipedia_summarization",
        model="smollm2-135m-instruct", runtime="openai", runs_per_job=1, runs=[],
        load=LoadSweepRun(mode="request_rate", spec=spec, points=points, stopped_early="latency exploded"),
    )


FORMULA_NAME = "=cmd|' /C calc'!A0"


def _experiment(agents: int = 2, *, load: dict[str, Any] | None = SPEC, store: bool = True, prefix: str = "host"):
    """An experiment on every agent, ``agents`` more made for it (the first named like a formula when ``prefix``
    is ``host``), each job's sweep stored unless ``store`` is false."""
    for i in range(agents):
        name = FORMULA_NAME if i == 0 and prefix == "host" else f"{prefix}-{i}"
        AgentFactory(name=name, cost_per_hour=2 if i == 0 else None)
    exp = experiment_create(
        name="load",
        task_name="wikipedia_summarization", task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": "smollm2-135m-instruct"}],
        runtimes=[{"name": "openai", "params": {"base_url": "https://api.example.com/v1"}}],
        agents={"all": True},
        runs_per_job=1,
        load=LoadSpec.model_validate(load).model_dump(mode="json") if load else None,
    )
    if store and load:
        for job in exp.jobs.order_by("id"):
            job_result_store(job=job, result=_sweep(job.pk, exp.load_spec))
    return exp


def _export(api, exp, kind: str, fmt: str):
    response = api.get(f"/api/v1/experiments/{exp.pk}/export/", {"format": fmt, "kind": kind})
    assert response.status_code == 200, response
    return b"".join(response.streaming_content).decode()


def test_load_points_csv_has_a_row_per_job_and_point_with_the_endpoints_figures(api):
    exp = _experiment()
    text = _export(api, exp, "load_points", "csv")
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == LOAD_POINT_COLUMNS
    rows = list(reader)
    cells = api.get(f"/api/v1/experiments/{exp.pk}/load/").json()["cells"]
    assert [(int(r["job"]), int(r["index"])) for r in rows] == [(c["job"], p["index"]) for c in cells
                                                                for p in c["points"]]
    for row, (cell, point) in zip(rows, [(c, p) for c in cells for p in c["points"]], strict=True):
        flat = flatten_point(point)
        for column in ("completed", "failed", "timed_out", "ttft_s_p99", "ttft_s_median", "e2e_s_mean",
                       "itl_s_count", "goodput", "output_throughput", "output_tokens_per_dollar"):
            assert row[column] == ("" if flat[column] is None else str(flat[column])), column
        assert row["stopped_early"] == "latency exploded" and row["mode"] == "request_rate"
        assert row["method"] == cell["method"] and row["experiment"] == str(exp.pk)
    first, burst = rows[0], rows[1]
    assert first["agent_name"] == "'" + FORMULA_NAME  # a spreadsheet shows it, never runs it
    assert first["cost_per_hour"] == "2.0000" and first["request_rate"] == "2.0" and burst["request_rate"] == "inf"
    assert first["ttft_s_median"] == "0.125" and first["slo_met"] == "False"  # median of 0.05..0.2: 0.125 > 0.1 s
    assert (burst["completed"], burst["failed"], burst["timed_out"]) == ("2", "1", "1")
    assert rows[2]["cost_per_hour"] == "" and rows[2]["output_tokens_per_dollar"] == ""


def test_load_points_json_holds_the_endpoints_points(api):
    exp = _experiment()
    rows = json.loads(_export(api, exp, "load_points", "json"))
    cells = api.get(f"/api/v1/experiments/{exp.pk}/load/").json()["cells"]
    points = [p for c in cells for p in c["points"]]
    assert len(rows) == len(points) == 4
    for row, point in zip(rows, points, strict=True):
        assert {key: row[key] for key in point} == point  # the figures as the endpoint has them (nested latencies)
        assert row["agent_name"] in (FORMULA_NAME, "host-1") and row["mode"] == "request_rate"


def test_load_requests_csv_has_every_measured_request_with_its_raw_times(api):
    exp = _experiment(agents=1)
    reader = csv.DictReader(io.StringIO(_export(api, exp, "load_requests", "csv")))
    assert tuple(reader.fieldnames or ()) == LOAD_REQUEST_COLUMNS
    rows = list(reader)
    assert [(r["point"], r["request"]) for r in rows] == [(str(p), str(i)) for p in (0, 1) for i in range(4)]
    first = rows[0]
    assert (first["scheduled_s"], first["sent_s"], first["ttft_s"], first["e2e_s"]) == ("0.0", "0.001", "0.05", "0.35")
    assert first["itl_s"] == "[0.1,0.1,0.1]" and first["output_tokens"] == "4" and first["request_rate"] == "2.0"
    assert first["timed_out"] == "False" and first["error"] == ""
    timed_out, failed = rows[6], rows[7]
    assert timed_out["timed_out"] == "True" and timed_out["e2e_s"] == "" and timed_out["request_rate"] == "inf"
    assert failed["error"] == "'=HYPERLINK(\"x\") connection reset" and failed["ttft_s"] == ""
    assert failed["itl_s"] == "[]" and failed["agent_name"] == "'" + FORMULA_NAME


def test_load_requests_json(api):
    exp = _experiment(agents=1)
    response = api.get(f"/api/v1/experiments/{exp.pk}/export/?format=json&kind=load_requests")
    assert response["Content-Disposition"] == f'attachment; filename="ruckus-experiment-{exp.pk}-load-requests.json"'
    rows = json.loads(b"".join(response.streaming_content))
    assert len(rows) == 8 and set(rows[0]) == set(LOAD_REQUEST_COLUMNS)
    assert rows[7]["error"] == "=HYPERLINK(\"x\") connection reset" and rows[7]["ttft_s"] is None
    assert rows[6]["timed_out"] is True and rows[6]["request_rate"] == "inf" and rows[6]["itl_s"] == [0.1]


def test_an_unknown_kind_is_a_400_naming_it(api):
    exp = _experiment(agents=1, store=False)
    response = api.get(f"/api/v1/experiments/{exp.pk}/export/?kind=points")
    assert response.status_code == 400
    assert "unsupported export kind 'points'" in response.json()["kind"][0]
    assert "load_points" in response.json()["kind"][0]


def test_an_experiment_without_a_sweep_exports_no_load_rows(api):
    exp = _experiment(agents=1, load=None)
    assert _export(api, exp, "load_points", "csv").splitlines() == [",".join(LOAD_POINT_COLUMNS)]
    assert json.loads(_export(api, exp, "load_requests", "json")) == []
    # The runs export is what it was: ?kind=runs is the default.
    default = api.get(f"/api/v1/experiments/{exp.pk}/export/?format=csv")
    assert _export(api, exp, "runs", "csv") == b"".join(default.streaming_content).decode()
    assert default["Content-Disposition"] == f'attachment; filename="ruckus-experiment-{exp.pk}.csv"'


def test_jobs_without_points_yet_have_no_rows(api):
    exp = _experiment(agents=2, store=False)
    assert _export(api, exp, "load_points", "csv").splitlines() == [",".join(LOAD_POINT_COLUMNS)]
    assert json.loads(_export(api, exp, "load_requests", "json")) == []


def test_the_load_points_export_makes_the_same_queries_whatever_the_number_of_jobs(api):
    small = _experiment(agents=2)
    with CaptureQueriesContext(connection) as few:
        _export(api, small, "load_points", "csv")
    large = _experiment(agents=4, prefix="more")  # six agents now: six jobs
    with CaptureQueriesContext(connection) as many:
        text = _export(api, large, "load_points", "csv")
    assert len(text.splitlines()) == 1 + 6 * 2
    assert len(many.captured_queries) == len(few.captured_queries)


# --- the CLI over this server's API: what it prints comes from the real endpoints ----------------------------------


class _DjangoTransport(httpx.BaseTransport):
    """Sends the CLI's requests to this test's server (Django's test client) instead of the network."""

    def __init__(self, client) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.client.generic(request.method, request.url.raw_path.decode(), data=request.content,
                                       content_type=request.headers.get("content-type", "application/json"))
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return httpx.Response(response.status_code, headers=dict(response.items()), content=body)


@pytest.fixture
def cli(api, monkeypatch: pytest.MonkeyPatch):
    """Runs the CLI against this test's server; returns its output (exit code 0 required)."""

    def connect(server: str | None, token: str | None) -> Api:
        client = Api(Config("http://ruckus.test", "token"))
        client._http = httpx.Client(base_url="http://ruckus.test", transport=_DjangoTransport(api))
        return client

    for module in (results_command, experiments_command):
        monkeypatch.setattr(module, "connect", connect)
    monkeypatch.setattr(output, "console", Console(width=400))
    monkeypatch.setattr(results_command, "console", output.console)
    monkeypatch.setattr(experiments_command, "console", output.console)

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli_app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    return run


def test_the_cli_shows_and_exports_a_sweep_created_from_the_example(api, cli, tmp_path):
    AgentFactory(name="gpu-1", cost_per_hour=3, info=agent_info(runtimes=("vllm",), gpus=[("NVIDIA H100", 80)]))
    planned = cli("experiments", "plan", "-f", str(EXAMPLES / "load-rate-slo.json"))
    assert "Load: one sweep per job over 6 request rate point(s) (0.5, 1.0, 2.0, 4.0, 8.0, inf)" in planned
    created = cli("experiments", "create", "-f", str(EXAMPLES / "load-rate-slo.json"))
    sweep = ("request rate sweep 0.5, 1, 2, 4, 8, inf req/s (poisson arrivals), 100 requests per point, synthetic "
             "prompts of 256 tokens, 64 out; p99 TTFT ≤ 1000 ms, TPOT ≤ 100 ms; error rate ≤ 1%")
    assert f"Each job runs a {sweep}" in created
    exp = Experiment.objects.get(pk=int(created.split("#")[1].split()[0]))
    assert f"task wikipedia_summarization, load: {sweep}" in cli("experiments", "show", str(exp.pk))
    job = exp.jobs.get()
    spec = exp.load_spec
    points = []
    for index, rate in enumerate(spec.points()):
        # The TTFT grows with the rate: 0.2 s at the first point, 1.4 s at the last (the SLO is 1 s at p99).
        requests = [RequestRecord(scheduled_s=0.1 * i, sent_s=0.1 * i, ttft_s=0.2 + 0.2 * index + 0.001 * i,
                                  e2e_s=1.0 + 0.3 * index, itl_s=[0.01] * 63, prompt_tokens=256, output_tokens=64)
                    for i in range(10)]
        points.append(LoadPointRun(index=index, request_rate=rate, duration_s=10.0 / min(float(rate), 20.0),
                                   requests=requests, power_w=350.0))
    job_result_store(job=job, result=MultiRunJobResult(
        job_id=str(job.pk), attempt=1, attempt_token="t" * 16, task="wikipedia_summarization",
        model="smollm2-135m-instruct", runtime="vllm", runs_per_job=1, runs=[],
        load=LoadSweepRun(mode="request_rate", spec=spec, points=points)))

    text = cli("results", "show", str(exp.pk))
    cell = api.get(f"/api/v1/experiments/{exp.pk}/load/").json()["cells"][0]
    best = cell["max_goodput"]
    assert best is not None and best["load"] == 4.0  # TTFT 1.0 s at 8 req/s: over the SLO
    row = next(line for line in text.splitlines() if "gpu-1" in line)
    assert f"{best['goodput']:.4g} req/s @ 4 req/s" in row and "@ inf req/s" in row
    assert f"{best['output_tokens_per_dollar']:,.0f}" in row
    points_text = cli("results", "load", str(exp.pk))
    assert "│ 8 req/s" in points_text and "SLO met" in points_text
    assert next(line for line in points_text.splitlines() if "│ 0.5 req/s" in line).count("yes") == 1
    one = cli("results", "load", str(exp.pk), "--job", str(job.pk))
    assert f"Job #{job.pk}: smollm2-135m-instruct / vllm on gpu-1" in one and "p99 TTFT ≤ 1000 ms" in one
    assert len(json.loads(cli("results", "load", str(exp.pk), "--job", str(job.pk), "--json"))["points"][0]["raw"][
        "ttft_s"]) == 10

    # The CLI's CSV and the server's export are the same file (no name here needs a formula guard).
    exported = _export(api, exp, "load_points", "csv")
    assert cli("results", "load", str(exp.pk), "--format", "csv").replace("\r\n", "\n") == exported.replace(
        "\r\n", "\n")
    cli("results", "export", str(exp.pk), "-o", str(tmp_path / "requests.csv"), "--kind", "load_requests")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "requests.csv").read_text())))
    assert len(rows) == 60 and rows[-1]["request_rate"] == "inf" and rows[-1]["ttft_s"] == "1.209"
