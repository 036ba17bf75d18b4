import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useAgentMutations, useAgents, useCreateExperiment, useLive, usePermissions } from "../api/queries";
import { describeError, errorMessage } from "../api/errors";
import type { Agent, AgentInfo, AgentPeaks } from "../api/models";
import { benchmarkRequest } from "../lib/experimentForm";
import { Card, Empty, ErrorBox, Field, KeyValues, Spinner, StatusBadge } from "../components/ui";
import { agentUrlText, HeartbeatAlert, HeartbeatWarning, MODE_DESCRIPTIONS, ModeBadge } from "../components/AgentState";
import { formatAgo, formatBytes, formatDate, formatNumber } from "../lib/format";
import { bestBandwidth, groupPeaks, type PeakRow } from "../lib/peaks";
import { localServerRows, localServersSummary, servedModelsRows } from "../lib/localServers";
import { agentActions, canRegisterAgents, type AgentActions } from "../lib/permissions";

/** "a, b ,c" → ["a", "b", "c"]. */
export function parseLabels(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

function RegisterAgentForm() {
  const { register } = useAgentMutations();
  const [url, setUrl] = useState("");
  const [token, setToken] = useState("");
  const [name, setName] = useState("");
  const [labels, setLabels] = useState("");
  const [cost, setCost] = useState("");
  const { fields, general } = describeError(register.error);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    register.mutate(
      { url, token, ...(name ? { name } : {}), labels: parseLabels(labels), cost_per_hour: cost === "" ? null : cost },
      { onSuccess: () => { setUrl(""); setToken(""); setName(""); setLabels(""); setCost(""); } },
    );
  };
  return (
    <form className="form-grid" onSubmit={submit} aria-label="Register agent">
      <Field label="Agent URL" errors={fields.url} hint="e.g. http://10.0.0.5:8100">
        <input name="url" required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="http://host:8100" />
      </Field>
      <Field label="Agent token" errors={fields.token} hint="the --token the agent was started with">
        <input name="token" required type="password" value={token} onChange={(e) => setToken(e.target.value)} />
      </Field>
      <Field label="Name (optional)" errors={fields.name}>
        <input name="name" value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <Field label="Labels" errors={fields.labels} hint="comma-separated">
        <input name="labels" value={labels} onChange={(e) => setLabels(e.target.value)} placeholder="lab, gpu" />
      </Field>
      <Field label="Cost per hour ($)" errors={fields.cost_per_hour}>
        <input name="cost_per_hour" inputMode="decimal" value={cost} onChange={(e) => setCost(e.target.value)} />
      </Field>
      <div className="form-actions">
        <button className="btn btn-primary" type="submit" disabled={register.isPending}>
          {register.isPending ? "Registering…" : "Register agent"}
        </button>
        {register.isSuccess && <span className="ok-inline">Registered {register.data.name}</span>}
      </div>
      {general.length > 0 && <div className="form-error wide" role="alert">{general.join(" ")}</div>}
    </form>
  );
}

function hardwareLine(agent: Agent): string {
  const s = agent.summary;
  const parts: string[] = [];
  if (s.cpu) parts.push(`${s.cpu}${s.cores ? ` (${s.cores} threads)` : ""}`);
  if (s.memory_gib) parts.push(`${s.memory_gib} GiB RAM`);
  (s.gpus ?? []).forEach((g) => parts.push(`${g.name} ${g.memory_gib} GiB`));
  return parts.join(" · ") || "not detected yet";
}

function agentPeaks(agent: Agent): AgentPeaks | null {
  return agent.summary.peaks ?? null;
}

