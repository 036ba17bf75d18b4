"""``ruckus login``, ``logout`` and ``whoami`` against a mocked server: the stored token and its expiry, the role,
and what the user is told when a token expired or was revoked, a role forbids a request, or the server throttles."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from ruckus_cli import output
from ruckus_cli.client import retry_after_seconds
from ruckus_cli.commands import auth as auth_command
from ruckus_cli.commands.auth import NO_ROLE, expiry_text
from ruckus_cli.config import load
from ruckus_cli.main import app

SERVER = "http://ruckus.test"
PASSWORD = "a-good-password-123"
FORBIDDEN = "only fleet admins may remove agents"
EXPIRY = "2026-12-07T08:00:00.123456Z"


def permissions(role: str | None) -> dict[str, bool]:
    """The permissions the server reports for a role."""
    return {
        "view": role is not None,
        "create_experiments": role in ("operator", "fleet-admin"),
        "manage_all_experiments": role == "fleet-admin",
        "manage_agents": role == "fleet-admin",
    }


def user(name: str, role: str | None) -> dict[str, Any]:
    """A user as ``/api/v1/auth/me/`` returns it."""
    return {"id": 1, "username": name, "first_name": "", "last_name": "", "email": f"{name}@example.org",
            "is_staff": role == "fleet-admin", "role": role, "permissions": permissions(role)}


class FakeServer:
    """The token API of a RUCKUS server, in memory: users, their tokens, and refusals on demand.

    Attributes:
        users: Name → (password, role).
        tokens: Token → user name, for the tokens that still work.
        calls: ``"METHOD /path"`` of every request.
        throttle_for: When set, every login is answered 429 with this ``Retry-After``.
        expiry: The expiry the token API hands out.
    """

    def __init__(self) -> None:
        self.users: dict[str, tuple[str, str | None]] = {"alice": (PASSWORD, "operator"),
                                                          "nobody": (PASSWORD, None)}
        self.tokens: dict[str, str] = {}
        self.calls: list[str] = []
        self.throttle_for: str | None = None
        self.expiry: str | None = EXPIRY

    def issue(self, name: str) -> str:
        """A new working token for a user."""
        token = f"tok-{name}-{len(self.tokens) + 1}"
        self.tokens[token] = name
        return token

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as the server would."""
        path = request.url.path
        self.calls.append(f"{request.method} {path}")
        if path == "/api/v1/auth/token/":
            if self.throttle_for is not None:
                return httpx.Response(429, headers={"Retry-After": self.throttle_for},
                                      json={"detail": "Request was throttled. Expected available in 42 seconds."})
            body = json.loads(request.content)
            known = self.users.get(body["username"])
            if known is None or known[0] != body["password"]:
                return httpx.Response(400, json={"non_field_errors": ["wrong username or password"]})
            return httpx.Response(200, json={"token": self.issue(body["username"]), "expiry": self.expiry,
                                             "user": user(body["username"], known[1])})
        token = request.headers.get("Authorization", "").removeprefix("Token ")
        name = self.tokens.get(token)
        if name is None:
            return httpx.Response(401, json={"detail": "Invalid token."}, headers={"WWW-Authenticate": "Token"})
        if path == "/api/v1/auth/token/logout/":
            del self.tokens[token]
            return httpx.Response(204)
        if path == "/api/v1/auth/token/logoutall/":
            self.tokens = {t: n for t, n in self.tokens.items() if n != name}
            return httpx.Response(204)
        if path == "/api/v1/auth/me/":
            return httpx.Response(200, json=user(name, self.users[name][1]))
        if path.startswith("/api/v1/agents/") and request.method == "DELETE":
            return httpx.Response(403, json={"detail": FORBIDDEN})
        if path == "/api/v1/experiments/":
            return httpx.Response(200, json={"count": 0, "next": None, "results": []})
        return httpx.Response(404, json={"detail": "Not found."})


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeServer]:
    """Route the CLI's HTTP to a :class:`FakeServer`, with a config file of its own and wide output."""
    fake = FakeServer()
    real_client = httpx.Client

    def client(**kwargs: Any) -> httpx.Client:
        return real_client(transport=httpx.MockTransport(fake.handle), **kwargs)

    monkeypatch.setattr(httpx, "Client", client)
    for name in ("RUCKUS_TOKEN", "RUCKUS_SERVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUCKUS_CONFIG", str(tmp_path / "config.toml"))
    wide = Console(width=300)
    monkeypatch.setattr(output, "console", wide)
    monkeypatch.setattr(auth_command, "console", wide)
    monkeypatch.setattr(auth_command, "err", Console(width=300, stderr=True))
    monkeypatch.setattr(output, "err", Console(width=300, stderr=True))
    yield fake


