import { useMemo, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useComparison, useExperiment, useExperimentResults, useJobResults, useLive } from "../api/queries";
import type { Comparison, ExperimentResultJob } from "../api/types";
import { Card, Empty, ErrorBox, Spinner, StatusBadge } from "../components/ui";
import { ColdWarmChart, DistributionChart, MetricBarChart, ScatterChart } from "../components/Charts";
import { availableMetrics, coldVsWarm, comparisonToSeries, distributions, jobLabel, scatterPoints, type ErrorKind } from "../lib/chartData";
import { formatNumber, KNOWN_METRICS, metricLabel } from "../lib/format";

function MetricSelect({ value, options, onChange, name }: { value: string; options: string[]; onChange: (v: string) => void; name: string }) {
  return (
    <select name={name} value={value} onChange={(e) => onChange(e.target.value)}>
      {options.map((m) => <option key={m} value={m}>{metricLabel(m)}</option>)}
    </select>
  );
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
              <td><span className="mono small">{row.model}</span><div className="muted small">{row.runtime}</div></td>
              {cmp.columns.map((col) => {
                const cell = row.cells[col.key];
                if (!cell) return <td key={col.key} className="muted">—</td>;
                return (
                  <td key={col.key} className={cell.mean !== null && cell.mean === b ? "best" : ""}>
                    {cell.mean === null ? <StatusBadge status={cell.status} /> : (
                      <>
                        <strong>{formatNumber(cell.mean)}</strong>
                        {cell.std !== null && <span className="muted"> ± {formatNumber(cell.std)}</span>}
                        <div className="muted small">n={cell.n}
                          {cell.tokens_per_dollar !== undefined && ` · ${formatNumber(cell.tokens_per_dollar)} tok/$`}
                          {cell.tokens_per_joule !== undefined && ` · ${formatNumber(cell.tokens_per_joule)} tok/J`}</div>
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

function ComparisonSection({ experiment, metrics }: { experiment: number; metrics: string[] }) {
  const [metric, setMetric] = useState(metrics.includes("output_tokens_per_s") ? "output_tokens_per_s" : metrics[0] ?? "");
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
            {chart && <MetricBarChart categories={chart.categories} series={chart.series} unit={cmp.data.unit} label={`${metric} per agent`} />}
            <ComparisonTable cmp={cmp.data} />
          </>
        )}
    </Card>
  );
}

function SamplesSection({ jobs }: { jobs: ExperimentResultJob[] }) {
  const [jobId, setJobId] = useState<number | null>(jobs[0]?.job ?? null);
  const [runIndex, setRunIndex] = useState<number | null>(null);
  const results = useJobResults(jobId);
  const runs = results.data?.runs ?? [];
  const run = runs.find((r) => r.run_index === runIndex) ?? runs[runs.length - 1];
  return (
    <Card title="Outputs and references" actions={
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
            {(run.samples ?? []).length === 0 && <Empty title="This run stored no samples" />}
          </div>
        )}
    </Card>
  );
}

function ChartsSection({ jobs, metrics }: { jobs: ExperimentResultJob[]; metrics: string[] }) {
  const [coldMetric, setColdMetric] = useState(metrics.includes("e2e_latency_s") ? "e2e_latency_s" : metrics[0] ?? "");
  const [distMetric, setDistMetric] = useState(metrics.includes("output_tokens_per_s") ? "output_tokens_per_s" : metrics[0] ?? "");
  const rouge = metrics.includes("rougeL") ? "rougeL" : metrics.find((m) => m.startsWith("rouge")) ?? "";
  const scatter = scatterPoints(jobs, "e2e_latency_s", rouge);
  const cold = coldVsWarm(jobs, coldMetric);
  const dist = distributions(jobs, distMetric);
  const unitOf = (m: string) => jobs.find((j) => j.statistics[m])?.statistics[m]?.unit ?? "";
  return (
    <div className="chart-grid">
      <Card title="Latency vs quality">
        {scatter.length === 0 ? <Empty title="Needs e2e latency and ROUGE">ROUGE is computed when outputs have references.</Empty> :
          <ScatterChart points={scatter} xName="e2e latency (s)" yName={metricLabel(rouge)} label="latency vs rouge" />}
      </Card>
      <Card title="Cold vs warm" actions={<MetricSelect name="cold-metric" value={coldMetric} options={metrics} onChange={setColdMetric} />}>
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

function Unavailable({ jobs }: { jobs: ExperimentResultJob[] }) {
  const rows = jobs.flatMap((j) => Object.entries(j.unavailable_metrics ?? {}).map(([m, why]) => ({ job: j, m, why })));
  if (rows.length === 0) return null;
  return (
    <Card title="Metrics not measured">
      <ul className="small">{rows.map((r) => <li key={`${r.job.job}-${r.m}`}><strong>{metricLabel(r.m)}</strong> on {jobLabel(r.job)}: {r.why}</li>)}</ul>
    </Card>
  );
}

export function ResultsPage() {
  const id = Number(useParams().id);
  useLive(Number.isFinite(id) ? { experiment: id } : null);
  const exp = useExperiment(id);
  const results = useExperimentResults(id);
  const jobs = results.data?.jobs ?? [];
  const metrics = useMemo(() => availableMetrics(jobs, KNOWN_METRICS), [jobs]);
  const withStats = jobs.filter((j) => Object.keys(j.statistics).length > 0);

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
      {results.isPending ? <Spinner /> : results.isError ? <ErrorBox error={results.error} onRetry={() => void results.refetch()} /> :
        withStats.length === 0 ? (
          <Card><Empty title="No results yet">{exp.data && !["completed", "partially_failed", "failed", "cancelled"].includes(exp.data.status)
            ? "Jobs are still running: results appear here as soon as a job completes." : "No job produced statistics."}</Empty></Card>
        ) : (
          <>
            <ComparisonSection experiment={id} metrics={metrics} />
            <ChartsSection jobs={withStats} metrics={metrics} />
            <Unavailable jobs={withStats} />
            <SamplesSection jobs={withStats} />
          </>
        )}
    </div>
  );
}
