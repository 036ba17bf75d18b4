"""The agent's HTTP API under ``/api/v1`` (OpenAPI at ``/docs`` when the agent runs with ``--debug``).

Every endpoint except ``/api/v1/health`` needs ``Authorization: Bearer <agent token>``, checked by
:class:`~agent_runtime.http_guard.RequestGuard` before the body is read, as is the body's size
(``max_body_bytes``). Bad input gets a 422 whose ``errors`` map names each field (``task.params.num_samples``)
and says what is wrong.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from agent_runtime import __version__
from agent_runtime.admission import check_job_request
from agent_runtime.engine import BusyError, JobActiveError, JobEngine, JobRecord, UnknownJobError
from agent_runtime.http_guard import RequestGuard
from agent_runtime.service import AgentService, ServerUnreachable
from agent_runtime.settings import Settings
from common.protocol import (
    PROTOCOL_VERSION,
    AgentActivity,
    AgentInfo,
    AgentJobReport,
    AgentJobSummary,
    AgentStatusReport,
    JobRequest,
    RegisterRequest,
)
from common.validation import error_fields, field_errors


class HealthResponse(BaseModel):
    """Answer of ``GET /api/v1/health``."""

    status: str = "ok"
    version: str = __version__
    protocol_version: str = PROTOCOL_VERSION
    activity: AgentActivity
    registered: bool


def _field_errors_response(errors: dict[str, str]) -> JSONResponse:
    """422 whose message and ``errors`` map name every bad field."""
    detail = "invalid request: " + "; ".join(f"{k}: {v}" for k, v in errors.items())
    return JSONResponse(status_code=422, content={"detail": detail, "errors": errors})


class FieldErrors(Exception):
    """Validation problems keyed by dotted field name."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# -- dependencies ---------------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="The agent's token")


def get_service(request: Request) -> AgentService:
    """The agent service the lifespan created."""
    return request.app.state.service


ServiceDep = Annotated[AgentService, Depends(get_service)]


def get_engine(service: ServiceDep) -> JobEngine:
    """The job engine."""
    return service.engine


EngineDep = Annotated[JobEngine, Depends(get_engine)]


