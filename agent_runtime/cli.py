"""``ruckus-agent`` command line: ``serve``, ``info``, ``benchmark`` and ``prepare-models``.

Flags override ``RUCKUS_AGENT_*`` environment variables (see :class:`agent_runtime.settings.Settings`).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr, ValidationError

from agent_runtime.constants import STARTUP_PROBE_WAIT_S
from agent_runtime.egress import KeyEnvPolicy
from agent_runtime.logging import configure_logging
from agent_runtime.paths import LOCAL_TOKEN_FILE
from agent_runtime.settings import Settings
from common.descriptive import cv_warning
from common.files import atomic_write_bytes
from common.validation import field_errors

__all__ = ["LOCAL_TOKEN_FILE", "app", "is_loopback", "local_token"]

app = typer.Typer(name="ruckus-agent", help="RUCKUS agent: benchmark models on this host.", no_args_is_help=True)


def _settings(**overrides: Any) -> Settings:
    """Build settings from the environment plus the flags that were given; exit on bad values."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for field, message in field_errors(exc, default_field="settings").items():
            typer.echo(f"error: setting {field}: {message}", err=True)
        raise typer.Exit(code=2) from exc


def is_loopback(host: str) -> bool:
    """True for a loopback interface address or ``localhost``.

    Args:
        host: What ``--host`` names.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_token(data_dir: Path) -> str:
    """The pull agent's local API token: read from the data directory, or created there (owner-only).

    Args:
        data_dir: The agent's data directory.

    Returns:
        The token.
    """
    path = Path(data_dir) / LOCAL_TOKEN_FILE
    if path.is_file():
        token = path.read_text().strip()
        if len(token) >= 8:
            return token
    token = secrets.token_urlsafe(24)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, token.encode())
    return token


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Spool, model cache and registration state.")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token the server must present.")] = None,
    server: Annotated[str | None, typer.Option(help="Server URL to self-announce to.")] = None,
    registration_key: Annotated[str | None, typer.Option(help="Key that lets this agent join the server.")] = None,
    name: Annotated[str | None, typer.Option(help="Agent name (default: host name).")] = None,
    public_url: Annotated[str | None, typer.Option(help="URL the server should call this agent at.")] = None,
    pull: Annotated[
        bool | None,
        typer.Option("--pull/--push", help="Pull mode: open no port to the network and ask the server for work "
                     "(needs --server and --registration-key; the local API stays on loopback)."),
    ] = None,
    allow_key_env: Annotated[
        list[str] | None,
        typer.Option(help="Environment variable a job may name as its API key (api_key_env); repeatable. "
                     "RUCKUS_* variables are never allowed."),
    ] = None,
    allow_endpoint: Annotated[
        list[str] | None,
        typer.Option(help="Endpoint a job's runtime may reach: a URL prefix (https://api.openai.com/v1) or a "
                     "network (10.0.0.0/8); repeatable. vllm may always reach loopback."),
    ] = None,
    allow_path: Annotated[
        list[Path] | None,
        typer.Option(help="Directory a job may name files in (JSONL data, model paths), besides the data and "
                     "model directories; repeatable."),
    ] = None,
    endpoint: Annotated[
        list[str] | None,
        typer.Option(help="An inference server on this host for a gray-box runtime, RUNTIME=URL "
                     "(vllm=http://127.0.0.1:8000, llamacpp_server=http://127.0.0.1:8080); repeatable."),
    ] = None,
    endpoints_file: Annotated[
        Path | None, typer.Option(help="TOML file with more servers ([[server]] runtime, url, metrics_url, "
                                  "api_key_env).")
    ] = None,
    probe_local_servers: Annotated[
        bool | None,
        typer.Option("--probe-local-servers/--no-probe-local-servers",
                     help="Also look for servers on the usual loopback ports (vLLM 8000, llama.cpp 8080, "
                     "Ollama 11434)."),
    ] = None,
    debug: Annotated[
        bool | None, typer.Option("--debug/--no-debug", help="Serve the API documentation at /docs.")
    ] = None,
) -> None:
    """Run the agent's HTTP API (uvicorn); in pull mode, also the loop that asks the server for work."""
    import uvicorn

    from agent_runtime.api import create_app  # lazy: FastAPI and the whole agent, only for serve

    settings = _settings(
        host=host,
        port=port,
        data_dir=data_dir,
        token=token,
        server=server,
        registration_key=registration_key,
        name=name,
        public_url=public_url,
        pull=pull,
        # A repeatable flag not given arrives as an empty list: the environment decides then.
        allowed_key_envs=allow_key_env or None,
        allowed_endpoints=allow_endpoint or None,
        allowed_paths=allow_path or None,
        endpoints=endpoint or None,
        endpoints_file=endpoints_file,
        probe_local_servers=probe_local_servers,
        debug=debug,
    )
    for refused in KeyEnvPolicy.from_names(settings.allowed_key_envs).refused:
        typer.echo(f"warning: key variable {refused}: RUCKUS_* variables hold the agent's own settings and "
                   "secrets; no job may read them (ignored)", err=True)
    if bool(settings.server) != bool(settings.registration_key):
        typer.echo("error: --server and --registration-key go together", err=True)
        raise typer.Exit(code=2)
    if settings.pull:
        if not settings.server:
            typer.echo("error: --pull needs --server and --registration-key (the agent announces itself)", err=True)
            raise typer.Exit(code=2)
        if not is_loopback(settings.host):
            typer.echo(f"error: --host {settings.host}: in pull mode the agent's API stays on loopback "
                       "(127.0.0.1 or ::1); the server never calls it", err=True)
            raise typer.Exit(code=2)
        if settings.token is None:
            # Nobody but local tools calls a pull agent's API: a random token, kept for them in the data dir.
            settings.token = SecretStr(local_token(settings.data_dir))
    if settings.token is None:
        typer.echo("error: a token is required (--token or RUCKUS_AGENT_TOKEN)", err=True)
        raise typer.Exit(code=2)
    configure_logging(settings.log_level, json=settings.log_json)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower())


