import { describe, expect, it } from "vitest";
import type { ExperimentResultJob, MetricStatistics } from "../api/models";
import {
  CLIENT_LABEL, formatRelativeDifference, hasServerFigures, relativeDifference, SERVER_FIGURES, SERVER_LABEL,
  serverFigureRows,
} from "./serverFigures";

/** Per-run statistics with a given mean (asserted to the generated type: later fields must not break this). */
const stat = (mean: number, unit = "s", n = 2) => ({
  n, mean, std: 0, min: mean, max: mean, median: mean, p90: mean, p95: mean, p99: mean, cv: 0, ci95: null,
  ci_method: null, outliers: [], outlier_rule: "", values: [mean, mean], unit, source: "warm", scope: "run",
}) as unknown as MetricStatistics;

const job = (statistics: Record<string, MetricStatistics>): Pick<ExperimentResultJob, "statistics"> => ({ statistics });

describe("SERVER_FIGURES", () => {
  it("mirrors common.metrics.SERVER_FIGURES", () => {
    expect(SERVER_FIGURES).toEqual({
      server_ttft_s: "ttft_s", server_tpot_s: "tpot_s", server_inter_token_latency_s: "inter_token_gaps_s",
      server_e2e_latency_s: "e2e_latency_s", server_generation_tokens: "output_tokens",
      server_prompt_tokens: "prompt_tokens", server_requests: "", server_kv_cache_usage_pct: "",
      server_requests_running: "",
    });
    expect(CLIENT_LABEL).toBe("client (RUCKUS)");
    expect(SERVER_LABEL).toBe("inference server's own metrics");
  });
});

describe("serverFigureRows", () => {
  it("puts the client's per-run mean next to the server's, with the relative difference", () => {
    const rows = serverFigureRows(job({
      ttft_s: stat(0.12), server_ttft_s: stat(0.1), e2e_latency_s: stat(2.0), server_e2e_latency_s: stat(2.1),
      output_tokens: stat(256, "tok"), server_generation_tokens: stat(256, "tok"), server_requests: stat(8, ""),
      output_tokens_per_s: stat(100, "tok/s"),
    }));
    expect(rows.map((r) => r.server)).toEqual(
      ["server_ttft_s", "server_e2e_latency_s", "server_generation_tokens", "server_requests"]);
    const ttft = rows[0]!;
    expect(ttft).toMatchObject({ client: "ttft_s", label: "Time to first token", unit: "s", clientMean: 0.12, serverMean: 0.1 });
    expect(ttft.relativeDifference).toBeCloseTo(-1 / 6);
    expect(rows[1]!.relativeDifference).toBeCloseTo(0.05);
    expect(rows[2]!.relativeDifference).toBe(0);
    // A server figure without a client counterpart: the client side stays empty.
    expect(rows[3]).toMatchObject({ client: null, clientMean: null, serverMean: 8, relativeDifference: null });
  });

  it("leaves the client side empty when the job lacks the client's figure", () => {
    const rows = serverFigureRows(job({ server_tpot_s: stat(0.02) }));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ client: "tpot_s", clientMean: null, clientN: null, relativeDifference: null });
  });

  it("finds nothing for a job without the server's figures", () => {
    const plain = job({ ttft_s: stat(0.1), e2e_latency_s: stat(1) });
    expect(hasServerFigures(plain)).toBe(false);
    expect(serverFigureRows(plain)).toEqual([]);
    expect(hasServerFigures(job({ server_requests: stat(4, "") }))).toBe(true);
  });
});

describe("relative difference", () => {
  it("is (server − client) / client, and undefined against a zero or missing client figure", () => {
    expect(relativeDifference(2, 3)).toBeCloseTo(0.5);
    expect(relativeDifference(0, 3)).toBeNull();
    expect(relativeDifference(null, 3)).toBeNull();
    expect(relativeDifference(2, null)).toBeNull();
  });

  it("is printed with its sign", () => {
    expect(formatRelativeDifference(0.123)).toBe("+12%");
    expect(formatRelativeDifference(-0.034)).toBe("−3.4%");
    expect(formatRelativeDifference(0.0001)).toBe("0%");
    expect(formatRelativeDifference(null)).toBe("—");
  });
});