def require_token(
    service: ServiceDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Check the bearer token (constant-time comparison).

    Raises:
        HTTPException: 401 when the token is missing or wrong.
    """
    expected = service.settings.token.get_secret_value() if service.settings.token else None
    if (
        credentials is None
        or expected is None
        or not secrets.compare_digest(credentials.credentials.encode(), expected.encode())
    ):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authenticated = Annotated[None, Depends(require_token)]


def _report(record: JobRecord) -> AgentJobReport:
    """API view of a job."""
    return AgentJobReport(
        job_id=record.request.job_id,
        attempt=record.request.attempt,
        status=record.state,
        progress=record.progress,
        runs_finished=len(record.runs),
        result=record.result,
    )


# -- routes ---------------------------------------------------------------------------------------------

public = APIRouter(prefix="/api/v1", tags=["health"])
router = APIRouter(prefix="/api/v1", tags=["agent"], dependencies=[Depends(require_token)])


@public.get("/health", response_model=HealthResponse)
def health(service: ServiceDep) -> HealthResponse:
    """Liveness: answers without a token, even while a job runs."""
    return HealthResponse(activity=service.engine.activity(), registered=service.registration is not None)


@router.get("/info", response_model=AgentInfo)
def info(service: ServiceDep) -> AgentInfo:
    """The agent's full description (hardware, frameworks, runtimes, models)."""
    if service.info is None:
        raise HTTPException(status_code=503, detail="detection is still running")
    return service.info


@router.post("/info/refresh", response_model=AgentInfo)
async def refresh_info(service: ServiceDep) -> AgentInfo:
    """Detect the host again now (new models, drivers, a finished benchmark) and return the description."""
    return await service.refresh_info()


@router.get("/status", response_model=AgentStatusReport)
def agent_status(service: ServiceDep) -> AgentStatusReport:
    """What the agent is doing and how its calls to the server are going (the server's direct check)."""
    return service.status_report()


@router.post("/register", response_model=AgentInfo, responses={502: {"description": "the server is unreachable"}})
async def register(body: RegisterRequest, service: ServiceDep) -> AgentInfo | JSONResponse:
    """The server registers this agent: it hands over its URL, our id and our credential.

    The agent first calls the server back at that URL with the registration's challenge; when it cannot, it
    refuses (502, naming the address and the error) and keeps its previous registration.
    """
    try:
        return await service.register(body)
    except ServerUnreachable as exc:
        return JSONResponse(
            status_code=502,
            content={"detail": str(exc), "server_url": exc.server_url, "reach_error": exc.error},
        )


@router.post("/jobs", response_model=AgentJobReport, status_code=status.HTTP_202_ACCEPTED)
def submit_job(job: JobRequest, service: ServiceDep, engine: EngineDep) -> AgentJobReport:
    """Accept a job (202); 409 when another job runs; 422 naming the field on bad input."""
    errors = check_job_request(job, service.info, data_dir=service.data_dir,
                               model_dirs=tuple(service.settings.model_dirs), policy=service.policy)
    if errors:
        raise FieldErrors(errors)
    try:
        record, _created = engine.submit(job)
    except BusyError as exc:
        raise HTTPException(status_code=status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    return _report(record)


@router.get("/jobs", response_model=list[AgentJobSummary])
def list_jobs(engine: EngineDep) -> list[AgentJobSummary]:
    """Jobs the agent holds: the running one and finished ones not yet acknowledged."""
    return [
        AgentJobSummary(
            job_id=r.request.job_id,
            attempt=r.request.attempt,
            status=r.state,
            runs_finished=len(r.runs),
            runs_total=r.request.runs_per_job,
        )
        for r in engine.jobs()
    ]


@router.get("/jobs/{job_id}", response_model=AgentJobReport)
def get_job(job_id: str, engine: EngineDep) -> AgentJobReport:
    """A job's status, progress and (once ended) result."""
    try:
        return _report(engine.get(job_id))
    except UnknownJobError as exc:
        raise HTTPException(status_code=404, detail=f"unknown job {job_id}") from exc


@router.post("/jobs/{job_id}/cancel", response_model=AgentJobReport, status_code=status.HTTP_202_ACCEPTED)
def cancel_job(job_id: str, engine: EngineDep) -> AgentJobReport:
    """Stop a job between tokens; answers at once (poll the job for its final state)."""
    try:
        return _report(engine.cancel(job_id))
    except UnknownJobError as exc:
        raise HTTPException(status_code=404, detail=f"unknown job {job_id}") from exc


@router.post("/jobs/{job_id}/ack", status_code=status.HTTP_204_NO_CONTENT)
def ack_job(job_id: str, engine: EngineDep) -> None:
    """The server has the result: delete the job from the spool."""
    try:
        engine.ack(job_id)
    except UnknownJobError as exc:
        raise HTTPException(status_code=404, detail=f"unknown job {job_id}") from exc
    except JobActiveError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc


# -- application ----------------------------------------------------------------------------------------


def create_app(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """Build the agent's FastAPI application.

    Args:
        settings: The agent's settings.
        transport: Optional httpx transport for agent -> server calls (tests).

    Returns:
        The application; its lifespan owns the agent service and its background tasks.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Start the service (detection, spool recovery, background tasks) and stop it on shutdown."""
        service = AgentService(settings, transport=transport)
        app.state.service = service
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    docs = settings.debug  # the API's description is for developers: off unless the agent runs with --debug
    app = FastAPI(
        title="RUCKUS agent",
        version=__version__,
        description="Runs benchmark jobs on this host and reports results to the RUCKUS server.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    public_paths = {"/api/v1/health"}
    if docs:
        public_paths |= {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
    app.add_middleware(
        RequestGuard,
        token=lambda: settings.token.get_secret_value() if settings.token else None,
        max_body_bytes=settings.max_body_bytes,
        public_paths=public_paths,
    )

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        """Name every bad field with a dotted path (``runs_per_job``, ``task.params.num_samples``)."""
        return _field_errors_response(error_fields(exc.errors()))

    @app.exception_handler(FieldErrors)
    async def _on_field_errors(request: Request, exc: FieldErrors) -> JSONResponse:
        """422 for problems found after parsing (catalogue params, model, runtime availability)."""
        return _field_errors_response(exc.errors)

    @app.exception_handler(ValidationError)
    async def _on_pydantic(request: Request, exc: ValidationError) -> JSONResponse:
        """A model validation error raised inside a route is the client's bad input too."""
        return _field_errors_response(field_errors(exc))

    app.include_router(public)
    app.include_router(router)
    return app
