import { describe, expect, it } from "vitest";
import { describeSlo, experimentLoad, formatLoad, loadNumber, sloTargetMs } from "./load";
import {
  cellLabels, comparisonRows, goodputChart, histogram, latencyCurves, sloLine, sweepLoads, sweepProgress,
} from "./loadCharts";
import { cell, point, sweep } from "./loadFixtures";

describe("load values", () => {
  it("reads and formats concurrency, rates and inf", () => {
    expect(loadNumber("inf")).toBe(Number.POSITIVE_INFINITY);
    expect(loadNumber("2.5")).toBe(2.5);
    expect(loadNumber(null)).toBeNaN();
    expect(formatLoad(8, "concurrency")).toBe("8");
    expect(formatLoad(0.5, "request_rate")).toBe("0.5 req/s");
    expect(formatLoad("inf", "request_rate")).toBe("inf");
    expect(formatLoad(null, "concurrency")).toBe("—");
  });

  it("finds an experiment's load spec and describes SLOs", () => {
    expect(experimentLoad({})).toBeNull();
    expect(experimentLoad({ load: null })).toBeNull();
    expect(experimentLoad({ load: { concurrency: [1] } })).toEqual({ concurrency: [1] });
    expect(describeSlo({ ttft_ms: 200, e2e_ms: 5000, percentile: 90, max_error_rate: 0.01 }))
      .toBe("TTFT ≤ 200 ms, e2e ≤ 5000 ms at p90, errors ≤ 1%");
    expect(describeSlo(null)).toBe("none");
    expect(sloTargetMs({ tpot_ms: 50 }, "tpot_s")).toBe(50);
    expect(sloTargetMs({ tpot_ms: 50 }, "itl_s")).toBeNull();
  });
});

describe("cellLabels", () => {
  it("names cells by what tells them apart", () => {
    const data = sweep();
    expect([...cellLabels(data.cells).values()]).toEqual(["host-1 · vllm", "host-2 · openai"]);
    expect([...cellLabels([cell(3)]).values()]).toEqual(["host-3 · qwen · vllm"]);
    // The same combination twice keeps apart by job.
    expect([...cellLabels([cell(4, { agent_name: "h" }), cell(5, { agent_name: "h" })]).values()])
      .toEqual(["h · qwen · vllm (#4)", "h · qwen · vllm (#5)"]);
  });
});

describe("comparisonRows", () => {
  it("shows where each cell reaches its max goodput, peak and knee, and its cost at max goodput", () => {
    const data = sweep();
    const [a, b] = comparisonRows(data.cells, "concurrency", true, 5);
    expect(a).toMatchObject({
      job: 1, agent: "host-1", hardware: "NVIDIA H100 80GB", method: "http", cost: "$2.00/h", pointsRun: 3, pointsPlanned: 5,
      maxGoodput: { goodput: 3.4, load: "4" }, peak: { outputThroughput: 640, load: "16" },
      knee: { outputThroughput: 450, e2eMedianS: 2.6, load: "4" }, tokensPerDollar: 810000, tokensPerJoule: 2.5,
      stoppedEarly: "median e2e latency 60 s is more than 20x the first point's", state: null,
    });
    // Running, one point measured, none meeting the SLOs yet.
    expect(b).toMatchObject({ job: 2, status: "running", cost: null, pointsRun: 1, maxGoodput: null, state: "no-slo-met" });
  });

  it("says why a cell has no figures: waiting, running, failed", () => {
    const rows = comparisonRows([
      cell(1, { status: "pending" }), cell(2, { status: "running" }), cell(3, { status: "failed" }),
      cell(4, { status: "failed", points: [point(0, 1)] }),
    ], "concurrency", false, null);
    expect(rows.map((r) => r.state)).toEqual(["waiting", "running", "failed", null]);
    expect(rows.map((r) => r.efficiencyAt)).toEqual([null, null, null, null]);
    expect(rows[0]?.pointsPlanned).toBeNull();
  });
});

describe("efficiency figures", () => {
  it("are those of max goodput, or of the peak when the sweep has no SLOs", () => {
    const data = sweep();
    expect(comparisonRows(data.cells, "concurrency", true, null)[0]).toMatchObject({
      tokensPerDollar: 810000, tokensPerJoule: 2.5, efficiencyAt: "max goodput" });
    const peaked = cell(5, { points: [point(0, 1), point(1, 2, { output_tokens_per_dollar: 9000, output_tokens_per_joule: 3 })],
      peak: { index: 1, load: 2, request_throughput: 10, output_throughput: 1280 } });
    expect(comparisonRows([peaked], "concurrency", false, null)[0]).toMatchObject({
      tokensPerDollar: 9000, tokensPerJoule: 3, efficiencyAt: "peak" });
    // With SLOs that no point met there is no figure to show.
    expect(comparisonRows([peaked], "concurrency", true, null)[0]).toMatchObject({ tokensPerDollar: null, efficiencyAt: null });
  });
});

