"""Authentication of agent -> server calls: ``Authorization: Bearer <credential>`` (DESIGN section 7).

Only the agent-callback views use this class, so an agent credential never opens the user API.
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from agents.models import Agent, hash_credential


class AgentPrincipal:
    """The ``request.user`` of an agent call: authenticated, but not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def __str__(self) -> str:
        return f"agent:{self.agent.pk}"


class AgentCredentialAuthentication(authentication.BaseAuthentication):
    """Look the agent up by the SHA-256 of its bearer credential."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AgentPrincipal, Agent] | None:
        """Return ``(principal, agent)`` for a valid credential, None when no bearer header is present."""
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("malformed Bearer header")
        # The capabilities (kilobytes of JSON) are not read on every call: the heartbeat, the most frequent one,
        # never needs them, and a view that does loads them on first use.
        agent = Agent.objects.defer("capabilities").filter(credential_hash=hash_credential(header[1])).first()
        if agent is None:
            raise exceptions.AuthenticationFailed("unknown agent credential")
        return AgentPrincipal(agent), agent

    def authenticate_header(self, request: Request) -> str:
        """Value of WWW-Authenticate on 401."""
        return self.keyword


class IsAgent(permissions.BasePermission):
    """Allow only calls authenticated with an agent credential."""

    message = "this endpoint is for agents (Authorization: Bearer <agent credential>)"

    def has_permission(self, request: Request, view: Any) -> bool:
        """True when the request was authenticated as an agent."""
        return isinstance(request.auth, Agent)
