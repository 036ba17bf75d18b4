/**
 * The client's figures next to the inference server's own (gray-box runtimes; pure functions: unit-tested).
 *
 * A gray-box run (`vllm`, `llamacpp_server`) reads the server's Prometheus histograms before and after the run, so
 * each run carries the server's mean TTFT, TPOT, ... next to the ones RUCKUS measured as a client. Both are per-run
 * statistics (scope `run`): mean over the warm runs of each run's value. The difference between them is the time
 * the request spends outside the engine (HTTP, queueing in the API server, streaming) plus definitional
 * differences (e.g. the server's TPOT excludes the first token the same way, but counts tokens it generated).
 */
import type { ExperimentResultJob, MetricStatistics } from "../api/models";

/**
 * Each of the inference server's figures and the client figure it sits next to ("" for none): the mirror of
 * `common.metrics.SERVER_FIGURES`, same order. Keep the two in step.
 */
export const SERVER_FIGURES: Readonly<Record<string, string>> = {
  server_ttft_s: "ttft_s",
  server_tpot_s: "tpot_s",
  server_inter_token_latency_s: "inter_token_gaps_s",
  server_e2e_latency_s: "e2e_latency_s",
  server_generation_tokens: "output_tokens",
  server_prompt_tokens: "prompt_tokens",
  server_requests: "",
  server_kv_cache_usage_pct: "",
  server_requests_running: "",
};

/** Column headings: whose figure each column is. */
export const CLIENT_LABEL = "client (RUCKUS)";
export const SERVER_LABEL = "inference server's own metrics";

/** What a row measures, in words (the same for both sides of a pair). */
const FIGURE_LABELS: Record<string, string> = {
  server_ttft_s: "Time to first token",
  server_tpot_s: "Time per output token",
  server_inter_token_latency_s: "Inter-token latency",
  server_e2e_latency_s: "End-to-end latency",
  server_generation_tokens: "Output tokens",
  server_prompt_tokens: "Prompt tokens",
  server_requests: "Requests finished",
  server_kv_cache_usage_pct: "KV-cache use at run end",
  server_requests_running: "Requests running at run end",
};

export interface ServerFigureRow {
  /** The server's metric (`server_ttft_s`). */
  server: string;
  /** The client's metric it sits next to (`ttft_s`), or null where the client has none. */
  client: string | null;
  label: string;
  unit: string;
  /** Mean over the warm runs of each run's value; null when the job has no statistics of it. */
  clientMean: number | null;
  serverMean: number | null;
  clientN: number | null;
  serverN: number | null;
  /** (server − client) / client; null without both or when the client's mean is 0. */
  relativeDifference: number | null;
}

/** Whether a job has any of the inference server's figures (only gray-box jobs whose /metrics could be read). */
export function hasServerFigures(job: Pick<ExperimentResultJob, "statistics">): boolean {
  return Object.keys(SERVER_FIGURES).some((m) => job.statistics[m] !== undefined);
}

/** (server − client) / |client|, or null when either is missing or the client's figure is 0. */
export function relativeDifference(client: number | null, server: number | null): number | null {
  if (client === null || server === null || !Number.isFinite(client) || !Number.isFinite(server) || client === 0) {
    return null;
  }
  return (server - client) / Math.abs(client);
}

/** "+12%", "−3.4%", "0%": a signed relative difference; "—" without one. */
export function formatRelativeDifference(fraction: number | null): string {
  if (fraction === null || !Number.isFinite(fraction)) return "—";
  const pct = fraction * 100;
  const abs = Math.abs(pct);
  if (abs < 0.05) return "0%";
  const text = abs >= 10 ? abs.toFixed(0) : abs.toFixed(1);
  return `${pct > 0 ? "+" : "−"}${text}%`;
}

function mean(s: MetricStatistics | undefined): number | null {
  return s && Number.isFinite(s.mean) ? s.mean : null;
}

/** One row per server figure the job has, in `SERVER_FIGURES` order, with the client's mean next to it. */
export function serverFigureRows(job: Pick<ExperimentResultJob, "statistics">): ServerFigureRow[] {
  const rows: ServerFigureRow[] = [];
  for (const [server, client] of Object.entries(SERVER_FIGURES)) {
    const s = job.statistics[server];
    if (!s) continue;
    const c = client ? job.statistics[client] : undefined;
    rows.push({
      server,
      client: client || null,
      label: FIGURE_LABELS[server] ?? server,
      unit: s.unit || c?.unit || "",
      clientMean: mean(c),
      serverMean: mean(s),
      clientN: c?.n ?? null,
      serverN: s.n,
      relativeDifference: relativeDifference(mean(c), mean(s)),
    });
  }
  return rows;
}
