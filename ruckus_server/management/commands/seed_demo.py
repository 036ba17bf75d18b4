"""``python manage.py seed_demo``: a demo user, three agents and a finished experiment to explore the UI.

Everything created here is synthetic and labelled so: agents carry the ``demo`` label and their URLs point at
the reserved ``.invalid`` domain, the experiment's name starts with ``[demo]`` and its description says the
figures are generated. Running the command again replaces the previous demo objects.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from agents.models import Agent, AgentStatus
from common.catalog import RUNTIMES, task_params
from common.protocol import (
    AgentInfo,
    CpuInfo,
    GpuInfo,
    MemoryInfo,
    ModelInfo,
    MultiRunJobResult,
    RuntimeCapability,
    SampleResult,
    SingleRunResult,
    SystemInfo,
)
from core.roles import FLEET_ADMIN, assign_role
from experiments.models import Experiment, JobStatus
from experiments.services import experiment_create
from results.scoring import score_all_pending
from results.services import job_result_store

GIB = 2**30
DEMO_LABEL = "demo"

#: (name, cpu, cores, memory GiB, GPUs, cost per hour, tokens/s scale, watts, arch)
HOSTS: list[tuple[str, str, int, int, list[tuple[str, int, str, int]], str | None, float, float | None, str]] = [
    ("demo-h100", "AMD EPYC 9454 48-Core Processor", 96, 512, [("NVIDIA H100 80GB HBM3", 80, "9.0", 4)], "4.20",
     180.0, 310.0, "x86_64"),
    ("demo-rtx4090", "AMD Ryzen 9 7950X 16-Core Processor", 32, 64,
     [("NVIDIA GeForce RTX 4090", 24, "8.9", 4)], "0.70", 140.0, 220.0, "x86_64"),
    ("demo-raspberry-pi", "Cortex-A76", 4, 8, [], "0.01", 6.0, None, "aarch64"),
]

ARTICLES = [
    ("Photosynthesis", "Photosynthesis is the process by which plants and other organisms convert light energy "
     "into chemical energy."),
    ("Mount Everest", "Mount Everest is Earth's highest mountain above sea level, in the Himalayas."),
    ("Jazz", "Jazz is a music genre that originated in the African-American communities of New Orleans."),
    ("Penicillin", "Penicillins are a group of antibiotics originally obtained from Penicillium moulds."),
]


def _info(name: str, cpu: str, cores: int, mem: int, gpus: list[tuple[str, int, str, int]], arch: str) -> AgentInfo:
    """A plausible AgentInfo for a demo host."""
    nvml = bool(gpus)
    runtimes = [
        RuntimeCapability(
            name=rname,
            access_mode=rdef.access_mode,
            available=True,
            metrics=list(rdef.metrics) + (list(rdef.gpu_metrics) if nvml else []),
            unavailable_metrics={} if nvml else {m: "no NVIDIA GPU on this host" for m in rdef.gpu_metrics},
        )
        for rname, rdef in RUNTIMES.items()
        if rname in ("transformers", "openai")
    ]
    return AgentInfo(
        name=name,
        agent_version="demo",
        system=SystemInfo(hostname=f"{name}.invalid", os="Linux", os_version="demo", architecture=arch),
        cpu=CpuInfo(model=cpu, architecture=arch, logical_cores=cores, physical_cores=max(cores // 2, 1)),
        memory=MemoryInfo(total_bytes=mem * GIB),
        gpus=[
            GpuInfo(index=i, name=g, vendor="nvidia", backend="cuda", source="demo", memory_total_bytes=gib * GIB,
                    compute_capability=cc, tensor_core_generation=gen)
            for i, (g, gib, cc, gen) in enumerate(gpus)
        ],
        runtimes=runtimes,
        models=[ModelInfo(name="smollm2-135m-instruct", source="packaged", format="hf", parameters=134_515_008,
                          architecture="LlamaForCausalLM")],
    )


def _result(job_id: int, rng: random.Random, scale: float, watts: float | None, runs: int) -> MultiRunJobResult:
    """Generated runs for one job: throughput around ``scale`` tokens/s with a few percent of noise."""
    out = []
    now = timezone.now()
    for i in range(runs):
        tps = scale * rng.uniform(0.95, 1.05) * (0.8 if i == 0 else 1.0)
        tokens = 48
        e2e = tokens / tps
        ttft = e2e * rng.uniform(0.05, 0.12)
        metrics: dict[str, float | None] = {
            "e2e_latency_s": e2e, "ttft_s": ttft, "tpot_s": (e2e - ttft) / (tokens - 1),
            "output_tokens_per_s": tps, "output_tokens": float(tokens * len(ARTICLES)),
            "peak_rss_bytes": float(rng.randint(900, 1100) * 2**20),
        }
        if i == 0:
            metrics["model_load_s"] = rng.uniform(1.0, 4.0) * (20 / max(scale, 1) + 1)
        if watts is not None:
            metrics["gpu_power_w"] = watts * rng.uniform(0.9, 1.1)
            metrics["energy_j"] = metrics["gpu_power_w"] * e2e * len(ARTICLES)
        samples = []
        for title, reference in ARTICLES:
            words = reference.split()
            keep = rng.randint(len(words) // 2, len(words))
            samples.append(SampleResult(id=title, title=title, output=" ".join(words[:keep]) + ".",
                                        reference=reference, output_tokens=tokens,
                                        metrics={"e2e_latency_s": e2e, "ttft_s": ttft}))
        out.append(SingleRunResult(run_index=i + 1, cold_start=i == 0, metrics=metrics, samples=samples,
                                   started_at=now - timedelta(minutes=runs - i), finished_at=now))
    return MultiRunJobResult(job_id=str(job_id), task="wikipedia_summarization", model="smollm2-135m-instruct",
                             runtime="transformers", runs_per_job=runs, runs=out, cold_start=out[0].metrics)


class Command(BaseCommand):
    """Create (or replace) the demo data."""

    help = "Create a demo user, three demo agents and a finished demo experiment (synthetic figures)."

    def add_arguments(self, parser: Any) -> None:
        """Command-line options."""
        parser.add_argument("--password", default="ruckus-demo", help="password of the 'demo' user")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        """Create the demo objects."""
        User = get_user_model()
        user, _ = User.objects.get_or_create(username="demo")
        user.set_password(options["password"])
        user.save()
        assign_role(user, FLEET_ADMIN)
        Experiment.objects.filter(name__startswith="[demo]").delete()
        Agent.objects.filter(url__contains=".invalid").delete()
        rng = random.Random(42)  # nosec B311  # made-up demo figures, not a secret
        agents = []
        for name, cpu, cores, mem, gpus, cost, scale, watts, arch in HOSTS:
            agent = Agent(name=name, url=f"http://{name}.invalid:8100", status=AgentStatus.ONLINE,
                          labels=[DEMO_LABEL], cost_per_hour=Decimal(cost) if cost else None,
                          last_seen=timezone.now())
            agent.set_capabilities(_info(name, cpu, cores, mem, gpus, arch))
            agent.save()
            agents.append((agent, scale, watts))
        exp = experiment_create(
            name="[demo] SmolLM2 across three machines",
            description="Synthetic figures generated by `manage.py seed_demo` to explore the UI; not measurements.",
            task_name="wikipedia_summarization", task_params=task_params(
                "wikipedia_summarization", {"num_samples": len(ARTICLES), "max_new_tokens": 48}
            ),
            models=[{"name": "smollm2-135m-instruct"}],
            runtimes=[{"name": "transformers", "params": {"device": "auto"}}],
            agents={"labels": [DEMO_LABEL]},
            runs_per_job=5,
            owner=user,
        )
        by_agent = {a.pk: (scale, watts) for a, scale, watts in agents}
        for job in exp.jobs.select_related("agent"):
            scale, watts = by_agent[job.agent_id]
            job.transition(JobStatus.ASSIGNED, reason="demo data", attempt=1)
            job.transition(JobStatus.RUNNING, reason="demo data")
            job_result_store(job=job, result=_result(job.pk, rng, scale, watts, exp.runs_per_job))
            job.transition(JobStatus.COMPLETED, reason="demo data")
        score_all_pending()  # the figures at once: the demo data is ready to explore without a scoring worker
        # Demo agents have no process behind them: show them offline so nothing is ever dispatched to them.
        Agent.objects.filter(pk__in=[a.pk for a, _, _ in agents]).update(status=AgentStatus.OFFLINE,
                                                                          status_reason="demo agent (no process)")
        self.stdout.write(f"Demo data ready: user 'demo' / {options['password']!r}, experiment #{exp.pk}.")
