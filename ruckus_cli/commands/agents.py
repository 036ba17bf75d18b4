"""``ruckus agents``: list, register, show, benchmark and remove agents."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from common.statuses import ExperimentStatus
from ruckus_cli.client import EXIT_API_ERROR, CliError, connect
from ruckus_cli.options import JsonOpt, ServerOpt, TokenOpt
from ruckus_cli.output import console, exits_on_error, format_peak, format_time, print_json, print_table
from ruckus_cli.watch import wait_for_experiment, watch_experiment

app = typer.Typer(help="Agents: list, register, show, remove.", no_args_is_help=True)

#: Shown instead of a pull agent's URL: the server never calls it.
PULL_URL_TEXT = "— (pull mode: the agent calls the server)"


def agent_url_text(agent: dict[str, Any]) -> str:
    """The URL the server calls the agent at, or why there is none.

    Args:
        agent: The agent as the API returns it.

    Returns:
        The URL; for a pull agent, :data:`PULL_URL_TEXT`.
    """
    if agent.get("url"):
        return str(agent["url"])
    return PULL_URL_TEXT if agent.get("mode") == "pull" else "—"


def heartbeat_error_text(agent: dict[str, Any]) -> str | None:
    """The agent's heartbeat error with since when, or None while its heartbeats arrive.

    Args:
        agent: The agent as the API returns it.

    Returns:
        ``"<error> (since <time>)"``, or None.
    """
    error = agent.get("heartbeat_error")
    if not error:
        return None
    since = agent.get("heartbeat_error_since")
    return f"{error} (since {format_time(since)})" if since else str(error)


#: Columns of the local inference servers table of ``ruckus agents show``.
LOCAL_SERVER_COLUMNS = ["runtime", "url", "source", "status", "engine", "models served", "metrics"]


def local_server_rows(capabilities: dict[str, Any]) -> list[list[str]]:
    """One row per inference server the agent reported on its host, answering ones first.

    Args:
        capabilities: The agent's ``AgentInfo`` as the API returns it (``capabilities``).

    Returns:
        Rows in :data:`LOCAL_SERVER_COLUMNS` order; empty for an agent that reported none (or an older agent).
    """
    servers = sorted(capabilities.get("local_servers") or [], key=lambda s: not s.get("available"))
    rows = []
    for server in servers:
        if server.get("available"):
            status = "answering"
        else:
            status = "not answering" + (f": {server['reason']}" if server.get("reason") else "")
        engine = " ".join(str(x) for x in (server.get("engine"), server.get("engine_version")) if x) or "—"
        if server.get("metrics_available"):
            metrics = "ok"
        else:
            metrics = f"unavailable: {server.get('metrics_reason') or 'not readable'}"
        rows.append([server.get("runtime", ""), server.get("url", ""), server.get("source") or "configured", status,
                     engine, ", ".join(server.get("models") or []) or "—", metrics])
    return rows


def _runtime_text(runtime: dict[str, Any]) -> str:
    """``available`` or ``unavailable: why``, plus the models a gray-box runtime's servers serve."""
    text = "available" if runtime["available"] else f"unavailable: {runtime.get('reason')}"
    served = runtime.get("served_models")
    if served is not None:  # only runtimes that reach a server on the agent's host have a list (maybe empty)
        text += f"; serves {', '.join(served)}" if served else "; serves no model"
    return text


def _agent_row(a: dict[str, Any]) -> list[Any]:
    """One row of ``ruckus agents list``."""
    s = a.get("summary") or {}
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in s.get("gpus", [])) or "—"
    status = f"{a['status']} (heartbeat error)" if a.get("heartbeat_error") else a["status"]
    return [a["id"], a["name"], a.get("mode"), status, a["activity"], a.get("url") or "—", s.get("cpu"), gpus,
            ",".join(s.get("runtimes", [])), a.get("last_seen")]


