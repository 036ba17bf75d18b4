/**
 * The status vocabulary's terminal and active sets, in one place. Each table lists every value of a generated
 * status enum, so a status the server adds fails the type check until it is classified here.
 */
import type { AgentActivity, AgentStatus, AttemptStatus, ExperimentStatus, JobStatus } from "./models";

/** Any status the API reports (experiments, jobs, attempts, agents and their activity). */
export type AnyStatus = ExperimentStatus | JobStatus | AttemptStatus | AgentStatus | AgentActivity;

type Phase = "waiting" | "active" | "terminal";

const JOB_PHASES: Record<JobStatus, Phase> = {
  pending: "waiting",
  assigned: "active",
  running: "active",
  completed: "terminal",
  failed: "terminal",
  cancelled: "terminal",
  timed_out: "terminal",
};

const EXPERIMENT_PHASES: Record<ExperimentStatus, Phase> = {
  pending: "waiting",
  running: "active",
  completed: "terminal",
  partially_failed: "terminal",
  failed: "terminal",
  cancelled: "terminal",
};

function withPhase(phases: Record<string, Phase>, phase: Phase): ReadonlySet<string> {
  return new Set(Object.entries(phases).filter(([, p]) => p === phase).map(([status]) => status));
}

/** Job statuses after which nothing more happens to the job (unless it is retried). */
export const JOB_TERMINAL_STATUSES = withPhase(JOB_PHASES, "terminal");
/** Job statuses in which the job is on an agent. */
export const JOB_ACTIVE_STATUSES = withPhase(JOB_PHASES, "active");
/** Experiment statuses after which none of its jobs runs any more. */
export const EXPERIMENT_TERMINAL_STATUSES = withPhase(EXPERIMENT_PHASES, "terminal");

/** Whether a job has finished (completed, failed, cancelled or timed out). */
export function isJobTerminal(status: JobStatus): boolean {
  return JOB_TERMINAL_STATUSES.has(status);
}

/** Whether a finished job may be sent back to pending (every finished job but a completed one). */
export function isJobRetryable(status: JobStatus): boolean {
  return isJobTerminal(status) && status !== "completed";
}

/** Whether an experiment has finished. */
export function isExperimentTerminal(status: ExperimentStatus): boolean {
  return EXPERIMENT_TERMINAL_STATUSES.has(status);
}
