"""Agent model: a registered host that runs jobs."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from pydantic import ValidationError as PydanticValidationError

from common.protocol import AgentInfo, hardware_fingerprint
from common.statuses import SCHEDULABLE_AGENT_STATUSES, AgentActivity, AgentMode, AgentStatus

__all__ = [
    "SCHEDULABLE_STATUSES", "Agent", "AgentActivity", "AgentMode", "AgentStatus", "hash_credential", "new_credential",
]

#: Statuses in which the scheduler may place work on an agent.
SCHEDULABLE_STATUSES = SCHEDULABLE_AGENT_STATUSES


def hash_credential(credential: str) -> str:
    """Hash an agent credential for storage.

    Credentials are 256-bit random strings, so a fast unsalted SHA-256 is safe (no dictionary to attack)
    and lets heartbeats authenticate with one indexed lookup instead of a slow password hash.

    Args:
        credential: The plaintext credential.

    Returns:
        Hex digest.
    """
    return hashlib.sha256(credential.encode()).hexdigest()


def new_credential() -> str:
    """Return a fresh random agent credential (shown to the agent once, stored hashed)."""
    return secrets.token_urlsafe(32)


def _fernet() -> Fernet:
    """Fernet cipher keyed from ``SECRET_KEY`` (rotating the key invalidates stored agent tokens)."""
    key = hashlib.sha256(f"ruckus-agent-token:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def validate_capabilities(value: Any) -> None:
    """Django field validator: capabilities must be a valid :class:`common.protocol.AgentInfo`.

    Args:
        value: The JSON value.

    Raises:
        ValidationError: When the value does not follow the protocol.
    """
    if value in (None, {}):
        return
    try:
        AgentInfo.model_validate(value)
    except PydanticValidationError as exc:
        raise ValidationError(f"capabilities do not follow the agent protocol: {exc}") from exc


class Agent(models.Model):
    """A host running ``ruckus-agent``.

    Attributes:
        id: Server-assigned id, sent to the agent at registration.
        name: Human name.
        url: Base URL where the server reaches the agent (empty for a pull agent: the server never calls it).
        mode: ``push`` (the server calls the agent) or ``pull`` (the agent asks the server for work).
        status: Health state.
        activity: Idle or busy (meaningful when online).
        status_reason: Why the last status change happened.
        capabilities: The agent's ``AgentInfo`` (validated by the common protocol model).
        capabilities_hash: ``AgentInfo.capabilities_hash()`` of the stored capabilities.
        hardware_fingerprint: CPU model, GPU model x count x memory, memory class (retries stay on it).
        protocol_version: Protocol version the agent speaks.
        credential_hash: SHA-256 of the credential the agent uses to call the server.
        token_encrypted: Bearer token the server uses to call the agent, encrypted with a key derived from
            ``SECRET_KEY`` (the server must present it, so it cannot be hashed; it is never shown).
        labels: Free labels used to select agents in experiments.
        cost_per_hour: Optional cost of the host in dollars per hour (throughput per dollar).
        last_seen: Last heartbeat or successful call.
        heartbeat_error: Why the agent's heartbeats do not arrive, as far as the server knows (what the agent
            itself reports when the server can still call it, else the silence); empty while they arrive.
        heartbeat_error_since: When that trouble began.
        heartbeat_interval_s: The heartbeat interval the server told the agent in its last answer (it adapts to the
            fleet's size); the health sweep judges the agent's silence by it. None until the first heartbeat.
        latest_benchmark: The stored result of the latest hardware benchmark job this agent completed (its
            measured peaks; the agent's capabilities do not carry them).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=500, blank=True, default="")
    mode = models.CharField(max_length=10, choices=AgentMode.choices(), default=AgentMode.PUSH)
    status = models.CharField(max_length=20, choices=AgentStatus.choices(), default=AgentStatus.ONLINE)
    activity = models.CharField(max_length=10, choices=AgentActivity.choices(), default=AgentActivity.IDLE)
    status_reason = models.CharField(max_length=500, blank=True, default="")
    capabilities = models.JSONField(default=dict, blank=True, validators=[validate_capabilities])
    capabilities_hash = models.CharField(max_length=64, blank=True, default="")
    hardware_fingerprint = models.CharField(max_length=500, blank=True, default="", db_index=True)
    protocol_version = models.CharField(max_length=20, blank=True, default="")
    agent_version = models.CharField(max_length=50, blank=True, default="")
    credential_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    token_encrypted = models.TextField(blank=True, default="")
    labels = models.JSONField(default=list, blank=True)
    cost_per_hour = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    heartbeat_error = models.CharField(max_length=1000, blank=True, default="")
    heartbeat_error_since = models.DateTimeField(null=True, blank=True)
    heartbeat_interval_s = models.FloatField(null=True, blank=True)
    # Referred to by name: the results app sits above this one and sets it when it stores a benchmark.
    latest_benchmark = models.ForeignKey(
        "results.JobResult", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    registered_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["status", "activity"], name="agent_status_activity_idx"),
            models.Index(fields=["updated_at"], name="agent_updated_idx"),
            models.Index(fields=["last_seen"], name="agent_last_seen_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(cost_per_hour__gte=0), name="agent_cost_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def info(self) -> AgentInfo | None:
        """The stored capabilities as an :class:`AgentInfo`, or None before registration completed."""
        if not self.capabilities:
            return None
        return AgentInfo.model_validate(self.capabilities)

    def set_capabilities(self, info: AgentInfo) -> None:
        """Store a new ``AgentInfo`` and everything derived from it (hash, fingerprint, versions).

        Args:
            info: The agent's description.
        """
        self.capabilities = info.model_dump(mode="json")
        self.capabilities_hash = info.capabilities_hash()
        self.hardware_fingerprint = hardware_fingerprint(info)
        # Cut to the columns' widths: an agent's description must never make its registration fail.
        self.protocol_version = info.protocol_version[:20]
        self.agent_version = info.agent_version[:50]

    def set_credential(self) -> str:
        """Issue a new credential, store its hash and return the plaintext (shown once).

        Returns:
            The plaintext credential.
        """
        credential = new_credential()
        self.credential_hash = hash_credential(credential)
        return credential

    def check_credential(self, credential: str) -> bool:
        """Constant-time check of a presented credential.

        Args:
            credential: What the caller presented.

        Returns:
            True when it matches the stored hash.
        """
        return bool(self.credential_hash) and secrets.compare_digest(
            self.credential_hash, hash_credential(credential)
        )

    @property
    def token(self) -> str:
        """The bearer token for server -> agent calls (decrypted), empty when unset or undecryptable."""
        if not self.token_encrypted:
            return ""
        try:
            return _fernet().decrypt(self.token_encrypted.encode()).decode()
        except InvalidToken:
            return ""

    @token.setter
    def token(self, value: str) -> None:
        self.token_encrypted = _fernet().encrypt(value.encode()).decode() if value else ""

    @property
    def is_pull(self) -> bool:
        """True for an agent that asks for work (the server never calls it)."""
        return self.mode == AgentMode.PULL

    @property
    def is_schedulable(self) -> bool:
        """True when new work may be placed on this agent."""
        return self.status in SCHEDULABLE_STATUSES
