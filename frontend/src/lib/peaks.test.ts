import { describe, expect, it } from "vitest";
import { bestBandwidth, figureLabel, groupPeaks, isBenchmarkMetric, parseFigureName } from "./peaks";
import { metricLabel } from "./format";

describe("figure names", () => {
  it("parses benchmark figure names and rejects others", () => {
    expect(parseFigureName("tflops.cuda.bf16")).toEqual({ kind: "tflops", device: "cuda", what: "bf16" });
    expect(parseFigureName("bandwidth_gbps.cpu.copy")).toEqual({ kind: "bandwidth_gbps", device: "cpu", what: "copy" });
    expect(parseFigureName("output_tokens_per_s")).toBeNull();
    expect(isBenchmarkMetric("gflops.cpu.fp32")).toBe(true);
    expect(isBenchmarkMetric("gflops.tpu.fp32")).toBe(false);
  });
  it("labels figures in words", () => {
    expect(figureLabel("bandwidth_gbps.cuda.h2d")).toBe("CUDA host → device bandwidth");
    expect(figureLabel("gflops.cpu.fp32")).toBe("CPU fp32 matmul");
    expect(metricLabel("bandwidth_gbps.cpu.copy")).toBe("CPU copy bandwidth");
    expect(metricLabel("rougeL")).toBe("ROUGE-L");
  });
});

describe("groupPeaks", () => {
  const peaks = {
    measured_at: "2025-01-01T00:00:00Z",
    quick: true,
    figures: {
      "tflops.cuda.bf16": { value: 700, unit: "TFLOP/s" },
      "gflops.cpu.fp32": { value: 90, unit: "GFLOP/s" },
      "bandwidth_gbps.cuda.h2d": { value: 25, unit: "GB/s" },
      "bandwidth_gbps.cuda.d2d": { value: 3900, unit: "GB/s" },
      "bandwidth_gbps.cpu.copy": { value: 12.5, unit: "GB/s" },
      "tflops.cuda.fp32": { value: 50, unit: "TFLOP/s" },
    },
    unsupported: { "tflops.cuda.fp8": "needs compute capability 8.9", "gflops.cpu.bf16": "no AVX512-BF16" },
  };
  it("splits bandwidth from compute, ordered by device then kind", () => {
    const g = groupPeaks(peaks);
    expect(g.bandwidth.map((r) => r.metric)).toEqual(["bandwidth_gbps.cpu.copy", "bandwidth_gbps.cuda.d2d", "bandwidth_gbps.cuda.h2d"]);
    expect(g.compute.map((r) => r.metric)).toEqual(["gflops.cpu.fp32", "tflops.cuda.fp32", "tflops.cuda.bf16"]);
    expect(g.compute[2]).toMatchObject({ label: "CUDA bf16 matmul", value: 700, unit: "TFLOP/s", device: "cuda" });
    expect(g.unsupported).toEqual([
      { metric: "gflops.cpu.bf16", label: "CPU bf16 matmul", group: "compute", reason: "no AVX512-BF16" },
      { metric: "tflops.cuda.fp8", label: "CUDA fp8 matmul", group: "compute", reason: "needs compute capability 8.9" },
    ]);
  });
  it("picks the highest bandwidth for summaries", () => {
    expect(bestBandwidth(peaks)?.metric).toBe("bandwidth_gbps.cuda.d2d");
    expect(bestBandwidth(null)).toBeNull();
    expect(bestBandwidth({ ...peaks, figures: {} })).toBeNull();
  });
});

describe("best-of-N peaks", () => {
  // A quick CPU benchmark on a busy host: fp32 matmul repeats of 73, 22 and 27 GFLOP/s.
  const busy = {
    measured_at: "2025-01-01T00:00:00Z",
    quick: true,
    figures: {
      "gflops.cpu.fp32": { value: 73, unit: "GFLOP/s", mean: 40.67, cv: 0.6913, n: 3 },
      "bandwidth_gbps.cpu.copy": { value: 12.5, unit: "GB/s", mean: 12.3, cv: 0.02, n: 3 },
    },
    unsupported: {},
  };
  it("shows the best repeat as the peak, the mean next to it, and flags a high CV", () => {
    const g = groupPeaks(busy);
    expect(g.compute[0]).toMatchObject({ value: 73, mean: 40.67, n: 3, warning: "unstable: CV 69%" });
    expect(g.bandwidth[0]).toMatchObject({ value: 12.5, mean: 12.3, warning: null });
  });
  it("reads peaks from an older server without mean, CV or repeats", () => {
    const g = groupPeaks({ ...busy, figures: { "gflops.cpu.fp32": { value: 73, unit: "GFLOP/s" } } });
    expect(g.compute[0]).toMatchObject({ value: 73, mean: null, cv: null, n: null, warning: null });
  });
});
