"""Websocket authentication for non-browser clients: ``/ws/events/?token=<API token>``.

Browsers are authenticated by their Django session (``AuthMiddlewareStack``); scripts and the CLI pass their
DRF token in the query string because websocket clients cannot always set headers. The token is never logged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_for_token(key: str) -> Any:
    """The active user owning a DRF token, or AnonymousUser."""
    from rest_framework.authtoken.models import Token

    # Keys are at most 40 characters; anything else (or a NUL, which Postgres rejects) cannot match a token.
    if len(key) > Token._meta.get_field("key").max_length or "\x00" in key:
        return AnonymousUser()
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return AnonymousUser()
    return token.user


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
