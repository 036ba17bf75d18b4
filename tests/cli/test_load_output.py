"""How the CLI shows load sweeps: ``results show`` compares the jobs of a sweep (max goodput, peak, knee, tokens per
dollar and per joule), ``results load`` prints each point, ``experiments create`` checks a file's ``load`` before
sending it (mocked server, no network; the answers are the JSON of the load endpoints).

The example: one request-rate sweep with SLOs (p99 TTFT ≤ 500 ms, TPOT ≤ 50 ms) on two agents. On ``gpu-1`` the
rates 1, 2 and 4 req/s meet the SLOs and ``inf`` does not; ``cpu-1`` met none and stopped early after 2 req/s.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from common.loadcolumns import LOAD_POINT_COLUMNS
from ruckus_cli import output
from ruckus_cli.client import EXIT_USAGE, Api
from ruckus_cli.commands import experiments as experiments_command
from ruckus_cli.commands import results as results_command
from ruckus_cli.config import Config
from ruckus_cli.main import app

SERVER = "http://ruckus.test"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SLO = {"ttft_ms": 500.0, "tpot_ms": 50.0, "e2e_ms": None, "percentile": 99.0, "max_error_rate": 0.0}


def _latency(median: float, p99: float, count: int = 100) -> dict[str, float]:
    """Statistics of a latency (seconds) as the load endpoints send them."""
    return {"mean": median * 1.1, "median": median, "std": median / 4, "p90": (median + p99) / 2,
            "p95": (median + 3 * p99) / 4, "p99": p99, "min": median / 2, "max": p99 * 1.2, "count": count}


def _point(index: int, rate: float | str, *, out_tps: float, goodput: float | None, slo_met: bool | None,
           ttft: tuple[float, float], failed: int = 0, timed_out: int = 0) -> dict[str, Any]:
    """One point's figures (the keys of ``common.loadmetrics.point_figures``)."""
    return {
        "index": index, "concurrency": None, "request_rate": rate, "completed": 100 - failed - timed_out,
        "failed": failed, "timed_out": timed_out, "error_rate": (failed + timed_out) / 100, "duration_s": 50.0,
        "total_input_tokens": 25600, "total_output_tokens": 6400, "request_throughput": out_tps / 64,
        "output_throughput": out_tps, "total_token_throughput": out_tps * 5, "goodput": goodput,
        "achieved_concurrency": 1.5 * (index + 1), "slo_met": slo_met,
        "ttft_s": _latency(*ttft), "tpot_s": _latency(0.02, 0.04), "itl_s": _latency(0.019, 0.05, 6300),
        "e2e_s": _latency(1.3 + index, 2.0 + index), "power_w": 300.0, "energy_j": 15000.0,
        "energy_per_output_token_j": 15000.0 / 6400, "output_tokens_per_joule": 6400 / 15000.0,
        "output_tokens_per_dollar": out_tps * 3600 / 1.5,
    }


def _gpu_cell() -> dict[str, Any]:
    points = [
        _point(0, 1.0, out_tps=64.0, goodput=1.0, slo_met=True, ttft=(0.05, 0.12)),
        _point(1, 2.0, out_tps=128.0, goodput=2.0, slo_met=True, ttft=(0.06, 0.2)),
        _point(2, 4.0, out_tps=250.0, goodput=3.9, slo_met=True, ttft=(0.08, 0.45)),
        _point(3, "inf", out_tps=310.0, goodput=0.4, slo_met=False, ttft=(2.5, 4.8), timed_out=2),
    ]
    return {
        "job": 11, "status": "completed", "agent_id": "11111111-1111-4111-8111-111111111111", "agent_name": "gpu-1",
        "hardware": "NVIDIA H100 80GB", "model": "smollm2-135m-instruct", "runtime": "vllm", "method": "http",
        "cost_per_hour": "1.5000", "stopped_early": None, "points": points,
        "peak": {"index": 3, "load": "inf", "request_throughput": 310.0 / 64, "output_throughput": 310.0},
        "max_goodput": {"index": 2, "load": 4.0, "goodput": 3.9, "output_throughput": 250.0,
                        "output_tokens_per_dollar": 600000.0, "output_tokens_per_joule": 0.4267},
        "knee": {"index": 2, "load": 4.0, "output_throughput": 250.0, "e2e_median_s": 3.3},
    }


