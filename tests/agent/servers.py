"""Run ASGI apps on loopback with uvicorn in a thread, and a tiny fake RUCKUS server."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import uvicorn
from fastapi import BackgroundTasks, FastAPI, Request, Response

from tests.helpers import free_port, wait_for


class UvicornThread:
    """A real uvicorn server on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        wait_for(lambda: self.server.started, 30, 0.02, what=f"uvicorn to serve on port {self.port}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


class FakeServer:
    """Just enough of the RUCKUS server's agent endpoints to exercise the agent's client.

    Attributes:
        calls: ``(endpoint, authorization header, json body)`` in arrival order.
        result_statuses: Statuses answered to successive result posts (the last one repeats).
        refresh_capabilities: What heartbeat answers say about the stored capabilities being stale.
    """

    def __init__(self, credential: str = "server-issued-credential-0001", agent_id: str = "agent-1") -> None:
        self.credential = credential
        self.agent_id = agent_id
        self.calls: list[tuple[str, str | None, dict]] = []
        self.result_statuses = [200]
        self.refresh_capabilities = False
        self.registered_info: dict | None = None
        #: Answers of successive work requests of a pull agent (then: nothing to do, at once).
        self.work_answers: list[dict] = []
        self.app = self._build()

    def of(self, endpoint: str) -> list[dict]:
        """Bodies received on an endpoint."""
        return [body for name, _, body in self.calls if name == endpoint]

    def _build(self) -> FastAPI:
        app = FastAPI()
        fake = self

        async def _register_back(url: str, token: str, server_url: str) -> None:
            async with httpx.AsyncClient() as client:
                resp = await client.post(
                    f"{url}/api/v1/register",
                    json={"agent_id": fake.agent_id, "server_url": server_url, "credential": fake.credential},
                    headers={"Authorization": f"Bearer {token}"},
                )
                resp.raise_for_status()
                fake.registered_info = resp.json()

        @app.post("/api/v1/agents/announce/", status_code=202)
        async def announce(request: Request, background: BackgroundTasks) -> dict:
            body = await request.json()
            fake.calls.append(("announce", request.headers.get("authorization"), body))
            if body.get("mode") == "pull":
                fake.registered_info = body["info"]
                return {"agent_id": fake.agent_id, "mode": "pull", "status": "online", "registration": {
                    "agent_id": fake.agent_id, "server_url": "http://ignored.invalid", "credential": fake.credential}}
            background.add_task(_register_back, body["url"], body["token"], str(request.base_url).rstrip("/"))
            return {"status": "accepted"}

        @app.post("/api/v1/agents/{agent_id}/reach/")
        async def reach(agent_id: str, request: Request) -> Response:
            body = await request.json()
            fake.calls.append(("reach", request.headers.get("authorization"), body))
            if body.get("challenge") != "challenge-ok":
                return Response(status_code=403, content=b'{"detail": "invalid challenge"}')
            return Response(content=f'{{"agent_id": "{agent_id}"}}'.encode(), media_type="application/json")

        @app.post("/api/v1/agents/{agent_id}/work/")
        async def work(agent_id: str, request: Request) -> dict:
            fake.calls.append(("work", request.headers.get("authorization"), await request.json()))
            if fake.work_answers:
                return fake.work_answers.pop(0)
            await asyncio.sleep(0.05)  # a short hold: the agent asks again at once
            return {"status": "online", "job": None, "cancel_job_ids": []}

        @app.post("/api/v1/agents/{agent_id}/heartbeat/")
        async def heartbeat(agent_id: str, request: Request) -> dict:
            fake.calls.append(("heartbeat", request.headers.get("authorization"), await request.json()))
            return {"status": "online", "refresh_capabilities": fake.refresh_capabilities}

        @app.post("/api/v1/agents/{agent_id}/capabilities/")
        async def capabilities(agent_id: str, request: Request) -> dict:
            fake.calls.append(("capabilities", request.headers.get("authorization"), await request.json()))
            return {"ok": True}

        @app.post("/api/v1/jobs/{job_id}/progress/")
        async def progress(job_id: str, request: Request) -> dict:
            fake.calls.append(("progress", request.headers.get("authorization"), await request.json()))
            return {"ok": True}

        @app.post("/api/v1/jobs/{job_id}/result/")
        async def result(job_id: str, request: Request) -> Response:
            fake.calls.append(("result", request.headers.get("authorization"), await request.json()))
            code = fake.result_statuses.pop(0) if len(fake.result_statuses) > 1 else fake.result_statuses[0]
            return Response(status_code=code, content=b'{"detail": "x"}', media_type="application/json")

        return app
