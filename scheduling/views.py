"""Agent endpoints of the scheduler (agent credential only).

``POST /api/v1/jobs/{id}/progress/`` and ``/result/`` (every agent), and ``POST /api/v1/agents/{id}/work/``, the
long poll of pull agents.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import close_old_connections
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from agents.authentication import AgentCredentialAuthentication, IsAgent
from agents.models import Agent
from common.protocol import JobProgress, MultiRunJobResult, WorkAnswer, WorkRequest
from common.statuses import JobStatus
from core.api import parse_protocol
from core.openapi import ErrorSerializer
from experiments.models import Job
from results.uploads import read_result_body
from scheduling.callbacks import CallbackRejected, handle_progress, handle_result
from scheduling.locking import job_pk
from scheduling.pull import begin_work_request, work_for

_ProgressAnswer = inline_serializer("ProgressAccepted", {"accepted": serializers.BooleanField()})
_ResultAnswer = inline_serializer(
    "ResultAccepted",
    {"stored": serializers.BooleanField(), "status": serializers.ChoiceField(choices=JobStatus.choices())},
)


def _job_id(pk: str | None) -> int:
    """The job id in a callback's URL; one that cannot be a job id is an unknown job (404), never a 500."""
    job_id = job_pk(pk)
    if job_id is None:
        raise CallbackRejected("unknown job", 404)
    return job_id


class JobCallbackViewSet(viewsets.GenericViewSet):
    """Callbacks of the agent running a job's current attempt (a stale attempt token gets 409)."""

    authentication_classes = [AgentCredentialAuthentication]
    permission_classes = [IsAgent]
    queryset = Job.objects.none()  # only gives the schema the type of the job id

    @extend_schema(request=JobProgress, responses={200: _ProgressAnswer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def progress(self, request: Request, pk: str | None = None) -> Response:
        """Agent callback: progress of the current attempt."""
        message = parse_protocol(JobProgress, request.data)
        try:
            handle_progress(_job_id(pk), request.auth, message)
        except CallbackRejected as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        return Response({"accepted": True})

    @extend_schema(
        request=MultiRunJobResult, responses={200: _ResultAnswer, 409: ErrorSerializer, 413: ErrorSerializer}
    )
    @action(detail=True, methods=["post"])
    def result(self, request: Request, pk: str | None = None) -> Response:
        """Agent callback: the attempt's result, stored once (replays answer 200 without storing again).

        The body may be up to ``RUCKUS_MAX_RESULT_BYTES`` (a load sweep's requests); a larger one gets 413.
        """
        message = parse_protocol(MultiRunJobResult, read_result_body(request))
        try:
            outcome = handle_result(_job_id(pk), request.auth, message)
        except CallbackRejected as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        return Response(outcome)


class AgentWorkViewSet(viewsets.GenericViewSet):
    """The long poll of pull agents: work, and jobs to stop, for the calling agent."""

    authentication_classes = [AgentCredentialAuthentication]
    permission_classes = [IsAgent]
    queryset = Agent.objects.none()  # only gives the schema the type of the agent id

    @extend_schema(request=WorkRequest, responses={200: WorkAnswer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def work(self, request: Request, pk: str | None = None) -> Response:
        """Answer at once when there is a job or a cancellation for the agent; else hold up to ``wait_s``.

        Only pull agents ask (a push agent gets its jobs by a call to its API: 409). The request is held at most
        ``RUCKUS_PULL_WAIT_S`` seconds, looking for work every ``RUCKUS_PULL_CHECK_S``.
        """
        agent: Agent = request.auth
        if str(agent.pk) != str(pk):
            raise PermissionDenied("an agent may only ask for its own work")
        if not agent.is_pull:
            return Response({"detail": "this agent is registered in push mode: the server sends it its jobs"},
                            status=status.HTTP_409_CONFLICT)
        message = parse_protocol(WorkRequest, request.data)
        begin_work_request(agent, message)
        deadline = time.monotonic() + min(message.wait_s, settings.RUCKUS_PULL_WAIT_S)
        while True:
            answer = work_for(agent, message)
            if answer is not None:
                return Response(answer.model_dump(mode="json"))
            if time.monotonic() + settings.RUCKUS_PULL_CHECK_S > deadline:
                break
            # Hand the database connection back while waiting (a held poll must not pin one per agent when
            # connections are pooled or persistent).
            close_old_connections()
            time.sleep(settings.RUCKUS_PULL_CHECK_S)
        return Response(WorkAnswer(status=agent.status).model_dump(mode="json"))
