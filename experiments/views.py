"""REST views for experiments and jobs (thin: validation in serializers, writes in services)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from common.statuses import JOB_ACTIVE_STATUSES
from core import roles
from core.openapi import ErrorSerializer
from core.permissions import Rule
from experiments import services
from experiments.filters import ExperimentFilter, JobFilter
from experiments.models import Experiment, InvalidTransition, Job
from experiments.planning import Plan, experiment_plan, plan_experiment
from experiments.serializers import ExperimentSerializer, JobDetailSerializer, JobSerializer


def _conflict(exc: Exception) -> Response:
    """409 with the reason the state machine refused."""
    return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


class ExperimentViewSet(viewsets.ModelViewSet):
    """Experiments: create (expands into jobs), list, retrieve, rename, delete, cancel."""

    queryset = Experiment.objects.select_related("owner").all()
    serializer_class = ExperimentSerializer
    access_rules = {
        "list": Rule(roles.VIEW_EXPERIMENTS),
        "retrieve": Rule(roles.VIEW_EXPERIMENTS),
        "plan": Rule(roles.VIEW_EXPERIMENTS),
        "create": Rule(roles.ADD_EXPERIMENT),
        "plan_dry_run": Rule(roles.ADD_EXPERIMENT),
        "update": Rule(roles.CHANGE_EXPERIMENT, own=True),
        "partial_update": Rule(roles.CHANGE_EXPERIMENT, own=True),
        "cancel": Rule(roles.CHANGE_EXPERIMENT, own=True),
        "destroy": Rule(roles.DELETE_EXPERIMENT, own=True),
    }
    filterset_class = ExperimentFilter
    ordering_fields = ["id", "created_at", "updated_at", "name", "status"]
    search_fields = ["name", "description"]

    def perform_create(self, serializer: ExperimentSerializer) -> None:  # type: ignore[override]
        """Create through the service (expansion into jobs), owned by the requesting user (never the body)."""
        serializer.instance = services.experiment_create(**serializer.creation_arguments(), owner=self.request.user)

    @extend_schema(responses={204: None, 409: ErrorSerializer})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Delete an experiment; one with jobs still on agents must be cancelled first."""
        experiment = self.get_object()
        if experiment.jobs.filter(status__in=JOB_ACTIVE_STATUSES).exists():
            return Response(
                {"detail": "experiment has jobs running on agents; cancel it first"},
                status=status.HTTP_409_CONFLICT,
            )
        return super().destroy(request, *args, **kwargs)

    @extend_schema(request=ExperimentSerializer, responses=Plan)
    @action(detail=False, methods=["post"], url_path="plan")
    def plan_dry_run(self, request: Request) -> Response:
        """Dry run: which (model, runtime, agent) jobs an experiment would make, and why the rest cannot run.

        With a load sweep, ``load`` says what each job sends: its points and requests (a load job is one sweep;
        ``runs_per_job`` does not apply).
        """
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        plan = plan_experiment(
            model_specs=[{k: v for k, v in m.items() if v is not None} for m in data["model_specs"]],
            runtime_specs=[{"name": r["name"], "params": r.get("params") or {}} for r in data["runtime_specs"]],
            agent_selection=data["agent_selection"],
            requested_metrics=data.get("requested_metrics") or [],
            load=data.get("load"),
        )
        return Response(plan.as_json())

    @extend_schema(request=None, responses=Plan)
    @action(detail=True, methods=["get"], url_path="plan")
    def plan(self, request: Request, pk: str | None = None) -> Response:
        """The experiment's own plan, in the dry run's shape.

        Its jobs (with their ids), the combinations that cannot run and the agents left out, with reasons.
        """
        return Response(experiment_plan(self.get_object()).as_json())

    @extend_schema(request=None, responses={200: ExperimentSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel every unfinished job of the experiment."""
        experiment = self.get_object()
        try:
            experiment = services.experiment_cancel(experiment.pk)
        except InvalidTransition as exc:
            return _conflict(exc)
        return Response(self.get_serializer(experiment).data)


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Jobs: list with filters, retrieve (with attempts and transitions), cancel, retry."""

    queryset = Job.objects.select_related("agent", "experiment__owner").prefetch_related("attempts").all()
    access_rules = {
        "list": Rule(roles.VIEW_JOBS),
        "retrieve": Rule(roles.VIEW_JOBS),
        "cancel": Rule(roles.CHANGE_JOB, own=True),
        "retry": Rule(roles.CHANGE_JOB, own=True),
    }
    filterset_class = JobFilter
    ordering_fields = ["id", "created_at", "updated_at", "status"]
    search_fields = ["model_name", "runtime_name"]

    def get_serializer_class(self) -> type[JobSerializer]:
        """Detail view shows attempts and the transition log."""
        return JobDetailSerializer if self.action == "retrieve" else JobSerializer

    @extend_schema(request=None, responses={200: JobSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel the job (the agent is told when it is running there)."""
        job = self.get_object()
        try:
            job = services.job_cancel(job.pk)
        except InvalidTransition as exc:
            return _conflict(exc)
        return Response(JobSerializer(job).data)

    @extend_schema(request=None, responses={200: JobSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        """Send a failed, cancelled or timed-out job back to pending."""
        job = self.get_object()
        try:
            job = services.job_retry(job.pk)
        except InvalidTransition as exc:
            return _conflict(exc)
        return Response(JobSerializer(job).data)
