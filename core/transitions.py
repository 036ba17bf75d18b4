"""Recording state changes: the one function every app calls to append to the transition log."""

from __future__ import annotations

from typing import Any

from core.models import StateTransition, TransitionEntity

#: Longest reason kept (the column's size).
MAX_REASON = 1000


def log_transition(
    *,
    from_state: str,
    to_state: str,
    reason: str,
    experiment: Any = None,
    job: Any = None,
    attempt: Any = None,
    agent: Any = None,
) -> StateTransition:
    """Append one entry to the transition log.

    The entity is the most specific object given (attempt, then job, then experiment, then agent). A job's
    experiment and agent are filled in from the job when not given, so a job's log can be read per experiment
    and per agent too.

    Args:
        from_state: Previous state (empty at creation).
        to_state: New state.
        reason: Why, in words (cut to :data:`MAX_REASON` characters).
        experiment: The experiment, for experiment, job and attempt transitions.
        job: The job, for job and attempt transitions.
        attempt: The attempt, for attempt transitions.
        agent: The agent, for agent transitions (default for jobs: the job's agent).

    Returns:
        The stored entry.
    """
    if attempt is not None:
        entity = TransitionEntity.ATTEMPT
    elif job is not None:
        entity = TransitionEntity.JOB
    elif experiment is not None:
        entity = TransitionEntity.EXPERIMENT
    else:
        entity = TransitionEntity.AGENT
    if job is not None:
        experiment = experiment if experiment is not None else job.experiment
        agent = agent if agent is not None else job.agent
    return StateTransition.objects.create(
        entity=entity,
        experiment=experiment,
        job=job,
        attempt=attempt,
        agent=agent,
        from_state=from_state,
        to_state=to_state,
        reason=reason[:MAX_REASON],
    )
