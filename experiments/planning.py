"""Planning: which (model, runtime, agent) jobs an experiment makes, and why the other combinations cannot run.

One :class:`Plan` shape serves the dry run (``POST /api/v1/experiments/plan/``) and is what an experiment
stores in its ``plan`` column when it is created.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agents.matching import unmet_requirement
from agents.models import Agent
from common.protocol import LoadSpec, ModelSpec, RuntimeSpec
from common.statuses import AgentStatus
from core.api_schemas import ResponseShape
from experiments.models import Experiment

#: Agent statuses that capability matching refuses without reading the agent's capabilities.
_REFUSED_UNSEEN = frozenset({AgentStatus.DEACTIVATED, AgentStatus.OFFLINE})


class AgentRefusal(ResponseShape):
    """A selected agent that cannot run a combination, and why."""

    agent_id: str
    agent_name: str
    reason: str


class Unrunnable(ResponseShape):
    """A (model, runtime) combination no selected agent can run.

    Attributes:
        model: Model name.
        runtime: Runtime name.
        reason: Summary of the refusals.
        agents: Each selected agent's refusal.
    """

    model: str
    runtime: str
    reason: str
    agents: list[AgentRefusal]


class Excluded(ResponseShape):
    """A selected agent left out of one combination (also where another agent runs it)."""

    model: str
    runtime: str
    agent_id: str
    agent_name: str
    reason: str


class PlannedJob(ResponseShape):
    """A job the plan makes: a model and a runtime on one agent.

    Attributes:
        model: The model spec, as given.
        runtime: The runtime spec, as given.
        agent_id: The agent's id (absent once the agent was removed).
        agent_name: The agent's name (absent once the agent was removed).
        hardware_fingerprint: The agent's hardware fingerprint.
        job: The job's id, once the experiment has made it (absent in a dry run).
    """

    model: ModelSpec
    runtime: RuntimeSpec
    # Optional: the plan is shown without its null fields (as_json), and a removed agent leaves both null.
    agent_id: str | None = None
    agent_name: str | None = None
    hardware_fingerprint: str
    job: int | None = None


class LoadPlan(ResponseShape):
    """What each job of a load experiment sends: one sweep of load points (``runs_per_job`` does not apply).

    Attributes:
        mode: ``concurrency`` (closed loop) or ``request_rate`` (open loop).
        points: The load points in sweep order: concurrency levels, or request rates (``"inf"``: all at once).
        requests_per_point: Measured requests per point plus its warm-up (absent for points sized by time).
        duration_s_per_point: Seconds per point (absent for points sized by a request count).
        warmup_requests: Warm-up requests before each point (not measured).
        requests_per_job: Requests each job sends at most: points x (num_requests + warm-up); absent when the
            points are sized by time (a point then sends as many as fit in ``duration_s_per_point``).
        summary: The same in words.
    """

    mode: str
    points: list[int | float | str]
    requests_per_point: int | None = None
    duration_s_per_point: float | None = None
    warmup_requests: int = 0
    requests_per_job: int | None = None
    summary: str


def load_plan(spec: LoadSpec) -> LoadPlan:
    """The plan preview of a load sweep.

    Args:
        spec: The experiment's load spec.

    Returns:
        What each job will send.
    """
    points = spec.points()
    axis = "concurrency" if spec.mode == "concurrency" else "request rate"
    shown = ", ".join(str(p) for p in points)
    if spec.num_requests is not None:
        per_point = spec.num_requests + spec.warmup_requests
        total = per_point * len(points)
        summary = (
            f"one sweep per job over {len(points)} {axis} point(s) ({shown}): {len(points)} x "
            f"({spec.num_requests} + {spec.warmup_requests} warm-up) = {total} requests at most "
            "(runs_per_job does not apply; the sweep may stop early)"
        )
        return LoadPlan(mode=spec.mode, points=points, requests_per_point=per_point,
                        warmup_requests=spec.warmup_requests, requests_per_job=total, summary=summary)
    summary = (
        f"one sweep per job over {len(points)} {axis} point(s) ({shown}): {spec.duration_s:g} s per point "
        f"after {spec.warmup_requests} warm-up request(s) (runs_per_job does not apply; the sweep may stop early)"
    )
    return LoadPlan(mode=spec.mode, points=points, duration_s_per_point=spec.duration_s,
                    warmup_requests=spec.warmup_requests, summary=summary)


class Plan(ResponseShape):
    """What an experiment runs and why the rest cannot run.

    Plans stored before the plan carried its jobs have no ``jobs`` key; it reads as empty.

    Attributes:
        jobs: The jobs, one per runnable (model, runtime, agent).
        unrunnable: The combinations no selected agent can run.
        excluded: Every selected agent left out of a combination (also where another agent runs it).
        job_count: Number of jobs.
        load: What each job sends, for an experiment with a load sweep (absent otherwise).
    """

    jobs: list[PlannedJob] = Field(default_factory=list)
    unrunnable: list[Unrunnable] = Field(default_factory=list)
    excluded: list[Excluded] = Field(default_factory=list)
    job_count: int = 0
    load: LoadPlan | None = None

    def as_json(self) -> dict[str, Any]:
        """The plan as the API shows it and the experiment stores it (specs keep only the fields given)."""
        return self.model_dump(mode="json", exclude_none=True)


def experiment_plan(experiment: Experiment) -> Plan:
    """An experiment's own plan: its stored plan with the jobs as they were made (ids included).

    Args:
        experiment: The experiment.

    Returns:
        The plan, in the same shape as a dry run's.
    """
    stored = Plan.model_validate(experiment.plan or {})
    jobs = [
        PlannedJob(
            model=ModelSpec.model_validate(job.model_spec),
            runtime=RuntimeSpec.model_validate(job.runtime_spec),
            agent_id=str(job.agent_id) if job.agent_id else None,
            agent_name=job.agent.name if job.agent else None,
            hardware_fingerprint=job.hardware_fingerprint,
            job=job.pk,
        )
        for job in experiment.jobs.select_related("agent").order_by("id")
    ]
    return stored.model_copy(update={"jobs": jobs, "job_count": len(jobs)})


def agents_for_selection(selection: dict[str, Any]) -> list[Agent]:
    """Resolve an experiment's agent selection to agents (deactivated ones excluded).

    Args:
        selection: ``{"all": true}``, ``{"ids": [...]}`` or ``{"labels": [...]}`` (agents carrying every
            listed label).

    Returns:
        Agents in name order.
    """
    qs = Agent.objects.exclude(status=AgentStatus.DEACTIVATED).order_by("name", "id")
    if selection.get("ids"):
        return list(qs.filter(pk__in=selection["ids"]))
    if selection.get("labels"):
        wanted = set(selection["labels"])
        return [a for a in qs if wanted.issubset(set(a.labels or []))]
    return list(qs)


def plan_experiment(
    *,
    model_specs: list[dict[str, Any]],
    runtime_specs: list[dict[str, Any]],
    agent_selection: dict[str, Any],
    requested_metrics: list[str] | None = None,
    load: dict[str, Any] | None = None,
) -> Plan:
    """Work out which (model, runtime, agent) jobs will run and why the other combinations cannot.

    Args:
        model_specs: Models of the experiment.
        runtime_specs: Runtimes of the experiment.
        agent_selection: Agent selection.
        requested_metrics: Metrics asked for.
        load: The experiment's load spec (JSON), validated: the plan then says what each job sends.

    Returns:
        The plan: ``unrunnable`` holds the combinations no selected agent can run, ``excluded`` every
        selected agent left out of a combination (also where another agent runs it).
    """
    agents = agents_for_selection(agent_selection)
    # Each agent's capabilities are parsed once, not once per combination: at fleet scale (1,000 agents x 15
    # combinations) parsing them again for every check was most of the planning time. Offline agents are refused
    # before their capabilities are read, so theirs are not parsed at all (as before).
    infos = {agent.pk: agent.info for agent in agents if agent.status not in _REFUSED_UNSEEN}
    jobs: list[PlannedJob] = []
    unrunnable: list[Unrunnable] = []
    excluded: list[Excluded] = []
    for model in model_specs:
        model_spec = ModelSpec.model_validate(model)
        for runtime in runtime_specs:
            runtime_spec = RuntimeSpec.model_validate(runtime)
            refusals: list[AgentRefusal] = []
            placed = 0
            for agent in agents:
                reason = unmet_requirement(agent, model, runtime, requested_metrics, info=infos.get(agent.pk))
                if reason is None:
                    placed += 1
                    jobs.append(
                        PlannedJob(
                            model=model_spec,
                            runtime=runtime_spec,
                            agent_id=str(agent.pk),
                            agent_name=agent.name,
                            hardware_fingerprint=agent.hardware_fingerprint,
                        )
                    )
                else:
                    refusal = AgentRefusal(agent_id=str(agent.pk), agent_name=agent.name, reason=reason)
                    refusals.append(refusal)
                    excluded.append(Excluded(model=model["name"], runtime=runtime["name"], **refusal.model_dump()))
            if not placed:
                if not agents:
                    summary = "no agent matches the agent selection"
                else:
                    summary = "no selected agent can run it: " + "; ".join(
                        f"{r.agent_name}: {r.reason}" for r in refusals
                    )
                unrunnable.append(
                    Unrunnable(model=model["name"], runtime=runtime["name"], reason=summary, agents=refusals)
                )
    preview = load_plan(LoadSpec.model_validate(load)) if load else None
    return Plan(jobs=jobs, unrunnable=unrunnable, excluded=excluded, job_count=len(jobs), load=preview)
