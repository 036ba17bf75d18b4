import { describe, expect, it } from "vitest";
import { buildTelemetry, signalInfo } from "./telemetry";

describe("buildTelemetry", () => {
  it("returns null when there is nothing to plot", () => {
    expect(buildTelemetry(undefined)).toBeNull();
    expect(buildTelemetry({})).toBeNull();
    expect(buildTelemetry({ t: [], cpu_percent: [] })).toBeNull();
    expect(buildTelemetry({ t: [0, 1], cpu_percent: [] })).toBeNull();
  });
  it("groups signals by unit and shows bytes in MiB", () => {
    const data = buildTelemetry({
      t: [0, 0.5, 1],
      rss_bytes: [100 * 1024 ** 2, 200 * 1024 ** 2, 300 * 1024 ** 2],
      cpu_percent: [10, 190, 100],
      gpu_power_w: [50, 300, 250],
    });
    expect(data?.duration).toBe(1);
    expect(data?.groups.map((g) => g.unit)).toEqual(["%", "MiB", "W"]);
    expect(data?.groups[1]?.series[0]).toEqual({ key: "rss_bytes", label: "Agent RSS", points: [[0, 100], [0.5, 200], [1, 300]] });
    expect(data?.groups[0]?.series[0]?.label).toBe("CPU use");
  });
  it("switches to GiB from one GiB and keeps series of one unit together", () => {
    const data = buildTelemetry({
      t: [0, 1],
      gpu_memory_used_bytes: [2 * 1024 ** 3, 3 * 1024 ** 3],
      rss_bytes: [512 * 1024 ** 2, 512 * 1024 ** 2],
      gpu_utilization_pct: [0, 100],
      cpu_percent: [50, 60],
    });
    expect(data?.groups.map((g) => [g.unit, g.series.map((s) => s.key)])).toEqual([
      ["%", ["cpu_percent", "gpu_utilization_pct"]],
      ["GiB", ["rss_bytes", "gpu_memory_used_bytes"]],
    ]);
    expect(data?.groups[1]?.series[0]?.points).toEqual([[0, 0.5], [1, 0.5]]);
  });
  it("drops values beyond t and non-finite ones", () => {
    const data = buildTelemetry({ t: [0, 1], gpu_temperature_c: [40, Number.NaN, 42] });
    expect(data?.groups[0]).toEqual({ unit: "°C", series: [{ key: "gpu_temperature_c", label: "GPU temperature", points: [[0, 40]] }] });
  });
  it("infers units of unknown signals from their names", () => {
    expect(signalInfo("host_memory_bytes")).toEqual({ label: "host memory bytes", unit: "B" });
    expect(signalInfo("fan_pct").unit).toBe("%");
    expect(signalInfo("mystery").unit).toBe("");
  });
});
