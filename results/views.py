"""REST views for results: per-job results, experiment aggregates, comparison matrix, raw export."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.loadcolumns import LOAD_POINT_COLUMNS, LOAD_REQUEST_COLUMNS, csv_text, flatten_point
from common.metrics import BENCHMARK_METRIC_RE, METRIC_SPECS, Metric, is_known_metric
from core.permissions import Rule
from core.roles import VIEW_EXPERIMENTS
from core.streaming import SyncStreamingResponse, pieces
from experiments.models import Experiment, Job
from results import selectors
from results.api_schemas import Comparison, ExperimentResults, ExportRuns, JobResults

#: What ``?metric=`` accepts, as the schema's pattern (JavaScript syntax): a canonical metric or a benchmark figure.
METRIC_PATTERN = (
    "^(?:" + "|".join(re.escape(name) for name in METRIC_SPECS) + ")$|"
    + re.sub(r"\?P<\w+>", "?:", BENCHMARK_METRIC_RE.pattern)
)

class JobResultsView(APIView):
    """``GET /api/v1/jobs/{id}/results/``: statistics, cold run and every run of one job."""

    access_rules = {"GET": Rule(VIEW_EXPERIMENTS)}

    @extend_schema(
        responses=JobResults,
        parameters=[OpenApiParameter("samples", OpenApiTypes.BOOL, description="Include per-sample outputs")],
    )
    def get(self, request: Request, pk: int) -> Response:
        """Return the job's results."""
        job = get_object_or_404(Job.objects.select_related("experiment"), pk=pk)
        include = _flag(request, "samples", default=True)
        return Response(selectors.job_results(job, include_samples=include))


class ExperimentResultsView(APIView):
    """``GET /api/v1/experiments/{id}/results/``: aggregated statistics of every job."""

    access_rules = {"GET": Rule(VIEW_EXPERIMENTS)}

    @extend_schema(responses=ExperimentResults)
    def get(self, request: Request, pk: int) -> Response:
        """Return the experiment's aggregated results."""
        experiment = get_object_or_404(Experiment, pk=pk)
        return Response(selectors.experiment_results(experiment))


