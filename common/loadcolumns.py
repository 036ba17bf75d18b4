"""The flat columns of a load sweep's figures: one row per (job, load point), and one row per measured request.

The server's export (``GET /api/v1/experiments/{id}/export/?kind=load_points|load_requests``) and the CLI's
``ruckus results load --format csv`` write the same columns, so a file made either way reads the same. A point's
figures (:func:`common.loadmetrics.point_figures`) hold a latency as a dict of statistics (``{"median": ...,
"p99": ...}``); here each statistic gets its own column, ``<latency>_<statistic>`` (``ttft_s_p99``).
"""

from __future__ import annotations

import json
from typing import Any

#: The latencies of a point's figures, each a dict of statistics (or None when no request had it).
LOAD_LATENCIES = ("ttft_s", "tpot_s", "itl_s", "e2e_s")

#: The statistics of each latency, in column order.
LOAD_LATENCY_STATISTICS = ("mean", "median", "std", "p90", "p95", "p99", "min", "max", "count")

#: Columns about the job (the sweep's cell) that start every load row.
LOAD_CELL_COLUMNS = (
    "experiment",
    "job",
    "status",
    "model",
    "runtime",
    "agent",
    "agent_name",
    "hardware",
    "method",
    "mode",
    "cost_per_hour",
    "stopped_early",
)

#: A point's scalar figures before its latencies, in the order :func:`common.loadmetrics.point_figures` has them.
LOAD_POINT_HEAD = (
    "index",
    "concurrency",
    "request_rate",
    "completed",
    "failed",
    "timed_out",
    "error_rate",
    "duration_s",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "output_throughput",
    "total_token_throughput",
    "goodput",
    "achieved_concurrency",
    "slo_met",
)

#: A point's energy and cost figures, after its latencies.
LOAD_POINT_TAIL = (
    "power_w",
    "energy_j",
    "energy_per_output_token_j",
    "output_tokens_per_joule",
    "output_tokens_per_dollar",
)

#: Every figure column of a load point row: scalars, ``<latency>_<statistic>``, energy and cost.
LOAD_POINT_FIGURE_COLUMNS = (
    *LOAD_POINT_HEAD,
    *(f"{latency}_{stat}" for latency in LOAD_LATENCIES for stat in LOAD_LATENCY_STATISTICS),
    *LOAD_POINT_TAIL,
)

#: Columns of a load point row (``kind=load_points``).
LOAD_POINT_COLUMNS = (*LOAD_CELL_COLUMNS, *LOAD_POINT_FIGURE_COLUMNS)

#: A measured request's own columns, after the cell's and the point's (``kind=load_requests``). Times are seconds
#: from the point's start (``scheduled_s``, ``sent_s``) or from the request's send (``ttft_s``, ``e2e_s``);
#: ``itl_s`` is the request's inter-token gaps (a list; in CSV a JSON list).
LOAD_REQUEST_OWN_COLUMNS = (
    "request",
    "scheduled_s",
    "sent_s",
    "ttft_s",
    "e2e_s",
    "itl_s",
    "prompt_tokens",
    "output_tokens",
    "timed_out",
    "error",
)

#: Columns of a raw request row (``kind=load_requests``): the cell's, the point's position and load, the request's.
LOAD_REQUEST_COLUMNS = (
    *LOAD_CELL_COLUMNS,
    "point",
    "concurrency",
    "request_rate",
    *LOAD_REQUEST_OWN_COLUMNS,
)


def flatten_point(figures: dict[str, Any]) -> dict[str, Any]:
    """A point's figures as flat columns (:data:`LOAD_POINT_FIGURE_COLUMNS`), absent values as None.

    Args:
        figures: One point's figures, as :func:`common.loadmetrics.point_figures` makes them (extra keys, such as
            the job endpoint's ``raw``, are left out).

    Returns:
        Column -> value, in column order.
    """
    row: dict[str, Any] = {column: figures.get(column) for column in LOAD_POINT_HEAD}
    for latency in LOAD_LATENCIES:
        stats = figures.get(latency) or {}
        for stat in LOAD_LATENCY_STATISTICS:
            row[f"{latency}_{stat}"] = stats.get(stat)
    for column in LOAD_POINT_TAIL:
        row[column] = figures.get(column)
    return row


def cell_columns(cell: dict[str, Any], experiment: int | None, mode: str | None) -> dict[str, Any]:
    """The columns about a job that start each of its load rows (:data:`LOAD_CELL_COLUMNS`).

    Args:
        cell: One cell of the load endpoints (``job``, ``status``, ``model``, ``runtime``, ``agent_id``,
            ``agent_name``, ``hardware``, ``method``, ``cost_per_hour``, ``stopped_early``).
        experiment: The experiment's id.
        mode: The sweep's mode (``concurrency`` or ``request_rate``).

    Returns:
        Column -> value, in column order.
    """
    return {
        "experiment": experiment,
        "job": cell.get("job"),
        "status": cell.get("status"),
        "model": cell.get("model"),
        "runtime": cell.get("runtime"),
        "agent": cell.get("agent_id"),
        "agent_name": cell.get("agent_name"),
        "hardware": cell.get("hardware"),
        "method": cell.get("method"),
        "mode": mode,
        "cost_per_hour": cell.get("cost_per_hour"),
        "stopped_early": cell.get("stopped_early"),
    }


def request_columns(request: dict[str, Any], number: int) -> dict[str, Any]:
    """A measured request's own columns (:data:`LOAD_REQUEST_OWN_COLUMNS`).

    Args:
        request: The request as the agent sent it (:class:`common.protocol.load.RequestRecord` as JSON).
        number: Its 0-based position in the point (send order).

    Returns:
        Column -> value; ``itl_s`` a list (a CSV writes it with :func:`csv_text`).
    """
    return {
        "request": number,
        "scheduled_s": request.get("scheduled_s"),
        "sent_s": request.get("sent_s"),
        "ttft_s": request.get("ttft_s"),
        "e2e_s": request.get("e2e_s"),
        "itl_s": list(request.get("itl_s") or []),
        "prompt_tokens": request.get("prompt_tokens"),
        "output_tokens": request.get("output_tokens"),
        "timed_out": bool(request.get("timed_out")),
        "error": request.get("error"),
    }


def csv_text(value: Any) -> Any:
    """A value as a CSV cell of the load exports: empty for None, a compact JSON list for a list, else itself.

    Args:
        value: A column's value.

    Returns:
        What the CSV writer is given.
    """
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value, separators=(",", ":"))
    return value
