"""Fixtures for server tests."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory


@pytest.fixture
def user(db):
    """A regular user."""
    return UserFactory(username="alice")


@pytest.fixture
def api(user) -> APIClient:
    """An API client authenticated with a real token (the CLI's way)."""
    from rest_framework.authtoken.models import Token

    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def anon() -> APIClient:
    """An unauthenticated API client."""
    return APIClient()