def ruckus(*args: str, code: int = 0) -> str:
    """Run the CLI; check its exit code; return stdout and stderr together."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def log_in(name: str = "alice") -> str:
    return ruckus("login", "--server", SERVER, "--username", name, "--password", PASSWORD)


def stored() -> dict[str, str]:
    """The config file's keys (through the CLI's own reader)."""
    conf = load()
    return {"server": conf.server, "token": conf.token or "", "expiry": conf.expiry or ""}


def test_login_stores_token_and_expiry_and_says_who_and_until_when(server: FakeServer, tmp_path: Path):
    text = log_in()
    assert f"Logged in to {SERVER} as alice (operator)" in text
    assert "Token expires: 2026-12-07 08:00:00 UTC" in text
    assert stored() == {"server": SERVER, "token": "tok-alice-1", "expiry": EXPIRY}
    assert stat.S_IMODE((tmp_path / "config.toml").stat().st_mode) == 0o600


def test_login_with_a_token_that_never_expires(server: FakeServer):
    server.expiry = None
    assert "Token expires: never" in log_in()
    assert stored()["expiry"] == ""


def test_login_without_a_role_warns(server: FakeServer):
    text = log_in("nobody")
    assert "as nobody (no role)" in text and f"warning: your account has {NO_ROLE}" in text


def test_wrong_password_is_the_servers_message(server: FakeServer):
    text = ruckus("login", "--server", SERVER, "--username", "alice", "--password", "nope", code=1)
    assert "wrong username or password" in text
    assert stored()["token"] == ""


def test_throttled_login_says_how_long_to_wait(server: FakeServer):
    server.throttle_for = "42"
    text = ruckus("login", "--server", SERVER, "--username", "alice", "--password", PASSWORD, code=1)
    assert "too many requests: wait 42 s and try again" in text


def test_whoami_shows_user_role_permissions_and_expiry(server: FakeServer):
    log_in()
    text = ruckus("whoami")
    assert "Logged in as alice" in text
    cells = [[c.strip() for c in line.split("│")] for line in text.splitlines() if line.count("│") >= 3]
    lines = {row[1]: row[2] for row in cells}
    assert lines["role"] == "operator"
    assert lines["create_experiments"].startswith("yes: create experiments")
    assert lines["manage_agents"].startswith("no: register")
    assert lines["server"] == SERVER
    assert lines["token expires"].startswith("2026-12-07 08:00:00 UTC")
    data = json.loads(ruckus("whoami", "--json"))
    assert data["role"] == "operator" and data["permissions"]["manage_agents"] is False
    assert data["token_expiry"] == EXPIRY and data["server"] == SERVER


def test_whoami_with_a_token_from_the_environment_has_no_known_expiry(server: FakeServer,
                                                                       monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RUCKUS_TOKEN", server.issue("alice"))
    monkeypatch.setenv("RUCKUS_SERVER", SERVER)
    assert "unknown (token from --token or RUCKUS_TOKEN)" in ruckus("whoami")


def test_a_stored_token_past_its_expiry_is_refused_before_any_request(server: FakeServer):
    server.expiry = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    log_in()
    server.calls.clear()
    text = ruckus("experiments", "list", code=4)
    assert "your token expired at" in text and "run `ruckus login`" in text
    assert server.calls == []


def test_a_revoked_token_says_so(server: FakeServer):
    log_in()
    server.tokens.clear()
    text = ruckus("experiments", "list", code=4)
    assert "your token expired or was revoked; run `ruckus login`" in text
    assert "Invalid token." in text


def test_forbidden_shows_the_servers_reason(server: FakeServer):
    log_in()
    text = ruckus("agents", "remove", "11111111-1111-4111-8111-111111111111", "--yes", code=4)
    assert f"not allowed: {FORBIDDEN}" in text


def test_logout_revokes_the_token_and_removes_it(server: FakeServer):
    log_in()
    token = stored()["token"]
    text = ruckus("logout")
    assert f"the token is revoked on {SERVER}" in text
    assert "POST /api/v1/auth/token/logout/" in server.calls and token not in server.tokens
    assert stored() == {"server": SERVER, "token": "", "expiry": ""}
    assert "Not logged in" in ruckus("logout")
    assert "not logged in: run `ruckus login`" in ruckus("whoami", code=4)


def test_logout_all_revokes_every_token_of_the_user(server: FakeServer):
    other = server.issue("alice")
    log_in()
    text = ruckus("logout", "--all")
    assert "every token of your user" in text
    assert other not in server.tokens and server.tokens == {}
    assert stored()["token"] == ""


def test_logout_of_a_token_the_server_no_longer_accepts_still_removes_it(server: FakeServer):
    log_in()
    server.tokens.clear()
    text = ruckus("logout")
    assert "no longer accepted the token" in text
    assert stored()["token"] == ""


def test_logout_of_an_expired_token_needs_no_server(server: FakeServer):
    server.expiry = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    log_in()
    server.calls.clear()
    assert "the token had expired at" in ruckus("logout")
    assert server.calls == [] and stored()["token"] == ""


def test_logout_all_with_a_dead_token_asks_to_log_in_first(server: FakeServer):
    log_in()
    server.tokens.clear()
    text = ruckus("logout", "--all", code=4)
    assert "cannot revoke your other tokens: run `ruckus login`, then `ruckus logout --all`" in text
    assert stored()["token"] == ""


def test_logout_with_a_given_token_leaves_the_stored_one(server: FakeServer):
    log_in()
    mine = stored()["token"]
    other = server.issue("alice")
    ruckus("logout", "--token", other, "--server", SERVER)
    assert other not in server.tokens and mine in server.tokens
    assert stored()["token"] == mine


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("42", 42), (" 7 ", 7), ("Mon, 30 Nov 2026 08:00:30 GMT", 30), ("Mon, 30 Nov 2026 07:00:00 GMT", 0),
     (None, None), ("", None), ("later", None)],
)
def test_retry_after(value: str | None, seconds: int | None):
    assert retry_after_seconds(value, now=datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)) == seconds


@pytest.mark.parametrize(
    ("expiry", "shown"),
    [
        (None, "never"),
        ("2026-12-07T08:00:00Z", "2026-12-07 08:00:00 UTC (in 7 d 0 h)"),
        ("2026-11-30T10:30:00+00:00", "2026-11-30 10:30:00 UTC (in 2 h 30 min)"),
        ("2026-11-30T08:00:20Z", "2026-11-30 08:00:20 UTC (in 1 min)"),
        ("2026-11-30T07:00:00Z", "2026-11-30 07:00:00 UTC (expired)"),
    ],
)
def test_expiry_text(expiry: str | None, shown: str):
    assert expiry_text(expiry, now=datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)) == shown
