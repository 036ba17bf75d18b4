/** One shared websocket to `/ws/events/` with reference-counted subscriptions and reconnection. */
import type { Agent, Experiment, Job } from "./models";

/** A message of `/ws/events/`: the `*.updated` payloads are the REST serializers' JSON. */
export type ServerEvent =
  | { type: "job.updated"; data: Job }
  | { type: "experiment.updated"; data: Experiment }
  | { type: "agent.updated"; data: Agent }
  | { type: "subscribed" | "unsubscribed"; experiment?: number; job?: number; agents?: boolean }
  | { type: "error"; message: string }
  | { type: "pong" };

export type Subscription = { experiment: number } | { job: number } | { agents: true };
export type SocketState = "connecting" | "open" | "closed";

type Listener = (event: ServerEvent) => void;

const MAX_BACKOFF_MS = 10_000;

function keyOf(sub: Subscription): string {
  return JSON.stringify(sub);
}

/** Websocket URL on the page's own host (the session cookie authenticates it). */
export function eventsUrl(loc: Location = window.location): string {
  const scheme = loc.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${loc.host}/ws/events/`;
}

export class EventSocket {
  private ws: WebSocket | null = null;
  private readonly subs = new Map<string, { sub: Subscription; count: number }>();
  private readonly listeners = new Set<Listener>();
  private readonly stateListeners = new Set<(s: SocketState) => void>();
  private backoff = 500;
  private timer: ReturnType<typeof setTimeout> | null = null;
  state: SocketState = "closed";
  lastError: string | null = null;

  constructor(private readonly url: () => string) {}

  private setState(state: SocketState) {
    this.state = state;
    this.stateListeners.forEach((fn) => fn(state));
  }

  private connect() {
    if (this.ws || this.subs.size === 0) return;
    this.setState("connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 500;
      this.lastError = null;
      this.setState("open");
      this.subs.forEach(({ sub }) => this.send({ type: "subscribe", ...sub }));
    };
    ws.onmessage = (msg) => {
      let event: ServerEvent;
      try {
        event = JSON.parse(String(msg.data)) as ServerEvent;
      } catch {
        return;
      }
      if (event.type === "error") this.lastError = event.message;
      this.listeners.forEach((fn) => fn(event));
    };
    ws.onclose = (ev) => {
      this.ws = null;
      if (ev.code === 4401) this.lastError = "live updates refused: not logged in";
      this.setState("closed");
      if (this.subs.size > 0) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.connect();
        }, this.backoff);
        this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
      }
    };
  }

  private send(message: object) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  /** Subscribe (shared between callers); returns the unsubscribe function. */
  subscribe(sub: Subscription): () => void {
    const key = keyOf(sub);
    const entry = this.subs.get(key);
    if (entry) entry.count += 1;
    else {
      this.subs.set(key, { sub, count: 1 });
      this.send({ type: "subscribe", ...sub });
    }
    this.connect();
    return () => {
      const e = this.subs.get(key);
      if (!e) return;
      e.count -= 1;
      if (e.count === 0) {
        this.subs.delete(key);
        this.send({ type: "unsubscribe", ...sub });
      }
    };
  }

  onEvent(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onState(fn: (s: SocketState) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  /** Close for good (logout). */
  close() {
    this.subs.clear();
    if (this.timer) clearTimeout(this.timer);
    this.ws?.close();
    this.ws = null;
  }
}

export const events = new EventSocket(() => eventsUrl());
