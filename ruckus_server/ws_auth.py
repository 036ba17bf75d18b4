"""Websocket authentication for non-browser clients: ``/ws/events/?token=<API token>``.

Browsers are authenticated by their Django session (``AuthMiddlewareStack``); scripts and the CLI pass their
API token (knox) in the query string because websocket clients cannot always set headers. The token is never
logged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions

from core.auth import KnoxTokenAuthentication, plausible_token


@database_sync_to_async
def _user_for_token(key: str) -> Any:
    """The active user owning an unexpired, unrevoked API token, or AnonymousUser."""
    token = plausible_token(key)
    if token is None:
        return AnonymousUser()
    try:
        user, _token = KnoxTokenAuthentication().authenticate_credentials(token.encode("ascii"))
    except exceptions.AuthenticationFailed:
        return AnonymousUser()
    return user


class TokenAuthMiddleware(BaseMiddleware):
    """Set ``scope["user"]`` from ``?token=`` when the session did not authenticate the connection."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """Resolve the token, then hand over to the inner application."""
        user = scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            # latin-1 maps every byte, so a garbled query string cannot crash the handshake; percent-escapes
            # are decoded by parse_qs.
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            key = (query.get("token") or [""])[0]
            if key:
                scope = {**scope, "user": await _user_for_token(key)}
        return await super().__call__(scope, receive, send)