def _cpu_cell() -> dict[str, Any]:
    points = [
        _point(0, 1.0, out_tps=20.0, goodput=0.0, slo_met=False, ttft=(0.9, 1.4)),
        _point(1, 2.0, out_tps=21.0, goodput=0.0, slo_met=False, ttft=(30.0, 61.0), failed=60),
    ]
    for point in points:
        point.update(power_w=None, energy_j=None, energy_per_output_token_j=None, output_tokens_per_joule=None,
                     output_tokens_per_dollar=None)
    return {
        "job": 12, "status": "completed", "agent_id": None, "agent_name": "cpu-1", "hardware": "Xeon [8 cores]",
        "model": "smollm2-135m-instruct", "runtime": "vllm", "method": "http", "cost_per_hour": None,
        "stopped_early": "error rate 60% at point 1 is above early_stop.max_error_rate 50%", "points": points,
        "peak": {"index": 1, "load": 2.0, "request_throughput": 21.0 / 64, "output_throughput": 21.0},
        "max_goodput": None,
        "knee": {"index": 0, "load": 1.0, "output_throughput": 20.0, "e2e_median_s": 1.3},
    }


def _experiment_load() -> dict[str, Any]:
    return {"experiment": 7, "mode": "request_rate", "slo": SLO, "cells": [_gpu_cell(), _cpu_cell()]}


def _job_load() -> dict[str, Any]:
    """The job endpoint's cell: its points carry the raw per-request values too."""
    cell = _gpu_cell()
    for point in cell["points"]:
        point["raw"] = {"ttft_s": [0.05, 0.06], "tpot_s": [0.02], "itl_s": [0.019, 0.021], "e2e_s": [1.3, 1.4]}
    return cell


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A server with experiment 7 (a load sweep) and experiment 8 (plain runs); ``posted`` collects POST bodies."""
    state: dict[str, Any] = {"posted": [], "paths": []}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        state["paths"].append(path)
        if request.method == "POST" and path == "/api/v1/experiments/":
            body = json.loads(request.content)
            state["posted"].append(body)
            return httpx.Response(201, json={"id": 9, "status": "pending", "plan": {"job_count": 2}})
        if path in ("/api/v1/experiments/7/results/", "/api/v1/experiments/8/results/"):
            return httpx.Response(200, json={"experiment": int(path.split("/")[4]), "status": "completed",
                                             "scoring": 0, "unrunnable": [], "metrics": [], "jobs": []})
        if path == "/api/v1/experiments/7/load/":
            return httpx.Response(200, json=_experiment_load())
        if path == "/api/v1/experiments/8/load/":
            return httpx.Response(200, json={"experiment": 8, "mode": None, "slo": None, "cells": []})
        if path == "/api/v1/experiments/7/":
            return httpx.Response(200, json={"id": 7, "status": "completed", "load": {"request_rate": [1, 2, 4, "inf"],
                                                                                     "slo": SLO}})
        if path == "/api/v1/experiments/7/export/":
            state["export_params"] = dict(request.url.params)
            return httpx.Response(200, text="experiment,job,index\n7,11,0\n")
        if path == "/api/v1/experiments/8/":
            return httpx.Response(200, json={"id": 8, "status": "completed", "load": None})
        if path == "/api/v1/jobs/11/load/":
            return httpx.Response(200, json=_job_load())
        return httpx.Response(404, json={"detail": "Not found."})

    def connect(server: str | None, token: str | None) -> Api:
        api = Api(Config(SERVER, "token"))
        api._http = httpx.Client(base_url=SERVER, transport=httpx.MockTransport(handler))
        return api

    for module in (results_command, experiments_command):
        monkeypatch.setattr(module, "connect", connect)
    monkeypatch.setattr(output, "console", Console(width=400))
    monkeypatch.setattr(output, "err", Console(stderr=True, width=400))  # error lines unwrapped
    monkeypatch.setattr(results_command, "console", output.console)
    monkeypatch.setattr(experiments_command, "console", output.console)
    return state


def run(*args: str, code: int = 0) -> str:
    """The CLI's output; fails the test on another exit code."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _line(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


def test_results_show_compares_the_jobs_of_a_sweep(server):
    text = run("results", "show", "7")
    assert "request rate sweep (p99 TTFT ≤ 500 ms, TPOT ≤ 50 ms; error rate ≤ 0%)" in text
    gpu = _line(text, "gpu-1 / NVIDIA H100 80GB")
    assert "3.9 req/s @ 4 req/s" in gpu  # max goodput, at the load it was reached at
    assert "310 @ inf req/s" in gpu  # peak output tokens/s
    assert "4 req/s: 250 tok/s, e2e p50 3300 ms" in gpu  # knee
    assert "600,000" in gpu and "0.4267" in gpu  # tokens per dollar and per joule at max goodput
    cpu = _line(text, "cpu-1 / Xeon [8 cores]")  # the hardware's brackets are text, not markup
    assert "no point met the SLOs" in cpu and "21 @ 2 req/s" in cpu
    assert "error rate 60% at point 1" in cpu
    assert "out tok/$ @ max goodput" in text


