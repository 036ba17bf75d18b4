"""OpenAPI description of the agent credential scheme (drf-spectacular extension)."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AgentCredentialScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <agent credential>`` on agent callback endpoints."""

    target_class = "agents.authentication.AgentCredentialAuthentication"
    name = "agentCredential"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """HTTP bearer scheme."""
        return {"type": "http", "scheme": "bearer", "description": "Credential issued to the agent at registration"}
