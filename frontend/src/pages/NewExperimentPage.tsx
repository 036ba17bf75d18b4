import { useMemo, useState, type FormEvent, type ReactNode } from "react";
import { Link, useNavigate } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { fetchPlan, useAgents, useCatalog, useCreateExperiment, usePermissions } from "../api/queries";
import { describeError, errorsAt, type FieldErrors } from "../api/errors";
import type { Agent, Catalog, Plan } from "../api/models";
import { Card, Empty, ErrorBox, Field, FieldMessages, Spinner } from "../components/ui";
import {
  combinationLabel, enabledRuntimes, groupExcluded, HARDWARE_TASK, initialForm, runtimeIndex, runtimesForTask,
  selectTask, taskNeedsModel, toRequest, WIKIPEDIA_TASK, type FormState, type RuntimeName,
} from "../lib/experimentForm";
import { useDebounced } from "../lib/useDebounced";
import { canCreateExperiments } from "../lib/permissions";
import { LoadPlanPreview, LoadSweepSection } from "../components/LoadSweepForm";
import {
  initialLoadForm, loadServerErrors, mergeLoadErrors, readLoadForm, whiteBoxRuntimes, withLoad, type LoadFormState,
  type LoadReading,
} from "../lib/loadForm";

type Update = (fn: (f: FormState) => FormState) => void;

const RUNTIME_INFO: Record<RuntimeName, string> = {
  transformers: "white-box: the agent loads the model itself (all metrics)",
  vllm: "gray-box: a vLLM server on the agent's host plus its /metrics",
  openai: "black-box: any OpenAI-compatible endpoint (client-side metrics)",
  hardware: "the agent's own hardware: memory bandwidth and matmul throughput (no model)",
};

const RUNTIME_FIELDS: Record<RuntimeName, { key: string; label: string; options?: string[]; hint?: string }[]> = {
  transformers: [
    { key: "device", label: "Device", options: ["auto", "cpu", "cuda", "mps"] },
    { key: "dtype", label: "Dtype", options: ["auto", "float32", "float16", "bfloat16"] },
    { key: "threads", label: "CPU threads", hint: "empty = torch default" },
  ],
  vllm: [
    { key: "base_url", label: "Base URL" },
    { key: "served_model", label: "Served model", hint: "default: the model name" },
    { key: "api_key_env", label: "API key env var (on the agent)" },
    { key: "timeout_s", label: "Timeout (s)" },
  ],
  openai: [
    { key: "base_url", label: "Base URL", hint: "e.g. https://api.example.com/v1" },
    { key: "served_model", label: "Served model" },
    { key: "api_key_env", label: "API key env var (on the agent)" },
    { key: "endpoint", label: "Endpoint", options: ["chat", "completions"] },
    { key: "timeout_s", label: "Timeout (s)" },
  ],
  hardware: [
    { key: "device", label: "Device", options: ["auto", "cpu", "cuda", "mps"], hint: "auto = cuda, then mps, then cpu" },
  ],
};

const TASK_TITLES: Record<string, string> = {
  [WIKIPEDIA_TASK]: "Wikipedia summarization",
  [HARDWARE_TASK]: "Hardware benchmark",
};

function Section({ n, title, children }: { n: number; title: string; children: ReactNode }) {
  return (
    <section className="form-section">
      <h3><span className="step">{n}</span>{title}</h3>
      {children}
    </section>
  );
}

function TaskPicker({ form, update, catalog }: { form: FormState; update: Update; catalog: Catalog | undefined }) {
  const tasks = catalog?.tasks ?? [
    { name: WIKIPEDIA_TASK, description: "", needs_model: true },
    { name: HARDWARE_TASK, description: "", needs_model: false },
  ];
  const current = catalog?.tasks.find((t) => t.name === form.taskName);
  return (
    <div className="task-picker">
      <div className="segmented" role="radiogroup" aria-label="Task">
        {tasks.map((t) => (
          <label key={t.name} className={form.taskName === t.name ? "on" : ""} title={t.description}>
            <input type="radio" name="task" value={t.name} checked={form.taskName === t.name}
              onChange={() => update((f) => selectTask(f, t.name, catalog))} />
            {TASK_TITLES[t.name] ?? t.name}
          </label>
        ))}
      </div>
      {current && (
        <p className="muted small task-description">
          {current.description}{!current.needs_model && " No model is needed: only the hardware runtime can run it."}
        </p>
      )}
    </div>
  );
}

