/** The local servers of an agent and the client-vs-server table of results, as rendered. */
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render, screen, within } from "@testing-library/react";
import type { AgentInfo, ExperimentResultJob, MetricStatistics } from "../api/models";
import { LocalServers } from "./AgentsPage";
import { ServerFiguresSection } from "./ResultsPage";

afterEach(cleanup);

const stat = (mean: number, unit = "s") => ({
  n: 2, mean, std: 0, min: mean, max: mean, median: mean, p90: mean, p95: mean, p99: mean, cv: 0, ci95: null,
  ci_method: null, outliers: [], outlier_rule: "", values: null, unit, source: "warm", scope: "run",
}) as unknown as MetricStatistics;

const job = (id: number, runtime: string, statistics: Record<string, MetricStatistics>): ExperimentResultJob => ({
  job: id, status: "completed", model: "qwen", runtime, agent: "a", agent_name: "host", hardware_fingerprint: "fp",
  scoring_status: "scored", statistics, request_statistics: {}, efficiency: null, cold_start: null, unavailable_metrics: {},
});

describe("client vs inference server", () => {
  it("shows each gray-box job's pairs with both labels and the difference; other jobs not at all", () => {
    render(<ServerFiguresSection jobs={[
      job(1, "vllm", { ttft_s: stat(0.125), server_ttft_s: stat(0.1), e2e_latency_s: stat(1) }),
      job(2, "transformers", { ttft_s: stat(0.2) }),
    ]} />);
    const table = screen.getByRole("table", { name: "Client vs inference server" });
    expect(within(table).getByText("client (RUCKUS)")).toBeInTheDocument();
    expect(within(table).getByText("inference server's own metrics")).toBeInTheDocument();
    const rows = table.querySelectorAll("tbody tr");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toHaveAttribute("data-figure", "server_ttft_s");
    expect(within(rows[0] as HTMLElement).getByTestId("client-mean")).toHaveTextContent("0.125 s");
    expect(within(rows[0] as HTMLElement).getByTestId("server-mean")).toHaveTextContent("0.1 s");
    expect(within(rows[0] as HTMLElement).getByTestId("relative-difference")).toHaveTextContent("−20%");
    expect(table.querySelector('[data-job="2"]')).toBeNull();
  });

  it("renders nothing when no job has the server's figures", () => {
    const { container } = render(<ServerFiguresSection jobs={[job(2, "transformers", { ttft_s: stat(0.2) })]} />);
    expect(container).toBeEmptyDOMElement();
  });
});

describe("local servers", () => {
  const info = {
    runtimes: [{ name: "vllm", access_mode: "gray_box", available: true, served_models: ["m1", "m2", "m3"] }],
    local_servers: [{ runtime: "vllm", url: "http://127.0.0.1:8000", source: "probed", available: true,
      engine: "vllm", engine_version: "0.6.3", models: ["m1", "m2", "m3"], metrics_available: false,
      metrics_reason: "404 Not Found" }],
  } as unknown as AgentInfo;

  it("lists each server with its status, engine, models and metrics status, and what gray-box runtimes serve", () => {
    render(<LocalServers info={info} />);
    const row = screen.getByRole("table", { name: "Local servers" }).querySelector('[data-server="http://127.0.0.1:8000"]');
    expect(row).toHaveTextContent("probed");
    expect(row).toHaveTextContent("answering");
    expect(row).toHaveTextContent("vllm 0.6.3");
    expect(row).toHaveTextContent("m1, m2");
    expect(row).toHaveTextContent("+1 more");
    expect(row).toHaveTextContent("404 Not Found");
    expect(screen.getByRole("list", { name: "Served models" })).toHaveTextContent("vllm jobs can use: m1, m2");
  });

  it("shows nothing for an agent without local servers or gray-box runtimes", () => {
    const { container } = render(<LocalServers info={{ runtimes: [] } as unknown as AgentInfo} />);
    expect(container).toBeEmptyDOMElement();
  });
});
