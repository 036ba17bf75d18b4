"""Django app configuration for the scheduler (no models: it drives the other apps' models)."""

from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    """Scheduling app (holds the ``run_scheduler`` command and the agent callback endpoints)."""

    name = "scheduling"
    verbose_name = "Scheduling"

    def ready(self) -> None:
        """Listen to agents' heartbeats (an attempt given up during a silence may come back)."""
        from agents.signals import heartbeat_received
        from scheduling.revival import on_heartbeat

        heartbeat_received.connect(on_heartbeat, dispatch_uid="scheduling.revival.on_heartbeat")
