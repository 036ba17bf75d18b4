/**
 * The new-experiment form's load sweep section, as rendered: messages next to the fields, nothing sent while the
 * sweep is wrong, the `load` object in the request, the server's refusals next to their fields, and the plan
 * preview's load points.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { api } from "../api/client";
import { keys } from "../api/queries";
import type { SessionUser } from "../api/models";
import { NewExperimentPage } from "../pages/NewExperimentPage";

vi.mock("../api/events", () => ({
  events: { subscribe: () => () => {}, onEvent: () => () => {}, onState: () => () => {}, close: () => {},
    state: "closed", lastError: null },
}));

const OPERATOR = {
  id: 1, username: "olga", first_name: "", last_name: "", email: "", is_staff: false, role: "operator",
  permissions: { view: true, create_experiments: true, manage_all_experiments: false, manage_agents: false },
} as SessionUser;

const PLAN = {
  jobs: [
    { agent_id: "a1", agent_name: "lab-1", model: { name: "qwen" }, runtime: { name: "transformers" } },
    { agent_id: "a2", agent_name: "lab-2", model: { name: "qwen" }, runtime: { name: "transformers" } },
  ],
  unrunnable: [], excluded: [],
};

type Post = { url: string; body: Record<string, unknown> };

/** Answer the plan preview with PLAN and the creation with `create` (status and body); record every POST. */
function mockPost(create: { status: number; body: unknown }): Post[] {
  const posts: Post[] = [];
  vi.spyOn(api, "POST").mockImplementation((async (url: string, init: { body: Record<string, unknown> }) => {
    posts.push({ url, body: init.body });
    if (url === "/api/v1/experiments/plan/") return { data: PLAN, response: new Response(null, { status: 200 }) };
    const ok = create.status < 300;
    return { ...(ok ? { data: create.body } : { error: create.body }), response: new Response(null, { status: create.status }) };
  }) as never);
  return posts;
}

function renderForm() {
  const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } });
  qc.setQueryData(keys.me, OPERATOR);
  qc.setQueryData(keys.agents, []);
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={["/experiments/new"]}>
        <Routes>
          <Route path="experiments/new" element={<NewExperimentPage />} />
          <Route path="experiments/:id" element={<p>experiment page</p>} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

const input = (name: string) => {
  const el = document.querySelector(`[name="${name}"]`);
  if (!el) throw new Error(`no input ${name}`);
  return el as HTMLInputElement;
};
/** The messages shown in the field of input `name`. */
const fieldErrors = (name: string) =>
  [...(input(name).closest(".field")?.querySelectorAll(".field-errors li") ?? [])].map((li) => li.textContent);
const type = (name: string, value: string) => fireEvent.change(input(name), { target: { value } });

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

describe("the load sweep section", () => {
  it("is off by default: the request has no load", async () => {
    const posts = mockPost({ status: 201, body: { id: 9 } });
    renderForm();
    expect(input("load-enabled").checked).toBe(false);
    type("name", "plain");
    type("model-0", "qwen");
    fireEvent.click(screen.getByRole("button", { name: "Create experiment" }));
    await screen.findByText("experiment page");
    const created = posts.find((p) => p.url === "/api/v1/experiments/");
    expect(created?.body).not.toHaveProperty("load");
  });

  it("names a wrong field next to it and sends nothing until it is right", async () => {
    const posts = mockPost({ status: 201, body: { id: 9 } });
    renderForm();
    fireEvent.click(input("load-enabled"));
    type("name", "under load");
    type("model-0", "qwen");
    type("load-concurrency", "1, x, 8");
    expect(fieldErrors("load-concurrency")).toEqual(['concurrency[1]: must be a whole number between 1 and 4096, got "x"']);
    type("load-slo-ttft", "-5");
    expect(fieldErrors("load-slo-ttft")).toEqual(["slo.ttft_ms: must be above 0 and at most 3,600,000, got -5"]);
    fireEvent.click(screen.getByRole("button", { name: "Create experiment" }));
    expect(await screen.findByText("The load sweep has mistakes: see the fields marked above.")).toBeInTheDocument();
    expect(posts.some((p) => p.url === "/api/v1/experiments/")).toBe(false);

    // Request rates on a white-box runtime: the form says what the server would.
    fireEvent.click(screen.getByLabelText("Request rate (open loop)"));
    expect(fieldErrors("load-request-rate")[0]).toMatch(/^request_rate: runtime\(s\) transformers run a load sweep as batches/);
    fireEvent.click(screen.getByLabelText("Concurrency (closed loop)"));

    type("load-concurrency", "1, 4, 8");
    type("load-slo-ttft", "250");
    expect(fieldErrors("load-concurrency")).toEqual([]);
    fireEvent.click(screen.getByRole("button", { name: "Create experiment" }));
    await screen.findByText("experiment page");
    const created = posts.find((p) => p.url === "/api/v1/experiments/");
    expect(created?.body.load).toEqual({
      concurrency: [1, 4, 8], num_requests: 200, warmup_requests: 10, seed: 0, request_timeout_s: 600,
      slo: { ttft_ms: 250, percentile: 99 }, prompts: { source: "synthetic", input_tokens: 512, output_tokens: 128 },
      early_stop: { latency_factor: 20, max_error_rate: 0.5 },
    });
  });

  it("shows the server's refusal of a load field next to that field", async () => {
    mockPost({ status: 400, body: {
      "load.prompts.input_tokens": ["Input should be less than or equal to 131072"],
      load: ["load: give exactly one of num_requests and duration_s"],
    } });
    renderForm();
    fireEvent.click(input("load-enabled"));
    type("name", "under load");
    type("model-0", "qwen");
    fireEvent.click(screen.getByRole("button", { name: "Create experiment" }));
    await waitFor(() => expect(fieldErrors("load-input-tokens")).toEqual(["Input should be less than or equal to 131072"]));
    expect(screen.getByTestId("load-section")).toHaveTextContent("load: give exactly one of num_requests and duration_s");
  });

  it("previews the load points and the requests per job", async () => {
    const posts = mockPost({ status: 201, body: { id: 9 } });
    renderForm();
    fireEvent.click(input("load-enabled"));
    type("load-concurrency", "1 2 4");
    type("load-num-requests", "100");
    type("load-warmup", "0");
    const preview = await screen.findByTestId("plan-load");
    expect(preview).toHaveTextContent("Load sweep: 3 concurrency levels (1, 2, 4)");
    expect(preview).toHaveTextContent("100 requests per point; at most 300 requests per job, 600 in all");
    await waitFor(() => expect(posts.some((p) => p.url === "/api/v1/experiments/plan/" && p.body.load)).toBe(true));

    // Points sized by time, and a mistake: the preview says the sweep is not valid yet.
    fireEvent.click(screen.getByLabelText("Duration"));
    type("load-duration", "30");
    expect(screen.getByTestId("plan-load")).toHaveTextContent("30 s per point; at most about 90 s of load per job");
    type("load-duration", "0");
    expect(screen.getByTestId("plan-load")).toHaveTextContent("Load sweep not valid yet");
  });
});
