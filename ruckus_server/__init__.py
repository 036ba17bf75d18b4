"""RUCKUS server: the Django project (settings, URLs, ASGI application, logging)."""
