import { describe, expect, it } from "vitest";
import { ciMethodLabel, cvWarning, UNSTABLE_CV } from "./stats";

describe("cvWarning", () => {
  it("flags a coefficient of variation above the threshold, in percent", () => {
    expect(cvWarning(0.48)).toBe("unstable: CV 48%");
    expect(cvWarning(0.6913)).toBe("unstable: CV 69%");
  });
  it("stays quiet at or below the threshold and without a CV", () => {
    expect(cvWarning(UNSTABLE_CV)).toBeNull();
    expect(cvWarning(0.02)).toBeNull();
    expect(cvWarning(null)).toBeNull();
    expect(cvWarning(undefined)).toBeNull();
    expect(cvWarning(Number.NaN)).toBeNull();
  });
});

describe("ciMethodLabel", () => {
  it("names each method, and intervals stored before the method was recorded as Student's t", () => {
    expect(ciMethodLabel("lognormal_cox")).toBe("log-normal (modified Cox)");
    expect(ciMethodLabel("bootstrap_bca")).toBe("BCa bootstrap");
    expect(ciMethodLabel(null)).toBe("Student's t");
    expect(ciMethodLabel("something_new")).toBe("something_new");
  });
});
