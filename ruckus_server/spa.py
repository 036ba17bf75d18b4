"""Serve the single-page web UI: ``frontend/dist/index.html`` for ``/`` and every client-side route."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

#: Path prefixes that belong to the server, never to the UI (a typo there must stay a 404).
SERVER_PREFIXES = ("api/", "api-auth/", "admin/", "ws/", "static/", "healthz", "readyz")


def index_path() -> Path:
    """Location of the built UI's entry page."""
    return Path(settings.BASE_DIR) / "frontend" / "dist" / "index.html"


@require_safe
@ensure_csrf_cookie
def spa_index(request: HttpRequest, path: str = "") -> HttpResponse:
    """Return the UI's ``index.html`` so that the browser's router handles ``path``.

    Args:
        request: The request.
        path: The rest of the URL (client-side route).

    Returns:
        The page, never cached (its asset names change with every build).

    Raises:
        Http404: For server paths, and when the UI has not been built.
    """
    if path.startswith(SERVER_PREFIXES):
        raise Http404("not found")
    index = index_path()
    if not index.is_file():
        raise Http404("the web UI is not built: run `npm ci && npm run build` in frontend/")
    response = HttpResponse(index.read_bytes(), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response
