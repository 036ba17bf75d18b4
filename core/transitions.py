"""Recording state changes: the functions every app calls to append to the transition log (one entry or many)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.models import StateTransition, TransitionEntity

#: Longest reason kept (the column's size).
MAX_REASON = 1000
#: Rows per INSERT when many entries are stored at once (a few MB of statement, far from Postgres' parameter limit).
BULK_BATCH_SIZE = 2000


def transition_entry(
    *,
    from_state: str,
    to_state: str,
    reason: str,
    experiment: Any = None,
    job: Any = None,
    attempt: Any = None,
    agent: Any = None,
) -> StateTransition:
    """Build one entry of the transition log without saving it (see :func:`log_transition` for the rules).

    Bulk writers (an experiment's expansion into thousands of jobs) build their entries with this and store them
    with :func:`log_transitions`, so every entry has the same content whichever way it was written.

    Args:
        from_state: Previous state (empty at creation).
        to_state: New state.
        reason: Why, in words (cut to :data:`MAX_REASON` characters).
        experiment: The experiment, for experiment, job and attempt transitions.
        job: The job, for job and attempt transitions.
        attempt: The attempt, for attempt transitions.
        agent: The agent, for agent transitions (default for jobs: the job's agent).

    Returns:
        The unsaved entry.
    """
    if attempt is not None:
        entity = TransitionEntity.ATTEMPT
    elif job is not None:
        entity = TransitionEntity.JOB
    elif experiment is not None:
        entity = TransitionEntity.EXPERIMENT
    else:
        entity = TransitionEntity.AGENT
    entry = StateTransition(
        entity=entity,
        experiment=experiment,
        job=job,
        attempt=attempt,
        agent=agent,
        from_state=from_state,
        to_state=to_state,
        reason=reason[:MAX_REASON],
    )
    if job is not None:
        # By id, not by object: reading ``job.experiment`` or ``job.agent`` would load each (a query per job when
        # they are not cached), and the entry only needs the keys.
        if experiment is None:
            entry.experiment_id = job.experiment_id
        if agent is None:
            entry.agent_id = job.agent_id
    return entry


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
    entry = transition_entry(from_state=from_state, to_state=to_state, reason=reason, experiment=experiment,
                             job=job, attempt=attempt, agent=agent)
    entry.save()
    return entry


def log_transitions(entries: Iterable[StateTransition], *, batch_size: int = BULK_BATCH_SIZE) -> int:
    """Append many entries built with :func:`transition_entry` to the log, a batch of rows per INSERT.

    Args:
        entries: The unsaved entries, in the order they happened (their ids and timestamps follow it).
        batch_size: Rows per INSERT statement.

    Returns:
        How many entries were stored.
    """
    stored = 0
    batch: list[StateTransition] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= batch_size:
            stored += len(StateTransition.objects.bulk_create(batch))
            batch = []
    if batch:
        stored += len(StateTransition.objects.bulk_create(batch))
    return stored
