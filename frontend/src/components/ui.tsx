/** Small shared building blocks: states, badges, progress bars, fields. */
import type { ReactNode } from "react";
import { errorMessage } from "../api/errors";
import type { AnyStatus } from "../api/statuses";

/** The colour of every status (a status the server adds fails the type check until it has one). */
const STATUS_TONES: Record<AnyStatus, "ok" | "info" | "muted" | "warn" | "bad"> = {
  online: "ok", completed: "ok", idle: "ok",
  running: "info", busy: "info", assigned: "info", dispatching: "info",
  pending: "muted", unreachable: "warn", partially_failed: "warn", timed_out: "warn", interrupted: "warn",
  offline: "bad", failed: "bad", lost: "bad",
  cancelled: "muted", deactivated: "muted",
};

/** A status as a coloured pill. */
export function StatusBadge({ status, title }: { status: AnyStatus; title?: string }) {
  const tone = STATUS_TONES[status];
  return (
    <span className={`badge badge-${tone}`} title={title} data-status={status}>
      <span className="dot" />
      {status.replace(/_/g, " ")}
    </span>
  );
}

/** A finished job whose figures (ROUGE, statistics) the server is still computing. */
export function ScoringBadge() {
  return (
    <span className="badge badge-info" data-status="scoring" title="ROUGE and statistics are being computed">
      <span className="dot" />
      scoring
    </span>
  );
}

/** Loading state. */
export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="state state-loading" role="status">
      <span className="spinner" aria-hidden /> {label}
    </div>
  );
}

/** An error with its message (never swallowed) and an optional retry. */
export function ErrorBox({ error, title = "Something went wrong", onRetry }: {
  error: unknown; title?: string; onRetry?: () => void;
}) {
  return (
    <div className="state state-error" role="alert">
      <strong>{title}</strong>
      <pre className="error-text">{errorMessage(error)}</pre>
      {onRetry && <button className="btn btn-small" onClick={onRetry}>Try again</button>}
    </div>
  );
}

/** Empty state with an explanation. */
export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state state-empty">
      <strong>{title}</strong>
      {children && <div className="muted">{children}</div>}
    </div>
  );
}

/** A progress bar (indeterminate while `fraction` is null). */
export function ProgressBar({ fraction, label }: { fraction: number | null; label?: string }) {
  const pct = fraction === null ? null : Math.round(fraction * 100);
  return (
    <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100}
      aria-valuenow={pct ?? undefined} title={label}>
      <div className={`progress-fill${pct === null ? " indeterminate" : ""}`} style={{ width: `${pct ?? 100}%` }} />
      {label && <span className="progress-label">{label}</span>}
    </div>
  );
}

/** Error messages of a field or a form section. */
export function FieldMessages({ messages }: { messages: string[] }) {
  if (messages.length === 0) return null;
  return (
    <ul className="field-errors" role="alert">
      {messages.map((m) => <li key={m}>{m}</li>)}
    </ul>
  );
}

/** A labelled form field with its hint and errors. */
export function Field({ label, hint, errors = [], children, wide }: {
  label: string; hint?: ReactNode; errors?: string[]; children: ReactNode; wide?: boolean;
}) {
  return (
    <label className={`field${errors.length ? " has-error" : ""}${wide ? " wide" : ""}`}>
      <span className="field-label">{label}</span>
      {children}
      {hint && <span className="field-hint">{hint}</span>}
      <FieldMessages messages={errors} />
    </label>
  );
}

/** A panel with an optional title and actions. */
export function Card({ title, actions, children, className }: {
  title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string;
}) {
  return (
    <section className={`card ${className ?? ""}`}>
      {(title || actions) && (
        <header className="card-header">
          {title && <h2>{title}</h2>}
          {actions && <div className="card-actions">{actions}</div>}
        </header>
      )}
      <div className="card-body">{children}</div>
    </section>
  );
}

/** A definition list of label/value rows. */
export function KeyValues({ items }: { items: [string, ReactNode][] }) {
  return (
    <dl className="kv">
      {items.map(([k, v]) => (
        <div key={k} className="kv-row"><dt>{k}</dt><dd>{v ?? "—"}</dd></div>
      ))}
    </dl>
  );
}
