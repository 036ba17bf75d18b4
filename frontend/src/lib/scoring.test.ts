import { describe, expect, it } from "vitest";
import type { ExperimentResults } from "../api/models";
import { awaitsScoring, isScoring, scoringNotice } from "./scoring";

describe("scoring", () => {
  it("knows a result still being scored", () => {
    expect(isScoring("scoring")).toBe(true);
    expect(isScoring("scored")).toBe(false);
    expect(isScoring("failed")).toBe(false);
    expect(isScoring(null)).toBe(false);
  });
  it("says how many jobs are being scored, and nothing when none is", () => {
    expect(scoringNotice(1)).toMatch(/^Scoring the results of 1 job \(ROUGE, statistics\)/);
    expect(scoringNotice(3)).toMatch(/of 3 jobs/);
    expect(scoringNotice(0)).toBeNull();
    expect(scoringNotice(undefined)).toBeNull();
  });
  it("finds a job still scoring in cached results", () => {
    const results = { jobs: [{ job: 1, scoring_status: "scoring" }, { job: 2, scoring_status: "scored" }] } as
      unknown as ExperimentResults;
    expect(awaitsScoring(results, 1)).toBe(true);
    expect(awaitsScoring(results, 2)).toBe(false);
    expect(awaitsScoring(results, 3)).toBe(false);
    expect(awaitsScoring(undefined, 1)).toBe(false);
  });
});
