"""URL routes of the REST API (``/api/v1/``)."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import APIRootView, DefaultRouter

from agents.views import AgentViewSet
from experiments.views import ExperimentViewSet, JobViewSet
from results.load_views import ExperimentLoadView, JobLoadView
from results.views import (
    ExperimentComparisonView,
    ExperimentExportView,
    ExperimentResultsView,
    JobResultsView,
)
from ruckus_server.auth_api import MeView, SessionView, TokenLoginView, TokenLogoutAllView, TokenLogoutView
from ruckus_server.catalog_api import CatalogView
from scheduling.views import AgentWorkViewSet, JobCallbackViewSet


@csrf_exempt  # changes nothing: a POST there is a 404 like any other, not a CSRF refusal
def api_not_found(request: HttpRequest) -> JsonResponse:
    """``{"detail": "Not found."}`` with 404, whatever the method."""
    return JsonResponse({"detail": "Not found."}, status=404)


class ApiRootView(APIRootView):
    """The API's index (links to the collections), for any logged-in user."""

    permission_classes = [IsAuthenticated]


class Router(DefaultRouter):
    """The default router, with an index open to every logged-in user (the views' rules guard the rest)."""

    APIRootView = ApiRootView


router = Router()
router.register("experiments", ExperimentViewSet, basename="experiment")
router.register("jobs", JobViewSet, basename="job")
router.register("agents", AgentViewSet, basename="agent")
# Agent callbacks on jobs (progress, result) live with the scheduler, above the apps they write to.
router.register("jobs", JobCallbackViewSet, basename="job-callback")
router.register("agents", AgentWorkViewSet, basename="agent-work")

urlpatterns = [
    path("auth/token/", TokenLoginView.as_view(), name="auth-token"),
    path("auth/token/logout/", TokenLogoutView.as_view(), name="auth-token-logout"),
    path("auth/token/logoutall/", TokenLogoutAllView.as_view(), name="auth-token-logoutall"),
    path("auth/me/", MeView.as_view(), name="auth-me"),
    path("auth/session/", SessionView.as_view(), name="auth-session"),
    path("catalog/", CatalogView.as_view(), name="catalog"),
    path("experiments/<int:pk>/results/", ExperimentResultsView.as_view(), name="experiment-results"),
    path("experiments/<int:pk>/comparison/", ExperimentComparisonView.as_view(), name="experiment-comparison"),
    path("experiments/<int:pk>/export/", ExperimentExportView.as_view(), name="experiment-export"),
    path("jobs/<int:pk>/results/", JobResultsView.as_view(), name="job-results"),
    path("experiments/<int:pk>/load/", ExperimentLoadView.as_view(), name="experiment-load"),
    path("jobs/<int:pk>/load/", JobLoadView.as_view(), name="job-load"),
    path("", include(router.urls)),
    # Last: an unknown API path (an id that is not one, such as /experiments/1.5/) answers 404 in the API's error
    # format, not with Django's HTML page. Only paths ending in "/": the others keep the trailing-slash redirect.
    re_path(r"^.*/$", api_not_found),
]
