/**
 * An agent's local inference servers and its gray-box runtimes' served models, as rows to show (pure functions:
 * unit-tested).
 *
 * The agent lists each server it was told about (`configured`) or found on a usual loopback port (`probed`) with
 * whether it answered `GET /v1/models`, what engine it said it is, the models it serves and whether its Prometheus
 * `/metrics` could be read. A gray-box runtime (`vllm`, `llamacpp_server`) is available only while one of its
 * servers answers, and only for the models those servers serve (`RuntimeCapability.served_models`).
 */
import type { AgentInfo } from "../api/models";

export interface LocalServerRow {
  runtime: string;
  url: string;
  source: "configured" | "probed";
  /** Whether it answered with a model list at the agent's last check. */
  answering: boolean;
  /** "answering", or "not answering: <reason>". */
  status: string;
  /** "vllm 0.6.3", "llama.cpp", or null when the server did not say. */
  engine: string | null;
  models: string[];
  /** Whether its Prometheus endpoint could be read (the server's own figures come from there). */
  metricsOk: boolean;
  /** "ok", or why not. */
  metrics: string;
  metricsUrl: string | null;
}

/** The runtimes that reach a server on the agent's host and the models those servers serve. */
export interface ServedModelsRow {
  runtime: string;
  available: boolean;
  models: string[];
  reason: string | null;
}

/** "vllm 0.6.3" from an engine and its version; null when the server named neither. */
export function engineText(engine: string | null | undefined, version: string | null | undefined): string | null {
  if (!engine) return version ? `unknown engine ${version}` : null;
  return version ? `${engine} ${version}` : engine;
}

/** One row per local server the agent reported, answering ones first, in the agent's order otherwise. */
export function localServerRows(info: AgentInfo | null | undefined): LocalServerRow[] {
  const rows = (info?.local_servers ?? []).map((s): LocalServerRow => {
    const answering = s.available ?? false;
    const metricsOk = s.metrics_available ?? false;
    return {
      runtime: s.runtime,
      url: s.url,
      source: s.source ?? "configured",
      answering,
      status: answering ? "answering" : `not answering${s.reason ? `: ${s.reason}` : ""}`,
      engine: engineText(s.engine, s.engine_version),
      models: s.models ?? [],
      metricsOk,
      metrics: metricsOk ? "ok" : s.metrics_reason || "not readable",
      metricsUrl: s.metrics_url ?? null,
    };
  });
  // A stable sort: the servers jobs can use now come first.
  return rows.sort((a, b) => Number(b.answering) - Number(a.answering));
}

/** The gray-box runtimes (those whose `served_models` is a list, even an empty one) with the models they serve. */
export function servedModelsRows(info: AgentInfo | null | undefined): ServedModelsRow[] {
  return (info?.runtimes ?? [])
    .filter((r) => Array.isArray(r.served_models))
    .map((r) => ({ runtime: r.name, available: r.available, models: r.served_models ?? [], reason: r.reason ?? null }));
}

/** "2 local servers, 1 answering" for the fleet table; null when the agent reported none. */
export function localServersSummary(info: AgentInfo | null | undefined): string | null {
  const servers = info?.local_servers ?? [];
  if (servers.length === 0) return null;
  const answering = servers.filter((s) => s.available).length;
  const noun = servers.length === 1 ? "local server" : "local servers";
  return `${servers.length} ${noun}, ${answering} answering`;
}