def test_results_show_csv_and_json_of_a_sweep(server):
    rows = list(csv.DictReader(io.StringIO(run("results", "show", "7", "--format", "csv"))))
    assert [r["job"] for r in rows] == ["11", "12"]
    assert rows[0]["max_goodput_load"] == "4.0" and rows[0]["max_goodput"] == "3.9"
    assert rows[0]["peak_load"] == "inf" and rows[0]["points"] == "4" and rows[0]["cost_per_hour"] == "1.5000"
    assert rows[1]["max_goodput"] == "" and rows[1]["stopped_early"].startswith("error rate 60%")
    data = json.loads(run("results", "show", "7", "--format", "json"))
    assert data["experiment"] == 7 and data["load"] == _experiment_load()


def test_results_show_without_a_sweep_shows_the_runs(server):
    text = run("results", "show", "8")
    assert "warm runs, cold run apart" in text and "serving under load" not in text


def test_results_load_prints_every_point(server):
    text = run("results", "load", "7")
    assert "Job #11: smollm2-135m-instruct / vllm on gpu-1 (NVIDIA H100 80GB), http, completed" in text
    first = _line(text, "│ 1 req/s")
    assert "100 / 0 / 0" in first and "50.0 / 120.0" in first and "yes" in first  # TTFT p50 / p99 in ms
    best = _line(text, "│ 4 req/s")
    assert "80.0 / 450.0" in best and "max goodput, knee" in best
    burst = _line(text, "│ inf req/s")
    assert "98 / 0 / 2" in burst and "2500.0 / 4800.0" in burst and "│ no" in burst and "peak" in burst
    assert "stopped early: error rate 60% at point 1" in text
    assert "e2e ms p50 / p99" in text and "goodput req/s" in text


def test_results_load_of_one_job_takes_the_experiments_slos(server):
    text = run("results", "load", "7", "--job", "11")
    assert "Job #11" in text and "Job #12" not in text and "p99 TTFT ≤ 500 ms" in text
    assert "/api/v1/jobs/11/load/" in server["paths"] and "/api/v1/experiments/7/load/" not in server["paths"]
    raw = json.loads(run("results", "load", "7", "--job", "11", "--json"))
    assert raw["points"][0]["raw"]["ttft_s"] == [0.05, 0.06]


def test_results_load_json_is_the_apis(server):
    assert json.loads(run("results", "load", "7", "--json")) == _experiment_load()
    assert json.loads(run("results", "load", "7", "--format", "json")) == _experiment_load()


def test_results_load_csv_has_a_row_per_point_with_flat_figures(server):
    text = run("results", "load", "7", "--format", "csv")
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == LOAD_POINT_COLUMNS
    rows = list(reader)
    assert [(r["job"], r["index"]) for r in rows] == [("11", "0"), ("11", "1"), ("11", "2"), ("11", "3"),
                                                      ("12", "0"), ("12", "1")]
    assert rows[2]["ttft_s_p99"] == "0.45" and rows[2]["ttft_s_median"] == "0.08" and rows[2]["mode"] == "request_rate"
    assert rows[3]["request_rate"] == "inf" and rows[3]["slo_met"] == "False" and rows[3]["timed_out"] == "2"
    assert rows[4]["output_tokens_per_joule"] == "" and rows[4]["agent_name"] == "cpu-1"
    assert rows[0]["experiment"] == "7"


def test_a_batch_concurrency_sweep_without_slos(server, monkeypatch: pytest.MonkeyPatch):
    """White-box batches: loads read ``batch N``, no goodput without SLOs, tokens per joule at the peak."""
    cell = _gpu_cell()
    cell.update(runtime="transformers", method="batch", max_goodput=None,
                peak={"index": 3, "load": 8, "request_throughput": 4.8, "output_throughput": 310.0},
                knee={"index": 2, "load": 4, "output_throughput": 250.0, "e2e_median_s": 3.3})
    for point, batch in zip(cell["points"], (1, 2, 4, 8), strict=True):
        point.update(concurrency=batch, request_rate=None, goodput=None, slo_met=None)
    data = {"experiment": 7, "mode": "concurrency", "slo": None, "cells": [cell]}
    monkeypatch.setattr(results_command.load_output, "experiment_load", lambda api, exp_id: data)
    text = run("results", "show", "7")
    row = _line(text, "gpu-1")
    assert "concurrency sweep (no SLOs)" in text and "out tok/J @ peak" in text
    assert "no SLOs" in row and "310 @ batch 8" in row and "batch 4: 250 tok/s" in row
    assert "0.4267" in row and "744,000" in row  # the peak point's tokens per joule and per dollar
    points = run("results", "load", "7")
    assert "│ batch 8 " in points and "│ —       │" in points  # no SLO verdict


def test_results_load_of_an_experiment_without_a_sweep_says_so(server):
    text = run("results", "load", "8", code=EXIT_USAGE)
    assert "experiment #8 has no load sweep" in text


