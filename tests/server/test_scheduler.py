"""Unit tests of every scheduler step against the real database, driven by an injected clock.

Agents are replaced by :class:`FakeAgents`, passed as the scheduler's ``client_factory``: it records every call
and answers as a scripted agent would (accept, busy, unreachable, has the job or not, a finished result). The
multi-process behaviour with real agents is covered by ``tests/e2e``.
"""

from __future__ import annotations

import random
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from agents.client import AgentCallError
from agents.models import Agent
from agents.services import agent_mark_silent
from common.protocol import JobProgress
from common.statuses import AgentActivity, AgentStatus, AttemptStatus, ExperimentStatus, JobStatus
from core.models import StateTransition
from experiments.models import Experiment, Job, JobAttempt
from results.models import JobResult
from scheduling.callbacks import CallbackRejected, handle_progress, handle_result
from scheduling.dispatch import claim, dispatch_pending, send
from scheduling.loop import scheduler_pass
from scheduling.policy import job_retry_or_fail, retry_backoff_s
from scheduling.recovery import (
    expire_leases,
    lose_agent_attempts,
    propagate_cancels,
    pull_results,
    recover_dispatches,
    sweep_agents,
)
from tests.factories import AgentFactory, ExperimentFactory, JobFactory, job_result

pytestmark = pytest.mark.django_db


@dataclass
class FakeAgents:
    """Stands in for the agents' HTTP APIs; one instance serves every agent URL.

    Attributes:
        calls: ``(method, url, job_id)`` of every call, in order.
        submit_error: Raised by ``submit_job`` when set.
        jobs: What ``get_job`` answers per job id (missing: 404).
        get_error: Raised by ``get_job`` when set (overrides ``jobs``).
        cancel_error: Raised by ``cancel_job`` when set.
        alive: URLs of agents that answer the server's direct status check (others do not answer).
    """

    calls: list[tuple[str, str, str]] = field(default_factory=list)
    submit_error: Exception | None = None
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    get_error: Exception | None = None
    cancel_error: Exception | None = None
    alive: dict[str, Any] = field(default_factory=dict)

    def __call__(self, url: str, token: str) -> FakeAgents._Client:
        """The ``client_factory`` interface: a client bound to one agent URL."""
        return FakeAgents._Client(self, url)

    @dataclass
    class _Client:
        owner: FakeAgents
        url: str

        def submit_job(self, request: Any) -> dict[str, Any]:
            self.owner.calls.append(("submit", self.url, request.job_id))
            if self.owner.submit_error:
                raise self.owner.submit_error
            return {"accepted": True}

        def get_job(self, job_id: str) -> dict[str, Any]:
            self.owner.calls.append(("get", self.url, job_id))
            if self.owner.get_error:
                raise self.owner.get_error
            if job_id not in self.owner.jobs:
                raise AgentCallError("unknown job", status=404)
            return self.owner.jobs[job_id]

        def cancel_job(self, job_id: str) -> dict[str, Any]:
            self.owner.calls.append(("cancel", self.url, job_id))
            if self.owner.cancel_error:
                raise self.owner.cancel_error
            return {}

        def ack_job(self, job_id: str) -> None:
            self.owner.calls.append(("ack", self.url, job_id))

        def status(self, timeout: float | None = None) -> Any:
            self.owner.calls.append(("status", self.url, ""))
            if self.url not in self.owner.alive:
                raise AgentCallError("agent did not answer: ConnectTimeout")
            return self.owner.alive[self.url]


@pytest.fixture
def agents() -> FakeAgents:
    """A fresh scripted fleet."""
    return FakeAgents()


@pytest.fixture
def clock() -> datetime:
    """The scheduler's 'now' for a test (later steps add to it)."""
    return timezone.now()


def _job(**kwargs: Any) -> Job:
    agent = kwargs.pop("agent", None) or AgentFactory()
    agent.last_seen = timezone.now()
    agent.save()
    return JobFactory(agent=agent, max_attempts=kwargs.pop("max_attempts", 3), **kwargs)


def _running(job: Job, now: datetime, *, lease_s: float = 3600) -> JobAttempt:
    """Put a job on its agent as attempt ``job.attempt + 1``, running."""
    attempt = JobAttempt.objects.create(
        job=job, number=job.attempt + 1, agent=job.agent, attempt_token=secrets.token_urlsafe(16),
        status=AttemptStatus.DISPATCHING, lease_deadline=now + timedelta(seconds=lease_s),
    )
    job.assign(attempt, now)
    attempt.start(now)
    job.start("test", now)
    Agent.objects.filter(pk=job.agent_id).update(activity=AgentActivity.BUSY)
    return attempt


