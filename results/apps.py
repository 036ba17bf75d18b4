"""Django app configuration for results."""

from django.apps import AppConfig


class ResultsConfig(AppConfig):
    """Results app."""

    name = "results"
    verbose_name = "Results"
