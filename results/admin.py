"""Admin for stored results."""

import json

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from common.statuses import ScoringStatus
from results.models import JobMetricStatistics, JobResult, LoadPoint, RunResult, SampleResult
from results.services import job_statistics_recompute


def _pretty(value: object) -> str:
    """Readable JSON block."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


@admin.register(JobResult)
class JobResultAdmin(admin.ModelAdmin):
    """Job-level results."""

    list_display = ["job", "attempt", "access_mode", "scoring_status", "statistics_source", "hardware_fingerprint",
                    "received_at"]
    list_filter = ["scoring_status", "access_mode", "statistics_source"]
    raw_id_fields = ["job", "attempt"]
    readonly_fields = ["cold_start_pretty", "unavailable_pretty", "scoring_status", "scoring_error", "scored_at"]
    exclude = ["cold_start", "unavailable_metrics", "raw"]
    actions = ["recompute_statistics", "score_again"]

    @admin.action(description="Score again (ROUGE, run means, statistics) by the scoring workers")
    def score_again(self, request: HttpRequest, queryset: QuerySet[JobResult]) -> None:
        """Put the selected results back in the scoring queue (e.g. those whose scoring failed, once fixed)."""
        count = queryset.update(scoring_status=ScoringStatus.SCORING, scoring_error="", scored_at=None)
        self.message_user(request, f"{count} result(s) will be scored again by the scoring workers.")

    @admin.action(description="Recompute statistics (per run and per request) from the stored runs")
    def recompute_statistics(self, request: HttpRequest, queryset: QuerySet[JobResult]) -> None:
        """Recompute the selected jobs' statistics, e.g. for results stored before per-request statistics."""
        count = 0
        for result in queryset.select_related("job"):
            with transaction.atomic():
                job_statistics_recompute(result.job)
            count += 1
        self.message_user(request, f"Recomputed the statistics of {count} job(s).")

    @admin.display(description="cold start")
    def cold_start_pretty(self, obj: JobResult) -> str:
        """Cold run metrics."""
        return _pretty(obj.cold_start)

    @admin.display(description="unavailable metrics")
    def unavailable_pretty(self, obj: JobResult) -> str:
        """Metrics that could not be measured, with reasons."""
        return _pretty(obj.unavailable_metrics)


class SampleInline(admin.StackedInline):
    """Samples of a run."""

    model = SampleResult
    fields = ["sample_id", "title", "output", "reference", "output_tokens", "metrics"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(RunResult)
class RunResultAdmin(admin.ModelAdmin):
    """Runs."""

    list_display = ["job", "run_index", "cold_start", "started_at", "finished_at"]
    list_filter = ["cold_start"]
    raw_id_fields = ["job", "attempt"]
    readonly_fields = ["metrics_pretty"]
    exclude = ["metrics"]
    inlines = [SampleInline]

    @admin.display(description="metrics")
    def metrics_pretty(self, obj: RunResult) -> str:
        """Run metrics."""
        return _pretty(obj.metrics)


@admin.register(JobMetricStatistics)
class JobMetricStatisticsAdmin(admin.ModelAdmin):
    """Per-job statistics."""

    list_display = ["job", "metric", "scope", "source", "n", "mean", "std", "median", "p95", "cv"]
    list_filter = ["metric", "scope", "source"]
    search_fields = ["metric"]
    raw_id_fields = ["job"]


@admin.register(LoadPoint)
class LoadPointAdmin(admin.ModelAdmin):
    """Load points of sweeps: figures and notes readable, the raw per-request columns left out (megabytes)."""

    list_display = ["job", "index", "concurrency", "request_rate", "request_rate_infinite", "duration_s", "power_w"]
    raw_id_fields = ["job", "result"]
    readonly_fields = ["figures_pretty", "overhead_pretty", "notes"]
    exclude = ["figures", "raw", "overhead"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[LoadPoint]:
        """Never read the raw columns for the list or the form."""
        return super().get_queryset(request).defer("raw")

    @admin.display(description="figures")
    def figures_pretty(self, obj: LoadPoint) -> str:
        """The point's figures, as the load API shows them."""
        return _pretty(obj.figures)

    @admin.display(description="generator overhead")
    def overhead_pretty(self, obj: LoadPoint) -> str:
        """What the load generator itself cost at this point."""
        return _pretty(obj.overhead)
