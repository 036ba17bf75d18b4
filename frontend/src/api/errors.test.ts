import { describe, expect, it } from "vitest";
import { ApiError, describeError, errorLines, errorsAt, flattenErrors } from "./errors";

describe("flattenErrors", () => {
  it("flattens nested DRF errors into dotted paths", () => {
    const body = { task: { params: { num_samples: ["Input should be less than or equal to 1000"] } },
      runs_per_job: ["runs_per_job must be between 1 and 100"] };
    expect(flattenErrors(body)).toEqual({
      "task.params.num_samples": ["Input should be less than or equal to 1000"],
      runs_per_job: ["runs_per_job must be between 1 and 100"],
    });
  });

  it("keys list items by index, as a string key or as a list position", () => {
    expect(flattenErrors({ models: { "0": { name: ["unknown model"] } } })).toEqual({ "models.0.name": ["unknown model"] });
    expect(flattenErrors({ runtimes: [{}, { params: { base_url: ["required"] } }] }))
      .toEqual({ "runtimes.1.params.base_url": ["required"] });
  });

  it("puts non_field_errors and detail under the parent path", () => {
    expect(flattenErrors({ agents: { non_field_errors: ["give exactly one"] }, detail: "nope" }))
      .toEqual({ agents: ["give exactly one"], "": ["nope"] });
  });

  it("accepts plain strings", () => {
    expect(flattenErrors({ agents: { ids: "unknown agent id(s): x" } })).toEqual({ "agents.ids": ["unknown agent id(s): x"] });
  });
});

describe("errorsAt and errorLines", () => {
  const errors = { "task.params": ["bad"], "task.params.seed": ["must be >= 0"], name: ["required"] };
  it("returns one field or everything below it", () => {
    expect(errorsAt(errors, "name")).toEqual(["required"]);
    expect(errorsAt(errors, "task.params", true)).toEqual(["bad", "seed: must be >= 0"]);
    expect(errorsAt(errors, "missing")).toEqual([]);
  });
  it("renders lines with their paths", () => {
    expect(errorLines({ "": ["general"], name: ["required"] })).toEqual(["general", "name: required"]);
  });
});

describe("ApiError", () => {
  it("uses the server's messages, else the fallback", () => {
    expect(new ApiError(400, { name: ["required"] }, "400").message).toBe("name: required");
    expect(new ApiError(502, undefined, "502 Bad Gateway").message).toBe("502 Bad Gateway");
    expect(new ApiError(409, { detail: "already finished" }, "409").fields).toEqual({ "": ["already finished"] });
  });
});

describe("describeError", () => {
  it("reports nothing when there is no error", () => {
    expect(describeError(null)).toEqual({ fields: {}, general: [], lines: [], refused: false });
  });

  it("splits a refusal into field and general messages", () => {
    const report = describeError(new ApiError(400, { url: ["unsafe"], detail: "no" }, "400"));
    expect(report.refused).toBe(true);
    expect(report.fields.url).toEqual(["unsafe"]);
    expect(report.general).toEqual(["no"]);
    expect(report.lines).toEqual(["url: unsafe", "no"]);
  });

  it("shows any other error's message as a general message", () => {
    expect(describeError(new Error("the server cannot be reached"))).toEqual({
      fields: {}, general: ["the server cannot be reached"], lines: ["the server cannot be reached"], refused: false,
    });
  });
});
