"""The web UI in headless Chromium against a real server, scheduler and agent.

The UI must be built first (``frontend/scripts/ci.sh``); the test builds nothing and skips, naming what is missing,
when the build, Chromium or ``playwright-core`` is absent, unless ``RUCKUS_REQUIRE_UI=1`` (set by ``.ci/run``) makes
that a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FRONTEND = REPO / "frontend"
CHROMIUM = Path("/usr/bin/chromium")
#: The user that ``user_api`` creates.
USERNAME = "operator"
PASSWORD = "operator-password-123"


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
