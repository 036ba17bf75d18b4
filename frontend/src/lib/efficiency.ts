/**
 * Efficiency against measured peaks: formatting of the server's per-job `efficiency` (pure: unit-tested).
 *
 * The peak is the benchmark figure's best repeat (best-of-N, as STREAM reports it); the mean of its repeats is
 * shown next to it, and a high CV of the repeats flags the peak as measured on an unsteady host.
 */
import type { Efficiency, ExperimentResultJob } from "../api/models";
import { jobLabel } from "./chartData";
import { formatNumber } from "./format";
import { cvWarning } from "./stats";

/** A fraction (0..1, possibly above 1) as a percentage with sensible precision: "42%", "4.2%", "0.42%". */
export function formatPercent(fraction: number | null | undefined): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return "—";
  const pct = fraction * 100;
  if (pct === 0) return "0%";
  const abs = Math.abs(pct);
  const text = abs >= 10 ? pct.toFixed(0) : abs >= 1 ? pct.toFixed(1) : Number(pct.toPrecision(2)).toString();
  return `${text}%`;
}

/** Throughput given in TFLOP/s, shown in GFLOP/s below one TFLOP/s. */
export function formatFlops(tflops: number | null | undefined): string {
  if (tflops === null || tflops === undefined || !Number.isFinite(tflops)) return "—";
  return Math.abs(tflops) < 1 ? `${formatNumber(tflops * 1000)} GFLOP/s` : `${formatNumber(tflops)} TFLOP/s`;
}

/** A bandwidth in GB/s (1e9 bytes). */
export function formatGbps(gbps: number | null | undefined): string {
  if (gbps === null || gbps === undefined || !Number.isFinite(gbps)) return "—";
  return `${formatNumber(gbps)} GB/s`;
}

export interface FractionView {
  /** 0..1 (above 1 when the decode beat the measured peak), or null when not computable. */
  fraction: number | null;
  /** "42%" or "—". */
  text: string;
  /**
   * What was compared: "decode 3.1 GB/s of 12 GB/s peak (best repeat; mean 10 GB/s) (bandwidth_gbps.cpu.copy)";
   * empty when unknown.
   */
  detail: string;
  /** `"unstable: CV 48%"` when the peak's repeats varied a lot, else null. */
  warning: string | null;
  /** Why the fraction is missing (from `unavailable`), or null. */
  reason: string | null;
}

/** One fraction of a peak with what it compares: the decode figure against the measured peak. */
function fractionView(
  fraction: number | null, decode: number | null, peak: PeakView, metric: string | null,
  reason: string | undefined, format: (v: number) => string,
): FractionView {
  const parts: string[] = [];
  if (decode !== null) parts.push(`decode ${format(decode)}`);
  if (peak.best !== null) {
    parts.push(`${parts.length ? "of " : ""}${format(peak.best)} peak`);
    if (peak.mean !== null) parts.push(`(best repeat; mean ${format(peak.mean)})`);
  }
  if (parts.length && metric) parts.push(`(${metric})`);
  return {
    fraction,
    text: formatPercent(fraction),
    detail: parts.join(" "),
    warning: peak.best !== null ? cvWarning(peak.cv) : null,
    reason: fraction === null ? reason ?? "not computable" : null,
  };
}

/** A measured peak as the efficiency reports it: the best repeat, with the mean and CV of the repeats. */
interface PeakView {
  best: number | null;
  mean: number | null;
  cv: number | null;
}

/** The fraction of the measured peak memory bandwidth a job's decode reached, with what it compares. */
export function bandwidthView(e: Efficiency): FractionView {
  const peak = { best: e.peak_bandwidth_gbps, mean: e.peak_bandwidth_mean_gbps ?? null, cv: e.peak_bandwidth_cv ?? null };
  return fractionView(e.bandwidth_fraction, e.decode_bandwidth_gbps, peak,
    e.peak_bandwidth_metric, e.unavailable.bandwidth_fraction, formatGbps);
}

/** The fraction of the measured matmul peak (of the weights' precision) a job's decode reached. */
export function computeView(e: Efficiency): FractionView {
  const peak = { best: e.peak_tflops, mean: e.peak_tflops_mean ?? null, cv: e.peak_tflops_cv ?? null };
  return fractionView(e.compute_fraction, e.decode_tflops, peak,
    e.peak_tflops_metric, e.unavailable.compute_fraction, formatFlops);
}

export interface EfficiencyRow {
  job: number;
  label: string;
  /** "cpu · float32", or "—" when the runtime did not say. */
  placement: string;
  decodeTokensPerS: number | null;
  weightBytes: number | null;
  bandwidth: FractionView;
  compute: FractionView;
  peaksMeasuredAt: string | null;
}

/** One row per job that has an efficiency entry (benchmark jobs, with `efficiency: null`, are left out). */
export function efficiencyRows(jobs: ExperimentResultJob[]): EfficiencyRow[] {
  return jobs.flatMap((job) => {
    const e = job.efficiency;
    if (!e) return [];
    const placement = [e.device, e.dtype].filter(Boolean).join(" · ") || "—";
    return [{
      job: job.job,
      label: jobLabel(job),
      placement,
      decodeTokensPerS: e.decode_tokens_per_s,
      weightBytes: e.weight_bytes,
      bandwidth: bandwidthView(e),
      compute: computeView(e),
      peaksMeasuredAt: e.peaks_measured_at,
    }];
  });
}
