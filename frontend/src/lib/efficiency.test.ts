import { describe, expect, it } from "vitest";
import type { Efficiency, ExperimentResultJob } from "../api/models";
import { bandwidthView, computeView, efficiencyRows, formatFlops, formatGbps, formatPercent } from "./efficiency";

const base: Efficiency = {
  device: "cpu", dtype: "float32", parameters: 134_515_008, weight_bytes: 538_060_032, decode_tokens_per_s: 10,
  decode_bandwidth_gbps: 5.38, peak_bandwidth_metric: "bandwidth_gbps.cpu.copy", peak_bandwidth_gbps: 10.76,
  peak_bandwidth_mean_gbps: null, peak_bandwidth_cv: null,
  bandwidth_fraction: 0.5, decode_tflops: 0.00269, peak_tflops_metric: "gflops.cpu.fp32", peak_tflops: 0.09,
  peak_tflops_mean: null, peak_tflops_cv: null,
  compute_fraction: 0.0299, peaks_measured_at: "2025-01-01T00:00:00Z", unavailable: {},
};

describe("formatting", () => {
  it("formats percentages with sensible precision", () => {
    expect(formatPercent(0.5)).toBe("50%");
    expect(formatPercent(0.0299)).toBe("3.0%");
    expect(formatPercent(0.00123)).toBe("0.12%");
    expect(formatPercent(1.25)).toBe("125%");
    expect(formatPercent(0)).toBe("0%");
    expect(formatPercent(null)).toBe("—");
  });
  it("formats throughput and bandwidth", () => {
    expect(formatFlops(0.09)).toBe("90 GFLOP/s");
    expect(formatFlops(312)).toBe("312 TFLOP/s");
    expect(formatFlops(null)).toBe("—");
    expect(formatGbps(5.381)).toBe("5.38 GB/s");
  });
});

describe("efficiency views", () => {
  it("describes what the bandwidth fraction compares", () => {
    expect(bandwidthView(base)).toEqual({
      fraction: 0.5, text: "50%", detail: "decode 5.38 GB/s of 10.8 GB/s peak (bandwidth_gbps.cpu.copy)", warning: null,
      reason: null,
    });
    expect(computeView(base)).toMatchObject({ text: "3.0%", detail: "decode 2.69 GFLOP/s of 90 GFLOP/s peak (gflops.cpu.fp32)" });
  });
  it("shows the mean of the peak's repeats next to the best and flags an unstable peak", () => {
    const e: Efficiency = { ...base, peak_tflops: 0.073, peak_tflops_mean: 0.04067, peak_tflops_cv: 0.6913 };
    expect(computeView(e)).toMatchObject({
      detail: "decode 2.69 GFLOP/s of 73 GFLOP/s peak (best repeat; mean 40.7 GFLOP/s) (gflops.cpu.fp32)",
      warning: "unstable: CV 69%",
    });
  });
  it("gives the server's reason when a fraction is missing", () => {
    const e: Efficiency = { ...base, peak_bandwidth_gbps: null, bandwidth_fraction: null, peak_tflops: null,
      compute_fraction: null, unavailable: { bandwidth_fraction: "pi has no measured peaks yet" } };
    expect(bandwidthView(e)).toEqual({ fraction: null, text: "—", detail: "decode 5.38 GB/s (bandwidth_gbps.cpu.copy)",
      warning: null, reason: "pi has no measured peaks yet" });
    expect(computeView(e).reason).toBe("not computable");
  });
  it("keeps only jobs with an efficiency entry", () => {
    const job = (id: number, efficiency: Efficiency | null): ExperimentResultJob => ({
      job: id, status: "completed", model: "m", runtime: "transformers", agent: "a", agent_name: "pi",
      hardware_fingerprint: "", scoring_status: "scored", statistics: {}, request_statistics: {}, cold_start: null,
      unavailable_metrics: {}, efficiency,
    });
    const rows = efficiencyRows([job(1, base), job(2, null), job(3, { ...base, device: null, dtype: null })]);
    expect(rows.map((r) => r.job)).toEqual([1, 3]);
    expect(rows[0]).toMatchObject({ label: "pi · m · transformers", placement: "cpu · float32", decodeTokensPerS: 10 });
    expect(rows[1]?.placement).toBe("—");
  });
});
