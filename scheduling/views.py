"""Agent callback endpoints: ``POST /api/v1/jobs/{id}/progress/`` and ``/result/`` (agent credential only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agents.authentication import AgentCredentialAuthentication, IsAgent
from common.protocol import JobProgress, MultiRunJobResult
from common.statuses import JobStatus
from core.api import parse_protocol
from experiments.models import Job
from scheduling.callbacks import CallbackRejected, handle_progress, handle_result

_ProgressAnswer = inline_serializer("ProgressAccepted", {"accepted": serializers.BooleanField()})
_ResultAnswer = inline_serializer(
    "ResultAccepted",
    {"stored": serializers.BooleanField(), "status": serializers.ChoiceField(choices=JobStatus.choices())},
)


class JobCallbackViewSet(viewsets.GenericViewSet):
    """Callbacks of the agent running a job's current attempt (a stale attempt token gets 409)."""

    authentication_classes = [AgentCredentialAuthentication]
    permission_classes = [IsAgent]
    queryset = Job.objects.none()  # only gives the schema the type of the job id

    @extend_schema(request=JobProgress, responses=_ProgressAnswer)
    @action(detail=True, methods=["post"])
    def progress(self, request: Request, pk: str | None = None) -> Response:
        """Agent callback: progress of the current attempt."""
        message = parse_protocol(JobProgress, request.data)
        try:
            handle_progress(int(pk or 0), request.auth, message)
        except CallbackRejected as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        return Response({"accepted": True})

    @extend_schema(request=MultiRunJobResult, responses=_ResultAnswer)
    @action(detail=True, methods=["post"])
    def result(self, request: Request, pk: str | None = None) -> Response:
        """Agent callback: the attempt's result, stored once (replays answer 200 without storing again)."""
        message = parse_protocol(MultiRunJobResult, request.data)
        try:
            outcome = handle_result(int(pk or 0), request.auth, message)
        except CallbackRejected as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        return Response(outcome)
