import { describe, expect, it } from "vitest";
import type { Catalog } from "../api/models";
import {
  benchmarkRequest, combinationLabel, enabledRuntimes, groupExcluded, initialForm, runtimeIndex, runtimesForTask,
  selectTask, taskNeedsModel, toRequest, type FormState,
} from "./experimentForm";
import { formatModels, progressFraction } from "./format";

const schema = { type: "object" };
const catalog: Catalog = {
  tasks: [
    { name: "wikipedia_summarization", description: "", needs_model: true, server_metrics: [], params_schema: schema },
    { name: "hardware_benchmark", description: "", needs_model: false, server_metrics: [], params_schema: schema },
  ],
  runtimes: ["transformers", "vllm", "openai"].map((name): Catalog["runtimes"][number] => ({
    name, access_mode: "white_box", description: "", framework: null, needs_local_model: false,
    tasks: ["wikipedia_summarization"], metrics: [], gpu_metrics: [], params_schema: schema,
  })).concat([{ name: "hardware", access_mode: "white_box", description: "", framework: "torch", needs_local_model: false,
    tasks: ["hardware_benchmark"], metrics: [], gpu_metrics: [], params_schema: schema }]),
  models: [],
  metrics: [],
  benchmark_metric_pattern: "",
  no_model_name: "none",
};

describe("toRequest", () => {
  it("builds the API body with typed numbers and without empty optional params", () => {
    const form: FormState = { ...initialForm, name: " smoke ", models: [{ name: "smollm2-135m-instruct", dtype: "" }],
      task: { ...initialForm.task, num_samples: "2", max_new_tokens: "12" }, runsPerJob: "2" };
    const body = toRequest(form, catalog);
    expect(body.name).toBe("smoke");
    expect(body.task).toEqual({ name: "wikipedia_summarization", params: { num_samples: 2, seed: 42, max_new_tokens: 12, source: "packaged" } });
    expect(body.models).toEqual([{ name: "smollm2-135m-instruct" }]);
    expect(body.runtimes).toEqual([{ name: "transformers", params: { device: "auto", dtype: "auto" } }]);
    expect(body.agents).toEqual({ all: true });
    expect(body.runs_per_job).toBe(2);
    // Runs that are not a number are sent as 0: the server answers with the field's range message.
    expect(toRequest({ ...form, runsPerJob: "abc" }, catalog).runs_per_job).toBe(0);
    expect(toRequest({ ...form, runsPerJob: " " }, catalog).runs_per_job).toBe(0);
  });
  it("sends bad numbers as typed so that the server names the field", () => {
    const body = toRequest({ ...initialForm, task: { ...initialForm.task, seed: "abc" } });
    expect(body.task.params).toMatchObject({ seed: "abc" });
  });
  it("maps runtime error indices to the enabled runtimes", () => {
    const form: FormState = { ...initialForm, runtimes: { ...initialForm.runtimes, openai: { enabled: true, params: {} } } };
    expect(runtimeIndex(form, "transformers")).toBe(0);
    expect(runtimeIndex(form, "openai")).toBe(1);
    expect(runtimeIndex(form, "vllm")).toBe(-1);
  });
  it("builds a hardware benchmark without models and with the hardware runtime only", () => {
    const form = selectTask({ ...initialForm, name: "peaks" }, "hardware_benchmark", catalog);
    const body = toRequest({ ...form, hardware: { quick: true, device: "cpu", repeats: "" } }, catalog);
    expect(body.task).toEqual({ name: "hardware_benchmark", params: { quick: true, device: "cpu" } });
    expect(body).not.toHaveProperty("models");
    expect(body.runtimes).toEqual([{ name: "hardware", params: { device: "auto" } }]);
    expect(runtimeIndex(form, "hardware", catalog)).toBe(0);
    expect(runtimeIndex(form, "transformers", catalog)).toBe(-1);
  });
  it("types the repeats and keeps a bad value for the server to name", () => {
    const form = selectTask(initialForm, "hardware_benchmark", catalog);
    expect(toRequest({ ...form, hardware: { quick: false, device: "auto", repeats: "5" } }, catalog).task.params)
      .toEqual({ quick: false, device: "auto", repeats: 5 });
    expect(toRequest({ ...form, hardware: { quick: false, device: "auto", repeats: "x" } }, catalog).task.params)
      .toMatchObject({ repeats: "x" });
  });
  it("never sends the hardware runtime with a model task", () => {
    const hw = selectTask(initialForm, "hardware_benchmark", catalog);
    const back = selectTask(hw, "wikipedia_summarization", catalog);
    expect(back.runtimes.hardware.enabled).toBe(true);
    expect(toRequest(back, catalog).runtimes.map((r) => r.name)).toEqual(["transformers"]);
  });
});

