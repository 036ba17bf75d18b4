"""Django app configuration for the project package (it holds the ``demo`` and ``seed_demo`` commands)."""

from django.apps import AppConfig


class RuckusServerConfig(AppConfig):
    """The project as an app: commands that span every app live here, above all of them."""

    name = "ruckus_server"
    verbose_name = "RUCKUS"