describe("sweepProgress", () => {
  it("counts load points and requests of a running sweep", () => {
    expect(sweepProgress({ run_index: 2, runs_total: 5, samples_done: 30, samples_total: 100 })).toBe("point 2/5 · 30/100 requests");
    expect(sweepProgress({ run_index: 1, runs_total: 3 })).toBe("point 1/3");
    expect(sweepProgress({ run_index: 0, runs_total: 3 })).toBeNull();
    expect(sweepProgress(null)).toBeNull();
  });
});

describe("latencyCurves", () => {
  it("plots each cell's points at (throughput, latency in ms) with its load, and marks max goodput and knee", () => {
    const [a, b] = latencyCurves(sweep().cells, "concurrency", { x: "output_throughput", y: "ttft_s", stat: "p99" });
    expect(a?.name).toBe("host-1 · vllm");
    expect(a?.points.map((p) => [p.x, p.y, p.load, p.sloMet])).toEqual([
      [128, 100, "1", true], [450, 160, "4", true], [640, 800, "16", false],
    ]);
    expect(a?.maxGoodput).toMatchObject({ x: 450, y: 160, load: "4" });
    expect(a?.knee).toMatchObject({ index: 1 });
    expect(b?.points).toHaveLength(1);
    expect(b?.maxGoodput).toBeNull();
  });

  it("reads the chosen throughput and statistic and skips points without the latency", () => {
    const c = cell(1, { points: [point(1, 2, { request_throughput: 2, ttft: 0.2 }), point(0, 1, { ttft_s: null })] });
    const [curve] = latencyCurves([c, cell(2)], "concurrency", { x: "request_throughput", y: "ttft_s", stat: "median" });
    expect(curve?.points.map((p) => [p.x, p.y])).toEqual([[2, 200]]);
    // A cell without points has no curve.
    expect(latencyCurves([cell(2)], "concurrency", { x: "request_throughput", y: "e2e_s", stat: "p90" })).toEqual([]);
  });

  it("draws the SLO line only for a latency with a target", () => {
    expect(sloLine({ ttft_ms: 200, percentile: 99 }, "ttft_s")).toEqual({ ms: 200, label: "SLO 200 ms (judged at p99)" });
    expect(sloLine({ ttft_ms: 200 }, "e2e_s")).toBeNull();
    expect(sloLine(null, "ttft_s")).toBeNull();
  });
});

describe("goodputChart", () => {
  it("lines up every cell's goodput on the union of loads", () => {
    const data = goodputChart(sweep().cells, "concurrency", true);
    expect(data.measure).toBe("goodput");
    expect(data.loads).toEqual(["1", "4", "16"]);
    expect(data.series.map((s) => s.values)).toEqual([[1, 3.4, 1.2], [0, null, null]]);
    expect(data.series[0]?.sloMet).toEqual([true, true, false]);
  });

  it("shows request throughput without SLOs, and sorts request rates with inf last", () => {
    const cells = [cell(1, { points: [
      point(0, "inf", { request_throughput: 9 }, "request_rate"), point(1, 0.5, { request_throughput: 0.5 }, "request_rate"),
      point(2, 10, { request_throughput: 8 }, "request_rate"),
    ] })];
    expect(sweepLoads(cells, "request_rate")).toEqual([0.5, 10, "inf"]);
    const data = goodputChart(cells, "request_rate", false);
    expect(data.measure).toBe("request_throughput");
    expect(data.loads).toEqual(["0.5 req/s", "10 req/s", "inf"]);
    expect(data.series[0]?.values).toEqual([0.5, 8, 9]);
  });
});

describe("histogram", () => {
  it("counts every value once in equal-width bins", () => {
    const values = Array.from({ length: 1000 }, (_, i) => (i % 100) + 0.5);
    const bins = histogram(values);
    expect(bins.reduce((n, b) => n + b.count, 0)).toBe(1000);
    expect(bins[0]?.lo).toBe(0.5);
    expect(bins[bins.length - 1]?.hi).toBe(99.5);
    expect(bins.length).toBeGreaterThan(1);
    expect(bins.length).toBeLessThanOrEqual(40);
    const widths = bins.map((b) => b.hi - b.lo);
    widths.forEach((w) => expect(w).toBeCloseTo(widths[0] ?? 0, 9));
  });

  it("handles one value, equal values, no values and non-finite values", () => {
    expect(histogram([])).toEqual([]);
    expect(histogram([5, 5, 5])).toEqual([{ lo: 5, hi: 5, count: 3 }]);
    expect(histogram([Number.NaN, 1, Number.POSITIVE_INFINITY])).toEqual([{ lo: 1, hi: 1, count: 1 }]);
    const skewed = histogram([1, 1, 1, 1, 2, 100], 5);
    expect(skewed.reduce((n, b) => n + b.count, 0)).toBe(6);
    expect(skewed.length).toBeLessThanOrEqual(5);
    expect(skewed[skewed.length - 1]?.count).toBe(1);
  });
});
