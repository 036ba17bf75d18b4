import { describe, expect, it } from "vitest";
import type { ExperimentResultJob, MetricStatistics, RequestStatistics } from "../api/models";
import { comparisonScopeNote, countLabel, latencyMetrics, latencyRows, SCOPE_LABELS, scopeDescription } from "./latency";

// The server's figures for a job whose warm runs' TTFTs are [0.1, 0.2, 0.3, 1.0] and [0.1, 0.1, 0.2, 0.2]
// (asserted to the generated types: fields added to the statistics later must not break these fixtures).
const perRun = {
  n: 2, mean: 0.275, std: 0.177, min: 0.15, max: 0.4, median: 0.275, p90: 0.375, p95: 0.3875, p99: 0.3975,
  cv: 0.64, ci95: [-1.3, 1.9], ci_method: "student_t", outliers: [], outlier_rule: "modified_z_mad>3.5",
  values: [0.4, 0.15], unit: "s", source: "warm", scope: "run",
} as MetricStatistics;
const perRequest = {
  ...perRun, n: 8, std: 0.29, min: 0.1, max: 1.0, median: 0.2, p90: 0.51, p95: 0.755, p99: 0.951, cv: null,
  ci95: null, ci_method: null, outlier_rule: "", values: null, scope: "request",
} as RequestStatistics;

const job = (id: number, statistics: Record<string, MetricStatistics>,
  requestStatistics?: Record<string, RequestStatistics>): ExperimentResultJob => ({
  job: id, status: "completed", model: "m", runtime: "vllm", agent: `a${id}`, agent_name: `host-${id}`,
  hardware_fingerprint: "fp", scoring_status: "scored", statistics,
  request_statistics: requestStatistics as Record<string, RequestStatistics>,
  efficiency: null, cold_start: null, unavailable_metrics: {},
});

describe("latency scopes", () => {
  it("puts each scope's own figures side by side, never one for the other", () => {
    const rows = latencyRows([job(1, { ttft_s: perRun }, { ttft_s: perRequest })], "ttft_s");
    expect(rows).toHaveLength(1);
    expect(rows[0]?.request?.p95).toBe(0.755);
    expect(rows[0]?.run?.p95).toBe(0.3875);
    expect(rows[0]?.label).toBe("host-1 · m · vllm");
    expect(rows[0]?.source).toBe("warm");
  });

  it("leaves the per-request cells empty for a server without them", () => {
    const rows = latencyRows([job(2, { ttft_s: perRun })], "ttft_s");
    expect(rows[0]?.request).toBeNull();
    expect(rows[0]?.run?.mean).toBe(0.275);
    expect(latencyRows([job(3, { output_tokens_per_s: perRun }, {})], "ttft_s")).toEqual([]);
  });

  it("lists the latency metrics present, in the server's order", () => {
    const jobs = [job(1, { e2e_latency_s: perRun, output_tokens_per_s: perRun }, { ttft_s: perRequest })];
    expect(latencyMetrics(jobs)).toEqual(["ttft_s", "e2e_latency_s"]);
  });

  it("labels the scopes and what n counts", () => {
    expect(SCOPE_LABELS.request).toBe("per request");
    expect(SCOPE_LABELS.run).toBe("per run (mean of each run)");
    expect(countLabel("request", 8, "ttft_s")).toBe("8 requests");
    expect(countLabel("request", 120, "inter_token_gaps_s")).toBe("120 gaps");
    expect(countLabel("run", 1, "ttft_s")).toBe("1 run");
    expect(scopeDescription("request", "inter_token_gaps_s")).toContain("every inter-token gap");
    expect(scopeDescription("run", "ttft_s")).toContain("mean over that run's requests");
  });

  it("says the comparison cells are per run, and where latencies' per-request figures are", () => {
    expect(comparisonScopeNote("ttft_s")).toContain("per-request percentiles are in the Latency table");
    expect(comparisonScopeNote("output_tokens_per_s")).toBe("Cells: mean ± std over the warm runs (per run: one value per run).");
  });
});
