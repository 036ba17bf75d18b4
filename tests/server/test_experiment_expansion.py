"""Expanding an experiment into its jobs in bulk: the same jobs and log as one row at a time, in a few queries.

A fleet-scale experiment (1,000 agents x 15 combinations) makes 15,000 jobs: they and their log entries are
written a batch per INSERT, so the number of queries does not grow with the jobs, and no event is sent per job.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common.catalog import task_params
from core import events
from core.models import StateTransition, TransitionEntity
from core.transitions import log_transition, log_transitions, transition_entry
from experiments import services
from experiments.models import Experiment, ExperimentStatus, Job, JobStatus
from tests.factories import AgentFactory, agent_info

pytestmark = pytest.mark.django_db

#: Black-box runtime: any model name runs on any agent that offers it (no local copy needed).
OPENAI = {"name": "openai", "params": {"base_url": "http://llm.internal:8000/v1"}}


def _create(models: list[str], **kwargs) -> Experiment:
    return services.experiment_create(
        name="bulk", task_name="wikipedia_summarization",
        task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": m} for m in models], runtimes=[{"name": "transformers", "params": {}}, OPENAI],
        agents={"all": True}, runs_per_job=2, **kwargs,
    )


def test_jobs_and_their_log_entries_are_written_in_batches(monkeypatch, settings):
    monkeypatch.setattr(services, "JOB_BATCH_SIZE", 4)  # 3 agents x 3 jobs: three batches, the last one short
    settings.RUCKUS_MAX_ATTEMPTS = 5
    agents = [AgentFactory(name=f"host-{i}") for i in range(3)]
    offline = AgentFactory(name="gone", status="offline")
    experiment = _create(["smollm2-135m-instruct", "Qwen/Qwen2.5-0.5B-Instruct"])
    jobs = list(experiment.jobs.order_by("id"))
    # smollm2 on both runtimes, the Qwen model only black-box (no agent has it locally): 3 jobs per agent.
    assert len(jobs) == 9 == experiment.plan["job_count"]
    planned = [(j["model"]["name"], j["runtime"]["name"], j["agent_id"]) for j in experiment.plan["jobs"]]
    assert [(j.model_name, j.runtime_name, str(j.agent_id)) for j in jobs] == planned
    for job in jobs:
        agent = next(a for a in agents if a.pk == job.agent_id)
        assert job.status == JobStatus.PENDING and job.attempt == 0 and job.max_attempts == 5
        assert job.model_spec == {"name": job.model_name}
        assert job.runtime_spec == (OPENAI if job.runtime_name == "openai" else {"name": "transformers", "params": {}})
        assert job.hardware_fingerprint == agent.hardware_fingerprint
        entries = list(StateTransition.objects.filter(job=job).values(
            "entity", "experiment_id", "agent_id", "attempt_id", "from_state", "to_state", "reason"))
        assert entries == [{
            "entity": TransitionEntity.JOB, "experiment_id": experiment.pk, "agent_id": agent.pk, "attempt_id": None,
            "from_state": "", "to_state": JobStatus.PENDING, "reason": "created by expansion",
        }]
    # The log reads in creation order: every job's entry, then the experiment's.
    log = list(StateTransition.objects.filter(experiment=experiment).order_by("created_at", "id"))
    assert [e.job_id for e in log] == [*(j.pk for j in jobs), None]
    assert (log[-1].entity, log[-1].to_state, log[-1].reason) == (
        TransitionEntity.EXPERIMENT, ExperimentStatus.PENDING, "created; 1 combination(s) cannot run")
    assert experiment.status == ExperimentStatus.PENDING
    assert {e["agent_id"] for e in experiment.plan["excluded"]} >= {str(offline.pk)}


def test_queries_do_not_grow_with_the_jobs():
    counts = []
    for agents in (2, 12):
        for i in range(len(counts) * 2, agents):
            AgentFactory(name=f"host-{i:02d}")
        with CaptureQueriesContext(connection) as ctx:
            experiment = _create(["smollm2-135m-instruct"])
        assert experiment.jobs.count() == 2 * agents
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def test_no_event_per_job(django_capture_on_commit_callbacks, monkeypatch):
    sent: list[tuple[str, object]] = []
    monkeypatch.setattr(events, "send_now", lambda event, object_id: sent.append((event, object_id)))
    for i in range(5):
        AgentFactory(name=f"host-{i}")
    with django_capture_on_commit_callbacks(execute=True):
        experiment = _create(["smollm2-135m-instruct"])
    assert experiment.jobs.count() == 10
    assert not [e for e in sent if e[0] == events.JOB_UPDATED]
    assert len(sent) <= 1


def test_an_experiment_nobody_can_run_still_fails_with_the_reason():
    AgentFactory(name="small", info=agent_info(runtimes=("transformers",), models=()))
    experiment = services.experiment_create(
        name="none", task_name="wikipedia_summarization",
        task_params=task_params("wikipedia_summarization", {"num_samples": 2}),
        models=[{"name": "smollm2-135m-instruct"}], runtimes=[{"name": "transformers", "params": {}}],
        agents={"all": True}, runs_per_job=2,
    )
    assert experiment.status == ExperimentStatus.FAILED and not Job.objects.filter(experiment=experiment).exists()
    reasons = list(experiment.transitions.order_by("created_at", "id").values_list("to_state", "reason"))
    assert reasons[0] == (ExperimentStatus.PENDING, "created; 1 combination(s) cannot run")
    assert reasons[1][0] == ExperimentStatus.FAILED and "not available locally" in reasons[1][1]


def test_a_bulk_entry_is_the_entry_log_transition_stores():
    agent = AgentFactory()
    experiment = Experiment.objects.create(name="e", task_name="wikipedia_summarization")
    job = Job.objects.create(experiment=experiment, agent=agent, model_name="m", runtime_name="transformers")
    fields = ("entity", "experiment_id", "job_id", "attempt_id", "agent_id", "from_state", "to_state", "reason")
    one = log_transition(job=job, from_state="", to_state="pending", reason="x" * 2000)
    assert log_transitions([transition_entry(job=job, from_state="", to_state="pending", reason="x" * 2000)]) == 1
    two = StateTransition.objects.exclude(pk=one.pk).get(job=job)
    assert [getattr(one, f) for f in fields] == [getattr(two, f) for f in fields]
    assert len(two.reason) == 1000 and two.agent_id == agent.pk and two.experiment_id == experiment.pk
