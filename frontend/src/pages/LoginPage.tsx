import { useEffect, useMemo, useState, type FormEvent } from "react";
import { useLogin, useLogout } from "../api/queries";
import { describeError, errorMessage, isThrottled } from "../api/errors";
import type { SessionUser } from "../api/models";
import { Field } from "../components/ui";

/** Seconds left until `until` (epoch ms), updated every second; 0 once it has passed or without a time. */
export function useSecondsLeft(until: number | null): number {
  const [, tick] = useState(0);
  useEffect(() => {
    if (until === null) return undefined;
    const timer = setInterval(() => {
      tick((n) => n + 1);
      if (secondsUntil(until) === 0) clearInterval(timer);
    }, 1000);
    return () => clearInterval(timer);
  }, [until]);
  return secondsUntil(until);
}

function secondsUntil(until: number | null): number {
  return until === null ? 0 : Math.max(0, Math.ceil((until - Date.now()) / 1000));
}

/** What a throttled login says: wait this long (or a while, when the server did not say). */
export function throttleMessage(seconds: number | null): string {
  if (seconds === null) return "Too many login attempts: wait a moment before trying again.";
  if (seconds <= 0) return "Too many login attempts earlier: you may try again now.";
  return `Too many login attempts: wait ${seconds} s before trying again.`;
}

export function LoginPage() {
  const login = useLogin();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const throttled = isThrottled(login.error) ? login.error : null;
  const { fields, general } = describeError(throttled ? null : login.error);
  // Counted from when the refusal arrived (the same error object until the next attempt).
  const blockedUntil = useMemo(
    () => (throttled?.retryAfter != null ? Date.now() + throttled.retryAfter * 1000 : null), [throttled]);
  const secondsLeft = useSecondsLeft(blockedUntil);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    login.mutate({ username, password });
  };
  const waiting = secondsLeft > 0;

  return (
    <div className="login-screen">
      <form className="login-card" onSubmit={submit} aria-label="Log in">
        <h1>RUCKUS</h1>
        <p className="muted">Benchmark models across your whole fleet.</p>
        <Field label="Username" errors={fields.username}>
          <input name="username" autoComplete="username" value={username} autoFocus
            onChange={(e) => setUsername(e.target.value)} />
        </Field>
        <Field label="Password" errors={fields.password}>
          <input name="password" type="password" autoComplete="current-password" value={password}
            onChange={(e) => setPassword(e.target.value)} />
        </Field>
        {general.length > 0 && <div className="form-error" role="alert">{general.join(" ")}</div>}
        {throttled && (
          <div className="form-error" role="alert" data-testid="login-throttled">
            {throttleMessage(throttled.retryAfter === null ? null : secondsLeft)}
          </div>
        )}
        <button className="btn btn-primary" type="submit" disabled={login.isPending || waiting}>
          {login.isPending ? "Logging in…" : waiting ? `Log in (wait ${secondsLeft} s)` : "Log in"}
        </button>
      </form>
    </div>
  );
}

/** A logged-in user without a role: the API refuses them everything, so say so and offer to log out. */
export function NoAccessPage({ user }: { user: SessionUser }) {
  const logout = useLogout();
  return (
    <div className="login-screen">
      <div className="login-card" role="alert" aria-label="No access">
        <h1>RUCKUS</h1>
        <p>
          You are logged in as <strong>{user.username}</strong>, but your account has no role yet, so the server
          shows you nothing.
        </p>
        <p className="muted">
          Ask a fleet administrator to give you one: <strong>viewer</strong> (read everything),{" "}
          <strong>operator</strong> (also run experiments) or <strong>fleet-admin</strong> (also manage agents).
        </p>
        <button className="btn" onClick={() => logout.mutate()} disabled={logout.isPending}>Log out</button>
        {logout.isError && <span className="error-inline">{errorMessage(logout.error)}</span>}
      </div>
    </div>
  );
}
