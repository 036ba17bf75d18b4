import { lazy, Suspense, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useExperiment, useExperimentActions, useJob, useJobs, useLive } from "../api/queries";
import { describeError, errorMessage } from "../api/errors";
import type { Experiment, Job, Transition } from "../api/models";
import { isJobTerminal } from "../api/statuses";
import { experimentActions, jobActions } from "../lib/permissions";
import { combinationLabel, groupExcluded } from "../lib/experimentForm";
import { Card, Empty, ErrorBox, Field, KeyValues, ProgressBar, Spinner, StatusBadge } from "../components/ui";
import { formatDate, formatDuration, formatModels, progressFraction } from "../lib/format";
import { experimentLoad } from "../lib/load";

// The sweep's charts bring the chart library: loaded only for experiments with a load sweep.
const LoadSweepPanel = lazy(() => import("../components/LoadSweepPanel").then((m) => ({ default: m.LoadSweepPanel })));

function progressLabel(job: Job, sweep: boolean): string {
  const p = job.progress;
  if (job.status === "completed") return "done";
  if (!p) return job.status === "pending" && job.not_before ? `retry after ${new Date(job.not_before).toLocaleTimeString()}` : job.status;
  // A load sweep reports its load points as runs and each point's requests as samples.
  const run = p.run_index ? `${sweep ? "point" : "run"} ${p.run_index}/${p.runs_total ?? "?"}` : "starting";
  const samples = p.samples_total ? ` · ${p.samples_done ?? 0}/${p.samples_total} ${sweep ? "requests" : "samples"}` : "";
  return `${run}${samples}${p.stage ? ` · ${p.stage.replace(/_/g, " ")}` : ""}`;
}

function JobCard({ job, selected, onSelect, sweep = false }: {
  job: Job; selected: boolean; onSelect: () => void; sweep?: boolean;
}) {
  const fraction = job.status === "completed" ? 1 : isJobTerminal(job.status) ? null : progressFraction(job.progress);
  return (
    <button type="button" className={`job-card status-${job.status}${selected ? " selected" : ""}`} onClick={onSelect}
      data-job={job.id} data-status={job.status}>
      <div className="job-card-top">
        <span className="muted small">#{job.id}</span>
        <StatusBadge status={job.status} title={job.status_reason} />
      </div>
      <div className="strong">{job.agent_name ?? "unassigned"}</div>
      <div className="mono small">{job.model_name}</div>
      <div className="small muted">{job.runtime_name} · attempt {job.attempt}/{job.max_attempts}</div>
      {!isJobTerminal(job.status) || job.status === "completed"
        ? <ProgressBar fraction={fraction} label={progressLabel(job, sweep)} />
        : <div className="small job-reason">{job.status_reason}</div>}
    </button>
  );
}

function TransitionLog({ transitions }: { transitions: Transition[] }) {
  if (transitions.length === 0) return <p className="muted">No transitions recorded.</p>;
  return (
    <ol className="timeline">
      {transitions.map((t, i) => (
        <li key={i}>
          <span className="muted small">{formatDate(t.created_at)}</span>
          <div>
            <span className="chip">{t.entity}{t.attempt ? ` #${t.attempt}` : ""}</span>{" "}
            {t.from_state || "∅"} → <strong>{t.to_state}</strong>
          </div>
          {t.reason && <div className="small">{t.reason}</div>}
        </li>
      ))}
    </ol>
  );
}

