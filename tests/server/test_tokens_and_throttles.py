"""API tokens (hashed, expiring, revocable), login throttles on every login path, the admin's ownership rules."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import ExperimentFactory, UserFactory, api_token

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def fresh():
    """Names and client addresses no other test run used: the counters live in the shared cache (Redis in CI),
    which outlives the test database, and clearing it would disturb anything else using it."""
    tag = secrets.token_hex(3)
    base = f"10.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"

    class Fresh:
        victim = f"victim-{tag}"
        bystander = f"bystander-{tag}"

        @staticmethod
        def ip(n: int) -> str:
            return f"{base}.{n}"

    return Fresh


def login(client: APIClient, username: str, password: str = PASSWORD, address: str = "198.18.0.10", **extra):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json",
                       REMOTE_ADDR=address, **extra)


def test_token_is_stored_hashed_expires_and_is_revocable():
    UserFactory(username="op", role="operator")
    answer = login(APIClient(), "op")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    token = body["token"]
    assert body["user"]["username"] == "op"
    assert body["user"]["role"] == "operator"
    assert body["expiry"] is not None
    # Only a digest is stored: the token itself appears in no column.
    row = AuthToken.objects.get(user__username="op")
    assert token not in (row.digest, row.token_key) and row.token_key == token[:15]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/auth/me/").status_code == 200
    # Revoked: 401 from then on.
    assert client.post("/api/v1/auth/token/logout/").status_code == 204
    assert client.get("/api/v1/auth/me/").status_code == 401
    # Expired: 401 (and the row is removed).
    second = login(APIClient(), "op").json()["token"]
    AuthToken.objects.filter(user__username="op").update(expiry=timezone.now() - timedelta(seconds=1))
    client.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    response = client.get("/api/v1/experiments/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."
    assert not AuthToken.objects.filter(user__username="op").exists()


def test_logoutall_revokes_every_token_of_the_user_only():
    user = UserFactory(username="op", role="operator")
    other = UserFactory(username="other", role="viewer")
    tokens = [api_token(user) for _ in range(3)]
    others = api_token(other)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[0]}")
    assert client.post("/api/v1/auth/token/logoutall/").status_code == 204
    for token in tokens:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        assert client.get("/api/v1/auth/me/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {others}")
    assert client.get("/api/v1/auth/me/").status_code == 200


@pytest.mark.parametrize("token", ["\u00e9t\u00e9", "a\x00b", "x" * 5000, "has space", "'; drop table"])
def test_malformed_tokens_are_a_plain_401(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}".encode().decode("latin-1"))
    response = client.get("/api/v1/experiments/")
    assert response.status_code == 401


@override_settings(RUCKUS_LOGIN_THROTTLE="5/min", RUCKUS_LOGIN_USER_THROTTLE="1000/min")
def test_token_login_is_throttled_per_address_and_forwarded_for_changes_nothing(fresh):
    UserFactory(username=fresh.victim, role="viewer")
    client = APIClient()
    codes = [login(client, fresh.victim, "wrong", address=fresh.ip(1), HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
             .status_code for i in range(7)]
    assert codes[:5] == [400] * 5
    assert codes[5:] == [429, 429]
    throttled = login(client, fresh.victim, address=fresh.ip(1))  # even the right password waits
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    # Another address is not affected by this one's attempts.
    assert login(client, fresh.victim, address=fresh.ip(2)).status_code == 200


@override_settings(RUCKUS_LOGIN_THROTTLE="1000/min", RUCKUS_LOGIN_USER_THROTTLE="4/min")
def test_token_login_is_throttled_per_user_name_across_addresses(fresh):
    UserFactory(username=fresh.victim, role="viewer")
    UserFactory(username=fresh.bystander, role="viewer")
    client = APIClient()
    codes = [login(client, fresh.victim, "wrong", address=fresh.ip(i + 1)).status_code for i in range(6)]
    assert codes == [400, 400, 400, 400, 429, 429]
    # The same name in other letter case is the same account name for the counter.
    assert login(client, fresh.victim.upper(), "wrong", address=fresh.ip(100)).status_code == 429
    assert login(client, fresh.bystander, address=fresh.ip(1)).status_code == 200


@override_settings(RUCKUS_LOGIN_THROTTLE="3/min", RUCKUS_LOGIN_USER_THROTTLE="1000/min")
def test_session_login_is_throttled(fresh):
    UserFactory(username=fresh.victim, role="viewer")
    client = APIClient(enforce_csrf_checks=False)
    codes = [client.post("/api/v1/auth/session/", {"username": fresh.victim, "password": "wrong"}, format="json",
                         REMOTE_ADDR=fresh.ip(1)).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]


@override_settings(RUCKUS_LOGIN_THROTTLE="3/min", RUCKUS_LOGIN_USER_THROTTLE="1000/min")
@pytest.mark.parametrize("path", ["/admin/login/", "/api-auth/login/"])
def test_html_login_forms_are_throttled(path, fresh):
    UserFactory(username=fresh.victim, role="fleet-admin")
    client = Client()
    codes = [client.post(path, {"username": fresh.victim, "password": "wrong"}, REMOTE_ADDR=fresh.ip(1)).status_code
             for _ in range(4)]
    assert codes[:3] == [200, 200, 200]  # the form again, with an error
    assert codes[3] == 429


def test_throttle_counters_are_in_the_shared_cache():
    from django.conf import settings

    backend = settings.CACHES["default"]["BACKEND"]
    assert backend in ("django.core.cache.backends.redis.RedisCache",
                       "django.core.cache.backends.db.DatabaseCache"), backend


def test_admin_follows_roles_and_ownership():
    owner = UserFactory(username="owner", role="operator")
    staff_operator = UserFactory(username="staff-op", role="operator")
    staff_operator.is_staff = True
    staff_operator.save()
    admin = UserFactory(username="admin", role="fleet-admin")
    mine = ExperimentFactory(owner=staff_operator)
    theirs = ExperimentFactory(owner=owner)

    browser = Client()
    browser.force_login(owner)  # not staff: no admin at all
    assert browser.get("/admin/").status_code == 302

    browser.force_login(staff_operator)
    assert browser.get(f"/admin/experiments/experiment/{mine.pk}/change/").status_code == 200
    assert browser.post(f"/admin/experiments/experiment/{theirs.pk}/delete/", {"post": "yes"}).status_code == 403
    assert browser.get("/admin/agents/agent/add/").status_code == 403

    browser.force_login(admin)
    assert browser.get(f"/admin/experiments/experiment/{theirs.pk}/change/").status_code == 200
    assert browser.get("/admin/agents/agent/add/").status_code == 200


def test_ruckus_user_command_creates_users_with_one_role(capsys):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("ruckus_user", "carol", "--role", "operator", "--password", "a long enough pass phrase", "--token")
    out = capsys.readouterr().out
    token = next(line[6:] for line in out.splitlines() if line.startswith("TOKEN="))
    carol = get_user_model().objects.get(username="carol")
    assert [g.name for g in carol.groups.all()] == ["operator"]
    assert not carol.is_staff
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/auth/me/").json()["role"] == "operator"
    call_command("ruckus_user", "carol", "--role", "fleet-admin")
    carol.refresh_from_db()
    assert [g.name for g in carol.groups.all()] == ["fleet-admin"]
    assert carol.is_staff
    assert carol.check_password("a long enough pass phrase")  # kept when not given again
