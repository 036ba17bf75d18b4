/**
 * Reading statistics: the instability flag of a high coefficient of variation, and the names of the methods
 * the server uses for 95% confidence intervals (see common/stats.py and docs/architecture.md, "Statistics").
 */

/**
 * Coefficient of variation (std / mean) above which a figure is flagged unstable: its mean says little.
 * The server's copy is `UNSTABLE_CV` in common/descriptive.py (same 10%, the threshold at which pyperf warns).
 */
export const UNSTABLE_CV = 0.1;

/** `"unstable: CV 48%"` for a coefficient of variation above {@link UNSTABLE_CV}, else null. */
export function cvWarning(cv: number | null | undefined): string | null {
  if (cv === null || cv === undefined || !Number.isFinite(cv) || Math.abs(cv) <= UNSTABLE_CV) return null;
  return `unstable: CV ${Math.round(Math.abs(cv) * 100)}%`;
}

/** Words for each `ci_method` (the server's copy is `CI_METHOD_LABELS` in common/stats.py). */
export const CI_METHOD_LABELS: Record<string, string> = {
  lognormal_cox: "log-normal (modified Cox)",
  bootstrap_bca: "BCa bootstrap",
  student_t_nonneg: "Student's t, cut at 0",
  student_t: "Student's t",
};

/** How a 95% CI of the mean was computed, in words (intervals stored before the method was recorded: Student's t). */
export function ciMethodLabel(method: string | null | undefined): string {
  return CI_METHOD_LABELS[method || "student_t"] ?? method ?? "";
}
