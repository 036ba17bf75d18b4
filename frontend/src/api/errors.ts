/** Errors of the REST API, in DRF's shapes, turned into messages the UI can show next to fields. */

/** A field path ("task.params.num_samples", "models.0.name") mapped to its messages. */
export type FieldErrors = Record<string, string[]>;

/** Keys DRF uses for errors that belong to no field. */
const GENERAL_KEYS = new Set(["non_field_errors", "detail"]);

/**
 * Flatten a DRF error body into dotted paths.
 *
 * DRF nests errors like the input (`{"task": {"params": {"num_samples": ["..."]}}}`), keys list items by their
 * index (as a string or as a list position) and uses `non_field_errors`/`detail` for the rest; these land
 * under the parent path (or `""` at the top).
 */
export function flattenErrors(body: unknown, prefix = ""): FieldErrors {
  const out: FieldErrors = {};
  const add = (path: string, message: string) => {
    (out[path] ??= []).push(message);
  };
  const walk = (value: unknown, path: string) => {
    if (value === null || value === undefined) return;
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      add(path, String(value));
      return;
    }
    if (Array.isArray(value)) {
      if (value.every((v) => typeof v === "string")) {
        value.forEach((v) => add(path, v as string));
        return;
      }
      value.forEach((v, i) => {
        if (v && typeof v === "object" && Object.keys(v).length === 0) return;
        walk(v, join(path, String(i)));
      });
      return;
    }
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      walk(v, GENERAL_KEYS.has(key) ? path : join(path, key));
    }
  };
  walk(body, prefix);
  return out;
}

function join(a: string, b: string): string {
  return a ? `${a}.${b}` : b;
}

/** Messages of one field, and (with `nested`) of everything below it. */
export function errorsAt(errors: FieldErrors, path: string, nested = false): string[] {
  if (!nested) return errors[path] ?? [];
  return Object.entries(errors)
    .filter(([k]) => k === path || k.startsWith(`${path}.`))
    .flatMap(([k, msgs]) => (k === path ? msgs : msgs.map((m) => `${k.slice(path.length + 1)}: ${m}`)));
}

/** Every message as "path: message" lines (for a summary box). */
export function errorLines(errors: FieldErrors): string[] {
  return Object.entries(errors).flatMap(([path, msgs]) => msgs.map((m) => (path ? `${path}: ${m}` : m)));
}

/**
 * Seconds to wait from a `Retry-After` header (delay-seconds or an HTTP date), or null when absent or unreadable.
 * A date in the past gives 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  if (value === null || value === undefined || value.trim() === "") return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** An HTTP error of the API with its parsed body. */
export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  readonly fields: FieldErrors;
  /** Seconds the server asks to wait before trying again (429 answers' `Retry-After`), or null. */
  readonly retryAfter: number | null;

  constructor(status: number, body: unknown, fallback: string, retryAfter: number | null = null) {
    const fields = flattenErrors(body);
    const lines = errorLines(fields);
    super(lines.length ? lines.join("\n") : fallback);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }
}

/** Whether an error is the server refusing the user an action (403); its message is the server's reason. */
export function isForbidden(error: unknown): error is ApiError {
  return error instanceof ApiError && error.status === 403;
}

/** Whether an error is the server asking to slow down (429). */
export function isThrottled(error: unknown): error is ApiError {
  return error instanceof ApiError && error.status === 429;
}

/** A readable message for anything thrown. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "string") return error;
  return "unexpected error";
}

/** What the UI shows of a failed request. */
export interface ErrorReport {
  /** Messages by field path ("" for those that belong to no field); empty unless the server refused. */
  fields: FieldErrors;
  /** Messages that belong to no field, or the error's message when the server did not answer with one. */
  general: string[];
  /** Every message, as "path: message" lines. */
  lines: string[];
  /** True when the server answered with an error (as opposed to an unreachable server or a bug). */
  refused: boolean;
}

/** The one way pages turn a mutation's or query's error (or its absence) into messages. */
export function describeError(error: unknown): ErrorReport {
  if (error === null || error === undefined) return { fields: {}, general: [], lines: [], refused: false };
  if (error instanceof ApiError) {
    return { fields: error.fields, general: error.fields[""] ?? [], lines: errorLines(error.fields), refused: true };
  }
  const message = errorMessage(error);
  return { fields: {}, general: [message], lines: [message], refused: false };
}
