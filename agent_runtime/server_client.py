"""Agent -> server calls: self-announce, heartbeats, capability refresh, progress and results.

Every call carries ``Authorization: Bearer <credential>`` (the credential the server handed over at
registration; for the announce, the registration key proves membership). The registration is persisted
in the data directory so that a restarted agent keeps reporting to its server.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import httpx
from pydantic import BaseModel, SecretStr, ValidationError
from tenacity import wait_exponential, wait_random
from tenacity.wait import wait_base

from agent_runtime.constants import BACKOFF_INITIAL_S, BACKOFF_JITTER_S, BACKOFF_MAX_S, SERVER_REQUEST_TIMEOUT_S
from agent_runtime.logging import get_logger
from common.files import atomic_write_json
from common.protocol import AgentInfo, AnnounceRequest, Heartbeat, HeartbeatAnswer, JobProgress, MultiRunJobResult

log = get_logger(__name__)

REGISTRATION_FILE = "registration.json"


class Registration(BaseModel):
    """What the server handed over at ``/register``.

    Attributes:
        agent_id: Id of this agent on the server.
        server_url: Server base URL.
        credential: This agent's credential for agent -> server calls.
    """

    agent_id: str
    server_url: str
    credential: SecretStr


def load_registration(data_dir: Path) -> Registration | None:
    """Read the persisted registration, or None when the agent is not registered."""
    path = Path(data_dir) / REGISTRATION_FILE
    if not path.is_file():
        return None
    try:
        return Registration.model_validate_json(path.read_bytes())
    except ValueError as exc:
        log.error("registration.unreadable", path=str(path), error=str(exc))
        return None


def save_registration(data_dir: Path, registration: Registration) -> None:
    """Persist the registration atomically (mode 0600: it holds a credential)."""
    data = {
        "agent_id": registration.agent_id,
        "server_url": registration.server_url,
        "credential": registration.credential.get_secret_value(),
    }
    atomic_write_json(Path(data_dir) / REGISTRATION_FILE, data)


class Delivery(StrEnum):
    """Outcome of delivering a result."""

    ACKNOWLEDGED = "acknowledged"
    STALE = "stale"
    RETRY = "retry"


def retry_wait() -> wait_base:
    """Wait strategy of the agent's retries towards the server (result delivery, self-announce).

    The delay starts at ``BACKOFF_INITIAL_S``, doubles on every failure up to ``BACKOFF_MAX_S``, and gets up to
    ``BACKOFF_JITTER_S`` of random jitter on top. The jitter is added after the cap (tenacity's
    ``wait_exponential_jitter`` caps after adding it) so that agents that lost the server at the same time
    keep retrying at spread-out times instead of in step every ``BACKOFF_MAX_S``.

    Returns:
        A tenacity wait strategy (each retrying call keeps its own attempt count).
    """
    return wait_exponential(multiplier=BACKOFF_INITIAL_S, max=BACKOFF_MAX_S) + wait_random(0, BACKOFF_JITTER_S)


def _api(server_url: str, path: str) -> str:
    """Join the server base URL and an API path."""
    return f"{server_url.rstrip('/')}/api/v1/{path.lstrip('/')}"


class ServerClient:
    """HTTP client of the RUCKUS server for one registered agent.

    Args:
        registration: This agent's registration.
        transport: Optional httpx transport (tests).
        timeout_s: Per-request timeout.
    """

    def __init__(
        self,
        registration: Registration,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = SERVER_REQUEST_TIMEOUT_S,
    ) -> None:
        self.registration = registration
        self._http = httpx.AsyncClient(
            timeout=timeout_s,
            transport=transport,
            follow_redirects=False,
            headers={"Authorization": f"Bearer {registration.credential.get_secret_value()}"},
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    def _url(self, path: str) -> str:
        """Absolute URL of a server API path."""
        return _api(self.registration.server_url, path)

    async def heartbeat(self, heartbeat: Heartbeat) -> HeartbeatAnswer | None:
        """``POST /api/v1/agents/{id}/heartbeat/``.

        Args:
            heartbeat: The heartbeat to send.

        Returns:
            The server's answer; None when it refused the heartbeat or answered something unreadable (both
            logged: the next heartbeat simply tries again).

        Raises:
            httpx.HTTPError: When the server cannot be reached.
        """
        resp = await self._http.post(
            self._url(f"agents/{self.registration.agent_id}/heartbeat/"),
            content=heartbeat.model_dump_json(),
            headers={"Content-Type": "application/json"},
        )
        if not resp.is_success:
            log.warning("heartbeat.rejected", status=resp.status_code)
            return None
        try:
            return HeartbeatAnswer.model_validate_json(resp.content)
        except ValidationError as exc:
            log.warning("heartbeat.answer_unreadable", error=str(exc), body=resp.text[:200])
            return None

    async def capabilities(self, info: AgentInfo) -> httpx.Response:
        """``POST /api/v1/agents/{id}/capabilities/`` with the full AgentInfo."""
        return await self._http.post(
            self._url(f"agents/{self.registration.agent_id}/capabilities/"),
            content=info.model_dump_json(),
            headers={"Content-Type": "application/json"},
        )

    async def progress(self, progress: JobProgress) -> httpx.Response:
        """``POST /api/v1/jobs/{job_id}/progress/``."""
        return await self._http.post(
            self._url(f"jobs/{progress.job_id}/progress/"),
            content=progress.model_dump_json(),
            headers={"Content-Type": "application/json"},
        )

    async def result(self, result: MultiRunJobResult) -> Delivery:
        """``POST /api/v1/jobs/{job_id}/result/``: 2xx acknowledges, 409 means a stale attempt.

        Args:
            result: The result (carries its attempt token).

        Returns:
            How the server answered; network errors and other statuses mean retry.
        """
        try:
            resp = await self._http.post(
                self._url(f"jobs/{result.job_id}/result/"),
                content=result.model_dump_json(),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            log.warning("outbox.result.unreachable", job_id=result.job_id, error=type(exc).__name__)
            return Delivery.RETRY
        if resp.is_success:
            return Delivery.ACKNOWLEDGED
        if resp.status_code == 409:
            log.warning("outbox.result.stale", job_id=result.job_id, attempt=result.attempt, detail=resp.text[:200])
            return Delivery.STALE
        log.warning("outbox.result.rejected", job_id=result.job_id, status=resp.status_code, detail=resp.text[:200])
        return Delivery.RETRY


async def announce(
    server_url: str,
    request: AnnounceRequest,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout_s: float = SERVER_REQUEST_TIMEOUT_S,
) -> httpx.Response:
    """``POST /api/v1/agents/announce/``: ask the server to register this agent.

    Args:
        server_url: Server base URL.
        request: The announce message (the registration key also goes as bearer token).
        transport: Optional httpx transport (tests).
        timeout_s: Request timeout.

    Returns:
        The server's response.
    """
    async with httpx.AsyncClient(timeout=timeout_s, transport=transport, follow_redirects=False) as client:
        return await client.post(
            _api(server_url, "agents/announce/"),
            content=request.model_dump_json(),
            headers={
                "Authorization": f"Bearer {request.registration_key}",
                "Content-Type": "application/json",
            },
        )
