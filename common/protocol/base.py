"""Foundations of the Agent Protocol: its version, shared bounds, the clock and the base model."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

#: Version of this protocol. Bump the minor part for additive changes, the major part for breaking ones.
PROTOCOL_VERSION = "1.2"

#: Bounds of ``runs_per_job`` (DESIGN section 5).
MIN_RUNS_PER_JOB = 1
MAX_RUNS_PER_JOB = 100


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class ProtocolModel(BaseModel):
    """Base for protocol models: unknown fields are kept out, values validated on assignment."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True, protected_namespaces=())
