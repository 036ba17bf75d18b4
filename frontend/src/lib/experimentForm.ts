/** The experiment form's state and its translation into the API's request body (pure: unit-tested). */
import type { Catalog, Excluded, ExperimentRequest, Unrunnable } from "../api/models";

export type RuntimeName = "transformers" | "openai" | "vllm" | "hardware";
/** Runtimes the form has fields for, in display order. */
export const RUNTIME_NAMES: RuntimeName[] = ["transformers", "vllm", "openai", "hardware"];

/** Tasks the form has a parameters UI for. */
export const WIKIPEDIA_TASK = "wikipedia_summarization";
export const HARDWARE_TASK = "hardware_benchmark";

/** Used while the catalog loads (or if it cannot): the tasks each runtime runs and which tasks need a model. */
const FALLBACK_RUNTIME_TASKS: Record<RuntimeName, string[]> = {
  transformers: [WIKIPEDIA_TASK],
  vllm: [WIKIPEDIA_TASK],
  openai: [WIKIPEDIA_TASK],
  hardware: [HARDWARE_TASK],
};
const FALLBACK_NO_MODEL_TASKS = new Set([HARDWARE_TASK]);

export interface FormState {
  name: string;
  description: string;
  taskName: string;
  task: {
    num_samples: string;
    seed: string;
    max_new_tokens: string;
    source: "packaged" | "wikipedia_api" | "jsonl";
    jsonl_path: string;
    titles: string;
    temperature: string;
    max_document_chars: string;
  };
  /** Parameters of the `hardware_benchmark` task. */
  hardware: { quick: boolean; device: string; repeats: string };
  models: { name: string; dtype: string }[];
  runtimes: Record<RuntimeName, { enabled: boolean; params: Record<string, string> }>;
  agentMode: "all" | "ids" | "labels";
  agentIds: string[];
  agentLabels: string[];
  runsPerJob: string;
}

export const initialForm: FormState = {
  name: "",
  description: "",
  taskName: WIKIPEDIA_TASK,
  task: { num_samples: "5", seed: "42", max_new_tokens: "64", source: "packaged", jsonl_path: "", titles: "",
    temperature: "", max_document_chars: "" },
  hardware: { quick: true, device: "auto", repeats: "" },
  models: [{ name: "", dtype: "" }],
  runtimes: {
    transformers: { enabled: true, params: { device: "auto", dtype: "auto", threads: "" } },
    vllm: { enabled: false, params: { base_url: "http://127.0.0.1:8000/v1", served_model: "", api_key_env: "", timeout_s: "" } },
    openai: { enabled: false, params: { base_url: "", served_model: "", api_key_env: "", endpoint: "chat", timeout_s: "" } },
    hardware: { enabled: false, params: { device: "auto" } },
  },
  agentMode: "all",
  agentIds: [],
  agentLabels: [],
  runsPerJob: "3",
};

const NUMERIC = new Set(["num_samples", "seed", "max_new_tokens", "temperature", "max_document_chars", "threads",
  "timeout_s", "repeats"]);

/** A text input's value as JSON: numbers where the field is numeric (a bad number is sent as typed, for the
 *  server to name), nothing when empty (the server's default applies). */
function value(key: string, raw: string): unknown {
  const text = raw.trim();
  if (text === "") return undefined;
  if (NUMERIC.has(key)) {
    const n = Number(text);
    return Number.isFinite(n) ? n : text;
  }
  return text;
}

