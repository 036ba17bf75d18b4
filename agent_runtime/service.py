"""The agent's long-lived state and background tasks (heartbeat, outbox, progress, announce).

:class:`AgentService` is owned by the FastAPI lifespan: it starts the background tasks at startup and
cancels them at shutdown. Engine events arrive from the worker thread and are handed to the event loop
with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_result

from agent_runtime.admission import check_job_request
from agent_runtime.constants import (
    OUTBOX_SCAN_INTERVAL_S,
    PROGRESS_MIN_INTERVAL_S,
    PULL_WAIT_S,
    REACH_TIMEOUT_S,
    SETTLE_PROBE_WAIT_S,
    SHUTDOWN_JOB_GRACE_S,
    STARTUP_PROBE_WAIT_S,
)
from agent_runtime.detection import probes_pending, wait_for_pending_probes
from agent_runtime.engine import BusyError, JobEngine, UnknownJobError
from agent_runtime.info import gather_agent_info, with_servers
from agent_runtime.logging import get_logger
from agent_runtime.paths import spool_dir
from agent_runtime.policy import AgentPolicy
from agent_runtime.server_client import (
    ContactRecord,
    Delivery,
    Registration,
    ServerClient,
    announce,
    describe_error,
    load_registration,
    reach,
    retry_wait,
    save_registration,
)
from agent_runtime.settings import Settings
from agent_runtime.spool import Spool
from common.protocol import (
    AgentInfo,
    AgentMode,
    AgentStatusReport,
    AnnounceAnswer,
    AnnounceRequest,
    Heartbeat,
    JobProgress,
    JobRejection,
    JobRequest,
    RegisterRequest,
    WorkRequest,
)

log = get_logger(__name__)

#: Shortest and longest heartbeat interval the agent accepts from its server.
MIN_SERVER_HEARTBEAT_S = 0.1
MAX_SERVER_HEARTBEAT_S = 3600.0


class ServerUnreachable(Exception):
    """The agent could not reach the server at the address a registration gave it.

    Attributes:
        server_url: That address.
        error: What went wrong.
    """

    def __init__(self, server_url: str, error: str) -> None:
        super().__init__(f"could not reach the server at {server_url}: {error}")
        self.server_url = server_url
        self.error = error


class AgentService:
    """Everything one agent process holds: settings, info, engine, registration and background tasks.

    Args:
        settings: The agent's settings.
        transport: Optional httpx transport for agent -> server calls (tests).
    """

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.transport = transport
        self.info: AgentInfo | None = None
        self.registration: Registration | None = load_registration(self.data_dir)
        self.client: ServerClient | None = None
        self.spool = Spool(spool_dir(self.data_dir))
        #: What a job may name (key variables, endpoints, files); no request to a job's endpoint carries the
        #: agent's own secrets.
        self.policy = AgentPolicy.from_settings(settings, secrets=self.own_secrets)
        self.engine = JobEngine(
            self.spool,
            data_dir=self.data_dir,
            model_dirs=tuple(settings.model_dirs),
            info_provider=lambda: self.info,
            listener=self,
            telemetry_interval_s=settings.telemetry_interval_s,
            policy=self.policy,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox_wake = asyncio.Event()
        self._progress_wake = asyncio.Event()
        self._pending_progress: dict[str, JobProgress] = {}
        self._pushed_hash: str | None = None
        self._tasks: list[asyncio.Task] = []
        self.mode = AgentMode.PULL if settings.pull else AgentMode.PUSH
        self.heartbeat_interval_s = settings.heartbeat_interval_s
        self._rejected: list[JobRejection] = []
        self._redeliver_now = False
        self._pull_wake = asyncio.Event()

    def own_secrets(self) -> tuple[str, ...]:
        """The agent's secrets: its API token, its registration key and its current server credential."""
        values = [self.settings.token, self.settings.registration_key]
        if self.registration is not None:
            values.append(self.registration.credential)
        return tuple(v.get_secret_value() for v in values if v is not None and v.get_secret_value())

    # -- engine listener (worker thread) ---------------------------------------------------------------

    def on_progress(self, progress: JobProgress) -> None:
        """Queue a progress post (coalesced: the latest progress of a job wins)."""
        self._pending_progress[progress.job_id] = progress
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._progress_wake.set)

    def on_finished(self, job_id: str) -> None:
        """Wake the outbox: a result is ready."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._outbox_wake.set)

    # -- lifecycle -------------------------------------------------------------------------------------

    def detect_settled(self, wait_s: float) -> AgentInfo | None:
        """Wait (blocking) for probes an earlier detection left running, then detect again.

        Args:
            wait_s: Longest wait for the pending probes.

        Returns:
            The new description, or None when nothing was pending (the current one stands) or they
            are still running.
        """
        if not probes_pending() or not wait_for_pending_probes(wait_s):
            return None
        return self.detect()

    def detect(self) -> AgentInfo:
        """Run detection (blocking) and return the full description."""
        return gather_agent_info(
            data_dir=self.data_dir,
            model_dirs=tuple(self.settings.model_dirs),
            name=self.settings.name,
            agent_id=self.registration.agent_id if self.registration else None,
            servers=self.policy.servers,
        )

    async def start(self) -> None:
        """Detect the host, recover the spool and start the background tasks."""
        self._loop = asyncio.get_running_loop()
        self.info = await asyncio.to_thread(self.detect)
        # Serve only once a slow torch import has finished (busy or small hosts take seconds): advertising
        # the white-box runtimes as missing would get this agent left out of plans made meanwhile.
        settled = await asyncio.to_thread(self.detect_settled, STARTUP_PROBE_WAIT_S)
        if settled is not None:
            self.info = settled
        recovered = await asyncio.to_thread(self.engine.recover)
        if recovered:
            log.info("spool.recovered", jobs=recovered)
        if self.registration is not None:
            self.client = ServerClient(self.registration, transport=self.transport)
            self.client.contact.on_restored = self._contact_restored
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._outbox_loop(), name="outbox"),
            asyncio.create_task(self._progress_loop(), name="progress"),
            asyncio.create_task(self._refresh_loop(), name="capabilities"),
            asyncio.create_task(self._servers_loop(), name="local-servers"),
            # A torch import slower even than the start-up wait would leave the white-box runtimes
            # unavailable until the next refresh: detect again as soon as it is done.
            asyncio.create_task(self._settle_detection(), name="settle-detection"),
        ]
        if self.settings.server and self.settings.registration_key and self.registration is None:
            self._tasks.append(asyncio.create_task(self._announce_loop(), name="announce"))
        if self.mode == AgentMode.PULL:
            self._tasks.append(asyncio.create_task(self._pull_loop(), name="pull"))
        log.info(
            "agent.started",
            name=self.info.name,
            mode=self.mode.value,
            registered=self.registration is not None,
            url=None if self.mode == AgentMode.PULL else self.settings.advertised_url(),
            allowed_key_envs=list(self.policy.key_envs.allowed),
            allowed_endpoints=self.policy.endpoints.describe("openai"),
            allowed_paths=[str(p) for p in self.policy.paths.roots],
        )
        for name in self.policy.key_envs.refused:
            log.warning("policy.key_env_refused", name=name,
                        reason="RUCKUS_* variables hold the agent's own settings and secrets; no job may read them")

    async def stop(self) -> None:
        """Cancel the background tasks, stop a running job as interrupted, close clients."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await asyncio.to_thread(self.engine.shutdown, SHUTDOWN_JOB_GRACE_S)
        if self.client is not None:
            await self.client.aclose()
        log.info("agent.stopped")

    # -- registration ----------------------------------------------------------------------------------

    async def register(self, request: RegisterRequest) -> AgentInfo:
        """Accept the server's registration: persist it and answer with the full AgentInfo.

        When the registration carries a challenge, the agent first presents it to the server at the URL it was
        given: a server address this agent cannot reach is refused now, with the reason, instead of heartbeats
        failing later.

        Args:
            request: The server's URL, this agent's id and credential.

        Returns:
            The full description, with ``agent_id`` set.

        Raises:
            ServerUnreachable: When the agent cannot reach the server at that address (nothing is changed).
        """
        server_url = request.server_url.rstrip("/")
        if request.challenge:
            try:
                await reach(server_url, request.agent_id, request.challenge, transport=self.transport,
                            timeout_s=REACH_TIMEOUT_S)
            except (httpx.HTTPError, ValueError) as exc:
                log.error("register.server_unreachable", server=server_url, error=describe_error(exc))
                raise ServerUnreachable(server_url, describe_error(exc)) from exc
        await self._adopt(Registration(agent_id=request.agent_id, server_url=server_url,
                                       credential=request.credential))
        if self.info is None:
            self.info = await asyncio.to_thread(self.detect)
        self.info.agent_id = request.agent_id
        self._pushed_hash = self.info.capabilities_hash()
        self._outbox_wake.set()
        log.info("agent.registered", agent_id=request.agent_id, server=server_url)
        return self.info

    async def _adopt(self, registration: Registration) -> None:
        """Persist a new registration and start calling the server with it."""
        await asyncio.to_thread(save_registration, self.data_dir, registration)
        old = self.client
        self.registration = registration
        self.client = ServerClient(registration, transport=self.transport)
        self.client.contact.on_restored = self._contact_restored
        if old is not None:
            await old.aclose()

    def status_report(self) -> AgentStatusReport:
        """What the agent is doing and how its calls to the server are going (``GET /api/v1/status``)."""
        active = self.engine.active()
        contact = self.client.contact.state if self.client is not None else ContactRecord(self.settings.server).state
        return AgentStatusReport(
            agent_id=self.registration.agent_id if self.registration else None,
            mode=self.mode,
            activity=self.engine.activity(),
            running_job_id=active.request.job_id if active else None,
            contact=contact,
        )

    # -- background loops ------------------------------------------------------------------------------

    def heartbeat(self) -> Heartbeat | None:
        """Build the current heartbeat (None when not registered)."""
        if self.registration is None:
            return None
        active = self.engine.active()
        return Heartbeat(
            agent_id=self.registration.agent_id,
            activity=self.engine.activity(),
            running_job_id=active.request.job_id if active else None,
            attempt=active.request.attempt if active else None,
            attempt_token=active.request.attempt_token if active else None,
            progress=active.progress if active else None,
            capabilities_hash=self.info.capabilities_hash() if self.info else None,
            finished_job_ids=self.engine.finished_job_ids(),
        )

    async def _heartbeat_loop(self) -> None:
        """Send a heartbeat every interval; push capabilities when their hash changed or the server asks."""
        while True:
            hb = self.heartbeat()
            if hb is not None and self.client is not None:
                try:
                    answer = await self.client.heartbeat(hb)
                    if answer is not None and answer.heartbeat_interval_s:
                        # The server judges silence by its own interval: beat at that pace.
                        self.heartbeat_interval_s = min(max(answer.heartbeat_interval_s, MIN_SERVER_HEARTBEAT_S),
                                                        MAX_SERVER_HEARTBEAT_S)
                    # Push on a local change, and when the server says its copy is stale (e.g. it missed
                    # an earlier push).
                    server_stale = answer is not None and answer.refresh_capabilities
                    if self.info is not None and (hb.capabilities_hash != self._pushed_hash or server_stale):
                        cap = await self.client.capabilities(self.info)
                        if cap.is_success:
                            self._pushed_hash = hb.capabilities_hash
                except httpx.HTTPError as exc:
                    log.warning("heartbeat.failed", error=describe_error(exc), server=self.registration.server_url
                                if self.registration else None)
            await asyncio.sleep(self.heartbeat_interval_s)

    async def refresh_info(self) -> AgentInfo:
        """Detect again now (asked by the server on an operator's refresh) and return the new description."""
        self.info = await asyncio.to_thread(self.detect)
        return self.info

    async def _settle_detection(self) -> None:
        """Re-detect once the probes the start-up detection left running have finished."""
        try:
            settled = await asyncio.to_thread(self.detect_settled, SETTLE_PROBE_WAIT_S)
        except Exception as exc:
            log.warning("capabilities.settle_failed", error=str(exc))
            return
        if settled is not None:
            self.info = settled
            log.info("capabilities.settled", frameworks=[f.name for f in settled.frameworks if f.available])

    async def _refresh_loop(self) -> None:
        """Re-detect the host now and then (models appear, GPUs change)."""
        while True:
            await asyncio.sleep(self.settings.capabilities_refresh_s)
            try:
                self.info = await asyncio.to_thread(self.detect)
            except Exception as exc:
                log.warning("capabilities.refresh_failed", error=str(exc))

    async def _servers_loop(self) -> None:
        """Check the local inference servers often, and take a change into the description.

        A server that starts, stops or loads another model changes what this agent can run; the next heartbeat
        carries the change (its capabilities hash moves).
        """
        if not self.policy.servers:
            return
        while True:
            await asyncio.sleep(self.settings.server_check_interval_s)
            current = self.info
            if current is None:
                continue
            try:
                updated = await asyncio.to_thread(with_servers, current, self.policy.servers)
            except Exception as exc:
                log.warning("local_servers.check_failed", error=str(exc))
                continue
            # A full re-detection may have replaced the description meanwhile: it checked the servers too.
            if self.info is current and updated.capabilities_hash() != current.capabilities_hash():
                self.info = updated
                log.info("local_servers.changed", servers=[
                    {"runtime": s.runtime, "url": s.url, "available": s.available, "models": s.models}
                    for s in updated.local_servers])

    def _contact_restored(self) -> None:
        """The server answers again after an outage or a partition: deliver waiting results and ask for work now.

        Deliveries and the pull loop may be waiting out a long backoff (up to ``BACKOFF_MAX_S``); restarting them at
        once makes a healed partition cost seconds, not a minute.
        """
        self._redeliver_now = True
        self._outbox_wake.set()
        self._pull_wake.set()  # a pull loop waiting out its backoff asks for work now

    async def _outbox_loop(self) -> None:
        """Start a delivery for every finished result; rescan when woken and every ``OUTBOX_SCAN_INTERVAL_S``."""
        deliveries: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                self._outbox_wake.clear()
                if self._redeliver_now:
                    self._redeliver_now = False
                    for task in deliveries.values():
                        task.cancel()  # the result stays in the spool; a fresh delivery starts below
                    await asyncio.gather(*deliveries.values(), return_exceptions=True)
                    deliveries = {}
                if self.client is not None:
                    for job_id in self.engine.finished_job_ids():
                        running = deliveries.get(job_id)
                        if running is None or running.done():
                            deliveries[job_id] = asyncio.create_task(self._deliver(job_id), name=f"deliver-{job_id}")
                deliveries = {job_id: task for job_id, task in deliveries.items() if not task.done()}
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._outbox_wake.wait(), timeout=OUTBOX_SCAN_INTERVAL_S)
        finally:
            # Shutdown: a delivery waiting out its backoff stops now; the result stays spooled for the next start.
            for task in deliveries.values():
                task.cancel()
            await asyncio.gather(*deliveries.values(), return_exceptions=True)

    async def _deliver(self, job_id: str) -> None:
        """Deliver one job's result until the server acknowledges it (or calls it stale), then forget the job.

        Failed deliveries are retried with the backoff of :func:`~agent_runtime.server_client.retry_wait`, for
        as long as it takes: the result is durable in the spool meanwhile.
        """
        retrying = AsyncRetrying(retry=retry_if_result(lambda outcome: outcome is Delivery.RETRY), wait=retry_wait())
        try:
            outcome = await retrying(self._post_result, job_id)
        except Exception as exc:  # a bug here must not end the outbox; the next scan starts over
            log.error("outbox.delivery_failed", job_id=job_id, error=f"{type(exc).__name__}: {exc}")
            return
        if outcome is None:
            return
        if outcome is Delivery.STALE:
            log.warning("outbox.dropped_stale", job_id=job_id, reason="server answered 409: not the current attempt")
        else:
            log.info("outbox.delivered", job_id=job_id)
        with contextlib.suppress(KeyError, RuntimeError):
            await asyncio.to_thread(self.engine.ack, job_id)

    async def _post_result(self, job_id: str) -> Delivery | None:
        """Post a job's current result once.

        Returns:
            How the server answered; None when there is nothing to deliver any more (the job was forgotten,
            or a new attempt replaced it and is still running).
        """
        try:
            record = self.engine.get(job_id)
        except KeyError:
            return None
        if record.result is None:
            return None
        if self.client is None:
            return Delivery.RETRY
        return await self.client.result(record.result)

    async def _progress_loop(self) -> None:
        """Post job progress to the server, at most every ``PROGRESS_MIN_INTERVAL_S``; best effort."""
        while True:
            await self._progress_wake.wait()
            self._progress_wake.clear()
            pending, self._pending_progress = self._pending_progress, {}
            if self.client is not None:
                for progress in pending.values():
                    try:
                        resp = await self.client.progress(progress)
                        if resp.status_code == 409:
                            log.warning("progress.stale", job_id=progress.job_id)
                    except httpx.HTTPError as exc:
                        log.debug("progress.failed", job_id=progress.job_id, error=type(exc).__name__)
            await asyncio.sleep(PROGRESS_MIN_INTERVAL_S)

    async def _announce_loop(self) -> None:
        """Ask the server to register this agent, retrying with backoff until it answers."""
        assert self.settings.server and self.settings.registration_key  # nosec B101  # checked by the caller
        key = self.settings.registration_key.get_secret_value()
        name = self.info.name if self.info else self.settings.name or None
        if self.mode == AgentMode.PULL:
            # No URL and no token: the server never calls a pull agent. It describes itself instead.
            if self.info is None:
                self.info = await asyncio.to_thread(self.detect)
            request = AnnounceRequest(mode=AgentMode.PULL, registration_key=key, name=name, info=self.info)
        else:
            token = self.settings.token.get_secret_value() if self.settings.token else ""
            request = AnnounceRequest(url=self.settings.advertised_url(), token=token, registration_key=key,
                                      name=name)
        retrying = AsyncRetrying(retry=retry_if_result(lambda answered: not answered), wait=retry_wait())
        await retrying(self._announce_once, self.settings.server, request)

    async def _announce_once(self, server: str, request: AnnounceRequest) -> bool:
        """Announce this agent once.

        Args:
            server: Server base URL.
            request: The announce message.

        Returns:
            True when done: registered meanwhile, accepted, or refused for good (a 4xx other than 408/429);
            False to try again (server unreachable, 5xx, 408 or 429).
        """
        if self.registration is not None:
            return True
        try:
            resp = await announce(server, request, transport=self.transport)
        except httpx.HTTPError as exc:
            log.warning("announce.unreachable", server=server, error=type(exc).__name__)
            return False
        if resp.is_success:
            log.info("announce.accepted", server=server, status=resp.status_code)
            if self.mode == AgentMode.PULL:
                return await self._adopt_pull_answer(server, resp)
            return True
        if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
            log.error("announce.refused", server=server, status=resp.status_code, detail=resp.text[:200])
            return True
        log.warning("announce.failed", server=server, status=resp.status_code)
        return False

    async def _adopt_pull_answer(self, server: str, resp: httpx.Response) -> bool:
        """Take the registration a pull agent receives in the answer to its announce.

        Returns:
            True when adopted; False (announce again) when the answer carries no usable registration.
        """
        try:
            answer = AnnounceAnswer.model_validate_json(resp.content)
        except ValidationError as exc:
            log.error("announce.answer_unreadable", server=server, error=str(exc)[:300])
            return False
        if answer.registration is None:
            log.error("announce.no_registration", server=server, detail="the server registered this agent in "
                      f"{answer.mode} mode; upgrade the server for pull mode")
            return True
        # The server's address is the one this agent used to announce: it just reached the server there.
        registration = Registration(agent_id=answer.registration.agent_id, server_url=server,
                                    credential=answer.registration.credential)
        await self._adopt(registration)
        if self.info is not None:
            self.info.agent_id = registration.agent_id
            self._pushed_hash = self.info.capabilities_hash()
        log.info("agent.registered", agent_id=registration.agent_id, server=server, mode="pull")
        return True

    # -- pull mode -------------------------------------------------------------------------------------

    def work_request(self, wait_s: float = PULL_WAIT_S) -> WorkRequest | None:
        """The next work request of a pull agent (None before registration); takes the pending refusals."""
        if self.registration is None:
            return None
        active = self.engine.active()
        rejected, self._rejected = self._rejected, []
        return WorkRequest(
            agent_id=self.registration.agent_id,
            activity=self.engine.activity(),
            running_job_id=active.request.job_id if active else None,
            attempt=active.request.attempt if active else None,
            attempt_token=active.request.attempt_token if active else None,
            finished_job_ids=self.engine.finished_job_ids(),
            rejected=rejected,
            wait_s=wait_s,
        )

    async def accept_pulled_job(self, job: JobRequest) -> None:
        """Start a job received in a work answer, or note why not (reported with the next work request).

        Args:
            job: The job.
        """
        errors = await asyncio.to_thread(
            check_job_request, job, self.info, data_dir=self.data_dir, model_dirs=tuple(self.settings.model_dirs),
            policy=self.policy,
        )
        if errors:
            reason = "; ".join(f"{field}: {problem}" for field, problem in errors.items())
            log.warning("pull.job_refused", job_id=job.job_id, reason=reason)
            self._rejected.append(JobRejection(job_id=job.job_id, attempt=job.attempt,
                                               attempt_token=job.attempt_token, reason=reason[:2000]))
            return
        try:
            await asyncio.to_thread(self.engine.submit, job)
        except BusyError as exc:
            self._rejected.append(JobRejection(job_id=job.job_id, attempt=job.attempt,
                                               attempt_token=job.attempt_token, reason=str(exc), busy=True))
            return
        log.info("pull.job_accepted", job_id=job.job_id, attempt=job.attempt)

    async def _pull_loop(self) -> None:
        """Ask the server for work, again and again (a long poll), and act on its answers.

        While the server cannot be reached, the loop backs off like the outbox; results keep waiting in the
        spool, so nothing is lost.
        """
        failures = 0
        wait = retry_wait()
        while True:
            request = self.work_request()
            if request is None or self.client is None:
                await asyncio.sleep(0.5)  # not registered yet: the announce loop is working on it
                continue
            self._pull_wake.clear()
            try:
                answer = await self.client.work(request)
            except httpx.HTTPError as exc:
                self._rejected = request.rejected + self._rejected  # not delivered: send them again
                failures += 1
                delay = wait(_RetryState(failures))
                log.warning("pull.failed", error=describe_error(exc), retry_in_s=round(delay, 1))
                with contextlib.suppress(TimeoutError):  # a heartbeat that gets through ends the wait early
                    await asyncio.wait_for(self._pull_wake.wait(), timeout=delay)
                continue
            failures = 0
            if answer is None:
                self._rejected = request.rejected + self._rejected
                await asyncio.sleep(self.heartbeat_interval_s)
                continue
            for job_id in answer.cancel_job_ids:
                with contextlib.suppress(UnknownJobError, KeyError):
                    await asyncio.to_thread(self.engine.cancel, job_id)
                    log.info("pull.job_cancelled", job_id=job_id)
            if answer.job is not None:
                await self.accept_pulled_job(answer.job)


class _RetryState:
    """The part of tenacity's retry state its wait strategies read (the attempt number)."""

    def __init__(self, attempt_number: int) -> None:
        self.attempt_number = attempt_number
