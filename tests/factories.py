"""factory_boy factories and protocol builders shared by the server tests."""

from __future__ import annotations

import secrets

import factory
from django.contrib.auth import get_user_model

from agents.models import Agent, AgentStatus
from common.catalog import RUNTIMES
from common.protocol import (
    AgentInfo,
    CpuInfo,
    GpuInfo,
    HardwareBenchmarkResult,
    MemoryInfo,
    ModelInfo,
    MultiRunJobResult,
    RuntimeCapability,
    SampleResult,
    SingleRunResult,
)
from experiments.models import Experiment, Job
from results.models import JobResult
from results.scoring import score_all_pending
from results.services import job_result_store

GIB = 2**30


def agent_info(
    *,
    cpu: str = "AMD EPYC 7763 64-Core Processor",
    memory_gib: int = 64,
    gpus: list[tuple[str, int]] | None = None,
    runtimes: tuple[str, ...] = ("transformers", "openai"),
    models: tuple[str, ...] = ("smollm2-135m-instruct",),
    nvml: bool = False,
) -> AgentInfo:
    """Build an AgentInfo for a hypothetical host."""
    caps = []
    for name, rdef in RUNTIMES.items():
        available = name in runtimes
        unavailable = {} if nvml else {m: "NVML is not available on this host" for m in rdef.gpu_metrics}
        caps.append(
            RuntimeCapability(
                name=name,
                access_mode=rdef.access_mode,
                available=available,
                reason=None if available else f"{name} is not installed",
                metrics=list(rdef.metrics) + (list(rdef.gpu_metrics) if nvml else []),
                unavailable_metrics=unavailable,
            )
        )
    return AgentInfo(
        name="host",
        agent_version="0.1.0",
        cpu=CpuInfo(model=cpu, logical_cores=16, physical_cores=8),
        memory=MemoryInfo(total_bytes=memory_gib * GIB),
        gpus=[
            GpuInfo(index=i, name=n, vendor="nvidia", memory_total_bytes=gib * GIB)
            for i, (n, gib) in enumerate(gpus or [])
        ],
        runtimes=caps,
        models=[ModelInfo(name=m, source="packaged", parameters=134_515_008) for m in models],
    )


class UserFactory(factory.django.DjangoModelFactory):
    """A user with the password ``correct horse battery staple`` and, with ``role=...``, that role's group."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    @factory.post_generation
    def password(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        """Set a known password."""
        self.set_password(extracted or "correct horse battery staple")
        if create:
            self.save()

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        """Put the user in a role's group (``viewer``, ``operator`` or ``fleet-admin``)."""
        if extracted:
            set_role(self, extracted)


def set_role(user: object, role: str) -> None:
    """Give a user exactly one role, as ``manage.py ruckus_user`` does."""
    from core.roles import assign_role

    assign_role(user, role)


def api_token(user: object) -> str:
    """A new API token (knox) for a user."""
    from knox.models import AuthToken

    return AuthToken.objects.create(user=user)[1]


class AgentFactory(factory.django.DjangoModelFactory):
    """An online agent with default capabilities (CPU host, transformers + openai)."""

    class Meta:
        model = Agent
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"agent-{n}")
    url = factory.Sequence(lambda n: f"http://127.0.0.1:{9000 + n}")
    status = AgentStatus.ONLINE

    @factory.post_generation
    def info(self, create: bool, extracted: AgentInfo | None, **kwargs: object) -> None:
        """Attach capabilities (``info=`` to override)."""
        self.set_capabilities(extracted or agent_info())
        self.token = secrets.token_urlsafe(16)
        if create:
            self.save()


class ExperimentFactory(factory.django.DjangoModelFactory):
    """A bare experiment row (use the API or service to get expansion)."""

    class Meta:
        model = Experiment

    name = factory.Sequence(lambda n: f"experiment {n}")
    task_name = "wikipedia_summarization"
    task_params = factory.LazyFunction(lambda: {"num_samples": 2, "seed": 1, "max_new_tokens": 16})
    model_specs = factory.LazyFunction(lambda: [{"name": "smollm2-135m-instruct"}])
    runtime_specs = factory.LazyFunction(lambda: [{"name": "transformers", "params": {}}])
    agent_selection = factory.LazyFunction(lambda: {"all": True})
    runs_per_job = 3


