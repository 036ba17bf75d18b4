/**
 * Short names for the API's types, generated from the server's OpenAPI schema (`npm run generate` →
 * `schema.d.ts`). The role and ownership fields below are added by hand until the schema carries them.
 */
import type { components } from "./schema";

type S = components["schemas"];

export type Agent = S["Agent"];
export type AgentInfo = S["AgentInfo"];
export type AgentPeaks = S["AgentPeaks"];
export type AgentStatus = S["AgentStatusEnum"];
export type AgentActivity = S["AgentActivityEnum"];
export type AgentMode = S["AgentModeEnum"];
export type Attempt = S["Attempt"];
export type AttemptStatus = S["AttemptStatusEnum"];
export type Catalog = S["Catalog"];
export type Comparison = S["Comparison"];
export type Efficiency = S["Efficiency"];
export type Excluded = S["Excluded"];
export type Experiment = S["Experiment"] & { can_manage: boolean };
export type ExperimentRequest = S["ExperimentRequest"];
export type ExperimentResultJob = S["ExperimentJobResults"];
export type ExperimentResults = S["ExperimentResults"];
export type ExperimentStatus = S["ExperimentStatusEnum"];
export type Job = S["Job"] & { can_manage: boolean };
export type JobDetail = S["JobDetail"] & { can_manage: boolean };
export type JobProgress = S["JobProgress"];
export type JobResults = S["JobResults"];
export type JobStatus = S["JobStatusEnum"];
export type MetricDescription = S["MetricDescription"];
export type MetricStatistics = S["JobMetricStatistics"];
export type Plan = S["Plan"];
export type RunResults = S["RunResults"];
export type Role = "viewer" | "operator" | "fleet-admin";
/** What the user may do, as the server decides it from the user's role. */
export interface Permissions {
  view: boolean;
  create_experiments: boolean;
  manage_all_experiments: boolean;
  manage_agents: boolean;
}
export type SessionUser = S["SessionUser"] & { role: Role | null; permissions: Permissions };
export type Telemetry = RunResults["telemetry"];
export type Transition = S["Transition"];
export type Unrunnable = S["Unrunnable"];