function params(entries: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, raw] of Object.entries(entries)) {
    const v = value(k, raw);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Whether a task needs a model (from the catalog; a task it does not know is assumed to need one). */
export function taskNeedsModel(taskName: string, catalog?: Catalog | null): boolean {
  const task = catalog?.tasks.find((t) => t.name === taskName);
  if (task) return task.needs_model;
  return !FALLBACK_NO_MODEL_TASKS.has(taskName);
}

/** The runtimes (among those the form knows) that can run `taskName`, in display order. */
export function runtimesForTask(taskName: string, catalog?: Catalog | null): RuntimeName[] {
  return RUNTIME_NAMES.filter((r) => {
    const entry = catalog?.runtimes.find((x) => x.name === r);
    return entry ? entry.tasks.includes(taskName) : !catalog && FALLBACK_RUNTIME_TASKS[r].includes(taskName);
  });
}

/** The runtimes sent in the request: offered for the task and switched on, in display order. */
export function enabledRuntimes(form: FormState, catalog?: Catalog | null): RuntimeName[] {
  return runtimesForTask(form.taskName, catalog).filter((r) => form.runtimes[r].enabled);
}

/** Switch the form to another task; when none of the runtimes offered for it is on, the first one is turned on. */
export function selectTask(form: FormState, taskName: string, catalog?: Catalog | null): FormState {
  const next = { ...form, taskName };
  const offered = runtimesForTask(taskName, catalog);
  const first = offered[0];
  if (first && !offered.some((r) => form.runtimes[r].enabled)) {
    next.runtimes = { ...form.runtimes, [first]: { ...form.runtimes[first], enabled: true } };
  }
  return next;
}

/** The task's parameters as the API expects them. */
function taskParams(form: FormState): Record<string, unknown> {
  if (form.taskName === HARDWARE_TASK) {
    const out: Record<string, unknown> = { quick: form.hardware.quick, device: form.hardware.device };
    const repeats = value("repeats", form.hardware.repeats);
    if (repeats !== undefined) out.repeats = repeats;
    return out;
  }
  if (form.taskName !== WIKIPEDIA_TASK) return {};
  const { titles, ...rest } = form.task;
  const out = params(rest);
  const titleList = titles.split("\n").map((t) => t.trim()).filter(Boolean);
  if (titleList.length) out.titles = titleList;
  return out;
}

/** The request body of `POST /experiments/` (and of the plan preview); `models` is left out for tasks that need
 *  no model. */
export function toRequest(form: FormState, catalog?: Catalog | null): ExperimentRequest {
  const runs = Number(form.runsPerJob.trim());
  const body: ExperimentRequest = {
    name: form.name.trim(),
    description: form.description,
    task: { name: form.taskName, params: taskParams(form) },
    runtimes: enabledRuntimes(form, catalog).map((r) => ({ name: r, params: params(form.runtimes[r].params) })),
    agents: form.agentMode === "all" ? { all: true }
      : form.agentMode === "ids" ? { ids: form.agentIds } : { labels: form.agentLabels },
    // Text that is not a number goes as 0, which the server refuses with the field's range message.
    runs_per_job: form.runsPerJob.trim() !== "" && Number.isFinite(runs) ? runs : 0,
  };
  if (taskNeedsModel(form.taskName, catalog)) {
    body.models = form.models
      .filter((m, i) => m.name.trim() !== "" || i === 0)
      .map((m) => ({ name: m.name.trim(), ...(m.dtype ? { dtype: m.dtype as "auto" } : {}) }));
  }
  return body;
}

/** Error paths of the request map onto the form's fields: runtimes are keyed by their position in the request. */
export function runtimeIndex(form: FormState, name: RuntimeName, catalog?: Catalog | null): number {
  return enabledRuntimes(form, catalog).indexOf(name);
}

/** "model · runtime" of a plan combination; the placeholder model of tasks that need none is left out. */
export function combinationLabel(model: string, runtime: string, noModelName = "none"): string {
  return model === noModelName ? runtime : `${model} · ${runtime}`;
}

export interface ExcludedGroup {
  /** "model · runtime" (or the runtime alone when the task needs no model). */
  label: string;
  /** Whether some agent runs the combination anyway (else it is also listed as unrunnable). */
  runElsewhere: boolean;
  agents: { agent_id: string; agent_name: string; reason: string }[];
}

/** The plan's left-out agents grouped by combination, noting whether another agent runs it. */
export function groupExcluded(excluded: Excluded[], unrunnable: Unrunnable[], noModelName = "none"): ExcludedGroup[] {
  const groups = new Map<string, ExcludedGroup>();
  const dead = new Set(unrunnable.map((u) => `${u.model}\u0000${u.runtime}`));
  for (const e of excluded) {
    const key = `${e.model}\u0000${e.runtime}`;
    let g = groups.get(key);
    if (!g) {
      g = { label: combinationLabel(e.model, e.runtime, noModelName), runElsewhere: !dead.has(key), agents: [] };
      groups.set(key, g);
    }
    g.agents.push({ agent_id: e.agent_id, agent_name: e.agent_name, reason: e.reason });
  }
  return [...groups.values()];
}

/** The experiment that measures one agent's peaks (memory bandwidth, matmul throughput): three runs, no model. */
export function benchmarkRequest(agent: { id: string; name: string }, quick = true): ExperimentRequest {
  return {
    name: `hardware benchmark: ${agent.name}`,
    task: { name: HARDWARE_TASK, params: { quick } },
    runtimes: [{ name: "hardware" }],
    agents: { ids: [agent.id] },
    runs_per_job: 3,
  };
}
