"""ASGI middleware in front of the agent's API: the token and the body size are checked before the body is read.

FastAPI reads and parses a request's body before its dependencies run, so a token check in a dependency comes
too late: an anonymous caller could make the agent read and parse any amount of JSON. :class:`RequestGuard`
runs first, on the raw ASGI messages:

1. A route that is not public needs ``Authorization: Bearer <token>`` (compared in constant time); otherwise
   401, and the body is never read.
2. A ``Content-Length`` above the limit is answered 413 at once; an invalid one 400.
3. The body (also a chunked one, without ``Content-Length``) is read up to the limit and counted: one byte more
   and the answer is 413. Only then does the application see the request, with the body handed back to it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _answer(send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Send a small JSON error answer (``{"detail": ...}``) and close the exchange."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class RequestGuard:
    """Pure ASGI middleware: bearer token and body size before anything else.

    Args:
        app: The application behind the guard.
        token: Returns the agent's token (None: no protected route can be called).
        max_body_bytes: Largest request body accepted.
        public_paths: Paths anyone may call (the health check; the API docs in debug mode).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: Callable[[], str | None],
        max_body_bytes: int,
        public_paths: Iterable[str],
    ) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.public_paths = frozenset(public_paths)

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """True when exactly one ``Authorization: Bearer`` header carries the agent's token."""
        expected = self.token()
        values = [v for k, v in headers if k.lower() == b"authorization"]
        if not expected or len(values) != 1:
            return False
        scheme, _, presented = values[0].partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return secrets.compare_digest(presented.strip(), expected.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check one request, then pass it on with its body (or answer 400, 401 or 413 and stop)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
        if scope.get("path") not in self.public_paths and not self._authorized(headers):
            await _answer(send, 401, "missing or invalid bearer token", [(b"www-authenticate", b"Bearer")])
            return
        lengths = {v.strip() for k, v in headers if k.lower() == b"content-length"}
        if lengths:
            if len(lengths) != 1 or not next(iter(lengths)).isdigit():
                await _answer(send, 400, "invalid Content-Length")
                return
            if int(next(iter(lengths))) > self.max_body_bytes:
                await _answer(send, 413, f"request body larger than {self.max_body_bytes} bytes")
                return
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the application sees that as it would have
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                await _answer(send, 413, f"request body larger than {self.max_body_bytes} bytes")
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            """The buffered body first, then whatever the server says next (a disconnect)."""
            if buffered:
                return buffered.pop(0)
            return await receive()

        await self.app(scope, replay, send)
