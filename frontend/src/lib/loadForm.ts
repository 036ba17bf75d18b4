/**
 * The experiment form's load sweep section: its state, the checks made before anything is sent (each message
 * names the spec's field, as the server's would), the `load` object of the request, the server's refusals mapped
 * back onto the fields, and what the plan preview says of the sweep. Pure: unit-tested.
 */
import type { FieldErrors } from "../api/errors";
import type { Catalog } from "../api/models";
import type { Arrival, LoadMode, LoadSpecJson, PromptSource, RequestRate } from "./load";

/** Limits of `common/protocol/load.py`, checked here so that a mistake shows before the server is asked. */
export const LOAD_LIMITS = {
  maxPoints: 32,
  maxConcurrency: 4096,
  maxRequestsPerPoint: 100_000,
  maxPointDurationS: 3600,
  maxRequestRate: 100_000,
  maxSyntheticTokens: 131_072,
  maxWarmupRequests: 10_000,
  maxSeed: 2 ** 32 - 1,
  maxRequestTimeoutS: 86_400,
  maxSloMs: 3_600_000,
  maxBurstiness: 1000,
  maxLatencyFactor: 10_000,
} as const;

/** The section's inputs, as typed (text fields keep the text; the request converts it). */
export interface LoadFormState {
  enabled: boolean;
  mode: LoadMode;
  concurrency: string;
  requestRate: string;
  arrival: Arrival;
  burstiness: string;
  maxConcurrency: string;
  sizeBy: "num_requests" | "duration_s";
  numRequests: string;
  durationS: string;
  warmupRequests: string;
  seed: string;
  requestTimeoutS: string;
  slo: { ttftMs: string; tpotMs: string; e2eMs: string; percentile: string; maxErrorRate: string };
  prompts: { source: PromptSource; path: string; inputTokens: string; outputTokens: string; ignoreEos: "default" | "on" | "off" };
  earlyStop: { latencyFactor: string; maxErrorRate: string };
}

export const initialLoadForm: LoadFormState = {
  enabled: false,
  mode: "concurrency",
  concurrency: "1, 2, 4, 8, 16, 32",
  requestRate: "1, 2, 4, 8, inf",
  arrival: "poisson",
  burstiness: "1",
  maxConcurrency: "",
  sizeBy: "num_requests",
  numRequests: "200",
  durationS: "60",
  warmupRequests: "10",
  seed: "0",
  requestTimeoutS: "600",
  slo: { ttftMs: "", tpotMs: "", e2eMs: "", percentile: "99", maxErrorRate: "" },
  prompts: { source: "synthetic", path: "", inputTokens: "512", outputTokens: "128", ignoreEos: "default" },
  earlyStop: { latencyFactor: "20", maxErrorRate: "0.5" },
};

/**
 * The fields of the section, by their path in the spec (what error messages name). Messages of a list's items
 * ("request_rate[2]") belong to the list's field.
 */
export const LOAD_FIELDS = [
  "concurrency", "request_rate", "arrival", "burstiness", "max_concurrency", "num_requests", "duration_s",
  "warmup_requests", "seed", "request_timeout_s", "slo", "slo.ttft_ms", "slo.tpot_ms", "slo.e2e_ms",
  "slo.percentile", "slo.max_error_rate", "prompts", "prompts.source", "prompts.path", "prompts.input_tokens",
  "prompts.output_tokens", "prompts.ignore_eos", "early_stop", "early_stop.latency_factor",
  "early_stop.max_error_rate",
] as const;
export type LoadField = (typeof LOAD_FIELDS)[number];
/** Messages by field; `""` holds those about the sweep as a whole. */
export type LoadErrors = Partial<Record<LoadField | "", string[]>>;

const KNOWN = new Set<string>(LOAD_FIELDS);

function add(errors: LoadErrors, field: LoadField | "", message: string): void {
  (errors[field] ??= []).push(message);
}

/** A number typed into a field: `undefined` when empty, NaN when not a number. */
function num(text: string): number | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  return Number(t);
}

/** The items of a comma (or space) separated list, as typed. */
function items(text: string): string[] {
  return text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
}

