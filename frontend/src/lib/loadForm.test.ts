import { describe, expect, it } from "vitest";
import { flattenErrors } from "../api/errors";
import {
  initialLoadForm, loadPlanSummary, loadServerErrors, mergeLoadErrors, readLoadForm, whiteBoxRuntimes, withLoad,
  type LoadFormState,
} from "./loadForm";

const on: LoadFormState = { ...initialLoadForm, enabled: true };

describe("readLoadForm", () => {
  it("sends nothing while the sweep is off", () => {
    const reading = readLoadForm(initialLoadForm);
    expect(reading).toEqual({ spec: null, errors: {}, valid: true });
    expect(withLoad({ name: "x" }, reading)).toEqual({ name: "x" });
  });

  it("turns the defaults into a valid concurrency sweep with typed numbers", () => {
    const reading = readLoadForm(on);
    expect(reading.valid).toBe(true);
    expect(reading.spec).toEqual({
      concurrency: [1, 2, 4, 8, 16, 32],
      num_requests: 200,
      warmup_requests: 10,
      seed: 0,
      request_timeout_s: 600,
      prompts: { source: "synthetic", input_tokens: 512, output_tokens: 128 },
      early_stop: { latency_factor: 20, max_error_rate: 0.5 },
    });
    expect(withLoad({ name: "x" }, reading)).toEqual({ name: "x", load: reading.spec });
  });

  it("builds a request-rate sweep with inf, gamma arrivals, a cap, a duration, SLOs and early stop switched off", () => {
    const reading = readLoadForm({
      ...on, mode: "request_rate", requestRate: "0.5, 2;4 Inf", arrival: "gamma", burstiness: "0.5",
      maxConcurrency: "64", sizeBy: "duration_s", durationS: "30", warmupRequests: "", seed: "7",
      slo: { ttftMs: "200", tpotMs: "", e2eMs: "5000", percentile: "90", maxErrorRate: "0.01" },
      prompts: { source: "jsonl", path: " prompts/chat.jsonl ", inputTokens: "512", outputTokens: "", ignoreEos: "off" },
      earlyStop: { latencyFactor: "", maxErrorRate: "" },
    });
    expect(reading.errors).toEqual({});
    expect(reading.spec).toEqual({
      request_rate: [0.5, 2, 4, "inf"],
      arrival: "gamma",
      burstiness: 0.5,
      max_concurrency: 64,
      duration_s: 30,
      seed: 7,
      request_timeout_s: 600,
      slo: { ttft_ms: 200, e2e_ms: 5000, percentile: 90, max_error_rate: 0.01 },
      prompts: { source: "jsonl", path: "prompts/chat.jsonl", ignore_eos: false },
      early_stop: { latency_factor: null, max_error_rate: null },
    });
  });

  it("leaves burstiness out unless arrivals are gamma (the server refuses it otherwise)", () => {
    const spec = readLoadForm({ ...on, mode: "request_rate", arrival: "poisson", burstiness: "3" }).spec;
    expect(spec).not.toHaveProperty("burstiness");
    expect(spec).not.toHaveProperty("max_concurrency");
    expect(readLoadForm({ ...on, mode: "concurrency", maxConcurrency: "4" }).spec).not.toHaveProperty("max_concurrency");
  });

  it("names the list item that is wrong, as the server does", () => {
    const rates = readLoadForm({ ...on, mode: "request_rate", requestRate: "1, fast, 0, 200000" });
    expect(rates.valid).toBe(false);
    expect(rates.errors.request_rate).toEqual([
      'request_rate[1]: must be a number of requests/s or "inf", got "fast"',
      "request_rate[2]: must be above 0 and at most 100,000, got 0",
      "request_rate[3]: must be above 0 and at most 100,000, got 200000",
    ]);
    const levels = readLoadForm({ ...on, concurrency: "1, 2.5, 5000" });
    expect(levels.errors.concurrency).toEqual([
      'concurrency[1]: must be a whole number between 1 and 4096, got "2.5"',
      'concurrency[2]: must be a whole number between 1 and 4096, got "5000"',
    ]);
    expect(readLoadForm({ ...on, concurrency: " " }).errors.concurrency).toEqual([
      "concurrency: give at least one level (e.g. 1, 2, 4, 8)",
    ]);
    const many = Array.from({ length: 33 }, (_, i) => i + 1).join(",");
    expect(readLoadForm({ ...on, concurrency: many }).errors.concurrency).toEqual(["concurrency: at most 32 load points, got 33"]);
  });

  it("checks every numeric field's range and requires the size of a point", () => {
    const reading = readLoadForm({
      ...on, numRequests: "", warmupRequests: "-1", seed: "1.5", requestTimeoutS: "0",
      slo: { ttftMs: "abc", tpotMs: "", e2eMs: "", percentile: "101", maxErrorRate: "2" },
      prompts: { ...on.prompts, inputTokens: "", outputTokens: "200000" },
      earlyStop: { latencyFactor: "1", maxErrorRate: "1.5" },
    });
    expect(reading.valid).toBe(false);
    expect(reading.errors).toEqual({
      num_requests: ["num_requests: required"],
      warmup_requests: ["warmup_requests: must be at least 0 and at most 10,000, got -1"],
      seed: ['seed: must be a whole number, got "1.5"'],
      request_timeout_s: ["request_timeout_s: must be above 0 and at most 86,400, got 0"],
      "slo.ttft_ms": ['slo.ttft_ms: must be a number, got "abc"'],
      "slo.percentile": ["slo.percentile: must be above 0 and at most 100, got 101"],
      "slo.max_error_rate": ["slo.max_error_rate: must be at least 0 and at most 1, got 2"],
      "prompts.input_tokens": ["prompts.input_tokens: required"],
      "prompts.output_tokens": ["prompts.output_tokens: must be at least 1 and at most 131,072, got 200000"],
      "early_stop.latency_factor": ["early_stop.latency_factor: must be above 1 and at most 10,000, got 1"],
      "early_stop.max_error_rate": ["early_stop.max_error_rate: must be at least 0 and at most 1, got 1.5"],
    });
    expect(readLoadForm({ ...on, sizeBy: "duration_s", durationS: "4000" }).errors.duration_s).toEqual([
      "duration_s: must be above 0 and at most 3,600, got 4000",
    ]);
  });

  it("wants a target before an SLO error rate, and a path for JSONL prompts", () => {
    expect(readLoadForm({ ...on, slo: { ...on.slo, maxErrorRate: "0.1" } }).errors.slo).toEqual([
      "slo: give at least one of ttft_ms, tpot_ms, e2e_ms",
    ]);
    expect(readLoadForm({ ...on, prompts: { ...on.prompts, source: "jsonl", path: "" } }).errors["prompts.path"]).toEqual([
      "prompts.path: a jsonl prompt source needs the file's path on the agent",
    ]);
    // Task prompts take neither input tokens nor a path; output tokens are optional.
    const task = readLoadForm({ ...on, prompts: { source: "task", path: "x", inputTokens: "9", outputTokens: "", ignoreEos: "on" } });
    expect(task.spec?.prompts).toEqual({ source: "task", ignore_eos: true });
  });
});

