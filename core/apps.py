"""Django app configuration for the core app."""

from typing import Any

from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate

from core.roles import sync_role_groups


class CoreConfig(AppConfig):
    """Core app: transition log, event plumbing, roles."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        """Keep the role groups and the database cache's table in step at every ``migrate`` (and ``flush``)."""
        post_migrate.connect(sync_role_groups, dispatch_uid="ruckus-sync-role-groups")
        post_migrate.connect(_ensure_cache_table, sender=self, dispatch_uid="ruckus-cache-table")


def _ensure_cache_table(using: str = "default", **_kwargs: Any) -> None:
    """Create the database cache's table when the settings use one (no Redis); idempotent."""
    call_command("createcachetable", database=using, verbosity=0)
