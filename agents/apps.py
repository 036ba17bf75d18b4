"""Django app configuration for agents."""

from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Agents app."""

    name = "agents"
    verbose_name = "Agents"