/** Check one numeric field: the value (or undefined when empty and optional) and its message when bad. */
function checkNumber(
  errors: LoadErrors, field: LoadField, text: string,
  opts: { min?: number; above?: number; max: number; integer?: boolean; required?: boolean },
): number | undefined {
  const v = num(text);
  if (v === undefined) {
    if (opts.required) add(errors, field, `${field}: required`);
    return undefined;
  }
  const kind = opts.integer ? "a whole number" : "a number";
  const low = opts.above !== undefined ? `above ${opts.above}` : `at least ${opts.min ?? 0}`;
  if (!Number.isFinite(v) || (opts.integer && !Number.isInteger(v))) {
    add(errors, field, `${field}: must be ${kind}, got "${text.trim()}"`);
    return undefined;
  }
  if ((opts.above !== undefined && v <= opts.above) || (opts.min !== undefined && v < opts.min) || v > opts.max) {
    add(errors, field, `${field}: must be ${low} and at most ${opts.max.toLocaleString("en-US")}, got ${v}`);
    return undefined;
  }
  return v;
}

/** The concurrency levels typed, with a message per bad level. */
function concurrencyLevels(errors: LoadErrors, text: string): number[] {
  const raw = items(text);
  if (raw.length === 0) add(errors, "concurrency", "concurrency: give at least one level (e.g. 1, 2, 4, 8)");
  if (raw.length > LOAD_LIMITS.maxPoints) {
    add(errors, "concurrency", `concurrency: at most ${LOAD_LIMITS.maxPoints} load points, got ${raw.length}`);
  }
  const out: number[] = [];
  raw.forEach((r, i) => {
    const n = Number(r);
    if (!Number.isInteger(n) || n < 1 || n > LOAD_LIMITS.maxConcurrency) {
      add(errors, "concurrency", `concurrency[${i}]: must be a whole number between 1 and ${LOAD_LIMITS.maxConcurrency}, got "${r}"`);
    } else out.push(n);
  });
  return out;
}

/** The request rates typed ("inf" allowed), with a message per bad rate. */
function requestRates(errors: LoadErrors, text: string): RequestRate[] {
  const raw = items(text);
  if (raw.length === 0) add(errors, "request_rate", "request_rate: give at least one rate (e.g. 1, 2, 4, inf)");
  if (raw.length > LOAD_LIMITS.maxPoints) {
    add(errors, "request_rate", `request_rate: at most ${LOAD_LIMITS.maxPoints} load points, got ${raw.length}`);
  }
  const out: RequestRate[] = [];
  raw.forEach((r, i) => {
    if (["inf", "infinity"].includes(r.toLowerCase())) {
      out.push("inf");
      return;
    }
    const n = Number(r);
    if (!Number.isFinite(n)) {
      add(errors, "request_rate", `request_rate[${i}]: must be a number of requests/s or "inf", got "${r}"`);
    } else if (n <= 0 || n > LOAD_LIMITS.maxRequestRate) {
      add(errors, "request_rate", `request_rate[${i}]: must be above 0 and at most ${LOAD_LIMITS.maxRequestRate.toLocaleString("en-US")}, got ${r}`);
    } else out.push(n);
  });
  return out;
}

/** The result of reading the section: the spec (null while the sweep is off) and the messages of bad fields. */
export interface LoadReading {
  spec: LoadSpecJson | null;
  errors: LoadErrors;
  valid: boolean;
}

/** Runtimes (among `names`) that load a model themselves and so make load as batches (white-box). */
export function whiteBoxRuntimes(names: string[], catalog?: Catalog | null): string[] {
  return names.filter((name) => {
    const entry = catalog?.runtimes.find((r) => r.name === name);
    return entry ? entry.access_mode === "white_box" : name === "transformers";
  });
}

/**
 * Read the section into a `LoadSpec` (as JSON) and check it as the server will. Empty optional fields are left
 * out (the server's defaults apply), except the early-stop criteria, where empty means "never" (sent as null).
 * `whiteBox` names the experiment's white-box runtimes: they sweep batch sizes, so they take no request rates.
 */
