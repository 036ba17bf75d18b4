import { describe, expect, it } from "vitest";
import {
  EXPERIMENT_TERMINAL_STATUSES, isExperimentTerminal, isJobRetryable, isJobTerminal, JOB_ACTIVE_STATUSES,
  JOB_TERMINAL_STATUSES,
} from "./statuses";

describe("status sets", () => {
  it("classify job statuses", () => {
    expect([...JOB_TERMINAL_STATUSES].sort()).toEqual(["cancelled", "completed", "failed", "timed_out"]);
    expect([...JOB_ACTIVE_STATUSES].sort()).toEqual(["assigned", "running"]);
    expect(isJobTerminal("pending")).toBe(false);
    expect(isJobRetryable("timed_out")).toBe(true);
    expect(isJobRetryable("completed")).toBe(false);
  });
  it("classify experiment statuses", () => {
    expect([...EXPERIMENT_TERMINAL_STATUSES].sort()).toEqual(["cancelled", "completed", "failed", "partially_failed"]);
    expect(isExperimentTerminal("running")).toBe(false);
  });
});
