/** Transforms from API results into chart series (pure functions: unit-tested). */
import type { Comparison, ExperimentResultJob, MetricStatistics } from "../api/models";

export type ErrorKind = "std" | "ci95";

export interface BarPoint {
  /** Column (agent) name. */
  agent: string;
  value: number | null;
  low: number | null;
  high: number | null;
  n: number;
  job: number;
}

export interface BarSeries {
  /** "model · runtime". */
  name: string;
  points: BarPoint[];
}

/** Comparison matrix → one bar series per row (model × runtime), one category per column (agent). */
export function comparisonToSeries(cmp: Comparison, kind: ErrorKind): { categories: string[]; series: BarSeries[] } {
  const categories = cmp.columns.map((c) => c.agent_name);
  const series = cmp.rows.map((row) => ({
    name: modelRuntime(row.model, row.runtime),
    points: cmp.columns.map((col) => {
      const cell = row.cells[col.key];
      const mean = cell?.mean ?? null;
      let low: number | null = null;
      let high: number | null = null;
      if (mean !== null && cell) {
        if (kind === "std" && cell.std !== null && cell.std !== undefined) {
          low = mean - cell.std;
          high = mean + cell.std;
        } else if (kind === "ci95" && cell.ci95) {
          low = cell.ci95[0] ?? null;
          high = cell.ci95[1] ?? null;
        }
      }
      return { agent: col.agent_name, value: mean, low, high, n: cell?.n ?? 0, job: cell?.job ?? 0 };
    }),
  }));
  return { categories, series };
}

/** Model name jobs of tasks without a model carry (the catalog's `no_model_name`). */
export const NO_MODEL = "none";

/** "model · runtime", or the runtime alone for jobs of a task that needs no model. */
export function modelRuntime(model: string, runtime: string): string {
  return model === NO_MODEL ? runtime : `${model} · ${runtime}`;
}

/** A readable name of one job (agent, model, runtime). */
export function jobLabel(job: Pick<ExperimentResultJob, "agent_name" | "model" | "runtime" | "job">): string {
  return `${job.agent_name ?? "removed agent"} · ${modelRuntime(job.model, job.runtime)}`;
}

export interface ScatterPoint {
  name: string;
  x: number;
  y: number;
  job: number;
}

/** One point per job: mean of metric `x` against mean of metric `y` (jobs lacking either are left out). */
export function scatterPoints(jobs: ExperimentResultJob[], x: string, y: string): ScatterPoint[] {
  const out: ScatterPoint[] = [];
  for (const job of jobs) {
    const xs = job.statistics[x]?.mean;
    const ys = job.statistics[y]?.mean;
    if (typeof xs === "number" && typeof ys === "number") out.push({ name: jobLabel(job), x: xs, y: ys, job: job.job });
  }
  return out;
}

export interface ColdWarm {
  name: string;
  cold: number | null;
  warm: number | null;
  job: number;
}

/** Cold run value against the warm runs' mean of `metric`, per job. */
export function coldVsWarm(jobs: ExperimentResultJob[], metric: string): ColdWarm[] {
  return jobs
    .map((job) => {
      const raw = job.cold_start?.[metric];
      const cold = typeof raw === "number" ? raw : null;
      const warm = job.statistics[metric]?.mean ?? null;
      return { name: jobLabel(job), cold, warm, job: job.job };
    })
    .filter((r) => r.cold !== null || r.warm !== null);
}

/** [min, q1, median, q3, max] of values (linear interpolation), as ECharts' boxplot expects. */
export function fiveNumbers(values: number[]): [number, number, number, number, number] | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number) => {
    const pos = (s.length - 1) * p;
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    const a = s[lo] as number;
    const b = s[hi] as number;
    return a + (b - a) * (pos - lo);
  };
  return [s[0] as number, q(0.25), q(0.5), q(0.75), s[s.length - 1] as number];
}

export interface Distribution {
  name: string;
  values: number[];
  box: [number, number, number, number, number] | null;
  outliers: number[];
  job: number;
}

/** Raw per-run values of `metric` for each job, with their box and flagged outliers. */
export function distributions(jobs: ExperimentResultJob[], metric: string): Distribution[] {
  return jobs
    .map((job) => {
      const st: MetricStatistics | undefined = job.statistics[metric];
      const values = st?.values ?? [];
      const outliers = (st?.outliers ?? []).map((i) => values[i]).filter((v): v is number => typeof v === "number");
      return { name: jobLabel(job), values, box: fiveNumbers(values), outliers, job: job.job };
    })
    .filter((d) => d.values.length > 0);
}

/** Metrics that have statistics in at least one job, known ones first in the given order. */
export function availableMetrics(jobs: ExperimentResultJob[], order: string[]): string[] {
  const present = new Set(jobs.flatMap((j) => Object.keys(j.statistics)));
  return [...order.filter((m) => present.has(m)), ...[...present].filter((m) => !order.includes(m)).sort()];
}
