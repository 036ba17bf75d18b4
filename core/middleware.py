"""Middleware of the server: query parameters that cannot be used are refused before any view runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.parsers import query_param_problem


class QueryParamGuardMiddleware:
    """Answer 400 ``{"<parameter>": ["<problem>"]}`` to a query parameter with a NUL character.

    Such a value would reach the database (a search, a filter) and fail there as a server error. A query string
    Django refuses to read (too many parameters) is a 400 ``{"detail": ...}`` too, not Django's HTML page.

    Args:
        get_response: The next handler.
    """

    # Usable in both modes: under ASGI a sync-only middleware makes Django hop from the event loop to a thread and
    # back for every request (measured: the largest cost of a heartbeat after the database connection).
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def _refusal(self, request: HttpRequest) -> HttpResponse | None:
        """The 400 answer for a request whose query parameters cannot be used, else None."""
        try:
            params = request.GET
        except (SuspiciousOperation, BadRequest) as exc:  # more than DATA_UPLOAD_MAX_NUMBER_FIELDS parameters
            return JsonResponse({"detail": f"malformed request: {exc}"}, status=400)
        found = query_param_problem(params)
        if found is not None:
            name, message = found
            return JsonResponse({name: [message]}, status=400)
        return None

    def __call__(self, request: HttpRequest) -> Any:
        """Refuse the request or pass it on (a coroutine when the chain is asynchronous)."""
        if iscoroutinefunction(self):
            return self._acall(request)
        return self._refusal(request) or self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        """:meth:`__call__` in an asynchronous chain."""
        return self._refusal(request) or await self.get_response(request)
