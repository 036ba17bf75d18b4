/**
 * What the views of a load sweep show, computed from the server's figures: the comparison table's rows, the
 * throughput-vs-latency and load-vs-goodput series, and histograms of raw latencies. Pure: unit-tested.
 */
import {
  formatLoad, loadNumber, pointLoad, sloTargetMs, type LatencyKey, type LoadCell, type LoadMode, type LoadPointFigures,
  type LoadValue, type SloSpec,
} from "./load";

/** Cell statuses whose sweep will not grow any more. */
const FINISHED = new Set(["completed", "failed", "cancelled", "timed_out", "lost", "interrupted", "partially_failed"]);

/** Legend names of cells: the parts (agent, model, runtime, method) that tell them apart, all of them for one cell. */
export function cellLabels(cells: LoadCell[]): Map<number, string> {
  const parts = (c: LoadCell) => [c.agent_name || c.hardware || "unassigned", c.model, c.runtime, c.method];
  const varying = [0, 1, 2, 3].filter((i) => new Set(cells.map((c) => parts(c)[i])).size > 1);
  const shown = varying.length ? varying : [0, 1, 2];
  const labels = new Map<number, string>();
  for (const c of cells) labels.set(c.job, shown.map((i) => parts(c)[i]).join(" · "));
  // Two cells alike in every part (the same combination run twice) keep apart by their job.
  const counts = new Map<string, number>();
  labels.forEach((l) => counts.set(l, (counts.get(l) ?? 0) + 1));
  labels.forEach((l, job) => { if ((counts.get(l) ?? 0) > 1) labels.set(job, `${l} (#${job})`); });
  return labels;
}

/** An agent's cost per hour ("2.5000") for people ("$2.50/h"), or null when not set or unreadable. */
export function formatCost(costPerHour: string | null): string | null {
  const n = costPerHour === null ? Number.NaN : Number(costPerHour);
  return Number.isFinite(n) ? `$${n.toFixed(2)}/h` : null;
}

/** One row of the comparison table. */
export interface ComparisonRow {
  job: number;
  label: string;
  agent: string;
  hardware: string;
  model: string;
  runtime: string;
  method: LoadCell["method"];
  status: LoadCell["status"];
  /** The agent's cost ("$2.50/h"), which output tokens per dollar derive from; null when not set. */
  cost: string | null;
  /** Points measured so far, and how many the spec plans (null when unknown). */
  pointsRun: number;
  pointsPlanned: number | null;
  /** "max goodput 3.2 req/s at 8" etc.: null when the figure does not exist (yet). */
  maxGoodput: { goodput: number | null; load: string } | null;
  peak: { outputThroughput: number | null; load: string } | null;
  knee: { outputThroughput: number | null; e2eMedianS: number | null; load: string } | null;
  /** Output tokens per dollar and per joule at max goodput (at the peak when the sweep has no SLOs). */
  tokensPerDollar: number | null;
  tokensPerJoule: number | null;
  /** Which point the two figures above are of (null when neither exists). */
  efficiencyAt: "max goodput" | "peak" | null;
  stoppedEarly: string | null;
  /** Why the row has no figures, when it has none: "running", "failed"... (null when it has them). */
  state: "running" | "waiting" | "failed" | "no-slo-met" | "no-points" | null;
}

/** Output tokens per dollar and per joule at max goodput; without SLOs (no goodput) at the peak. */
function efficiency(c: LoadCell, hasSlo: boolean): Pick<ComparisonRow, "tokensPerDollar" | "tokensPerJoule" | "efficiencyAt"> {
  if (c.max_goodput) {
    return { tokensPerDollar: c.max_goodput.output_tokens_per_dollar, tokensPerJoule: c.max_goodput.output_tokens_per_joule,
      efficiencyAt: "max goodput" };
  }
  const peak = !hasSlo && c.peak ? c.points.find((p) => p.index === c.peak?.index) : undefined;
  if (peak) {
    return { tokensPerDollar: peak.output_tokens_per_dollar, tokensPerJoule: peak.output_tokens_per_joule, efficiencyAt: "peak" };
  }
  return { tokensPerDollar: null, tokensPerJoule: null, efficiencyAt: null };
}