function AgentRow({ agent, selected }: { agent: Agent; selected: boolean }) {
  const navigate = useNavigate();
  const runtimes = (agent.summary.runtimes ?? []).join(", ");
  const servers = localServersSummary(agent.capabilities);
  return (
    <tr className={selected ? "selected clickable" : "clickable"} onClick={() => navigate(`/agents/${agent.id}`)}
      data-agent={agent.name}>
      <td>
        <Link to={`/agents/${agent.id}`} className="strong">{agent.name}</Link> <ModeBadge mode={agent.mode} />
        <div className={`muted small${agent.url ? " mono" : ""}`}>{agentUrlText(agent)}</div>
      </td>
      <td>
        <StatusBadge status={agent.status} title={agent.status_reason} />
        {agent.status === "online" && <StatusBadge status={agent.activity} />}
        <HeartbeatWarning agent={agent} />
      </td>
      <td className="small">{hardwareLine(agent)}<PeakHint agent={agent} /></td>
      <td className="small">{runtimes || "—"}
        {servers && <div className="muted small" data-testid="local-servers-summary">{servers}</div>}</td>
      <td>{(agent.labels ?? []).map((l) => <span key={l} className="chip">{l}</span>)}</td>
      <td className="small muted">{formatAgo(agent.last_seen)}</td>
    </tr>
  );
}

function PeakHint({ agent }: { agent: Agent }) {
  const best = bestBandwidth(agentPeaks(agent));
  if (!best || best.value === null) return null;
  return <div className="muted small">peak {best.label}: {formatNumber(best.value)} {best.unit}</div>;
}