def _reload(*objs: Any) -> None:
    for obj in objs:
        obj.refresh_from_db()


# ----------------------------------------------------------------------------------------------------------
# Policy
# ----------------------------------------------------------------------------------------------------------


def test_backoff_doubles_per_attempt_with_jitter_and_a_cap(settings):
    settings.RUCKUS_RETRY_BACKOFF_BASE_S = 5.0
    settings.RUCKUS_RETRY_BACKOFF_MAX_S = 30.0
    rng = random.Random(7)
    first, second, tenth = (retry_backoff_s(n, rng) for n in (1, 2, 10))
    assert 2.5 <= first <= 5.0
    assert 5.0 <= second <= 10.0
    assert 15.0 <= tenth <= 30.0  # capped before jitter


def test_retry_or_fail_sets_backoff_then_gives_up(clock):
    job = _job(max_attempts=2)
    _running(job, clock)
    job_retry_or_fail(job, "boom", now=clock)
    _reload(job)
    assert job.status == JobStatus.PENDING and job.not_before > clock and "retry 2/2" in job.status_reason
    _running(job, clock)
    job_retry_or_fail(job, "boom again", now=clock)
    _reload(job)
    assert job.status == JobStatus.FAILED and "gave up after 2 attempt(s)" in job.status_reason


def test_retry_without_penalty_does_not_use_up_an_attempt(clock):
    job = _job(max_attempts=1)
    _running(job, clock)
    job_retry_or_fail(job, "agent was busy", penalty=False, now=clock)
    _reload(job)
    assert job.status == JobStatus.PENDING and job.max_attempts == 2
    assert job.not_before == clock + timedelta(seconds=1)


def test_retry_or_fail_leaves_a_finished_job_alone(clock):
    job = _job()
    _running(job, clock)
    job.transition(JobStatus.COMPLETED, reason="done", now=clock)
    job_retry_or_fail(job, "late failure", now=clock)
    _reload(job)
    assert job.status == JobStatus.COMPLETED


# ----------------------------------------------------------------------------------------------------------
# Dispatch
# ----------------------------------------------------------------------------------------------------------


def test_dispatch_sends_a_due_job_to_its_idle_agent(agents, clock):
    job = _job()
    assert dispatch_pending(clock, agents) == 1
    _reload(job)
    attempt = job.attempts.get()
    assert agents.calls == [("submit", job.agent.url, str(job.pk))]
    assert (job.status, job.attempt, attempt.status) == (JobStatus.RUNNING, 1, AttemptStatus.RUNNING)
    assert attempt.lease_deadline == clock + timedelta(seconds=settings.RUCKUS_JOB_LEASE_S)
    assert Agent.objects.get(pk=job.agent_id).activity == AgentActivity.BUSY
    assert job.experiment.transitions.filter(to_state=ExperimentStatus.RUNNING).exists()


def test_dispatch_waits_for_backoff_and_for_a_free_agent(agents, clock):
    later = _job(not_before=clock + timedelta(seconds=60))
    assert dispatch_pending(clock, agents) == 0  # not due yet
    assert dispatch_pending(clock + timedelta(seconds=61), agents) == 1
    second = JobFactory(agent=later.agent, experiment=later.experiment)
    assert dispatch_pending(clock + timedelta(seconds=62), agents) == 0  # its agent is busy
    _reload(second)
    assert second.status == JobStatus.PENDING and not second.attempts.exists()


def test_a_retry_may_run_on_another_agent_with_the_same_hardware(agents, clock):
    job = _job()
    twin = AgentFactory(last_seen=clock)
    Agent.objects.filter(pk=twin.pk).update(hardware_fingerprint=job.hardware_fingerprint)
    Agent.objects.filter(pk=job.agent_id).update(status=AgentStatus.OFFLINE)
    dispatch_pending(clock, agents)
    _reload(job)
    assert job.agent_id == twin.pk and job.status == JobStatus.RUNNING


def test_a_job_whose_hardware_is_gone_fails_with_the_reason(agents, clock):
    job = _job()
    Agent.objects.filter(pk=job.agent_id).update(status=AgentStatus.DEACTIVATED)
    assert dispatch_pending(clock, agents) == 0
    _reload(job)
    assert job.status == JobStatus.FAILED and "no agent with hardware fingerprint" in job.status_reason