def test_results_load_of_a_missing_experiment_says_it_is_not_found(server):
    text = run("results", "load", "404", code=1)
    assert "GET /api/v1/experiments/404/ failed (404): Not found." in text


def test_results_load_refuses_an_unknown_format(server):
    assert "--format must be table, json or csv" in run("results", "load", "7", "--format", "xml", code=EXIT_USAGE)


def test_results_export_asks_for_a_kind_of_rows(server, tmp_path: Path):
    text = run("results", "export", "7", "-o", str(tmp_path / "points.csv"), "--kind", "load_points")
    assert "Wrote" in text and (tmp_path / "points.csv").read_text() == "experiment,job,index\n7,11,0\n"
    assert server["export_params"] == {"format": "csv", "kind": "load_points"}
    assert "/api/v1/experiments/7/results/" not in server["paths"]  # no scoring to wait for
    run("results", "export", "7", "-o", str(tmp_path / "runs.json"))
    assert server["export_params"] == {"format": "json"}  # runs: what any server exports without a kind
    text = run("results", "export", "7", "-o", str(tmp_path / "x.csv"), "--kind", "points", code=EXIT_USAGE)
    assert "--kind must be runs, load_points, load_requests, not 'points'" in text


@pytest.mark.parametrize("name", ["load-concurrency.json", "load-rate-slo.json"])
def test_create_sends_the_examples_load_as_written(server, name: str):
    path = EXAMPLES / name
    assert "Created experiment #9" in run("experiments", "create", "-f", str(path))
    assert server["posted"] == [json.loads(path.read_text())]


def _bad_file(tmp_path: Path, change: dict[str, Any]) -> tuple[Path, list[str]]:
    """The rate example with ``change`` made to its load, written indented (one field a line)."""
    doc = json.loads((EXAMPLES / "load-rate-slo.json").read_text())
    doc["load"].update(change)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc, indent=2))
    return path, path.read_text().splitlines()


SLO_KEY, LOAD_KEY, PROMPTS_KEY = '"slo"', '"load"', '"prompts"'


def _line_number(lines: list[str], needle: str) -> int:
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def test_create_names_the_line_and_field_of_a_bad_load_before_sending(server, tmp_path: Path):
    path, lines = _bad_file(tmp_path, {"slo": {"percentile": 99}})  # no target
    text = run("experiments", "create", "-f", str(path), code=EXIT_USAGE)
    assert f"bad.json:{_line_number(lines, SLO_KEY)}: load.slo: give at least one of ttft_ms" in text
    path, lines = _bad_file(tmp_path, {"concurrency": [1, 2]})  # both axes
    text = run("experiments", "plan", "-f", str(path), code=EXIT_USAGE)
    assert f"bad.json:{_line_number(lines, LOAD_KEY)}: load: give exactly one of concurrency and request_rate" in text
    path, lines = _bad_file(tmp_path, {"prompts": {"source": "jsonl"}})
    text = run("experiments", "create", "-f", str(path), code=EXIT_USAGE)
    assert f"bad.json:{_line_number(lines, PROMPTS_KEY)}: load.prompts.path: a jsonl prompt source needs" in text
    assert server["posted"] == [] and not any("plan" in p for p in server["paths"])


def test_the_servers_refusal_of_a_load_field_names_its_line(server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A field the CLI cannot check (the server's rules: tasks, runtimes) is located by the server's path."""
    path, lines = _bad_file(tmp_path, {})
    refusal = {"load": {"request_rate[5]": ["the vllm runtime cannot send every request at once"]}}
    monkeypatch.setattr(experiments_command, "connect", lambda server, token: _refusing_api(refusal))
    text = run("experiments", "create", "-f", str(path), code=EXIT_USAGE)
    rate_line = next(i for i, line in enumerate(lines, 1) if '"inf"' in line)
    assert f"bad.json:{rate_line}: load.request_rate[5]: the vllm runtime cannot send every request at once" in text


def _refusing_api(body: dict[str, Any]) -> Api:
    """A client whose server refuses every request with ``body`` (a 400)."""
    api = Api(Config(SERVER, "token"))
    api._http = httpx.Client(base_url=SERVER, transport=httpx.MockTransport(lambda r: httpx.Response(400, json=body)))
    return api


def test_create_names_a_bad_rate_by_its_index_and_line(server, tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntask: {name: wikipedia_summarization}\nmodels: [{name: m}]\nruntimes: [{name: vllm}]\n"
                    "load:\n  request_rate:\n    - 1\n    - -2\n  num_requests: 10\n  arrival: uniform\n")
    text = run("experiments", "create", "-f", str(path), code=EXIT_USAGE)
    assert "bad.yaml:8: load.request_rate[1]: must be above 0 and at most 100000, got -2" in text
    assert "bad.yaml:10: load.arrival: Input should be 'poisson', 'gamma' or 'constant'" in text
    assert server["posted"] == []
