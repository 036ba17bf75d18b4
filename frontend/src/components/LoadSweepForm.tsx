/** The experiment form's optional "Load sweep" section and what the plan preview says of the sweep. */
import type { ReactNode } from "react";
import { Field, FieldMessages } from "./ui";
import { formatLoad } from "../lib/load";
import { loadPlanSummary, type LoadErrors, type LoadField, type LoadFormState, type LoadReading } from "../lib/loadForm";

type SetLoad = (fn: (f: LoadFormState) => LoadFormState) => void;

/** The messages of a field (and, with `nested`, of the fields below it). */
function at(errors: LoadErrors, field: LoadField, nested = false): string[] {
  if (!nested) return errors[field] ?? [];
  return Object.entries(errors).filter(([k]) => k === field || k.startsWith(`${field}.`)).flatMap(([, m]) => m ?? []);
}

/** A choice between a few options, drawn as a segmented control (radio buttons). */
function Segmented<T extends string>({ name, value, options, onChange, label }: {
  name: string; value: T; options: [T, string][]; onChange: (v: T) => void; label: string;
}) {
  return (
    <div className="segmented" role="radiogroup" aria-label={label}>
      {options.map(([v, text]) => (
        <label key={v} className={value === v ? "on" : ""}>
          <input type="radio" name={name} value={v} checked={value === v} onChange={() => onChange(v)} />
          {text}
        </label>
      ))}
    </div>
  );
}

/** A titled group of the section's fields. */
function Group({ title, children }: { title: string; children: ReactNode }) {
  return (
    <fieldset className="load-group" style={{ border: 0, padding: 0, margin: "12px 0 0" }}>
      <legend className="field-label strong">{title}</legend>
      {children}
    </fieldset>
  );
}

/**
 * The "Load sweep" section: off by default (the experiment then runs its task as usual). `errors` holds the
 * form's own checks and the server's refusals, each next to its field.
 */
