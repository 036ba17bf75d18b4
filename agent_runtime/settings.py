"""Agent settings (pydantic-settings): environment variables ``RUCKUS_AGENT_*`` and CLI flags.

The class is strict: an unknown ``RUCKUS_AGENT_*`` variable or a bad value stops the agent at start
with a message naming the setting, instead of running with a silently ignored typo.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agent_runtime import constants
from agent_runtime.egress import parse_endpoint
from agent_runtime.local_servers import ServerSpec, load_servers_file, parse_server_spec, usual_servers

ENV_PREFIX = "RUCKUS_AGENT_"
#: Variables with our prefix that belong to the server (DESIGN section 7), not to the agent.
# Server settings that share the prefix (a compose file may give both processes one environment).
_SERVER_VARIABLES = frozenset(
    {
        "RUCKUS_AGENT_ALLOWED_NETWORKS",
        "RUCKUS_AGENT_LOST_AFTER_S",
        "RUCKUS_AGENT_HTTP_TIMEOUT_S",
        "RUCKUS_AGENT_PROBE_TIMEOUT_S",
    }
)
#: Largest request body the agent's API reads, by default (a job request is a few kilobytes).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _list_value(value: Any) -> Any:
    """A list setting from the environment: a comma-separated list, or a JSON list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


#: What the example env files hold in place of secrets; an agent does not start with it.
PLACEHOLDER_MARK = "change-me"

