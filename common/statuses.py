"""The status vocabulary of RUCKUS: every state of experiments, jobs, attempts and agents, defined once.

The server's models, its API schema (and through it the web UI's generated types), the scheduler and the CLI
all use these enumerations and terminal sets; nothing else writes the state names out (DESIGN section 4).
"""

from __future__ import annotations

from enum import StrEnum


class _Status(StrEnum):
    """A status whose members compare equal to their string value (``JobStatus.PENDING == "pending"``)."""

    @property
    def label(self) -> str:
        """Human label (``timed_out`` -> ``Timed out``)."""
        return self.value.replace("_", " ").capitalize()

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        """``(value, label)`` pairs for Django model fields and serializers."""
        return [(member.value, member.label) for member in cls]


class ExperimentStatus(_Status):
    """Experiment status, derived from its jobs."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    CANCELLED = "cancelled"


EXPERIMENT_TERMINAL_STATUSES: frozenset[str] = frozenset(
    {
        ExperimentStatus.COMPLETED,
        ExperimentStatus.PARTIALLY_FAILED,
        ExperimentStatus.FAILED,
        ExperimentStatus.CANCELLED,
    }
)


class JobStatus(_Status):
    """Job states: pending -> assigned -> running -> completed | failed | cancelled | timed_out."""

    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


JOB_TERMINAL_STATUSES: frozenset[str] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT}
)
#: A job is on an agent in these states.
JOB_ACTIVE_STATUSES: frozenset[str] = frozenset({JobStatus.ASSIGNED, JobStatus.RUNNING})

#: Allowed job transitions. A retryable failure returns an active job to ``pending`` (attempt + 1);
#: an operator may retry a finished job that did not complete.
JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    JobStatus.PENDING: frozenset({JobStatus.ASSIGNED, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.ASSIGNED: frozenset(
        {JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.PENDING, JobStatus.FAILED, JobStatus.CANCELLED,
         JobStatus.TIMED_OUT}
    ),
    JobStatus.RUNNING: frozenset(
        {JobStatus.COMPLETED, JobStatus.PENDING, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT}
    ),
    JobStatus.FAILED: frozenset({JobStatus.PENDING}),
    JobStatus.CANCELLED: frozenset({JobStatus.PENDING}),
    JobStatus.TIMED_OUT: frozenset({JobStatus.PENDING}),
    JobStatus.COMPLETED: frozenset(),
}


class AttemptStatus(_Status):
    """Outcome of one dispatch of a job to an agent."""

    DISPATCHING = "dispatching"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    LOST = "lost"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"


ATTEMPT_TERMINAL_STATUSES: frozenset[str] = frozenset(
    {
        AttemptStatus.COMPLETED,
        AttemptStatus.FAILED,
        AttemptStatus.LOST,
        AttemptStatus.CANCELLED,
        AttemptStatus.TIMED_OUT,
        AttemptStatus.INTERRUPTED,
    }
)
#: An attempt in these states occupies its agent.
ATTEMPT_ACTIVE_STATUSES: frozenset[str] = frozenset({AttemptStatus.DISPATCHING, AttemptStatus.RUNNING})


class AgentStatus(_Status):
    """Agent health states: online -> unreachable -> offline; deactivated by an operator."""

    ONLINE = "online"
    UNREACHABLE = "unreachable"
    OFFLINE = "offline"
    DEACTIVATED = "deactivated"


#: Statuses in which the scheduler may place work on an agent.
SCHEDULABLE_AGENT_STATUSES: frozenset[str] = frozenset({AgentStatus.ONLINE})


class AgentActivity(_Status):
    """What an online agent is doing (sent in heartbeats, stored on the server)."""

    IDLE = "idle"
    BUSY = "busy"


class AgentMode(_Status):
    """How an agent gets its work.

    ``push``: the server calls the agent's API (the agent listens on an address the server reaches).
    ``pull``: the agent opens no port to the network; it asks the server for work with a long poll
    (agents behind NAT or a firewall).
    """

    PUSH = "push"
    PULL = "pull"


class ScoringStatus(_Status):
    """Where a stored job result is in server-side post-processing (ROUGE, run means, statistics).

    The result callback stores the runs and answers at once (``scoring``); a scoring worker then adds the figures
    (``scored``), or records why it could not (``failed``, with the reason on the result). Statistics and ROUGE are
    absent until then.
    """

    SCORING = "scoring"
    SCORED = "scored"
    FAILED = "failed"
