"""REST views for agents: list, retrieve, edit labels/cost/name, deactivate, activate, delete."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from agents import services
from agents.authentication import AgentCredentialAuthentication, IsAgent
from agents.filters import AgentFilter
from agents.models import Agent
from agents.serializers import AgentRegisterSerializer, AgentSerializer
from agents.urlguard import UnsafeURL, check_agent_url
from common.protocol import (
    AgentInfo,
    AgentMode,
    AnnounceAnswer,
    AnnounceRequest,
    Heartbeat,
    HeartbeatAnswer,
    ReachAnswer,
    ReachRequest,
)
from common.statuses import JOB_ACTIVE_STATUSES
from core import roles
from core.api import parse_protocol
from core.openapi import ErrorSerializer
from core.permissions import Rule


def server_url_for(request: Request) -> str:
    """The address agents must call this server at.

    ``RUCKUS_PUBLIC_URL`` when set; otherwise the scheme and host that this request reached (through a proxy
    only when ``RUCKUS_BEHIND_PROXY`` lets Django trust its ``X-Forwarded-*`` headers), plus the script prefix
    the server is mounted under.

    Args:
        request: The registration or announce request.

    Returns:
        The base URL, without a trailing slash.
    """
    if settings.RUCKUS_PUBLIC_URL:
        return settings.RUCKUS_PUBLIC_URL
    prefix = request.META.get("SCRIPT_NAME", "") or ""
    return f"{request.scheme}://{request.get_host()}{prefix}".rstrip("/")


def _agent_call(view: Any, request: Request, pk: str | None) -> Agent:
    """The authenticated agent, which must be the one named in the URL."""
    agent: Agent = request.auth
    if str(agent.pk) != str(pk):
        raise PermissionDenied("an agent may only report about itself")
    return agent


class AgentViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Registered agents. Registration itself (by URL or self-announce) is a separate flow."""

    queryset = Agent.objects.select_related("latest_benchmark")
    serializer_class = AgentSerializer
    # announce, reach, heartbeat and capabilities are agents' calls, with their own authentication (below).
    access_rules = {
        "list": Rule(roles.VIEW_AGENTS),
        "retrieve": Rule(roles.VIEW_AGENTS),
        "create": Rule(roles.ADD_AGENT),
        "update": Rule(roles.CHANGE_AGENT),
        "partial_update": Rule(roles.CHANGE_AGENT),
        "deactivate": Rule(roles.CHANGE_AGENT),
        "activate": Rule(roles.CHANGE_AGENT),
        "refresh": Rule(roles.CHANGE_AGENT),
        "destroy": Rule(roles.DELETE_AGENT),
    }
    filterset_class = AgentFilter
    ordering_fields = ["name", "status", "last_seen", "registered_at", "updated_at"]
    search_fields = ["name", "url", "hardware_fingerprint"]

    def get_serializer_class(self) -> type:
        """Registration takes {url, token, name?, labels?, cost_per_hour?}."""
        return AgentRegisterSerializer if self.action == "create" else AgentSerializer

    @extend_schema(request=AgentRegisterSerializer, responses={201: AgentSerializer, 502: ErrorSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Register an agent by URL: the server calls the agent's /register and stores its AgentInfo."""
        serializer = AgentRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            agent = services.agent_register(
                url=data["url"], token=data["token"], server_url=server_url_for(request),
                name=data.get("name") or "", labels=data.get("labels"), cost_per_hour=data.get("cost_per_hour"),
            )
        except services.RegistrationError as exc:
            return Response({"detail": f"registration failed: {exc}"}, status=status.HTTP_502_BAD_GATEWAY)
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AnnounceRequest, responses={201: AnnounceAnswer, 502: ErrorSerializer})
    @action(detail=False, methods=["post"], authentication_classes=[], permission_classes=[AllowAny])
    def announce(self, request: Request) -> Response:
        """Self-announce with the registration key.

        A push agent is then registered through its ``/register`` (it must reach the server back at the address
        it announced to); a pull agent gets its registration in the answer.
        """
        message = parse_protocol(AnnounceRequest, request.data)
        key = settings.RUCKUS_REGISTRATION_KEY
        if not key:
            return Response({"detail": "self-announce is disabled: set RUCKUS_REGISTRATION_KEY on the server"},
                            status=status.HTTP_403_FORBIDDEN)
        if not secrets.compare_digest(message.registration_key.encode(), key.encode()):
            return Response({"detail": "wrong registration key"}, status=status.HTTP_403_FORBIDDEN)
        server_url = server_url_for(request)
        registration = None
        try:
            if message.mode == AgentMode.PULL:
                assert message.info is not None  # nosec B101  # narrowing: the protocol model requires it for pull agents
                agent, registration = services.agent_register_pull(
                    info=message.info, server_url=server_url, name=message.name or ""
                )
            else:
                try:
                    url = check_agent_url(message.url or "")
                except UnsafeURL as exc:
                    raise ValidationError({"url": str(exc)}) from exc
                agent = services.agent_register(url=url, token=message.token or "", server_url=server_url,
                                                name=message.name or "")
        except services.RegistrationError as exc:
            return Response({"detail": f"registration failed: {exc}"}, status=status.HTTP_502_BAD_GATEWAY)
        answer = AnnounceAnswer(agent_id=str(agent.pk), mode=AgentMode(agent.mode), status=agent.status,
                                registration=registration)
        return Response(answer.model_dump(mode="json"), status=status.HTTP_201_CREATED)

    @extend_schema(request=ReachRequest, responses={200: ReachAnswer})
    @action(detail=True, methods=["post"], authentication_classes=[], permission_classes=[AllowAny])
    def reach(self, request: Request, pk: str | None = None) -> Response:
        """An agent being registered proves it reaches the server here (it presents its registration challenge).

        Anonymous: the agent has no stored credential yet (its registration is not finished). The signed
        challenge is the proof, and nothing is written.
        """
        message = parse_protocol(ReachRequest, request.data)
        if not services.reach_check(pk, message.challenge):
            return Response({"detail": "invalid or expired registration challenge"}, status=status.HTTP_403_FORBIDDEN)
        return Response(ReachAnswer(agent_id=str(pk)).model_dump(mode="json"))

    @extend_schema(request=Heartbeat, responses=HeartbeatAnswer)
    @action(detail=True, methods=["post"], authentication_classes=[AgentCredentialAuthentication],
            permission_classes=[IsAgent])
    def heartbeat(self, request: Request, pk: str | None = None) -> Response:
        """Agent heartbeat (tiny payload); the answer says whether to resend capabilities."""
        agent = _agent_call(self, request, pk)
        message = parse_protocol(Heartbeat, request.data)
        return Response(services.agent_heartbeat(agent, message).model_dump(mode="json"))

    @extend_schema(
        request=AgentInfo,
        responses=inline_serializer("CapabilitiesStored", {"capabilities_hash": serializers.CharField()}),
    )
    @action(detail=True, methods=["post"], authentication_classes=[AgentCredentialAuthentication],
            permission_classes=[IsAgent])
    def capabilities(self, request: Request, pk: str | None = None) -> Response:
        """Agent sends its full AgentInfo after a change."""
        agent = _agent_call(self, request, pk)
        info = parse_protocol(AgentInfo, request.data)
        agent = services.agent_update_capabilities(agent, info)
        return Response({"capabilities_hash": agent.capabilities_hash})

    @extend_schema(responses={204: None, 409: ErrorSerializer})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Remove an agent; refused while it runs jobs (deactivate it and wait, or cancel them)."""
        agent = self.get_object()
        if agent.jobs.filter(status__in=JOB_ACTIVE_STATUSES).exists():
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

    @extend_schema(request=None, responses={200: AgentSerializer, 409: ErrorSerializer, 502: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str | None = None) -> Response:
        """Ask the agent to detect its host again now and store its new capabilities (502 if it cannot).

        A pull agent cannot be called (409): it sends a changed description by itself, on its next heartbeat.
        """
        agent = self.get_object()
        if agent.is_pull:
            return Response(
                {"detail": "a pull agent cannot be called by the server; it sends its description by itself when it "
                           "changes (restart it to detect its host again at once)"},
                status=status.HTTP_409_CONFLICT,
            )
        try:
            agent = services.agent_refresh_capabilities(agent)
        except services.RegistrationError as exc:
            return Response({"detail": f"refresh failed: {exc}"}, status=status.HTTP_502_BAD_GATEWAY)
        return Response(self.get_serializer(agent).data)

    @extend_schema(request=None, responses=AgentSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Undo a deactivation."""
        agent = services.agent_activate(self.get_object().pk)
        return Response(self.get_serializer(agent).data)
