"""The experiments app's websocket events: ``experiment.updated`` and ``job.updated``, with the REST payloads."""

from __future__ import annotations

from core import events
from experiments.models import Experiment, Job
from experiments.serializers import ExperimentSerializer, JobSerializer


def register_events() -> None:
    """Declare how the experiment and job events are built (called once from the app's ``ready``).

    A job's event goes to its experiment's group (the experiment page's job grid) and to the job's own group.
    """
    events.register(
        events.EXPERIMENT_UPDATED,
        load=lambda experiment_id: Experiment.objects.select_related("owner").filter(pk=experiment_id).first(),
        groups=lambda experiment: [events.experiment_group(experiment.pk)],
        serialize=lambda experiment: ExperimentSerializer(experiment).data,
    )
    events.register(
        events.JOB_UPDATED,
        # The payload names the agent and the experiment's owner: their large columns (the agent's capabilities,
        # the experiment's plan of every job) are not read for each job event.
        load=lambda job_id: Job.objects.select_related("agent", "experiment__owner")
        .defer("agent__capabilities", "experiment__plan").filter(pk=job_id).first(),
        groups=lambda job: [events.experiment_group(job.experiment_id), events.job_group(job.pk)],
        serialize=lambda job: JobSerializer(job).data,
    )
