/** ECharts views of experiment results. */
import ReactEChartsCore from "echarts-for-react/lib/core";
import * as echarts from "echarts/core";
import { BarChart, BoxplotChart, CustomChart, LineChart, ScatterChart as EScatterChart } from "echarts/charts";
import { GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import type { EChartsOption } from "echarts";
import type { BarSeries, ColdWarm, Distribution, ScatterPoint } from "../lib/chartData";
import type { TelemetryChartData } from "../lib/telemetry";
import { formatNumber } from "../lib/format";

// Only what these views draw is bundled (the full ECharts build is several times larger).
echarts.use([BarChart, BoxplotChart, CustomChart, LineChart, EScatterChart, GridComponent, LegendComponent,
  TooltipComponent, CanvasRenderer]);

const PALETTE = ["#4f46e5", "#0891b2", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#ec4899", "#64748b"];
const GAP = 0.2;
const BAR_MAX = 80;

function Chart({ option, label, height = 320 }: { option: EChartsOption; label: string; height?: number }) {
  return (
    <div className="chart" aria-label={label} data-chart={label}>
      <ReactEChartsCore echarts={echarts} option={{ color: PALETTE, animationDuration: 300, ...option }}
        style={{ height }} notMerge />
    </div>
  );
}

/** Grouped bars (one group per agent, one bar per model × runtime) with error bars. */
export function MetricBarChart({ categories, series, unit, label }: {
  categories: string[]; series: BarSeries[]; unit: string; label: string;
}) {
  const n = Math.max(1, series.length);
  const errorSeries = series.map((s, i) => ({
    type: "custom" as const,
    name: s.name,
    z: 10,
    data: s.points.map((p, c) => [c, p.low, p.high]),
    renderItem: (_params: unknown, api: {
      value: (i: number) => number; coord: (v: [number, number]) => number[]; size: (v: [number, number]) => number[];
      style: (o: object) => object;
    }) => {
      const low = api.value(1);
      const high = api.value(2);
      if (low === null || high === null || Number.isNaN(low) || Number.isNaN(high)) return null;
      const band = api.size([1, 0])[0] ?? 0;
      const bar = Math.min((band * (1 - GAP)) / n, BAR_MAX);
      const x = (api.coord([api.value(0), 0])[0] ?? 0) - (bar * n) / 2 + bar * (i + 0.5);
      const yLow = api.coord([api.value(0), low])[1] ?? 0;
      const yHigh = api.coord([api.value(0), high])[1] ?? 0;
      const w = Math.min(10, bar / 3);
      const style = { stroke: "#1f2937", lineWidth: 1.5 };
      return {
        type: "group",
        children: [
          { type: "line", shape: { x1: x, y1: yLow, x2: x, y2: yHigh }, style },
          { type: "line", shape: { x1: x - w, y1: yLow, x2: x + w, y2: yLow }, style },
          { type: "line", shape: { x1: x - w, y1: yHigh, x2: x + w, y2: yHigh }, style },
        ],
      };
    },
    tooltip: { show: false },
  }));
  const option: EChartsOption = {
    tooltip: { trigger: "item", valueFormatter: (v) => `${formatNumber(v as number)} ${unit}` },
    legend: { top: 0, data: series.map((s) => s.name) },
    grid: { left: 60, right: 20, top: 40, bottom: 50 },
    xAxis: { type: "category", data: categories },
    yAxis: { type: "value", name: unit, nameLocation: "end" },
    series: [
      ...series.map((s) => ({
        type: "bar" as const, name: s.name, barGap: "0%", barCategoryGap: `${GAP * 100}%`, barMaxWidth: BAR_MAX,
        data: s.points.map((p) => p.value),
      })),
      ...errorSeries,
    ] as EChartsOption["series"],
  };
  return <Chart option={option} label={label} />;
}

/** One point per job: two metrics against each other. */
export function ScatterChart({ points, xName, yName, label }: { points: ScatterPoint[]; xName: string; yName: string; label: string }) {
  const option: EChartsOption = {
    tooltip: { trigger: "item", formatter: (p) => {
      const item = Array.isArray(p) ? p[0] : p;
      const point = item === undefined ? undefined : points[item.dataIndex];
      if (!point) return "";
      return `${point.name}<br/>${xName}: ${formatNumber(point.x)}<br/>${yName}: ${formatNumber(point.y)}`;
    } },
    grid: { left: 60, right: 30, top: 30, bottom: 50 },
    xAxis: { type: "value", name: xName, nameLocation: "middle", nameGap: 30, scale: true },
    yAxis: { type: "value", name: yName, scale: true },
    series: [{ type: "scatter", symbolSize: 14, data: points.map((p) => ({ name: p.name, value: [p.x, p.y] })) }],
  };
  return <Chart option={option} label={label} />;
}

/** Each job's cold run next to its warm runs' mean. */
export function ColdWarmChart({ rows, unit, label }: { rows: ColdWarm[]; unit: string; label: string }) {
  const option: EChartsOption = {
    tooltip: { trigger: "axis", valueFormatter: (v) => `${formatNumber(v as number)} ${unit}` },
    legend: { top: 0 },
    grid: { left: 60, right: 20, top: 40, bottom: 80 },
    xAxis: { type: "category", data: rows.map((r) => r.name), axisLabel: { interval: 0, rotate: rows.length > 3 ? 20 : 0 } },
    yAxis: { type: "value", name: unit },
    series: [
      { type: "bar", name: "cold run", data: rows.map((r) => r.cold), itemStyle: { color: "#0ea5e9" } },
      { type: "bar", name: "warm runs (mean)", data: rows.map((r) => r.warm), itemStyle: { color: "#f97316" } },
    ],
  };
  return <Chart option={option} label={label} />;
}

/** Per-run values of each job as a box plot, with the runs and flagged outliers. */
export function DistributionChart({ items, unit, label }: { items: Distribution[]; unit: string; label: string }) {
  const option: EChartsOption = {
    tooltip: { trigger: "item" },
    grid: { left: 60, right: 20, top: 30, bottom: 80 },
    xAxis: { type: "category", data: items.map((d) => d.name), axisLabel: { interval: 0, rotate: items.length > 3 ? 20 : 0 } },
    yAxis: { type: "value", name: unit, scale: true },
    series: [
      { type: "boxplot", name: "spread", data: items.map((d) => d.box ?? [0, 0, 0, 0, 0]), itemStyle: { color: "#eef2ff", borderColor: "#4f46e5" } },
      { type: "scatter", name: "runs", symbolSize: 8, data: items.flatMap((d, i) => d.values.map((v) => [i, v])), itemStyle: { color: "#0891b2" } },
      { type: "scatter", name: "outliers", symbol: "diamond", symbolSize: 12, data: items.flatMap((d, i) => d.outliers.map((v) => [i, v])), itemStyle: { color: "#ef4444" } },
    ],
  };
  return <Chart option={option} label={label} />;
}

const TELEMETRY_ROW = 110;
const SCALED_UNITS = new Set(["°C", "MHz"]);
const TELEMETRY_GAP = 46;

/** A run's telemetry: one line per signal, one stacked panel (own y axis) per unit, sharing the time axis. */
export function TelemetryChart({ data, label }: { data: TelemetryChartData; label: string }) {
  const top = 34;
  const n = data.groups.length;
  // The chart's series, in the order the option lists them (tooltips look their points up by index).
  const lines = data.groups.flatMap((g) => g.series.map((s) => ({ ...s, unit: g.unit })));
  const option: EChartsOption = {
    legend: { top: 0, type: "scroll" },
    tooltip: {
      trigger: "axis",
      formatter: (raw) => {
        const items = (Array.isArray(raw) ? raw : [raw]).flatMap((p) => {
          const line = lines[p.seriesIndex ?? -1];
          const point = line?.points[p.dataIndex];
          return line && point ? [{ marker: typeof p.marker === "string" ? p.marker : "", line, point }] : [];
        });
        const t = items[0]?.point[0];
        const rows = items.map(({ marker, line, point }) =>
          `${marker}${line.label}: <b>${formatNumber(point[1])}</b> ${line.unit}`);
        return [`t = ${formatNumber(t)} s`, ...rows].join("<br/>");
      },
    },
    axisPointer: { link: [{ xAxisIndex: "all" }] },
    grid: data.groups.map((_, i) => ({ left: 64, right: 24, top: top + i * (TELEMETRY_ROW + TELEMETRY_GAP), height: TELEMETRY_ROW })),
    xAxis: data.groups.map((_, i) => ({
      type: "value" as const, gridIndex: i, min: 0,
      name: i === n - 1 ? "t (s)" : "", nameLocation: "middle" as const, nameGap: 24,
      axisLabel: { formatter: (v: number) => formatNumber(v) },
    })),
    yAxis: data.groups.map((g, i) => ({
      type: "value" as const, gridIndex: i, name: g.unit, nameTextStyle: { align: "right" as const },
      // Levels (memory, power) read best from zero; clocks and temperatures by their range.
      scale: SCALED_UNITS.has(g.unit), splitNumber: 3,
      axisLabel: { formatter: (v: number) => formatNumber(v) },
    })),
    series: data.groups.flatMap((g, i) => g.series.map((s) => ({
      type: "line" as const, name: s.label, xAxisIndex: i, yAxisIndex: i, showSymbol: false, data: s.points,
      lineStyle: { width: 1.6 },
    }))),
  };
  return <Chart option={option} label={label} height={top + n * (TELEMETRY_ROW + TELEMETRY_GAP)} />;
}