/** The comparison table: one row per cell, in the server's order. */
export function comparisonRows(cells: LoadCell[], mode: LoadMode | null, hasSlo: boolean, pointsPlanned: number | null): ComparisonRow[] {
  const labels = cellLabels(cells);
  return cells.map((c) => {
    const finished = FINISHED.has(c.status);
    let state: ComparisonRow["state"] = null;
    if (c.points.length === 0) {
      state = !finished ? (c.status === "running" ? "running" : "waiting") : c.status === "completed" ? "no-points" : "failed";
    } else if (hasSlo && !c.max_goodput) state = "no-slo-met";
    return {
      job: c.job,
      label: labels.get(c.job) ?? String(c.job),
      agent: c.agent_name || "unassigned",
      hardware: c.hardware,
      model: c.model,
      runtime: c.runtime,
      method: c.method,
      status: c.status,
      cost: formatCost(c.cost_per_hour),
      pointsRun: c.points.length,
      pointsPlanned,
      maxGoodput: c.max_goodput ? { goodput: c.max_goodput.goodput, load: formatLoad(c.max_goodput.load, mode) } : null,
      peak: c.peak ? { outputThroughput: c.peak.output_throughput, load: formatLoad(c.peak.load, mode) } : null,
      knee: c.knee ? { outputThroughput: c.knee.output_throughput, e2eMedianS: c.knee.e2e_median_s, load: formatLoad(c.knee.load, mode) } : null,
      ...efficiency(c, hasSlo),
      stoppedEarly: c.stopped_early,
      state,
    };
  });
}

/**
 * Where a running sweep is, from its job's progress (the agent reports load points as runs and each point's requests
 * as samples): "point 2/5 · 30/100 requests", or null before the first point.
 */
export function sweepProgress(progress: { run_index?: number; runs_total?: number; samples_done?: number;
  samples_total?: number } | null | undefined): string | null {
  if (!progress?.run_index) return null;
  const requests = progress.samples_total ? ` · ${progress.samples_done ?? 0}/${progress.samples_total} requests` : "";
  return `point ${progress.run_index}/${progress.runs_total ?? "?"}${requests}`;
}

/** The statistic of a latency the chart reads. */
export type LatencyStat = "median" | "p90" | "p99";
/** The throughput the chart's x axis shows. */
export type ThroughputAxis = "output_throughput" | "request_throughput";

/** A point of a curve: x, y and the load point it comes from. */
export interface CurvePoint {
  x: number;
  y: number;
  index: number;
  load: string;
  sloMet: boolean | null;
}

/** One cell's throughput-vs-latency curve, with its max-goodput and knee points (when they are on it). */
export interface LatencyCurve {
  job: number;
  name: string;
  points: CurvePoint[];
  maxGoodput: CurvePoint | null;
  knee: CurvePoint | null;
}

/** A point's latency statistic in milliseconds, or null. */
export function latencyMs(point: LoadPointFigures, key: LatencyKey, stat: LatencyStat): number | null {
  const v = point[key]?.[stat];
  return typeof v === "number" && Number.isFinite(v) ? v * 1000 : null;
}

/**
 * The throughput-vs-latency curves: one per cell with points, each point at (throughput, latency in ms) labelled
 * with its load, in the sweep's order. Points missing either figure (every request failed) are left out.
 */
export function latencyCurves(
  cells: LoadCell[], mode: LoadMode | null, opts: { x: ThroughputAxis; y: LatencyKey; stat: LatencyStat },
): LatencyCurve[] {
  const labels = cellLabels(cells);
  return cells.filter((c) => c.points.length > 0).map((c) => {
    const points: CurvePoint[] = [];
    for (const p of [...c.points].sort((a, b) => a.index - b.index)) {
      const x = p[opts.x];
      const y = latencyMs(p, opts.y, opts.stat);
      if (typeof x !== "number" || !Number.isFinite(x) || y === null) continue;
      points.push({ x, y, index: p.index, load: formatLoad(pointLoad(p, mode), mode), sloMet: p.slo_met });
    }
    const at = (index: number | undefined) => (index === undefined ? null : points.find((p) => p.index === index) ?? null);
    return { job: c.job, name: labels.get(c.job) ?? String(c.job), points, maxGoodput: at(c.max_goodput?.index), knee: at(c.knee?.index) };
  });
}

