/**
 * Shapes the OpenAPI schema leaves open (JSON columns and computed reads), written after the server's
 * serializers and selectors and the Agent Protocol (`common/protocol.py`).
 */
import type { components } from "./schema";

type S = components["schemas"];

export type Agent = S["Agent"];
export type AgentStatus = S["AgentStatusEnum"];
export type Job = S["Job"];
export type JobDetail = S["JobDetail"];
export type JobStatus = S["JobStatusEnum"];
export type Attempt = S["Attempt"];
export type ExperimentStatus = S["ExperimentStatusEnum"];
export type ExperimentRequest = S["ExperimentRequest"];

/** The task is write-only in the schema but every response carries it. */
export type Experiment = S["Experiment"] & { task?: { name: string; params: Record<string, unknown> } };

export interface ProbeStatus { name: string; available: boolean; reason?: string | null; duration_s?: number | null }
export interface GpuInfo {
  index: number;
  name: string;
  vendor: string;
  backend?: string | null;
  memory_total_bytes?: number | null;
  memory_free_bytes?: number | null;
  compute_capability?: string | null;
  architecture?: string | null;
  driver_version?: string | null;
  cuda_version?: string | null;
  power_limit_w?: number | null;
  tensor_core_generation?: number | null;
  tensor_core_precisions?: string[];
  mig_mode?: string | null;
  virtualization_mode?: string | null;
}
export interface FrameworkInfo { name: string; available: boolean; version?: string | null; reason?: string | null }
export interface MonitoringCapability { name: string; available: boolean; reason?: string | null }
export interface RuntimeCapability {
  name: string;
  access_mode: string;
  available: boolean;
  reason?: string | null;
  metrics?: string[];
  unavailable_metrics?: Record<string, string>;
}
export interface ModelInfo {
  name: string;
  source: string;
  path?: string | null;
  format?: string;
  architecture?: string | null;
  parameters?: number | null;
  size_bytes?: number | null;
  dtype?: string | null;
  repo_id?: string | null;
}
/** `Agent.capabilities`: the AgentInfo the agent advertised. */
export interface AgentInfo {
  name?: string;
  agent_version?: string;
  system?: { hostname?: string; os?: string; os_version?: string; kernel?: string; architecture?: string;
    python_version?: string; container?: string | null };
  cpu?: { model?: string; vendor?: string | null; architecture?: string; physical_cores?: number | null;
    logical_cores?: number | null; max_frequency_mhz?: number | null; isa_features?: string[] };
  memory?: { total_bytes?: number; available_bytes?: number | null; swap_total_bytes?: number | null };
  disk?: { path?: string; total_bytes?: number | null; free_bytes?: number | null } | null;
  gpus?: GpuInfo[];
  frameworks?: FrameworkInfo[];
  runtimes?: RuntimeCapability[];
  monitoring?: MonitoringCapability[];
  models?: ModelInfo[];
  probes?: ProbeStatus[];
  benchmarks?: { figures?: { name: string; device: string; precision: string; unit?: string; supported?: boolean;
    reason?: string | null; statistics?: MetricStatistics | null }[]; quick?: boolean; finished_at?: string | null } | null;
  detected_at?: string;
}

/** `Job.progress` / `Attempt.progress`: the latest JobProgress of the attempt. */
export interface JobProgress {
  status?: string;
  stage?: string;
  run_index?: number;
  runs_total?: number;
  samples_done?: number;
  samples_total?: number;
  message?: string | null;
}

export interface Transition {
  entity: string;
  from_state: string;
  to_state: string;
  reason: string;
  created_at: string;
  attempt: number | null;
  agent: string | null;
}

/** A planned job: the dry run gives the model and runtime specs, an experiment's own plan their names. */
export interface PlanJob { model: string | { name: string }; runtime: string | { name: string; params?: object };
  agent_id: string; agent_name: string | null; hardware_fingerprint: string }

/** Name of a spec given either as a name or as `{name, ...}`. */
export function specName(spec: string | { name: string }): string {
  return typeof spec === "string" ? spec : spec.name;
}
export interface Unrunnable { model: string; runtime: string; reason: string;
  agents: { agent_id: string; agent_name: string; reason: string }[] }
/** A selected agent left out of one combination (also where another agent runs it). */
export interface Excluded { model: string; runtime: string; agent_id: string; agent_name: string | null; reason: string }
export interface Plan { jobs: PlanJob[]; unrunnable: Unrunnable[]; excluded?: Excluded[] }

// --- catalog (GET /api/v1/catalog/) ---------------------------------------------------------------

/** A JSON Schema object as the catalog gives it (pydantic's `model_json_schema()`). */
export interface JsonSchema {
  type?: string;
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  properties?: Record<string, JsonSchema>;
  anyOf?: JsonSchema[];
}
export interface CatalogTask { name: string; description: string; needs_model: boolean; server_metrics: string[];
  params_schema: JsonSchema }
