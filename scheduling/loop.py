"""One pass of the scheduler: the health steps, then dispatch (``python manage.py run_scheduler`` repeats it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from agents.client import AgentClient
from scheduling.dispatch import ClientFactory, dispatch_pending
from scheduling.recovery import (
    SweepOutcome,
    expire_leases,
    propagate_cancels,
    pull_results,
    recover_dispatches,
    sweep_agents,
)


@dataclass
class Observation:
    """Since when a scheduler process has watched its fleet without a break.

    Silence of agents is only counted while the server could have heard them: from the scheduler's start,
    from the end of a pass that failed (its database was down, so heartbeats were not recorded either), and
    from the moment heartbeats arrive again after the whole fleet fell silent (the server's HTTP side was down).

    Attributes:
        since: Start of the current stretch; None while the scheduler is not observing (the next pass starts one).
    """

    since: datetime | None = None

    def begin(self, now: datetime) -> datetime:
        """Start a stretch at ``now`` unless one is running; return its start."""
        if self.since is None:
            self.since = now
        return self.since

    def interrupt(self) -> None:
        """The scheduler could not observe (a failed pass, a silent fleet): the next pass starts a new stretch."""
        self.since = None


def scheduler_pass(
    now: datetime | None = None,
    client_factory: ClientFactory = AgentClient,
    observation: Observation | None = None,
) -> int:
    """One full pass of the scheduler loop.

    Args:
        now: Current time (one clock for every step of the pass).
        client_factory: Builds the clients used to call agents.
        observation: The calling process's observation record (None: judge silence without any grace, as a
            single pass run by hand does).

    Returns:
        Number of jobs dispatched.
    """
    now = now or timezone.now()
    since = observation.begin(now) if observation is not None else None
    outcome = sweep_agents(now, observing_since=since, client_factory=client_factory)
    if outcome is SweepOutcome.FLEET_SILENT and observation is not None:
        observation.interrupt()
    expire_leases(now)
    recover_dispatches(now, client_factory)
    propagate_cancels(client_factory)
    pull_results(now, client_factory)
    return dispatch_pending(now, client_factory)
