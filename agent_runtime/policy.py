"""Everything a job may make this agent use, in one object: key variables, endpoints, file locations and servers.

Built once from the settings (:meth:`AgentPolicy.from_settings`) and handed to admission, the engine, the
runtimes and the tasks. Without one they apply :meth:`AgentPolicy.strict`: no key variable, no endpoint but the
gray-box runtime's loopback, and files only under the agent's own data and model directories.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agent_runtime.egress import EndpointPolicy, KeyEnvPolicy
from agent_runtime.local_servers import ServerSpec
from agent_runtime.paths import PathPolicy
from agent_runtime.settings import Settings


def _no_secrets() -> tuple[str, ...]:
    """No secret values to guard (a policy built without an agent around it)."""
    return ()


@dataclass(frozen=True)
class AgentPolicy:
    """What the agent's operator allows a job to name.

    Attributes:
        key_envs: Environment variables a job may name as ``api_key_env``.
        endpoints: Endpoints a runtime may reach.
        paths: Where files a job names may lie.
        secrets: Returns the agent's own secrets (its token, registration key and server credential): no request
            to a job's endpoint may carry them.
        servers: Inference servers on the agent's host to check (configured, then the usual loopback ports); a
            gray-box job that names no ``base_url`` uses the one serving its model.
    """

    key_envs: KeyEnvPolicy
    endpoints: EndpointPolicy
    paths: PathPolicy
    secrets: Callable[[], tuple[str, ...]] = field(default=_no_secrets, compare=False)
    servers: tuple[ServerSpec, ...] = ()

    @classmethod
    def strict(cls, data_dir: Path, model_dirs: Iterable[Path] = ()) -> AgentPolicy:
        """The policy of an agent whose operator allowed nothing.

        Args:
            data_dir: The agent's data directory.
            model_dirs: Its extra model directories.

        Returns:
            The policy.
        """
        return cls(KeyEnvPolicy(), EndpointPolicy(), PathPolicy.for_agent(data_dir, model_dirs))

    @classmethod
    def from_settings(
        cls, settings: Settings, *, secrets: Callable[[], tuple[str, ...]] | None = None
    ) -> AgentPolicy:
        """The policy the operator configured (``--allow-key-env``, ``--allow-endpoint``, ``--allow-path``).

        Args:
            settings: The agent's settings.
            secrets: Returns the agent's secrets (default: its token and registration key).

        Returns:
            The policy.
        """

        def own_secrets() -> tuple[str, ...]:
            """The token and the registration key from the settings."""
            return tuple(s.get_secret_value() for s in (settings.token, settings.registration_key) if s is not None)

        servers = tuple(settings.local_servers())
        # The servers the operator named are endpoints the operator allows (they may be on another host).
        named = [url for s in servers if s.source == "configured" for url in (s.url, s.prometheus_url)]
        return cls(
            key_envs=KeyEnvPolicy.from_names(settings.allowed_key_envs),
            endpoints=EndpointPolicy.from_values([*settings.allowed_endpoints, *named]),
            paths=PathPolicy.for_agent(settings.data_dir, settings.model_dirs, settings.allowed_paths),
            secrets=secrets or own_secrets,
            servers=servers,
        )
