"""Django app configuration for experiments."""

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """Experiments app."""

    name = "experiments"
    verbose_name = "Experiments"
