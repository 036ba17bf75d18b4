/** The experiment form's state and its translation into the API's request body. */
import type { ExperimentRequest } from "../api/types";

export type RuntimeName = "transformers" | "openai" | "vllm";
export const RUNTIME_NAMES: RuntimeName[] = ["transformers", "vllm", "openai"];

export interface FormState {
  name: string;
  description: string;
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
  task: { num_samples: "5", seed: "42", max_new_tokens: "64", source: "packaged", jsonl_path: "", titles: "",
    temperature: "", max_document_chars: "" },
  models: [{ name: "", dtype: "" }],
  runtimes: {
    transformers: { enabled: true, params: { device: "auto", dtype: "auto", threads: "" } },
    vllm: { enabled: false, params: { base_url: "http://127.0.0.1:8000/v1", served_model: "", api_key_env: "", timeout_s: "" } },
    openai: { enabled: false, params: { base_url: "", served_model: "", api_key_env: "", endpoint: "chat", timeout_s: "" } },
  },
  agentMode: "all",
  agentIds: [],
  agentLabels: [],
  runsPerJob: "3",
};

const NUMERIC = new Set(["num_samples", "seed", "max_new_tokens", "temperature", "max_document_chars", "threads",
  "timeout_s"]);

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

/** The request body of `POST /experiments/` (and of the plan preview). */
export function toRequest(form: FormState): ExperimentRequest {
  const { titles, ...taskRest } = form.task;
  const taskParams = params(taskRest);
  const titleList = titles.split("\n").map((t) => t.trim()).filter(Boolean);
  if (titleList.length) taskParams.titles = titleList;
  const runs = Number(form.runsPerJob);
  return {
    name: form.name.trim(),
    description: form.description,
    task: { name: "wikipedia_summarization", params: taskParams },
    models: form.models
      .filter((m, i) => m.name.trim() !== "" || i === 0)
      .map((m) => ({ name: m.name.trim(), ...(m.dtype ? { dtype: m.dtype as "auto" } : {}) })),
    runtimes: RUNTIME_NAMES.filter((r) => form.runtimes[r].enabled).map((r) => ({
      name: r, params: params(form.runtimes[r].params),
    })),
    agents: form.agentMode === "all" ? { all: true }
      : form.agentMode === "ids" ? { ids: form.agentIds } : { labels: form.agentLabels },
    runs_per_job: Number.isFinite(runs) && form.runsPerJob.trim() !== "" ? runs : (form.runsPerJob as unknown as number),
  };
}

/** Error paths of the request map onto the form's fields: runtimes are keyed by their position in the request. */
export function runtimeIndex(form: FormState, name: RuntimeName): number {
  return RUNTIME_NAMES.filter((r) => form.runtimes[r].enabled).indexOf(name);
}
