"""Measured peaks move from the agent's capabilities to its latest stored hardware benchmark result."""

import django.db.models.deletion
from django.db import migrations, models


def adopt_advertised_benchmarks(apps, schema_editor):
    """Keep the peaks agents advertised so far: attach them to their latest hardware benchmark result."""
    Agent = apps.get_model("agents", "Agent")
    JobResult = apps.get_model("results", "JobResult")
    for agent in Agent.objects.filter(capabilities__has_key="benchmarks").iterator():
        advertised = agent.capabilities.get("benchmarks")
        if not advertised:
            continue
        stored = (
            JobResult.objects.filter(job__agent_id=agent.pk, job__experiment__task_name="hardware_benchmark",
                                     job__status="completed")
            .order_by("-received_at")
            .first()
        )
        if stored is None:
            continue
        JobResult.objects.filter(pk=stored.pk).update(benchmark=advertised)
        Agent.objects.filter(pk=agent.pk).update(latest_benchmark=stored.pk)


class Migration(migrations.Migration):

    dependencies = [
        ('agents', '0001_initial'),
        ('results', '0003_jobresult_benchmark'),
    ]

    operations = [
        migrations.AddField(
            model_name='agent',
            name='latest_benchmark',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='results.jobresult'),
        ),
        migrations.RunPython(adopt_advertised_benchmarks, migrations.RunPython.noop),
    ]
