"""Row locks of the scheduler, taken in one order everywhere: a job before its attempts, before its agent."""

from __future__ import annotations

import re

from experiments.models import Job, JobAttempt

#: A job id as agents send it back (ASCII digits, within the database's bigint).
_JOB_ID = re.compile(r"[0-9]{1,18}")


def job_pk(text: str | None) -> int | None:
    """The job id an agent's message names, or None when it is not one (hostile or garbled input).

    Args:
        text: The id as sent (a string in the agent protocol).

    Returns:
        The integer id, or None.
    """
    return int(text) if text and _JOB_ID.fullmatch(text) else None


def lock_attempt(attempt_id: int) -> tuple[JobAttempt, Job]:
    """An attempt and its job, both locked and freshly read (job first: the order every path uses).

    Args:
        attempt_id: The attempt.

    Returns:
        ``(attempt, job)``, with ``attempt.job`` the locked job.
    """
    job_id = JobAttempt.objects.values_list("job_id", flat=True).get(pk=attempt_id)
    job = Job.objects.select_for_update(of=("self",)).with_experiment().get(pk=job_id)
    attempt = JobAttempt.objects.select_for_update().get(pk=attempt_id)
    attempt.job = job
    return attempt, job
