"""The server's calls to agents: pinned to the checked address, no query tricks, nothing of the answer reflected.

Also the production settings: loopback agents only with DEBUG, ``check --deploy`` clean, placeholders refused.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.test import override_settings

from agents.client import AgentCallError, AgentClient
from agents.services import RegistrationError, agent_refresh_capabilities, agent_register
from agents.urlguard import UnsafeURL, check_agent_url, resolve_agent_url
from tests.factories import AgentFactory

REPO = Path(__file__).resolve().parents[2]
SECRET_PAGE = "INTERNAL-SERVICE-PAGE-a1b2c3"


@pytest.fixture
def rebinding_dns(monkeypatch):
    """``agent.example`` resolves to 127.0.0.1 the first time, then to the metadata address (a rebinding DNS)."""
    real = socket.getaddrinfo
    answers = {"n": 0}

    def fake(host, port, *args, **kwargs):
        if host == "agent.example":
            answers["n"] += 1
            address = "127.0.0.1" if answers["n"] == 1 else "169.254.169.254"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return answers


def test_calls_go_to_the_checked_address_even_when_the_name_moves(fake_agent, rebinding_dns):
    handler, port = fake_agent
    client = AgentClient(f"http://agent.example:{port}", "agent-token")
    assert rebinding_dns["n"] == 1
    for _ in range(3):
        with contextlib.suppress(ValueError):  # what the recorder answers does not matter here
            client.info()
    # Every request reached the local recorder (the first answer), never the metadata address.
    assert len(handler.seen) == 3
    assert {host for _path, host in handler.seen} == {f"agent.example:{port}"}
    # A new check sees the moved name and refuses it.
    with pytest.raises(UnsafeURL, match="link-local"):
        resolve_agent_url(f"http://agent.example:{port}")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:9/x?target=/admin", "query"),
        ("http://127.0.0.1:9/#/admin", "fragment"),
        ("http://127.0.0.1:9/?", "query"),
        ("http://user:pw@127.0.0.1:9/", "credentials"),
        ("http://127.0.0.1:9/a/../admin", "prefix"),
        ("http://127.0.0.1:9/a%2f..", "prefix"),
        ("http://0.0.0.0:9/", "unspecified"),
        ("http://[fd00:ec2::254]:80/", "metadata"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://\u2460\u2461\u2466.0.0.1:1/", "ASCII"),
    ],
)
def test_agent_urls_that_could_steer_the_server_are_refused(url, problem):
    with pytest.raises(UnsafeURL, match=problem):
        check_agent_url(url)


def test_a_path_prefix_given_at_registration_is_kept(fake_agent):
    handler, port = fake_agent
    with contextlib.suppress(ValueError):  # what the recorder answers does not matter here
        AgentClient(f"http://127.0.0.1:{port}/agents/a7/", "t").info()
    assert handler.seen[-1][0] == "/agents/a7/api/v1/info"


def test_connection_failures_all_read_the_same():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers: a timeout
    hangup = socket.socket()
    hangup.bind(("127.0.0.1", 0))
    hangup.listen(1)

    def hang_up() -> None:
        conn, _ = hangup.accept()
        conn.close()  # closes without an answer

    threading.Thread(target=hang_up, daemon=True).start()
    messages = []
    try:
        for port in (closed_port, silent.getsockname()[1], hangup.getsockname()[1]):
            base = f"http://127.0.0.1:{port}"
            with pytest.raises(AgentCallError) as caught:
                AgentClient(base, "t", timeout=0.5).info()
            messages.append(str(caught.value).replace(base, "URL"))
    finally:
        silent.close()
        hangup.close()
    assert messages == ["agent at URL did not answer"] * 3


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "body"), [
    (500, SECRET_PAGE.encode()),
    (200, f"<html>{SECRET_PAGE}</html>".encode()),
    (200, f'{{"name": "{SECRET_PAGE}", "protocol_version": 7}}'.encode()),
    (404, f'{{"detail": "{SECRET_PAGE}"}}'.encode()),
])
def test_what_another_service_answers_is_never_reflected(fake_agent, status, body):
    handler, port = fake_agent
    handler.status, handler.body = status, body
    with pytest.raises(RegistrationError) as caught:
        agent_register(url=f"http://127.0.0.1:{port}", token="t", server_url="http://127.0.0.1:8000")
    assert SECRET_PAGE not in str(caught.value)
    agent = AgentFactory(url=f"http://127.0.0.1:{port}")
    with pytest.raises(RegistrationError) as caught:
        agent_refresh_capabilities(agent)
    assert SECRET_PAGE not in str(caught.value)


@pytest.mark.django_db
def test_register_endpoint_does_not_reflect_the_remote_body(api, fake_agent):
    handler, port = fake_agent
    handler.status, handler.body = 200, f"<html>{SECRET_PAGE}</html>".encode()
    response = api.post("/api/v1/agents/", {"url": f"http://127.0.0.1:{port}", "token": "t"}, format="json")
    assert response.status_code == 502
    assert SECRET_PAGE not in response.content.decode()
    assert "does not follow the agent protocol" in response.json()["detail"]


# --- production settings ----------------------------------------------------------------------------------------

def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "RUCKUS_REGISTRATION_KEY")}
    base.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=base, capture_output=True, text=True,
                          timeout=120, check=False)


PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "k3J9-pQz_x7Lr2Vw8NcY4bTs6HdF1mGa0uEo5iKj7lZq9RyXvB",
              "ALLOWED_HOSTS": "ruckus.example.org"}


def test_production_settings_pass_check_deploy_and_keep_agents_off_loopback():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    shown = _manage("shell", "-c", "from django.conf import settings; print(settings.RUCKUS_AGENT_ALLOWED_NETWORKS)",
                    **PRODUCTION)
    assert shown.returncode == 0, shown.stderr
    assert "127.0.0.0/8" not in shown.stdout and "10.0.0.0/8" in shown.stdout


@pytest.mark.parametrize("variable", ["SECRET_KEY", "RUCKUS_REGISTRATION_KEY"])
def test_example_placeholders_are_refused_at_start_up(variable):
    env = {**PRODUCTION, variable: "change-me-to-a-long-random-string"}
    result = _manage("check", **env)
    assert result.returncode != 0
    assert f"{variable} still holds the example placeholder" in result.stderr


@override_settings(RUCKUS_AGENT_ALLOWED_NETWORKS=["10.0.0.0/8"])
def test_loopback_agents_are_refused_unless_allowed():
    with pytest.raises(UnsafeURL, match="outside the allowed agent networks"):
        check_agent_url("http://127.0.0.1:8100")