export interface CatalogRuntime { name: string; access_mode: string; description: string; framework: string | null;
  needs_local_model: boolean; tasks: string[]; metrics: string[]; gpu_metrics: string[]; params_schema: JsonSchema }
/** Name, unit and direction of a metric (catalog and experiment results). */
export interface MetricInfo { name: string; unit: string; description: string; higher_is_better: boolean | null;
  server_side?: boolean }
export interface Catalog {
  tasks: CatalogTask[];
  runtimes: CatalogRuntime[];
  models: { name: string; repo_id?: string; aliases?: string[] }[];
  metrics: MetricInfo[];
  benchmark_metric_pattern: string;
  no_model_name: string;
}

// --- measured peaks -------------------------------------------------------------------------------

/** `Agent.summary.peaks`: the medians of the agent's latest hardware benchmark (null before any). */
export interface AgentPeaks {
  measured_at: string | null;
  quick: boolean;
  figures: Record<string, { value: number | null; unit: string }>;
  unsupported: Record<string, string>;
}

/** Efficiency of a finished LLM job against its agent's measured peaks (null for benchmark jobs). */
export interface Efficiency {
  device: string | null;
  dtype: string | null;
  parameters: number | null;
  weight_bytes: number | null;
  decode_tokens_per_s: number | null;
  decode_bandwidth_gbps: number | null;
  peak_bandwidth_metric: string | null;
  peak_bandwidth_gbps: number | null;
  bandwidth_fraction: number | null;
  decode_tflops: number | null;
  peak_tflops_metric: string | null;
  peak_tflops: number | null;
  compute_fraction: number | null;
  peaks_measured_at: string | null;
  unavailable: Partial<Record<"bandwidth_fraction" | "compute_fraction", string>>;
}

/** Time series sampled during a run: `t` (seconds from start) plus one list per signal. */
export type Telemetry = Record<string, number[]>;

export interface MetricStatistics {
  n: number;
  mean: number | null;
  std: number | null;
  min: number | null;
  max: number | null;
  median: number | null;
  p90?: number | null;
  p95?: number | null;
  p99?: number | null;
  cv?: number | null;
  ci95: [number, number] | null;
  outliers?: number[];
  values: number[];
  unit?: string;
}

export interface ExperimentResultJob {
  job: number;
  status: JobStatus;
  model: string;
  runtime: string;
  agent: string | null;
  agent_name: string | null;
  hardware_fingerprint: string;
  statistics: Record<string, MetricStatistics>;
  cold_start: Record<string, unknown> | null;
  unavailable_metrics: Record<string, string>;
  efficiency?: Efficiency | null;
}
export interface ExperimentResults {
  experiment: number;
  status: ExperimentStatus;
  unrunnable: Unrunnable[];
  /** Every metric present in the jobs' statistics, with unit and direction. */
  metrics?: MetricInfo[];
  jobs: ExperimentResultJob[];
}

export interface ComparisonCell {
  job: number;
  status: JobStatus;
  mean: number | null;
  std: number | null;
  n: number;
  ci95?: [number, number] | null;
  tokens_per_dollar?: number;
  tokens_per_joule?: number;
  bandwidth_fraction?: number;
}
export interface ComparisonColumn { key: string; agent: string | null; agent_name: string;
  hardware_fingerprint: string; cost_per_hour: number | null }
export interface ComparisonRow { model: string; runtime: string; cells: Record<string, ComparisonCell> }
export interface Comparison {
  experiment: number;
  metric: string;
  unit: string;
  higher_is_better: boolean | null;
  columns: ComparisonColumn[];
  rows: ComparisonRow[];
}

export interface Sample {
  id: string;
  title: string | null;
  output: string;
  reference: string | null;
  prompt_tokens: number | null;
  output_tokens: number | null;
  metrics: Record<string, number | null>;
  finish_reason: string | null;
  error: string | null;
}
export interface RunResult {
  run_index: number;
  cold_start: boolean;
  metrics: Record<string, number | null>;
  unavailable_metrics: Record<string, string>;
  started_at: string | null;
  finished_at: string | null;
  telemetry?: Telemetry | null;
  samples?: Sample[];
}
export interface JobResults {
  job: number;
  experiment: number;
  status: JobStatus;
  model: string;
  runtime: string;
  agent: string | null;
  statistics: Record<string, MetricStatistics>;
  cold_start: Record<string, unknown> | null;
  unavailable_metrics: Record<string, string>;
  access_mode: string | null;
  error: string | null;
  efficiency?: Efficiency | null;
  execution?: Record<string, unknown> | null;
  runs: RunResult[];
}

/** A websocket event of `/ws/events/`. */
export type ServerEvent =
  | { type: "job.updated"; data: Job }
  | { type: "experiment.updated"; data: Experiment }
  | { type: "agent.updated"; data: Agent }
  | { type: "subscribed" | "unsubscribed"; experiment?: number; job?: number; agents?: boolean }
  | { type: "error"; message: string }
  | { type: "pong" };
