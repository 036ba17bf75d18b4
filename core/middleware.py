"""Middleware of the server: query parameters that cannot be used are refused before any view runs."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from core.parsers import query_param_problem


class QueryParamGuardMiddleware:
    """Answer 400 ``{"<parameter>": ["<problem>"]}`` to a query parameter with a NUL character.

    Such a value would reach the database (a search, a filter) and fail there as a server error.

    Args:
        get_response: The next handler.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Refuse the request or pass it on."""
        found = query_param_problem(request.GET)
        if found is not None:
            name, message = found
            return JsonResponse({name: [message]}, status=400)
        return self.get_response(request)
