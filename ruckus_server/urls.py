"""Root URL configuration: admin, REST API, OpenAPI schema and docs, health endpoints, web UI."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from ruckus_server.admin_site import ThrottledLoginView
from ruckus_server.health import healthz, readyz
from ruckus_server.spa import spa_index

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("ruckus_server.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # The API browser's session login (DRF's own routes), with the login form throttled.
    path("api-auth/login/", ThrottledLoginView.as_view(), name="api-login"),
    path("api-auth/", include("rest_framework.urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    # Last: every other path is a route of the web UI (server prefixes keep their 404s and slash redirects).
    re_path(r"^(?!(?:api|api-auth|admin|ws|static)(?:/|$)|healthz$|readyz$)(?P<path>.*)$", spa_index, name="spa"),
]
