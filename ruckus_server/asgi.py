"""ASGI entry point: ``daphne ruckus_server.asgi:application`` serves HTTP and websockets."""

import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ruckus_server.settings")

# Django must be set up before anything imports models (websocket routing does, later).
django_asgi_app = get_asgi_application()

# Unfinished: the websocket route (/ws/events/) arrives with the orchestration work; HTTP only for now.
application = ProtocolTypeRouter({"http": django_asgi_app})