function JobPanel({ jobId, experiment }: { jobId: number; experiment: number }) {
  const job = useJob(jobId);
  const { cancelJob, retryJob } = useExperimentActions(experiment);
  if (job.isPending) return <Card title={`Job #${jobId}`}><Spinner /></Card>;
  if (job.isError) return <Card title={`Job #${jobId}`}><ErrorBox error={job.error} onRetry={() => void job.refetch()} /></Card>;
  const j = job.data;
  const error = cancelJob.error ?? retryJob.error;
  const may = jobActions(j);
  return (
    <Card className="details" title={<>Job #{j.id} <StatusBadge status={j.status} /></>} actions={
      (may.cancel || may.retry) && (
        <div className="actions-row">
          {may.cancel && (
            <button className="btn btn-small btn-danger-outline" disabled={cancelJob.isPending} onClick={() => cancelJob.mutate(j.id)}>Cancel job</button>
          )}
          {may.retry && (
            <button className="btn btn-small" disabled={retryJob.isPending} onClick={() => retryJob.mutate(j.id)}>Retry job</button>
          )}
        </div>
      )
    }>
      {error && <ErrorBox error={error} title="The action was refused" />}
      <KeyValues items={[
        ["Agent", j.agent ? <Link to={`/agents/${j.agent}`}>{j.agent_name}</Link> : "—"],
        ["Model / runtime", `${j.model_name} / ${j.runtime_name}`],
        ["Reason", j.status_reason || "—"],
        ["Attempt", `${j.attempt} of ${j.max_attempts}`],
        ["Duration", formatDuration(j.started_at, j.finished_at)],
        ["Hardware fingerprint", <span className="mono small">{j.hardware_fingerprint || "—"}</span>],
      ]} />
      <h3>Attempts</h3>
      {j.attempts.length === 0 ? <p className="muted">Not dispatched yet.</p> : (
        <table className="table compact">
          <thead><tr><th>#</th><th>Status</th><th>Outcome</th><th>Started</th><th>Finished</th></tr></thead>
          <tbody>{j.attempts.map((a) => (
            <tr key={a.number}><td>{a.number}</td><td>{a.status && <StatusBadge status={a.status} />}</td>
              <td className="small">{a.outcome || "—"}</td><td className="small">{formatDate(a.started_at)}</td>
              <td className="small">{formatDate(a.finished_at)}</td></tr>
          ))}</tbody>
        </table>
      )}
      <h3>Transition log</h3>
      <TransitionLog transitions={j.transitions} />
    </Card>
  );
}

/** Name and description of an experiment, edited in place. */
function RenameForm({ exp, onDone }: { exp: Experiment; onDone: () => void }) {
  const { rename } = useExperimentActions(exp.id);
  const [name, setName] = useState(exp.name);
  const [description, setDescription] = useState(exp.description ?? "");
  const { fields, general } = describeError(rename.error);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    rename.mutate({ name, description }, { onSuccess: onDone });
  };
  return (
    <form className="form-grid compact" onSubmit={submit} aria-label="Rename experiment">
      <Field label="Name" errors={fields.name}>
        <input name="rename-name" value={name} onChange={(e) => setName(e.target.value)} autoFocus />
      </Field>
      <Field label="Description" errors={fields.description}>
        <input name="rename-description" value={description} onChange={(e) => setDescription(e.target.value)} />
      </Field>
      <div className="form-actions">
        <button className="btn btn-small btn-primary" type="submit" disabled={rename.isPending}>Save</button>
        <button className="btn btn-small btn-ghost" type="button" onClick={onDone}>Keep as is</button>
      </div>
      {general.length > 0 && <div className="form-error wide" role="alert">{general.join(" ")}</div>}
    </form>
  );
}

function ExperimentHeader({ exp }: { exp: Experiment }) {
  const { cancel, remove } = useExperimentActions(exp.id);
  const navigate = useNavigate();
  const may = experimentActions(exp);
  const [renaming, setRenaming] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const error = cancel.error ?? remove.error;
  return (
    <div className="page-header">
      <div>
        <div className="muted small"><Link to="/experiments">Experiments</Link> / #{exp.id}</div>
        {renaming && may.rename ? <RenameForm exp={exp} onDone={() => setRenaming(false)} /> : (
          <>
            <h1>{exp.name} <StatusBadge status={exp.status} /></h1>
            {exp.description && <p className="muted">{exp.description}</p>}
          </>
        )}
        {!exp.can_manage && (
          <p className="read-only-note" data-testid="read-only">
            Read only: {exp.owner ? `${exp.owner}'s experiment` : "an experiment without an owner"}.
          </p>
        )}
      </div>
      <div className="actions-row">
        {may.rename && !renaming && (
          <button className="btn" onClick={() => setRenaming(true)}>Rename</button>
        )}
        {may.cancel && (
          <button className="btn btn-danger-outline" disabled={cancel.isPending} onClick={() => cancel.mutate()}>Cancel experiment</button>
        )}
        {may.remove && (confirming ? (
          <>
            <button className="btn btn-danger" disabled={remove.isPending}
              onClick={() => remove.mutate(undefined, { onSuccess: () => navigate("/experiments") })}>Confirm deletion</button>
            <button className="btn btn-ghost" onClick={() => setConfirming(false)}>Keep</button>
          </>
        ) : (
          <button className="btn btn-danger-outline" onClick={() => setConfirming(true)}>Delete</button>
        ))}
        <Link className="btn btn-primary" to={`/experiments/${exp.id}/results`} data-testid="results-link">Results</Link>
        {error && <span className="error-inline" role="alert">{errorMessage(error)}</span>}
      </div>
    </div>
  );
}

