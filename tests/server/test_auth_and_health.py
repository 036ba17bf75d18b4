"""Authentication refusals, token login and anonymous health endpoints."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

PROTECTED = [
    ("get", "/api/v1/experiments/"),
    ("post", "/api/v1/experiments/"),
    ("get", "/api/v1/jobs/"),
    ("get", "/api/v1/agents/"),
    ("get", "/api/v1/experiments/1/results/"),
    ("get", "/api/v1/experiments/1/comparison/"),
    ("get", "/api/v1/experiments/1/export/?format=csv"),
    ("get", "/api/v1/jobs/1/results/"),
    ("post", "/api/v1/jobs/1/cancel/"),
]


@pytest.mark.parametrize(("method", "url"), PROTECTED)
def test_unauthenticated_requests_are_refused(anon, method, url):
    response = getattr(anon, method)(url, {}, format="json")
    assert response.status_code in (401, 403)


def test_token_login_and_use(anon, user):
    response = anon.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery staple"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    anon.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert anon.get("/api/v1/experiments/").status_code == 200


def test_token_login_wrong_password(anon, user):
    response = anon.post("/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 400


def test_bad_token_is_401(anon):
    anon.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert anon.get("/api/v1/jobs/").status_code == 401


def test_session_login_works_for_the_ui(client, user):
    assert client.login(username="alice", password="correct horse battery staple")
    assert client.get("/api/v1/agents/").status_code == 200


def test_health_endpoints_are_anonymous(anon):
    assert anon.get("/healthz").json() == {"status": "ok"}
    ready = anon.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "postgresql"
    assert ready.json()["channel_layer"].startswith("ok")
