"""Django app configuration for experiments."""

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """Experiments app."""

    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        """Register the experiment and job websocket events.

        Imported here, not at the top: Django loads this module before the app's models exist.
        """
        from experiments.events import register_events

        register_events()
