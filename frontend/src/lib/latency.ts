/**
 * Latency statistics in their two scopes (pure functions: unit-tested).
 *
 * `statistics` (scope `run`) hold one value per warm run: for a latency, that run's mean over its requests, so
 * their p95 is the p95 of run means. `request_statistics` (scope `request`) hold one value per warm request of
 * the same runs pooled (every inter-token gap for ITL), so their p95 is the one `vllm bench serve`, GuideLLM and
 * AIPerf report. The page shows both, each labelled, and never one under the other's name.
 */
import type { ExperimentResultJob, MetricStatistics, RequestStatistics } from "../api/models";
import { jobLabel } from "./chartData";

/** Latency metrics the server also describes over requests (`common.metrics.PER_REQUEST_METRICS`, same order). */
export const PER_REQUEST_METRICS = ["ttft_s", "tpot_s", "inter_token_gaps_s", "e2e_latency_s"] as const;

export type Scope = MetricStatistics["scope"];

/** Short column label of each scope. */
export const SCOPE_LABELS: Record<Scope, string> = {
  request: "per request",
  run: "per run (mean of each run)",
};

/** What one value of a scope is, for notes and tooltips. */
export function scopeDescription(scope: Scope, metric: string): string {
  if (scope === "request") {
    return metric === "inter_token_gaps_s"
      ? "every inter-token gap of every warm request, pooled"
      : "every warm request, pooled (what vllm bench serve, GuideLLM and AIPerf report)";
  }
  return "one value per warm run: the mean over that run's requests; mean ± std over those run means";
}

/** "8 requests", "120 gaps", "2 runs": what `n` counts in a scope. */
export function countLabel(scope: Scope, n: number, metric: string): string {
  const unit = scope === "run" ? "run" : metric === "inter_token_gaps_s" ? "gap" : "request";
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

export interface LatencyRow {
  job: number;
  /** Agent · model · runtime. */
  label: string;
  /** Statistics over every warm request (null when the server has none for this job). */
  request: RequestStatistics | null;
  /** Statistics over the warm runs' means. */
  run: MetricStatistics | null;
  /** `cold` when the job had a single run and its statistics come from the cold run. */
  source: string | null;
}

/** The latency metrics some job has statistics of (in either scope), in the server's order. */
export function latencyMetrics(jobs: ExperimentResultJob[]): string[] {
  return PER_REQUEST_METRICS.filter((m) => jobs.some((j) => j.request_statistics?.[m] || j.statistics[m]));
}

/** One row per job with `metric` in either scope: the per-request and the per-run statistics side by side. */
export function latencyRows(jobs: ExperimentResultJob[], metric: string): LatencyRow[] {
  const rows: LatencyRow[] = [];
  for (const job of jobs) {
    // An older server sends no request_statistics: the per-request cells then read "—", never the run figures.
    const request = job.request_statistics?.[metric] ?? null;
    const run = job.statistics[metric] ?? null;
    if (!request && !run) continue;
    rows.push({ job: job.job, label: jobLabel(job), request, run, source: request?.source ?? run?.source ?? null });
  }
  return rows;
}

/** The comparison's note: its cells are per-run figures, and where per-request percentiles are for latencies. */
export function comparisonScopeNote(metric: string): string {
  const base = "Cells: mean ± std over the warm runs (per run: one value per run).";
  return (PER_REQUEST_METRICS as readonly string[]).includes(metric)
    ? `${base} For a latency each run's value is the mean of its requests; per-request percentiles are in the Latency table.`
    : base;
}
