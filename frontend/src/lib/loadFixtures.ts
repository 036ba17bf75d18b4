/** Load sweep figures shaped as the server sends them, for the tests of the load views. */
import type { ExperimentLoad, LatencySummary, LoadCell, LoadPointFigures } from "./load";

/** A latency summary whose every statistic derives from `median` (seconds). */
export function summary(median: number, count = 100): LatencySummary {
  return { mean: median, median, std: median / 10, p90: median * 1.5, p95: median * 1.8, p99: median * 2, min: median / 2, max: median * 3, count };
}

/** A load point: `load` is its concurrency (or rate, with `mode`), the throughputs and TTFT median given. */
export function point(index: number, load: number | "inf", fields: Partial<LoadPointFigures> & { ttft?: number } = {},
  mode: "concurrency" | "request_rate" = "concurrency"): LoadPointFigures {
  const { ttft = 0.1, ...rest } = fields;
  return {
    index, concurrency: mode === "concurrency" ? Number(load) : null, request_rate: mode === "request_rate" ? load : null,
    completed: 100, failed: 0, timed_out: 0, error_rate: 0, duration_s: 10, total_input_tokens: 51200,
    total_output_tokens: 12800, request_throughput: 10, output_throughput: 1280, total_token_throughput: 6400,
    goodput: null, achieved_concurrency: Number(load) || null, slo_met: null, ttft_s: summary(ttft), tpot_s: summary(0.02),
    itl_s: summary(0.02), e2e_s: summary(2.6), power_w: null, energy_j: null, energy_per_output_token_j: null,
    output_tokens_per_joule: null, output_tokens_per_dollar: null, ...rest,
  };
}

/** A cell (one job's sweep) with the given points. */
export function cell(job: number, fields: Partial<LoadCell> = {}): LoadCell {
  return {
    job, status: "completed", agent_id: `a${job}`, agent_name: `host-${job}`, hardware: "NVIDIA H100 80GB", model: "qwen",
    runtime: "vllm", method: "http", cost_per_hour: null, stopped_early: null, points: [], peak: null,
    max_goodput: null, knee: null, ...fields,
  };
}

/** A two-cell concurrency sweep with SLOs: one cell completed (stopped early), one still running. */
export function sweep(): ExperimentLoad {
  const a = cell(1, {
    cost_per_hour: "2.0000",
    stopped_early: "median e2e latency 60 s is more than 20x the first point's",
    points: [
      point(0, 1, { request_throughput: 1, output_throughput: 128, goodput: 1, slo_met: true, ttft: 0.05 }),
      point(1, 4, { request_throughput: 3.5, output_throughput: 450, goodput: 3.4, slo_met: true, ttft: 0.08,
        output_tokens_per_dollar: 810000, output_tokens_per_joule: 2.5 }),
      point(2, 16, { request_throughput: 5, output_throughput: 640, goodput: 1.2, slo_met: false, ttft: 0.4 }),
    ],
    peak: { index: 2, load: 16, request_throughput: 5, output_throughput: 640 },
    max_goodput: { index: 1, load: 4, goodput: 3.4, output_throughput: 450, output_tokens_per_dollar: 810000, output_tokens_per_joule: 2.5 },
    knee: { index: 1, load: 4, output_throughput: 450, e2e_median_s: 2.6 },
  });
  const b = cell(2, { status: "running", agent_name: "host-2", hardware: "Apple M2", runtime: "openai",
    points: [point(0, 1, { request_throughput: 0.5, output_throughput: 64, goodput: 0, slo_met: false, ttft: 0.3 })] });
  return { experiment: 7, mode: "concurrency", slo: { ttft_ms: 200, percentile: 99 }, cells: [a, b] };
}
