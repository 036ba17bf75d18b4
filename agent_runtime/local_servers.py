"""Inference servers on the agent's host: the ones the operator names and the ones on the usual loopback ports.

A gray-box runtime (``vllm``, ``llamacpp_server``) measures a server that runs next to the agent. The agent
advertises such a runtime only while one of its servers answers, with the models it serves, the engine's version
and whether its Prometheus ``/metrics`` can be read (:class:`~common.protocol.LocalServer`); the server plans only
jobs for models that a local server serves.

Where servers come from:

* **Configured** by the operator: ``--endpoint vllm=http://127.0.0.1:8000`` (repeatable,
  ``RUCKUS_AGENT_ENDPOINTS``) or a TOML file (``--endpoints-file``) with ``[[server]]`` tables (``runtime``,
  ``url``, optional ``metrics_url`` and ``api_key_env``). A configured server is always listed, answering or not,
  with the reason; its URLs become allowed endpoints (the operator named them).
* **Probed** on the usual loopback ports (vLLM 8000, llama.cpp's ``llama-server`` 8080, Ollama 11434) unless
  the operator turned it off (``--no-probe-local-servers``). A probed port is listed only when a server answers
  there, under the runtime its engine belongs to.

A probe is three bounded requests (``GET /v1/models``, the engine's version endpoint, ``GET /metrics``), with a
short timeout, no redirects, no proxy from the environment and a cap on what is read: an answer is never
trusted beyond a list of model names and a version string.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import httpx
from prometheus_client.parser import text_string_to_metric_families

from common.catalog import RUNTIMES, model_names
from common.protocol import AccessMode, LocalServer

#: Seconds one probe request may take (a local server answers in milliseconds).
PROBE_TIMEOUT_S = 2.0
#: Most bytes read from one probe answer.
PROBE_MAX_BYTES = 2 * 1024 * 1024
#: Most model names kept from one server, and the longest name kept.
MAX_MODELS = 100
MAX_NAME_CHARS = 200
#: Where the usual engines listen by default: (runtime, root URL).
USUAL_SERVERS: tuple[tuple[str, str], ...] = (
    ("vllm", "http://127.0.0.1:8000"),
    ("llamacpp_server", "http://127.0.0.1:8080"),
    ("llamacpp_server", "http://127.0.0.1:11434"),
)
#: ``owned_by`` of ``GET /v1/models`` entries -> engine; it tells which runtime a probed port belongs to.
_OWNERS = {"vllm": "vllm", "llamacpp": "llama.cpp", "me": "llama.cpp", "library": "ollama"}
#: Engine -> the runtime that measures it.
ENGINE_RUNTIMES = {"vllm": "vllm", "llama.cpp": "llamacpp_server", "ollama": "llamacpp_server"}
#: Prometheus name prefix of each engine's own metrics.
METRIC_PREFIXES = {"vllm": "vllm:", "llamacpp_server": "llamacpp:"}
_NO_ANSWER = "no answer (the connection failed or timed out)"


def server_runtimes() -> tuple[str, ...]:
    """Runtimes that measure a server on the agent's host (the catalogue's gray-box runtimes)."""
    return tuple(name for name, rdef in RUNTIMES.items() if rdef.access_mode == AccessMode.GRAY_BOX)


@dataclass(frozen=True)
class ServerSpec:
    """Where a local inference server is (or may be).

    Attributes:
        runtime: Runtime that reaches it.
        url: Root URL, without a trailing slash and without ``/v1``.
        metrics_url: Prometheus endpoint (default ``<url>/metrics``).
        api_key_env: Environment variable holding the server's API key (a server started with ``--api-key``).
        source: ``configured`` or ``probed``.
    """

    runtime: str
    url: str
    metrics_url: str | None = None
    api_key_env: str | None = None
    source: Literal["configured", "probed"] = "configured"

    @property
    def api_url(self) -> str:
        """The OpenAI-compatible API base (``<url>/v1``)."""
        return f"{self.url}/v1"

    @property
    def prometheus_url(self) -> str:
        """The Prometheus endpoint."""
        return self.metrics_url or f"{self.url}/metrics"

    def headers(self) -> dict[str, str]:
        """Request headers, with the server's API key when the operator named its variable and it is set."""
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        return {"Authorization": f"Bearer {key}"} if key else {}


def _root_url(url: str, field: str) -> str:
    """Normalize a server URL to its root: http(s), a host, no credentials, query or fragment, no ``/v1``.

    Raises:
        ValueError: Naming ``field`` and the problem.
    """
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise ValueError(f"{field}: not a valid URL") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{field}: needs an http:// or https:// URL with a host, got {url!r}")
    if parsed.userinfo or parsed.query or parsed.fragment:
        raise ValueError(f"{field}: a server URL carries no user name, password, query or fragment")
    path = parsed.path.rstrip("/").removesuffix("/v1")
    return str(parsed.copy_with(path=path or "/")).rstrip("/")


