"""Stored results: one row per run, per sample and per (job, metric) statistic."""

from __future__ import annotations

from django.db import models

from common.protocol import ExecutionInfo
from common.statuses import ScoringStatus


class JobResult(models.Model):
    """Job-level result metadata (one per job; the accepted attempt's result).

    Attributes:
        job: The job.
        attempt: The attempt whose result was accepted.
        access_mode: White, gray or black box.
        statistics_source: ``warm`` (normal) or ``cold`` (runs_per_job = 1).
        cold_start: The cold run's metrics, including ``model_load_s``.
        unavailable_metrics: Metric -> reason it could not be measured.
        hardware_fingerprint: Fingerprint of the agent that produced it.
        error: Error text for failed jobs.
        execution: Where the runtime held the model (:class:`common.protocol.ExecutionInfo`: device, dtype,
            parameters, weight bytes), for white-box runtimes; null otherwise.
        benchmark: The hardware benchmark the job measured (its last run's ``HardwareBenchmarkResult``), for
            ``hardware_benchmark`` jobs; the agent's measured peaks are its latest such result.
        raw: The result message as received, minus runs (kept for audit; nothing reads it back).
        scoring_status: ``scoring`` from the moment the result is stored until a scoring worker has added ROUGE, the
            run means and the statistics (``scored``), or has recorded why it could not (``failed``).
        scoring_error: Why scoring failed (empty otherwise).
        scored_at: When scoring ended.
        load: The job's load sweep, for a job with a load spec (its points are :class:`LoadPoint` rows):
            ``{"mode", "method", "stopped_early", "spec"}``; null for sequential runs.
    """

    job = models.OneToOneField("experiments.Job", on_delete=models.CASCADE, related_name="result")
    attempt = models.ForeignKey("experiments.JobAttempt", null=True, blank=True, on_delete=models.SET_NULL)
    access_mode = models.CharField(max_length=20, blank=True, default="")
    statistics_source = models.CharField(max_length=10, default="warm")
    cold_start = models.JSONField(null=True, blank=True)
    unavailable_metrics = models.JSONField(default=dict, blank=True)
    hardware_fingerprint = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    execution = models.JSONField(null=True, blank=True)
    benchmark = models.JSONField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    scoring_status = models.CharField(max_length=10, choices=ScoringStatus.choices(), default=ScoringStatus.SCORING)
    scoring_error = models.TextField(blank=True, default="")
    scored_at = models.DateTimeField(null=True, blank=True)
    load = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            # The scoring workers' queue: only the few results waiting are in it, oldest first.
            models.Index(fields=["id"], condition=models.Q(scoring_status=ScoringStatus.SCORING),
                         name="result_scoring_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"result of job #{self.job_id}"

    @property
    def is_scoring(self) -> bool:
        """True while the figures (ROUGE, run means, statistics) are still being computed."""
        return self.scoring_status == ScoringStatus.SCORING

    @property
    def execution_info(self) -> ExecutionInfo | None:
        """The execution facts as the protocol model (None when the runtime did not report them)."""
        return ExecutionInfo.model_validate(self.execution) if self.execution else None


class RunResult(models.Model):
    """One run of a job (run 1 is the cold run).

    Attributes:
        job: The job.
        attempt: The attempt that produced it.
        run_index: 1-based index.
        cold_start: True for the cold run.
        metrics: Run-level scalar metrics, including server-side ROUGE means (once the result is scored).
        unavailable_metrics: Metric -> reason.
        telemetry: Optional time series for plots.
    """

    job = models.ForeignKey("experiments.Job", on_delete=models.CASCADE, related_name="runs")
    attempt = models.ForeignKey("experiments.JobAttempt", null=True, blank=True, on_delete=models.SET_NULL)
    run_index = models.PositiveIntegerField()
    cold_start = models.BooleanField(default=False)
    metrics = models.JSONField(default=dict)
    unavailable_metrics = models.JSONField(default=dict, blank=True)
    telemetry = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job_id", "run_index"]
        constraints = [models.UniqueConstraint(fields=["job", "run_index"], name="run_job_index_unique")]

    def __str__(self) -> str:
        kind = "cold" if self.cold_start else "warm"
        return f"run {self.run_index} ({kind}) of job #{self.job_id}"


class SampleResult(models.Model):
    """One request of a run: output, reference, timings and per-sample metrics (ROUGE added when scored).

    Attributes:
        run: The run.
        sample_id: Sample id (stable across runs of a job).
        title: Article title or label.
        output: Generated text.
        reference: Reference text.
        metrics: Per-request metrics (``e2e_latency_s``, ``ttft_s``, ``tpot_s``, ``rouge1`` ...).
        timings: Raw timestamps and inter-token gaps as received.
    """

    run = models.ForeignKey(RunResult, on_delete=models.CASCADE, related_name="samples")
    sample_id = models.CharField(max_length=200)
    title = models.CharField(max_length=500, blank=True, default="")
    output = models.TextField(blank=True, default="")
    reference = models.TextField(blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    metrics = models.JSONField(default=dict)
    timings = models.JSONField(default=dict, blank=True)
    finish_reason = models.CharField(max_length=50, blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["run_id", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "sample_id"], name="sample_run_id_unique")]

    def __str__(self) -> str:
        return f"sample {self.sample_id} of {self.run}"


class StatisticsScope(models.TextChoices):
    """What one value of a job's statistics is.

    ``run``: one run's figure (for latencies, the mean over that run's requests), so the p95 is the p95 of run
    means. ``request``: one request (one inter-token gap for ITL), every warm run's requests pooled, so the p95 is
    the p95 over requests, as ``vllm bench serve``, GuideLLM and AIPerf report it.
    """

    RUN = "run", "per run (mean of each run)"
    REQUEST = "request", "per request (all warm requests pooled)"


class JobMetricStatistics(models.Model):
    """Statistics of one metric of one job (``common.protocol.MetricStatistics`` in columns).

    Every metric has statistics over runs (``scope = run``); the latency metrics
    (``common.metrics.PER_REQUEST_METRICS``) also have them over requests (``scope = request``).

    Attributes:
        job: The job.
        metric: Metric name.
        scope: ``run`` (one value per run) or ``request`` (one value per request; per gap for ITL).
        source: ``warm`` or ``cold``.
        n: Number of values.
        ci_low: Lower bound of the 95% CI of the mean (runs only).
        ci_high: Upper bound.
        ci_method: How the interval was computed (``common.stats.CI_METHODS``); rows stored before the
            method was recorded hold ``student_t``.
        outliers: Indices into ``values`` (runs only).
        values: Raw values: one per run, or one per request (per gap for ITL) in run then request order.
    """

    job = models.ForeignKey("experiments.Job", on_delete=models.CASCADE, related_name="statistics")
    metric = models.CharField(max_length=100)
    scope = models.CharField(max_length=10, choices=StatisticsScope.choices, default=StatisticsScope.RUN)
    source = models.CharField(max_length=10, default="warm")
    n = models.PositiveIntegerField()
    mean = models.FloatField()
    std = models.FloatField()
    min = models.FloatField()
    max = models.FloatField()
    median = models.FloatField()
    p90 = models.FloatField()
    p95 = models.FloatField()
    p99 = models.FloatField()
    cv = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    ci_method = models.CharField(max_length=30, blank=True)
    outliers = models.JSONField(default=list, blank=True)
    outlier_rule = models.CharField(max_length=50, blank=True, default="")
    values = models.JSONField(default=list)
    unit = models.CharField(max_length=20, blank=True, default="")

    class Meta:
        ordering = ["job_id", "metric", "scope"]
        constraints = [
            models.UniqueConstraint(fields=["job", "metric", "scope"], name="stat_job_metric_scope_unique")
        ]
        indexes = [models.Index(fields=["metric", "job"], name="stat_metric_job_idx")]

    def __str__(self) -> str:
        return f"{self.metric} ({self.scope}) of job #{self.job_id}: {self.mean:.4g} ± {self.std:.4g}"

    def as_dict(self, *, values: bool = True) -> dict:
        """Return the statistics in the protocol's ``MetricStatistics`` shape, with ``source`` and ``scope``.

        Args:
            values: Include the raw values; without them ``values`` is None (a job's per-request ITL holds one
                value per streamed chunk, too many to repeat in every job of an experiment's results).

        Returns:
            A JSON-ready dict.
        """
        return {
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "median": self.median,
            "p90": self.p90,
            "p95": self.p95,
            "p99": self.p99,
            "cv": self.cv,
            "ci95": [self.ci_low, self.ci_high] if self.ci_low is not None else None,
            "ci_method": self.ci_method if self.ci_low is not None else None,
            "outliers": self.outliers,
            "outlier_rule": self.outlier_rule,
            "values": self.values if values else None,
            "unit": self.unit,
            "source": self.source,
            "scope": self.scope,
        }


class LoadPoint(models.Model):
    """One load point of a job's sweep (serving under load): its raw per-request timings and its figures.

    The figures are the server's own, computed from the raw records (:func:`common.loadmetrics.point_figures`, with
    the experiment's objectives and the agent's cost per hour) when the result is stored; the agent's summaries are
    never trusted.

    Attributes:
        job: The job.
        result: The job's result the point came with.
        index: 0-based position in the sweep (the load spec's order).
        concurrency: The point's concurrency (closed-loop sweeps).
        request_rate: The point's request rate, requests/s (open-loop sweeps; null when infinite or closed loop).
        request_rate_infinite: The point sent every request at once (``request_rate`` ``"inf"``).
        duration_s: From the first send to the last request's end.
        warmup_requests: Warm-up requests sent before the point (not measured).
        figures: The point's figures (:func:`common.loadmetrics.point_figures`).
        raw: The measured requests, compacted into columns (see :func:`results.services.compact_requests`).
        power_w: Mean power over the point, where telemetry had it.
        energy_j: Energy over the point, where telemetry had it.
        power_source: What measured the power (``nvml``, ``rapl`` ...).
        overhead: What the load generator itself cost (:class:`common.protocol.GeneratorOverhead`).
        notes: Caveats the agent recorded.
    """

    job = models.ForeignKey("experiments.Job", on_delete=models.CASCADE, related_name="load_points")
    result = models.ForeignKey(JobResult, on_delete=models.CASCADE, related_name="load_points")
    index = models.PositiveSmallIntegerField()
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    request_rate = models.FloatField(null=True, blank=True)
    request_rate_infinite = models.BooleanField(default=False)
    duration_s = models.FloatField()
    warmup_requests = models.PositiveIntegerField(default=0)
    figures = models.JSONField(default=dict)
    raw = models.JSONField(default=dict)
    power_w = models.FloatField(null=True, blank=True)
    energy_j = models.FloatField(null=True, blank=True)
    power_source = models.CharField(max_length=50, blank=True, default="")
    overhead = models.JSONField(default=dict, blank=True)
    notes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["job_id", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="load_point_job_index_unique")]

    def __str__(self) -> str:
        return f"load point {self.index} of job #{self.job_id}"

    @property
    def load(self) -> int | float | str | None:
        """The point's load: its concurrency, else its request rate (``"inf"`` when infinite)."""
        if self.concurrency is not None:
            return self.concurrency
        return "inf" if self.request_rate_infinite else self.request_rate
