import { useState, type FormEvent } from "react";
import { useLogin } from "../api/queries";
import { describeError } from "../api/errors";
import { Field } from "../components/ui";

export function LoginPage() {
  const login = useLogin();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const { fields, general } = describeError(login.error);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    login.mutate({ username, password });
  };

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
        <button className="btn btn-primary" type="submit" disabled={login.isPending}>
          {login.isPending ? "Logging in…" : "Log in"}
        </button>
      </form>
    </div>
  );
}
