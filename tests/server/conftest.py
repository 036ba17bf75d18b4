"""Fixtures for server tests."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory, api_token


@pytest.fixture
def user(db):
    """A fleet admin (may do everything; the role tests use each role)."""
    return UserFactory(username="alice", role="fleet-admin")


def client_for(user) -> APIClient:
    """An API client authenticated as ``user`` with a real API token (the CLI's way)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(user)}")
    return client


@pytest.fixture
def api(user) -> APIClient:
    """An API client authenticated with a real token (the CLI's way)."""
    return client_for(user)


@pytest.fixture
def anon() -> APIClient:
    """An unauthenticated API client."""
    return APIClient()


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with the configured status and body; records paths and Host headers."""

    status = 200
    body = b"{}"
    seen: list[tuple[str, str]] = []

    def _answer(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Host", "")))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def fake_agent() -> Iterator[tuple[type[Recorder], int]]:
    """An HTTP server on loopback standing in for an agent (or any service a URL may name): answers every request
    with ``handler.status`` and ``handler.body`` and records each request's path and Host header in ``handler.seen``."""
    handler = type("R", (Recorder,), {"seen": [], "status": 200, "body": b"{}"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
