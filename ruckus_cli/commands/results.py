"""``ruckus results``: per-job statistics of an experiment, and an export of every raw run."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from common.descriptive import cv_warning
from common.metrics import SERVER_FIGURES
from common.stats import CI_METHOD_LABELS
from common.statuses import ScoringStatus
from ruckus_cli import load_output
from ruckus_cli.client import EXIT_API_ERROR, EXIT_USAGE, CliError, connect, error_summary
from ruckus_cli.options import JsonOpt, ServerOpt, TokenOpt
from ruckus_cli.output import console, exits_on_error, print_json, print_table

app = typer.Typer(help="Results: show, load, export.", no_args_is_help=True)

#: First part of the flattened hardware benchmark figures.
BENCHMARK_KINDS = ("bandwidth_gbps", "tflops", "gflops")


#: Per-request statistics of a latency in ``--format csv``, as ``<metric>.per_request.<statistic>`` columns (the
#: names of the server's CSV export).
REQUEST_STATISTICS = ("n", "mean", "median", "p90", "p95", "p99")


#: What ``results export --kind`` can ask for (the server's ``?kind=``).
EXPORT_KINDS = ("runs", "load_points", "load_requests")

#: What a figure cell says while the server is still scoring the job's result.
SCORING_CELL = "scoring…"

#: Headings of the client-vs-server section: whose figure each column is.
CLIENT_HEADING = "client (RUCKUS)"
SERVER_HEADING = "inference server's own metrics"


def relative_difference(client: float | None, server: float | None) -> float | None:
    """(server - client) / |client|, or None without both or against a client figure of 0."""
    if client is None or server is None or client == 0:
        return None
    return (server - client) / abs(client)


def server_figure_rows(job: dict[str, Any]) -> list[list[str]]:
    """A gray-box job's figures as RUCKUS measured them next to the inference server's own, per run.

    Args:
        job: One entry of ``jobs`` in the experiment results (its ``statistics`` are per run: scope ``run``).

    Returns:
        ``[figure, client mean, server mean, difference]`` per server figure the job has, in
        :data:`common.metrics.SERVER_FIGURES` order; empty for a job without them.
    """
    stats = job.get("statistics") or {}
    rows = []
    for server_metric, client_metric in SERVER_FIGURES.items():
        server = stats.get(server_metric)
        if not server:
            continue
        client = stats.get(client_metric) if client_metric else None
        unit = server.get("unit") or (client or {}).get("unit") or ""
        diff = relative_difference((client or {}).get("mean"), server.get("mean"))
        rows.append([f"{client_metric or '—'} vs {server_metric}", _mean_cell(client, unit),
                     _mean_cell(server, unit), f"{diff:+.1%}" if diff is not None else "—"])
    return rows


def _mean_cell(stats: dict[str, Any] | None, unit: str) -> str:
    """``0.1234 s (n=2)``: a per-run mean with its unit and number of runs, or a dash without one."""
    if not stats or stats.get("mean") is None:
        return "—"
    return f"{stats['mean']:.4g}{' ' + unit if unit else ''} (n={stats.get('n')})"


def _print_server_figures(jobs: list[dict[str, Any]]) -> None:
    """The client-vs-server section of ``results show``: printed only when some job has the server's figures."""
    table_rows = []
    for job in jobs:
        for row in server_figure_rows(job):
            table_rows.append([job["job"], f"{job['model']} / {job['runtime']} / {job['agent_name']}", *row])
    if not table_rows:
        return
    print_table("Client (RUCKUS) vs the inference server's own metrics (gray-box jobs): mean over the warm runs of "
                "each run's value; difference = (server - client) / client",
                ["job", "model / runtime / agent", "figure", CLIENT_HEADING, SERVER_HEADING, "difference"],
                table_rows)


def _percentiles_cell(row: dict[str, Any], metric: str) -> str:
    """``median / p95 / p99 (n=...)`` of a latency over requests, or a dash without them."""
    values = [row[f"{metric}.per_request.{stat}"] for stat in ("median", "p95", "p99", "n")]
    if any(v is None for v in values):
        return "—"
    median, p95, p99, n = values
    return f"{median:.4g} / {p95:.4g} / {p99:.4g} (n={n})"