class Settings(BaseSettings):
    """Configuration of one agent process.

    Attributes:
        host: Interface uvicorn listens on.
        port: TCP port.
        data_dir: Directory for the spool, converted models, caches and registration state.
        token: Bearer token the server must present when calling this agent.
        server: Server URL to self-announce to (with ``registration_key``).
        registration_key: Shared key proving this agent may join the server.
        name: Human name of the agent (default: host name).
        public_url: URL the server should use to reach this agent (default: derived from host/port).
        pull: Pull mode: the agent opens no port to the network and asks the server for work (behind NAT or a
            firewall); its local API stays on loopback.
        model_dirs: Extra directories holding model folders (``<dir>/<name>/config.json``).
        heartbeat_interval_s: Seconds between heartbeats until the server answers with its own interval (then the
            server's, which its lost-agent detection is based on).
        capabilities_refresh_s: Seconds between capability re-detections.
        telemetry_interval_s: Seconds between two telemetry samples during a run (RSS, CPU, GPU).
        log_level: Log level.
        log_json: Log JSON lines.
        allowed_key_envs: Environment variables a job may name as its API key (``api_key_env``); ``RUCKUS_*``
            names are never allowed.
        allowed_endpoints: URL prefixes (``https://api.openai.com/v1``) and networks (``10.0.0.0/8``) a job's
            runtime may reach; the ``vllm`` runtime may also reach loopback.
        allowed_paths: Directories, besides the data and model directories, a job may name files in.
        max_body_bytes: Largest request body the API accepts (413 beyond, before it is read).
        endpoints: Inference servers on this host, ``RUNTIME=URL`` (``vllm=http://127.0.0.1:8000``); a gray-box
            runtime is available only while one of its servers answers.
        endpoints_file: TOML file with more servers (``[[server]]`` tables: runtime, url, metrics_url, api_key_env).
        probe_local_servers: Also look for servers on the usual loopback ports (vLLM 8000, llama.cpp 8080,
            Ollama 11434).
        server_check_interval_s: Seconds between two checks of the local servers (what they serve, whether they
            answer); a change reaches the server with the next heartbeat.
        debug: Serve the OpenAPI documentation (``/docs``, ``/redoc``, ``/openapi.json``).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    data_dir: Path = Path("data/agent")
    token: SecretStr | None = None
    server: str | None = Field(default=None, pattern=r"^https?://")
    registration_key: SecretStr | None = None
    name: str = ""
    public_url: str | None = Field(default=None, pattern=r"^https?://")
    pull: bool = False
    model_dirs: list[Path] = Field(default_factory=list)
    heartbeat_interval_s: float = Field(default=constants.HEARTBEAT_INTERVAL_S, gt=0, le=3600)
    capabilities_refresh_s: float = Field(default=constants.CAPABILITIES_REFRESH_S, gt=0)
    telemetry_interval_s: float = Field(default=constants.TELEMETRY_INTERVAL_S, ge=0.01, le=60)
    log_level: str = "info"
    log_json: bool = False
    allowed_key_envs: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_endpoints: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_paths: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024, le=1024**3)
    endpoints: Annotated[list[str], NoDecode] = Field(default_factory=list)
    endpoints_file: Path | None = None
    probe_local_servers: bool = True
    server_check_interval_s: float = Field(default=constants.SERVER_CHECK_INTERVAL_S, ge=1, le=3600)
    debug: bool = False

    @field_validator("allowed_key_envs", "allowed_endpoints", "allowed_paths", "endpoints", mode="before")
    @classmethod
    def _split_list(cls, v: Any) -> Any:
        """Read ``A,B`` (or a JSON list) from the environment."""
        return _list_value(v)

    @field_validator("allowed_key_envs")
    @classmethod
    def _env_names(cls, v: list[str]) -> list[str]:
        """Only valid variable names (``RUCKUS_*`` ones are kept here and refused by the policy, with a warning)."""
        bad = [n for n in v if not _ENV_NAME.match(n)]
        if bad:
            raise ValueError(f"not an environment variable name: {', '.join(bad)}")
        return v

    @field_validator("allowed_endpoints")
    @classmethod
    def _endpoints(cls, v: list[str]) -> list[str]:
        """Each entry is a URL prefix or a network."""
        for value in v:
            parse_endpoint(value)  # raises ValueError naming the value
        return [value.strip() for value in v]

    @field_validator("endpoints")
    @classmethod
    def _servers(cls, v: list[str]) -> list[str]:
        """Each entry is ``RUNTIME=URL`` for a gray-box runtime."""
        for value in v:
            parse_server_spec(value)  # raises ValueError naming the value
        return [value.strip() for value in v]

    @field_validator("endpoints_file")
    @classmethod
    def _servers_file(cls, v: Path | None) -> Path | None:
        """The file must exist and hold valid entries (it is read at start; a change needs a restart)."""
        if v is not None:
            load_servers_file(v)  # raises ValueError naming the file and the entry
        return v

    @field_validator("token")
    @classmethod
    def _token_long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        """Refuse guessable tokens: the token is the only thing guarding the agent's API."""
        if v is not None and len(v.get_secret_value()) < 8:
            raise ValueError("token must be at least 8 characters")
        return v

    @field_validator("token", "registration_key")
    @classmethod
    def _not_a_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        """Refuse the example env files' placeholders: an agent started with one would be open to anyone."""
        if v is not None and PLACEHOLDER_MARK in v.get_secret_value().lower():
            raise ValueError(
                f"still holds the example placeholder ({PLACEHOLDER_MARK!r}); set a real secret, e.g. "
                '"$(openssl rand -hex 24)"'
            )
        return v

    @model_validator(mode="after")
    def _no_unknown_variables(self) -> Settings:
        """Refuse ``RUCKUS_AGENT_*`` variables that match no setting (pydantic-settings ignores them)."""
        known = {ENV_PREFIX + name.upper() for name in type(self).model_fields}
        unknown = sorted(
            k for k in os.environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known | _SERVER_VARIABLES
        )
        if unknown:
            raise ValueError(f"unknown environment variable(s): {', '.join(unknown)}")
        return self

    @field_validator("server", "public_url")
    @classmethod
    def _strip_slash(cls, v: str | None) -> str | None:
        """Store URLs without a trailing slash so paths can be appended."""
        return v.rstrip("/") if v else v

    def configured_servers(self) -> list[ServerSpec]:
        """The servers the operator named (flags or environment, then the file), without duplicates.

        Raises:
            ValueError: The servers file became unreadable or invalid since start.
        """
        specs = [parse_server_spec(v) for v in self.endpoints]
        if self.endpoints_file is not None:
            specs += load_servers_file(self.endpoints_file)
        seen: set[tuple[str, str]] = set()
        unique = []
        for spec in specs:
            if (spec.runtime, spec.url) not in seen:
                seen.add((spec.runtime, spec.url))
                unique.append(spec)
        return unique

    def local_servers(self) -> list[ServerSpec]:
        """Servers to check: the configured ones, then the usual loopback ports (when probing is on)."""
        configured = self.configured_servers()
        return configured + (usual_servers(configured) if self.probe_local_servers else [])

    def advertised_url(self) -> str:
        """URL the server should call this agent at.

        Returns:
            ``public_url`` when set, else ``http://<host>:<port>`` with a wildcard host replaced by the
            host name.
        """
        if self.public_url:
            return self.public_url
        host = self.host
        if _is_wildcard(host):
            import socket

            host = socket.gethostname()
        return f"http://{host}:{self.port}"


def _is_wildcard(host: str) -> bool:
    """Whether a listen address means "every interface" (empty, or the unspecified IPv4 or IPv6 address)."""
    try:
        return not host or ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name
        return False
