"""``ruckus login``/``logout``/``whoami`` against a live server: roles, revoked and expired tokens, refusals and
throttled logins, with users made by ``manage.py ruckus_user`` as an administrator would."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import BIN, REPO, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "a-long-enough-password-123"


def ruckus(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ruckus"), *args], env=env, capture_output=True, text=True, timeout=120)


def make_user(stack: Stack, name: str, role: str) -> None:
    """Create a user with a role through the management command."""
    done = subprocess.run([sys.executable, "manage.py", "ruckus_user", name, "--role", role, "--password", PASSWORD],
                          cwd=REPO, env=stack.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The CLI's environment: its own config file, no RUCKUS_* from outside, wide output."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RUCKUS_")}
    return {**clean, "RUCKUS_CONFIG": str(tmp_path / "config.toml"), "COLUMNS": "250"}


def stored_token(env: dict[str, str]) -> str:
    for line in Path(env["RUCKUS_CONFIG"]).read_text().splitlines():
        if line.startswith("token ="):
            return json.loads(line.split("=", 1)[1])
    return ""


def test_roles_whoami_refusals_and_logout(stack: Stack, env: dict[str, str]):
    stack.start_server()
    make_user(stack, "vera", "viewer")
    make_user(stack, "otto", "operator")

    r = ruckus("login", "--server", stack.base, "--username", "vera", "--password", "wrong-password", env=env)
    assert r.returncode == 1 and "wrong username or password" in r.stderr
    r = ruckus("login", "--server", stack.base, "--username", "vera", "--password", PASSWORD, env=env)
    assert r.returncode == 0, r.stderr
    assert f"Logged in to {stack.base} as vera (viewer)" in r.stdout
    assert "Token expires: " in r.stdout and "(in 6 d 23 h)" in r.stdout  # the server's default: 7 days
    assert "token_expiry = " in Path(env["RUCKUS_CONFIG"]).read_text()

    me = json.loads(ruckus("whoami", "--json", env=env).stdout)
    assert me["username"] == "vera" and me["role"] == "viewer"
    assert me["permissions"] == {"view": True, "create_experiments": False, "manage_all_experiments": False,
                                 "manage_agents": False}
    assert me["token_expiry"] and me["server"] == stack.base
    text = ruckus("whoami", env=env).stdout
    assert "viewer" in text and "no: create experiments" in text and "token expires" in text

    # A viewer reads but may not create: the server's reason, exit 4.
    assert ruckus("experiments", "list", env=env).returncode == 0
    r = ruckus("experiments", "create", "-f", str(REPO / "examples/cpu-smoke.yaml"), env=env)
    assert r.returncode == 4 and "not allowed: " in r.stderr, r.stderr

    # Logout revokes the token on the server: used again, it is refused with the hint to log in.
    vera_token = stored_token(env)
    r = ruckus("logout", env=env)
    assert r.returncode == 0 and "revoked" in r.stdout, r.stderr
    assert stored_token(env) == "" and stack.base in Path(env["RUCKUS_CONFIG"]).read_text()
    r = ruckus("whoami", "--token", vera_token, env=env)
    assert r.returncode == 4 and "your token expired or was revoked; run `ruckus login`" in r.stderr, r.stderr

    # logout --all: another session's token stops working too.
    ruckus("login", "--server", stack.base, "--username", "otto", "--password", PASSWORD, env=env)
    first = stored_token(env)
    r = ruckus("login", "--server", stack.base, "--username", "otto", "--password", PASSWORD, env=env)
    assert "as otto (operator)" in r.stdout
    assert json.loads(ruckus("whoami", "--token", first, "--json", env=env).stdout)["role"] == "operator"
    r = ruckus("logout", "--all", env=env)
    assert r.returncode == 0 and "every token" in r.stdout, r.stderr
    r = ruckus("whoami", "--token", first, env=env)
    assert r.returncode == 4 and "expired or was revoked" in r.stderr


def test_expired_token_and_throttled_login(stack: Stack, env: dict[str, str]):
    # Tokens live 3.6 s; three login attempts per user name and minute.
    stack.env.update({"RUCKUS_TOKEN_TTL_HOURS": "0.001", "RUCKUS_LOGIN_USER_THROTTLE": "3/min"})
    stack.start_server()
    name = f"tess-{secrets.token_hex(3)}"
    make_user(stack, name, "operator")

    r = ruckus("login", "--server", stack.base, "--username", name, "--password", PASSWORD, env=env)
    assert r.returncode == 0 and "(in 1 min)" in r.stdout, r.stdout + r.stderr
    token = stored_token(env)
    time.sleep(4)
    # The stored expiry has passed: said before asking the server.
    r = ruckus("experiments", "list", env=env)
    assert r.returncode == 4 and "your token expired at" in r.stderr and "run `ruckus login`" in r.stderr
    # The same token given by hand (expiry unknown): the server's 401 gives the same advice.
    r = ruckus("experiments", "list", "--token", token, "--server", stack.base, env=env)
    assert r.returncode == 4 and "your token expired or was revoked; run `ruckus login`" in r.stderr, r.stderr
    r = ruckus("logout", env=env)
    assert r.returncode == 0 and "the token had expired" in r.stdout and stored_token(env) == ""

    # Two more attempts use up the three; the next is throttled with the wait the server asks for.
    for _ in range(2):
        r = ruckus("login", "--server", stack.base, "--username", name, "--password", "wrong-password", env=env)
        assert r.returncode == 1 and "wrong username or password" in r.stderr, r.stderr
    r = ruckus("login", "--server", stack.base, "--username", name, "--password", PASSWORD, env=env)
    assert r.returncode == 1 and "too many requests: wait " in r.stderr and " s and try again" in r.stderr, r.stderr
