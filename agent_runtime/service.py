"""The agent's long-lived state and background tasks (heartbeat, outbox, progress, announce).

:class:`AgentService` is owned by the FastAPI lifespan: it starts the background tasks at startup and
cancels them at shutdown. Engine events arrive from the worker thread and are handed to the event loop
with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx

from agent_runtime.constants import (
    PROGRESS_MIN_INTERVAL_S,
    SETTLE_PROBE_WAIT_S,
    SHUTDOWN_JOB_GRACE_S,
    STARTUP_PROBE_WAIT_S,
)
from agent_runtime.engine import JobEngine
from agent_runtime.info import gather_agent_info
from agent_runtime.logging import get_logger
from agent_runtime.paths import spool_dir
from agent_runtime.server_client import (
    Backoff,
    Delivery,
    Registration,
    ServerClient,
    announce,
    load_registration,
    save_registration,
)
from agent_runtime.settings import Settings
from agent_runtime.spool import Spool
from common.protocol import AgentInfo, AnnounceRequest, Heartbeat, JobProgress, RegisterRequest

log = get_logger(__name__)


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
        self.engine = JobEngine(
            self.spool,
            data_dir=self.data_dir,
            model_dirs=tuple(settings.model_dirs),
            info_provider=lambda: self.info,
            listener=self,
            telemetry_interval_s=settings.telemetry_interval_s,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox_wake = asyncio.Event()
        self._progress_wake = asyncio.Event()
        self._pending_progress: dict[str, JobProgress] = {}
        self._pushed_hash: str | None = None
        self._tasks: list[asyncio.Task] = []

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
        try:
            from agent_runtime.detection import probes_pending, wait_for_pending_probes
        except ImportError:
            return None
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
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._outbox_loop(), name="outbox"),
            asyncio.create_task(self._progress_loop(), name="progress"),
            asyncio.create_task(self._refresh_loop(), name="capabilities"),
            # A torch import slower even than the start-up wait would leave the white-box runtimes
            # unavailable until the next refresh: detect again as soon as it is done.
            asyncio.create_task(self._settle_detection(), name="settle-detection"),
        ]
        if self.settings.server and self.settings.registration_key and self.registration is None:
            self._tasks.append(asyncio.create_task(self._announce_loop(), name="announce"))
        log.info(
            "agent.started",
            name=self.info.name,
            registered=self.registration is not None,
            url=self.settings.advertised_url(),
        )

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

        Args:
            request: The server's URL, this agent's id and credential.

        Returns:
            The full description, with ``agent_id`` set.
        """
        registration = Registration(
            agent_id=request.agent_id,
            server_url=request.server_url.rstrip("/"),
            credential=request.credential,
        )
        await asyncio.to_thread(save_registration, self.data_dir, registration)
        old = self.client
        self.registration = registration
        self.client = ServerClient(registration, transport=self.transport)
        if old is not None:
            await old.aclose()
        if self.info is None:
            self.info = await asyncio.to_thread(self.detect)
        self.info.agent_id = request.agent_id
        self._pushed_hash = self.info.capabilities_hash()
        self._outbox_wake.set()
        log.info("agent.registered", agent_id=request.agent_id, server=registration.server_url)
        return self.info

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
                    # Push on a local change, and when the server says its copy is stale (e.g. it missed
                    # an earlier push).
                    server_stale = answer is not None and answer.refresh_capabilities
                    if self.info is not None and (hb.capabilities_hash != self._pushed_hash or server_stale):
                        cap = await self.client.capabilities(self.info)
                        if cap.is_success:
                            self._pushed_hash = hb.capabilities_hash
                except httpx.HTTPError as exc:
                    log.warning("heartbeat.failed", error=type(exc).__name__)
            await asyncio.sleep(self.settings.heartbeat_interval_s)

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

    async def _outbox_loop(self) -> None:
        """Deliver finished results until the server acknowledges them (exponential backoff per job)."""
        backoffs: dict[str, Backoff] = {}
        due: dict[str, float] = {}
        while True:
            self._outbox_wake.clear()
            wait = 5.0
            if self.client is not None:
                for job_id in self.engine.finished_job_ids():
                    now = time.monotonic()
                    if due.get(job_id, 0.0) > now:
                        wait = min(wait, due[job_id] - now)
                        continue
                    try:
                        record = self.engine.get(job_id)
                    except KeyError:
                        continue
                    if record.result is None:
                        continue
                    outcome = await self.client.result(record.result)
                    if outcome is Delivery.RETRY:
                        delay = backoffs.setdefault(job_id, Backoff()).next_delay()
                        due[job_id] = time.monotonic() + delay
                        wait = min(wait, delay)
                        continue
                    if outcome is Delivery.STALE:
                        log.warning(
                            "outbox.dropped_stale",
                            job_id=job_id,
                            reason="server answered 409: not the current attempt",
                        )
                    else:
                        log.info("outbox.delivered", job_id=job_id)
                    backoffs.pop(job_id, None)
                    due.pop(job_id, None)
                    with contextlib.suppress(KeyError, RuntimeError):
                        await asyncio.to_thread(self.engine.ack, job_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox_wake.wait(), timeout=max(0.05, wait))

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
        assert self.settings.server and self.settings.registration_key
        token = self.settings.token.get_secret_value() if self.settings.token else ""
        request = AnnounceRequest(
            url=self.settings.advertised_url(),
            token=token,
            registration_key=self.settings.registration_key.get_secret_value(),
            name=self.info.name if self.info else self.settings.name or None,
        )
        backoff = Backoff()
        while self.registration is None:
            try:
                resp = await announce(self.settings.server, request, transport=self.transport)
            except httpx.HTTPError as exc:
                log.warning("announce.unreachable", server=self.settings.server, error=type(exc).__name__)
            else:
                if resp.is_success:
                    log.info("announce.accepted", server=self.settings.server, status=resp.status_code)
                    return
                if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
                    log.error(
                        "announce.refused",
                        server=self.settings.server,
                        status=resp.status_code,
                        detail=resp.text[:200],
                    )
                    return
                log.warning("announce.failed", server=self.settings.server, status=resp.status_code)
            await asyncio.sleep(backoff.next_delay())