@app.command("list")
@exits_on_error
def agents_list(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List agents."""
    agents = connect(server, token).paginate("/api/v1/agents/")
    if as_json:
        print_json(agents)
        return
    print_table("Agents", ["id", "name", "mode", "status", "activity", "url", "cpu", "gpus", "runtimes", "last seen"],
                [_agent_row(a) for a in agents])


@app.command("register")
@exits_on_error
def agents_register(
    url: Annotated[str, typer.Argument(help="Agent base URL, e.g. http://10.0.0.5:8100")],
    agent_token: Annotated[str, typer.Option("--agent-token", help="The agent's --token.")],
    name: Annotated[str | None, typer.Option(help="Name (default: what the agent reports).")] = None,
    label: Annotated[list[str] | None, typer.Option(help="Label (repeatable).")] = None,
    cost_per_hour: Annotated[float | None, typer.Option(help="Dollars per hour.")] = None,
    server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Register an agent by URL (the server calls the agent and stores what it reports)."""
    body: dict[str, Any] = {"url": url, "token": agent_token}
    if name:
        body["name"] = name
    if label:
        body["labels"] = label
    if cost_per_hour is not None:
        body["cost_per_hour"] = cost_per_hour
    agent = connect(server, token).post("/api/v1/agents/", body)
    if as_json:
        print_json(agent)
    else:
        console.print(f"Registered {agent['name']} ({agent['id']}): {agent['hardware_fingerprint']}")


@app.command("show")
@exits_on_error
def agents_show(agent_id: str, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Show one agent: mode, address, status, heartbeat error, capabilities, local inference servers and peaks."""
    agent = connect(server, token).get(f"/api/v1/agents/{agent_id}/")
    if as_json:
        print_json(agent)
        return
    caps = agent.get("capabilities") or {}
    reason = agent.get("status_reason")
    rows = [["name", agent["name"]], ["mode", agent.get("mode")],
            ["status", f"{agent['status']} ({reason})" if reason else agent["status"]],
            ["url", agent_url_text(agent)]]
    heartbeat_error = heartbeat_error_text(agent)
    if heartbeat_error:
        rows.append(["heartbeat error", heartbeat_error])
    rows += [["last seen", format_time(agent.get("last_seen"))], ["fingerprint", agent["hardware_fingerprint"]],
             ["cpu", (caps.get("cpu") or {}).get("model")],
             ["memory GiB", round(((caps.get("memory") or {}).get("total_bytes") or 0) / 2**30, 1)]]
    for gpu in caps.get("gpus", []):
        rows.append([f"gpu {gpu['index']}", f"{gpu['name']}, {round((gpu.get('memory_total_bytes') or 0) / 2**30, 1)}"
                     f" GiB, CC {gpu.get('compute_capability')}, tensor cores gen {gpu.get('tensor_core_generation')}"])
    for rt in caps.get("runtimes", []):
        rows.append([f"runtime {rt['name']}", _runtime_text(rt)])
    for model in caps.get("models", []):
        rows.append(["model", f"{model['name']} ({model.get('format')}, {model.get('source')})"])
    peaks = (agent.get("summary") or {}).get("peaks")
    if peaks is None:
        rows.append(["measured peaks", "none yet: `ruckus agents benchmark ID`"])
    else:
        when = f"measured {peaks.get('measured_at')}" + (" (quick)" if peaks.get("quick") else "")
        rows.append(["measured peaks", when])
        for name, fig in peaks["figures"].items():
            rows.append([f"  {name}", format_peak(fig)])
        for name, reason in peaks["unsupported"].items():
            rows.append([f"  {name}", f"not measured: {reason}"])
    print_table(f"Agent {agent['id']}", ["field", "value"], rows)
    servers = local_server_rows(caps)
    if servers:
        print_table(f"Local inference servers of {agent['name']} (gray-box runtimes measure these)",
                    LOCAL_SERVER_COLUMNS, servers)


@app.command("benchmark")
@exits_on_error
def agents_benchmark(
    agent_id: str,
    quick: Annotated[bool, typer.Option("--quick/--full", help="Short benchmark (seconds) or the full one.")] = True,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps")] = "auto",
    runs: Annotated[int, typer.Option(help="Runs (the first is the cold run, reported apart).")] = 3,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Watch it to the end.")] = True,
    server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Measure an agent's peaks (memory bandwidth, matmul throughput per precision) with a hardware benchmark job."""
    api = connect(server, token)
    agent = api.get(f"/api/v1/agents/{agent_id}/")
    exp = api.post("/api/v1/experiments/", {
        "name": f"hardware benchmark: {agent['name']}",
        "task": {"name": "hardware_benchmark", "params": {"quick": quick, "device": device}},
        "runtimes": [{"name": "hardware"}],
        "agents": {"ids": [agent["id"]]},
        "runs_per_job": runs,
    })
    if not exp.get("job_counts"):
        reasons = "; ".join(e["reason"] for e in (exp.get("plan") or {}).get("excluded", [])) or "no job was planned"
        raise CliError(f"agent {agent['name']} cannot run the benchmark: {reasons}", EXIT_API_ERROR, exp)
    if not wait:
        if as_json:
            print_json(exp)
        else:
            console.print(f"Experiment #{exp['id']} measures {agent['name']}")
        return
    status = wait_for_experiment(api, exp["id"]) if as_json else watch_experiment(api, exp["id"])
    if status == ExperimentStatus.COMPLETED and agent.get("mode") != "pull":
        # Have the agent detect its host again now. The server cannot call a pull agent: it sends what changed
        # itself. (The peaks shown below come from the benchmark result the server stored.)
        api.post(f"/api/v1/agents/{agent['id']}/refresh/", {})
    peaks = api.get(f"/api/v1/agents/{agent['id']}/")["summary"].get("peaks")
    if as_json:
        print_json({"experiment": exp["id"], "status": status, "peaks": peaks})
    else:
        console.print(f"Experiment #{exp['id']} {status}")
        if peaks:
            print_table(f"Measured peaks of {agent['name']} (best repeat of each figure)", ["figure", "peak"],
                        [[name, format_peak(fig)] for name, fig in peaks["figures"].items()])
    if status != ExperimentStatus.COMPLETED:
        raise typer.Exit(EXIT_API_ERROR)


@app.command("remove")
@exits_on_error
def agents_remove(
    agent_id: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Remove an agent (refused while it runs jobs)."""
    if not yes:
        typer.confirm(f"Remove agent {agent_id}?", abort=True)
    connect(server, token).delete(f"/api/v1/agents/{agent_id}/")
    console.print(f"Removed agent {agent_id}")