function SpecSummary({ exp }: { exp: Experiment }) {
  const unrunnable = exp.plan.unrunnable ?? [];
  const excluded = groupExcluded(exp.plan.excluded ?? [], unrunnable).filter((g) => g.runElsewhere);
  const params = exp.task?.params ?? {};
  return (
    <Card title="Specification">
      <KeyValues items={[
        ["Task", `${exp.task?.name ?? "—"} (${Object.entries(params).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ") || "defaults"})`],
        ["Models", formatModels(exp.models)],
        ["Runtimes", exp.runtimes.map((r) => r.name).join(", ")],
        ["Agents", exp.agents.all ? "all" : exp.agents.ids ? `${exp.agents.ids.length} chosen` : `labels: ${(exp.agents.labels ?? []).join(", ")}`],
        ["Runs per job", experimentLoad(exp) ? "— (a load job runs one sweep)" : exp.runs_per_job],
        ["Created", `${formatDate(exp.created_at)} by ${exp.owner ?? "—"}`],
        ["Duration", formatDuration(exp.started_at, exp.finished_at)],
      ]} />
      {unrunnable.length > 0 && (
        <>
          <h3>Could not run</h3>
          {unrunnable.map((u) => (
            <div key={`${u.model}-${u.runtime}`} className="unrunnable"><strong>{combinationLabel(u.model, u.runtime)}</strong>: {u.reason}</div>
          ))}
        </>
      )}
      {excluded.length > 0 && (
        <>
          <h3>Agents left out</h3>
          {excluded.map((g) => (
            <div key={g.label} className="excluded-group">
              <strong>{g.label}</strong>
              <ul>{g.agents.map((a) => <li key={a.agent_id}><span className="strong">{a.agent_name}</span>: {a.reason}</li>)}</ul>
            </div>
          ))}
        </>
      )}
    </Card>
  );
}

/** One experiment: its jobs live, the selected job's attempts and transitions, and its specification. */
export function ExperimentDetailPage() {
  const id = Number(useParams().id);
  useLive(Number.isFinite(id) ? { experiment: id } : null);
  const exp = useExperiment(id);
  const jobs = useJobs(id);
  const [selected, setSelected] = useState<number | null>(null);

  if (exp.isPending) return <Spinner />;
  if (exp.isError) return <ErrorBox error={exp.error} title={`Experiment #${id} could not be loaded`} onRetry={() => void exp.refetch()} />;
  const sorted = [...(jobs.data ?? [])].sort((a, b) => a.id - b.id);
  const load = experimentLoad(exp.data);
  return (
    <div className="page">
      <ExperimentHeader exp={exp.data} />
      <div className="split">
        <div className="stack">
          <Card title={`Jobs${jobs.data ? ` (${jobs.data.length})` : ""}`}>
            {jobs.isPending ? <Spinner /> : jobs.isError ? <ErrorBox error={jobs.error} onRetry={() => void jobs.refetch()} /> :
              sorted.length === 0 ? <Empty title="No jobs">No agent could run any combination: see the reasons below.</Empty> : (
                <div className="job-grid" aria-label="Jobs">
                  {sorted.map((j) => (
                    <JobCard key={j.id} job={j} selected={selected === j.id} onSelect={() => setSelected(j.id)} sweep={load !== null} />
                  ))}
                </div>
              )}
          </Card>
          <SpecSummary exp={exp.data} />
        </div>
        {selected !== null ? <JobPanel jobId={selected} experiment={id} /> : (
          <Card title="Job details"><Empty title="Select a job">Its attempts and the transition log (with reasons) appear here.</Empty></Card>
        )}
      </div>
      {load && (
        <Suspense fallback={<Spinner label="Loading the load sweep view…" />}><LoadSweepPanel experiment={id} spec={load} /></Suspense>
      )}
    </div>
  );
}
