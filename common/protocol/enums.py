"""Enumerations of the Agent Protocol: access modes, agent-side job states and stages, agent activity.

``AgentActivity`` is part of the status vocabulary of :mod:`common.statuses` (the server stores it) and is
like ``AgentMode`` re-exported here so that protocol users find every enumeration of a message in one place.
"""

from __future__ import annotations

from enum import StrEnum

from common.statuses import AgentActivity, AgentMode

__all__ = ["AGENT_TERMINAL_STATES", "AccessMode", "AgentActivity", "AgentJobState", "AgentMode", "JobStage"]


class AccessMode(StrEnum):
    """How much of the model/serving stack the agent controls (DESIGN section 5)."""

    WHITE_BOX = "white_box"
    GRAY_BOX = "gray_box"
    BLACK_BOX = "black_box"


class AgentJobState(StrEnum):
    """State of a job as the agent sees it."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    INTERRUPTED = "interrupted"

    @property
    def is_terminal(self) -> bool:
        """True when the job will not change state any more on the agent."""
        return self in AGENT_TERMINAL_STATES


AGENT_TERMINAL_STATES = frozenset(
    {
        AgentJobState.COMPLETED,
        AgentJobState.FAILED,
        AgentJobState.CANCELLED,
        AgentJobState.TIMED_OUT,
        AgentJobState.INTERRUPTED,
    }
)


class JobStage(StrEnum):
    """Coarse progress stage of a running job."""

    QUEUED = "queued"
    PREPARING = "preparing"
    LOADING_DATA = "loading_data"
    LOADING_MODEL = "loading_model"
    COLD_RUN = "cold_run"
    WARM_RUN = "warm_run"
    FINALIZING = "finalizing"
    DONE = "done"
