"""One pass of the scheduler: the health steps, then dispatch (``python manage.py run_scheduler`` repeats it)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from agents.client import AgentClient
from scheduling.dispatch import ClientFactory, dispatch_pending
from scheduling.recovery import expire_leases, propagate_cancels, pull_results, recover_dispatches, sweep_agents


def scheduler_pass(now: datetime | None = None, client_factory: ClientFactory = AgentClient) -> int:
    """One full pass of the scheduler loop.

    Args:
        now: Current time (one clock for every step of the pass).
        client_factory: Builds the clients used to call agents.

    Returns:
        Number of jobs dispatched.
    """
    now = now or timezone.now()
    sweep_agents(now)
    expire_leases(now)
    recover_dispatches(now, client_factory)
    propagate_cancels(client_factory)
    pull_results(now, client_factory)
    return dispatch_pending(now, client_factory)
