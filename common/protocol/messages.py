"""Registration and heartbeat messages between the server and an agent, and the agent API's job views."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from common.protocol.base import PROTOCOL_VERSION, ProtocolModel, utcnow
from common.protocol.enums import AgentActivity, AgentJobState
from common.protocol.jobs import JobProgress
from common.protocol.results import MultiRunJobResult


class RegisterRequest(ProtocolModel):
    """Server -> agent ``POST /api/v1/register``: the server hands over its URL and the agent's credential."""

    type: Literal["agent.register"] = "agent.register"
    protocol_version: str = PROTOCOL_VERSION
    agent_id: str = Field(min_length=1)
    server_url: str = Field(min_length=1)
    credential: str = Field(min_length=16)


class AnnounceRequest(ProtocolModel):
    """Agent -> server self-announce: asks the server to register it (then the server calls ``/register``).

    Attributes:
        url: URL where the server can reach the agent.
        token: Bearer token the server must use when calling the agent.
        registration_key: Shared key proving the agent may join.
        name: Suggested agent name.
    """

    type: Literal["agent.announce"] = "agent.announce"
    protocol_version: str = PROTOCOL_VERSION
    url: str = Field(min_length=1)
    token: str = Field(min_length=1)
    registration_key: str = Field(min_length=1)
    name: str | None = None


class Heartbeat(ProtocolModel):
    """Agent -> server every heartbeat interval: small on purpose (DESIGN section 3, flow 2).

    Attributes:
        type: Message type tag.
        protocol_version: Protocol version.
        agent_id: Server-assigned id.
        activity: Idle or busy.
        running_job_id: Job running now.
        attempt: Its attempt number.
        attempt_token: Its attempt token.
        progress: Its progress.
        capabilities_hash: :meth:`AgentInfo.capabilities_hash`; a change asks the server to refresh.
        finished_job_ids: Jobs with results waiting in the spool for acknowledgement.
        sent_at: Send time.
    """

    type: Literal["agent.heartbeat"] = "agent.heartbeat"
    protocol_version: str = PROTOCOL_VERSION
    agent_id: str
    activity: AgentActivity = AgentActivity.IDLE
    running_job_id: str | None = None
    attempt: int | None = None
    attempt_token: str | None = None
    progress: JobProgress | None = None
    capabilities_hash: str | None = None
    finished_job_ids: list[str] = Field(default_factory=list)
    sent_at: datetime = Field(default_factory=utcnow)


class HeartbeatAnswer(ProtocolModel):
    """Server -> agent answer to a heartbeat.

    Attributes:
        status: The agent's status on the server (``online``, ``unreachable``, ``offline``, ``deactivated``).
        refresh_capabilities: True when the server's copy of the agent's capabilities is stale (the heartbeat's
            ``capabilities_hash`` differs from the stored one): the agent should send its full AgentInfo.
    """

    status: str
    refresh_capabilities: bool = False


class AgentJobReport(ProtocolModel):
    """A job as the agent's ``GET /api/v1/jobs/{id}`` (and job submission and cancel) report it.

    Attributes:
        job_id: Job id.
        attempt: Attempt number.
        status: Agent-side state.
        progress: Latest progress.
        runs_finished: Runs finished so far.
        result: The full result once the job ended.
    """

    job_id: str
    attempt: int
    status: AgentJobState
    progress: JobProgress
    runs_finished: int
    result: MultiRunJobResult | None = None


class AgentJobSummary(ProtocolModel):
    """A job in the agent's ``GET /api/v1/jobs`` list.

    Attributes:
        job_id: Job id.
        attempt: Attempt number.
        status: Agent-side state.
        runs_finished: Runs finished so far.
        runs_total: Runs requested (``runs_per_job``).
    """

    job_id: str
    attempt: int
    status: AgentJobState
    runs_finished: int
    runs_total: int
