/** How an agent is reached and whether its heartbeats arrive: its mode, its URL and its heartbeat error. */
import type { Agent, AgentMode } from "../api/models";
import { formatAgo, formatDate } from "../lib/format";

/** What each mode means (a mode the server adds fails the type check until it is described here). */
export const MODE_DESCRIPTIONS: Record<AgentMode, string> = {
  push: "the server calls the agent's API",
  pull: "the agent opens no port and asks the server for work",
};

/** Shown instead of a pull agent's URL: the server never calls it. */
export const PULL_URL_TEXT = "— (pull mode: the agent calls the server)";

/** An agent's mode as a small pill. */
export function ModeBadge({ mode }: { mode: AgentMode }) {
  return (
    <span className={`badge badge-mode badge-mode-${mode}`} data-mode={mode} title={MODE_DESCRIPTIONS[mode]}>
      {mode}
    </span>
  );
}

/** The address the server calls the agent at, or why there is none. */
export function agentUrlText(agent: Pick<Agent, "mode" | "url">): string {
  if (agent.url) return agent.url;
  return agent.mode === "pull" ? PULL_URL_TEXT : "—";
}

/** "since <date> (<n> ago)", or nothing when the server does not know since when. */
function sinceText(since: string | null): string {
  return since ? `since ${formatDate(since)} (${formatAgo(since)})` : "";
}

/** The agents list's warning for an agent whose heartbeats do not arrive (nothing when they do). */
export function HeartbeatWarning({ agent }: { agent: Pick<Agent, "heartbeat_error" | "heartbeat_error_since"> }) {
  if (!agent.heartbeat_error) return null;
  const since = sinceText(agent.heartbeat_error_since);
  return (
    <div className="heartbeat-warning small" data-testid="heartbeat-warning"
      title={`${agent.heartbeat_error}${since ? ` (${since})` : ""}`}>
      <span className="strong">⚠ Heartbeat error</span>
      {agent.heartbeat_error_since && <span className="muted"> since {formatAgo(agent.heartbeat_error_since)}</span>}
      <div className="heartbeat-warning-text">{agent.heartbeat_error}</div>
    </div>
  );
}

/** The details panel's account of an agent's heartbeat error, with since when (nothing while they arrive). */
export function HeartbeatAlert({ agent }: { agent: Pick<Agent, "heartbeat_error" | "heartbeat_error_since"> }) {
  if (!agent.heartbeat_error) return null;
  const since = sinceText(agent.heartbeat_error_since);
  return (
    <section className="heartbeat-alert" aria-label="Heartbeat error">
      <div>
        <strong>Heartbeat error</strong>
        {since && <> <span className="heartbeat-since">{since}</span></>}
      </div>
      <p className="heartbeat-alert-text">{agent.heartbeat_error}</p>
      <p className="muted small">
        The server does not receive this agent's heartbeats. See "agent shows a heartbeat error" in
        docs/troubleshooting.md.
      </p>
    </section>
  );
}