@app.command("show")
@exits_on_error
def results_show(
    exp_id: int,
    metric: Annotated[list[str] | None, typer.Option(help="Metric(s) to show (repeatable).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Per-job statistics with the cold run apart.

    Per run: mean ± std over the warm runs (n runs), a latency's value being the run's mean, with the 95% CI of the
    mean (never below zero; its method named under the table) and ``unstable: CV 48%`` when the runs varied by more
    than ``common.descriptive.UNSTABLE_CV``. Per request (latency metrics): median / p95 / p99 over every warm
    request pooled (n requests; every gap for ITL), as peer tools report them. Gray-box jobs then get a section
    with each figure as RUCKUS measured it next to the inference server's own (its /metrics).

    A job whose result the server is still scoring (ROUGE, statistics) says ``scoring`` in place of its figures.
    """
    if fmt not in ("table", "json", "csv"):
        raise CliError(f"--format must be table, json or csv, not {fmt!r}", EXIT_USAGE)
    api = connect(server, token)
    data = api.get(f"/api/v1/experiments/{exp_id}/results/")
    load = load_output.experiment_load(api, exp_id)
    if load is not None:  # a load sweep's jobs have points, not runs: their comparison is the result
        _show_load(data, load, fmt)
        return
    present = [m["name"] for m in data.get("metrics", [])]
    default = [m for m in ("e2e_latency_s", "ttft_s", "output_tokens_per_s", "rougeL") if m in present]
    # A hardware benchmark has no latency: show its figures (bandwidth_gbps.*, tflops.*, gflops.*).
    metrics = metric or default or [m for m in present if m.split(".", 1)[0] in BENCHMARK_KINDS] or present[:6]
    units = {m["name"]: m["unit"] for m in data.get("metrics", [])}
    if fmt == "json":
        print_json(data)
        return
    # A server without per-request statistics sends no request_statistics: those columns are then left out.
    per_request = [m for m in metrics if any(m in (job.get("request_statistics") or {}) for job in data["jobs"])]
    rows = []
    for job in data["jobs"]:
        row: dict[str, Any] = {"job": job["job"], "model": job["model"], "runtime": job["runtime"],
                               "agent": job["agent_name"], "status": job["status"]}
        for m in metrics:
            s = job["statistics"].get(m)
            row[f"{m}_mean"], row[f"{m}_std"], row[f"{m}_n"] = (s["mean"], s["std"], s["n"]) if s else (None,) * 3
            ci = (s or {}).get("ci95") or (None, None)
            row[f"{m}_cv"], row[f"{m}_ci_low"], row[f"{m}_ci_high"] = (s or {}).get("cv"), ci[0], ci[1]
            row[f"{m}_ci_method"] = ((s or {}).get("ci_method") or "student_t") if ci[0] is not None else None
            if m in per_request:
                r = (job.get("request_statistics") or {}).get(m) or {}
                for stat in REQUEST_STATISTICS:
                    row[f"{m}.per_request.{stat}"] = r.get(stat)
        row["cold_model_load_s"] = (job.get("cold_start") or {}).get("model_load_s")
        eff = job.get("efficiency") or {}
        row["peak_bandwidth_fraction"] = eff.get("bandwidth_fraction")
        row["scoring_status"] = job.get("scoring_status")
        rows.append(row)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["job"])
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(buf.getvalue())
        return
    table_rows = []
    for r in rows:
        scoring = r["scoring_status"] == ScoringStatus.SCORING
        cells = []
        for m in metrics:
            cells.append(SCORING_CELL if scoring else _run_cell(r, m))
            if m in per_request:
                cells.append(SCORING_CELL if scoring else _percentiles_cell(r, m))
        load, frac = r["cold_model_load_s"], r["peak_bandwidth_fraction"]
        status = f"{r['status']}, scoring" if scoring else r["status"]
        if r["scoring_status"] == ScoringStatus.FAILED:
            status += ", scoring failed"
        table_rows.append([r["job"], f"{r['model']} / {r['runtime']} / {r['agent']}", status, *cells,
                           f"{load:.2f}" if load is not None else "—",
                           f"{frac:.1%}" if frac is not None else "—"])
    headers = []
    for m in metrics:
        name = f"{m} ({units[m]})" if units.get(m) else m
        headers += [f"{name} per run", f"{name} per request p50 / p95 / p99"] if m in per_request else [name]
    title = f"Experiment #{exp_id}: warm runs, cold run apart; mean ± std (n runs) of each run's value"
    if per_request:
        title += " (a latency's: the run's mean); per request: percentiles over all warm requests"
    print_table(title, ["job", "model / runtime / agent", "status", *headers, "cold load (s)", "of peak BW"],
                table_rows)
    methods = sorted({r[f"{m}_ci_method"] for r in rows for m in metrics if r[f"{m}_ci_method"]})
    if methods:
        console.print("95% CI of the mean (never below zero for a non-negative metric): "
                      + "; ".join(CI_METHOD_LABELS.get(x, x) for x in methods), highlight=False)
    if data.get("scoring"):
        console.print(f"[yellow]{data['scoring']} job(s) still being scored[/yellow]: their ROUGE scores and "
                      "statistics appear here once the server has scored them", highlight=False)
    _print_server_figures(data["jobs"])
    for item in data.get("unrunnable", []):
        console.print(f"[yellow]not run[/yellow] {item['model']} / {item['runtime']}: {item['reason']}")


#: Columns of ``results show --format csv`` for a load sweep: one row per job, its sweep summarized.
LOAD_SUMMARY_COLUMNS = (
    "job", "model", "runtime", "agent", "hardware", "method", "status", "cost_per_hour", "stopped_early", "points",
    "max_goodput_load", "max_goodput", "max_goodput_output_throughput", "max_goodput_output_tokens_per_dollar",
    "max_goodput_output_tokens_per_joule", "peak_load", "peak_request_throughput", "peak_output_throughput",
    "knee_load", "knee_output_throughput", "knee_e2e_median_s",
)


def load_summary_row(cell: dict[str, Any]) -> dict[str, Any]:
    """One job of a load sweep as a ``results show --format csv`` row (:data:`LOAD_SUMMARY_COLUMNS`).

    Args:
        cell: One cell of ``GET /api/v1/experiments/{id}/load/``.

    Returns:
        Column -> value (None where the job has no such summary).
    """
    best, peak, knee = cell.get("max_goodput") or {}, cell.get("peak") or {}, cell.get("knee") or {}
    return {
        "job": cell["job"], "model": cell.get("model"), "runtime": cell.get("runtime"),
        "agent": cell.get("agent_name"), "hardware": cell.get("hardware"), "method": cell.get("method"),
        "status": cell.get("status"), "cost_per_hour": cell.get("cost_per_hour"),
        "stopped_early": cell.get("stopped_early"), "points": len(cell.get("points") or []),
        "max_goodput_load": best.get("load"), "max_goodput": best.get("goodput"),
        "max_goodput_output_throughput": best.get("output_throughput"),
        "max_goodput_output_tokens_per_dollar": best.get("output_tokens_per_dollar"),
        "max_goodput_output_tokens_per_joule": best.get("output_tokens_per_joule"),
        "peak_load": peak.get("load"), "peak_request_throughput": peak.get("request_throughput"),
        "peak_output_throughput": peak.get("output_throughput"), "knee_load": knee.get("load"),
        "knee_output_throughput": knee.get("output_throughput"), "knee_e2e_median_s": knee.get("e2e_median_s"),
    }


def _show_load(data: dict[str, Any], load: dict[str, Any], fmt: str) -> None:
    """``results show`` of an experiment with a load sweep: its jobs compared (json: the results with ``load``)."""
    if fmt == "json":
        print_json({**data, "load": load})
        return
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(LOAD_SUMMARY_COLUMNS))
        writer.writeheader()
        writer.writerows(load_summary_row(cell) for cell in load.get("cells") or [])
        sys.stdout.write(buf.getvalue())
        return
    load_output.print_load_comparison(load)
    for item in data.get("unrunnable", []):
        console.print(f"[yellow]not run[/yellow] {item['model']} / {item['runtime']}: {item['reason']}")


@app.command("load")
@exits_on_error
def results_load(
    exp_id: int,
    job: Annotated[int | None, typer.Option("--job", help="Only this job of the experiment.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    as_json: JsonOpt = False,
    server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Each load point of an experiment's sweep (or of one job's, with ``--job``).

    Per point: load, completed / failed / timed-out requests, request and output throughput, goodput (requests/s
    meeting every SLO), achieved concurrency, TTFT, TPOT, ITL and e2e latency (median / p99, ms) and whether the
    point met the SLOs; the peak, max goodput and knee points are marked. ``--format json`` (or ``--json``)
    prints the API's JSON (with ``--job``: the job's, raw per-request values included); ``--format csv`` one row
    per (job, point), the columns of the server's ``kind=load_points`` export.
    """
    fmt = "json" if as_json else fmt
    if fmt not in ("table", "json", "csv"):
        raise CliError(f"--format must be table, json or csv, not {fmt!r}", EXIT_USAGE)
    api = connect(server, token)
    if job is None:
        data = load_output.experiment_load(api, exp_id)
        if data is None:
            api.get(f"/api/v1/experiments/{exp_id}/")  # an experiment that does not exist is a 404, said as such
            raise CliError(f"experiment #{exp_id} has no load sweep: `ruckus results show {exp_id}` shows its "
                           "results", EXIT_USAGE)
        cells, mode, slo = data.get("cells") or [], data.get("mode"), data.get("slo")
    else:
        data = api.get(f"/api/v1/jobs/{job}/load/")
        cells, mode = [data], load_output.sweep_mode(data)
        # The job's answer is one cell; the sweep's SLOs are the experiment's.
        slo = data["slo"] if "slo" in data else (api.get(f"/api/v1/experiments/{exp_id}/").get("load") or {}).get("slo")
    if fmt == "json":
        print_json(data)
        return
    if fmt == "csv":
        load_output.write_csv(load_output.load_csv_rows(cells, exp_id, mode))
        return
    if not cells:
        console.print(f"Experiment #{exp_id} has no jobs")
    for cell in cells:
        load_output.print_load_points(cell, mode, slo)


def _run_cell(row: dict[str, Any], metric: str) -> str:
    """``mean ± std (n)`` over runs, then its 95% CI and ``unstable: CV 48%`` when the runs varied a lot."""
    if row[f"{metric}_mean"] is None:
        return "—"
    lines = [f"{row[f'{metric}_mean']:.4g} ± {row[f'{metric}_std']:.2g} ({row[f'{metric}_n']})"]
    if row[f"{metric}_ci_low"] is not None:
        lines.append(f"CI [{row[f'{metric}_ci_low']:.4g}, {row[f'{metric}_ci_high']:.4g}]")
    warning = cv_warning(row[f"{metric}_cv"])
    if warning:
        lines.append(warning)
    return "\n".join(lines)


@app.command("export")
@exits_on_error
def results_export(
    exp_id: int,
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv or json (default: from the file name)")] = None,
    kind: Annotated[str, typer.Option(
        "--kind", help="runs; or for a load sweep load_points (a row per job and point) or load_requests (a row per "
        "measured request)")] = "runs",
    server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Export every raw run of an experiment (streamed to the file); says so when some results are still scoring.

    With ``--kind load_points`` or ``--kind load_requests``: a load sweep's points with their figures, or every
    measured request with its raw times (the columns of ``common.loadcolumns``).
    """
    fmt = fmt or ("csv" if output.suffix.lower() == ".csv" else "json")
    if fmt not in ("csv", "json"):
        raise CliError(f"--format must be csv or json, not {fmt!r}", EXIT_USAGE)
    if kind not in EXPORT_KINDS:
        raise CliError(f"--kind must be {', '.join(EXPORT_KINDS)}, not {kind!r}", EXIT_USAGE)
    api = connect(server, token)
    tmp = output.with_name(output.name + ".part")
    params = {"format": fmt} if kind == "runs" else {"format": fmt, "kind": kind}  # older servers know no kind
    with api.stream("GET", f"/api/v1/experiments/{exp_id}/export/", params=params) as response:
        if response.status_code >= 400:
            response.read()
            raise CliError(f"export failed ({response.status_code}): {error_summary(response)}", EXIT_API_ERROR)
        with tmp.open("wb") as fh:
            for chunk in response.iter_bytes():
                fh.write(chunk)
    tmp.replace(output)  # never leave a half-written export under the requested name
    console.print(f"Wrote {output} ({output.stat().st_size} bytes)")
    if kind != "runs":  # a load sweep's figures are computed as its results arrive: nothing waits for scoring
        return
    scoring = api.get(f"/api/v1/experiments/{exp_id}/results/").get("scoring") or 0
    if scoring:
        console.print(f"[yellow]{scoring} job(s) were still being scored[/yellow]: their ROUGE scores and statistics "
                      "are not in this export (its scoring_status column says which); export again once scored",
                      highlight=False)
