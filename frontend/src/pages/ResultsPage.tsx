import { useMemo, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useComparison, useExperiment, useExperimentResults, useJobResults, useLive } from "../api/queries";
import type { Comparison, ExperimentResultJob, MetricDescription, RunResults } from "../api/models";
import { isExperimentTerminal } from "../api/statuses";
import { Card, Empty, ErrorBox, KeyValues, ScoringBadge, Spinner, StatusBadge } from "../components/ui";
import { ColdWarmChart, DistributionChart, MetricBarChart, ScatterChart, TelemetryChart } from "../components/Charts";
import { availableMetrics, NO_MODEL, coldVsWarm, comparisonToSeries, distributions, jobLabel, scatterPoints, type ErrorKind } from "../lib/chartData";
import { efficiencyRows, formatPercent, type FractionView } from "../lib/efficiency";
import { formatBytes, formatDate, formatNumber, KNOWN_METRICS, metricLabel } from "../lib/format";
import { compareFigures, isBenchmarkMetric } from "../lib/peaks";
import { comparisonScopeNote, countLabel, latencyMetrics, latencyRows, SCOPE_LABELS, scopeDescription } from "../lib/latency";
import { ciMethodLabel, cvWarning } from "../lib/stats";
import { CLIENT_LABEL, formatRelativeDifference, hasServerFigures, SERVER_LABEL, serverFigureRows } from "../lib/serverFigures";
import { isScoring, scoringNotice } from "../lib/scoring";
import { buildTelemetry } from "../lib/telemetry";

/** The results' metric descriptions, or (from an older server) the metrics found in the statistics. */
function metricInfos(declared: MetricDescription[] | undefined, jobs: ExperimentResultJob[]): MetricDescription[] {
  if (declared && declared.length) return declared;
  return availableMetrics(jobs, KNOWN_METRICS).map((name) => ({
    name, unit: jobs.find((j) => j.statistics[name])?.statistics[name]?.unit ?? "", description: "", higher_is_better: null,
  }));
}

/** Metric options: the known metrics first, then the benchmark figures sorted by device and kind. */
function orderMetrics(metrics: MetricDescription[]): MetricDescription[] {
  const plain = metrics.filter((m) => !isBenchmarkMetric(m.name));
  const figures = metrics.filter((m) => isBenchmarkMetric(m.name)).sort((a, b) => compareFigures(a.name, b.name));
  return [...plain, ...figures];
}

function optionText(m: MetricDescription): string {
  const label = metricLabel(m.name);
  return isBenchmarkMetric(m.name) && m.unit ? `${label} (${m.unit})` : label;
}

function MetricSelect({ value, options, onChange, name }: { value: string; options: MetricDescription[]; onChange: (v: string) => void; name: string }) {
  return (
    <select name={name} value={value} onChange={(e) => onChange(e.target.value)}>
      {options.map((m) => <option key={m.name} value={m.name} title={m.description || m.name}>{optionText(m)}</option>)}
    </select>
  );
}

/** The metric a chart starts with: the first preferred one present, else the first bandwidth figure, else any. */
function defaultMetric(metrics: MetricDescription[], ...preferred: string[]): string {
  const names = metrics.map((m) => m.name);
  return preferred.find((p) => names.includes(p)) ?? names.find((n) => n.startsWith("bandwidth_gbps.")) ?? names[0] ?? "";
}

