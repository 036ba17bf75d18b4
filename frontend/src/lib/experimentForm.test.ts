import { describe, expect, it } from "vitest";
import { initialForm, runtimeIndex, toRequest, type FormState } from "./experimentForm";
import { progressFraction } from "./format";

describe("toRequest", () => {
  it("builds the API body with typed numbers and without empty optional params", () => {
    const form: FormState = { ...initialForm, name: " smoke ", models: [{ name: "smollm2-135m-instruct", dtype: "" }],
      task: { ...initialForm.task, num_samples: "2", max_new_tokens: "12" }, runsPerJob: "2" };
    const body = toRequest(form);
    expect(body.name).toBe("smoke");
    expect(body.task).toEqual({ name: "wikipedia_summarization", params: { num_samples: 2, seed: 42, max_new_tokens: 12, source: "packaged" } });
    expect(body.models).toEqual([{ name: "smollm2-135m-instruct" }]);
    expect(body.runtimes).toEqual([{ name: "transformers", params: { device: "auto", dtype: "auto" } }]);
    expect(body.agents).toEqual({ all: true });
    expect(body.runs_per_job).toBe(2);
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
});

describe("progressFraction", () => {
  it("combines runs and samples", () => {
    expect(progressFraction({ run_index: 2, runs_total: 2, samples_done: 1, samples_total: 2 })).toBeCloseTo(0.75);
    expect(progressFraction({ run_index: 0, runs_total: 3 })).toBe(0);
    expect(progressFraction(null)).toBeNull();
  });
});
