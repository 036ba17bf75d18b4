"""Django app configuration for the scheduler (no models: it drives the other apps' models)."""

from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    """Scheduling app (holds the ``run_scheduler`` command and the agent callback endpoints)."""

    name = "scheduling"
    verbose_name = "Scheduling"
