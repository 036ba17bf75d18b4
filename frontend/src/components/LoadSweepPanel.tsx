/**
 * An experiment's load sweep on its page: the spec, a comparison of its cells (agent × model × runtime), the
 * throughput-vs-latency and load-vs-goodput curves, and on demand the latency distributions of one load point.
 * Kept fresh while the jobs report.
 */
import { useMemo, useState } from "react";
import { formatNumber } from "../lib/format";
import {
  describeSlo, formatLoad, LATENCY_LABELS, modeLabel, pointLoad, specMode, specPoints, type ExperimentLoad,
  type LatencyKey, type LoadCell, type LoadMode, type LoadSpecJson,
} from "../lib/load";
import {
  comparisonRows, goodputChart, histogram, latencyCurves, sloLine, sweepProgress, type ComparisonRow,
  type LatencyStat, type ThroughputAxis,
} from "../lib/loadCharts";
import { useExperimentLoad, useJobLoad, useLoadLiveRefresh } from "../lib/loadQueries";
import { useJobs } from "../api/queries";
import { LatencyHistogram, LoadGoodputChart, LoadLatencyChart } from "./LoadSweepCharts";
import { Card, Empty, ErrorBox, KeyValues, Spinner, StatusBadge } from "./ui";

const X_AXES: Record<ThroughputAxis, string> = {
  output_throughput: "output tokens/s",
  request_throughput: "requests/s",
};
const STATS: Record<LatencyStat, string> = { median: "median", p90: "p90", p99: "p99" };
/** A row of chart settings, each as wide as its choices. */
const CONTROLS = { display: "flex", flexWrap: "wrap", gap: 12, alignItems: "flex-end", marginBottom: 8 } as const;

/** The sweep's settings in a few lines. */
function SpecLines({ spec }: { spec: LoadSpecJson }) {
  const mode = specMode(spec);
  const size = spec.num_requests != null ? `${spec.num_requests} requests per point` : `${spec.duration_s ?? "?"} s per point`;
  const arrival = mode === "request_rate"
    ? `${spec.arrival ?? "poisson"} arrivals${spec.arrival === "gamma" ? ` (burstiness ${spec.burstiness ?? 1})` : ""}`
      + (spec.max_concurrency ? `, at most ${spec.max_concurrency} in flight` : "")
    : "closed loop";
  const p = spec.prompts ?? {};
  const prompts = p.source === "synthetic" ? `synthetic ${p.input_tokens ?? "?"} → ${p.output_tokens ?? "?"} tokens`
    : p.source === "jsonl" ? `JSONL ${p.path ?? ""}` : "task samples";
  const stop = spec.early_stop ?? {};
  const stops = [
    stop.latency_factor != null ? `median e2e > ${stop.latency_factor}× the first point's` : null,
    stop.max_error_rate != null ? `error rate > ${stop.max_error_rate}` : null,
  ].filter(Boolean).join(" or ") || "never";
  return (
    <KeyValues items={[
      [mode === "concurrency" ? "Concurrency" : "Request rates", specPoints(spec).map((v) => formatLoad(v, mode)).join(", ")],
      ["Points", `${size}, ${spec.warmup_requests ?? 0} warm-up; ${arrival}; seed ${spec.seed ?? 0}`],
      ["Prompts", `${prompts}${p.ignore_eos === true ? ", ignore EOS" : p.ignore_eos === false ? ", stop at EOS" : ""}`],
      ["SLOs", describeSlo(spec.slo)],
      ["Early stop", stops],
    ]} />
  );
}

/** Why a row has no figures, in words. */
const STATE_TEXT: Record<NonNullable<ComparisonRow["state"]>, string> = {
  running: "running: no point measured yet",
  waiting: "waiting to run",
  failed: "no point measured",
  "no-points": "no point measured",
  "no-slo-met": "no point met the SLOs",
};