function HardwareParams({ form, update, errors }: { form: FormState; update: Update; errors: FieldErrors }) {
  const set = (patch: Partial<FormState["hardware"]>) => update((f) => ({ ...f, hardware: { ...f.hardware, ...patch } }));
  const at = (k: string) => errorsAt(errors, `task.params.${k}`, true);
  return (
    <div className="form-grid">
      <Field label="Mode" errors={at("quick")} hint="quick: smaller sizes and fewer repeats (seconds instead of about a minute)">
        <label className="check input-like">
          <input type="checkbox" name="hw-quick" checked={form.hardware.quick} onChange={(e) => set({ quick: e.target.checked })} />
          Quick
        </label>
      </Field>
      <Field label="Device" errors={at("device")} hint="auto uses the runtime's device; CPU figures are always measured">
        <select name="hw-device" value={form.hardware.device} onChange={(e) => set({ device: e.target.value })}>
          {["auto", "cpu", "cuda", "mps"].map((d) => <option key={d}>{d}</option>)}
        </select>
      </Field>
      <Field label="Repeats per figure" errors={at("repeats")} hint={`empty = ${form.hardware.quick ? 3 : 10} (warm-up excluded)`}>
        <input name="hw-repeats" inputMode="numeric" value={form.hardware.repeats} onChange={(e) => set({ repeats: e.target.value })} />
      </Field>
    </div>
  );
}

