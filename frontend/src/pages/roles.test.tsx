/**
 * What each role is offered on the pages: the cache is filled as the server would answer (no request is made for
 * those entries), and only the actions the user may take are on screen.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { api } from "../api/client";
import { keys } from "../api/queries";
import type { Agent, Experiment, Job, JobDetail, Permissions, Role, SessionUser } from "../api/models";
import { Layout } from "../components/Layout";
import { AgentsPage } from "./AgentsPage";
import { ExperimentDetailPage } from "./ExperimentDetailPage";
import { ExperimentsPage } from "./ExperimentsPage";
import { NewExperimentPage } from "./NewExperimentPage";
import { LoginPage, NoAccessPage } from "./LoginPage";
import { App } from "../App";

vi.mock("../api/events", () => ({
  events: { subscribe: () => () => {}, onEvent: () => () => {}, onState: () => () => {}, close: () => {},
    state: "closed", lastError: null },
}));

const PERMISSIONS: Record<Role, Permissions> = {
  viewer: { view: true, create_experiments: false, manage_all_experiments: false, manage_agents: false },
  operator: { view: true, create_experiments: true, manage_all_experiments: false, manage_agents: false },
  "fleet-admin": { view: true, create_experiments: true, manage_all_experiments: true, manage_agents: true },
};

function user(role: Role | null, username = role ?? "nobody"): SessionUser {
  return { id: 1, username, first_name: "", last_name: "", email: "", is_staff: role === "fleet-admin", role,
    permissions: role ? PERMISSIONS[role] : { view: false, create_experiments: false, manage_all_experiments: false,
      manage_agents: false } };
}

const NOW = "2026-11-30T08:00:00Z";

function experiment(fields: Partial<Experiment> = {}): Experiment {
  return {
    id: 7, name: "SmolLM2 across the fleet", description: "", task: { name: "wikipedia_summarization", params: {} },
    models: [{ name: "smollm2-135m-instruct" }], runtimes: [{ name: "transformers" }], agents: { all: true },
    runs_per_job: 3, requested_metrics: [], status: "running", plan: { jobs: [], unrunnable: [], excluded: [] },
    job_counts: { running: 1 }, owner: "olga", can_manage: false, created_at: NOW, updated_at: NOW,
    started_at: NOW, finished_at: null, ...fields,
  } as Experiment;
}

function job(fields: Partial<Job> = {}): Job {
  return {
    id: 11, experiment: 7, status: "running", status_reason: "", model_name: "smollm2-135m-instruct",
    runtime_name: "transformers", agent: null, agent_name: "lab-1", attempt: 1, max_attempts: 3, progress: null,
    not_before: null, hardware_fingerprint: "", can_manage: false, created_at: NOW, updated_at: NOW,
    started_at: NOW, finished_at: null, ...fields,
  } as Job;
}

const AGENT = {
  id: "11111111-1111-4111-8111-111111111111", name: "lab-1", url: "http://10.0.0.5:8100", mode: "push",
  status: "online", activity: "idle", status_reason: "", heartbeat_error: "", heartbeat_error_since: null,
  labels: ["lab"], cost_per_hour: "1.5000", hardware_fingerprint: "cpu", protocol_version: "1.1", agent_version: "0.1",
  last_seen: NOW, registered_at: NOW, updated_at: NOW, summary: { cpu: "Xeon", gpus: [], runtimes: ["transformers"] },
  capabilities: null,
} as unknown as Agent;

/** Render `path` under the app's layout with the cache holding `me` and `data`. */
function renderAt(path: string, me: SessionUser, data: [readonly unknown[], unknown][] = []) {
  const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } });
  qc.setQueryData(keys.me, me);
  data.forEach(([key, value]) => qc.setQueryData(key, value));
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[path]}>
        <Routes>
          <Route element={<Layout user={me} />}>
            <Route path="agents/:agentId" element={<AgentsPage />} />
            <Route path="agents" element={<AgentsPage />} />
            <Route path="experiments" element={<ExperimentsPage />} />
            <Route path="experiments/new" element={<NewExperimentPage />} />
            <Route path="experiments/:id" element={<ExperimentDetailPage />} />
          </Route>
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