@app.command()
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print the AgentInfo as JSON.")] = False,
    nvidia_smi_xml: Annotated[Path | None, typer.Option(help="Describe GPUs from a recorded nvidia-smi -q -x.")] = None,
    rocm_smi_json: Annotated[Path | None, typer.Option(help="Describe GPUs from a recorded rocm-smi --json.")] = None,
    apple_profiler_json: Annotated[
        Path | None, typer.Option(help="Describe the host from a recorded system_profiler -json.")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Agent data directory.")] = None,
    endpoint: Annotated[
        list[str] | None, typer.Option(help="An inference server on this host, RUNTIME=URL; repeatable.")
    ] = None,
    endpoints_file: Annotated[Path | None, typer.Option(help="TOML file with more servers.")] = None,
    probe_local_servers: Annotated[
        bool | None, typer.Option("--probe-local-servers/--no-probe-local-servers",
                                  help="Also look for servers on the usual loopback ports.")
    ] = None,
) -> None:
    """Print what this agent would advertise (AgentInfo)."""
    from agent_runtime.detection import probes_pending, wait_for_pending_probes  # lazy: detection, only for info
    from agent_runtime.info import gather_agent_info  # lazy: detection, only for info

    settings = _settings(data_dir=data_dir, endpoints=endpoint or None, endpoints_file=endpoints_file,
                         probe_local_servers=probe_local_servers)
    configure_logging("warning")
    for flag, path in (("--nvidia-smi-xml", nvidia_smi_xml), ("--rocm-smi-json", rocm_smi_json)):
        if path is not None and not path.is_file():
            typer.echo(f"error: {flag}: no such file {path}", err=True)
            raise typer.Exit(code=2)
    def detect() -> Any:
        """One detection with the options given."""
        return gather_agent_info(
            data_dir=settings.data_dir,
            model_dirs=tuple(settings.model_dirs),
            name=settings.name,
            nvidia_smi_xml=nvidia_smi_xml,
            rocm_smi_json=rocm_smi_json,
            apple_profiler_json=apple_profiler_json,
            servers=settings.local_servers(),
        )

    result = detect()
    # As `serve` does at start: a torch import still running on a busy or small host would show the white-box
    # runtimes as unavailable; wait for it (bounded) and describe the host once it has settled.
    if probes_pending() and wait_for_pending_probes(STARTUP_PROBE_WAIT_S):
        result = detect()
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    typer.echo(f"{result.name}  {result.hardware_fingerprint()}")
    for srv in result.local_servers:
        if srv.available:
            engine = " ".join(p for p in (srv.engine, srv.engine_version) if p) or "unknown engine"
            metrics = "metrics ok" if srv.metrics_available else f"no metrics ({srv.metrics_reason})"
            typer.echo(f"  server {srv.runtime} {srv.url} [{srv.source}]: {engine}; serves "
                       f"{', '.join(srv.models) or 'nothing'}; {metrics}")
        else:
            typer.echo(f"  server {srv.runtime} {srv.url} [{srv.source}]: not answering ({srv.reason})")
    for rt in result.runtimes:
        state = "available" if rt.available else f"unavailable ({rt.reason})"
        typer.echo(f"  runtime {rt.name} [{rt.access_mode.value}]: {state}; metrics: {', '.join(rt.metrics)}")
        for metric, reason in rt.unavailable_metrics.items():
            typer.echo(f"    - {metric}: {reason}")