function PeakTable({ title, rows }: { title: string; rows: PeakRow[] }) {
  if (rows.length === 0) return null;
  return (
    <table className="table compact peaks-table" aria-label={`${title} peaks`}>
      <thead><tr><th>{title}</th><th className="num" title="best repeat (best-of-N, as STREAM reports it)">Peak</th>
        <th className="num" title="mean over the timed repeats">Mean</th><th>Figure</th></tr></thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.metric} data-figure={r.metric}>
            <td>{r.label}</td>
            <td className="num"><strong>{formatNumber(r.value)}</strong> <span className="muted">{r.unit}</span>
              {r.n !== null && <div className="muted small">best of {r.n}</div>}</td>
            <td className="num">{formatNumber(r.mean)}
              {r.warning && <div className="small warn-text" data-testid="peak-unstable"
                title="the repeats varied a lot: the host was busy or unsteady while it was measured">{r.warning}</div>}</td>
            <td className="mono small muted">{r.metric}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RunBenchmark({ agent, hasPeaks }: { agent: Agent; hasPeaks: boolean }) {
  const create = useCreateExperiment();
  const navigate = useNavigate();
  const [quick, setQuick] = useState(true);
  const disabled = agent.status === "deactivated";
  const run = () => create.mutate(benchmarkRequest(agent, quick), { onSuccess: (exp) => navigate(`/experiments/${exp.id}`) });
  const { lines } = describeError(create.error);
  return (
    <div className="benchmark-actions">
      <button type="button" className={`btn btn-small${hasPeaks ? "" : " btn-primary"}`} onClick={run}
        disabled={create.isPending || disabled} title={disabled ? "activate the agent first" : undefined}>
        {create.isPending ? "Starting…" : "Run hardware benchmark"}
      </button>
      <label className="check small">
        <input type="checkbox" name="benchmark-quick" checked={quick} onChange={(e) => setQuick(e.target.checked)} />
        quick (seconds; the full run takes about a minute per run)
      </label>
      {lines.length > 0 && (
        <div className="form-error small" role="alert">The benchmark could not be started:<ul>{lines.map((l) => <li key={l}>{l}</li>)}</ul></div>
      )}
    </div>
  );
}

function MeasuredPeaks({ agent, mayBenchmark }: { agent: Agent; mayBenchmark: boolean }) {
  const peaks = agentPeaks(agent);
  const grouped = peaks ? groupPeaks(peaks) : null;
  return (
    <section className="peaks" data-testid="measured-peaks" aria-label="Measured peaks">
      <h3 className="peaks-title">
        Measured peaks
        {peaks?.quick && <span className="badge badge-warn" title="measured with the quick variant: smaller sizes, fewer repeats">quick</span>}
      </h3>
      {!peaks || !grouped ? (
        <div className="peaks-empty">
          <strong>No measured peaks yet</strong>
          <p className="muted small">
            A hardware benchmark measures this agent's memory bandwidth and matrix-multiply throughput per precision.
            Results then show each LLM job as a percentage of these peaks.
          </p>
        </div>
      ) : (
        <>
          <p className="muted small">Best repeat of each figure (best-of-N, as STREAM reports it: a busy host only
            slows repeats down), with the mean of the repeats, from the latest hardware benchmark, measured {formatDate(peaks.measured_at)}
            {peaks.measured_at && ` (${formatAgo(peaks.measured_at)})`}.</p>
          {grouped.bandwidth.length === 0 && grouped.compute.length === 0 && (
            <p className="muted">The benchmark produced no supported figure.</p>
          )}
          <PeakTable title="Memory bandwidth" rows={grouped.bandwidth} />
          <PeakTable title="Compute" rows={grouped.compute} />
          {grouped.unsupported.length > 0 && (
            <div className="peaks-unsupported" aria-label="Figures not measured">
              <div className="small strong">Not measured here</div>
              <ul className="small">
                {grouped.unsupported.map((u) => (
                  <li key={u.metric} data-figure={u.metric}>
                    <span className="strong">{u.label}</span> <span className="mono muted">({u.metric})</span>: {u.reason}
                  </li>
                ))}
              </ul>
            </div>
          )}
        </>
      )}
      {mayBenchmark && <RunBenchmark agent={agent} hasPeaks={peaks !== null} />}
    </section>
  );
}

function AgentEditForm({ agent }: { agent: Agent }) {
  const { update } = useAgentMutations();
  const [name, setName] = useState(agent.name);
  const [labels, setLabels] = useState((agent.labels ?? []).join(", "));
  const [cost, setCost] = useState(agent.cost_per_hour ?? "");
  const { fields } = describeError(update.error);
  const hasFieldErrors = Object.keys(fields).some((k) => k !== "");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    update.mutate({ id: agent.id, name, labels: parseLabels(labels), cost_per_hour: cost === "" ? null : cost });
  };
  return (
    <form className="form-grid compact" onSubmit={submit} aria-label="Edit agent">
      <Field label="Name" errors={fields.name}><input value={name} onChange={(e) => setName(e.target.value)} /></Field>
      <Field label="Labels" errors={fields.labels} hint="comma-separated">
        <input name="edit-labels" value={labels} onChange={(e) => setLabels(e.target.value)} />
      </Field>
      <Field label="Cost per hour ($)" errors={fields.cost_per_hour}>
        <input name="edit-cost" value={cost} onChange={(e) => setCost(e.target.value)} inputMode="decimal" />
      </Field>
      <div className="form-actions">
        <button className="btn btn-small" type="submit" disabled={update.isPending}>Save</button>
        {update.isSuccess && !update.isPending && <span className="ok-inline">Saved</span>}
        {update.error && !hasFieldErrors && (
          <span className="error-inline">{errorMessage(update.error)}</span>
        )}
      </div>
    </form>
  );
}

function Availability({ items }: { items: { name: string; available: boolean; reason?: string | null;
  version?: string | null }[] }) {
  if (items.length === 0) return <span className="muted">none reported</span>;
  return (
    <ul className="avail">
      {items.map((i) => (
        <li key={i.name} className={i.available ? "yes" : "no"} title={i.reason ?? undefined}>
          <span className="dot" />{i.name}{i.version ? ` ${i.version}` : ""}
          {!i.available && i.reason && <span className="muted small"> — {i.reason}</span>}
        </li>
      ))}
    </ul>
  );
}

/** Model names, the first few inline and the rest behind a disclosure (a server may serve dozens). */
function ModelList({ models }: { models: string[] }) {
  if (models.length === 0) return <span className="muted">none</span>;
  const shown = models.slice(0, 2);
  const rest = models.slice(2);
  return (
    <span className="mono small">
      {shown.join(", ")}
      {rest.length > 0 && (
        <details className="inline-details"><summary>+{rest.length} more</summary>{rest.join(", ")}</details>
      )}
    </span>
  );
}