function experimentPage(me: SessionUser, exp: Experiment, jobs: Job[]) {
  return renderAt(`/experiments/${exp.id}`, me, [[keys.experiment(exp.id), exp], [keys.jobs(exp.id), jobs],
    ...jobs.map((j): [readonly unknown[], unknown] => [keys.job(j.id), { ...j, attempts: [], transitions: [] } as JobDetail])]);
}

const button = (name: string) => screen.queryByRole("button", { name });

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

describe("the header", () => {
  it("shows the user's role", () => {
    renderAt("/experiments", user("fleet-admin", "fiona"), [[keys.experiments, []]]);
    expect(screen.getByTestId("user-name")).toHaveTextContent("fiona");
    expect(screen.getByTestId("user-role")).toHaveTextContent("fleet admin");
  });
  it("logs out to the login form", async () => {
    vi.spyOn(api, "DELETE").mockResolvedValue({ response: new Response(null, { status: 204 }) } as never);
    const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } });
    qc.setQueryData(keys.me, user("viewer"));
    qc.setQueryData(keys.experiments, [experiment()]);
    render(<QueryClientProvider client={qc}><MemoryRouter initialEntries={["/experiments"]}><App /></MemoryRouter></QueryClientProvider>);
    expect(screen.getByTestId("user-role")).toHaveTextContent("viewer");
    fireEvent.click(screen.getByRole("button", { name: "Log out" }));
    expect(await screen.findByRole("form", { name: "Log in" })).toBeInTheDocument();
    expect(qc.getQueryData(keys.experiments)).toBeUndefined();
  });
});

