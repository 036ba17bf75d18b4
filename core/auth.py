"""API token authentication: django-rest-knox tokens (stored hashed, expiring, revocable).

The header is ``Authorization: Token <token>``. A token that is not plain text of a token's shape is refused
with the same message as an unknown one before any lookup: knox decodes it as UTF-8 and looks its prefix up in
the database, where undecodable bytes or a NUL character would otherwise surface as a server error.
"""

from __future__ import annotations

import string
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions

_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "_-")
#: Longest token knox hands out: its configured prefix (at most 10 characters) plus the random part.
_MAX_TOKEN_LENGTH = CONSTANTS.MAXIMUM_TOKEN_PREFIX_LENGTH + 2 * knox_settings.AUTH_TOKEN_CHARACTER_LENGTH


def plausible_token(token: bytes | str) -> str | None:
    """The token as text when it has a token's shape (ASCII letters, digits, ``_`` and ``-``), else None.

    Args:
        token: The token as sent.
    """
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not 0 < len(token) <= _MAX_TOKEN_LENGTH or not set(token) <= _TOKEN_CHARS:
        return None
    return token


class KnoxTokenAuthentication(TokenAuthentication):
    """Knox's token authentication, refusing malformed tokens up front (see the module docstring)."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        """Look the token up (hashed) when it has a token's shape; 401 otherwise.

        Args:
            token: The token part of the header.
        """
        if plausible_token(token) is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return super().authenticate_credentials(token)


class KnoxTokenScheme(OpenApiAuthenticationExtension):
    """OpenAPI description of the API token scheme: ``Authorization: Token <token>``."""

    target_class = "core.auth.KnoxTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """An API key in the Authorization header, prefixed with ``Token``."""
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "API token from POST /api/v1/auth/token/, sent as 'Token <token>'."}