def test_a_busy_agent_sends_the_job_back_without_penalty(agents, clock):
    job = _job(max_attempts=1)
    agents.submit_error = AgentCallError("busy", status=409)
    dispatch_pending(clock, agents)
    _reload(job)
    assert job.status == JobStatus.PENDING and job.max_attempts == 2
    assert job.attempts.get().status == AttemptStatus.FAILED
    assert Agent.objects.get(pk=job.agent_id).activity == AgentActivity.IDLE


def test_a_failed_dispatch_counts_as_an_attempt(agents, clock):
    job = _job(max_attempts=1)
    agents.submit_error = AgentCallError("connection refused")
    dispatch_pending(clock, agents)
    _reload(job)
    assert job.status == JobStatus.FAILED and "dispatch failed: connection refused" in job.status_reason


def test_claim_is_exclusive(clock):
    job = _job()
    first = claim(job.pk, clock)
    assert first is not None and first.request.attempt == 1 and first.request.attempt_token
    assert claim(job.pk, clock) is None  # no longer pending


def test_send_after_the_attempt_ended_changes_nothing(agents, clock):
    job = _job()
    dispatch = claim(job.pk, clock)
    job.refresh_from_db()
    job.cancel("user changed their mind", clock)
    agents.submit_error = AgentCallError("gone", status=500)
    assert send(dispatch, agents, clock) is False
    _reload(job)
    assert job.status == JobStatus.CANCELLED


# ----------------------------------------------------------------------------------------------------------
# Callbacks
# ----------------------------------------------------------------------------------------------------------


def test_progress_and_result_of_the_current_attempt(clock):
    job = _job()
    attempt = _running(job, clock)
    message = job_result(job.pk, token=attempt.attempt_token)
    handle_progress(job.pk, job.agent, _progress(attempt), clock)
    assert handle_result(job.pk, job.agent, message, clock) == {"stored": True, "status": JobStatus.COMPLETED}
    assert handle_result(job.pk, job.agent, message, clock) == {"stored": False, "status": JobStatus.COMPLETED}
    assert JobResult.objects.filter(job=job).count() == 1
    _reload(attempt)
    assert attempt.status == AttemptStatus.COMPLETED and attempt.progress["stage"] == "warm_run"
    assert Agent.objects.get(pk=job.agent_id).activity == AgentActivity.IDLE


def test_a_stale_attempt_gets_409_and_changes_nothing(clock):
    job = _job()
    old = _running(job, clock)
    job_retry_or_fail(job, "lost", now=clock)
    old.lose("lost", clock)
    job.refresh_from_db()
    Job.objects.filter(pk=job.pk).update(not_before=None)
    _running(job, clock)
    with pytest.raises(CallbackRejected) as err:
        handle_result(job.pk, job.agent, job_result(job.pk, token=old.attempt_token), clock)
    assert err.value.status == 409
    assert not JobResult.objects.filter(job=job).exists()


def test_another_agent_cannot_report_for_a_job(clock):
    job = _job()
    attempt = _running(job, clock)
    with pytest.raises(CallbackRejected) as err:
        handle_result(job.pk, AgentFactory(), job_result(job.pk, token=attempt.attempt_token), clock)
    assert err.value.status == 403


def _progress(attempt: JobAttempt) -> JobProgress:
    return JobProgress(job_id=str(attempt.job_id), attempt=attempt.number, attempt_token=attempt.attempt_token,
                       status="running", stage="warm_run", run_index=2, runs_total=3)


# ----------------------------------------------------------------------------------------------------------
# Recovery
# ----------------------------------------------------------------------------------------------------------


def test_expired_lease_times_out_the_attempt_and_retries(clock):
    job = _job()
    attempt = _running(job, clock, lease_s=10)
    expire_leases(clock + timedelta(seconds=5))
    _reload(attempt)
    assert attempt.status == AttemptStatus.RUNNING
    expire_leases(clock + timedelta(seconds=11))
    _reload(job, attempt)
    assert attempt.status == AttemptStatus.TIMED_OUT and job.status == JobStatus.PENDING


def test_expired_lease_on_the_last_attempt_ends_timed_out(clock):
    job = _job(max_attempts=1)
    _running(job, clock, lease_s=10)
    expire_leases(clock + timedelta(seconds=11))
    _reload(job)
    assert job.status == JobStatus.TIMED_OUT


