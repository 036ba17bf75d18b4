"""HTTP client of the CLI: turns every failure into a :class:`CliError` with a message and an exit code."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ruckus_cli.config import Config, parse_time
from ruckus_cli.config import load as load_config
from ruckus_cli.errors import api_error_lines

#: Exit codes (documented in ``ruckus --help``).
EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4

#: What a refused token means for the user, and what to do.
EXPIRED_OR_REVOKED = "your token expired or was revoked; run `ruckus login`"
NOT_LOGGED_IN = "not logged in: run `ruckus login` or set RUCKUS_TOKEN"


class CliError(Exception):
    """A failure to report to the user.

    Args:
        message: What went wrong, in words.
        code: Process exit code.
        details: Optional structured details (API error body).
        status: HTTP status of the server's refusal, when there was one.
    """

    def __init__(self, message: str, code: int = EXIT_API_ERROR, details: Any = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details
        self.status = status


class Api:
    """Thin wrapper around ``/api/v1``.

    Args:
        config: Server URL and token.
        timeout: Seconds per request.
    """

    def __init__(self, config: Config, timeout: float = 60.0) -> None:
        self.config = config
        headers = {"Authorization": f"Token {config.token}"} if config.token else {}
        self._http = httpx.Client(base_url=config.server, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> httpx.Response:
        """Send a request and raise :class:`CliError` on failure.

        Args:
            method: HTTP method.
            path: Path under the server root (``/api/v1/...``).
            auth: Whether a token is required.
            **kwargs: Passed to httpx.

        Returns:
            The successful response.
        """
        if auth and not self.config.token:
            raise CliError(NOT_LOGGED_IN, EXIT_AUTH)
        if auth and self.config.expired():
            raise CliError(f"your token expired at {utc_text(self.config.expiry)}; run `ruckus login`", EXIT_AUTH)
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the server at {self.config.server}: {exc}", EXIT_UNREACHABLE) from exc
        if response.status_code == 401:
            message = EXPIRED_OR_REVOKED if self.config.token else NOT_LOGGED_IN
            raise CliError(f"{message} (server: {error_summary(response) or '401'})", EXIT_AUTH,
                           response_body(response), 401)
        if response.status_code == 403:
            raise CliError(f"not allowed: {error_summary(response) or 'forbidden (403)'}", EXIT_AUTH,
                           response_body(response), 403)
        if response.status_code == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            when = f"wait {wait} s and try again" if wait is not None else "wait a while and try again"
            raise CliError(f"too many requests: {when} (server: {error_summary(response) or '429'})",
                           EXIT_API_ERROR, response_body(response), 429)
        if response.status_code >= 400:
            raise CliError(f"{method} {path} failed ({response.status_code}): {error_summary(response)}",
                           EXIT_API_ERROR, response_body(response), response.status_code)
        return response

    def stream(self, method: str, path: str, **kwargs: Any) -> AbstractContextManager[httpx.Response]:
        """Send a request whose body is read in chunks (``with api.stream(...) as response``).

        The status is not checked: the caller reads the error body itself.

        Args:
            method: HTTP method.
            path: Path under the server root.
            **kwargs: Passed to httpx.

        Returns:
            A context manager yielding the response.
        """
        return self._http.stream(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET and decode JSON."""
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST JSON and decode the answer (None for an empty body)."""
        response = self.request("POST", path, json=json, **kwargs)
        return response.json() if response.content else None

    def delete(self, path: str) -> None:
        """DELETE."""
        self.request("DELETE", path)

    def paginate(self, path: str, params: dict[str, Any] | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Every item of a paginated list endpoint."""
        items: list[dict[str, Any]] = []
        query = {**(params or {}), "limit": limit, "offset": 0}
        while True:
            page = self.get(path, params=query)
            items.extend(page["results"])
            if not page.get("next"):
                return items
            query["offset"] += limit


def utc_text(value: str | None) -> str:
    """An ISO 8601 time as ``2026-12-07 08:00:00 UTC`` (the text unchanged when it is not a time).

    Args:
        value: The time, or None.

    Returns:
        The time in UTC to the second; ``never`` for None.
    """
    moment = parse_time(value)
    if moment is None:
        return value or "never"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> int | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date).

    Args:
        value: The header, or None.
        now: The current time (default: now), for a date.

    Returns:
        The seconds (0 for a date in the past), or None when absent or unreadable.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, math.ceil((moment - (now or datetime.now(UTC))).total_seconds()))


def response_body(response: httpx.Response) -> Any:
    """Decoded JSON body, or the text when the answer is not JSON.

    Args:
        response: A response whose body has been read.

    Returns:
        The body.
    """
    try:
        return response.json()
    except ValueError:
        return response.text


def error_summary(response: httpx.Response) -> str:
    """The error body of a refused request on one line (``field: message; other: message``).

    Args:
        response: A response whose body has been read.

    Returns:
        The summary.
    """
    return "; ".join(api_error_lines(response_body(response)))


def connect(server: str | None, token: str | None) -> Api:
    """An API client from the ``--server``/``--token`` flags, the environment or the config file.

    Args:
        server: ``--server`` value, or None.
        token: ``--token`` value, or None.

    Returns:
        The client.
    """
    return Api(load_config(server, token))
