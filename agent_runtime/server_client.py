"""Agent -> server calls: self-announce, heartbeats, capability refresh, progress and results.

Every call carries ``Authorization: Bearer <credential>`` (the credential the server handed over at
registration; for the announce, the registration key proves membership). The registration is persisted
in the data directory so that a restarted agent keeps reporting to its server.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, SecretStr, ValidationError
from tenacity import wait_exponential, wait_random
from tenacity.wait import wait_base

from agent_runtime.constants import BACKOFF_INITIAL_S, BACKOFF_JITTER_S, BACKOFF_MAX_S, SERVER_REQUEST_TIMEOUT_S
from agent_runtime.logging import get_logger
from agent_runtime.paths import REGISTRATION_FILE
from common.files import atomic_write_json
from common.protocol import (
    MAX_WORK_WAIT_S,
    AgentInfo,
    AnnounceRequest,
    Heartbeat,
    HeartbeatAnswer,
    JobProgress,
    MultiRunJobResult,
    ReachAnswer,
    ReachRequest,
    ServerContact,
    WorkAnswer,
    WorkRequest,
    utcnow,
)

log = get_logger(__name__)


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


def describe_error(exc: BaseException) -> str:
    """A short, specific account of a failed call (``ConnectError: [Errno 111] Connection refused``)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


class ContactRecord:
    """How this agent's calls to the server are going: the agent's side of "why do my heartbeats not arrive".

    Args:
        server_url: Where the agent calls the server.
    """

    def __init__(self, server_url: str | None) -> None:
        self.state = ServerContact(server_url=server_url)
        #: Called when the server answers again after failed calls (the agent then retries what waits).
        self.on_restored: Callable[[], None] | None = None

    def ok(self) -> None:
        """The server answered."""
        restored = self.state.failing_since is not None
        self.state = ServerContact(server_url=self.state.server_url, last_success_at=utcnow())
        if restored:
            log.info("server.reachable_again", server=self.state.server_url)
            if self.on_restored is not None:
                self.on_restored()

    def failed(self, error: str) -> None:
        """A call failed (no answer, or an answer refusing it)."""
        s = self.state
        first = s.failing_since is None
        self.state = s.model_copy(update={
            "failing_since": utcnow() if first else s.failing_since,
            "last_error": error,
            "consecutive_failures": s.consecutive_failures + 1,
        })
        if first:
            log.warning("server.unreachable", server=s.server_url, error=error)


class ServerClient:
    """HTTP client of the RUCKUS server for one registered agent.

    Every call is recorded in :attr:`contact` (last success, failing since, last error), which the agent's
    ``GET /api/v1/status`` reports: an agent whose heartbeats do not arrive says why when the server asks.

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
        self.contact = ContactRecord(registration.server_url)
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

    async def _post(self, path: str, body: str, **kwargs: Any) -> httpx.Response:
        """POST a JSON body, recording the outcome in :attr:`contact` (5xx, 401 and 403 count as failures).

        Raises:
            httpx.HTTPError: When the server cannot be reached.
        """
        try:
            resp = await self._http.post(self._url(path), content=body, headers={"Content-Type": "application/json"},
                                         **kwargs)
        except httpx.HTTPError as exc:
            self.contact.failed(f"{describe_error(exc)} (calling {self.registration.server_url})")
            raise
        if resp.status_code >= 500 or resp.status_code in (401, 403):
            self.contact.failed(f"the server answered {resp.status_code}: {resp.text[:200]}")
        else:
            self.contact.ok()
        return resp

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
        resp = await self._post(f"agents/{self.registration.agent_id}/heartbeat/", heartbeat.model_dump_json())
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
        return await self._post(f"agents/{self.registration.agent_id}/capabilities/", info.model_dump_json())

    async def progress(self, progress: JobProgress) -> httpx.Response:
        """``POST /api/v1/jobs/{job_id}/progress/``."""
        return await self._post(f"jobs/{progress.job_id}/progress/", progress.model_dump_json())

    async def result(self, result: MultiRunJobResult) -> Delivery:
        """``POST /api/v1/jobs/{job_id}/result/``: 2xx acknowledges, 409 means a stale attempt.

        Args:
            result: The result (carries its attempt token).

        Returns:
            How the server answered; network errors and other statuses mean retry.
        """
        try:
            resp = await self._post(f"jobs/{result.job_id}/result/", result.model_dump_json())
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


    async def work(self, request: WorkRequest) -> WorkAnswer | None:
        """``POST /api/v1/agents/{id}/work/``: the pull agent's long poll (held up to ``request.wait_s``).

        Args:
            request: What the agent is doing, what it refused, how long the server may hold the request.

        Returns:
            The server's answer; None when it refused the request or answered something unreadable (logged).

        Raises:
            httpx.HTTPError: When the server cannot be reached.
        """
        resp = await self._post(f"agents/{self.registration.agent_id}/work/", request.model_dump_json(),
                                timeout=min(request.wait_s, MAX_WORK_WAIT_S) + SERVER_REQUEST_TIMEOUT_S)
        if not resp.is_success:
            log.warning("work.rejected", status=resp.status_code, detail=resp.text[:200])
            return None
        try:
            return WorkAnswer.model_validate_json(resp.content)
        except ValidationError as exc:
            log.warning("work.answer_unreadable", error=str(exc), body=resp.text[:200])
            return None


async def reach(
    server_url: str,
    agent_id: str,
    challenge: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout_s: float = SERVER_REQUEST_TIMEOUT_S,
) -> ReachAnswer:
    """``POST /api/v1/agents/{id}/reach/``: prove that this agent reaches the server at ``server_url``.

    Args:
        server_url: The address the server gave in its registration.
        agent_id: This agent's id in that registration.
        challenge: The registration's challenge.
        transport: Optional httpx transport (tests).
        timeout_s: Request timeout.

    Returns:
        The server's answer.

    Raises:
        httpx.HTTPError: When the server cannot be reached or refuses the challenge.
        ValueError: When what answers is not a RUCKUS server that issued this challenge.
    """
    async with httpx.AsyncClient(timeout=timeout_s, transport=transport, follow_redirects=False) as client:
        resp = await client.post(
            _api(server_url, f"agents/{agent_id}/reach/"),
            content=ReachRequest(challenge=challenge).model_dump_json(),
            headers={"Content-Type": "application/json"},
        )
        resp.raise_for_status()
    answer = ReachAnswer.model_validate_json(resp.content)
    if answer.agent_id != agent_id:
        raise ValueError(f"the server at {server_url} answered for agent {answer.agent_id}, not {agent_id}")
    return answer


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
