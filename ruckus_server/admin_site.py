"""The HTML login forms (the admin's, the API browser's), throttled like every other login (:mod:`core.throttling`)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse

from core.throttling import login_wait


def throttled(request: HttpRequest) -> HttpResponse | None:
    """Count a login attempt (POST) against the shared limits; the 429 answer when a limit is reached.

    Args:
        request: The login form's request.
    """
    if request.method != "POST":
        return None
    wait = login_wait(request)
    if wait is None:
        return None
    seconds = int(wait) + 1
    response = HttpResponse(f"Too many login attempts; try again in {seconds} seconds.", status=429,
                            content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(seconds)
    return response


class RuckusAdminSite(admin.AdminSite):
    """Django's admin site whose login refuses attempts over the login limits with a 429."""

    site_header = "RUCKUS administration"
    site_title = "RUCKUS admin"

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Count a login attempt against the shared limits, then show or process the form."""
        return throttled(request) or super().login(request, extra_context)


class ThrottledLoginView(LoginView):
    """The API browser's and API docs' session login form (``/api-auth/login/``), throttled."""

    template_name = "rest_framework/login.html"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Count the attempt, then log in as Django's view does."""
        return throttled(request) or super().post(request, *args, **kwargs)