export function LoadSweepSection({ n, load, setLoad, errors }: {
  n: number; load: LoadFormState; setLoad: SetLoad; errors: LoadErrors;
}) {
  const set = (patch: Partial<LoadFormState>) => setLoad((f) => ({ ...f, ...patch }));
  const setSlo = (patch: Partial<LoadFormState["slo"]>) => setLoad((f) => ({ ...f, slo: { ...f.slo, ...patch } }));
  const setPrompts = (patch: Partial<LoadFormState["prompts"]>) => setLoad((f) => ({ ...f, prompts: { ...f.prompts, ...patch } }));
  const setStop = (patch: Partial<LoadFormState["earlyStop"]>) => setLoad((f) => ({ ...f, earlyStop: { ...f.earlyStop, ...patch } }));
  return (
    <section className="form-section" aria-label="Load sweep" data-testid="load-section">
      <h3><span className="step">{n}</span>Load sweep</h3>
      <label className="check">
        <input type="checkbox" name="load-enabled" checked={load.enabled} onChange={(e) => set({ enabled: e.target.checked })} />
        Run each job as a sweep of load points against the model's endpoint (serving under load)
      </label>
      {!load.enabled ? (
        <p className="muted small">Off: each job runs its task's samples one after another.</p>
      ) : (
        <>
          <p className="muted small">A load job runs one sweep: runs per job do not apply to it.</p>
          <FieldMessages messages={[...(errors[""] ?? [])]} />
          <Group title="Load points">
            <Segmented name="load-mode" label="Load mode" value={load.mode} onChange={(mode) => set({ mode })}
              options={[["concurrency", "Concurrency (closed loop)"], ["request_rate", "Request rate (open loop)"]]} />
            <div className="form-grid">
              {load.mode === "concurrency" ? (
                <Field label="Concurrency levels" errors={at(errors, "concurrency")} wide
                  hint="requests always in flight at each point, comma separated (e.g. 1, 2, 4, 8); white-box runtimes (transformers) run each as a batch of that size">
                  <input name="load-concurrency" value={load.concurrency} onChange={(e) => set({ concurrency: e.target.value })} />
                </Field>
              ) : (
                <>
                  <Field label="Request rates (req/s)" errors={at(errors, "request_rate")} wide
                    hint='comma separated; "inf" sends every request at once'>
                    <input name="load-request-rate" value={load.requestRate} onChange={(e) => set({ requestRate: e.target.value })} />
                  </Field>
                  <Field label="Arrivals" errors={at(errors, "arrival")} hint="gaps between requests">
                    <select name="load-arrival" value={load.arrival}
                      onChange={(e) => set({ arrival: e.target.value as LoadFormState["arrival"] })}>
                      <option value="poisson">poisson (exponential gaps)</option>
                      <option value="gamma">gamma (with burstiness)</option>
                      <option value="constant">constant (evenly spaced)</option>
                    </select>
                  </Field>
                  {load.arrival === "gamma" && (
                    <Field label="Burstiness" errors={at(errors, "burstiness")} hint="gamma shape: below 1 burstier, 1 = poisson">
                      <input name="load-burstiness" inputMode="decimal" value={load.burstiness} onChange={(e) => set({ burstiness: e.target.value })} />
                    </Field>
                  )}
                  <Field label="Max concurrency" errors={at(errors, "max_concurrency")} hint="cap on requests in flight; empty = none">
                    <input name="load-max-concurrency" inputMode="numeric" value={load.maxConcurrency} onChange={(e) => set({ maxConcurrency: e.target.value })} />
                  </Field>
                </>
              )}
            </div>
          </Group>
          <Group title="Size of each point">
            <Segmented name="load-size" label="Point size" value={load.sizeBy} onChange={(sizeBy) => set({ sizeBy })}
              options={[["num_requests", "Number of requests"], ["duration_s", "Duration"]]} />
            <div className="form-grid">
              {load.sizeBy === "num_requests" ? (
                <Field label="Requests per point" errors={at(errors, "num_requests")} hint="measured requests, warm-up apart">
                  <input name="load-num-requests" inputMode="numeric" value={load.numRequests} onChange={(e) => set({ numRequests: e.target.value })} />
                </Field>
              ) : (
                <Field label="Seconds per point" errors={at(errors, "duration_s")} hint="requests in flight at the end are awaited">
                  <input name="load-duration" inputMode="decimal" value={load.durationS} onChange={(e) => set({ durationS: e.target.value })} />
                </Field>
              )}
              <Field label="Warm-up requests" errors={at(errors, "warmup_requests")} hint="before each point, left out of its figures">
                <input name="load-warmup" inputMode="numeric" value={load.warmupRequests} onChange={(e) => set({ warmupRequests: e.target.value })} />
              </Field>
              <Field label="Seed" errors={at(errors, "seed")} hint="same seed = same schedule on every agent">
                <input name="load-seed" inputMode="numeric" value={load.seed} onChange={(e) => set({ seed: e.target.value })} />
              </Field>
              <Field label="Request timeout (s)" errors={at(errors, "request_timeout_s")}>
                <input name="load-timeout" inputMode="decimal" value={load.requestTimeoutS} onChange={(e) => set({ requestTimeoutS: e.target.value })} />
              </Field>
            </div>
          </Group>
          <Group title="Prompts">
            <FieldMessages messages={[...at(errors, "prompts"), ...at(errors, "prompts.source")]} />
            <Segmented name="load-prompts" label="Prompt source" value={load.prompts.source} onChange={(source) => setPrompts({ source })}
              options={[["synthetic", "Synthetic"], ["task", "Task samples"], ["jsonl", "JSONL on the agent"]]} />
            <div className="form-grid">
              {load.prompts.source === "jsonl" && (
                <Field label="JSONL path (on the agent)" errors={at(errors, "prompts.path")} wide
                  hint='one {"prompt": ...} object per line'>
                  <input name="load-prompts-path" value={load.prompts.path} onChange={(e) => setPrompts({ path: e.target.value })} />
                </Field>
              )}
              {load.prompts.source === "synthetic" && (
                <Field label="Input tokens" errors={at(errors, "prompts.input_tokens")}>
                  <input name="load-input-tokens" inputMode="numeric" value={load.prompts.inputTokens} onChange={(e) => setPrompts({ inputTokens: e.target.value })} />
                </Field>
              )}
              <Field label="Output tokens" errors={at(errors, "prompts.output_tokens")}
                hint={load.prompts.source === "synthetic" ? "max_tokens of each request" : "empty = the task's max new tokens"}>
                <input name="load-output-tokens" inputMode="numeric" value={load.prompts.outputTokens} onChange={(e) => setPrompts({ outputTokens: e.target.value })} />
              </Field>
              <Field label="Ignore EOS" errors={at(errors, "prompts.ignore_eos")} hint="keep generating to the output length (default: on for synthetic)">
                <select name="load-ignore-eos" value={load.prompts.ignoreEos}
                  onChange={(e) => setPrompts({ ignoreEos: e.target.value as LoadFormState["prompts"]["ignoreEos"] })}>
                  <option value="default">default</option>
                  <option value="on">on</option>
                  <option value="off">off</option>
                </select>
              </Field>
            </div>
          </Group>
          <Group title="Service level objectives (optional)">
            <FieldMessages messages={at(errors, "slo")} />
            <div className="form-grid">
              <Field label="TTFT (ms)" errors={at(errors, "slo.ttft_ms")} hint="time to first token">
                <input name="load-slo-ttft" inputMode="decimal" value={load.slo.ttftMs} onChange={(e) => setSlo({ ttftMs: e.target.value })} />
              </Field>
              <Field label="TPOT (ms)" errors={at(errors, "slo.tpot_ms")} hint="time per output token">
                <input name="load-slo-tpot" inputMode="decimal" value={load.slo.tpotMs} onChange={(e) => setSlo({ tpotMs: e.target.value })} />
              </Field>
              <Field label="E2E (ms)" errors={at(errors, "slo.e2e_ms")} hint="end-to-end latency">
                <input name="load-slo-e2e" inputMode="decimal" value={load.slo.e2eMs} onChange={(e) => setSlo({ e2eMs: e.target.value })} />
              </Field>
              <Field label="Percentile" errors={at(errors, "slo.percentile")} hint="a point meets the SLOs at this percentile">
                <input name="load-slo-percentile" inputMode="decimal" value={load.slo.percentile} onChange={(e) => setSlo({ percentile: e.target.value })} />
              </Field>
              <Field label="Max error rate" errors={at(errors, "slo.max_error_rate")} hint="0–1; empty = 0">
                <input name="load-slo-errors" inputMode="decimal" value={load.slo.maxErrorRate} onChange={(e) => setSlo({ maxErrorRate: e.target.value })} />
              </Field>
            </div>
            <p className="muted small">With no target, goodput and max goodput are not computed.</p>
          </Group>
          <Group title="Early stop">
            <FieldMessages messages={at(errors, "early_stop")} />
            <div className="form-grid">
              <Field label="Latency factor" errors={at(errors, "early_stop.latency_factor")}
                hint="stop after a point whose median e2e is this many times the first's; empty = never">
                <input name="load-stop-factor" inputMode="decimal" value={load.earlyStop.latencyFactor} onChange={(e) => setStop({ latencyFactor: e.target.value })} />
              </Field>
              <Field label="Error rate" errors={at(errors, "early_stop.max_error_rate")}
                hint="stop after a point with more failed requests than this (0–1); empty = never">
                <input name="load-stop-errors" inputMode="decimal" value={load.earlyStop.maxErrorRate} onChange={(e) => setStop({ maxErrorRate: e.target.value })} />
              </Field>
            </div>
          </Group>
        </>
      )}
    </section>
  );
}

