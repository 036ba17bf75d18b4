"""Django app configuration for the core app."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Core app: transition log and event plumbing."""

    name = "core"
    verbose_name = "Core"
