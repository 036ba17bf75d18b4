import { describe, expect, it } from "vitest";
import type { AgentInfo } from "../api/models";
import { engineText, localServerRows, localServersSummary, servedModelsRows } from "./localServers";

// What an agent with a probed vLLM server and a configured llama.cpp server that is down reports
// (asserted to the generated type, as the API sends it).
const info = {
  runtimes: [
    { name: "transformers", access_mode: "white_box", available: true, served_models: null },
    { name: "vllm", access_mode: "gray_box", available: true, served_models: ["Qwen/Qwen2.5-0.5B-Instruct"] },
    { name: "llamacpp_server", access_mode: "gray_box", available: false, served_models: [],
      reason: "no llamacpp_server server answers" },
  ],
  local_servers: [
    { runtime: "llamacpp_server", url: "http://127.0.0.1:8080", metrics_url: "http://127.0.0.1:8080/metrics",
      source: "configured", available: false, reason: "ConnectError: connection refused", models: [],
      metrics_available: false, metrics_reason: null },
    { runtime: "vllm", url: "http://127.0.0.1:8000", metrics_url: "http://127.0.0.1:8000/metrics", source: "probed",
      available: true, reason: null, engine: "vllm", engine_version: "0.6.3", models: ["Qwen/Qwen2.5-0.5B-Instruct"],
      metrics_available: true, metrics_reason: null },
  ],
} as unknown as AgentInfo;

describe("localServerRows", () => {
  it("lists each server, answering first, with its engine, models and metrics status", () => {
    const rows = localServerRows(info);
    expect(rows.map((r) => r.runtime)).toEqual(["vllm", "llamacpp_server"]);
    expect(rows[0]).toMatchObject({
      url: "http://127.0.0.1:8000", source: "probed", answering: true, status: "answering", engine: "vllm 0.6.3",
      models: ["Qwen/Qwen2.5-0.5B-Instruct"], metricsOk: true, metrics: "ok",
    });
    expect(rows[1]).toMatchObject({
      source: "configured", answering: false, status: "not answering: ConnectError: connection refused",
      engine: null, models: [], metricsOk: false, metrics: "not readable",
    });
  });

  it("gives the reason /metrics could not be read", () => {
    const rows = localServerRows({ local_servers: [{ runtime: "llamacpp_server", url: "http://h:8080", available: true,
      metrics_available: false, metrics_reason: "404 (start llama-server with --metrics)" }] } as unknown as AgentInfo);
    expect(rows[0]?.metrics).toBe("404 (start llama-server with --metrics)");
    expect(rows[0]?.source).toBe("configured");
  });

  it("is empty for an agent that reported none (or an older agent)", () => {
    expect(localServerRows(null)).toEqual([]);
    expect(localServerRows({} as AgentInfo)).toEqual([]);
    expect(localServersSummary({} as AgentInfo)).toBeNull();
  });
});

describe("served models and summary", () => {
  it("lists only gray-box runtimes (served_models not null)", () => {
    expect(servedModelsRows(info)).toEqual([
      { runtime: "vllm", available: true, models: ["Qwen/Qwen2.5-0.5B-Instruct"], reason: null },
      { runtime: "llamacpp_server", available: false, models: [], reason: "no llamacpp_server server answers" },
    ]);
  });

  it("summarises the servers for the fleet table", () => {
    expect(localServersSummary(info)).toBe("2 local servers, 1 answering");
  });

  it("names the engine and its version", () => {
    expect(engineText("llama.cpp", null)).toBe("llama.cpp");
    expect(engineText(null, null)).toBeNull();
    expect(engineText("ollama", "0.3.1")).toBe("ollama 0.3.1");
  });
});
