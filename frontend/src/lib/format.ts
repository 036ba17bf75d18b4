/** Formatting helpers for numbers, sizes, times and metric names. */
import type { JobProgress } from "../api/models";
import { figureLabel, isBenchmarkMetric } from "./peaks";

/** Bytes in binary units ("1.5 GiB"). */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** A number with about 3 significant digits (small values keep their precision). */
export function formatNumber(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  if (v === 0) return "0";
  const abs = Math.abs(v);
  if (abs >= 1000) return v.toLocaleString("en-US", { maximumFractionDigits: 0 });
  return Number(v.toPrecision(digits)).toString();
}

/** A timestamp in the browser's locale. */
export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** "3 s ago", "5 min ago"... relative to `now`. */
export function formatAgo(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Time between two timestamps (up to now while `end` is missing): "3 min 4 s". */
export function formatDuration(start: string | null | undefined, end: string | null | undefined): string {
  if (!start) return "—";
  const ms = (end ? new Date(end).getTime() : Date.now()) - new Date(start).getTime();
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

const METRIC_LABELS: Record<string, string> = {
  e2e_latency_s: "End-to-end latency (s)",
  ttft_s: "Time to first token (s)",
  tpot_s: "Time per output token (s)",
  inter_token_gaps_s: "Inter-token gap (s)",
  output_tokens_per_s: "Output tokens/s",
  output_tokens: "Output tokens",
  prompt_tokens: "Prompt tokens",
  run_wall_s: "Run wall time (s)",
  model_load_s: "Model load (s)",
  peak_rss_bytes: "Peak RSS (bytes)",
  peak_gpu_memory_bytes: "Peak GPU memory (bytes)",
  gpu_utilization_pct: "GPU utilization (%)",
  gpu_power_w: "GPU power (W)",
  energy_j: "Energy (J)",
  cpu_percent: "CPU use (%)",
  gpu_temperature_c: "GPU temperature (°C)",
  gpu_sm_clock_mhz: "GPU SM clock (MHz)",
  // The inference server's own figures (gray box), as `common.metrics` lists them.
  server_ttft_s: "Server: time to first token (s)",
  server_tpot_s: "Server: time per output token (s)",
  server_inter_token_latency_s: "Server: inter-token latency (s)",
  server_e2e_latency_s: "Server: request latency (s)",
  server_generation_tokens: "Server: generated tokens",
  server_prompt_tokens: "Server: prompt tokens",
  server_requests: "Server: requests finished",
  server_kv_cache_usage_pct: "Server: KV-cache use at run end (%)",
  server_requests_running: "Server: requests running at run end",
  server_prefill_s: "Server: prompt processing per request (s)",
  server_prefill_tokens_per_s: "Server: prompt tokens/s",
  server_prompt_tokens_processed: "Server: prompt tokens processed",
  server_prompt_tokens_cached: "Server: prompt tokens from cache",
  server_requests_waiting: "Server: requests waiting at run end",
  rouge1: "ROUGE-1",
  rouge2: "ROUGE-2",
  rougeL: "ROUGE-L",
  rougeLsum: "ROUGE-Lsum",
};

/** A readable name of a metric: known metrics, hardware benchmark figures ("CPU copy bandwidth"), else the name. */
export function metricLabel(metric: string): string {
  return METRIC_LABELS[metric] ?? (isBenchmarkMetric(metric) ? figureLabel(metric) : metric);
}

/** Every metric the server knows, in its catalogue order. */
export const KNOWN_METRICS = Object.keys(METRIC_LABELS);

/** Model names of an experiment; tasks that need no model (stored as the model "none") read "no model". */
export function formatModels(models: { name: string }[] | undefined, noModelName = "none"): string {
  const names = (models ?? []).map((m) => m.name).filter((n) => n !== noModelName);
  return names.length ? names.join(", ") : "no model";
}

/** Overall fraction done (0..1) of a job's progress, or null when unknown. */
export function progressFraction(
  p: Pick<JobProgress, "run_index" | "runs_total" | "samples_done" | "samples_total"> | null | undefined,
): number | null {
  if (!p) return null;
  const runs = p.runs_total ?? 0;
  const samples = p.samples_total ?? 0;
  const run = p.run_index ?? 0;
  if (runs <= 0) return null;
  if (run <= 0) return 0;
  const within = samples > 0 ? Math.min(1, (p.samples_done ?? 0) / samples) : 0;
  return Math.min(1, (run - 1 + within) / runs);
}
