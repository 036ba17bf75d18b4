import { NavLink, Outlet, useLocation } from "react-router-dom";
import { ErrorBoundary } from "./ErrorBoundary";
import { useLogout, useSocketState } from "../api/queries";
import type { SessionUser } from "../api/models";
import { errorMessage } from "../api/errors";
import { ROLES, roleLabel } from "../lib/permissions";

function LiveIndicator() {
  const { state, error } = useSocketState();
  const label = state === "open" ? "live" : state === "connecting" ? "connecting…" : "offline";
  return (
    <span className={`live live-${state}`} title={error ?? `live updates: ${label}`} data-testid="live-state">
      <span className="dot" /> {label}
    </span>
  );
}

export function Layout({ user }: { user: SessionUser }) {
  const logout = useLogout();
  const location = useLocation();
  return (
    <div className="app">
      <header className="topbar">
        <NavLink to="/" className="brand">
          <img src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width={26} height={26} />
          RUCKUS
        </NavLink>
        <nav className="nav">
          <NavLink to="/agents">Agents</NavLink>
          <NavLink to="/experiments">Experiments</NavLink>
        </nav>
        <div className="topbar-right">
          <LiveIndicator />
          <span className="muted" data-testid="user-name">{user.username}</span>
          <span className="chip role-chip" data-testid="user-role" data-role={user.role ?? "none"}
            title={user.role ? `${ROLES[user.role].label}: ${ROLES[user.role].description}` : undefined}>
            {roleLabel(user.role)}
          </span>
          <button className="btn btn-ghost btn-small" onClick={() => logout.mutate()} disabled={logout.isPending}>
            Log out
          </button>
          {logout.isError && <span className="error-inline">{errorMessage(logout.error)}</span>}
        </div>
      </header>
      <main className="main">
        <ErrorBoundary resetKey={location.pathname}>
          <Outlet />
        </ErrorBoundary>
      </main>
    </div>
  );
}
