import { describe, expect, it } from "vitest";
import type { Permissions, SessionUser } from "../api/models";
import {
  agentActions, canCreateExperiments, canRegisterAgents, experimentActions, hasAccess, hasActiveJobs, jobActions,
  keepCanManage, NO_PERMISSIONS, permissionsOf, roleLabel,
} from "./permissions";

const VIEWER: Permissions = { view: true, create_experiments: false, manage_all_experiments: false, manage_agents: false };
const OPERATOR: Permissions = { ...VIEWER, create_experiments: true };
const ADMIN: Permissions = { view: true, create_experiments: true, manage_all_experiments: true, manage_agents: true };

function user(role: SessionUser["role"], permissions: Permissions): Pick<SessionUser, "role" | "permissions"> {
  return { role, permissions };
}

describe("permissions of the user", () => {
  it("are the server's for a user with a role", () => {
    expect(permissionsOf(user("operator", OPERATOR))).toEqual(OPERATOR);
    expect(hasAccess(user("viewer", VIEWER))).toBe(true);
  });
  it("are none without a user or without a role, whatever the payload says", () => {
    expect(permissionsOf(null)).toEqual(NO_PERMISSIONS);
    expect(permissionsOf(undefined)).toEqual(NO_PERMISSIONS);
    expect(permissionsOf(user(null, ADMIN))).toEqual(NO_PERMISSIONS);
    expect(hasAccess(user(null, VIEWER))).toBe(false);
  });
  it("name the role for the header", () => {
    expect(roleLabel("viewer")).toBe("viewer");
    expect(roleLabel("operator")).toBe("operator");
    expect(roleLabel("fleet-admin")).toBe("fleet admin");
    expect(roleLabel(null)).toBe("no role");
  });
  it("let only operators and fleet admins create experiments, only fleet admins register agents", () => {
    expect([VIEWER, OPERATOR, ADMIN].map(canCreateExperiments)).toEqual([false, true, true]);
    expect([VIEWER, OPERATOR, ADMIN].map(canRegisterAgents)).toEqual([false, false, true]);
  });
});

describe("experiment actions", () => {
  it("are all offered on a running experiment the user may manage, but delete waits for the jobs", () => {
    expect(experimentActions({ status: "running", can_manage: true, job_counts: { running: 1, pending: 2 } }))
      .toEqual({ rename: true, cancel: true, remove: false });
    expect(experimentActions({ status: "pending", can_manage: true, job_counts: { pending: 2 } }))
      .toEqual({ rename: true, cancel: true, remove: true });
  });
  it("leave out cancel once the experiment finished", () => {
    expect(experimentActions({ status: "completed", can_manage: true, job_counts: { completed: 3 } }))
      .toEqual({ rename: true, cancel: false, remove: true });
  });
  it("are none on an experiment the user may not manage (or when the server did not say)", () => {
    const none = { rename: false, cancel: false, remove: false };
    expect(experimentActions({ status: "running", can_manage: false, job_counts: {} })).toEqual(none);
    expect(experimentActions({ status: "failed" })).toEqual(none);
  });
  it("count only jobs on agents as active", () => {
    expect(hasActiveJobs({ assigned: 1 })).toBe(true);
    expect(hasActiveJobs({ running: 0, pending: 4, failed: 1 })).toBe(false);
    expect(hasActiveJobs(undefined)).toBe(false);
  });
});

describe("job actions", () => {
  it("cancel while unfinished and retry after a failure, for a job the user may manage", () => {
    expect(jobActions({ status: "pending", can_manage: true })).toEqual({ cancel: true, retry: false });
    expect(jobActions({ status: "running", can_manage: true })).toEqual({ cancel: true, retry: false });
    expect(jobActions({ status: "failed", can_manage: true })).toEqual({ cancel: false, retry: true });
    expect(jobActions({ status: "completed", can_manage: true })).toEqual({ cancel: false, retry: false });
  });
  it("are none for another user's job", () => {
    expect(jobActions({ status: "running", can_manage: false })).toEqual({ cancel: false, retry: false });
    expect(jobActions({ status: "failed", can_manage: false })).toEqual({ cancel: false, retry: false });
  });
});

describe("agent actions", () => {
  it("are all for a fleet admin", () => {
    expect(agentActions(ADMIN)).toEqual({ edit: true, refresh: true, toggle: true, remove: true, benchmark: true });
  });
  it("are only the benchmark (an experiment) for an operator, and nothing for a viewer", () => {
    expect(agentActions(OPERATOR)).toEqual({ edit: false, refresh: false, toggle: false, remove: false, benchmark: true });
    expect(agentActions(VIEWER)).toEqual({ edit: false, refresh: false, toggle: false, remove: false, benchmark: false });
    expect(agentActions(NO_PERMISSIONS).benchmark).toBe(false);
  });
});

describe("live updates keep can_manage", () => {
  type Item = { id: number; can_manage?: boolean };
  const cached: Item = { id: 1, can_manage: true };
  it("when the update does not carry it", () => {
    expect(keepCanManage<Item>(cached, { id: 1 })).toEqual({ id: 1, can_manage: true });
  });
  it("but take the update's own value", () => {
    expect(keepCanManage<Item>(cached, { id: 1, can_manage: false })).toEqual({ id: 1, can_manage: false });
    expect(keepCanManage<Item>(undefined, { id: 1 })).toEqual({ id: 1 });
  });
});
