"""REST views of load sweeps: every job's sweep of an experiment, and one job's with its raw series."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import Rule
from core.roles import VIEW_EXPERIMENTS
from experiments.models import Experiment
from results import load_selectors
from results.load_schemas import ExperimentLoad, JobLoadCell


class ExperimentLoadView(APIView):
    """``GET /api/v1/experiments/{id}/load/``: each job's load sweep, its points' figures and its saturation."""

    access_rules = {"GET": Rule(VIEW_EXPERIMENTS)}

    @extend_schema(responses=ExperimentLoad)
    def get(self, request: Request, pk: int) -> Response:
        """Return every job's sweep: its points' figures, peak, highest goodput within the objectives and knee.

        The figures follow ``vllm bench serve``'s definitions and are computed by the server from the raw requests.
        """
        experiment = get_object_or_404(Experiment.objects.only("id", "load"), pk=pk)
        return Response(load_selectors.experiment_load(experiment))


class JobLoadView(APIView):
    """``GET /api/v1/jobs/{id}/load/``: one job's load sweep, each point with its raw per-request series."""

    access_rules = {"GET": Rule(VIEW_EXPERIMENTS)}

    @extend_schema(responses=JobLoadCell)
    def get(self, request: Request, pk: int) -> Response:
        """Return the job's sweep, each point with ``raw``: its completed requests' TTFT, TPOT, ITL and e2e values."""
        cell = load_selectors.job_load(pk)
        if cell is None:
            raise Http404("no such job")
        return Response(cell)
