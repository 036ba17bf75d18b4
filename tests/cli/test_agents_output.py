"""``ruckus agents`` against a mocked server: the mode, URL and heartbeat error of each agent, and what a pull
agent (which the server cannot call) is spared."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from ruckus_cli import output
from ruckus_cli.client import Api
from ruckus_cli.commands import agents as agents_command
from ruckus_cli.commands.agents import PULL_URL_TEXT
from ruckus_cli.config import Config
from ruckus_cli.main import app
from ruckus_cli.output import format_time

SERVER = "http://ruckus.test"
PUSH_ID = "11111111-1111-4111-8111-111111111111"
PULL_ID = "22222222-2222-4222-8222-222222222222"
HEARTBEAT_ERROR = "no heartbeat for 15 s"
PROBED_ERROR = ("heartbeats do not arrive; the agent answers the server directly and reports its calls to "
                "http://10.0.0.2:8000 failing: ConnectError: [Errno 111] Connection refused")


def agent(**fields: Any) -> dict[str, Any]:
    """An agent as ``GET /api/v1/agents/{id}/`` returns it (healthy push agent unless ``fields`` say otherwise)."""
    base: dict[str, Any] = {
        "id": PUSH_ID, "name": "lab-1", "url": "http://10.0.0.5:8100", "mode": "push", "status": "online",
        "activity": "idle", "status_reason": "registered", "heartbeat_error": "", "heartbeat_error_since": None,
        "labels": [], "cost_per_hour": None, "hardware_fingerprint": "cpu:x86_64", "protocol_version": "1.1",
        "agent_version": "0.1.0", "last_seen": "2026-11-30T05:20:00.123456Z", "capabilities": None,
        "summary": {"cpu": "Xeon", "gpus": [], "runtimes": ["transformers"]},
    }
    return {**base, **fields}


PUSH = agent()
PULL = agent(id=PULL_ID, name="behind-nat", url="", mode="pull", status="unreachable",
             status_reason=HEARTBEAT_ERROR, heartbeat_error=HEARTBEAT_ERROR,
             heartbeat_error_since="2026-11-30T05:18:18.5Z")


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[dict[str, Any]]], list[str]]:
    """Answer the CLI's requests from a list of agents (no network); wide output so rows stay whole.

    Returns a function that installs the fleet and returns the list where every request is recorded
    (``"METHOD /path"``). An experiment created there is completed at once.
    """

    def install(fleet: list[dict[str, Any]]) -> list[str]:
        by_id = {a["id"]: a for a in fleet}
        calls: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            path = request.url.path
            calls.append(f"{request.method} {path}")
            if path == "/api/v1/agents/":
                return httpx.Response(200, json={"count": len(fleet), "next": None, "results": fleet})
            if path == "/api/v1/experiments/" and request.method == "POST":
                return httpx.Response(201, json={"id": 7, "job_counts": {"pending": 1}, "status": "pending"})
            if path == "/api/v1/experiments/7/":
                return httpx.Response(200, json={"id": 7, "status": "completed"})
            agent_id, _, action = path.removeprefix("/api/v1/agents/").strip("/").partition("/")
            found = by_id.get(agent_id)
            if found is None:
                return httpx.Response(404, json={"detail": "Not found."})
            if action == "refresh":
                return httpx.Response(502, json={"detail": "refresh failed"}) if found["mode"] == "pull" else (
                    httpx.Response(200, json=found))
            return httpx.Response(200, json=found)

        def connect(server: str | None, token: str | None) -> Api:
            api = Api(Config(SERVER, "token"))
            api._http = httpx.Client(base_url=SERVER, transport=httpx.MockTransport(handler))
            return api

        monkeypatch.setattr(agents_command, "connect", connect)
        return calls

    monkeypatch.setattr(output, "console", Console(width=300))
    return install


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def row(text: str, field: str) -> str:
    """The value of one ``field │ value`` row of ``agents show``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells and cells[0] == field:
            return cells[1]
    raise AssertionError(f"no row {field!r} in:\n{text}")


def test_list_has_a_mode_column_and_flags_heartbeat_errors(serve):
    serve([PUSH, PULL])
    text = run("agents", "list")
    header = next(line for line in text.splitlines() if "name" in line and "status" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")][:6] == ["id", "name", "mode", "status", "activity", "url"]
    push_line = next(line for line in text.splitlines() if PUSH_ID in line)
    pull_line = next(line for line in text.splitlines() if PULL_ID in line)
    assert "│ push " in push_line and "http://10.0.0.5:8100" in push_line and "heartbeat error" not in push_line
    assert "│ pull " in pull_line and "unreachable (heartbeat error)" in pull_line


def test_list_json_passes_the_new_fields_through(serve):
    serve([PUSH, PULL])
    listed = json.loads(run("agents", "list", "--json"))
    assert [(a["mode"], a["heartbeat_error"]) for a in listed] == [("push", ""), ("pull", HEARTBEAT_ERROR)]


def test_show_pull_agent_with_heartbeat_error(serve):
    serve([PULL])
    text = run("agents", "show", PULL_ID)
    assert row(text, "mode") == "pull"
    assert row(text, "url") == PULL_URL_TEXT
    assert row(text, "status") == f"unreachable ({HEARTBEAT_ERROR})"
    assert row(text, "heartbeat error") == f"{HEARTBEAT_ERROR} (since 2026-11-30 05:18:18 UTC)"


def test_show_error_text_is_printed_verbatim(serve):
    serve([agent(name="lab [gpu]", heartbeat_error=PROBED_ERROR, heartbeat_error_since="2026-11-30T06:18:18+01:00")])
    text = run("agents", "show", PUSH_ID)
    assert row(text, "name") == "lab [gpu]"  # not read as rich markup
    assert row(text, "heartbeat error") == f"{PROBED_ERROR} (since 2026-11-30 05:18:18 UTC)"
    assert row(text, "url") == "http://10.0.0.5:8100"


def test_show_healthy_push_agent_has_no_heartbeat_error_row(serve):
    serve([agent(status_reason="")])
    text = run("agents", "show", PUSH_ID)
    assert row(text, "mode") == "push"
    assert row(text, "status") == "online"
    assert row(text, "last seen") == "2026-11-30 05:20:00 UTC"
    assert "heartbeat error" not in text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-11-30T05:18:18.123456Z", "2026-11-30 05:18:18 UTC"),
        ("2026-11-30T07:18:18+02:00", "2026-11-30 05:18:18 UTC"),
        ("2026-11-30T05:18:18", "2026-11-30 05:18:18"),
        (None, "—"),
        ("", "—"),
        ("soon", "soon"),
    ],
)
def test_format_time(value: str | None, shown: str):
    assert format_time(value) == shown


@pytest.mark.parametrize(("fleet_agent", "refreshed"), [(PUSH, True), (PULL, False)])
def test_benchmark_asks_only_a_push_agent_to_detect_again(serve, fleet_agent: dict[str, Any], refreshed: bool):
    calls = serve([fleet_agent])
    result = json.loads(run("agents", "benchmark", fleet_agent["id"], "--json"))
    assert result["status"] == "completed"
    assert (f"POST /api/v1/agents/{fleet_agent['id']}/refresh/" in calls) is refreshed
