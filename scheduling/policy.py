"""Retry policy: what happens to a job after an attempt ended badly.

Exponential backoff with jitter while attempts remain (DESIGN section 3, flow 6), then a terminal status.
An attempt that never ran (the agent was busy, a dispatch was interrupted) does not use up the budget.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from common.statuses import JobStatus
from experiments.models import Job

#: Delay before dispatching again a job whose attempt never ran.
REDISPATCH_DELAY_S = 1.0


def retry_backoff_s(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter before attempt ``attempt + 1``.

    Args:
        attempt: The attempt number that just failed (1-based).
        rng: Source of the jitter (tests pass a seeded one).

    Returns:
        Seconds to wait: ``base * 2**(attempt-1)`` capped, then scaled by a random factor in [0.5, 1]
        so that many jobs failing together do not come back together.
    """
    base = settings.RUCKUS_RETRY_BACKOFF_BASE_S * 2 ** max(attempt - 1, 0)
    return min(base, settings.RUCKUS_RETRY_BACKOFF_MAX_S) * (rng or random).uniform(0.5, 1.0)


def job_retry_or_fail(
    job: Job,
    reason: str,
    *,
    terminal_status: str = JobStatus.FAILED,
    penalty: bool = True,
    now: datetime | None = None,
) -> Job:
    """After an attempt ended badly: back to ``pending`` with backoff while attempts remain, else terminal.

    Args:
        job: The job (locked by the caller).
        reason: Why the attempt ended.
        terminal_status: Status when no attempt remains (``failed`` or ``timed_out``).
        penalty: False when the attempt never ran (agent busy, dispatch interrupted): it does not count.
        now: Current time.

    Returns:
        The job.
    """
    if job.is_terminal:
        return job
    now = now or timezone.now()
    if not penalty:
        return job.transition(
            JobStatus.PENDING, reason=f"{reason}; dispatching again", now=now, max_attempts=job.max_attempts + 1,
            not_before=now + timedelta(seconds=REDISPATCH_DELAY_S),
        )
    if job.attempt < job.max_attempts:
        delay = retry_backoff_s(job.attempt)
        return job.transition(
            JobStatus.PENDING,
            reason=f"{reason}; retry {job.attempt + 1}/{job.max_attempts} in {delay:.0f} s",
            now=now,
            not_before=now + timedelta(seconds=delay),
        )
    return job.transition(terminal_status, reason=f"{reason}; gave up after {job.attempt} attempt(s)", now=now)