class BenchDevice(StrEnum):
    """Devices ``ruckus-agent benchmark`` can measure."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


@app.command()
def benchmark(
    as_json: Annotated[bool, typer.Option("--json", help="Print the HardwareBenchmarkResult as JSON.")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="Smaller sizes and 3 repeats (seconds).")] = False,
    device: Annotated[BenchDevice, typer.Option(help="Device to measure; CPU figures are always included.")] = (
        BenchDevice.AUTO
    ),
    repeats: Annotated[
        int | None, typer.Option(min=1, max=100, help="Timed repeats per figure (default 3 quick, 10 full).")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Agent data directory (the result is kept there).")] = None,
    save: Annotated[bool, typer.Option(help="Keep the result as the agent's advertised benchmark.")] = True,
) -> None:
    """Measure memory bandwidth and matrix-multiply throughput per precision on this host."""
    from agent_runtime.hwbench import (  # lazy: the benchmark and torch, only for benchmark
        BenchmarkConfig,
        DeviceUnavailable,
        run_benchmark,
        save_latest,
    )

    settings = _settings(data_dir=data_dir)
    configure_logging("warning")
    config = BenchmarkConfig(
        device=device.value, quick=quick, repeats=repeats, telemetry_interval_s=settings.telemetry_interval_s
    )

    def show(fig: Any) -> None:
        """One line per figure as it is measured: the peak (best repeat), then the mean and CV of the repeats."""
        if fig.supported and fig.statistics is not None:
            st = fig.statistics
            warning = cv_warning(st.cv)
            typer.echo(
                f"  {fig.metric_name:<28} {fig.peak:>11.2f} {fig.unit:<8} best of {st.n} "
                f"(mean {st.mean:.2f}, cv {st.cv or 0:.1%}){f'  {warning}' if warning else ''}"
            )
        else:
            typer.echo(f"  {fig.metric_name:<28} {'unsupported':>11}          {fig.reason}")

    try:
        result = run_benchmark(config, on_figure=None if as_json else show)
    except DeviceUnavailable as exc:
        typer.echo(f"error: --device: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if save:
        save_latest(settings.data_dir, result)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    summary = ", ".join(f"{k}={v:.4g}" for k, v in result.telemetry_summary.items())
    typer.echo(f"telemetry: {summary}")


@app.command("prepare-models")
def prepare_models(
    data_dir: Annotated[Path | None, typer.Option(help="Agent data directory.")] = None,
    force: Annotated[bool, typer.Option(help="Convert again even when a converted copy exists.")] = False,
) -> None:
    """Convert the packaged SmolLM2 GGUF into the agent's model cache (plain Hugging Face format)."""
    from agent_runtime.models import (  # lazy: model conversion, only for prepare-models
        ModelNotFoundError,
        convert_packaged_smollm2,
    )

    settings = _settings(data_dir=data_dir)
    configure_logging(settings.log_level)
    try:
        path = convert_packaged_smollm2(settings.data_dir, force=force)
    except ModelNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(json.dumps({"model": "smollm2-135m-instruct", "path": str(path)}))


if __name__ == "__main__":  # pragma: no cover
    app()
