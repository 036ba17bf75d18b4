"""Django app configuration for experiments."""

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """Experiments app."""

    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        """Register the experiment and job websocket events and the experiment's response schema.

        Imported here, not at the top: Django loads this module before the app's models exist.
        """
        from experiments import api_schemas  # noqa: F401 - the OpenAPI extension registers on import
        from experiments.events import register_events

        register_events()
