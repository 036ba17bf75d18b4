"""The admin app, configured to serve the throttled admin site (listed in ``INSTALLED_APPS`` instead of Django's).

A module of its own: ``INSTALLED_APPS`` imports it while the app registry loads, before any model exists.
"""

from django.contrib.admin import apps as admin_apps


class RuckusAdminConfig(admin_apps.AdminConfig):
    """Django's admin app, serving :class:`ruckus_server.admin_site.RuckusAdminSite`."""

    default_site = "ruckus_server.admin_site.RuckusAdminSite"