def _check_runtime(runtime: str, field: str) -> str:
    """The runtime name, when it is a gray-box runtime of the catalogue.

    Raises:
        ValueError: Another name.
    """
    runtime = runtime.strip()
    known = server_runtimes()
    if runtime not in known:
        raise ValueError(f"{field}: {runtime!r} is not a runtime that measures a local server (one of: "
                         f"{', '.join(known)})")
    return runtime


def parse_server_spec(value: str) -> ServerSpec:
    """Read one ``RUNTIME=URL`` value (``--endpoint vllm=http://127.0.0.1:8000``).

    Args:
        value: The value.

    Returns:
        The spec.

    Raises:
        ValueError: Not ``RUNTIME=URL``, an unknown runtime or a bad URL (the message names the value).
    """
    runtime, sep, url = value.partition("=")
    if not sep or not runtime.strip() or not url.strip():
        raise ValueError(f"endpoint {value!r}: expected RUNTIME=URL, e.g. vllm=http://127.0.0.1:8000")
    field = f"endpoint {value!r}"
    return ServerSpec(runtime=_check_runtime(runtime, field), url=_root_url(url, field))


def load_servers_file(path: Path) -> list[ServerSpec]:
    """Read a servers file: TOML with one ``[[server]]`` table per server.

    Example::

        [[server]]
        runtime = "vllm"
        url = "http://127.0.0.1:8000"
        api_key_env = "VLLM_API_KEY"    # optional: the server was started with --api-key

    Args:
        path: The file.

    Returns:
        The specs, in file order.

    Raises:
        ValueError: Unreadable file, not TOML, or a bad entry (the message names the file and the entry).
    """
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"endpoints file {path}: {exc}") from exc
    entries = data.get("server", [])
    if not isinstance(entries, list) or set(data) - {"server"}:
        raise ValueError(f"endpoints file {path}: expected only [[server]] tables")
    specs = []
    for i, entry in enumerate(entries):
        field = f"endpoints file {path}: server[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"runtime", "url", "metrics_url", "api_key_env"}:
            raise ValueError(f"{field}: keys are runtime, url, metrics_url and api_key_env")
        if not isinstance(entry.get("runtime"), str) or not isinstance(entry.get("url"), str):
            raise ValueError(f"{field}: runtime and url are required strings")
        metrics = entry.get("metrics_url")
        key_env = entry.get("api_key_env")
        if key_env is not None and (not isinstance(key_env, str) or not key_env.isidentifier()):
            raise ValueError(f"{field}.api_key_env: not an environment variable name")
        specs.append(ServerSpec(
            runtime=_check_runtime(entry["runtime"], f"{field}.runtime"),
            url=_root_url(entry["url"], f"{field}.url"),
            metrics_url=_root_url(metrics, f"{field}.metrics_url") if isinstance(metrics, str) else None,
            api_key_env=key_env,
        ))
    return specs


def usual_servers(configured: Iterable[ServerSpec]) -> list[ServerSpec]:
    """The usual loopback ports not already configured, as specs to probe."""
    taken = {spec.url for spec in configured}
    known = set(server_runtimes())
    return [ServerSpec(runtime=r, url=u, source="probed") for r, u in USUAL_SERVERS if u not in taken and r in known]


