"""The web UI in headless Chromium against a real server, scheduler and agent.

The UI must be built first (``frontend/scripts/ci.sh``); the test builds nothing and skips, naming what is missing,
when the build, Chromium or ``playwright-core`` is absent, unless ``RUCKUS_REQUIRE_UI=1`` (set by ``.ci/run``) makes
that a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import REPO, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FRONTEND = REPO / "frontend"
CHROMIUM = Path("/usr/bin/chromium")
#: The user that ``user_api`` creates (a fleet admin: the walkthrough registers the agent).
USERNAME = "operator"
PASSWORD = "operator-password-123"
#: Password of the users the roles test creates.
ROLES_PASSWORD = "a-long-enough-password-123"


def _missing() -> str | None:
    """What the browser test needs and does not find, or None."""
    if not (FRONTEND / "dist" / "index.html").is_file():
        return "frontend/dist/index.html is missing: build the UI with frontend/scripts/ci.sh"
    if not CHROMIUM.exists():
        return "/usr/bin/chromium is missing: apt-get install -y chromium"
    if not (FRONTEND / "node_modules" / "playwright-core").is_dir():
        return "frontend/node_modules/playwright-core is missing: run npm ci in frontend/"
    if shutil.which("node") is None:
        return "node is not installed"
    return None


#: CI sets this after building the UI, so that a missing piece fails the run instead of skipping the test.
REQUIRED = os.environ.get("RUCKUS_REQUIRE_UI") == "1"


@pytest.mark.skipif(not REQUIRED and _missing() is not None, reason=_missing() or "")
def test_ui_walkthrough(stack: Stack, user_api: Any) -> None:
    """Log in, register the agent, create an experiment, watch it finish live, open the results; then run a
    quick hardware benchmark from the agent's panel, check its measured peaks and the LLM job's efficiency."""
    missing = _missing()
    assert missing is None, f"RUCKUS_REQUIRE_UI=1 but {missing}"
    stack.start_server()
    stack.start_scheduler()
    stack.start_agent("ui-agent")
    artifacts = Path(os.environ.get("ARTIFACTS_DIR", REPO / "test-artifacts" / "ui"))
    env = {
        **os.environ,
        "BASE_URL": stack.base,
        "USERNAME": USERNAME,
        "PASSWORD": PASSWORD,
        "AGENT_URL": stack.agent_url("ui-agent"),
        "AGENT_TOKEN": stack.agent_tokens["ui-agent"],
        "ARTIFACTS_DIR": str(artifacts),
    }
    proc = subprocess.run(
        ["node", str(FRONTEND / "e2e" / "run.mjs")], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=540, check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f"browser walkthrough failed (screenshots in {artifacts}):\n{output[-6000:]}\n"
        f"--- server log ---\n{stack.log('server')}\n--- scheduler log ---\n{stack.log('scheduler')}"
    )


def _user(name: str, role: str) -> str:
    """Create a user with a role and the test password; return a new API token of it."""
    from django.contrib.auth import get_user_model

    from tests.factories import api_token, set_role

    user = get_user_model().objects.create_user(name, password=ROLES_PASSWORD)
    set_role(user, role)
    return api_token(user)


def _as(stack: Stack, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"{stack.base}/api/v1", headers={"Authorization": f"Token {token}"}, timeout=60)


@pytest.mark.skipif(not REQUIRED and _missing() is not None, reason=_missing() or "")
def test_ui_roles(stack: Stack) -> None:
    """A viewer gets a read-only UI; an operator acts on his own experiment and its jobs but not on another's, and
    does not manage agents; too many failed logins for one name make the login form say how long to wait."""
    missing = _missing()
    assert missing is None, f"RUCKUS_REQUIRE_UI=1 but {missing}"
    # Three attempts per user name and minute; the address limit out of the way (other tests share the cache).
    stack.env.update({"RUCKUS_LOGIN_USER_THROTTLE": "3/min", "RUCKUS_LOGIN_THROTTLE": "1000/min"})
    stack.start_server()
    stack.start_agent("roles-agent")
    suffix = secrets.token_hex(3)
    admin = _as(stack, _user(f"fiona-{suffix}", "fleet-admin"))
    _user(f"vera-{suffix}", "viewer")
    olga = _as(stack, _user(f"olga-{suffix}", "operator"))
    oscar = _as(stack, _user(f"oscar-{suffix}", "operator"))
    reg = admin.post("/agents/", json={"url": stack.agent_url("roles-agent"),
                                       "token": stack.agent_tokens["roles-agent"]})
    assert reg.status_code == 201, reg.text
    # No scheduler runs: each experiment keeps one pending job, which its owner may cancel.
    ids = {}
    for who, api in (("olga", olga), ("oscar", oscar)):
        created = api.post("/experiments/", json={
            "name": f"{who}'s benchmark", "task": {"name": "hardware_benchmark", "params": {"quick": True}},
            "runtimes": [{"name": "hardware"}], "agents": {"ids": [reg.json()["id"]]}, "runs_per_job": 1})
        assert created.status_code == 201, created.text
        assert created.json()["can_manage"] is True and created.json()["job_counts"] == {"pending": 1}
        ids[who] = created.json()["id"]
    artifacts = Path(os.environ.get("ARTIFACTS_DIR", REPO / "test-artifacts" / "ui"))
    env = {
        **os.environ,
        "BASE_URL": stack.base,
        "PASSWORD": ROLES_PASSWORD,
        "VIEWER": f"vera-{suffix}",
        "OPERATOR": f"olga-{suffix}",
        "OWN_EXPERIMENT": str(ids["olga"]),
        "OTHER_EXPERIMENT": str(ids["oscar"]),
        "THROTTLED_USER": f"mallory-{suffix}",
        "ARTIFACTS_DIR": str(artifacts),
    }
    proc = subprocess.run(
        ["node", str(FRONTEND / "e2e" / "roles.mjs")], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )
    output = proc.stdout + proc.stderr
    (artifacts / "roles.log").write_text(output)
    assert proc.returncode == 0, (
        f"browser roles check failed (screenshots in {artifacts}):\n{output[-6000:]}\n"
        f"--- server log ---\n{stack.log('server')}"
    )
    assert olga.get(f"/experiments/{ids['olga']}/").json()["name"] == "Renamed in the browser"
