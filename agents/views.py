"""REST views for agents: list, retrieve, edit labels/cost/name, deactivate, activate, delete."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agents import services
from agents.filters import AgentFilter
from agents.models import Agent
from agents.serializers import AgentSerializer


class AgentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Registered agents. Registration itself (by URL or self-announce) is a separate flow."""

    queryset = Agent.objects.all()
    serializer_class = AgentSerializer
    filterset_class = AgentFilter
    ordering_fields = ["name", "status", "last_seen", "registered_at", "updated_at"]
    search_fields = ["name", "url", "hardware_fingerprint"]

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Remove an agent; refused while it runs jobs (deactivate it and wait, or cancel them)."""
        agent = self.get_object()
        if agent.jobs.filter(status__in=["assigned", "running"]).exists():
            return Response(
                {"detail": "agent has jobs in progress; cancel them or deactivate the agent first"},
                status=status.HTTP_409_CONFLICT,
            )
        return super().destroy(request, *args, **kwargs)

    @extend_schema(request=None, responses=AgentSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str | None = None) -> Response:
        """Stop placing work on the agent."""
        agent = services.agent_deactivate(self.get_object().pk)
        return Response(self.get_serializer(agent).data)

    @extend_schema(request=None, responses=AgentSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Undo a deactivation."""
        agent = services.agent_activate(self.get_object().pk)
        return Response(self.get_serializer(agent).data)
