/**
 * An experiment with a load sweep, as its page shows it: the comparison table, the curves (their ECharts options),
 * the distributions read on demand, and a job's update making the page read the sweep again.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { api } from "../api/client";
import { keys } from "../api/queries";
import type { Experiment, Job } from "../api/models";
import type { ServerEvent } from "../api/events";
import { ExperimentDetailPage } from "../pages/ExperimentDetailPage";
import type { ExperimentLoad, JobLoad } from "../lib/load";
import { cell, point, sweep } from "../lib/loadFixtures";
import { LOAD_REFRESH_MS, loadKeys } from "../lib/loadQueries";
// Loaded here as well so that the page's lazy import of the panel resolves at once.
import "./LoadSweepPanel";

const listeners = vi.hoisted(() => new Set<(e: unknown) => void>());

vi.mock("../api/events", () => ({
  events: {
    subscribe: () => () => {},
    onEvent: (fn: (e: unknown) => void) => { listeners.add(fn); return () => listeners.delete(fn); },
    onState: () => () => {}, close: () => {}, state: "closed", lastError: null,
  },
}));

// The chart library draws on a canvas jsdom lacks: each chart renders its option instead, for the test to read.
vi.mock("echarts-for-react/lib/core", () => ({
  default: ({ option }: { option: unknown }) => <div data-testid="echarts" data-option={JSON.stringify(option)} />,
}));

const NOW = "2026-11-30T08:00:00Z";
const SPEC = { concurrency: [1, 4, 16, 32, 64], num_requests: 100, warmup_requests: 5, seed: 0,
  slo: { ttft_ms: 200, percentile: 99 }, prompts: { source: "synthetic", input_tokens: 512, output_tokens: 128 },
  early_stop: { latency_factor: 20, max_error_rate: 0.5 } };

function experiment(load: unknown): Experiment {
  return {
    id: 7, name: "Serving", description: "", task: { name: "wikipedia_summarization", params: {} },
    models: [{ name: "qwen" }], runtimes: [{ name: "vllm" }], agents: { all: true }, runs_per_job: 1,
    requested_metrics: [], status: "running", plan: { jobs: [], unrunnable: [], excluded: [] }, job_counts: {},
    owner: "olga", can_manage: false, created_at: NOW, updated_at: NOW, started_at: NOW, finished_at: null, load,
  } as unknown as Experiment;
}

function job(id: number, status: string): Job {
  return { id, experiment: 7, status, status_reason: "", model_name: "qwen", runtime_name: "vllm", agent: null,
    agent_name: `host-${id}`, attempt: 1, max_attempts: 3, progress: null, not_before: null, hardware_fingerprint: "",
    can_manage: false, created_at: NOW, updated_at: NOW, started_at: NOW, finished_at: null } as unknown as Job;
}

/** Render the experiment's page; resolves once the load panel (loaded lazily) is there, if the experiment has one. */
async function renderPage(load: unknown, data: ExperimentLoad | null) {
  const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } });
  qc.setQueryData(keys.experiment(7), experiment(load));
  qc.setQueryData(keys.jobs(7), [job(1, "completed"), { ...job(2, "running"), progress: {
    job_id: "2", status: "running", stage: "warm_run", run_index: 2, runs_total: 5, samples_done: 30, samples_total: 100 } }]);
  if (data) qc.setQueryData(loadKeys.experiment(7), data);
  render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={["/experiments/7"]}>
        <Routes><Route path="experiments/:id" element={<ExperimentDetailPage />} /></Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
  if (load) await screen.findByText("Serving under load", {}, { timeout: 5000 });
  return qc;
}

/** The ECharts option of the chart labelled `label`. */
function chartOption(label: string): { series: Record<string, unknown>[]; xAxis: Record<string, unknown>; yAxis: Record<string, unknown> } {
  const el = document.querySelector(`[data-chart="${label}"] [data-testid="echarts"]`);
  if (!el) throw new Error(`no chart ${label}`);
  return JSON.parse(el.getAttribute("data-option") ?? "{}");
}

/** The API answering `data` (or refusing with `status` and `error`). */
const answer = (data: unknown, status = 200, error?: unknown) =>
  ({ ...(status < 300 ? { data } : { error }), response: new Response(null, { status }) }) as never;

const spyGet = () => vi.spyOn(api, "GET");
let get: ReturnType<typeof spyGet>;

beforeEach(() => {
  get = spyGet();
});

