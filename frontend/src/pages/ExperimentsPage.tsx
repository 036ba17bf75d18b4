import { Link, useNavigate } from "react-router-dom";
import { useExperiments, usePermissions } from "../api/queries";
import type { Experiment } from "../api/models";
import { JOB_TERMINAL_STATUSES } from "../api/statuses";
import { Card, Empty, ErrorBox, ProgressBar, Spinner, StatusBadge } from "../components/ui";
import { formatAgo, formatModels } from "../lib/format";
import { canCreateExperiments } from "../lib/permissions";

function jobsDone(exp: Experiment): [number, number] {
  const counts = exp.job_counts ?? {};
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const done = Object.entries(counts).filter(([s]) => JOB_TERMINAL_STATUSES.has(s)).reduce((a, [, n]) => a + n, 0);
  return [done, total];
}

function ExperimentRow({ exp }: { exp: Experiment }) {
  const navigate = useNavigate();
  const [done, total] = jobsDone(exp);
  return (
    <tr className="clickable" onClick={() => navigate(`/experiments/${exp.id}`)}>
      <td className="muted">#{exp.id}</td>
      <td><Link to={`/experiments/${exp.id}`} className="strong">{exp.name}</Link>
        <div className="muted small">{exp.task?.name}</div></td>
      <td><StatusBadge status={exp.status} /></td>
      <td className="small">{formatModels(exp.models)}</td>
      <td className="small">{exp.runtimes.map((r) => r.name).join(", ")}</td>
      <td style={{ minWidth: 140 }}>
        {total > 0 ? <ProgressBar fraction={done / total} label={`${done}/${total} jobs`} /> : <span className="muted small">no jobs</span>}
      </td>
      <td className="small">{exp.owner ?? "—"}</td>
      <td className="small muted">{formatAgo(exp.created_at)}</td>
    </tr>
  );
}

/** Every experiment with its status and job progress. */
export function ExperimentsPage() {
  const experiments = useExperiments();
  const mayCreate = canCreateExperiments(usePermissions());
  return (
    <div className="page">
      <div className="page-header">
        <h1>Experiments</h1>
        {mayCreate && <Link className="btn btn-primary" to="/experiments/new">New experiment</Link>}
      </div>
      <Card>
        {experiments.isPending ? <Spinner /> : experiments.isError ? (
          <ErrorBox error={experiments.error} onRetry={() => void experiments.refetch()} />
        ) : experiments.data.length === 0 ? (
          <Empty title="No experiments yet">
            {mayCreate ? "Create one: pick a task, models, runtimes and agents." : "Experiments appear here once an operator creates them."}
          </Empty>
        ) : (
          <table className="table" aria-label="Experiments">
            <thead><tr><th>#</th><th>Name</th><th>Status</th><th>Models</th><th>Runtimes</th><th>Jobs</th><th>Owner</th><th>Created</th></tr></thead>
            <tbody>{experiments.data.map((e) => <ExperimentRow key={e.id} exp={e} />)}</tbody>
          </table>
        )}
      </Card>
    </div>
  );
}
