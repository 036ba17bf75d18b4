"""Registration and heartbeat messages between the server and an agent, and the agent API's job views."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from common.protocol.agent_info import AgentInfo
from common.protocol.base import PROTOCOL_VERSION, ProtocolModel, utcnow
from common.protocol.enums import AgentActivity, AgentJobState, AgentMode
from common.protocol.jobs import JobProgress, JobRequest
from common.protocol.results import MultiRunJobResult

#: Longest a pull agent's work request may be held open by the server (seconds).
MAX_WORK_WAIT_S = 30.0


class RegisterRequest(ProtocolModel):
    """Server -> agent ``POST /api/v1/register``: the server hands over its URL and the agent's credential.

    Attributes:
        agent_id: The agent's id on the server.
        server_url: Where the agent must call the server (heartbeats, results).
        credential: The agent's credential for those calls.
        challenge: A signed token the agent presents back at ``server_url`` (``POST
            /api/v1/agents/{id}/reach/``) before it accepts the registration: registration finishes only once
            the agent has reached the server at that address (protocol 1.1; absent from older servers).
    """

    type: Literal["agent.register"] = "agent.register"
    protocol_version: str = PROTOCOL_VERSION
    agent_id: str = Field(min_length=1)
    server_url: str = Field(min_length=1)
    credential: str = Field(min_length=16)
    challenge: str | None = Field(default=None, max_length=1000)


class ReachRequest(ProtocolModel):
    """Agent -> server ``POST /api/v1/agents/{id}/reach/``: proves the agent reaches the server at this address.

    Attributes:
        challenge: The challenge of the :class:`RegisterRequest` being answered.
    """

    type: Literal["agent.reach"] = "agent.reach"
    challenge: str = Field(min_length=1, max_length=1000)


class ReachAnswer(ProtocolModel):
    """Server -> agent answer to a valid :class:`ReachRequest`.

    Attributes:
        agent_id: The agent the challenge was issued for.
        server_time: The server's clock.
    """

    agent_id: str
    server_time: datetime = Field(default_factory=utcnow)


class AnnounceRequest(ProtocolModel):
    """Agent -> server self-announce: asks the server to register it.

    A ``push`` agent gives the URL where the server reaches it and the token to present; the server then calls
    its ``/register``. A ``pull`` agent opens no port: it sends its full description instead and gets its
    registration in the answer (:class:`AnnounceAnswer`).

    Attributes:
        mode: ``push`` (default) or ``pull``.
        url: URL where the server can reach the agent (push only).
        token: Bearer token the server must use when calling the agent (push only).
        registration_key: Shared key proving the agent may join.
        name: Suggested agent name.
        info: The agent's full description (pull only).
    """

    type: Literal["agent.announce"] = "agent.announce"
    protocol_version: str = PROTOCOL_VERSION
    mode: AgentMode = AgentMode.PUSH
    url: str | None = Field(default=None, min_length=1, max_length=500)
    token: str | None = Field(default=None, min_length=1, max_length=500)
    registration_key: str = Field(min_length=1)
    name: str | None = Field(default=None, max_length=200)
    info: AgentInfo | None = None

    @model_validator(mode="after")
    def _fields_of_mode(self) -> AnnounceRequest:
        """A push agent must say where and how to call it; a pull agent must describe itself."""
        if self.mode == AgentMode.PUSH and not (self.url and self.token):
            raise ValueError("a push agent must give its url and token")
        if self.mode == AgentMode.PULL and self.info is None:
            raise ValueError("a pull agent must send its description (info)")
        return self


class PullRegistration(ProtocolModel):
    """What a pull agent receives when its announce is accepted (a push agent gets it through ``/register``).

    Attributes:
        agent_id: The agent's id on the server.
        server_url: Where to call the server.
        credential: The agent's credential.
    """

    agent_id: str
    server_url: str
    credential: str = Field(min_length=16)


class AnnounceAnswer(ProtocolModel):
    """Server -> agent answer to an accepted announce.

    Attributes:
        agent_id: The agent's id on the server.
        mode: The mode it was registered in.
        status: Its status on the server.
        registration: For a pull agent, its registration (for a push agent it went through ``/register``).
    """

    agent_id: str
    mode: AgentMode
    status: str
    registration: PullRegistration | None = None


class JobRejection(ProtocolModel):
    """A job a pull agent received but refused (it cannot run it here), reported with its next work request.

    Attributes:
        job_id: The job.
        attempt: Its attempt number.
        attempt_token: Its attempt token (proves the rejection is about that attempt).
        reason: Why, naming the field when a field is at fault.
        busy: True when the agent refused only because it runs another job (the attempt does not count).
    """

    job_id: str
    attempt: int
    attempt_token: str
    reason: str = Field(max_length=2000)
    busy: bool = False


class WorkRequest(ProtocolModel):
    """Pull agent -> server ``POST /api/v1/agents/{id}/work/``: "give me work", held open up to ``wait_s``.

    Attributes:
        agent_id: The agent's id on the server.
        activity: Idle or busy.
        running_job_id: Job running now.
        attempt: Its attempt number.
        attempt_token: Its attempt token.
        finished_job_ids: Jobs with results waiting in the spool for acknowledgement.
        rejected: Jobs received earlier that the agent cannot run.
        wait_s: How long the server may hold the request while there is nothing to say.
    """

    type: Literal["agent.work"] = "agent.work"
    protocol_version: str = PROTOCOL_VERSION
    agent_id: str
    activity: AgentActivity = AgentActivity.IDLE
    running_job_id: str | None = None
    attempt: int | None = None
    attempt_token: str | None = None
    finished_job_ids: list[str] = Field(default_factory=list, max_length=1000)
    rejected: list[JobRejection] = Field(default_factory=list, max_length=100)
    wait_s: float = Field(default=25.0, ge=0, le=MAX_WORK_WAIT_S)


class WorkAnswer(ProtocolModel):
    """Server -> pull agent answer to a :class:`WorkRequest`.

    Attributes:
        status: The agent's status on the server.
        job: A job to run (with its attempt token, under a lease), or None.
        cancel_job_ids: Jobs the agent must stop: cancelled, or no longer the current attempt of their job.
    """

    status: str
    job: JobRequest | None = None
    cancel_job_ids: list[str] = Field(default_factory=list)


class ServerContact(ProtocolModel):
    """How the agent's calls to its server are going (the agent's ``GET /api/v1/status``).

    Attributes:
        server_url: Where the agent calls the server.
        last_success_at: Last call the server answered.
        failing_since: First failure of the current run of failed calls (None while they succeed).
        last_error: The latest failure (exception class and message, or the HTTP status).
        consecutive_failures: Failed calls in a row.
    """

    server_url: str | None = None
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0


class AgentStatusReport(ProtocolModel):
    """The agent's ``GET /api/v1/status``: what it is doing and whether it reaches its server.

    Attributes:
        agent_id: Its id on the server (None before registration).
        mode: Push or pull.
        activity: Idle or busy.
        running_job_id: Job running now.
        contact: How its calls to the server are going.
        reported_at: The agent's clock when it answered (the server converts the agent's times to its own clock
            by their offset from this, so a skewed agent clock does not skew "since when").
    """

    agent_id: str | None = None
    mode: AgentMode = AgentMode.PUSH
    activity: AgentActivity = AgentActivity.IDLE
    running_job_id: str | None = None
    contact: ServerContact = Field(default_factory=ServerContact)
    reported_at: datetime = Field(default_factory=utcnow)


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
        heartbeat_interval_s: The interval the server expects heartbeats at (None: keep the agent's own).
    """

    status: str
    refresh_capabilities: bool = False
    heartbeat_interval_s: float | None = None


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
