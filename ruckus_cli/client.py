"""HTTP client of the CLI: turns every failure into a :class:`CliError` with a message and an exit code."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import httpx

from ruckus_cli.config import Config
from ruckus_cli.config import load as load_config
from ruckus_cli.errors import api_error_lines

#: Exit codes (documented in ``ruckus --help``).
EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4


class CliError(Exception):
    """A failure to report to the user.

    Args:
        message: What went wrong, in words.
        code: Process exit code.
        details: Optional structured details (API error body).
    """

    def __init__(self, message: str, code: int = EXIT_API_ERROR, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


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
            raise CliError("not logged in: run `ruckus login` or set RUCKUS_TOKEN", EXIT_AUTH)
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the server at {self.config.server}: {exc}", EXIT_UNREACHABLE) from exc
        if response.status_code in (401, 403):
            raise CliError(f"refused ({response.status_code}): {error_summary(response)}", EXIT_AUTH,
                           response_body(response))
        if response.status_code >= 400:
            raise CliError(f"{method} {path} failed ({response.status_code}): {error_summary(response)}",
                           EXIT_API_ERROR, response_body(response))
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