export function readLoadForm(form: LoadFormState, whiteBox: string[] = []): LoadReading {
  if (!form.enabled) return { spec: null, errors: {}, valid: true };
  const errors: LoadErrors = {};
  const spec: LoadSpecJson = {};
  if (form.mode === "concurrency") spec.concurrency = concurrencyLevels(errors, form.concurrency);
  else {
    if (whiteBox.length) {
      add(errors, "request_rate", `request_rate: runtime(s) ${whiteBox.join(", ")} run a load sweep as batches: `
        + "give concurrency levels (batch sizes), not request rates");
    }
    spec.request_rate = requestRates(errors, form.requestRate);
    spec.arrival = form.arrival;
    if (form.arrival === "gamma") {
      const b = checkNumber(errors, "burstiness", form.burstiness, { above: 0, max: LOAD_LIMITS.maxBurstiness, required: true });
      if (b !== undefined) spec.burstiness = b;
    }
    const cap = checkNumber(errors, "max_concurrency", form.maxConcurrency, { min: 1, max: LOAD_LIMITS.maxConcurrency, integer: true });
    if (cap !== undefined) spec.max_concurrency = cap;
  }
  if (form.sizeBy === "num_requests") {
    const n = checkNumber(errors, "num_requests", form.numRequests, { min: 1, max: LOAD_LIMITS.maxRequestsPerPoint, integer: true, required: true });
    if (n !== undefined) spec.num_requests = n;
  } else {
    const d = checkNumber(errors, "duration_s", form.durationS, { above: 0, max: LOAD_LIMITS.maxPointDurationS, required: true });
    if (d !== undefined) spec.duration_s = d;
  }
  const warmup = checkNumber(errors, "warmup_requests", form.warmupRequests, { min: 0, max: LOAD_LIMITS.maxWarmupRequests, integer: true });
  if (warmup !== undefined) spec.warmup_requests = warmup;
  const seed = checkNumber(errors, "seed", form.seed, { min: 0, max: LOAD_LIMITS.maxSeed, integer: true });
  if (seed !== undefined) spec.seed = seed;
  const timeout = checkNumber(errors, "request_timeout_s", form.requestTimeoutS, { above: 0, max: LOAD_LIMITS.maxRequestTimeoutS });
  if (timeout !== undefined) spec.request_timeout_s = timeout;

  // Objectives: only when a target is given (a percentile alone would make every point good).
  const s = form.slo;
  const ttft = checkNumber(errors, "slo.ttft_ms", s.ttftMs, { above: 0, max: LOAD_LIMITS.maxSloMs });
  const tpot = checkNumber(errors, "slo.tpot_ms", s.tpotMs, { above: 0, max: LOAD_LIMITS.maxSloMs });
  const e2e = checkNumber(errors, "slo.e2e_ms", s.e2eMs, { above: 0, max: LOAD_LIMITS.maxSloMs });
  const percentile = checkNumber(errors, "slo.percentile", s.percentile, { above: 0, max: 100 });
  const sloErrors = checkNumber(errors, "slo.max_error_rate", s.maxErrorRate, { min: 0, max: 1 });
  const anyTarget = [s.ttftMs, s.tpotMs, s.e2eMs].some((t) => t.trim() !== "");
  if (anyTarget) {
    spec.slo = {
      ...(ttft !== undefined ? { ttft_ms: ttft } : {}),
      ...(tpot !== undefined ? { tpot_ms: tpot } : {}),
      ...(e2e !== undefined ? { e2e_ms: e2e } : {}),
      ...(percentile !== undefined ? { percentile } : {}),
      ...(sloErrors !== undefined ? { max_error_rate: sloErrors } : {}),
    };
  } else if (s.maxErrorRate.trim() !== "") {
    add(errors, "slo", "slo: give at least one of ttft_ms, tpot_ms, e2e_ms");
  }

  const p = form.prompts;
  spec.prompts = { source: p.source };
  if (p.source === "jsonl") {
    if (p.path.trim() === "") add(errors, "prompts.path", "prompts.path: a jsonl prompt source needs the file's path on the agent");
    else spec.prompts.path = p.path.trim();
  }
  if (p.source === "synthetic") {
    const input = checkNumber(errors, "prompts.input_tokens", p.inputTokens, { min: 1, max: LOAD_LIMITS.maxSyntheticTokens, integer: true, required: true });
    if (input !== undefined) spec.prompts.input_tokens = input;
  }
  const output = checkNumber(errors, "prompts.output_tokens", p.outputTokens, {
    min: 1, max: LOAD_LIMITS.maxSyntheticTokens, integer: true, required: p.source === "synthetic",
  });
  if (output !== undefined) spec.prompts.output_tokens = output;
  if (p.ignoreEos !== "default") spec.prompts.ignore_eos = p.ignoreEos === "on";

  const factor = checkNumber(errors, "early_stop.latency_factor", form.earlyStop.latencyFactor, { above: 1, max: LOAD_LIMITS.maxLatencyFactor });
  const stopErrors = checkNumber(errors, "early_stop.max_error_rate", form.earlyStop.maxErrorRate, { min: 0, max: 1 });
  spec.early_stop = {
    latency_factor: form.earlyStop.latencyFactor.trim() === "" ? null : factor,
    max_error_rate: form.earlyStop.maxErrorRate.trim() === "" ? null : stopErrors,
  };
  const valid = Object.keys(errors).length === 0;
  return { spec, errors, valid };
}