class JobFactory(factory.django.DjangoModelFactory):
    """A pending job on an agent."""

    class Meta:
        model = Job

    experiment = factory.SubFactory(ExperimentFactory)
    agent = factory.SubFactory(AgentFactory)
    model_spec = factory.LazyFunction(lambda: {"name": "smollm2-135m-instruct"})
    runtime_spec = factory.LazyFunction(lambda: {"name": "transformers", "params": {}})
    model_name = "smollm2-135m-instruct"
    runtime_name = "transformers"
    hardware_fingerprint = factory.LazyAttribute(lambda o: o.agent.hardware_fingerprint)


def store_scored(*, job: Job, result: MultiRunJobResult, attempt: object = None) -> tuple[JobResult, bool]:
    """Store a result as the result callback does, then score it as a scoring worker does.

    For tests that read a result's figures (ROUGE, statistics): storing alone leaves them to a scoring worker.

    Args:
        job: The job.
        result: The result message.
        attempt: The attempt that produced it.

    Returns:
        ``(job_result, created)`` as :func:`results.services.job_result_store` returns them, the result reloaded.
    """
    stored, created = job_result_store(job=job, result=result, attempt=attempt)
    score_all_pending()
    stored.refresh_from_db()
    return stored, created


def job_result(
    job_id: int,
    *,
    runs: int = 3,
    tokens_per_s: list[float] | None = None,
    power_w: float | None = None,
    attempt: int = 1,
    token: str = "t" * 16,
) -> MultiRunJobResult:
    """Build a result message with ``runs`` runs (run 1 cold) of two samples each."""
    tps = tokens_per_s or [10.0 + i for i in range(runs)]
    out = []
    for i in range(runs):
        metrics = {"e2e_latency_s": 1.0 + i * 0.1, "ttft_s": 0.1, "output_tokens_per_s": tps[i]}
        if i == 0:
            metrics["model_load_s"] = 2.5
        if power_w is not None:
            metrics["gpu_power_w"] = power_w
        out.append(
            SingleRunResult(
                run_index=i + 1,
                cold_start=i == 0,
                metrics=metrics,
                samples=[
                    SampleResult(
                        id="Paris",
                        title="Paris",
                        output="Paris is the capital and largest city of France.",
                        reference="Paris is the capital of France. It is its largest city.",
                        output_tokens=10,
                        metrics={"ttft_s": 0.1, "e2e_latency_s": 1.0},
                    ),
                    SampleResult(
                        id="Moon",
                        title="Moon",
                        output="Bananas are yellow.",
                        reference="The Moon is Earth's only natural satellite.",
                        output_tokens=4,
                    ),
                ],
            )
        )
    return MultiRunJobResult(
        job_id=str(job_id),
        attempt=attempt,
        attempt_token=token,
        task="wikipedia_summarization",
        model="smollm2-135m-instruct",
        runtime="transformers",
        runs_per_job=runs,
        runs=out,
        cold_start=out[0].metrics,
    )


def store_benchmark(agent: Agent, benchmark: HardwareBenchmarkResult) -> Agent:
    """Give an agent measured peaks the way the server gets them: a completed hardware benchmark job's result.

    Args:
        agent: The agent.
        benchmark: What its benchmark measured.

    Returns:
        The agent, reloaded (its ``latest_benchmark`` set).
    """
    experiment = Experiment.objects.create(
        name="peaks", task_name="hardware_benchmark", model_specs=[{"name": "none"}],
        runtime_specs=[{"name": "hardware", "params": {}}], agent_selection={"ids": [str(agent.pk)]}, runs_per_job=1,
    )
    job = Job.objects.create(
        experiment=experiment, model_spec={"name": "none"}, runtime_spec={"name": "hardware", "params": {}},
        model_name="none", runtime_name="hardware", agent=agent, hardware_fingerprint=agent.hardware_fingerprint,
    )
    flat, unsupported = benchmark.flatten()
    run = SingleRunResult(run_index=1, cold_start=True, metrics=flat, unavailable_metrics=unsupported,
                          benchmark=benchmark)
    store_scored(job=job, result=MultiRunJobResult(
        job_id=str(job.pk), task="hardware_benchmark", model="none", runtime="hardware", runs_per_job=1, runs=[run],
    ))
    return Agent.objects.select_related("latest_benchmark").get(pk=agent.pk)
