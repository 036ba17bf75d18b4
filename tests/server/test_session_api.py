"""JSON session login for the web UI, its CSRF protection, and the UI's catch-all page."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/session/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def browser() -> Client:
    """A browser-like client that enforces CSRF checks."""
    return Client(enforce_csrf_checks=True)


def _csrf(client: Client) -> str:
    """Fetch the session endpoint once and return the CSRF cookie it sets."""
    client.get(URL)
    return client.cookies["csrftoken"].value


def test_get_without_login_is_401_and_sets_csrf_cookie(browser):
    response = browser.get(URL)
    assert response.status_code == 401
    assert response.json() == {"detail": "not logged in"}
    assert browser.cookies["csrftoken"].value


def test_login_me_logout_roundtrip(browser, user):
    token = _csrf(browser)
    response = browser.post(URL, {"username": "alice", "password": PASSWORD}, content_type="application/json",
                            headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.content
    assert response.json()["username"] == "alice"
    assert "password" not in response.json()

    me = browser.get(URL)
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    # The session works on the REST API (CSRF token rotates at login: use the new cookie).
    assert browser.get("/api/v1/agents/").status_code == 200

    token = browser.cookies["csrftoken"].value
    assert browser.delete(URL, headers={"X-CSRFToken": token}).status_code == 204
    assert browser.get(URL).status_code == 401
    assert browser.get("/api/v1/agents/").status_code in (401, 403)


def test_login_without_csrf_token_is_refused(browser, user):
    _csrf(browser)
    response = browser.post(URL, {"username": "alice", "password": PASSWORD}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert browser.get(URL).status_code == 401


def test_wrong_password_names_the_problem(browser, user):
    token = _csrf(browser)
    response = browser.post(URL, {"username": "alice", "password": "nope"}, content_type="application/json",
                            headers={"X-CSRFToken": token})
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["wrong username or password"]}


def test_missing_fields_are_named(browser, user):
    token = _csrf(browser)
    response = browser.post(URL, {"username": "alice"}, content_type="application/json",
                            headers={"X-CSRFToken": token})
    assert response.status_code == 400
    assert "password" in response.json()


def test_logout_needs_csrf(browser, user):
    token = _csrf(browser)
    browser.post(URL, {"username": "alice", "password": PASSWORD}, content_type="application/json",
                 headers={"X-CSRFToken": token})
    assert browser.delete(URL).status_code == 403
    assert browser.get(URL).status_code == 200


def test_spa_serves_index_for_client_routes(client, tmp_path, settings):
    dist = tmp_path / "frontend" / "dist"
    dist.mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=root></div>")
    settings.BASE_DIR = tmp_path
    for path in ("/", "/agents", "/experiments/12/results"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"id=root" in response.content
        assert "csrftoken" in response.cookies


def test_spa_leaves_server_paths_alone(client, tmp_path, settings):
    dist = tmp_path / "frontend" / "dist"
    dist.mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=root></div>")
    settings.BASE_DIR = tmp_path
    assert client.get("/api/v1/nope/").status_code == 404
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/healthz").status_code == 200
    # Slash redirects of the admin still work.
    assert client.get("/admin").status_code == 301


def test_spa_without_build_is_404(client, tmp_path, settings):
    settings.BASE_DIR = Path(tmp_path)
    response = client.get("/agents")
    assert response.status_code == 404
