"""ASGI entry point: ``daphne ruckus_server.asgi:application`` serves HTTP and websockets."""

import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ruckus_server.settings")

# Django must be set up before anything imports models (the websocket routing does).
django_asgi_app = get_asgi_application()

from ruckus_server.routing import websocket_urlpatterns  # noqa: E402
from ruckus_server.ws_auth import TokenAuthMiddleware  # noqa: E402


def _allowed_origins() -> list[str]:
    """Browser origins allowed to open websockets: the allowed hosts, plus clients that send no Origin."""
    return [*settings.ALLOWED_HOSTS, *settings.CSRF_TRUSTED_ORIGINS]


class _OriginOrNoOrigin(OriginValidator):
    """Check the Origin of browser connections; non-browser clients (no Origin header) authenticate by token."""

    def valid_origin(self, parsed_origin: object) -> bool:
        """Accept a missing Origin; otherwise apply the allowed-hosts rule."""
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": _OriginOrNoOrigin(
            AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns))), _allowed_origins()
        ),
    }
)
