/**
 * What the logged-in user may do, from the server's answers: the user's role and permissions (`/auth/me/`,
 * `/auth/session/`) and the `can_manage` flag of each experiment and job. The UI offers only these actions;
 * the server still decides (and a refusal shows its message).
 */
import type { ExperimentStatus, JobStatus, Permissions, Role, SessionUser } from "../api/models";
import { isExperimentTerminal, isJobRetryable, isJobTerminal, JOB_ACTIVE_STATUSES } from "../api/statuses";

/** How each role is named in the UI, and what it may do. */
export const ROLES: Record<Role, { label: string; description: string }> = {
  viewer: { label: "viewer", description: "reads every experiment, job, result and agent" },
  operator: { label: "operator", description: "also creates experiments and manages their own" },
  "fleet-admin": { label: "fleet admin", description: "manages agents and everyone's experiments" },
};

/** No permission at all (not logged in, or a user without a role). */
export const NO_PERMISSIONS: Readonly<Permissions> = Object.freeze({
  view: false, create_experiments: false, manage_all_experiments: false, manage_agents: false,
});

/** The user's permissions; none without a user or without a role. */
export function permissionsOf(user: Pick<SessionUser, "role" | "permissions"> | null | undefined): Permissions {
  if (!user || user.role === null || !user.permissions) return NO_PERMISSIONS;
  return user.permissions;
}

/** Whether the user may use the UI at all (a user without a role is refused by every API call). */
export function hasAccess(user: Pick<SessionUser, "role" | "permissions"> | null | undefined): boolean {
  return permissionsOf(user).view;
}

/** The role as the header shows it ("no role" for a user without one). */
export function roleLabel(role: Role | null | undefined): string {
  return role ? ROLES[role].label : "no role";
}

/** Which actions an experiment's page offers. */
export interface ExperimentActions {
  /** Change its name and description. */
  rename: boolean;
  /** Cancel its unfinished jobs. */
  cancel: boolean;
  /** Delete it (the server refuses while jobs are on agents: cancel first). */
  remove: boolean;
}

/** Whether any job of the experiment is on an agent (from its per-status job counts). */
export function hasActiveJobs(jobCounts: Record<string, number> | undefined | null): boolean {
  return Object.entries(jobCounts ?? {}).some(([status, n]) => n > 0 && JOB_ACTIVE_STATUSES.has(status));
}

/** The actions on an experiment: only when the user may manage it, and only those its state allows. */
export function experimentActions(exp: { status: ExperimentStatus; can_manage?: boolean;
  job_counts?: Record<string, number> | null }): ExperimentActions {
  const manage = exp.can_manage === true;
  return {
    rename: manage,
    cancel: manage && !isExperimentTerminal(exp.status),
    remove: manage && !hasActiveJobs(exp.job_counts),
  };
}

/** The actions on a job: cancel while unfinished, retry once it failed; only when the user may manage it. */
export function jobActions(job: { status: JobStatus; can_manage?: boolean }): { cancel: boolean; retry: boolean } {
  const manage = job.can_manage === true;
  return { cancel: manage && !isJobTerminal(job.status), retry: manage && isJobRetryable(job.status) };
}

/** Which actions the Agents page offers. */
export interface AgentActions {
  /** Change name, labels and cost. */
  edit: boolean;
  /** Ask the agent to detect its host again (the server cannot call a pull agent: offered, disabled, explained). */
  refresh: boolean;
  /** Activate or deactivate. */
  toggle: boolean;
  /** Remove from the fleet. */
  remove: boolean;
  /** Start a hardware benchmark on it (creates an experiment; disabled, explained, while it is deactivated). */
  benchmark: boolean;
}

/** The actions on one agent: managing it needs `manage_agents`, benchmarking it `create_experiments`. */
export function agentActions(permissions: Permissions): AgentActions {
  const manage = permissions.manage_agents;
  return {
    edit: manage,
    refresh: manage,
    toggle: manage,
    remove: manage,
    benchmark: permissions.create_experiments,
  };
}

/** Whether the user may register agents. */
export function canRegisterAgents(permissions: Permissions): boolean {
  return permissions.manage_agents;
}

/** Whether the user may create experiments. */
export function canCreateExperiments(permissions: Permissions): boolean {
  return permissions.create_experiments;
}

/**
 * Keep the `can_manage` flag of a cached experiment or job when an update lacks it (a payload that does not say
 * must not take an action away nor grant one).
 */
export function keepCanManage<T extends { can_manage?: boolean }>(previous: T | undefined, next: T): T {
  if (next.can_manage !== undefined || previous?.can_manage === undefined) return next;
  return { ...next, can_manage: previous.can_manage };
}