describe("task and runtime choice", () => {
  it("offers the runtimes whose catalog entry lists the task", () => {
    expect(runtimesForTask("wikipedia_summarization", catalog)).toEqual(["transformers", "vllm", "openai"]);
    expect(runtimesForTask("hardware_benchmark", catalog)).toEqual(["hardware"]);
    expect(runtimesForTask("unknown", catalog)).toEqual([]);
  });
  it("falls back to built-in knowledge while the catalog loads", () => {
    expect(runtimesForTask("hardware_benchmark")).toEqual(["hardware"]);
    expect(runtimesForTask("wikipedia_summarization")).toEqual(["transformers", "vllm", "openai"]);
    expect(taskNeedsModel("hardware_benchmark")).toBe(false);
    expect(taskNeedsModel("wikipedia_summarization")).toBe(true);
    expect(taskNeedsModel("something_new", catalog)).toBe(true);
  });
  it("turns on the first offered runtime when switching to a task none of the enabled ones runs", () => {
    const form = selectTask(initialForm, "hardware_benchmark", catalog);
    expect(form.taskName).toBe("hardware_benchmark");
    expect(enabledRuntimes(form, catalog)).toEqual(["hardware"]);
    const back = selectTask({ ...form, runtimes: { ...form.runtimes, transformers: { ...form.runtimes.transformers, enabled: false } } },
      "wikipedia_summarization", catalog);
    expect(enabledRuntimes(back, catalog)).toEqual(["transformers"]);
  });
});

describe("plan helpers", () => {
  it("labels combinations, leaving out the placeholder model", () => {
    expect(combinationLabel("m", "transformers")).toBe("m · transformers");
    expect(combinationLabel("none", "hardware")).toBe("hardware");
  });
  it("groups left-out agents by combination and says whether another agent runs it", () => {
    const groups = groupExcluded(
      [
        { model: "m", runtime: "vllm", agent_id: "a", agent_name: "pi", reason: "no vllm" },
        { model: "m", runtime: "vllm", agent_id: "b", agent_name: "b", reason: "offline" },
        { model: "m", runtime: "transformers", agent_id: "a", agent_name: "pi", reason: "too small" },
      ],
      [{ model: "m", runtime: "vllm", reason: "no agent", agents: [] }],
    );
    expect(groups).toEqual([
      { label: "m · vllm", runElsewhere: false, agents: [
        { agent_id: "a", agent_name: "pi", reason: "no vllm" }, { agent_id: "b", agent_name: "b", reason: "offline" }] },
      { label: "m · transformers", runElsewhere: true, agents: [{ agent_id: "a", agent_name: "pi", reason: "too small" }] },
    ]);
  });
  it("builds the one-click benchmark experiment", () => {
    expect(benchmarkRequest({ id: "u1", name: "pi" })).toEqual({
      name: "hardware benchmark: pi", task: { name: "hardware_benchmark", params: { quick: true } },
      runtimes: [{ name: "hardware" }], agents: { ids: ["u1"] }, runs_per_job: 3,
    });
  });
});

describe("progressFraction", () => {
  it("combines runs and samples", () => {
    expect(progressFraction({ run_index: 2, runs_total: 2, samples_done: 1, samples_total: 2 })).toBeCloseTo(0.75);
    expect(progressFraction({ run_index: 0, runs_total: 3 })).toBe(0);
    expect(progressFraction(null)).toBeNull();
  });
});

describe("formatModels", () => {
  it("names models and reads the placeholder as no model", () => {
    expect(formatModels([{ name: "a" }, { name: "b" }])).toBe("a, b");
    expect(formatModels([{ name: "none" }])).toBe("no model");
    expect(formatModels(undefined)).toBe("no model");
  });
});