def _get(client: httpx.Client, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """GET ``url`` and read at most :data:`PROBE_MAX_BYTES` of the answer.

    Raises:
        httpx.HTTPError: The request failed.
    """
    with client.stream("GET", url, headers=headers) as resp:
        body = bytearray()
        for chunk in resp.iter_bytes():
            body += chunk
            if len(body) > PROBE_MAX_BYTES:
                break
        return resp.status_code, bytes(body[:PROBE_MAX_BYTES])


def _json(body: bytes) -> Any:
    """JSON from an answer, None when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _text(value: Any) -> str | None:
    """A short printable string from an answer, or None."""
    if not isinstance(value, str) or not value:
        return None
    clean = "".join(ch for ch in value if ch.isprintable())[:MAX_NAME_CHARS]
    return clean or None


def _models(payload: Any) -> tuple[list[str], str | None] | None:
    """Model ids and the engine their ``owned_by`` names, from ``GET /v1/models``; None when not a model list."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        return None
    names: list[str] = []
    engine = None
    for entry in data[:MAX_MODELS]:
        if not isinstance(entry, dict) or (name := _text(entry.get("id"))) is None:
            continue
        names.append(name)
        engine = engine or _OWNERS.get(str(entry.get("owned_by", "")).lower())
    return names, engine


def _version(client: httpx.Client, spec: ServerSpec, engine: str | None) -> tuple[str | None, str | None]:
    """The engine and its version, from the engine's own endpoint (``/version``, ``/api/version``, ``/props``)."""
    probes = (("vllm", "/version", "version"), ("ollama", "/api/version", "version"),
              ("llama.cpp", "/props", "build_info"))
    for name, path, key in probes:
        if engine is not None and name != engine:
            continue
        try:
            status, body = _get(client, spec.url + path, spec.headers())
        except httpx.HTTPError:
            return engine, None
        payload = _json(body) if status == 200 else None
        if isinstance(payload, dict) and (version := _text(payload.get(key))):
            return name, version
    return engine, None


def _metrics_status(client: httpx.Client, spec: ServerSpec) -> tuple[bool, str | None]:
    """Whether the server's ``/metrics`` answers with Prometheus text holding its engine's metrics."""
    try:
        status, body = _get(client, spec.prometheus_url, spec.headers())
    except httpx.HTTPError:
        return False, f"{spec.prometheus_url}: {_NO_ANSWER}"
    if status != 200:
        return False, f"{spec.prometheus_url} answered HTTP {status} (start the server with its metrics on)"
    prefix = METRIC_PREFIXES.get(spec.runtime, "")
    try:
        text = body.decode()
        families = [f.name for f in text_string_to_metric_families(text if text.endswith("\n") else text + "\n")]
    except (UnicodeDecodeError, ValueError, TypeError, IndexError):
        return False, f"{spec.prometheus_url} did not answer with Prometheus text"
    if prefix and not any(name.startswith(prefix) for name in families):
        return False, f"{spec.prometheus_url} holds no {prefix}* metrics"
    return True, None


def probe_server(spec: ServerSpec, *, timeout_s: float = PROBE_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None) -> LocalServer:
    """Ask one server what it serves, what it is, and whether its metrics can be read.

    Args:
        spec: Where it is.
        timeout_s: Seconds per request.
        transport: HTTP transport (tests substitute their own).

    Returns:
        Its description (unavailable with the reason when it does not answer with a model list).
    """
    out = LocalServer(runtime=spec.runtime, url=spec.url, metrics_url=spec.prometheus_url, source=spec.source)
    with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False, transport=transport) as client:
        try:
            status, body = _get(client, f"{spec.api_url}/models", spec.headers())
        except httpx.HTTPError:
            return out.model_copy(update={"reason": f"{spec.api_url}/models: {_NO_ANSWER}"})
        if status != 200:
            return out.model_copy(update={"reason": f"{spec.api_url}/models answered HTTP {status}"})
        listed = _models(_json(body))
        if listed is None:
            return out.model_copy(update={"reason": f"{spec.api_url}/models did not answer with a model list"})
        models, engine = listed
        runtime = spec.runtime
        if spec.source == "probed" and engine in ENGINE_RUNTIMES:
            # A port is only a convention: the engine that answers decides which runtime measures it.
            runtime = ENGINE_RUNTIMES[engine]
            spec = replace(spec, runtime=runtime)
        engine, version = _version(client, spec, engine)
        metrics_ok, metrics_reason = _metrics_status(client, spec)
    return out.model_copy(update={
        "runtime": runtime, "available": True, "engine": engine, "engine_version": version, "models": models,
        "metrics_available": metrics_ok, "metrics_reason": metrics_reason,
    })


def probe_servers(specs: Sequence[ServerSpec], *, timeout_s: float = PROBE_TIMEOUT_S,
                  transport: httpx.BaseTransport | None = None) -> list[LocalServer]:
    """Probe servers side by side; configured ones are listed whatever the outcome, probed ones when they answer.

    Args:
        specs: Configured servers, then the usual ports to probe.
        timeout_s: Seconds per request.
        transport: HTTP transport (tests substitute their own).

    Returns:
        The servers in ``specs`` order.
    """
    if not specs:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(specs)), thread_name_prefix="server-probe") as pool:
        found = list(pool.map(lambda s: probe_server(s, timeout_s=timeout_s, transport=transport), specs))
    return [server for server in found if server.source == "configured" or server.available]


def served_name(served: Iterable[str], wanted: str) -> str | None:
    """The name a server serves ``wanted`` under (itself, or a catalogue alias of it), or None.

    Args:
        served: Model ids the server lists.
        wanted: The model the job names.
    """
    names = model_names(wanted)
    return next((model for model in served if model.lower() in names), None)
