"""``manage.py seed_demo`` creates explorable, clearly labelled demo data, idempotently."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from agents.models import Agent
from experiments.models import Experiment
from results.models import JobMetricStatistics

pytestmark = pytest.mark.django_db


def test_seed_demo_twice(api):
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)
    exp = Experiment.objects.get()
    assert exp.name.startswith("[demo]") and "Synthetic" in exp.description
    assert exp.status == "completed" and exp.jobs.count() == 3
    assert Agent.objects.count() == 3 and all(a.labels == ["demo"] for a in Agent.objects.all())
    assert all(a.status == "offline" and ".invalid" in a.url for a in Agent.objects.all())
    assert JobMetricStatistics.objects.filter(job__experiment=exp, metric="output_tokens_per_s", n=4).count() == 3
    matrix = api.get(f"/api/v1/experiments/{exp.pk}/comparison/").json()
    cells = [c for row in matrix["rows"] for c in row["cells"].values()]
    assert sum("tokens_per_joule" in c for c in cells) == 2 and all("tokens_per_dollar" in c for c in cells)