class ExperimentComparisonView(APIView):
    """``GET /api/v1/experiments/{id}/comparison/?metric=...``: model x runtime by agent matrix."""

    access_rules = {"GET": Rule(VIEW_EXPERIMENTS)}

    @extend_schema(
        responses=Comparison,
        parameters=[
            OpenApiParameter(
                "metric",
                OpenApiTypes.STR,
                pattern=METRIC_PATTERN,
                description=(
                    "Metric shown in the cells: a canonical metric ("
                    + ", ".join(sorted(METRIC_SPECS))
                    + ") or a hardware benchmark figure (bandwidth_gbps.<device>.<kind>, "
                    "tflops.<device>.<precision>, gflops.cpu.<precision>)"
                ),
            )
        ],
    )
    def get(self, request: Request, pk: int) -> Response:
        """Return the comparison matrix."""
        experiment = get_object_or_404(Experiment, pk=pk)
        metric = request.query_params.get("metric", Metric.OUTPUT_TOKENS_PER_S)
        if not is_known_metric(metric):
            raise ValidationError(
                {
                    "metric": f"unknown metric {metric!r}; known: {', '.join(sorted(METRIC_SPECS))}, or a "
                    "benchmark figure such as bandwidth_gbps.cpu.copy or tflops.cuda.bf16"
                }
            )
        return Response(selectors.experiment_comparison(experiment, metric))


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _flag(request: Request, name: str, *, default: bool) -> bool:
    """A yes/no query parameter (``true``/``false``, ``1``/``0``, ``yes``/``no``); anything else is a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValidationError({name: [f"{name} must be true or false, not {raw[:40]!r}"]})


#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (the
    OWASP rule; agent and model names, fingerprints and metric names come from agents and users). Numbers are
    written as numbers and are safe, so a negative measurement stays ``-3.5``.

    Args:
        value: The cell's value.

    Returns:
        The value to write.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    """File-like object whose ``write`` returns what it was given (streams CSV rows without buffering)."""

    def write(self, value: str) -> str:
        """Return ``value`` unchanged."""
        return value


class ExperimentExportView(APIView):
    """``GET /api/v1/experiments/{id}/export/?format=csv|json&kind=runs|load_points|load_requests``: streamed.

    ``runs`` (the default): every raw run. A load sweep's ``load_points``: one row per (job, point) with its figures;
    ``load_requests``: one row per measured request with its raw times (columns: :mod:`common.loadcolumns`).
    """

    access_rules = {"GET": Rule(VIEW_EXPERIMENTS)}

    @extend_schema(
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/json"): ExportRuns},
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=["csv", "json"], default="json"),
            OpenApiParameter(
                "kind",
                OpenApiTypes.STR,
                enum=list(selectors.EXPORT_KINDS),
                default="runs",
                description="runs: every raw run; load_points: one row per (job, load point) of a load sweep, with "
                "its figures (CSV: latencies flattened, ttft_s_p99 ...); load_requests: one row per measured "
                "request of a load sweep, with its raw times",
            ),
        ],
    )
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        """Stream the runs (or a load sweep's points or requests) as CSV or as a JSON array."""
        experiment = get_object_or_404(Experiment, pk=pk)
        fmt = request.query_params.get("format", "json").lower()
        if fmt not in ("csv", "json"):
            raise ValidationError({"format": f"unsupported export format {fmt!r}; use csv or json"})
        kind = request.query_params.get("kind", "runs").lower()
        if kind not in selectors.EXPORT_KINDS:
            raise ValidationError(
                {"kind": [f"unsupported export kind {kind[:40]!r}; use {', '.join(selectors.EXPORT_KINDS)}"]}
            )
        suffix = "" if kind == "runs" else "-" + kind.replace("_", "-")
        filename = f"ruckus-experiment-{experiment.pk}{suffix}.{fmt}"
        if kind != "runs":
            body = _load_csv(experiment, kind) if fmt == "csv" else _json_array(_load_rows(experiment, kind))
            content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
        elif fmt == "csv":
            body = self._csv(experiment)
            content_type = "text/csv; charset=utf-8"
        else:
            body = self._json(experiment)
            content_type = "application/json"
        # The body is made while it is sent (a chunk of runs at a time, in pieces of about 64 KiB), under WSGI and
        # ASGI alike: the first byte leaves at once and memory stays flat however many runs the experiment has.
        response = SyncStreamingResponse(pieces(body), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @staticmethod
    def _csv(experiment: Experiment) -> Iterator[str]:
        """CSV rows: run columns, one column per run metric, then the job's per-request latency statistics.

        A metric column (``ttft_s``) holds the run's own value (for a latency, the mean over the run's requests);
        a ``<metric>.per_request.<statistic>`` column (``ttft_s.per_request.p95``) holds the job's statistic over
        all its warm requests, the same on each of the job's rows. Cells are empty when absent.
        """
        metrics = selectors.export_metric_names(experiment)
        request_columns = selectors.export_request_columns(experiment)
        writer = csv.writer(_Echo())
        header = (*selectors.EXPORT_BASE_COLUMNS, *metrics, *(column for column, _, _ in request_columns))
        yield writer.writerow([csv_cell(c) for c in header])
        for run in selectors.export_runs(experiment, samples=False):  # no column holds samples: not read
            base = [run[c] for c in selectors.EXPORT_BASE_COLUMNS]
            per_request = [
                run["request_statistics"].get(metric, {}).get(stat, "") for _, metric, stat in request_columns
            ]
            yield writer.writerow(
                [csv_cell(v) for v in (*base, *(run["metrics"].get(m, "") for m in metrics), *per_request)]
            )

    @staticmethod
    def _json(experiment: Experiment) -> Iterator[str]:
        """A JSON array written one run at a time."""
        yield "["
        first = True
        for run in selectors.export_runs(experiment):
            yield ("" if first else ",") + json.dumps(run)
            first = False
        yield "]"


def _load_rows(experiment: Experiment, kind: str) -> Iterator[dict[str, object]]:
    """The rows of a load export: a sweep's points (``load_points``) or its measured requests (``load_requests``)."""
    if kind == "load_points":
        return selectors.export_load_points(experiment)
    return selectors.export_load_requests(experiment)


def _load_csv(experiment: Experiment, kind: str) -> Iterator[str]:
    """CSV rows of a load export: the columns of :mod:`common.loadcolumns`, a point's latencies flattened.

    Args:
        experiment: The experiment.
        kind: ``load_points`` or ``load_requests``.

    Yields:
        The header, then one row per point or request (empty cells for absent values).
    """
    writer = csv.writer(_Echo())
    points = kind == "load_points"
    columns = LOAD_POINT_COLUMNS if points else LOAD_REQUEST_COLUMNS
    yield writer.writerow(columns)
    for row in _load_rows(experiment, kind):
        flat = {**row, **flatten_point(row)} if points else row
        yield writer.writerow([csv_cell(csv_text(flat.get(c))) for c in columns])


def _json_array(rows: Iterator[dict[str, object]]) -> Iterator[str]:
    """A JSON array written one row at a time."""
    yield "["
    first = True
    for row in rows:
        yield ("" if first else ",") + json.dumps(row)
        first = False
    yield "]"
