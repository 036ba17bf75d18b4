"""The admin site, with its login form throttled like every other login (:mod:`core.throttling`)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import apps as admin_apps
from django.http import HttpRequest, HttpResponse

from core.throttling import login_wait


class RuckusAdminSite(admin.AdminSite):
    """Django's admin site whose login refuses attempts over the login limits with a 429."""

    site_header = "RUCKUS administration"
    site_title = "RUCKUS admin"

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Count a login attempt (POST) against the shared limits, then show or process the form."""
        if request.method == "POST":
            wait = login_wait(request)
            if wait is not None:
                response = HttpResponse(
                    f"Too many login attempts; try again in {int(wait) + 1} seconds.",
                    status=429, content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(int(wait) + 1)
                return response
        return super().login(request, extra_context)


class RuckusAdminConfig(admin_apps.AdminConfig):
    """Django's admin app, serving :class:`RuckusAdminSite` (listed in ``INSTALLED_APPS`` instead of the admin)."""

    default_site = "ruckus_server.admin_site.RuckusAdminSite"