/** The request body with the sweep's `load` added (left out while the sweep is off). */
export function withLoad<T extends object>(body: T, reading: LoadReading): T & { load?: LoadSpecJson } {
  return reading.spec ? { ...body, load: reading.spec } : body;
}

/** "request_rate[2]" and "request_rate.2" are both the field "request_rate"; null when no field matches. */
function fieldOf(path: string): LoadField | null {
  let p = path.replace(/\[\d+\]/g, "").replace(/\.\d+(?=\.|$)/g, "").replace(/^load\.?/, "");
  while (p) {
    if (KNOWN.has(p)) return p as LoadField;
    const dot = p.lastIndexOf(".");
    if (dot < 0) return null;
    p = p.slice(0, dot);
  }
  return null;
}

const MESSAGE_PATH = /^\s*([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*)\s*:/;

/**
 * The server's refusals of the `load` object, by field of the section. The server nests errors like the input
 * (`load.slo.ttft_ms`) and a check of the whole spec names its field at the start of the message
 * (`"load.burstiness: only gamma arrivals..."`, `"request_rate[2]: must be..."`): either places the message next
 * to that field; the rest are about the sweep as a whole.
 */
export function loadServerErrors(errors: FieldErrors): LoadErrors {
  const out: LoadErrors = {};
  for (const [path, messages] of Object.entries(errors)) {
    if (path !== "load" && !path.startsWith("load.") && !path.startsWith("load[")) continue;
    const rel = path.replace(/^load\.?/, "");
    // An item of a list ("request_rate[2]", "concurrency.3") keeps its index in the message: the field is the list.
    const item = /\[\d+\]|\.\d+(?=\.|$)/.test(rel) ? rel.replace(/\.(\d+)(?=\.|$)/g, "[$1]") : null;
    for (const message of messages) {
      const named = MESSAGE_PATH.exec(message)?.[1];
      const candidates = named ? [named, rel ? `${rel}.${named}` : named, rel] : [rel];
      const field = candidates.map(fieldOf).find((f) => f !== null) ?? null;
      add(out, field ?? "", item && !named ? `${item}: ${message}` : message);
    }
  }
  return out;
}

/** Client and server messages of one field together (each once). */
export function mergeLoadErrors(...sources: LoadErrors[]): LoadErrors {
  const out: LoadErrors = {};
  for (const source of sources) {
    for (const [field, messages] of Object.entries(source) as [LoadField | "", string[]][]) {
      for (const m of messages) if (!(out[field] ?? []).includes(m)) add(out, field, m);
    }
  }
  return out;
}

/** What one job of the sweep runs, for the plan preview. */
export interface LoadPlanSummary {
  mode: LoadMode;
  points: RequestRate[];
  /** Measured requests per point (null when points are sized by time). */
  requestsPerPoint: number | null;
  /** Seconds per point (null when sized by requests). */
  secondsPerPoint: number | null;
  warmupPerPoint: number;
  /** Requests one job sends at most (warm-up included; null when sized by time). */
  requestsPerJob: number | null;
  /** Measuring time of one job at most, warm-up and the wait for requests in flight apart (null when by requests). */
  secondsPerJob: number | null;
}

/** The sweep each job runs: its points and how many requests (or seconds) that is per job. */
export function loadPlanSummary(spec: LoadSpecJson): LoadPlanSummary {
  const mode: LoadMode = spec.concurrency ? "concurrency" : "request_rate";
  const points: RequestRate[] = [...(spec.concurrency ?? spec.request_rate ?? [])];
  const warmup = spec.warmup_requests ?? 0;
  const perPoint = spec.num_requests ?? null;
  const seconds = spec.duration_s ?? null;
  return {
    mode,
    points,
    requestsPerPoint: perPoint,
    secondsPerPoint: seconds,
    warmupPerPoint: warmup,
    requestsPerJob: perPoint !== null ? (perPoint + warmup) * points.length : null,
    secondsPerJob: seconds !== null ? seconds * points.length : null,
  };
}
