/**
 * Serving under load: the JSON shapes of a load sweep (the experiment's `load` spec and the figures the server
 * computes for each cell and load point), with the small helpers every view of them shares.
 *
 * The shapes are the generated API types (`schema.d.ts`): the spec is `common/protocol/load.py`'s `LoadSpec`; the
 * figures are `GET /experiments/{id}/load/` and `GET /jobs/{id}/load/`, whose points are
 * `common.loadmetrics.point_figures`.
 */
import type { components } from "../api/schema";

type S = components["schemas"];

/** The two axes a sweep moves along. */
export type LoadMode = S["LoadModeEnum"];
/** A request rate in requests/s, or "inf" (every request sent at once). */
export type RequestRate = number | "inf";
/** A load point's value: its concurrency or its request rate (the server may send "inf" as a string). */
export type LoadValue = number | string;
/** How open-loop requests arrive. */
export type Arrival = S["Arrival"];
/** Where a sweep's prompts come from. */
export type PromptSource = S["PromptSource"];

/** Latency targets (`ServiceLevelObjectives`). */
export type SloSpec = S["ServiceLevelObjectives"];
/** The prompts of a sweep (`PromptSpec`). */
export type PromptSpecJson = S["PromptSpec"];
/** When a sweep stops early (`EarlyStop`); null switches a criterion off. */
export type EarlyStopJson = S["EarlyStop"];
/** A sweep of load points (`LoadSpec`), as sent in an experiment's `load` and returned by its detail. */
export type LoadSpecJson = S["LoadSpec"];
/** Summary of one latency over a point's completed requests, in seconds. */
export type LatencySummary = S["Distribution"];

/** The latencies a point has summaries of. */
export type LatencyKey = "ttft_s" | "tpot_s" | "itl_s" | "e2e_s";
export const LATENCY_KEYS: LatencyKey[] = ["ttft_s", "tpot_s", "itl_s", "e2e_s"];

/** One load point's figures (`point_figures`, with the definitions of `vllm bench serve`). */
export type LoadPointFigures = S["PointFigures"];
/** A point's raw per-request latencies in seconds (`GET /jobs/{id}/load/` only). */
export type LoadRaw = S["PointRaw"];
/** The point of highest throughput. */
export type LoadPeak = S["Peak"];
/** The point of highest goodput among those meeting the SLOs. */
export type LoadMaxGoodput = S["MaxGoodput"];
/** The point maximizing Kleinrock's power (output throughput over median e2e latency). */
export type LoadKnee = S["Knee"];
/** One job's sweep (a cell: agent × model × runtime). */
export type LoadCell = S["LoadCell"];
/** `GET /experiments/{id}/load/`. */
export type ExperimentLoad = S["ExperimentLoad"];
/** A point of `GET /jobs/{id}/load/`: its figures and raw latencies. */
export type LoadPointWithRaw = S["PointWithRaw"];
/** `GET /jobs/{id}/load/`. */
export type JobLoad = S["JobLoadCell"];

/** The load spec of an experiment (its detail carries `load` when it runs as a sweep), or null. */
export function experimentLoad(experiment: { load?: LoadSpecJson | null }): LoadSpecJson | null {
  return experiment.load ?? null;
}

/** The sweep's axis from its spec. */
export function specMode(spec: LoadSpecJson): LoadMode {
  return spec.concurrency ? "concurrency" : "request_rate";
}

/** The spec's load points, in order. */
export function specPoints(spec: LoadSpecJson): LoadValue[] {
  return [...(spec.concurrency ?? spec.request_rate ?? [])];
}

/** A load value as a number for ordering and plotting ("inf" is Infinity; unreadable values are NaN). */
export function loadNumber(value: LoadValue | null | undefined): number {
  if (value === null || value === undefined) return Number.NaN;
  if (typeof value === "number") return value;
  const text = value.trim().toLowerCase();
  if (text === "inf" || text === "infinity") return Number.POSITIVE_INFINITY;
  const n = Number(text);
  return Number.isFinite(n) ? n : Number.NaN;
}

/** A point's load: its concurrency in a concurrency sweep, else its request rate. */
export function pointLoad(point: Pick<LoadPointFigures, "concurrency" | "request_rate">, mode: LoadMode | null): LoadValue | null {
  if (mode === "concurrency") return point.concurrency;
  if (mode === "request_rate") return point.request_rate;
  return point.concurrency ?? point.request_rate;
}

/** A load value for people: "8" (concurrency), "4 req/s" or "inf" (request rate). */
export function formatLoad(value: LoadValue | null | undefined, mode: LoadMode | null): string {
  if (value === null || value === undefined) return "—";
  const n = loadNumber(value);
  if (n === Number.POSITIVE_INFINITY) return "inf";
  if (Number.isNaN(n)) return String(value);
  const text = Number(n.toPrecision(4)).toString();
  return mode === "request_rate" ? `${text} req/s` : text;
}

/** What the axis of a sweep is called. */
export function modeLabel(mode: LoadMode | null): string {
  return mode === "request_rate" ? "request rate (req/s)" : mode === "concurrency" ? "concurrency" : "load";
}

/** The latency a point's SLO check reads, for each latency with a target. */
const SLO_TARGETS: Partial<Record<LatencyKey, keyof SloSpec>> = { ttft_s: "ttft_ms", tpot_s: "tpot_ms", e2e_s: "e2e_ms" };

/** The SLO target of a latency in milliseconds, or null when it has none. */
export function sloTargetMs(slo: SloSpec | null | undefined, key: LatencyKey): number | null {
  const field = SLO_TARGETS[key];
  const v = field && slo ? slo[field] : null;
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** "TTFT ≤ 200 ms, TPOT ≤ 50 ms at p99" (or "none"). */
export function describeSlo(slo: SloSpec | null | undefined): string {
  if (!slo) return "none";
  const parts = [
    slo.ttft_ms != null ? `TTFT ≤ ${slo.ttft_ms} ms` : null,
    slo.tpot_ms != null ? `TPOT ≤ ${slo.tpot_ms} ms` : null,
    slo.e2e_ms != null ? `e2e ≤ ${slo.e2e_ms} ms` : null,
  ].filter(Boolean);
  if (parts.length === 0) return "none";
  const errors = slo.max_error_rate ? `, errors ≤ ${Number((slo.max_error_rate * 100).toPrecision(3))}%` : "";
  return `${parts.join(", ")} at p${slo.percentile ?? 99}${errors}`;
}

/** The names of latencies in tables and charts. */
export const LATENCY_LABELS: Record<LatencyKey, string> = {
  ttft_s: "TTFT", tpot_s: "TPOT", itl_s: "ITL", e2e_s: "E2E latency",
};
