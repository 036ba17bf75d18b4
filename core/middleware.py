"""Middleware of the server: query parameters that cannot be used are refused before any view runs."""

from __future__ import annotations

from collections.abc import Callable

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

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Refuse the request or pass it on."""
        try:
            params = request.GET
        except (SuspiciousOperation, BadRequest) as exc:  # more than DATA_UPLOAD_MAX_NUMBER_FIELDS parameters
            return JsonResponse({"detail": f"malformed request: {exc}"}, status=400)
        found = query_param_problem(params)
        if found is not None:
            name, message = found
            return JsonResponse({name: [message]}, status=400)
        return self.get_response(request)
