import { describe, expect, it } from "vitest";
import {
  ApiError, describeError, errorLines, errorsAt, flattenErrors, isForbidden, isThrottled, parseRetryAfter,
} from "./errors";

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

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-11-30T08:00:00Z");
  it("reads delay-seconds", () => {
    expect(parseRetryAfter("57", now)).toBe(57);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
  });
  it("reads an HTTP date (a past one is no wait)", () => {
    expect(parseRetryAfter("Mon, 30 Nov 2026 08:00:30 GMT", now)).toBe(30);
    expect(parseRetryAfter("Mon, 30 Nov 2026 07:59:00 GMT", now)).toBe(0);
  });
  it("gives null when absent or unreadable", () => {
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter("", now)).toBeNull();
    expect(parseRetryAfter("soon", now)).toBeNull();
  });
});

describe("refusals", () => {
  it("carry the server's reason of a 403 and the wait of a 429", () => {
    const forbidden = new ApiError(403, { detail: "Only the experiment's owner or a fleet admin may cancel it." }, "403");
    expect(isForbidden(forbidden)).toBe(true);
    expect(forbidden.message).toBe("Only the experiment's owner or a fleet admin may cancel it.");
    expect(describeError(forbidden).general).toEqual(["Only the experiment's owner or a fleet admin may cancel it."]);
    const throttled = new ApiError(429, { detail: "Request was throttled." }, "429", 12);
    expect(isThrottled(throttled)).toBe(true);
    expect(isForbidden(throttled)).toBe(false);
    expect(throttled.retryAfter).toBe(12);
    expect(isThrottled(new Error("x"))).toBe(false);
  });
});
