"""Django app configuration for agents."""

from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Agents app."""

    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        """Register the OpenAPI extension for the agent credential scheme."""
        from agents import schema  # noqa: F401 - registration happens on import