/** The inference servers on the agent's host that gray-box runtimes measure, and whether each can be used now. */
export function LocalServers({ info }: { info: AgentInfo }) {
  const rows = localServerRows(info);
  const served = servedModelsRows(info);
  if (rows.length === 0 && served.length === 0) return null;
  return (
    <section data-testid="local-servers" aria-label="Local inference servers">
      <h3>Local inference servers</h3>
      {rows.length === 0 ? (
        <p className="muted small">None configured or found on the usual ports
          (<code>ruckus-agent serve --endpoint vllm=http://127.0.0.1:8000</code> or <code>--probe-local-servers</code>).</p>
      ) : (
        <table className="table compact" aria-label="Local servers">
          <thead><tr><th>Runtime</th><th>URL</th><th>Status</th><th>Engine</th><th>Models served</th>
            <th title="the server's Prometheus /metrics: where its own TTFT, TPOT ... come from">Metrics</th></tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr key={`${r.runtime}-${r.url}`} data-server={r.url}>
                <td>{r.runtime}</td>
                <td><span className="mono small">{r.url}</span>
                  <div className="muted small" title={r.source === "probed" ? "found on a usual loopback port" : "named by the operator"}>
                    {r.source}</div></td>
                <td><ul className="avail"><li className={r.answering ? "yes" : "no"}><span className="dot" />
                  <span className="small">{r.status}</span></li></ul></td>
                <td className="small">{r.engine ?? <span className="muted">not reported</span>}</td>
                <td><ModelList models={r.models} /></td>
                <td className="small" title={r.metricsUrl ?? undefined}>
                  {r.metricsOk ? <span className="ok-inline">ok</span> : <span className="muted">{r.metrics}</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {served.length > 0 && (
        <ul className="small served-models" aria-label="Served models">
          {served.map((r) => (
            <li key={r.runtime} data-runtime={r.runtime}>
              <span className="strong">{r.runtime}</span> jobs can use:{" "}
              {r.models.length > 0 ? <ModelList models={r.models} />
                : <span className="muted">no model{r.reason ? ` (${r.reason})` : ""}</span>}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function CapabilitiesView({ info }: { info: AgentInfo }) {
  const gpus = info.gpus ?? [];
  return (
    <>
      <h3>System</h3>
      <KeyValues items={[
        ["Host", info.system?.hostname],
        ["OS", `${info.system?.os ?? ""} ${info.system?.os_version ?? ""}`.trim() || undefined],
        ["Architecture", info.system?.architecture],
        ["Python", info.system?.python_version],
        ["Container", info.system?.container ?? "no"],
        ["Agent version", info.agent_version],
      ]} />
      <h3>CPU and memory</h3>
      <KeyValues items={[
        ["CPU", info.cpu?.model],
        ["Cores", `${info.cpu?.physical_cores ?? "?"} physical / ${info.cpu?.logical_cores ?? "?"} logical`],
        ["Max frequency", info.cpu?.max_frequency_mhz ? `${Math.round(info.cpu.max_frequency_mhz)} MHz` : undefined],
        ["ISA features", (info.cpu?.isa_features ?? []).join(", ") || undefined],
        ["Memory", formatBytes(info.memory?.total_bytes)],
        ["Swap", formatBytes(info.memory?.swap_total_bytes)],
        ["Disk free", info.disk ? `${formatBytes(info.disk.free_bytes)} of ${formatBytes(info.disk.total_bytes)}` : undefined],
      ]} />
      <h3>GPUs</h3>
      {gpus.length === 0 ? <p className="muted">No GPU detected.</p> : (
        <table className="table compact">
          <thead><tr><th>#</th><th>Name</th><th>Memory</th><th>Compute cap.</th><th>Tensor cores</th><th>Driver</th></tr></thead>
          <tbody>
            {gpus.map((g) => (
              <tr key={`${g.index}-${g.name}`}>
                <td>{g.index}</td>
                <td>{g.name}<div className="muted small">{g.vendor}{g.architecture ? ` · ${g.architecture}` : ""}</div></td>
                <td>{formatBytes(g.memory_total_bytes)}</td>
                <td>{g.compute_capability ?? "—"}</td>
                <td>{g.tensor_core_generation ? `gen ${g.tensor_core_generation}` : "—"}
                  {(g.tensor_core_precisions ?? []).length > 0 &&
                    <div className="muted small">{(g.tensor_core_precisions ?? []).join(", ")}</div>}</td>
                <td className="small">{g.driver_version ?? "—"}{g.cuda_version ? ` / CUDA ${g.cuda_version}` : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Runtimes</h3>
      <Availability items={(info.runtimes ?? []).map((r) => ({ ...r, name: `${r.name} (${r.access_mode})` }))} />
      <LocalServers info={info} />
      <h3>Frameworks</h3>
      <Availability items={info.frameworks ?? []} />
      <h3>Monitoring</h3>
      <Availability items={info.monitoring ?? []} />
      <h3>Models</h3>
      {(info.models ?? []).length === 0 ? <p className="muted">No model in the agent's cache.</p> : (
        <table className="table compact">
          <thead><tr><th>Name</th><th>Source</th><th>Parameters</th><th>Size</th><th>Dtype</th></tr></thead>
          <tbody>
            {(info.models ?? []).map((m) => (
              <tr key={m.name}>
                <td className="mono">{m.name}</td><td>{m.source}</td>
                <td>{m.parameters ? `${(m.parameters / 1e6).toFixed(0)} M` : "—"}</td>
                <td>{formatBytes(m.size_bytes)}</td><td>{m.dtype ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

/** An agent's settings for a user who may not change them. */
function AgentSettings({ agent }: { agent: Agent }) {
  return (
    <KeyValues items={[
      ["Name", agent.name],
      ["Labels", (agent.labels ?? []).length ? (agent.labels ?? []).map((l) => <span key={l} className="chip">{l}</span>) : "—"],
      ["Cost per hour", agent.cost_per_hour ? `$${agent.cost_per_hour}` : "—"],
    ]} />
  );
}

/** Refresh, activate/deactivate and remove buttons of the details panel, with the API's error inline. */
function AgentActionButtons({ agent }: { agent: Agent }) {
  const { activate, deactivate, remove, refreshCapabilities } = useAgentMutations();
  const navigate = useNavigate();
  const [confirming, setConfirming] = useState(false);
  const error = refreshCapabilities.error ?? activate.error ?? deactivate.error ?? remove.error;
  const pull = agent.mode === "pull";
  return (
    <div className="actions-row">
      <button className="btn btn-small" disabled={refreshCapabilities.isPending || pull}
        title={pull
          ? "The server cannot call a pull agent: the agent detects its host again by itself and sends what changed"
          : "Ask the agent to detect its hardware, frameworks and models again"}
        onClick={() => refreshCapabilities.mutate(agent.id)}>
        {refreshCapabilities.isPending ? "Refreshing…" : "Refresh"}
      </button>
      {agent.status === "deactivated" ? (
        <button className="btn btn-small" disabled={activate.isPending} onClick={() => activate.mutate(agent.id)}>Activate</button>
      ) : (
        <button className="btn btn-small" disabled={deactivate.isPending} onClick={() => deactivate.mutate(agent.id)}>Deactivate</button>
      )}
      {confirming ? (
        <>
          <button className="btn btn-small btn-danger" disabled={remove.isPending}
            onClick={() => remove.mutate(agent.id, { onSuccess: () => navigate("/agents") })}>Confirm removal</button>
          <button className="btn btn-small btn-ghost" onClick={() => setConfirming(false)}>Keep</button>
        </>
      ) : (
        <button className="btn btn-small btn-danger-outline" onClick={() => setConfirming(true)}>Remove</button>
      )}
      {error && <span className="error-inline" role="alert">{errorMessage(error)}</span>}
    </div>
  );
}

function AgentDetails({ agent, may }: { agent: Agent; may: AgentActions }) {
  const info = agent.capabilities;
  return (
    <Card title={<>{agent.name} <StatusBadge status={agent.status} /></>} className="details"
      actions={may.toggle && <AgentActionButtons agent={agent} />}>
      {agent.status_reason && <p className="muted small">{agent.status_reason}</p>}
      <HeartbeatAlert agent={agent} />
      <KeyValues items={[
        ["Mode", <><ModeBadge mode={agent.mode} /> <span className="muted small">{MODE_DESCRIPTIONS[agent.mode]}</span></>],
        ["URL", agent.url ? <span className="mono">{agent.url}</span> : <span className="muted">{agentUrlText(agent)}</span>],
        ["Activity", agent.activity],
        ["Last seen", formatAgo(agent.last_seen)],
        ["Hardware fingerprint", <span className="mono small">{agent.hardware_fingerprint || "—"}</span>],
        ["Protocol", agent.protocol_version],
      ]} />
      <MeasuredPeaks agent={agent} mayBenchmark={may.benchmark} />
      <h3>Settings</h3>
      {may.edit ? <AgentEditForm key={agent.id + agent.updated_at} agent={agent} /> : <AgentSettings agent={agent} />}
      {info ? <CapabilitiesView info={info} /> : <Empty title="No capabilities reported yet" />}
    </Card>
  );
}

/** The fleet: register agents, see their status live, and inspect one agent's capabilities and peaks. */
export function AgentsPage() {
  useLive({ agents: true });
  const agents = useAgents();
  const { agentId } = useParams();
  const permissions = usePermissions();
  const mayRegister = canRegisterAgents(permissions);
  const may = agentActions(permissions);
  const [showRegister, setShowRegister] = useState(false);
  const selected = agents.data?.find((a) => a.id === agentId);
  const registerOpen = mayRegister && (showRegister || (agents.data?.length === 0));
  return (
    <div className="page">
      <div className="page-header">
        <h1>Agents</h1>
        {mayRegister && (
          <button className="btn btn-primary" onClick={() => setShowRegister((v) => !v)}>
            {registerOpen ? "Close" : "Register agent"}
          </button>
        )}
      </div>
      {registerOpen && <Card title="Register an agent by URL"><RegisterAgentForm /></Card>}
      <div className={selected ? "split" : ""}>
        <Card title={`Fleet${agents.data ? ` (${agents.data.length})` : ""}`}>
          {agents.isPending ? <Spinner /> : agents.isError ? (
            <ErrorBox error={agents.error} onRetry={() => void agents.refetch()} />
          ) : agents.data.length === 0 ? (
            <Empty title="No agents yet">
              {mayRegister ? <>Start an agent (<code>ruckus-agent serve --token …</code>) and register it by URL above, or start it
              with <code>--server URL --registration-key KEY</code> to join by itself (add <code>--pull</code> behind
              NAT or a firewall: it then opens no port and asks the server for work).</> :
                "Agents appear here once a fleet administrator registers them or they join with a registration key."}
            </Empty>
          ) : (
            <table className="table" aria-label="Agents">
              <thead><tr><th>Agent</th><th>Status</th><th>Hardware</th><th>Runtimes</th><th>Labels</th><th>Seen</th></tr></thead>
              <tbody>{agents.data.map((a) => <AgentRow key={a.id} agent={a} selected={a.id === agentId} />)}</tbody>
            </table>
          )}
        </Card>
        {selected && <AgentDetails agent={selected} may={may} />}
        {agentId && agents.data && !selected && <ErrorBox title="Agent not found" error={`No agent with id ${agentId}.`} />}
      </div>
    </div>
  );
}
