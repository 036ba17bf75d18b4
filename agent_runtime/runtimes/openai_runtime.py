"""Black-box runtime: any OpenAI-compatible endpoint, streamed over HTTP (Server-Sent Events).

Token counts come from the final usage chunk (``stream_options.include_usage``); an endpoint that sends
no usage gets its output tokens counted as non-empty streamed chunks, and the run says so in its notes.
API keys are read from the agent's own environment variable named by ``api_key_env``; they are never
stored, logged or sent anywhere but to the endpoint.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx

from agent_runtime.runtimes.base import Generation, RequestError, Runtime, StopCheck
from agent_runtime.tasks.base import GenerationSettings, Sample, Task
from common.catalog import OpenAIParams
from common.metrics import Metric
from common.protocol import AgentInfo, RuntimeCapability

#: Note recorded when the endpoint sends no usage chunk.
CHUNK_COUNT_NOTE = "the endpoint sent no usage: output_tokens counts non-empty streamed chunks"


class OpenAIRuntime(Runtime):
    """Client-side measurement of an OpenAI-compatible endpoint (black box)."""

    name = "openai"
    params: OpenAIParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: httpx.Client | None = None

    @classmethod
    def capability(cls, info: AgentInfo) -> RuntimeCapability:
        """Always available (HTTP only); host metrics are out of reach for a remote endpoint."""
        rdef = cls.definition()
        reason = "black-box endpoint: the agent does not see the serving host"
        return RuntimeCapability(
            name=cls.name,
            access_mode=rdef.access_mode,
            available=True,
            metrics=list(rdef.metrics),
            unavailable_metrics={
                Metric.MODEL_LOAD_S: reason,
                Metric.PEAK_RSS_BYTES: reason,
                Metric.PEAK_GPU_MEMORY_BYTES: reason,
                Metric.GPU_UTILIZATION_PCT: reason,
                Metric.GPU_POWER_W: reason,
                Metric.ENERGY_J: reason,
            },
        )

    def check(self) -> dict[str, str]:
        """The API key variable, when named, must be set in the agent's environment."""
        env = self.params.api_key_env
        if env and not os.environ.get(env):
            return {"runtime.params.api_key_env": f"environment variable {env!r} is not set on this agent"}
        return {}

    def _headers(self) -> dict[str, str]:
        """Request headers, with the API key read from the environment at call time."""
        headers = {"Accept": "text/event-stream"}
        env = self.params.api_key_env
        if env and os.environ.get(env):
            headers["Authorization"] = f"Bearer {os.environ[env]}"
        return headers

    def load(self) -> None:
        """Open the HTTP client; the endpoint owns the model, so there is no load to time."""
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.params.timeout_s, connect=min(10.0, self.params.timeout_s))
        )

    def model_load_unavailable_reason(self) -> str | None:
        """The endpoint loads the model, out of the agent's sight."""
        return f"the {self.name} endpoint loads the model itself; the agent cannot time it"

    def _url_and_body(self, task: Task, sample: Sample, settings: GenerationSettings) -> tuple[str, dict]:
        """Build the endpoint URL and request body."""
        base = self.params.base_url.rstrip("/")
        body: dict[str, Any] = {
            "model": self.params.served_model or self.request.model.name,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
        }
        if getattr(self.params, "endpoint", "chat") == "completions":
            body["prompt"] = task.prompt_text(sample)
            return f"{base}/completions", body
        body["messages"] = task.messages(sample)
        return f"{base}/chat/completions", body

    def generate(self, task: Task, sample: Sample, settings: GenerationSettings, should_stop: StopCheck) -> Generation:
        """Stream one completion and time every non-empty chunk."""
        assert self._client is not None, "load() must run before generate()"
        url, body = self._url_and_body(task, sample, settings)
        parts: list[str] = []
        times: list[float] = []
        usage: dict[str, Any] | None = None
        finish: str | None = None
        stopped = False
        sent_at = time.time()
        sent = time.perf_counter()
        try:
            with self._client.stream("POST", url, json=body, headers=self._headers()) as resp:
                if resp.status_code >= 400:
                    detail = resp.read().decode(errors="replace")[:300]
                    raise RequestError(f"endpoint answered HTTP {resp.status_code}: {detail}")
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue  # SSE comments, event names and keep-alives
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    now = time.perf_counter()
                    try:
                        chunk = json.loads(data)
                    except json.JSONDecodeError as exc:
                        raise RequestError(f"endpoint sent a malformed stream chunk: {data[:120]!r}") from exc
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or []:
                        content = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                        if content:
                            parts.append(content)
                            times.append(now)
                        finish = choice.get("finish_reason") or finish
                    if should_stop():
                        stopped = True
                        break
        except httpx.HTTPError as exc:
            raise RequestError(f"request to {url} failed: {type(exc).__name__}: {exc}") from exc
        notes: list[str] = []
        if usage and usage.get("completion_tokens") is not None:
            output_tokens: int | None = int(usage["completion_tokens"])
            prompt_tokens = usage.get("prompt_tokens")
        else:
            output_tokens = len(times)
            prompt_tokens = None
            notes.append(CHUNK_COUNT_NOTE)
        return Generation(
            text="".join(parts).strip(),
            prompt_tokens=int(prompt_tokens) if prompt_tokens is not None else None,
            output_tokens=output_tokens,
            sent_at=sent_at,
            sent=sent,
            first_token=times[0] if times else None,
            chunk_times=times,
            finish_reason="cancelled" if stopped else finish,
            stopped=stopped,
            notes=notes,
        )

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def describe(self) -> dict[str, Any]:
        """The endpoint (never the key)."""
        return {
            "base_url": self.params.base_url,
            "served_model": self.params.served_model or self.request.model.name,
        }
