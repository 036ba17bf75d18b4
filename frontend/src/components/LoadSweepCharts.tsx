/** ECharts views of a load sweep: throughput vs latency, load vs goodput, and histograms of raw latencies. */
import ReactEChartsCore from "echarts-for-react/lib/core";
import * as echarts from "echarts/core";
import { BarChart, LineChart, ScatterChart } from "echarts/charts";
import { GridComponent, LegendComponent, MarkLineComponent, TooltipComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import type { EChartsOption } from "echarts";
import type { Bin, GoodputChartData, LatencyCurve } from "../lib/loadCharts";
import { formatNumber } from "../lib/format";

// Only what these views draw is bundled (the full ECharts build is several times larger).
echarts.use([BarChart, LineChart, ScatterChart, GridComponent, LegendComponent, MarkLineComponent, TooltipComponent,
  CanvasRenderer]);

const PALETTE = ["#4f46e5", "#0891b2", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#ec4899", "#64748b"];
const MAX_GOODPUT_COLOR = "#16a34a";
const KNEE_COLOR = "#ea580c";
const SLO_COLOR = "#dc2626";

/** One ECharts chart in the project's palette, labelled for people and tests. */
function Chart({ option, label, height = 360 }: { option: EChartsOption; label: string; height?: number }) {
  return (
    <div className="chart" aria-label={label} data-chart={label}>
      <ReactEChartsCore echarts={echarts} option={{ color: PALETTE, animationDuration: 300, ...option }}
        style={{ height }} notMerge />
    </div>
  );
}

/** A curve point as ECharts data: [x, y] with the load as its name (shown as the point's label). */
type PointDatum = { name: string; value: [number, number]; cell: string };

/**
 * Latency against throughput, one line per cell through its load points (each labelled with its load); the SLO
 * target as a dashed line; each cell's max-goodput point (triangle) and knee (diamond) marked.
 */
export function LoadLatencyChart({ curves, xName, yName, slo, logY, label }: {
  curves: LatencyCurve[]; xName: string; yName: string; slo: { ms: number; label: string } | null; logY: boolean;
  label: string;
}) {
  const marks = (kind: "maxGoodput" | "knee"): PointDatum[] => curves.flatMap((c) => {
    const p = c[kind];
    return p ? [{ name: p.load, value: [p.x, p.y] as [number, number], cell: c.name }] : [];
  });
  const lines = curves.map((c, i) => ({
    type: "line" as const,
    name: c.name,
    showSymbol: true,
    symbol: "circle",
    symbolSize: 7,
    data: c.points.map((p): PointDatum => ({ name: p.load, value: [p.x, p.y], cell: c.name })),
    label: { show: true, position: "top" as const, fontSize: 10, formatter: "{b}" },
    ...(i === 0 && slo ? {
      markLine: {
        silent: true, symbol: "none", data: [{ yAxis: slo.ms, name: slo.label }],
        label: { formatter: slo.label, position: "insideEndTop" as const },
        lineStyle: { type: "dashed" as const, color: SLO_COLOR },
      },
    } : {}),
  }));
  const option: EChartsOption = {
    tooltip: {
      trigger: "item",
      formatter: (raw) => {
        const p = Array.isArray(raw) ? raw[0] : raw;
        const d = p?.data as PointDatum | undefined;
        if (!d) return "";
        const what = p?.seriesName === "max goodput" || p?.seriesName === "knee" ? `${p.seriesName}<br/>` : "";
        return `${what}${d.cell}<br/>load ${d.name}<br/>${xName}: ${formatNumber(d.value[0])}<br/>${yName}: ${formatNumber(d.value[1])}`;
      },
    },
    legend: { top: 0, type: "scroll" },
    grid: { left: 70, right: 40, top: 50, bottom: 50 },
    xAxis: { type: "value", name: xName, nameLocation: "middle", nameGap: 30, scale: true },
    yAxis: { type: logY ? "log" : "value", name: yName, scale: true },
    series: [
      ...lines,
      { type: "scatter", name: "max goodput", symbol: "triangle", symbolSize: 18, z: 5, data: marks("maxGoodput"),
        itemStyle: { color: MAX_GOODPUT_COLOR } },
      { type: "scatter", name: "knee", symbol: "diamond", symbolSize: 18, z: 5, data: marks("knee"),
        itemStyle: { color: KNEE_COLOR } },
    ],
  };
  return <Chart option={option} label={label} />;
}

/** Goodput (or request throughput, without SLOs) at each load, one line per cell; points that miss the SLOs hollow. */
export function LoadGoodputChart({ data, xName, label }: { data: GoodputChartData; xName: string; label: string }) {
  const yName = data.measure === "goodput" ? "goodput (req/s)" : "request throughput (req/s)";
  const option: EChartsOption = {
    tooltip: { trigger: "axis", valueFormatter: (v) => `${formatNumber(v as number)} req/s` },
    legend: { top: 0, type: "scroll" },
    grid: { left: 70, right: 30, top: 50, bottom: 50 },
    xAxis: { type: "category", data: data.loads, name: xName, nameLocation: "middle", nameGap: 30 },
    yAxis: { type: "value", name: yName },
    series: data.series.map((s) => ({
      type: "line" as const,
      name: s.name,
      connectNulls: false,
      symbol: "circle",
      symbolSize: 8,
      data: s.values.map((v, i) => ({
        value: v,
        // A point that misses the objectives is drawn hollow: its goodput counts only the good requests.
        itemStyle: s.sloMet[i] === false ? { color: "#fff", borderWidth: 2 } : undefined,
      })),
    })),
  };
  return <Chart option={option} label={label} />;
}

/** A histogram of one latency (milliseconds). */
export function LatencyHistogram({ bins, name, label }: { bins: Bin[]; name: string; label: string }) {
  const option: EChartsOption = {
    tooltip: {
      trigger: "item",
      formatter: (raw) => {
        const p = Array.isArray(raw) ? raw[0] : raw;
        const b = bins[p?.dataIndex ?? -1];
        return b ? `${formatNumber(b.lo)}–${formatNumber(b.hi)} ms: <b>${b.count}</b>` : "";
      },
    },
    grid: { left: 50, right: 20, top: 30, bottom: 60 },
    xAxis: {
      type: "category", name: `${name} (ms)`, nameLocation: "middle", nameGap: 40,
      data: bins.map((b) => formatNumber((b.lo + b.hi) / 2)),
    },
    yAxis: { type: "value", name: "requests", minInterval: 1 },
    series: [{ type: "bar", name, barCategoryGap: "5%", data: bins.map((b) => b.count) }],
  };
  return <Chart option={option} label={label} height={260} />;
}
