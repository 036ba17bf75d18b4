/**
 * Hardware benchmark figures (`bandwidth_gbps.cpu.copy`, `tflops.cuda.bf16` ...): names, labels and grouping.
 *
 * A peak is the figure's best repeat (best-of-N, as STREAM reports it: a busy host only slows repeats down);
 * the mean and CV of the repeats come with it, and a high CV flags the measurement as unstable.
 */
import type { AgentPeaks } from "../api/models";
import { cvWarning } from "./stats";

/** Same shape as the catalog's `benchmark_metric_pattern`. */
const BENCHMARK_RE = /^(bandwidth_gbps|tflops|gflops)\.(cpu|cuda|mps)\.([a-z0-9]+)$/;

export type FigureKind = "bandwidth_gbps" | "tflops" | "gflops";

export interface FigureName {
  kind: FigureKind;
  device: string;
  /** Transfer kind for bandwidth (`copy`, `d2d`, `h2d`, `d2h`), precision for throughput (`fp32`, `bf16` ...). */
  what: string;
}

/** The parts of a benchmark figure's metric name, or null for any other metric. */
export function parseFigureName(metric: string): FigureName | null {
  const m = BENCHMARK_RE.exec(metric);
  if (!m) return null;
  return { kind: m[1] as FigureKind, device: m[2] as string, what: m[3] as string };
}

/** Whether a metric is a hardware benchmark figure. */
export function isBenchmarkMetric(metric: string): boolean {
  return BENCHMARK_RE.test(metric);
}

const DEVICE_LABELS: Record<string, string> = { cpu: "CPU", cuda: "CUDA", mps: "MPS" };
const TRANSFER_LABELS: Record<string, string> = {
  copy: "copy", d2d: "device → device", h2d: "host → device", d2h: "device → host",
};
const DEVICE_ORDER = ["cpu", "cuda", "mps"];
const WHAT_ORDER = ["copy", "d2d", "h2d", "d2h", "fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8"];

/** "CPU copy bandwidth", "CUDA bf16 matmul" ... for a figure's metric name (other names are returned as given). */
export function figureLabel(metric: string): string {
  const f = parseFigureName(metric);
  if (!f) return metric;
  const device = DEVICE_LABELS[f.device] ?? f.device;
  if (f.kind === "bandwidth_gbps") return `${device} ${TRANSFER_LABELS[f.what] ?? f.what} bandwidth`;
  return `${device} ${f.what} matmul`;
}

/** Sort key: device, then transfer kind / precision in a fixed order. */
function order(metric: string): [number, number, string] {
  const f = parseFigureName(metric);
  if (!f) return [99, 99, metric];
  const d = DEVICE_ORDER.indexOf(f.device);
  const w = WHAT_ORDER.indexOf(f.what);
  return [d < 0 ? 98 : d, w < 0 ? 98 : w, metric];
}

/** Compare two figure names for display (device, then kind in a fixed order). */
export function compareFigures(a: string, b: string): number {
  const [da, wa, na] = order(a);
  const [db, wb, nb] = order(b);
  return da - db || wa - wb || na.localeCompare(nb);
}

export interface PeakRow {
  metric: string;
  label: string;
  device: string;
  /** The peak: the best repeat. */
  value: number | null;
  unit: string;
  /** Mean over the repeats (null from an older server). */
  mean: number | null;
  /** Coefficient of variation of the repeats. */
  cv: number | null;
  /** Timed repeats. */
  n: number | null;
  /** `"unstable: CV 48%"` when the repeats varied a lot, else null. */
  warning: string | null;
}

export interface UnsupportedPeak {
  metric: string;
  label: string;
  group: "bandwidth" | "compute";
  reason: string;
}

export interface GroupedPeaks {
  /** Memory bandwidth figures (GB/s). */
  bandwidth: PeakRow[];
  /** Matmul throughput figures (TFLOP/s on GPUs, GFLOP/s on CPUs, TOP/s for integers). */
  compute: PeakRow[];
  /** Figures the hardware or software could not produce, with the reason. */
  unsupported: UnsupportedPeak[];
}

/** An agent's measured peaks split into bandwidth and compute figures, each sorted by device and kind. */
export function groupPeaks(peaks: AgentPeaks): GroupedPeaks {
  const bandwidth: PeakRow[] = [];
  const compute: PeakRow[] = [];
  for (const metric of Object.keys(peaks.figures).sort(compareFigures)) {
    const fig = peaks.figures[metric];
    if (!fig) continue;
    const f = parseFigureName(metric);
    const row: PeakRow = {
      metric, label: figureLabel(metric), device: f?.device ?? "", value: fig.value, unit: fig.unit,
      mean: fig.mean ?? null, cv: fig.cv ?? null, n: fig.n ?? null, warning: cvWarning(fig.cv),
    };
    (f?.kind === "bandwidth_gbps" ? bandwidth : compute).push(row);
  }
  const unsupported = Object.keys(peaks.unsupported).sort(compareFigures).map((metric) => ({
    metric,
    label: figureLabel(metric),
    group: parseFigureName(metric)?.kind === "bandwidth_gbps" ? "bandwidth" as const : "compute" as const,
    reason: peaks.unsupported[metric] ?? "",
  }));
  return { bandwidth, compute, unsupported };
}

/** The highest measured bandwidth figure (for one-line summaries), or null. */
export function bestBandwidth(peaks: AgentPeaks | null | undefined): PeakRow | null {
  if (!peaks) return null;
  let best: PeakRow | null = null;
  for (const row of groupPeaks(peaks).bandwidth) {
    if (row.value !== null && (best === null || (best.value ?? 0) < row.value)) best = row;
  }
  return best;
}
