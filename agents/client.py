"""HTTP client for server -> agent calls: short timeouts, no redirects, the agent's bearer token."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import structlog
from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError

from agents.urlguard import resolve_agent_url
from common.protocol import AgentInfo, AgentStatusReport, JobRequest, RegisterRequest
from core.parsers import loads

log = structlog.get_logger(__name__)


_client_lock = threading.Lock()
_client: httpx.Client | None = None


def _shared_client() -> httpx.Client:
    """The process's pooled client for plain-HTTP agent calls (made on first use; thread-safe).

    A client per call opened a new connection for every dispatch, status check and cancellation; the pool keeps
    connections to each agent's pinned address open between calls. Redirects are never followed.
    """
    global _client
    with _client_lock:
        if _client is None or _client.is_closed:
            _client = httpx.Client(
                follow_redirects=False,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=30),
            )
        return _client


class AgentCallError(Exception):
    """A call to an agent failed.

    Attributes:
        status: The HTTP status when there was an answer.
        reach_error: When the agent refused a registration because it could not reach the server at the address
            it was given: its own account of that failure.
    """

    def __init__(self, message: str, status: int | None = None, reach_error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reach_error = reach_error


class AgentAnswerError(AgentCallError, ValueError):
    """The agent answered, but with a body the server cannot use (caught as a failed call or a bad answer)."""


class AgentClient:
    """Calls one agent's API (``/api/v1/...``) at the address its URL was checked at.

    The URL is checked and its host resolved once, when the client is made; every request then connects to that
    address, with the registered name in the ``Host`` header and as the TLS server name, so a name that resolves
    elsewhere later (DNS rebinding) changes nothing. Answers are never echoed: a failure says what happened (no
    answer, a redirect, an HTTP status), not what the remote end sent, so the server cannot be used to read other
    services' pages or to tell their open ports from closed ones.

    Args:
        url: The agent's base URL.
        token: Bearer token of the agent.
        timeout: Seconds per request.

    Raises:
        UnsafeURL: The URL may not be called.
    """

    def __init__(self, url: str, token: str, timeout: float | None = None) -> None:
        self._target = resolve_agent_url(url)
        self.base_url = self._target.url
        self._token = token
        self._timeout = timeout or settings.RUCKUS_AGENT_HTTP_TIMEOUT_S

    def _request(
        self, method: str, path: str, json: dict[str, Any] | None = None, timeout: float | None = None
    ) -> httpx.Response:
        """Send one request to the checked address; redirects are never followed."""
        target = self._target
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else None
        try:
            if target.scheme == "https":
                # A TLS connection is verified for one server name: pooled by address, it could carry another
                # agent's calls behind the same address (a proxy routing by name). One client per call.
                with httpx.Client(timeout=timeout or self._timeout, follow_redirects=False) as client:
                    response = client.request(
                        method,
                        target.pinned(f"/api/v1{path}"),
                        json=json,
                        headers={"Authorization": f"Bearer {self._token}", "Host": target.host_header},
                        extensions=extensions,
                    )
            else:
                response = _shared_client().request(
                    method,
                    target.pinned(f"/api/v1{path}"),
                    json=json,
                    headers={"Authorization": f"Bearer {self._token}", "Host": target.host_header},
                    timeout=timeout or self._timeout,
                )
        except httpx.HTTPError as exc:
            # One message for refused, reset, timed out and TLS failures alike; the kind goes to the log only.
            log.info("agent_call_failed", agent=self.base_url, method=method, path=path, error=type(exc).__name__)
            raise AgentCallError(f"agent at {self.base_url} did not answer") from exc
        if response.is_redirect:
            raise AgentCallError(f"agent at {self.base_url} answered with a redirect; redirects are not followed",
                                 response.status_code)
        if response.status_code >= 400:
            raise AgentCallError(
                f"agent at {self.base_url} answered {response.status_code} to {method} {path}"
                + (" (the agent refused the token)" if response.status_code in (401, 403) else ""),
                response.status_code,
                reach_error=_reach_error(response),
            )
        return response

    def _json(self, response: httpx.Response) -> Any:
        """The answer's JSON, checked like a request body (``core.parsers``): it may end up stored.

        Raises:
            AgentAnswerError: Not JSON, or JSON the server cannot store (nested too deep, NUL characters ...).
        """
        try:
            return loads(response.text)
        except ParseError as exc:
            reason = str(exc.detail)
        except ValidationError as exc:
            field, messages = next(iter(exc.detail.items()))
            reason = f"{str(field)[:80]}: {messages[0]}"
        raise AgentAnswerError(f"the agent's answer does not follow the agent protocol ({reason})",
                               response.status_code)

    def register(self, request: RegisterRequest) -> AgentInfo:
        """Hand the agent its id, the server URL and its credential; get its full description back."""
        return AgentInfo.model_validate(self._json(self._request("POST", "/register", request.model_dump(mode="json"))))

    def status(self, timeout: float | None = None) -> AgentStatusReport:
        """The agent's own account of its activity and of its calls to the server (a direct liveness check).

        Args:
            timeout: Seconds for this call (short when checking an agent that went silent).
        """
        return AgentStatusReport.model_validate(self._json(self._request("GET", "/status", timeout=timeout)))

    def info(self) -> AgentInfo:
        """Fetch the agent's current description."""
        return AgentInfo.model_validate(self._json(self._request("GET", "/info")))

    def refresh_info(self) -> AgentInfo:
        """Ask the agent to detect its host again and return the new description."""
        return AgentInfo.model_validate(self._json(self._request("POST", "/info/refresh")))

    def submit_job(self, request: JobRequest) -> dict[str, Any]:
        """Submit a job (the agent answers 202, or 409 when busy)."""
        return self._json(self._request("POST", "/jobs", request.model_dump(mode="json")))

    def get_job(self, job_id: str) -> dict[str, Any]:
        """Status, progress and (when done) result of a job on the agent (the pull fallback)."""
        return self._json(self._request("GET", f"/jobs/{job_id}"))

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Ask the agent to cancel a job."""
        return self._json(self._request("POST", f"/jobs/{job_id}/cancel"))

    def ack_job(self, job_id: str) -> None:
        """Tell the agent the server has the job's result (it may clean up its spool)."""
        self._request("POST", f"/jobs/{job_id}/ack")


def _reach_error(response: httpx.Response) -> str | None:
    """The agent's account of why it could not reach the server, from a 502 answer to ``/register``.

    The one part of an answer that is passed on: a RUCKUS agent's structured refusal (a JSON object with a
    ``reach_error`` string), cut short, printable characters only.
    """
    if response.status_code != 502:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("reach_error") if isinstance(body, dict) else None
    if not isinstance(error, str) or not error:
        return None
    return "".join(ch for ch in error[:300] if ch.isprintable())
