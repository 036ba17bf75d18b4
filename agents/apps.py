"""Django app configuration for agents."""

from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Agents app."""

    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        """Register the OpenAPI extension for the agent credential scheme and the agent's websocket event.

        Imported here, not at the top: Django loads this module before the app's models exist.
        """
        from agents import schema  # noqa: F401 - registration happens on import
        from agents.events import register_events

        register_events()
