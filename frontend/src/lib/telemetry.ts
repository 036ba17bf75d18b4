/** A run's telemetry (`{"t": [...], "cpu_percent": [...], ...}`) turned into chart series (pure: unit-tested). */
import type { Telemetry } from "../api/models";

interface SignalInfo { label: string; unit: string }

/** Known signals of the agent's sampler, in display order. */
const SIGNALS: Record<string, SignalInfo> = {
  cpu_percent: { label: "CPU use", unit: "%" },
  gpu_utilization_pct: { label: "GPU utilization", unit: "%" },
  rss_bytes: { label: "Agent RSS", unit: "B" },
  gpu_memory_used_bytes: { label: "GPU memory used", unit: "B" },
  gpu_power_w: { label: "GPU power", unit: "W" },
  gpu_temperature_c: { label: "GPU temperature", unit: "°C" },
  gpu_sm_clock_mhz: { label: "GPU SM clock", unit: "MHz" },
};
const UNIT_ORDER = ["%", "B", "W", "°C", "MHz"];
const MIB = 1024 ** 2;
const GIB = 1024 ** 3;

/** Label and unit of a signal; unknown ones get their unit from the name's suffix. */
export function signalInfo(key: string): SignalInfo {
  const known = SIGNALS[key];
  if (known) return known;
  const unit = key.endsWith("_bytes") ? "B" : /_(pct|percent)$/.test(key) ? "%" : key.endsWith("_w") ? "W"
    : key.endsWith("_c") ? "°C" : key.endsWith("_mhz") ? "MHz" : "";
  return { label: key.replace(/_/g, " "), unit };
}

export interface TelemetrySeries {
  key: string;
  label: string;
  /** [t seconds, value in the group's display unit]. */
  points: [number, number][];
}

export interface TelemetryGroup {
  /** Display unit: "%", "MiB", "GiB", "W", "°C", "MHz" or "". */
  unit: string;
  series: TelemetrySeries[];
}

export interface TelemetryChartData {
  /** Seconds covered (last `t`). */
  duration: number;
  /** One group (one y axis) per unit, in a fixed order. */
  groups: TelemetryGroup[];
}

/**
 * Chart series of a run's telemetry, grouped by unit; bytes are shown in MiB, or GiB when some value of the
 * group reaches 1 GiB. Returns null when there is nothing to plot (no `t`, or no signal with values).
 */
export function buildTelemetry(telemetry: Telemetry | null | undefined): TelemetryChartData | null {
  const t = telemetry?.t;
  if (!telemetry || !Array.isArray(t) || t.length === 0) return null;
  const byUnit = new Map<string, { key: string; label: string; values: number[] }[]>();
  const keys = Object.keys(telemetry).filter((k) => k !== "t");
  const known = Object.keys(SIGNALS);
  keys.sort((a, b) => {
    const ia = known.indexOf(a);
    const ib = known.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  for (const key of keys) {
    const values = telemetry[key];
    if (!Array.isArray(values) || values.length === 0) continue;
    const { label, unit } = signalInfo(key);
    const list = byUnit.get(unit) ?? [];
    list.push({ key, label, values });
    byUnit.set(unit, list);
  }
  const units = [...byUnit.keys()].sort((a, b) => {
    const ia = UNIT_ORDER.indexOf(a);
    const ib = UNIT_ORDER.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  const groups = units.map((unit) => {
    const list = byUnit.get(unit) ?? [];
    let scale = 1;
    let shown = unit;
    if (unit === "B") {
      const max = Math.max(...list.flatMap((s) => s.values.filter(Number.isFinite)));
      [scale, shown] = max >= GIB ? [GIB, "GiB"] : [MIB, "MiB"];
    }
    return {
      unit: shown,
      series: list.map((s) => ({
        key: s.key,
        label: s.label,
        points: s.values.slice(0, t.length).flatMap((v, i): [number, number][] =>
          Number.isFinite(v) ? [[t[i] as number, v / scale]] : []),
      })),
    };
  });
  if (groups.length === 0) return null;
  return { duration: t[t.length - 1] as number, groups };
}