/** " at peak" after an efficiency figure of the peak (a sweep without SLOs has no max goodput). */
function atPeak(r: ComparisonRow, value: number | null) {
  return r.efficiencyAt === "peak" && value !== null ? <span className="muted small"> at peak</span> : null;
}

/**
 * One row per cell: where each reaches its max goodput, peak and knee, and what that costs. `progress` says where
 * the running sweeps are, by job.
 */
export function LoadComparisonTable({ rows, hasSlo, progress }: {
  rows: ComparisonRow[]; hasSlo: boolean; progress?: Map<number, string>;
}) {
  return (
    <div className="table-scroll" style={{ overflowX: "auto" }}>
      <table className="table compact" aria-label="Load sweep comparison">
        <thead>
          <tr>
            <th>Agent / hardware</th><th>Model</th><th>Runtime</th><th>Method</th><th>Status</th><th>Points</th>
            <th title="highest goodput among the points that meet the SLOs">Max goodput (req/s)</th>
            <th>Peak output tok/s</th>
            <th title="the point of highest output throughput over median e2e latency (Kleinrock's power)">Knee</th>
            <th title="at max goodput (at the peak without SLOs)">Output tok/$</th>
            <th title="at max goodput (at the peak without SLOs)">Output tok/J</th>
            <th>Stopped early</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.job} data-job={r.job} data-state={r.state ?? "measured"}>
              <td>
                <div className="strong">{r.agent}</div><div className="mono small muted">{r.hardware}</div>
                {r.cost && <div className="small muted" data-testid="cost">{r.cost}</div>}
              </td>
              <td className="mono small">{r.model}</td>
              <td>{r.runtime}</td>
              <td>{r.method}</td>
              <td><StatusBadge status={r.status} /></td>
              <td data-testid="points">
                {r.pointsRun}{r.pointsPlanned !== null ? ` / ${r.pointsPlanned}` : ""}
                {r.status === "running" && progress?.get(r.job) && <div className="small muted" data-testid="progress">{progress.get(r.job)}</div>}
              </td>
              <td data-testid="max-goodput">
                {r.maxGoodput ? <><strong>{formatNumber(r.maxGoodput.goodput)}</strong> <span className="muted small">at {r.maxGoodput.load}</span></>
                  : <span className="muted small">{!hasSlo ? "no SLOs" : r.state ? STATE_TEXT[r.state] : "—"}</span>}
              </td>
              <td data-testid="peak">
                {r.peak ? <>{formatNumber(r.peak.outputThroughput)} <span className="muted small">at {r.peak.load}</span></>
                  : <span className="muted small">{r.state && r.state !== "no-slo-met" ? STATE_TEXT[r.state] : "—"}</span>}
              </td>
              <td data-testid="knee">
                {r.knee ? <>{r.knee.load} <span className="muted small">({formatNumber(r.knee.outputThroughput)} tok/s,
                  e2e {formatNumber(r.knee.e2eMedianS)} s)</span></> : "—"}
              </td>
              <td data-testid="tokens-per-dollar">{formatNumber(r.tokensPerDollar)}{atPeak(r, r.tokensPerDollar)}</td>
              <td data-testid="tokens-per-joule">{formatNumber(r.tokensPerJoule)}{atPeak(r, r.tokensPerJoule)}</td>
              <td data-testid="stopped-early" className="small">{r.stoppedEarly ?? <span className="muted">no</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A labelled drop-down of the chart settings. */
function Select<T extends string>({ label, value, options, onChange }: {
  label: string; value: T; options: Record<T, string>; onChange: (v: T) => void;
}) {
  return (
    <label className="field" style={{ minWidth: 140 }}>
      <span className="field-label">{label}</span>
      <select aria-label={label} value={value} onChange={(e) => onChange(e.target.value as T)}>
        {(Object.entries(options) as [T, string][]).map(([v, text]) => <option key={v} value={v}>{text}</option>)}
      </select>
    </label>
  );
}

/** The curves of the sweep with their controls. */
function LoadCurves({ data, mode }: { data: ExperimentLoad; mode: LoadMode | null }) {
  const [x, setX] = useState<ThroughputAxis>("output_throughput");
  const [y, setY] = useState<LatencyKey>("ttft_s");
  const [stat, setStat] = useState<LatencyStat>("p99");
  const [logY, setLogY] = useState(false);
  const curves = useMemo(() => latencyCurves(data.cells, mode, { x, y, stat }), [data.cells, mode, x, y, stat]);
  const goodput = useMemo(() => goodputChart(data.cells, mode, data.slo !== null), [data.cells, mode, data.slo]);
  const slo = sloLine(data.slo, y);
  if (curves.every((c) => c.points.length === 0)) {
    return <Empty title="No load point measured yet">The curves appear as the sweeps report their points.</Empty>;
  }
  return (
    <div className="chart-grid">
      <div className="wide">
        <div style={CONTROLS} role="group" aria-label="Latency chart settings">
          <Select label="Throughput" value={x} options={X_AXES} onChange={setX} />
          <Select label="Latency" value={y} options={LATENCY_LABELS} onChange={setY} />
          <Select label="Statistic" value={stat} options={STATS} onChange={setStat} />
          <label className="check">
            <input type="checkbox" checked={logY} onChange={(e) => setLogY(e.target.checked)} /> log scale
          </label>
        </div>
        <LoadLatencyChart curves={curves} xName={X_AXES[x]} yName={`${STATS[stat]} ${LATENCY_LABELS[y]} (ms)`}
          slo={slo} logY={logY} label="Throughput vs latency" />
        <p className="muted small">
          Each point is labelled with its load ({modeLabel(mode)}); ▲ max goodput, ◆ knee
          {slo ? `; dashed: the SLO (${describeSlo(data.slo)})` : data.slo ? `; ${LATENCY_LABELS[y]} has no SLO target` : ""}.
        </p>
      </div>
      <div className="wide">
        <LoadGoodputChart data={goodput} xName={modeLabel(mode)} label="Load vs goodput" />
        <p className="muted small">
          {goodput.measure === "goodput"
            ? "Goodput: requests per second that met every SLO; hollow points miss the SLOs at their percentile."
            : "No SLOs were set, so there is no goodput: the request throughput is shown instead."}
        </p>
      </div>
    </div>
  );
}

/** Histograms of one cell's raw latencies at one load point, read when asked for. */
function LoadDistributions({ cells, mode }: { cells: LoadCell[]; mode: LoadMode | null }) {
  const measured = cells.filter((c) => c.points.length > 0);
  const [job, setJob] = useState<number | null>(null);
  const [index, setIndex] = useState<number | null>(null);
  const cell = measured.find((c) => c.job === job) ?? null;
  const detail = useJobLoad(cell ? cell.job : null);
  if (measured.length === 0) return null;
  const point = detail.data?.points.find((p) => p.index === index) ?? null;
  const raw = point?.raw ?? null;
  const shown: LatencyKey[] = ["ttft_s", "itl_s"];
  return (
    <div data-testid="load-distributions">
      <div style={CONTROLS} role="group" aria-label="Distribution settings">
        <label className="field" style={{ minWidth: 240 }}>
          <span className="field-label">Cell</span>
          <select aria-label="Cell" value={job ?? ""} onChange={(e) => {
            const next = e.target.value ? Number(e.target.value) : null;
            setJob(next);
            setIndex(measured.find((c) => c.job === next)?.points[0]?.index ?? null);
          }}>
            <option value="">choose…</option>
            {measured.map((c) => <option key={c.job} value={c.job}>#{c.job} {c.agent_name || c.hardware || "unassigned"} · {c.model} · {c.runtime}</option>)}
          </select>
        </label>
        {cell && (
          <label className="field" style={{ minWidth: 120 }}>
            <span className="field-label">Load point</span>
            <select aria-label="Load point" value={index ?? ""} onChange={(e) => setIndex(Number(e.target.value))}>
              {cell.points.map((p) => <option key={p.index} value={p.index}>{formatLoad(pointLoad(p, mode), mode)}</option>)}
            </select>
          </label>
        )}
      </div>
      {!cell ? <p className="muted small">Choose a cell to see the TTFT and ITL distributions of its load points.</p>
        : detail.isPending ? <Spinner label="Reading the point's requests…" />
        : detail.isError ? <ErrorBox error={detail.error} title="The requests could not be read" onRetry={() => void detail.refetch()} />
        : !raw ? <p className="muted">This point has no raw latencies.</p>
        : (
          <div className="chart-grid">
            {shown.map((k) => {
              const values = (raw[k] ?? []).map((s) => s * 1000);
              return (
                <div key={k}>
                  <h3>{LATENCY_LABELS[k]} <span className="muted small">({values.length} values)</span></h3>
                  {values.length === 0 ? <p className="muted">No values (every request failed, or one token each).</p>
                    : <LatencyHistogram bins={histogram(values)} name={LATENCY_LABELS[k]} label={`${LATENCY_LABELS[k]} distribution`} />}
                </div>
              );
            })}
          </div>
        )}
    </div>
  );
}

/** The sweep's figures as read: table, curves and distributions (pure rendering of `data`). */
export function LoadSweepView({ data, spec, progress }: {
  data: ExperimentLoad; spec: LoadSpecJson; progress?: Map<number, string>;
}) {
  const mode = data.mode ?? specMode(spec);
  const hasSlo = data.slo !== null;
  const rows = comparisonRows(data.cells, mode, hasSlo, specPoints(spec).length);
  if (data.cells.length === 0) {
    return <Empty title="No jobs">No agent runs this sweep: see the reasons in the specification.</Empty>;
  }
  return (
    <>
      <LoadComparisonTable rows={rows} hasSlo={hasSlo} progress={progress} />
      <h3>Curves</h3>
      <LoadCurves data={data} mode={mode} />
      <h3>Latency distributions</h3>
      <LoadDistributions cells={data.cells} mode={mode} />
    </>
  );
}

/** Downloads of the sweep: one row per load point with its figures, or one per measured request with its times. */
function LoadExports({ experiment }: { experiment: number }) {
  const url = (kind: string, format: string) => `/api/v1/experiments/${experiment}/export/?format=${format}&kind=${kind}`;
  return (
    <div className="actions-row">
      <a className="btn btn-small" href={url("load_points", "csv")} download>Points CSV</a>
      <a className="btn btn-small" href={url("load_points", "json")} download>Points JSON</a>
      <a className="btn btn-small" href={url("load_requests", "csv")} download>Requests CSV</a>
    </div>
  );
}

/** The load sweep card of an experiment's page. */
export function LoadSweepPanel({ experiment, spec }: { experiment: number; spec: LoadSpecJson }) {
  useLoadLiveRefresh(experiment);
  const load = useExperimentLoad(experiment);
  // The page keeps the jobs (with their progress) live already: the running sweeps' progress comes from there.
  const jobs = useJobs(experiment);
  const progress = useMemo(() => new Map((jobs.data ?? []).flatMap((j) => {
    const text = sweepProgress(j.progress);
    return text ? [[j.id, text] as const] : [];
  })), [jobs.data]);
  return (
    <Card title="Serving under load" className="load-sweep" actions={<LoadExports experiment={experiment} />}>
      <SpecLines spec={spec} />
      {load.isPending ? <Spinner label="Reading the sweep…" />
        : load.isError ? <ErrorBox error={load.error} title="The sweep's figures could not be read" onRetry={() => void load.refetch()} />
        : <LoadSweepView data={load.data} spec={spec} progress={progress} />}
    </Card>
  );
}
