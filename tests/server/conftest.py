"""Fixtures for server tests."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory, api_token


@pytest.fixture
def user(db):
    """A fleet admin (may do everything; the role tests use each role)."""
    return UserFactory(username="alice", role="fleet-admin")


def client_for(user) -> APIClient:
    """An API client authenticated as ``user`` with a real API token (the CLI's way)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(user)}")
    return client


@pytest.fixture
def api(user) -> APIClient:
    """An API client authenticated with a real token (the CLI's way)."""
    return client_for(user)


@pytest.fixture
def anon() -> APIClient:
    """An unauthenticated API client."""
    return APIClient()