describe("experiments", () => {
  it("a viewer is not offered New experiment, an operator is", () => {
    renderAt("/experiments", user("viewer"), [[keys.experiments, [experiment()]]]);
    expect(screen.queryByRole("link", { name: "New experiment" })).toBeNull();
    expect(screen.getByRole("table", { name: "Experiments" })).toHaveTextContent("olga");
    cleanup();
    renderAt("/experiments", user("operator"), [[keys.experiments, [experiment()]]]);
    expect(screen.getByRole("link", { name: "New experiment" })).toBeInTheDocument();
  });
  it("a viewer who opens the form is told the role cannot create experiments", () => {
    renderAt("/experiments/new", user("viewer"));
    expect(screen.getByText("Your role cannot create experiments")).toBeInTheDocument();
    expect(screen.queryByRole("form", { name: "New experiment" })).toBeNull();
  });
  it("another's experiment is read only: no rename, cancel, delete, nor job actions", () => {
    experimentPage(user("operator", "oscar"), experiment(), [job()]);
    expect(screen.getByTestId("read-only")).toHaveTextContent("olga's experiment");
    for (const name of ["Rename", "Cancel experiment", "Delete"]) expect(button(name)).toBeNull();
    fireEvent.click(screen.getByText("lab-1"));
    expect(screen.getByRole("heading", { name: /Job #11/ })).toBeInTheDocument();
    expect(button("Cancel job")).toBeNull();
    expect(button("Retry job")).toBeNull();
    expect(screen.getByTestId("results-link")).toBeInTheDocument();
  });
  it("one's own running experiment offers rename and cancel, and delete only once no job is on an agent", () => {
    experimentPage(user("operator", "olga"), experiment({ can_manage: true }), [job({ can_manage: true })]);
    expect(screen.queryByTestId("read-only")).toBeNull();
    expect(button("Rename")).toBeInTheDocument();
    expect(button("Cancel experiment")).toBeInTheDocument();
    expect(button("Delete")).toBeNull();
    fireEvent.click(screen.getByText("lab-1"));
    expect(button("Cancel job")).toBeInTheDocument();
    expect(button("Retry job")).toBeNull();
    cleanup();
    experimentPage(user("operator", "olga"), experiment({ can_manage: true, status: "partially_failed",
      job_counts: { failed: 1 } }), [job({ can_manage: true, status: "failed" })]);
    expect(button("Cancel experiment")).toBeNull();
    expect(button("Delete")).toBeInTheDocument();
    fireEvent.click(screen.getByText("lab-1"));
    expect(button("Retry job")).toBeInTheDocument();
  });
  it("a refused action shows the server's reason", async () => {
    const reason = "You may only act on your own experiments.";
    vi.spyOn(api, "POST").mockResolvedValue({ error: { detail: reason }, response: new Response(null, { status: 403 }) } as never);
    experimentPage(user("operator", "olga"), experiment({ can_manage: true }), []);
    fireEvent.click(screen.getByRole("button", { name: "Cancel experiment" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(reason);
  });
});

describe("agents", () => {
  const page = (role: Role) => renderAt(`/agents/${AGENT.id}`, user(role), [[keys.agents, [AGENT]]]);

  it("a viewer sees the fleet and settings, without register, edit, refresh, (de)activate, remove or benchmark", () => {
    page("viewer");
    expect(screen.getByRole("table", { name: "Agents" })).toHaveTextContent("lab-1");
    for (const name of ["Register agent", "Refresh", "Deactivate", "Remove", "Save", "Run hardware benchmark"]) {
      expect(button(name)).toBeNull();
    }
    expect(screen.queryByRole("form", { name: "Edit agent" })).toBeNull();
    const settings = screen.getByText("Cost per hour").closest("dl");
    expect(settings).not.toBeNull();
    expect(within(settings as HTMLElement).getByText("$1.5000")).toBeInTheDocument();
  });
  it("an operator may only benchmark an agent (an experiment)", () => {
    page("operator");
    expect(button("Run hardware benchmark")).toBeInTheDocument();
    for (const name of ["Register agent", "Refresh", "Deactivate", "Remove"]) expect(button(name)).toBeNull();
    expect(screen.queryByRole("form", { name: "Edit agent" })).toBeNull();
  });
  it("a fleet admin manages agents", () => {
    page("fleet-admin");
    for (const name of ["Register agent", "Refresh", "Deactivate", "Remove", "Run hardware benchmark"]) {
      expect(button(name)).toBeInTheDocument();
    }
    expect(screen.getByRole("form", { name: "Edit agent" })).toBeInTheDocument();
  });
  it("a viewer facing an empty fleet is not asked to register one", () => {
    renderAt("/agents", user("viewer"), [[keys.agents, []]]);
    expect(screen.queryByRole("form", { name: "Register agent" })).toBeNull();
    expect(screen.getByText(/once a fleet administrator registers them/)).toBeInTheDocument();
  });
});

describe("logging in", () => {
  function renderLogin() {
    const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    return render(<QueryClientProvider client={qc}><LoginPage /></QueryClientProvider>);
  }

  it("a throttled login says how long to wait and holds the button until then", async () => {
    vi.spyOn(api, "GET").mockResolvedValue({ response: new Response(null, { status: 401 }) } as never);
    vi.spyOn(api, "POST").mockResolvedValue({
      error: { detail: "Request was throttled. Expected available in 30 seconds." },
      response: new Response(null, { status: 429, headers: { "Retry-After": "30" } }),
    } as never);
    renderLogin();
    fireEvent.change(screen.getByLabelText("Username"), { target: { value: "alice" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "guess" } });
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    const message = await screen.findByTestId("login-throttled");
    expect(message).toHaveTextContent(/Too many login attempts: wait (30|29) s before trying again/);
    expect(screen.getByRole("button", { name: /Log in \(wait \d+ s\)/ })).toBeDisabled();
  });
  it("wrong credentials show the server's message", async () => {
    vi.spyOn(api, "GET").mockResolvedValue({ response: new Response(null, { status: 401 }) } as never);
    vi.spyOn(api, "POST").mockResolvedValue({
      error: { non_field_errors: ["wrong username or password"] }, response: new Response(null, { status: 400 }),
    } as never);
    renderLogin();
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("wrong username or password");
    expect(screen.getByRole("button", { name: "Log in" })).toBeEnabled();
  });
  it("a user without a role is told to ask for one", () => {
    const qc = new QueryClient();
    render(<QueryClientProvider client={qc}><NoAccessPage user={user(null, "newcomer")} /></QueryClientProvider>);
    expect(screen.getByRole("alert", { name: "No access" })).toHaveTextContent("newcomer");
    expect(screen.getByRole("alert", { name: "No access" })).toHaveTextContent("has no role yet");
    expect(screen.getByRole("button", { name: "Log out" })).toBeInTheDocument();
  });
});