function ComparisonTable({ cmp }: { cmp: Comparison }) {
  const best = (row: Comparison["rows"][number]) => {
    const means = Object.values(row.cells).map((c) => c.mean).filter((m): m is number => m !== null);
    if (means.length < 2 || cmp.higher_is_better === null) return null;
    return cmp.higher_is_better ? Math.max(...means) : Math.min(...means);
  };
  return (
    <table className="table matrix" aria-label="Comparison matrix">
      <thead>
        <tr><th>Model · runtime</th>{cmp.columns.map((c) => (
          <th key={c.key}>{c.agent_name}{c.cost_per_hour ? <div className="muted small">${c.cost_per_hour}/h</div> : null}</th>
        ))}</tr>
      </thead>
      <tbody>
        {cmp.rows.map((row) => {
          const b = best(row);
          return (
            <tr key={`${row.model}-${row.runtime}`}>
              <td>{row.model === NO_MODEL ? <span className="muted small">no model</span> : <span className="mono small">{row.model}</span>}
                <div className="muted small">{row.runtime}</div></td>
              {cmp.columns.map((col) => {
                const cell = row.cells[col.key];
                if (!cell) return <td key={col.key} className="muted">—</td>;
                return (
                  <td key={col.key} className={cell.mean !== null && cell.mean === b ? "best" : ""}>
                    {cell.mean === null ? (isScoring(cell.scoring_status) ? <ScoringBadge /> : <StatusBadge status={cell.status} />) : (
                      <>
                        <strong>{formatNumber(cell.mean)}</strong>
                        {cell.std !== null && <span className="muted"> ± {formatNumber(cell.std)}</span>}
                        {cmp.unit && <span className="muted small"> {cmp.unit}</span>}
                        <div className="muted small">n={cell.n}
                          {cell.ci95 && <span title={`95% confidence interval of the mean: ${ciMethodLabel(cell.ci_method)}`}>
                            {` · 95% CI ${formatNumber(cell.ci95[0])}–${formatNumber(cell.ci95[1])}`}</span>}
                          {cell.tokens_per_dollar !== undefined && ` · ${formatNumber(cell.tokens_per_dollar)} tok/$`}
                          {cell.tokens_per_joule !== undefined && ` · ${formatNumber(cell.tokens_per_joule)} tok/J`}</div>
                        {cvWarning(cell.cv) && (
                          <div className="small warn-text" data-testid="cell-unstable"
                            title="the runs varied a lot (std / mean): the mean says little">{cvWarning(cell.cv)}</div>
                        )}
                        {cell.bandwidth_fraction !== undefined && (
                          <div className="small" data-testid="cell-bandwidth-fraction"
                            title="fraction of the agent's measured peak memory bandwidth the decode reached">
                            <span className="strong">{formatPercent(cell.bandwidth_fraction)}</span>
                            <span className="muted"> of peak bandwidth</span>
                          </div>
                        )}
                      </>
                    )}
                  </td>
                );
              })}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function ComparisonSection({ experiment, metrics }: { experiment: number; metrics: MetricDescription[] }) {
  const [metric, setMetric] = useState(() => defaultMetric(metrics, "output_tokens_per_s"));
  const [kind, setKind] = useState<ErrorKind>("std");
  const cmp = useComparison(experiment, metric);
  const chart = useMemo(() => (cmp.data ? comparisonToSeries(cmp.data, kind) : null), [cmp.data, kind]);
  return (
    <Card title="Comparison" actions={
      <div className="actions-row">
        <MetricSelect name="comparison-metric" value={metric} options={metrics} onChange={setMetric} />
        <select name="error-kind" value={kind} onChange={(e) => setKind(e.target.value as ErrorKind)}>
          <option value="std">± std</option><option value="ci95">95% CI</option>
        </select>
      </div>
    }>
      {cmp.isPending ? <Spinner /> : cmp.isError ? <ErrorBox error={cmp.error} onRetry={() => void cmp.refetch()} /> :
        cmp.data.rows.length === 0 ? <Empty title="No jobs to compare" /> : (
          <>
            {chart && <MetricBarChart categories={chart.categories} series={chart.series} unit={cmp.data.unit} label={`${metric} per agent, per run`} />}
            <p className="muted small" data-testid="comparison-scope">{comparisonScopeNote(metric)}</p>
            {cmp.data.higher_is_better !== null && (
              <p className="muted small">{metricLabel(metric)}{cmp.data.unit ? ` in ${cmp.data.unit}` : ""}: {cmp.data.higher_is_better ? "higher" : "lower"} is better; the best cell of each row is highlighted.</p>
            )}
            <ComparisonTable cmp={cmp.data} />
          </>
        )}
    </Card>
  );
}

/** Latency per request (every warm request pooled) next to per run (mean of each run), each labelled. */
function LatencySection({ jobs }: { jobs: ExperimentResultJob[] }) {
  const metrics = latencyMetrics(jobs);
  const [metric, setMetric] = useState(() => metrics.includes("ttft_s") ? "ttft_s" : metrics[0] ?? "");
  const rows = latencyRows(jobs, metric);
  const unit = rows.map((r) => r.request?.unit ?? r.run?.unit).find(Boolean) ?? "";
  const u = unit ? ` ${unit}` : "";
  return (
    <Card title="Latency: per request and per run" actions={
      <select name="latency-metric" value={metric} onChange={(e) => setMetric(e.target.value)}>
        {metrics.map((m) => <option key={m} value={m}>{metricLabel(m)}</option>)}
      </select>
    }>
      <p className="muted small">
        <strong>{SCOPE_LABELS.request}</strong>: {scopeDescription("request", metric)}.{" "}
        <strong>{SCOPE_LABELS.run}</strong>: {scopeDescription("run", metric)}. The comparison and the charts use
        the per-run figures.
      </p>
      <table className="table compact" aria-label="Latency per request and per run">
        <thead>
          <tr>
            <th rowSpan={2}>Job</th>
            <th colSpan={5} data-testid="scope-request">{metricLabel(metric)}: {SCOPE_LABELS.request}</th>
            <th colSpan={3} data-testid="scope-run">{metricLabel(metric)}: {SCOPE_LABELS.run}</th>
          </tr>
          <tr>
            <th>n</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th>
            <th>n</th><th>mean ± std</th><th>p95 of run means</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(({ job, label, request, run, source }) => (
            <tr key={job} data-job={job}>
              <td>{label}<div className="muted small">#{job}{source === "cold" && " · cold run only"}</div></td>
              {request ? (
                <>
                  <td className="small">{countLabel("request", request.n, metric)}</td>
                  <td>{formatNumber(request.median)}{u}</td>
                  <td>{formatNumber(request.p90)}{u}</td>
                  <td data-testid="request-p95"><strong>{formatNumber(request.p95)}</strong>{u}</td>
                  <td>{formatNumber(request.p99)}{u}</td>
                </>
              ) : <td colSpan={5} className="muted small">not computed for this job</td>}
              {run ? (
                <>
                  <td className="small">{countLabel("run", run.n, metric)}</td>
                  <td>{formatNumber(run.mean)} ± {formatNumber(run.std)}{u}</td>
                  <td data-testid="run-p95">{formatNumber(run.p95)}{u}</td>
                </>
              ) : <td colSpan={3} className="muted small">—</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </Card>
  );
}

/** Gray-box jobs: each figure as RUCKUS measured it as a client next to the inference server's own histogram. */
export function ServerFiguresSection({ jobs }: { jobs: ExperimentResultJob[] }) {
  const withServer = jobs.filter(hasServerFigures);
  if (withServer.length === 0) return null;
  return (
    <Card title="Client vs inference server" className="server-figures">
      <p className="muted small">
        For jobs on a gray-box runtime, <strong>{CLIENT_LABEL}</strong>: what RUCKUS measured over HTTP, next to
        the <strong>{SERVER_LABEL}</strong>: what the server reports in its Prometheus histograms over the same run.
        Both are per run (mean over the warm runs of each run's value). The difference is the time a request spends
        outside the engine (network, API server, streaming) and how each side defines the figure.
      </p>
      <table className="table compact" aria-label="Client vs inference server">
        <thead>
          <tr><th>Job</th><th>Figure</th><th className="num">{CLIENT_LABEL}</th><th className="num">{SERVER_LABEL}</th>
            <th className="num" title="(server − client) / client">Difference</th></tr>
        </thead>
        <tbody>
          {withServer.flatMap((job) => serverFigureRows(job).map((r, i, rows) => {
            const u = r.unit ? ` ${r.unit}` : "";
            return (
              <tr key={`${job.job}-${r.server}`} data-job={job.job} data-figure={r.server}>
                {i === 0 && <td rowSpan={rows.length}>{jobLabel(job)}<div className="muted small">#{job.job}</div></td>}
                <td>{r.label}<div className="muted small mono">{r.client ?? "—"} · {r.server}</div></td>
                <td className="num" data-testid="client-mean">{r.clientMean === null ? "—" : `${formatNumber(r.clientMean)}${u}`}</td>
                <td className="num" data-testid="server-mean">{r.serverMean === null ? "—" : `${formatNumber(r.serverMean)}${u}`}</td>
                <td className="num" data-testid="relative-difference">{formatRelativeDifference(r.relativeDifference)}</td>
              </tr>
            );
          }))}
        </tbody>
      </table>
    </Card>
  );
}

function RunTelemetry({ run }: { run: RunResults }) {
  const data = useMemo(() => buildTelemetry(run.telemetry), [run.telemetry]);
  if (!data) {
    return <p className="muted small telemetry-note" data-testid="telemetry-empty">No telemetry was sampled during this run.</p>;
  }
  return <TelemetryChart data={data} label={`telemetry of run ${run.run_index}`} />;
}

function RunMetrics({ run, units }: { run: RunResults; units: Map<string, string> }) {
  const entries = Object.entries(run.metrics).filter(([, v]) => typeof v === "number")
    .sort(([a], [b]) => compareFigures(a, b));
  if (entries.length === 0) return <Empty title="This run stored no metrics" />;
  return (
    <KeyValues items={entries.map(([m, v]) => {
      const unit = units.get(m) ?? "";
      return [metricLabel(m), unit === "B" ? formatBytes(v) : `${formatNumber(v)}${unit ? ` ${unit}` : ""}`];
    })} />
  );
}

function SamplesSection({ jobs, units }: { jobs: ExperimentResultJob[]; units: Map<string, string> }) {
  const [jobId, setJobId] = useState<number | null>(jobs[0]?.job ?? null);
  const [runIndex, setRunIndex] = useState<number | null>(null);
  const results = useJobResults(jobId);
  const runs = results.data?.runs ?? [];
  const run = runs.find((r) => r.run_index === runIndex) ?? runs[runs.length - 1];
  return (
    <Card title="Runs" actions={
      <div className="actions-row">
        <select name="samples-job" value={jobId ?? ""} onChange={(e) => { setJobId(Number(e.target.value)); setRunIndex(null); }}>
          {jobs.map((j) => <option key={j.job} value={j.job}>#{j.job} {jobLabel(j)}</option>)}
        </select>
        {runs.length > 0 && (
          <select name="samples-run" value={run?.run_index ?? ""} onChange={(e) => setRunIndex(Number(e.target.value))}>
            {runs.map((r) => <option key={r.run_index} value={r.run_index}>run {r.run_index}{r.cold_start ? " (cold)" : ""}</option>)}
          </select>
        )}
      </div>
    }>
      {results.isPending ? <Spinner /> : results.isError ? <ErrorBox error={results.error} /> :
        results.data.error ? <ErrorBox title="The job reported an error" error={results.data.error} /> :
        !run ? <Empty title="No runs stored yet" /> : (
          <div className="samples">
            {isScoring(results.data.scoring_status) && (
              <p className="muted small" data-testid="samples-scoring"><ScoringBadge /> ROUGE of these outputs is being
                computed: the scores appear here when it is done.</p>
            )}
            {results.data.scoring_status === "failed" && (
              <p className="small warn-text" data-testid="samples-scoring-failed">
                Scoring failed: {results.data.scoring_error ?? "no reason given"}</p>
            )}
            <h3>Telemetry of run {run.run_index}{run.cold_start ? " (cold)" : ""}</h3>
            <RunTelemetry run={run} />
            {(run.samples ?? []).length === 0 && (
              <>
                <h3>Metrics of run {run.run_index}</h3>
                <RunMetrics run={run} units={units} />
              </>
            )}
            {(run.samples ?? []).length > 0 && <h3>Outputs and references</h3>}
            {(run.samples ?? []).map((s) => (
              <article key={s.id} className="sample" data-testid="sample">
                <header>
                  <strong>{s.title ?? s.id}</strong>
                  <span className="muted small">
                    {["rouge1", "rougeL", "e2e_latency_s", "ttft_s"].filter((m) => typeof s.metrics[m] === "number")
                      .map((m) => `${metricLabel(m)} ${formatNumber(s.metrics[m])}`).join(" · ")}
                    {s.output_tokens !== null && ` · ${s.output_tokens} tokens`}{s.finish_reason && ` · ${s.finish_reason}`}
                  </span>
                </header>
                {s.error && <div className="error-inline">{s.error}</div>}
                <div className="sample-cols">
                  <div><div className="label">Model output</div><p>{s.output || <em className="muted">empty</em>}</p></div>
                  <div><div className="label">Reference</div><p>{s.reference ?? <em className="muted">none</em>}</p></div>
                </div>
              </article>
            ))}
          </div>
        )}
    </Card>
  );
}

function ChartsSection({ jobs, metrics }: { jobs: ExperimentResultJob[]; metrics: MetricDescription[] }) {
  const names = metrics.map((m) => m.name);
  const [coldMetric, setColdMetric] = useState(() => defaultMetric(metrics, "e2e_latency_s"));
  const [distMetric, setDistMetric] = useState(() => defaultMetric(metrics, "output_tokens_per_s"));
  const rouge = names.includes("rougeL") ? "rougeL" : names.find((m) => m.startsWith("rouge")) ?? "";
  const llm = names.includes("e2e_latency_s");
  const scatter = scatterPoints(jobs, "e2e_latency_s", rouge);
  const cold = coldVsWarm(jobs, coldMetric);
  const dist = distributions(jobs, distMetric);
  const unitOf = (m: string) => metrics.find((x) => x.name === m)?.unit ||
    (jobs.find((j) => j.statistics[m])?.statistics[m]?.unit ?? "");
  return (
    <div className="chart-grid">
      {llm && (
        <Card title="Latency vs quality">
          {scatter.length === 0 ? <Empty title="Needs e2e latency and ROUGE">ROUGE is computed when outputs have references.</Empty> :
            <ScatterChart points={scatter} xName="e2e latency (s), per run mean" yName={metricLabel(rouge)} label="latency vs rouge" />}
        </Card>
      )}
      <Card title="Cold vs warm" className={llm ? "" : "wide"} actions={<MetricSelect name="cold-metric" value={coldMetric} options={metrics} onChange={setColdMetric} />}>
        {cold.length === 0 ? <Empty title="No cold-run data for this metric" /> :
          <ColdWarmChart rows={cold} unit={unitOf(coldMetric)} label="cold vs warm" />}
      </Card>
      <Card title="Per-run distribution" className="wide" actions={<MetricSelect name="dist-metric" value={distMetric} options={metrics} onChange={setDistMetric} />}>
        {dist.length === 0 ? <Empty title="No runs with this metric" /> :
          <DistributionChart items={dist} unit={unitOf(distMetric)} label="distribution" />}
      </Card>
    </div>
  );
}

function FractionCell({ view, kind }: { view: FractionView; kind: "bandwidth" | "compute" }) {
  const pct = view.fraction === null ? null : Math.min(1, Math.max(0, view.fraction));
  return (
    <td className="efficiency-cell" data-testid={`efficiency-${kind}`} title={view.reason ?? view.detail}>
      {view.fraction === null ? (
        <>
          <span className="muted">not available</span>
          <div className="muted small">{view.reason}</div>
        </>
      ) : (
        <>
          <div className="efficiency-value">
            <strong>{view.text}</strong>
            <div className="meter" aria-hidden><div className={`meter-fill ${kind}`} style={{ width: `${(pct ?? 0) * 100}%` }} /></div>
          </div>
          <div className="muted small">{view.detail}</div>
          {view.warning && <div className="small warn-text" title="the peak's repeats varied a lot: the host was busy or unsteady">{view.warning}</div>}
        </>
      )}
    </td>
  );
}

function EfficiencySection({ jobs }: { jobs: ExperimentResultJob[] }) {
  const rows = efficiencyRows(jobs);
  if (rows.length === 0) return null;
  const measured = rows.map((r) => r.peaksMeasuredAt).filter((d): d is string => d !== null).sort();
  return (
    <Card title="Efficiency against measured peaks" className="efficiency">
      <p className="muted small">
        How close each job's decode came to its agent's measured limits: weight bytes read per second against the
        peak memory bandwidth, and 2 FLOPs per parameter per token against the matmul peak of the weights'
        precision. These are lower bounds (KV-cache and activation traffic are not counted).
        {measured.length > 0 && <> Peaks measured {formatDate(measured[measured.length - 1])}.</>}
      </p>
      <table className="table" aria-label="Efficiency">
        <thead>
          <tr><th>Job</th><th>Device · dtype</th><th>Decode</th><th>% of measured peak bandwidth</th><th>% of measured peak compute</th></tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.job} data-job={r.job}>
              <td>{r.label}<div className="muted small">#{r.job}</div></td>
              <td className="small">{r.placement}{r.weightBytes !== null && <div className="muted small">weights {formatBytes(r.weightBytes)}</div>}</td>
              <td className="small">{r.decodeTokensPerS === null ? "—" : `${formatNumber(r.decodeTokensPerS)} tok/s`}</td>
              <FractionCell view={r.bandwidth} kind="bandwidth" />
              <FractionCell view={r.compute} kind="compute" />
            </tr>
          ))}
        </tbody>
      </table>
    </Card>
  );
}

function Unavailable({ jobs }: { jobs: ExperimentResultJob[] }) {
  const rows = jobs.flatMap((j) => Object.entries(j.unavailable_metrics ?? {}).map(([m, why]) => ({ job: j, m, why })));
  if (rows.length === 0) return null;
  return (
    <Card title="Metrics not measured">
      <ul className="small">{rows.map((r) => <li key={`${r.job.job}-${r.m}`}><strong>{metricLabel(r.m)}</strong> on {jobLabel(r.job)}: {r.why}</li>)}</ul>
    </Card>
  );
}

/** An experiment's results: comparison across agents, efficiency against measured peaks, charts, runs. */
export function ResultsPage() {
  const id = Number(useParams().id);
  useLive(Number.isFinite(id) ? { experiment: id } : null);
  const exp = useExperiment(id);
  const results = useExperimentResults(id);
  const jobs = results.data?.jobs ?? [];
  const metrics = useMemo(() => orderMetrics(metricInfos(results.data?.metrics, jobs)), [results.data?.metrics, jobs]);
  const units = useMemo(() => new Map(metrics.map((m) => [m.name, m.unit])), [metrics]);
  const withStats = jobs.filter((j) => Object.keys(j.statistics).length > 0);
  const scoring = scoringNotice(results.data?.scoring);

  return (
    <div className="page">
      <div className="page-header">
        <div>
          <div className="muted small"><Link to="/experiments">Experiments</Link> / <Link to={`/experiments/${id}`}>#{id}</Link> / results</div>
          <h1>Results{exp.data && <>: {exp.data.name} <StatusBadge status={exp.data.status} /></>}</h1>
        </div>
        <div className="actions-row">
          <a className="btn" href={`/api/v1/experiments/${id}/export/?format=csv`} download>Export CSV</a>
          <a className="btn" href={`/api/v1/experiments/${id}/export/?format=json`} download>Export JSON</a>
        </div>
      </div>
      {exp.isError && <ErrorBox error={exp.error} />}
      {scoring && withStats.length > 0 && (
        <div className="notice small" role="status" data-testid="scoring-notice"><ScoringBadge /> {scoring}</div>
      )}
      {exp.data?.load && (
        <div className="notice small" role="status" data-testid="load-notice">
          This experiment is a load sweep: its throughput–latency curves, max goodput and knee per agent are on{" "}
          <Link to={`/experiments/${id}`}>the experiment's page</Link>; its points export as{" "}
          <a href={`/api/v1/experiments/${id}/export/?format=csv&kind=load_points`} download>CSV</a>.
        </div>
      )}
      {results.isPending ? <Spinner /> : results.isError ? <ErrorBox error={results.error} onRetry={() => void results.refetch()} /> :
        withStats.length === 0 && exp.data?.load ? null :
        withStats.length === 0 ? (
          <Card>{scoring ? (
            <Empty title="Scoring results…"><span data-testid="scoring-notice">{scoring}</span></Empty>
          ) : (
            <Empty title="No results yet">{exp.data && !isExperimentTerminal(exp.data.status)
              ? "Jobs are still running: results appear here as soon as a job completes." : "No job produced statistics."}</Empty>
          )}</Card>
        ) : (
          <>
            <ComparisonSection experiment={id} metrics={metrics} />
            {latencyMetrics(withStats).length > 0 && <LatencySection jobs={withStats} />}
            <ServerFiguresSection jobs={withStats} />
            <EfficiencySection jobs={withStats} />
            <ChartsSection jobs={withStats} metrics={metrics} />
            <Unavailable jobs={withStats} />
            <SamplesSection jobs={withStats} units={units} />
          </>
        )}
    </div>
  );
}
