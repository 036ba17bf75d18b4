"""Creating a fleet-scale experiment: how long ``experiment_create`` and the API's POST take for 15,000 jobs.

Creates its own Postgres database (``ruckus_bench_create_<pid>``, dropped at the end; see ``benchdb.py``), puts
``--agents`` fake agents in it directly (realistic capabilities on CPU and GPU hosts, every one able to run the
5 models x 3 runtimes of the experiment: 1,000 agents make 15,000 jobs) plus ``--refusing`` offline ones (the plan
explains each refusal), then measures, each on a fresh experiment:

- ``plan``: :func:`experiments.planning.plan_experiment` alone (capability matching for every combination);
- ``service``: :func:`experiments.services.experiment_create` (plan, jobs, transition log, status);
- ``api``: ``POST /api/v1/experiments/`` (validation, the service, and the response's serialization); the
  serializer's validation is also timed on its own (``api validation``).

For each: wall time, the queries it made, and the jobs created. Usage::

    python benchmarks/experiment_create.py [--agents 1000] [--refusing 50] [--keep]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from benchdb import QueryCounter, bench_database, django_setup, experiment_body, make_fleet, table


def _measure(label: str, fn: Any) -> tuple[dict[str, Any], Any]:
    """Run ``fn`` once, counting its queries; the row of the table and ``fn``'s value."""
    with QueryCounter() as counter:
        start = time.perf_counter()
        value = fn()
        elapsed = time.perf_counter() - start
    return {"step": label, "seconds": f"{elapsed:.2f}", "queries": counter.count}, value


def main() -> None:
    """Set up the database and the fleet, run each measurement, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000, help="capable agents (x 15 combinations = jobs)")
    parser.add_argument("--refusing", type=int, default=50, help="offline agents in the selection")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    with bench_database("ruckus_bench_create", keep=args.keep) as url:
        django_setup(url)
        from django.contrib.auth import get_user_model
        from rest_framework.test import APIClient

        from experiments.models import Job
        from experiments.planning import plan_experiment
        from experiments.serializers import ExperimentSerializer
        from experiments.services import experiment_create

        start = time.perf_counter()
        make_fleet(args.agents, args.refusing)
        print(f"fleet: {args.agents} capable + {args.refusing} offline agents in {time.perf_counter() - start:.1f} s")
        user = get_user_model().objects.create_superuser("bench", password="bench")
        body = experiment_body()
        serializer = ExperimentSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        arguments = serializer.creation_arguments()
        rows = []

        row, plan = _measure("plan", lambda: plan_experiment(
            model_specs=arguments["models"], runtime_specs=arguments["runtimes"],
            agent_selection=arguments["agents"], requested_metrics=arguments["requested_metrics"]))
        rows.append({**row, "jobs": plan.job_count, "detail": f"{len(plan.excluded)} refusals"})

        row, experiment = _measure("service", lambda: experiment_create(**arguments, owner=user))
        rows.append({**row, "jobs": Job.objects.filter(experiment=experiment).count(), "detail": experiment.status})

        def validate() -> ExperimentSerializer:
            s = ExperimentSerializer(data=body)
            s.is_valid(raise_exception=True)
            return s

        row, _ = _measure("api validation", validate)
        rows.append({**row, "jobs": "", "detail": ""})

        client = APIClient()
        client.force_authenticate(user)
        row, response = _measure("api", lambda: client.post("/api/v1/experiments/", body, format="json"))
        assert response.status_code == 201, (response.status_code, response.content[:500])
        created = response.json()
        rows.append({**row, "jobs": Job.objects.filter(experiment_id=created["id"]).count(),
                     "detail": f"{created['status']}, response {len(json.dumps(created)) / 1e6:.1f} MB"})
        print(table(rows))


if __name__ == "__main__":
    main()
