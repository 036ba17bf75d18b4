/**
 * Results still being scored: the results page says the figures are coming, and a job's update after scoring
 * makes the page read the results again.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { applyEvent, keys } from "../api/queries";
import type { Experiment, ExperimentResultJob, ExperimentResults, Job } from "../api/models";
import { ResultsPage } from "./ResultsPage";

vi.mock("../api/events", () => ({
  events: { subscribe: () => () => {}, onEvent: () => () => {}, onState: () => () => {}, close: () => {},
    state: "closed", lastError: null },
}));

const NOW = "2026-11-30T08:00:00Z";

const EXPERIMENT = {
  id: 7, name: "SmolLM2", description: "", task: { name: "wikipedia_summarization", params: {} },
  models: [{ name: "smollm2-135m-instruct" }], runtimes: [{ name: "transformers" }], agents: { all: true },
  runs_per_job: 3, requested_metrics: [], status: "completed", plan: { jobs: [], unrunnable: [], excluded: [] },
  job_counts: { completed: 2 }, owner: "olga", can_manage: false, created_at: NOW, updated_at: NOW,
  started_at: NOW, finished_at: NOW,
} as unknown as Experiment;

function scoringJob(id: number): ExperimentResultJob {
  return {
    job: id, status: "completed", model: "smollm2-135m-instruct", runtime: "transformers", agent: "a",
    agent_name: `host-${id}`, hardware_fingerprint: "fp", scoring_status: "scoring", statistics: {},
    request_statistics: {}, efficiency: null, cold_start: null, unavailable_metrics: {},
  };
}

function results(jobs: ExperimentResultJob[]): ExperimentResults {
  return { experiment: 7, status: "completed", scoring: jobs.filter((j) => j.scoring_status === "scoring").length,
    unrunnable: [], metrics: [], jobs };
}

afterEach(cleanup);

describe("results being scored", () => {
  it("the results page says the figures are coming instead of 'no statistics'", () => {
    const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } });
    qc.setQueryData(keys.experiment(7), EXPERIMENT);
    qc.setQueryData(keys.results(7), results([scoringJob(1), scoringJob(2)]));
    render(
      <QueryClientProvider client={qc}>
        <MemoryRouter initialEntries={["/experiments/7/results"]}>
          <Routes><Route path="experiments/:id/results" element={<ResultsPage />} /></Routes>
        </MemoryRouter>
      </QueryClientProvider>,
    );
    expect(screen.getByText("Scoring results…")).toBeTruthy();
    expect(screen.getByTestId("scoring-notice").textContent).toMatch(/Scoring the results of 2 jobs/);
    expect(screen.queryByText("No job produced statistics.")).toBeNull();
  });

  it("a load sweep's results page points to its curves instead of saying 'no statistics'", () => {
    const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } });
    qc.setQueryData(keys.experiment(7), { ...EXPERIMENT, load: { concurrency: [1, 4], num_requests: 8 } });
    qc.setQueryData(keys.results(7), results([{ ...scoringJob(1), scoring_status: "scored" }]));
    render(
      <QueryClientProvider client={qc}>
        <MemoryRouter initialEntries={["/experiments/7/results"]}>
          <Routes><Route path="experiments/:id/results" element={<ResultsPage />} /></Routes>
        </MemoryRouter>
      </QueryClientProvider>,
    );
    const notice = screen.getByTestId("load-notice");
    expect(notice.textContent).toMatch(/load sweep/);
    expect(notice.querySelector("a[href='/experiments/7']")).toBeTruthy();
    expect(notice.querySelector("a[href*='kind=load_points']")).toBeTruthy();
    expect(screen.queryByText("No job produced statistics.")).toBeNull();
  });

  it("an update of a job still scoring makes the results stale", () => {
    const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } });
    qc.setQueryData(keys.results(7), results([scoringJob(1)]));
    const job = { id: 1, experiment: 7, status: "completed", updated_at: NOW } as unknown as Job;
    qc.setQueryData(keys.jobs(7), [job]);
    applyEvent(qc, { type: "job.updated", data: { ...job, updated_at: "2026-11-30T08:00:05Z" } });
    expect(qc.getQueryState(keys.results(7))?.isInvalidated).toBe(true);
    // A job the results show as scored: its updates do not reload the results.
    const other = new QueryClient();
    other.setQueryData(keys.results(7), results([{ ...scoringJob(1), scoring_status: "scored" }]));
    other.setQueryData(keys.jobs(7), [job]);
    applyEvent(other, { type: "job.updated", data: { ...job, updated_at: "2026-11-30T08:00:05Z" } });
    expect(other.getQueryState(keys.results(7))?.isInvalidated).toBe(false);
  });
});