function TaskSection({ form, update, errors, catalog }: { form: FormState; update: Update; errors: FieldErrors; catalog: Catalog | undefined }) {
  const set = (key: keyof FormState["task"], v: string) => update((f) => ({ ...f, task: { ...f.task, [key]: v } }));
  const at = (k: string) => errorsAt(errors, `task.params.${k}`, true);
  const general = [...errorsAt(errors, "task"), ...errorsAt(errors, "task.name"), ...errorsAt(errors, "task.params")];
  if (form.taskName !== WIKIPEDIA_TASK) {
    return (
      <Section n={2} title="Task">
        <TaskPicker form={form} update={update} catalog={catalog} />
        <FieldMessages messages={form.taskName === HARDWARE_TASK ? general : errorsAt(errors, "task", true)} />
        {form.taskName === HARDWARE_TASK ? <HardwareParams form={form} update={update} errors={errors} />
          : <p className="muted small">This task has no parameter fields here: the server's defaults apply.</p>}
      </Section>
    );
  }
  return (
    <Section n={2} title="Task">
      <TaskPicker form={form} update={update} catalog={catalog} />
      <FieldMessages messages={general} />
      <div className="form-grid">
        <Field label="Samples per run" errors={at("num_samples")}>
          <input name="num_samples" inputMode="numeric" value={form.task.num_samples} onChange={(e) => set("num_samples", e.target.value)} />
        </Field>
        <Field label="Max new tokens" errors={at("max_new_tokens")}>
          <input name="max_new_tokens" inputMode="numeric" value={form.task.max_new_tokens} onChange={(e) => set("max_new_tokens", e.target.value)} />
        </Field>
        <Field label="Seed" errors={at("seed")} hint="same seed = same articles everywhere">
          <input name="seed" inputMode="numeric" value={form.task.seed} onChange={(e) => set("seed", e.target.value)} />
        </Field>
        <Field label="Source" errors={at("source")}>
          <select name="source" value={form.task.source} onChange={(e) => set("source", e.target.value)}>
            <option value="packaged">packaged (offline vital articles)</option>
            <option value="wikipedia_api">Wikipedia API (online)</option>
            <option value="jsonl">JSONL file on the agent</option>
          </select>
        </Field>
        <Field label="Temperature" errors={at("temperature")} hint="empty or 0 = greedy">
          <input name="temperature" inputMode="decimal" value={form.task.temperature} onChange={(e) => set("temperature", e.target.value)} />
        </Field>
        <Field label="Max document chars" errors={at("max_document_chars")}>
          <input name="max_document_chars" inputMode="numeric" value={form.task.max_document_chars} onChange={(e) => set("max_document_chars", e.target.value)} />
        </Field>
        {form.task.source === "jsonl" && (
          <Field label="JSONL path (on the agent)" errors={at("jsonl_path")} wide>
            <input name="jsonl_path" value={form.task.jsonl_path} onChange={(e) => set("jsonl_path", e.target.value)} />
          </Field>
        )}
        {form.task.source !== "jsonl" && (
          <Field label="Titles (optional, one per line)" errors={at("titles")} wide>
            <textarea name="titles" rows={2} value={form.task.titles} onChange={(e) => set("titles", e.target.value)} />
          </Field>
        )}
      </div>
    </Section>
  );
}

function agentModels(agents: Agent[]): string[] {
  const names = new Set<string>();
  agents.forEach((a) => (a.capabilities.models ?? []).forEach((m) => names.add(m.name)));
  return [...names].sort();
}

function ModelsSection({ n, form, update, errors, agents }: { n: number; form: FormState; update: Update; errors: FieldErrors; agents: Agent[] }) {
  const offered = agentModels(agents);
  const setModel = (i: number, patch: Partial<FormState["models"][number]>) =>
    update((f) => ({ ...f, models: f.models.map((m, j) => (j === i ? { ...m, ...patch } : m)) }));
  return (
    <Section n={n} title="Models">
      <FieldMessages messages={errorsAt(errors, "models")} />
      <datalist id="model-names">{offered.map((m) => <option key={m} value={m} />)}</datalist>
      {form.models.map((m, i) => (
        <div className="row" key={i}>
          <Field label={`Model ${i + 1}`} errors={errorsAt(errors, `models.${i}`, true)}
            hint={offered.length ? `cached on agents: ${offered.join(", ")}` : "catalogue name or Hugging Face repo id"}>
            <input name={`model-${i}`} list="model-names" value={m.name} placeholder="smollm2-135m-instruct"
              onChange={(e) => setModel(i, { name: e.target.value })} />
          </Field>
          <Field label="Dtype">
            <select value={m.dtype} onChange={(e) => setModel(i, { dtype: e.target.value })}>
              <option value="">default</option>
              {["auto", "float32", "float16", "bfloat16"].map((d) => <option key={d}>{d}</option>)}
            </select>
          </Field>
          {form.models.length > 1 && (
            <button type="button" className="btn btn-ghost btn-small align-end"
              onClick={() => update((f) => ({ ...f, models: f.models.filter((_, j) => j !== i) }))}>Remove</button>
          )}
        </div>
      ))}
      <div className="chips-row">
        {offered.filter((o) => !form.models.some((m) => m.name === o)).map((o) => (
          <button type="button" key={o} className="chip chip-button"
            onClick={() => update((f) => {
              const empty = f.models.findIndex((m) => m.name.trim() === "");
              return empty >= 0 ? { ...f, models: f.models.map((m, j) => (j === empty ? { ...m, name: o } : m)) }
                : { ...f, models: [...f.models, { name: o, dtype: "" }] };
            })}>+ {o}</button>
        ))}
        <button type="button" className="btn btn-ghost btn-small"
          onClick={() => update((f) => ({ ...f, models: [...f.models, { name: "", dtype: "" }] }))}>Add model</button>
      </div>
    </Section>
  );
}

function RuntimesSection({ n, form, update, errors, catalog }: {
  n: number; form: FormState; update: Update; errors: FieldErrors; catalog: Catalog | undefined;
}) {
  const setRuntime = (r: RuntimeName, patch: Partial<FormState["runtimes"][RuntimeName]>) =>
    update((f) => ({ ...f, runtimes: { ...f.runtimes, [r]: { ...f.runtimes[r], ...patch } } }));
  const offered = runtimesForTask(form.taskName, catalog);
  return (
    <Section n={n} title="Runtimes">
      <FieldMessages messages={errorsAt(errors, "runtimes")} />
      {offered.length === 0 && <p className="muted">No runtime can run this task.</p>}
      <div className="runtime-cards">
        {offered.map((r) => {
          const rt = form.runtimes[r];
          const idx = runtimeIndex(form, r, catalog);
          const prefix = `runtimes.${idx}`;
          return (
            <div key={r} className={`runtime-card${rt.enabled ? " on" : ""}`}>
              <label className="check">
                <input type="checkbox" name={`runtime-${r}`} checked={rt.enabled} onChange={(e) => setRuntime(r, { enabled: e.target.checked })} />
                <strong>{r}</strong>
              </label>
              <div className="muted small">{catalog?.runtimes.find((x) => x.name === r)?.description ?? RUNTIME_INFO[r]}</div>
              {rt.enabled && (
                <div className="form-grid compact">
                  <FieldMessages messages={[...errorsAt(errors, `${prefix}.name`), ...errorsAt(errors, `${prefix}.params`)]} />
                  {RUNTIME_FIELDS[r].map((fd) => (
                    <Field key={fd.key} label={fd.label} hint={fd.hint} errors={idx >= 0 ? errorsAt(errors, `${prefix}.params.${fd.key}`, true) : []}>
                      {fd.options ? (
                        <select value={rt.params[fd.key] ?? ""} onChange={(e) => setRuntime(r, { params: { ...rt.params, [fd.key]: e.target.value } })}>
                          {fd.options.map((o) => <option key={o}>{o}</option>)}
                        </select>
                      ) : (
                        <input name={`${r}-${fd.key}`} value={rt.params[fd.key] ?? ""}
                          onChange={(e) => setRuntime(r, { params: { ...rt.params, [fd.key]: e.target.value } })} />
                      )}
                    </Field>
                  ))}
                </div>
              )}
            </div>
          );
        })}
      </div>
    </Section>
  );
}

function AgentsSection({ n, form, update, errors, agents }: { n: number; form: FormState; update: Update; errors: FieldErrors; agents: Agent[] }) {
  const labels = [...new Set(agents.flatMap((a) => a.labels ?? []))].sort();
  const toggle = (list: string[], v: string) => (list.includes(v) ? list.filter((x) => x !== v) : [...list, v]);
  return (
    <Section n={n} title="Agents and runs">
      <FieldMessages messages={errorsAt(errors, "agents", true)} />
      <div className="segmented" role="radiogroup">
        {(["all", "ids", "labels"] as const).map((m) => (
          <label key={m} className={form.agentMode === m ? "on" : ""}>
            <input type="radio" name="agent-mode" value={m} checked={form.agentMode === m}
              onChange={() => update((f) => ({ ...f, agentMode: m }))} />
            {m === "all" ? "All agents" : m === "ids" ? "Chosen agents" : "By label"}
          </label>
        ))}
      </div>
      {form.agentMode === "ids" && (
        <div className="check-list">
          {agents.length === 0 && <span className="muted">No agents registered.</span>}
          {agents.map((a) => (
            <label key={a.id} className="check">
              <input type="checkbox" checked={form.agentIds.includes(a.id)}
                onChange={() => update((f) => ({ ...f, agentIds: toggle(f.agentIds, a.id) }))} />
              {a.name} <span className="muted small">({a.status})</span>
            </label>
          ))}
        </div>
      )}
      {form.agentMode === "labels" && (
        <div className="check-list">
          {labels.length === 0 && <span className="muted">No agent has labels yet (edit them on the Agents page).</span>}
          {labels.map((l) => (
            <label key={l} className="check">
              <input type="checkbox" checked={form.agentLabels.includes(l)}
                onChange={() => update((f) => ({ ...f, agentLabels: toggle(f.agentLabels, l) }))} />{l}
            </label>
          ))}
        </div>
      )}
      <div className="form-grid">
        <Field label="Runs per job" errors={errorsAt(errors, "runs_per_job")} hint="run 1 is the cold run; statistics use the warm runs">
          <input name="runs_per_job" inputMode="numeric" value={form.runsPerJob} onChange={(e) => update((f) => ({ ...f, runsPerJob: e.target.value }))} />
        </Field>
      </div>
    </Section>
  );
}

function PlanPreview({ form, catalog, load }: { form: FormState; catalog: Catalog | undefined; load: LoadReading }) {
  const body = useMemo(() => {
    const req = withLoad(toRequest(form, catalog), load);
    return { ...req, name: req.name || "preview" };
  }, [form, catalog, load]);
  const noModel = catalog?.no_model_name ?? "none";
  const debounced = useDebounced(body, 400);
  const plan = useQuery<Plan, Error>({
    queryKey: ["plan", debounced],
    queryFn: () => fetchPlan(debounced),
    retry: false,
    placeholderData: (prev) => prev,
  });
  const stale = debounced !== body || plan.isFetching;
  const jobs = plan.data?.jobs ?? [];
  const unrunnable = plan.data?.unrunnable ?? [];
  // Combinations no agent runs list their agents under "cannot run" already.
  const excluded = groupExcluded(plan.data?.excluded ?? [], unrunnable, noModel).filter((g) => g.runElsewhere);
  const excludedCount = new Set(excluded.flatMap((g) => g.agents.map((a) => a.agent_id))).size;
  return (
    <Card title={<>Plan preview {stale && <span className="spinner small" aria-label="updating" />}</>} className="plan">
      {plan.isPending ? <Spinner label="Planning…" /> : plan.isError ? (
        <div className="plan-invalid" role="alert">
          <strong>Not valid yet</strong>
          <ul>{describeError(plan.error).lines.map((l) => <li key={l}>{l}</li>)}</ul>
        </div>
      ) : (
        <>
          <p className="plan-summary" data-testid="plan-summary">
            <strong>{jobs.length}</strong> job{jobs.length === 1 ? "" : "s"}
            {unrunnable.length > 0 && <>, <strong className="warn-text">{unrunnable.length}</strong> combination(s) cannot run</>}
            {excludedCount > 0 && <>, <strong className="warn-text">{excludedCount}</strong> agent(s) left out</>}
          </p>
          <LoadPlanPreview reading={load} jobs={jobs.length} />
          {jobs.length > 0 && (
            <table className="table compact">
              <thead><tr><th>Agent</th><th>Model</th><th>Runtime</th></tr></thead>
              <tbody>
                {jobs.map((j) => (
                  <tr key={`${j.agent_id}-${j.model.name}-${j.runtime.name}`}><td>{j.agent_name}</td>
                    <td className="mono small">{j.model.name === noModel ? <span className="muted">no model</span> : j.model.name}</td>
                    <td>{j.runtime.name}</td></tr>
                ))}
              </tbody>
            </table>
          )}
          {unrunnable.map((u) => (
            <div key={`${u.model}-${u.runtime}`} className="unrunnable" data-testid="plan-unrunnable">
              <strong>{combinationLabel(u.model, u.runtime, noModel)}</strong>: {u.reason}
              {u.agents.length > 0 && (
                <ul>{u.agents.map((a) => <li key={a.agent_id}><span className="strong">{a.agent_name}</span>: {a.reason}</li>)}</ul>
              )}
            </div>
          ))}
          {excluded.length > 0 && (
            <div className="excluded" data-testid="plan-excluded">
              <h3>Agents left out</h3>
              {excluded.map((g) => (
                <div key={g.label} className="excluded-group">
                  <strong>{g.label}</strong>
                  {g.runElsewhere && <span className="muted small"> — runs on other agents</span>}
                  <ul>{g.agents.map((a) => <li key={a.agent_id}><span className="strong">{a.agent_name}</span>: {a.reason}</li>)}</ul>
                </div>
              ))}
            </div>
          )}
        </>
      )}
    </Card>
  );
}

/** The experiment form with its live plan preview. */
/** The experiment form, for users who may create experiments (others are told why there is none). */
export function NewExperimentPage() {
  const mayCreate = canCreateExperiments(usePermissions());
  if (!mayCreate) {
    return (
      <div className="page">
        <div className="page-header"><h1>New experiment</h1></div>
        <Card>
          <Empty title="Your role cannot create experiments">
            Viewers read experiments and their results; ask a fleet administrator for the operator role to run
            your own. <Link to="/experiments">Back to the experiments</Link>
          </Empty>
        </Card>
      </div>
    );
  }
  return <NewExperimentForm />;
}

function NewExperimentForm() {
  const [form, setForm] = useState<FormState>(initialForm);
  const [load, setLoad] = useState<LoadFormState>(initialLoadForm);
  const [triedSubmit, setTriedSubmit] = useState(false);
  const agents = useAgents();
  const catalog = useCatalog();
  const needsModel = taskNeedsModel(form.taskName, catalog.data);
  // Only tasks with a model can run under load: the others never send the section.
  const whiteBox = whiteBoxRuntimes(enabledRuntimes(form, catalog.data), catalog.data).join(",");
  const loadReading = useMemo(
    () => readLoadForm(needsModel ? load : initialLoadForm, whiteBox ? whiteBox.split(",") : []),
    [load, needsModel, whiteBox],
  );
  const create = useCreateExperiment();
  const navigate = useNavigate();
  const refusal = describeError(create.error);
  const errors = refusal.fields;
  const update: Update = (fn) => setForm(fn);

  const loadErrors = mergeLoadErrors(loadReading.errors, create.error ? loadServerErrors(errors) : {});

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTriedSubmit(true);
    if (!loadReading.valid) return;
    create.mutate(withLoad(toRequest(form, catalog.data), loadReading), { onSuccess: (exp) => navigate(`/experiments/${exp.id}`) });
  };

  return (
    <div className="page">
      <div className="page-header"><h1>New experiment</h1></div>
      {agents.isError && <ErrorBox error={agents.error} title="Agents could not be loaded" />}
      {catalog.isError && <ErrorBox error={catalog.error} title="The catalog could not be loaded (the form offers its built-in tasks and runtimes)" onRetry={() => void catalog.refetch()} />}
      <div className="split wide-left">
        <form className="card experiment-form" onSubmit={submit} aria-label="New experiment" noValidate>
          <Section n={1} title="Name">
            <div className="form-grid">
              <Field label="Name" errors={errorsAt(errors, "name")}>
                <input name="name" value={form.name} placeholder="SmolLM2 across the fleet" onChange={(e) => update((f) => ({ ...f, name: e.target.value }))} />
              </Field>
              <Field label="Description" errors={errorsAt(errors, "description")}>
                <input name="description" value={form.description} onChange={(e) => update((f) => ({ ...f, description: e.target.value }))} />
              </Field>
            </div>
          </Section>
          <TaskSection form={form} update={update} errors={errors} catalog={catalog.data} />
          {needsModel ? <ModelsSection n={3} form={form} update={update} errors={errors} agents={agents.data ?? []} />
            : <FieldMessages messages={errorsAt(errors, "models", true)} />}
          <RuntimesSection n={needsModel ? 4 : 3} form={form} update={update} errors={errors} catalog={catalog.data} />
          <AgentsSection n={needsModel ? 5 : 4} form={form} update={update} errors={errors} agents={agents.data ?? []} />
          {needsModel && <LoadSweepSection n={6} load={load} setLoad={setLoad} errors={loadErrors} />}
          {triedSubmit && !loadReading.valid && (
            <div className="form-error" role="alert">The load sweep has mistakes: see the fields marked above.</div>
          )}
          {create.error && (
            <div className="form-error" role="alert">
              {refusal.refused ? "The server refused the experiment:" : refusal.general.join(" ")}
              {refusal.refused && <ul>{refusal.lines.map((l) => <li key={l}>{l}</li>)}</ul>}
            </div>
          )}
          <div className="form-actions">
            <button className="btn btn-primary" type="submit" disabled={create.isPending}>
              {create.isPending ? "Creating…" : "Create experiment"}
            </button>
          </div>
        </form>
        <PlanPreview form={form} catalog={catalog.data} load={loadReading} />
      </div>
    </div>
  );
}