def test_recover_dispatch_when_the_agent_has_the_job(agents, clock):
    job = _job()
    claim(job.pk, clock)
    agents.jobs[str(job.pk)] = {"attempt": 1, "state": "running"}
    stale = clock + timedelta(seconds=settings.RUCKUS_DISPATCH_STALE_S + 1)
    recover_dispatches(clock, agents)
    assert agents.calls == []  # not stale yet
    recover_dispatches(stale, agents)
    _reload(job)
    assert job.status == JobStatus.RUNNING and job.attempts.get().status == AttemptStatus.RUNNING


def test_recover_dispatch_when_the_agent_never_got_it(agents, clock):
    job = _job(max_attempts=1)
    claim(job.pk, clock)
    recover_dispatches(clock + timedelta(seconds=settings.RUCKUS_DISPATCH_STALE_S + 1), agents)
    _reload(job)
    assert job.status == JobStatus.PENDING and job.max_attempts == 2  # no attempt used up
    assert job.attempts.get().status == AttemptStatus.FAILED


def test_recover_dispatch_leaves_an_unanswering_agent_for_later(agents, clock):
    job = _job()
    claim(job.pk, clock)
    agents.get_error = AgentCallError("timed out")
    recover_dispatches(clock + timedelta(seconds=settings.RUCKUS_DISPATCH_STALE_S + 1), agents)
    assert job.attempts.get().status == AttemptStatus.DISPATCHING


def test_pull_applies_a_finished_result_and_acknowledges_it(agents, clock):
    job = _job()
    attempt = _running(job, clock)
    result = job_result(job.pk).model_dump(mode="json", exclude={"attempt_token"})
    agents.jobs[str(job.pk)] = {"attempt": 1, "result": result}
    pull_results(clock + timedelta(seconds=settings.RUCKUS_PULL_AFTER_S + 1), agents)
    _reload(job, attempt)
    assert job.status == JobStatus.COMPLETED and attempt.status == AttemptStatus.COMPLETED
    assert JobResult.objects.get(job=job).attempt_id == attempt.pk
    assert ("ack", job.agent.url, str(job.pk)) in agents.calls


def test_pull_of_a_job_the_agent_forgot_loses_the_attempt(agents, clock):
    job = _job()
    attempt = _running(job, clock)
    pull_results(clock + timedelta(seconds=settings.RUCKUS_PULL_AFTER_S + 1), agents)
    _reload(job, attempt)
    assert attempt.status == AttemptStatus.LOST and job.status == JobStatus.PENDING


def test_pull_of_a_job_still_running_looks_again_later(agents, clock):
    job = _job()
    attempt = _running(job, clock)
    agents.jobs[str(job.pk)] = {"attempt": 1, "state": "running"}
    later = clock + timedelta(seconds=settings.RUCKUS_PULL_AFTER_S + 1)
    pull_results(later, agents)
    _reload(attempt)
    assert attempt.status == AttemptStatus.RUNNING and attempt.updated_at == later
    calls = len(agents.calls)
    pull_results(later + timedelta(seconds=1), agents)  # quiet for 1 s only: not asked again
    assert len(agents.calls) == calls


def test_cancel_reaches_the_agent_once(agents, clock):
    job = _job()
    _running(job, clock)
    job.cancel("stop", clock)
    propagate_cancels(agents)
    propagate_cancels(agents)
    assert [c[0] for c in agents.calls] == ["cancel"]
    _reload(job)
    assert job.cancel_requested is False
    assert Agent.objects.get(pk=job.agent_id).activity == AgentActivity.IDLE


def test_cancel_is_retried_while_the_agent_cannot_be_reached(agents, clock):
    job = _job()
    _running(job, clock)
    job.cancel("stop", clock)
    agents.cancel_error = AgentCallError("connection refused")
    propagate_cancels(agents)
    _reload(job)
    assert job.cancel_requested is True
    agents.cancel_error = AgentCallError("already finished", status=409)
    propagate_cancels(agents)
    _reload(job)
    assert job.cancel_requested is False