describe("white-box runtimes", () => {
  it("take concurrency levels (batch sizes) only, as the server says", () => {
    expect(whiteBoxRuntimes(["transformers", "vllm", "openai"])).toEqual(["transformers"]);
    const reading = readLoadForm({ ...on, mode: "request_rate" }, ["transformers"]);
    expect(reading.errors.request_rate).toEqual([
      "request_rate: runtime(s) transformers run a load sweep as batches: give concurrency levels (batch sizes), not request rates",
    ]);
    expect(readLoadForm(on, ["transformers"]).valid).toBe(true);
  });
});

describe("loadServerErrors", () => {
  it("puts the server's messages next to their fields, whether nested or named in the message", () => {
    const fields = flattenErrors({
      load: {
        request_rate: ['request_rate[2]: must be above 0 and at most 100000, got -1'],
        "slo.ttft_ms": ["Input should be greater than 0"],
        prompts: ["prompts.path: a jsonl prompt source needs the file's path on the agent"],
        concurrency: { 3: ["Input should be a valid integer"] },
        non_field_errors: ["load.burstiness: only gamma arrivals take a burstiness (poisson is 1)",
          "load: give exactly one of num_requests and duration_s"],
      },
      name: ["This field is required."],
    });
    expect(loadServerErrors(fields)).toEqual({
      request_rate: ["request_rate[2]: must be above 0 and at most 100000, got -1"],
      "slo.ttft_ms": ["Input should be greater than 0"],
      "prompts.path": ["prompts.path: a jsonl prompt source needs the file's path on the agent"],
      concurrency: ["concurrency[3]: Input should be a valid integer"],
      burstiness: ["load.burstiness: only gamma arrivals take a burstiness (poisson is 1)"],
      "": ["load: give exactly one of num_requests and duration_s"],
    });
  });

  it("reads flat dotted keys and bracketed indices too, and keeps one copy of a message the form also gave", () => {
    // As the server sends them: the item's index is in the key, not in the message.
    const server = loadServerErrors({
      "load.request_rate[1]": ["must be above 0 and at most 100000, got -2"], "load.early_stop.latency_factor": ["too low"],
      "load.max_concurrency": ["only open-loop (request_rate) sweeps take a cap"], load: ["give exactly one of num_requests and duration_s"],
    });
    expect(server).toEqual({
      request_rate: ["request_rate[1]: must be above 0 and at most 100000, got -2"],
      "early_stop.latency_factor": ["too low"],
      max_concurrency: ["only open-loop (request_rate) sweeps take a cap"],
      "": ["give exactly one of num_requests and duration_s"],
    });
    const same = ["request_rate[1]: must be above 0 and at most 100000, got -2"];
    expect(mergeLoadErrors({ request_rate: same }, server).request_rate).toEqual(same);
  });
});

describe("loadPlanSummary", () => {
  it("counts the requests of one job, warm-up included", () => {
    const spec = readLoadForm(on).spec;
    expect(spec).not.toBeNull();
    expect(loadPlanSummary(spec ?? {})).toEqual({
      mode: "concurrency", points: [1, 2, 4, 8, 16, 32], requestsPerPoint: 200, secondsPerPoint: null,
      warmupPerPoint: 10, requestsPerJob: 1260, secondsPerJob: null,
    });
  });

  it("counts seconds for points sized by time", () => {
    expect(loadPlanSummary({ request_rate: [1, "inf"], duration_s: 30 })).toEqual({
      mode: "request_rate", points: [1, "inf"], requestsPerPoint: null, secondsPerPoint: 30, warmupPerPoint: 0,
      requestsPerJob: null, secondsPerJob: 60,
    });
  });
});
