"""Terminal output of load sweeps: the experiment's comparison of its jobs, each job's points, and their CSV.

Everything here reads the JSON of ``GET /api/v1/experiments/{id}/load/`` (a list of ``cells``, one per job) and
``GET /api/v1/jobs/{id}/load/`` (one cell). Latencies arrive in seconds and are shown in milliseconds, as
``vllm bench serve`` prints them.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from typing import Any

from pydantic import ValidationError
from rich.markup import escape

from common.loadcolumns import LOAD_POINT_COLUMNS, cell_columns, flatten_point
from common.protocol.load import LoadSpec
from common.validation import field_errors
from ruckus_cli import output
from ruckus_cli.client import EXIT_USAGE, Api, CliError
from ruckus_cli.files import ExperimentFile

#: What a cell shows for a figure the server does not have.
DASH = "—"

#: The latencies of a point, with their short names in headings.
LATENCY_HEADINGS = (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("itl_s", "ITL"), ("e2e_s", "e2e"))


def validate_load(doc: ExperimentFile) -> None:
    """Check an experiment file's ``load`` before it is sent, so that its errors name the file's lines.

    Args:
        doc: The parsed experiment file (nothing is checked when it has no ``load``).

    Raises:
        CliError: ``file:line: load.<field>: message`` for each field that is not valid (exit code: usage).
    """
    if "load" not in doc.data or doc.data["load"] is None:
        return
    try:
        LoadSpec.model_validate(doc.data["load"])
    except ValidationError as exc:
        lines = []
        for path, message in field_errors(exc, "load", default_field="load").items():
            field, text = field_of_message(path, message)
            lines.append(f"{doc.location(field)}: {field}: {text}")
        raise CliError("the experiment file's load is not valid:\n" + "\n".join(lines), EXIT_USAGE) from exc


#: A message that starts by naming its field (``request_rate[1]: must be ...``, ``prompts.path: ...``).
_NAMED_FIELD = re.compile(r"^(?P<field>[A-Za-z_][\w.\[\]]*): (?P<text>.+)$", re.DOTALL)


def field_of_message(path: str, message: str) -> tuple[str, str]:
    """The field an error is about, and its message, without saying the field twice.

    The load spec's own checks start their messages with the field they are about (``request_rate[1]: must be
    above 0``), often more precisely than pydantic's location (``load.request_rate``): that field is then the
    error's, under ``load``.

    Args:
        path: The error's dotted location (``load.request_rate``).
        message: The error's message.

    Returns:
        ``(field, message)``: ``("load.request_rate[1]", "must be above 0 ...")``, or the two unchanged when the
        message names no field of that location.
    """
    match = _NAMED_FIELD.match(message)
    if match is None:
        return path, message
    named, last = match["field"], path.rsplit(".", 1)[-1]
    if named == "load" or named.startswith("load."):
        return named, match["text"]
    if re.split(r"[.\[]", named, maxsplit=1)[0] == last:
        return f"{path.rsplit('.', 1)[0]}.{named}" if "." in path else f"load.{named}", match["text"]
    return path, message


def sweep_text(spec: dict[str, Any]) -> str:
    """An experiment's load spec in words: ``request rate sweep 1, 2, inf req/s (poisson), 100 requests per point``.

    Args:
        spec: The experiment's ``load`` (:class:`common.protocol.load.LoadSpec` as JSON).

    Returns:
        The axis and its points, how each point is sized, the prompts and the SLOs.
    """
    if spec.get("concurrency"):
        axis = "concurrency sweep " + ", ".join(str(c) for c in spec["concurrency"])
    else:
        rates = ", ".join(r if isinstance(r, str) else f"{r:g}" for r in spec.get("request_rate") or [])
        axis = f"request rate sweep {rates} req/s ({spec.get('arrival', 'poisson')} arrivals)"
    size = (f"{spec['num_requests']} requests per point" if spec.get("num_requests")
            else f"{spec.get('duration_s', 0):g} s per point")
    prompts = spec.get("prompts") or {}
    source = prompts.get("source", "task")
    if source == "synthetic":
        source = f"synthetic prompts of {prompts.get('input_tokens')} tokens, {prompts.get('output_tokens')} out"
    else:
        source = f"{source} prompts"
    return f"{axis}, {size}, {source}; {slo_text(spec.get('slo'))}"


def experiment_load(api: Api, exp_id: int) -> dict[str, Any] | None:
    """The experiment's load sweep results, or None when it has no load (or the server has no load endpoint).

    Args:
        api: A connected client.
        exp_id: The experiment.

    Returns:
        The endpoint's JSON when the experiment has a ``mode``, else None.
    """
    try:
        data = api.get(f"/api/v1/experiments/{exp_id}/load/")
    except CliError as exc:
        if exc.status == 404:  # a server without load sweeps: the experiment's plain results are all there is
            return None
        raise
    return data if data.get("mode") else None


def format_load(value: Any, mode: str | None, method: str | None = None) -> str:
    """A load point's load for people: ``c=8``, ``batch 8``, ``4 req/s`` or ``inf req/s``.

    Args:
        value: The concurrency, the request rate (a number or ``"inf"``), or None.
        mode: ``concurrency`` or ``request_rate``.
        method: ``http`` or ``batch`` (a batch sweep's concurrency is its batch size).

    Returns:
        The text, or a dash without a value.
    """
    if value is None:
        return DASH
    if mode == "request_rate":
        return f"{value} req/s" if isinstance(value, str) else f"{value:g} req/s"
    return f"batch {value}" if method == "batch" else f"c={value}"


def sweep_mode(cell: dict[str, Any]) -> str | None:
    """A job's sweep mode: the cell's own ``mode`` where it has one, else what its points were run at.

    Args:
        cell: One cell of the load endpoints.

    Returns:
        ``concurrency``, ``request_rate``, or None for a job without points.
    """
    if cell.get("mode"):
        return cell["mode"]
    for point in cell.get("points") or []:
        if point.get("request_rate") is not None:
            return "request_rate"
        if point.get("concurrency") is not None:
            return "concurrency"
    return None


def _point_load(point: dict[str, Any], mode: str | None) -> Any:
    """The point's load value along the sweep's axis."""
    return point.get("request_rate") if mode == "request_rate" else point.get("concurrency")


def _number(value: Any, digits: int = 4) -> str:
    """A figure with ``digits`` significant digits (whole, with thousands separators, from 1000 up), or a dash."""
    if value is None:
        return DASH
    number = float(value)
    return f"{number:,.0f}" if abs(number) >= 1000 else f"{number:.{digits}g}"


def _ms_pair(stats: dict[str, Any] | None) -> str:
    """``median / p99`` of a latency in milliseconds, or a dash."""
    if not stats or stats.get("median") is None:
        return DASH
    return f"{stats['median'] * 1000:.1f} / {stats['p99'] * 1000:.1f}"


def _met(value: bool | None) -> str:
    """``yes`` / ``no`` for a point's SLO verdict, a dash without SLOs."""
    return DASH if value is None else ("yes" if value else "no")


def slo_text(slo: dict[str, Any] | None) -> str:
    """The service level objectives in words: ``p99 TTFT ≤ 200 ms, TPOT ≤ 50 ms; error rate ≤ 1%``.

    Args:
        slo: The sweep's ``slo`` (:class:`common.protocol.load.ServiceLevelObjectives` as JSON), or None.

    Returns:
        The text; ``no SLOs`` without them.
    """
    if not slo:
        return "no SLOs"
    targets = [f"{name} ≤ {slo[key]:g} ms" for key, name in (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"),
                                                              ("e2e_ms", "e2e")) if slo.get(key) is not None]
    percentile = slo.get("percentile", 99.0)
    return f"p{percentile:g} {', '.join(targets)}; error rate ≤ {slo.get('max_error_rate', 0.0) * 100:g}%"


def _point_at(cell: dict[str, Any], summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The point a summary (``peak``, ``max_goodput``, ``knee``) names by its ``index``."""
    if not summary:
        return None
    return next((p for p in cell.get("points") or [] if p.get("index") == summary.get("index")), None)


def comparison_row(cell: dict[str, Any], mode: str | None, has_slo: bool) -> list[str]:
    """One job of an experiment's load comparison, as table cells.

    Args:
        cell: One entry of the experiment's ``cells``.
        mode: The sweep's mode.
        has_slo: Whether the sweep has SLOs (without them there is no goodput: the peak stands in for it).

    Returns:
        job, agent / hardware, model, runtime, method, max goodput @ load, peak output tok/s @ load, knee,
        output tokens per dollar and per joule (at max goodput, or at the peak without SLOs), stopped early.
    """
    method = cell.get("method")
    peak, best, knee = cell.get("peak"), cell.get("max_goodput"), cell.get("knee")
    if not cell.get("points"):
        goodput = f"no points ({cell.get('status')})"
    elif not has_slo:
        goodput = "no SLOs"
    elif best is None:
        goodput = "no point met the SLOs"
    else:
        goodput = f"{_number(best['goodput'])} req/s @ {format_load(best['load'], mode, method)}"
    peak_text = (f"{_number(peak['output_throughput'])} @ {format_load(peak['load'], mode, method)}"
                 if peak else DASH)
    knee_text = (f"{format_load(knee['load'], mode, method)}: {_number(knee['output_throughput'])} tok/s, "
                 f"e2e p50 {knee['e2e_median_s'] * 1000:.0f} ms"
                 if knee and knee.get("e2e_median_s") is not None else DASH)
    # Tokens per dollar and per joule where the sweep is worth running: at max goodput, or the peak without SLOs.
    at = best if has_slo else _point_at(cell, peak)
    per_dollar = _number((at or {}).get("output_tokens_per_dollar"))
    per_joule = _number((at or {}).get("output_tokens_per_joule"))
    agent = cell.get("agent_name") or DASH
    return [cell["job"], f"{agent} / {cell.get('hardware') or DASH}", cell.get("model") or DASH,
            cell.get("runtime") or DASH, method or DASH, goodput, peak_text, knee_text, per_dollar, per_joule,
            cell.get("stopped_early") or DASH]


def print_load_comparison(data: dict[str, Any]) -> None:
    """Print an experiment's load comparison: one row per job, with its SLOs and how each figure was chosen.

    Args:
        data: The JSON of ``GET /api/v1/experiments/{id}/load/``.
    """
    mode, slo = data.get("mode"), data.get("slo")
    at = "max goodput" if slo else "peak"
    axis = "concurrency" if mode == "concurrency" else "request rate"
    output.print_table(
        f"Experiment #{data['experiment']}: serving under load, {axis} sweep ({slo_text(slo)})",
        ["job", "agent / hardware", "model", "runtime", "method", "max goodput @ load", "peak out tok/s @ load",
         "knee (max out tok/s ÷ e2e p50)", f"out tok/$ @ {at}", f"out tok/J @ {at}", "stopped early"],
        [comparison_row(cell, mode, bool(slo)) for cell in data.get("cells") or []],
    )
    output.console.print("goodput: requests/s that met every SLO; knee: the point of highest output tokens/s per "
                         "second of median e2e latency; `ruckus results load EXPERIMENT` shows each point",
                         highlight=False)


def _marks(cell: dict[str, Any], index: int) -> str:
    """Which summaries (peak, max goodput, knee) a point is."""
    names = [name for key, name in (("peak", "peak"), ("max_goodput", "max goodput"), ("knee", "knee"))
             if (cell.get(key) or {}).get("index") == index]
    return ", ".join(names)


def point_rows(cell: dict[str, Any], mode: str | None) -> list[list[str]]:
    """A job's load points as table cells, in sweep order.

    Args:
        cell: One cell of the load endpoints.
        mode: The sweep's mode.

    Returns:
        Per point: load, completed / failed / timed out, req/s, output tok/s, goodput, achieved concurrency,
        TTFT, TPOT, ITL and e2e (median / p99, ms), SLO met, and which summaries it is.
    """
    rows = []
    for point in cell.get("points") or []:
        rows.append([
            format_load(_point_load(point, mode), mode, cell.get("method")),
            f"{point.get('completed', 0)} / {point.get('failed', 0)} / {point.get('timed_out', 0)}",
            _number(point.get("request_throughput")),
            _number(point.get("output_throughput")),
            _number(point.get("goodput")),
            _number(point.get("achieved_concurrency"), 3),
            *(_ms_pair(point.get(key)) for key, _ in LATENCY_HEADINGS),
            _met(point.get("slo_met")),
            _marks(cell, point.get("index")),
        ])
    return rows


def print_load_points(cell: dict[str, Any], mode: str | None, slo: dict[str, Any] | None) -> None:
    """Print one job's load points, then why its sweep stopped early (when it did).

    Args:
        cell: One cell of the load endpoints.
        mode: The sweep's mode.
        slo: The sweep's SLOs, or None.
    """
    title = (f"Job #{cell['job']}: {cell.get('model')} / {cell.get('runtime')} on {cell.get('agent_name') or DASH} "
             f"({cell.get('hardware') or DASH}), {cell.get('method') or DASH}, {cell.get('status')}; "
             f"{slo_text(slo)}")
    headers = ["load", "done / failed / timeouts", "req/s", "out tok/s", "goodput req/s", "achieved conc.",
               *(f"{name} ms p50 / p99" for _, name in LATENCY_HEADINGS), "SLO met", ""]
    output.print_table(title, headers, point_rows(cell, mode))
    if cell.get("stopped_early"):
        output.console.print(f"[yellow]stopped early[/yellow]: {escape(cell['stopped_early'])}", highlight=False)


def load_csv_rows(cells: list[dict[str, Any]], experiment: int | None, mode: str | None) -> list[dict[str, Any]]:
    """Rows of the load CSV: one per (job, point), the columns of the server's ``kind=load_points`` export.

    Args:
        cells: Cells of the load endpoints.
        experiment: The experiment's id.
        mode: The sweep's mode.

    Returns:
        One dict per point, keys in :data:`common.loadcolumns.LOAD_POINT_COLUMNS` order.
    """
    return [{**cell_columns(cell, experiment, mode), **flatten_point(point)}
            for cell in cells for point in cell.get("points") or []]


def write_csv(rows: list[dict[str, Any]]) -> None:
    """Write load rows as CSV on stdout (the header alone when there are none).

    Args:
        rows: Rows from :func:`load_csv_rows`.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(LOAD_POINT_COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    sys.stdout.write(buf.getvalue())
