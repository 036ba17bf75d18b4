/**
 * Short names for the API's types. Every type here is generated from the server's OpenAPI schema
 * (`npm run generate` → `schema.d.ts`): nothing is declared by hand.
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
export type Experiment = S["Experiment"];
export type ExperimentRequest = S["ExperimentRequest"];
export type ExperimentResultJob = S["ExperimentJobResults"];
export type ExperimentResults = S["ExperimentResults"];
export type ExperimentStatus = S["ExperimentStatusEnum"];
export type Job = S["Job"];
export type JobDetail = S["JobDetail"];
export type JobProgress = S["JobProgress"];
export type JobResults = S["JobResults"];
export type JobStatus = S["JobStatusEnum"];
export type MetricDescription = S["MetricDescription"];
export type MetricStatistics = S["JobMetricStatistics"];
export type Plan = S["Plan"];
/** A latency's statistics over every warm request (`scope: "request"`), next to the per-run `MetricStatistics`. */
export type RequestStatistics = S["RequestStatistics"];
export type RunResults = S["RunResults"];
/** Where a stored result is in server-side scoring (ROUGE, statistics): `scoring`, `scored` or `failed`. */
export type ScoringStatus = S["ScoringStatusEnum"];
export type Permissions = S["Permissions"];
export type Role = S["RoleEnum"];
/** The logged-in user with role and permissions (`/auth/me/`, `/auth/session/`, the token API's `user`). */
export type SessionUser = S["User"];
export type Telemetry = RunResults["telemetry"];
export type Transition = S["Transition"];
export type Unrunnable = S["Unrunnable"];
