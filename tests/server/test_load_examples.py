"""The load sweep examples (``examples/load-*.json``) are experiments the server takes as they are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.models import Experiment
from tests.factories import AgentFactory, agent_info

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(("name", "points"), [
    ("load-concurrency.json", [1, 2, 4, 8, 16, 32]),
    ("load-rate-slo.json", [0.5, 1.0, 2.0, 4.0, 8.0, "inf"]),
])
def test_an_example_plans_and_creates_a_sweep_per_job(api, name: str, points: list[object]):
    AgentFactory(name="gpu-1", info=agent_info(runtimes=("vllm",), gpus=[("NVIDIA H100 80GB", 80)]))
    doc = json.loads((EXAMPLES / name).read_text())
    plan = api.post("/api/v1/experiments/plan/", doc, format="json")
    assert plan.status_code == 200, plan.json()
    assert plan.json()["load"]["points"] == points
    assert plan.json()["job_count"] == 1 and plan.json()["unrunnable"] == [], plan.json()
    created = api.post("/api/v1/experiments/", doc, format="json")
    assert created.status_code == 201, created.json()
    exp = Experiment.objects.get(pk=created.json()["id"])
    assert exp.load_spec is not None and exp.load_spec.points() == points
    assert api.get(f"/api/v1/experiments/{exp.pk}/").json()["load"] == exp.load