def test_sweep_marks_silent_agents_then_loses_their_attempts(agents, clock):
    job = _job()
    attempt = _running(job, clock)
    interval = settings.RUCKUS_HEARTBEAT_INTERVAL_S
    Agent.objects.filter(pk=job.agent_id).update(last_seen=clock)
    sweep_agents(clock + timedelta(seconds=3 * interval - 1), client_factory=agents)
    assert Agent.objects.get(pk=job.agent_id).status == AgentStatus.ONLINE
    sweep_agents(clock + timedelta(seconds=3 * interval + 1), client_factory=agents)
    assert Agent.objects.get(pk=job.agent_id).status == AgentStatus.UNREACHABLE
    _reload(attempt)
    assert attempt.status == AttemptStatus.RUNNING  # unreachable is not lost yet
    sweep_agents(clock + timedelta(seconds=settings.RUCKUS_AGENT_LOST_AFTER_S + 1), client_factory=agents)
    _reload(job, attempt)
    assert Agent.objects.get(pk=job.agent_id).status == AgentStatus.OFFLINE
    assert attempt.status == AttemptStatus.LOST and job.status == JobStatus.PENDING
    reasons = list(StateTransition.objects.filter(agent_id=job.agent_id, entity="agent").values_list("to_state",
                                                                                                      flat=True))
    assert reasons[-2:] == [AgentStatus.UNREACHABLE, AgentStatus.OFFLINE]


def test_a_heartbeat_during_the_sweep_wins(clock):
    """The sweep read the agent as silent, then a heartbeat arrived before its write: the agent stays online."""
    agent = AgentFactory(last_seen=clock - timedelta(seconds=600))
    seen_before = clock - timedelta(seconds=30)
    Agent.objects.filter(pk=agent.pk).update(last_seen=clock)  # the heartbeat
    assert agent_mark_silent(agent.pk, AgentStatus.OFFLINE, seen_before=seen_before, reason="silent") is False
    agent.refresh_from_db()
    assert agent.status == AgentStatus.ONLINE
    assert not StateTransition.objects.filter(agent=agent, to_state=AgentStatus.OFFLINE).exists()


def test_lose_agent_attempts_frees_the_agent(clock):
    job = _job()
    _running(job, clock)
    assert lose_agent_attempts(job.agent_id, "operator removed it", clock) == 1
    _reload(job)
    assert job.status == JobStatus.PENDING and "lost: operator removed it" in job.status_reason
    assert Agent.objects.get(pk=job.agent_id).activity == AgentActivity.IDLE


def test_one_pass_runs_every_step_with_one_clock(agents, clock):
    done = _job()
    attempt = _running(done, clock)
    pending = _job()
    result = job_result(done.pk).model_dump(mode="json", exclude={"attempt_token"})
    agents.jobs[str(done.pk)] = {"attempt": attempt.number, "result": result}
    later = clock + timedelta(seconds=settings.RUCKUS_PULL_AFTER_S + 1)
    Agent.objects.update(last_seen=later)  # both agents kept heartbeating
    assert scheduler_pass(later, agents) == 1
    _reload(done, pending)
    assert done.status == JobStatus.COMPLETED and pending.status == JobStatus.RUNNING


def test_experiment_status_follows_its_jobs(agents, clock):
    experiment = ExperimentFactory()
    jobs = [_job(experiment=experiment) for _ in range(2)]
    dispatch_pending(clock, agents)
    assert Experiment.objects.get(pk=experiment.pk).status == ExperimentStatus.RUNNING
    for job in jobs:
        attempt = job.attempts.get()
        handle_result(job.pk, job.agent, job_result(job.pk, token=attempt.attempt_token), clock)
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.COMPLETED and experiment.finished_at == clock


@pytest.mark.django_db(transaction=True)
def test_two_jobs_finishing_at_once_complete_their_experiment(clock, monkeypatch):
    """Both results are past their job's update when the experiment's status is derived, in two transactions.

    Without the experiment row lock, each counts the other job unfinished and the experiment stays ``running``
    with every job completed (checked: this test fails then). Both must succeed and the experiment complete.
    """
    experiment = ExperimentFactory()
    jobs = [_job(experiment=experiment) for _ in range(2)]
    attempts = [_running(job, clock) for job in jobs]
    barrier = threading.Barrier(2, timeout=20)
    derive = Experiment.refresh_status

    def derive_together(self: Experiment, now: datetime | None = None, **kwargs: Any) -> Experiment:
        if threading.current_thread().name.startswith("finisher"):
            barrier.wait()  # both transactions have written their job and its transition
        return derive(self, now, **kwargs)

    monkeypatch.setattr(Experiment, "refresh_status", derive_together)
    errors: list[BaseException] = []

    def finish(job: Job, attempt: JobAttempt) -> None:
        try:
            handle_result(job.pk, job.agent, job_result(job.pk, token=attempt.attempt_token), clock)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=pair, name=f"finisher-{i}")
               for i, pair in enumerate(zip(jobs, attempts, strict=True))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.COMPLETED