afterEach(() => {
  cleanup();
  listeners.clear();
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe("the load sweep of an experiment", () => {
  it("compares the cells: max goodput and where, peak, knee, cost, early stop; a running cell says so", async () => {
    await renderPage(SPEC, sweep());
    const table = screen.getByRole("table", { name: "Load sweep comparison" });
    const first = table.querySelector('tr[data-job="1"]') as HTMLElement;
    expect(within(first).getByTestId("max-goodput")).toHaveTextContent("3.4 at 4");
    expect(within(first).getByTestId("peak")).toHaveTextContent("640 at 16");
    expect(within(first).getByTestId("knee")).toHaveTextContent("4 (450 tok/s, e2e 2.6 s)");
    expect(within(first).getByTestId("tokens-per-dollar")).toHaveTextContent("810,000");
    expect(within(first).getByTestId("tokens-per-joule")).toHaveTextContent("2.5");
    expect(within(first).getByTestId("stopped-early")).toHaveTextContent("more than 20x the first point's");
    expect(within(first).getByTestId("points")).toHaveTextContent("3 / 5");
    const second = table.querySelector('tr[data-job="2"]') as HTMLElement;
    expect(second).toHaveAttribute("data-state", "no-slo-met");
    expect(within(second).getByTestId("max-goodput")).toHaveTextContent("no point met the SLOs");
    expect(within(second).getByTestId("stopped-early")).toHaveTextContent("no");
    expect(within(second).getByTestId("progress")).toHaveTextContent("point 2/5 · 30/100 requests");
    expect(within(first).queryByTestId("progress")).toBeNull();
    expect(screen.getByText("TTFT ≤ 200 ms at p99")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Points CSV" })).toHaveAttribute("href", "/api/v1/experiments/7/export/?format=csv&kind=load_points");
    expect(screen.getByRole("link", { name: "Requests CSV" })).toHaveAttribute("href", "/api/v1/experiments/7/export/?format=csv&kind=load_requests");
    expect(screen.getByText("— (a load job runs one sweep)")).toBeInTheDocument();
    // The job cards count load points and requests, not runs and samples.
    expect(document.querySelector('.job-card[data-job="2"]')).toHaveTextContent("point 2/5 · 30/100 requests · warm run");
  });

  it("draws latency against throughput per cell with load labels, the SLO line and the marked points", async () => {
    await renderPage(SPEC, sweep());
    const option = chartOption("Throughput vs latency");
    const [a, b, maxGoodput, knee] = option.series;
    expect(a).toMatchObject({ type: "line", name: "host-1 · vllm" });
    expect(a?.data).toEqual([
      { name: "1", value: [128, 100], cell: "host-1 · vllm" },
      { name: "4", value: [450, 160], cell: "host-1 · vllm" },
      { name: "16", value: [640, 800], cell: "host-1 · vllm" },
    ]);
    expect(a?.markLine).toMatchObject({ data: [{ yAxis: 200, name: "SLO 200 ms (judged at p99)" }] });
    expect(b).toMatchObject({ name: "host-2 · openai" });
    expect(maxGoodput).toMatchObject({ name: "max goodput", data: [{ name: "4", value: [450, 160] }] });
    expect(knee).toMatchObject({ name: "knee", data: [{ name: "4", value: [450, 160] }] });
    expect(option.yAxis).toMatchObject({ type: "value", name: "p99 TTFT (ms)" });

    // E2E at the median against requests/s, on a log scale: no SLO line (no e2e target).
    fireEvent.change(screen.getByLabelText("Latency"), { target: { value: "e2e_s" } });
    fireEvent.change(screen.getByLabelText("Statistic"), { target: { value: "median" } });
    fireEvent.change(screen.getByLabelText("Throughput"), { target: { value: "request_throughput" } });
    fireEvent.click(screen.getByLabelText("log scale"));
    const e2e = chartOption("Throughput vs latency");
    expect(e2e.series[0]?.data).toEqual([
      { name: "1", value: [1, 2600], cell: "host-1 · vllm" },
      { name: "4", value: [3.5, 2600], cell: "host-1 · vllm" },
      { name: "16", value: [5, 2600], cell: "host-1 · vllm" },
    ]);
    expect(e2e.series[0]).not.toHaveProperty("markLine");
    expect(screen.getByText(/E2E latency has no SLO target/)).toBeInTheDocument();
    expect(e2e.yAxis).toMatchObject({ type: "log", name: "median E2E latency (ms)" });
    expect(e2e.xAxis).toMatchObject({ name: "requests/s" });
  });

  it("draws goodput at each load, hollow where a point misses the SLOs", async () => {
    await renderPage(SPEC, sweep());
    const option = chartOption("Load vs goodput");
    expect(option.xAxis).toMatchObject({ type: "category", data: ["1", "4", "16"], name: "concurrency" });
    const [a, b] = option.series;
    expect((a?.data as { value: number }[]).map((d) => d.value)).toEqual([1, 3.4, 1.2]);
    expect((a?.data as { itemStyle?: object }[])[2]?.itemStyle).toMatchObject({ color: "#fff" });
    expect((b?.data as { value: number | null }[]).map((d) => d.value)).toEqual([0, null, null]);
  });

  it("without SLOs shows request throughput and says there is no goodput", async () => {
    const base = sweep();
    // Without objectives the server finds no max goodput.
    const data = { ...base, slo: null, cells: base.cells.map((c) => ({ ...c, max_goodput: null, points: c.points.map((p) =>
      (p.index === 2 ? { ...p, output_tokens_per_dollar: 1_000_000, output_tokens_per_joule: null } : p)) })) };
    await renderPage({ ...SPEC, slo: null }, data);
    expect(chartOption("Load vs goodput").yAxis).toMatchObject({ name: "request throughput (req/s)" });
    expect(screen.getByText(/No SLOs were set/)).toBeInTheDocument();
    expect(screen.getAllByText("no SLOs")).toHaveLength(2);
    // Efficiency at the peak instead of max goodput; a figure the point lacks says nothing of the peak.
    const first = document.querySelector('tr[data-job="1"]') as HTMLElement;
    expect(within(first).getByTestId("tokens-per-dollar")).toHaveTextContent("1,000,000 at peak");
    expect(within(first).getByTestId("tokens-per-joule")).toHaveTextContent(/^—$/);
  });

  it("before any point is measured: the rows say why, and no curve is drawn", async () => {
    await renderPage(SPEC, { experiment: 7, mode: "concurrency", slo: SPEC.slo,
      cells: [cell(1, { status: "running" }), cell(2, { status: "failed" }), cell(3, { status: "pending" })] });
    const rows = screen.getByRole("table", { name: "Load sweep comparison" }).querySelectorAll("tbody tr");
    expect([...rows].map((r) => r.getAttribute("data-state"))).toEqual(["running", "failed", "waiting"]);
    expect(rows[0]).toHaveTextContent("running: no point measured yet");
    expect(screen.getByText("No load point measured yet")).toBeInTheDocument();
    expect(document.querySelector('[data-chart="Throughput vs latency"]')).toBeNull();
  });

  it("shows no load panel for an experiment without a load", async () => {
    await renderPage(null, null);
    expect(screen.queryByText("Serving under load")).toBeNull();
    expect(get).not.toHaveBeenCalled();
  });

  it("reads a cell's raw latencies only when asked, and draws their histograms", async () => {
    const data = sweep();
    const detail: JobLoad = { ...(data.cells[0] as JobLoad), points: (data.cells[0]?.points ?? []).map((p) => ({
      ...p, raw: { ttft_s: [0.05, 0.06, 0.06, 0.07], tpot_s: [], itl_s: [], e2e_s: [] } })) };
    get.mockResolvedValue(answer(detail));
    await renderPage(SPEC, data);
    expect(get).not.toHaveBeenCalled();
    fireEvent.change(screen.getByLabelText("Cell"), { target: { value: "1" } });
    await waitFor(() => expect(document.querySelector('[data-chart="TTFT distribution"]')).not.toBeNull());
    expect(get).toHaveBeenCalledWith("/api/v1/jobs/{id}/load/", { params: { path: { id: 1 } } });
    const bars = chartOption("TTFT distribution").series[0]?.data as number[];
    expect(bars.reduce((a, b) => a + b, 0)).toBe(4);
    expect(screen.getByText(/No values/)).toBeInTheDocument(); // ITL is empty at this point
    fireEvent.change(screen.getByLabelText("Load point"), { target: { value: "2" } });
    expect(screen.getByLabelText("Load point")).toHaveValue("2");
    expect(get).toHaveBeenCalledTimes(1);
  });

  it("reads the sweep again after its jobs' updates, once for a burst", async () => {
    get.mockResolvedValue(answer(sweep()));
    await renderPage(SPEC, sweep());
    vi.useFakeTimers();
    expect(listeners.size).toBeGreaterThan(0);
    const update = (id: number, experimentId = 7) => act(() => {
      listeners.forEach((fn) => fn({ type: "job.updated", data: { ...job(id, "running"), experiment: experimentId } } as ServerEvent));
    });
    update(1);
    update(2);
    update(3, 8); // another experiment's job
    expect(get).not.toHaveBeenCalled();
    await act(async () => { await vi.advanceTimersByTimeAsync(LOAD_REFRESH_MS); });
    expect(get).toHaveBeenCalledTimes(1);
    expect(get).toHaveBeenCalledWith("/api/v1/experiments/{id}/load/", { params: { path: { id: 7 } } });
  });

  it("shows a refusal of the sweep's figures with its message and a retry", async () => {
    get.mockResolvedValue(answer(null, 404, { detail: "Not found." }));
    await renderPage(SPEC, null);
    expect(await screen.findByText("The sweep's figures could not be read")).toBeInTheDocument();
    expect(screen.getByText("Not found.")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });
});

describe("request-rate sweeps", () => {
  it("label their points in req/s with inf last", async () => {
    const c = cell(1, { points: [point(0, 2, {}, "request_rate"), point(1, "inf", {}, "request_rate")] });
    await renderPage({ ...SPEC, concurrency: null, request_rate: [2, "inf"] },
      { experiment: 7, mode: "request_rate", slo: null, cells: [c] });
    expect(chartOption("Load vs goodput").xAxis).toMatchObject({ data: ["2 req/s", "inf"], name: "request rate (req/s)" });
    expect(screen.getByText("2 req/s, inf")).toBeInTheDocument();
  });
});