/** What each job of the sweep runs, for the plan preview: its load points and requests per job. */
export function LoadPlanPreview({ reading, jobs }: { reading: LoadReading; jobs: number | null }) {
  if (!reading.spec) return null;
  if (!reading.valid) {
    return (
      <div className="plan-invalid" role="alert" data-testid="plan-load">
        <strong>Load sweep not valid yet</strong>
        <ul>{Object.values(reading.errors).flat().map((m) => <li key={m}>{m}</li>)}</ul>
      </div>
    );
  }
  const s = loadPlanSummary(reading.spec);
  const per = s.requestsPerPoint !== null
    ? `${s.requestsPerPoint.toLocaleString("en-US")} requests${s.warmupPerPoint ? ` + ${s.warmupPerPoint} warm-up` : ""} per point`
    : `${s.secondsPerPoint} s${s.warmupPerPoint ? ` + ${s.warmupPerPoint} warm-up requests` : ""} per point`;
  const perJob = s.requestsPerJob !== null
    ? `${s.requestsPerJob.toLocaleString("en-US")} requests per job`
    : `about ${Math.round(s.secondsPerJob ?? 0).toLocaleString("en-US")} s of load per job (warm-up apart)`;
  const total = s.requestsPerJob !== null && jobs !== null && jobs > 1
    ? `, ${(s.requestsPerJob * jobs).toLocaleString("en-US")} in all` : "";
  return (
    <div className="plan-load" data-testid="plan-load">
      <p className="plan-summary">
        Load sweep: <strong>{s.points.length}</strong> {s.mode === "concurrency" ? "concurrency levels" : "request rates"}
        {" "}({s.points.map((p) => formatLoad(p, s.mode)).join(", ")})
      </p>
      <p className="muted small">{per}; at most {perJob}{total} (an early stop ends a sweep sooner).</p>
    </div>
  );
}