/** The horizontal SLO line of the latency chart, or null when the latency has no target. */
export function sloLine(slo: SloSpec | null | undefined, key: LatencyKey): { ms: number; label: string } | null {
  const ms = sloTargetMs(slo, key);
  if (ms === null) return null;
  return { ms, label: `SLO ${ms} ms (judged at p${slo?.percentile ?? 99})` };
}

/** The load-vs-goodput chart: the loads on the x axis (inf last) and one series per cell. */
export interface GoodputChartData {
  /** "goodput" with SLOs; "request_throughput" without (goodput needs objectives). */
  measure: "goodput" | "request_throughput";
  loads: string[];
  series: { job: number; name: string; values: (number | null)[]; sloMet: (boolean | null)[] }[];
}

/** Loads of every cell, in ascending order ("inf" last), each once. */
export function sweepLoads(cells: LoadCell[], mode: LoadMode | null): LoadValue[] {
  const byKey = new Map<string, LoadValue>();
  for (const c of cells) {
    for (const p of c.points) {
      const v = pointLoad(p, mode);
      if (v !== null) byKey.set(formatLoad(v, mode), v);
    }
  }
  return [...byKey.values()].sort((a, b) => loadNumber(a) - loadNumber(b));
}

/** Goodput (or request throughput, without SLOs) of each cell at each load. */
export function goodputChart(cells: LoadCell[], mode: LoadMode | null, hasSlo: boolean): GoodputChartData {
  const labels = cellLabels(cells);
  const loads = sweepLoads(cells, mode).map((v) => formatLoad(v, mode));
  const measure = hasSlo ? "goodput" : "request_throughput";
  const series = cells.filter((c) => c.points.length > 0).map((c) => {
    const byLoad = new Map(c.points.map((p) => [formatLoad(pointLoad(p, mode), mode), p]));
    return {
      job: c.job,
      name: labels.get(c.job) ?? String(c.job),
      values: loads.map((l) => {
        const v = byLoad.get(l)?.[measure];
        return typeof v === "number" && Number.isFinite(v) ? v : null;
      }),
      sloMet: loads.map((l) => byLoad.get(l)?.slo_met ?? null),
    };
  });
  return { measure, loads, series };
}

/** One bar of a histogram: [lo, hi) and how many values fall in it (the last bin includes its upper edge). */
export interface Bin {
  lo: number;
  hi: number;
  count: number;
}

/**
 * A histogram of `values` with equal-width bins: as many as the Freedman–Diaconis rule gives, between 1 and
 * `maxBins` (Sturges' rule where the interquartile range is 0). Non-finite values are left out.
 */
export function histogram(values: number[], maxBins = 40): Bin[] {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return [];
  const lo = v[0] as number;
  const hi = v[v.length - 1] as number;
  if (hi === lo) return [{ lo, hi, count: v.length }];
  const q = (f: number) => v[Math.min(v.length - 1, Math.floor(f * (v.length - 1)))] as number;
  const iqr = q(0.75) - q(0.25);
  const width = iqr > 0 ? (2 * iqr) / Math.cbrt(v.length) : 0;
  const sturges = Math.ceil(Math.log2(v.length)) + 1;
  const n = Math.max(1, Math.min(maxBins, width > 0 ? Math.ceil((hi - lo) / width) : sturges));
  const step = (hi - lo) / n;
  const bins: Bin[] = Array.from({ length: n }, (_, i) => ({ lo: lo + i * step, hi: i === n - 1 ? hi : lo + (i + 1) * step, count: 0 }));
  for (const x of v) {
    const i = Math.min(n - 1, Math.floor((x - lo) / step));
    (bins[i] as Bin).count += 1;
  }
  return bins;
}
