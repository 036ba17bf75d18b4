import { describe, expect, it } from "vitest";
import type { Comparison, ExperimentResultJob, MetricStatistics } from "../api/models";
import { availableMetrics, coldVsWarm, comparisonToSeries, distributions, fiveNumbers, scatterPoints } from "./chartData";

const stats = (mean: number, values: number[], extra: Partial<MetricStatistics> = {}): MetricStatistics => ({
  n: values.length, mean, std: 1, min: Math.min(...values), max: Math.max(...values), median: mean, p90: mean, p95: mean,
  p99: mean, cv: null, ci95: [mean - 2, mean + 2], ci_method: "student_t", outliers: [], outlier_rule: "modified_z_mad>3.5", values, unit: "",
  source: "warm", scope: "run", ...extra,
});

const job = (id: number, agent: string, statistics: Record<string, MetricStatistics>, cold: Record<string, number | null> | null = null): ExperimentResultJob => ({
  job: id, status: "completed", model: "m", runtime: "transformers", agent: `a${id}`, agent_name: agent, hardware_fingerprint: "fp", scoring_status: "scored",
  statistics, request_statistics: {}, efficiency: null, cold_start: cold, unavailable_metrics: {},
});

const comparison: Comparison = {
  experiment: 1, metric: "output_tokens_per_s", unit: "tokens/s", higher_is_better: true,
  columns: [
    { key: "a1", agent: "a1", agent_name: "pi", hardware_fingerprint: "x", cost_per_hour: null },
    { key: "a2", agent: "a2", agent_name: "h100", hardware_fingerprint: "y", cost_per_hour: 2 },
  ],
  rows: [
    { model: "m", runtime: "transformers", cells: {
      a1: { job: 1, status: "completed", scoring_status: "scored", mean: 10, std: 2, n: 2, ci95: [5, 15] },
      a2: { job: 2, status: "failed", scoring_status: "scored", mean: null, std: null, n: 0 },
    } },
    { model: "m", runtime: "vllm", cells: { a2: { job: 3, status: "completed", scoring_status: "scored", mean: 100, std: null, n: 1 } } },
  ],
};

describe("comparisonToSeries", () => {
  it("makes one series per row and one category per agent, with std error bars", () => {
    const { categories, series } = comparisonToSeries(comparison, "std");
    expect(categories).toEqual(["pi", "h100"]);
    expect(series.map((s) => s.name)).toEqual(["m · transformers", "m · vllm"]);
    expect(series[0]?.points[0]).toMatchObject({ value: 10, low: 8, high: 12, n: 2 });
    expect(series[0]?.points[1]).toMatchObject({ value: null, low: null, high: null });
    expect(series[1]?.points[0]).toMatchObject({ value: null, n: 0 });
    expect(series[1]?.points[1]).toMatchObject({ value: 100, low: null, high: null });
  });
  it("uses the 95% confidence interval when asked", () => {
    const { series } = comparisonToSeries(comparison, "ci95");
    expect(series[0]?.points[0]).toMatchObject({ low: 5, high: 15 });
  });
});

describe("per-job transforms", () => {
  const jobs = [
    job(1, "pi", { e2e_latency_s: stats(2, [1.9, 2.1]), rougeL: stats(0.3, [0.3, 0.3]) }, { e2e_latency_s: 9.5 }),
    job(2, "h100", { e2e_latency_s: stats(0.2, [0.2, 0.2, 5], { outliers: [2] }) }),
  ];
  it("scatter needs both metrics", () => {
    expect(scatterPoints(jobs, "e2e_latency_s", "rougeL")).toEqual([{ name: "pi · m · transformers", x: 2, y: 0.3, job: 1 }]);
  });
  it("cold vs warm pairs the cold run with the warm mean", () => {
    expect(coldVsWarm(jobs, "e2e_latency_s")).toEqual([
      { name: "pi · m · transformers", cold: 9.5, warm: 2, job: 1 },
      { name: "h100 · m · transformers", cold: null, warm: 0.2, job: 2 },
    ]);
  });
  it("distributions keep raw values and resolve outlier indices", () => {
    const d = distributions(jobs, "e2e_latency_s");
    expect(d[1]?.outliers).toEqual([5]);
    expect(d[1]?.values).toEqual([0.2, 0.2, 5]);
    expect(distributions(jobs, "rouge1")).toEqual([]);
  });
  it("lists metrics in catalogue order", () => {
    expect(availableMetrics(jobs, ["rougeL", "e2e_latency_s"])).toEqual(["rougeL", "e2e_latency_s"]);
  });
  it("computes five-number summaries", () => {
    expect(fiveNumbers([4, 1, 3, 2, 5])).toEqual([1, 2, 3, 4, 5]);
    expect(fiveNumbers([])).toBeNull();
  });
});

describe("labels of jobs without a model", () => {
  it("leave the placeholder model out", async () => {
    const { jobLabel, modelRuntime } = await import("./chartData");
    expect(modelRuntime("none", "hardware")).toBe("hardware");
    expect(jobLabel({ job: 1, agent_name: "pi", model: "none", runtime: "hardware" })).toBe("pi · hardware");
    expect(jobLabel({ job: 1, agent_name: null, model: "m", runtime: "vllm" })).toBe("removed agent · m · vllm");
  });
});
