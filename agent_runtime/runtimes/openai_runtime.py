"""Black-box runtime: any OpenAI-compatible endpoint, streamed over HTTP (Server-Sent Events).

Token counts come from the final usage chunk (``stream_options.include_usage``); an endpoint that sends
no usage gets its output tokens counted as non-empty streamed chunks, and the run says so in its notes.
API keys are read from the agent's own environment variable named by ``api_key_env``, which the operator must
have allowed; they are never stored, logged or sent anywhere but to the endpoint. The endpoint must be one the
operator allowed (:mod:`agent_runtime.egress`): requests go through a client pinned to the checked address that
follows no redirect, and errors carry the status code or a fixed message, never what the endpoint sent.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import httpx

from agent_runtime.egress import CONNECTION_FAILED, EgressRefused, async_pinned_client, pinned_client
from agent_runtime.runtimes.base import Generation, RequestError, Runtime, RuntimeFailure, StopCheck
from agent_runtime.tasks.base import GenerationSettings, Sample, Task
from common.catalog import OpenAIParams
from common.metrics import Metric
from common.protocol import AgentInfo, PromptSpec, RuntimeCapability

if TYPE_CHECKING:
    from agent_runtime.load.generator import LoadPrompt, LoadTarget

#: Note recorded when the endpoint sends no usage chunk.
CHUNK_COUNT_NOTE = "the endpoint sent no usage: output_tokens counts non-empty streamed chunks"
#: Error of a stream line that is not a JSON object (what it held is not repeated).
MALFORMED_CHUNK = "the endpoint sent a malformed stream chunk"


def check_status(resp: httpx.Response) -> None:
    """Refuse anything but a 2xx answer, by its status code alone (the body is not read).

    Args:
        resp: The endpoint's response.

    Raises:
        RequestError: A redirect (never followed) or an error status.
    """
    if 300 <= resp.status_code < 400:
        raise RequestError(f"endpoint answered HTTP {resp.status_code}; redirects are not followed")
    if not resp.is_success:
        raise RequestError(f"endpoint answered HTTP {resp.status_code}")


def _chunk(data: str) -> dict[str, Any]:
    """One streamed chunk as a JSON object.

    Raises:
        RequestError: Not a JSON object.
    """
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise RequestError(MALFORMED_CHUNK) from exc
    if not isinstance(chunk, dict):
        raise RequestError(MALFORMED_CHUNK)
    return chunk


def _count(value: Any) -> int | None:
    """A token count from the endpoint's usage, or None when it is not a non-negative integer."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


class StreamStep(NamedTuple):
    """What one streamed chunk carries, read the same way by sequential runs and the load generator.

    Attributes:
        text: The text of its choices (``delta.content`` of chat, ``text`` of completions), "" when none.
        has_choice: It carries a choice, with or without text: the final (EOS) step of vLLM and other servers is a
            choice without text, and a request lasts until it (``vllm bench serve``'s latency ends there too).
        usage: Its ``usage`` object (the final usage chunk of ``stream_options.include_usage``), else None.
        finish_reason: The last non-empty ``finish_reason`` of its choices, else None.
    """

    text: str
    has_choice: bool
    usage: dict[str, Any] | None
    finish_reason: str | None


def read_chunk(data: str) -> StreamStep:
    """Read one Server-Sent Events ``data:`` payload of an OpenAI-compatible stream.

    Args:
        data: The payload (after ``data:``; not ``[DONE]``).

    Returns:
        Its text, whether it carries a choice, its usage and finish reason.

    Raises:
        RequestError: The payload is not a JSON object, or its choices are malformed (what it held is not repeated).
    """
    chunk = _chunk(data)
    usage = chunk.get("usage") if isinstance(chunk.get("usage"), dict) else None
    choices = chunk.get("choices") or []
    if not isinstance(choices, list):
        raise RequestError(MALFORMED_CHUNK)
    parts: list[str] = []
    finish: str | None = None
    for choice in choices:
        if not isinstance(choice, dict):
            raise RequestError(MALFORMED_CHUNK)
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        content = delta.get("content") or choice.get("text") or ""
        if content and isinstance(content, str):
            parts.append(content)
        reason = choice.get("finish_reason")
        finish = reason if isinstance(reason, str) and reason else finish
    return StreamStep("".join(parts), bool(choices), usage, finish)


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
            load_modes=list(cls.load_modes),
        )

    def api_base(self) -> str:
        """The OpenAI-compatible API base URL the requests go to."""
        return self.params.base_url

    def model_id(self) -> str:
        """The model name sent in each request."""
        return self.params.served_model or self.request.model.name

    def endpoint_urls(self) -> list[tuple[str, str]]:
        """The URLs this runtime will call, each with the request field it comes from."""
        return [("runtime.params.base_url", self.api_base())]

    def check(self) -> dict[str, str]:
        """The key variable must be one the operator allowed (and set), every endpoint one the operator allowed."""
        errors: dict[str, str] = {}
        env = self.params.api_key_env
        if env:
            problem = self.policy.key_envs.problem(env)
            if problem is not None:
                errors["runtime.params.api_key_env"] = problem
        for field, url in self.endpoint_urls():
            try:
                self.policy.endpoints.check(url, self.name, field=field)
            except EgressRefused as exc:
                errors.setdefault(exc.field, exc.problem)
        return errors

    def _headers(self) -> dict[str, str]:
        """Request headers, with the API key read from its allowed variable at call time.

        Raises:
            RuntimeFailure: The variable is not allowed or not set (any more).
        """
        headers = {"Accept": "text/event-stream"}
        env = self.params.api_key_env
        if env:
            try:
                headers["Authorization"] = f"Bearer {self.policy.key_envs.read(env)}"
            except EgressRefused as exc:
                raise RuntimeFailure(str(exc)) from exc
        return headers

    def _http(self) -> httpx.Client:
        """The HTTP client (pinned to checked addresses), opened on first use."""
        if self._client is None:
            self._client = pinned_client(
                self.policy.endpoints,
                self.name,
                timeout=httpx.Timeout(self.params.timeout_s, connect=min(10.0, self.params.timeout_s)),
                secrets=self.policy.secrets,
            )
        return self._client

    def load(self) -> None:
        """Open the HTTP client; the endpoint owns the model, so there is no load to time."""
        self._http()

    def model_load_unavailable_reason(self) -> str | None:
        """The endpoint loads the model, out of the agent's sight."""
        return f"the {self.name} endpoint loads the model itself; the agent cannot time it"

    def _url_and_body(self, task: Task, sample: Sample, settings: GenerationSettings) -> tuple[str, dict]:
        """Build the endpoint URL and request body."""
        base = self.api_base().rstrip("/")
        body: dict[str, Any] = {
            "model": self.model_id(),
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
        client = self._http()
        url, body = self._url_and_body(task, sample, settings)
        headers = self._headers()
        parts: list[str] = []
        times: list[float] = []
        # Time of the latest chunk carrying a choice, with or without text: the final (EOS) step of vLLM and other
        # OpenAI-compatible servers is a chunk without text, and the request lasts until it (vllm bench serve's
        # latency ends there too).
        last_step: float | None = None
        usage: dict[str, Any] | None = None
        finish: str | None = None
        stopped = False
        sent_at = time.time()
        sent = time.perf_counter()
        try:
            with client.stream("POST", url, json=body, headers=headers) as resp:
                check_status(resp)
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue  # SSE comments, event names and keep-alives
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    now = time.perf_counter()
                    step = read_chunk(data)
                    if step.usage is not None:
                        usage = step.usage
                    if step.has_choice and times:
                        last_step = now
                    if step.text:
                        parts.append(step.text)
                        times.append(now)
                    finish = step.finish_reason or finish
                    if should_stop():
                        stopped = True
                        break
        except EgressRefused as exc:
            raise RuntimeFailure(str(exc)) from exc
        except httpx.HTTPError as exc:
            # One message for every way the connection fails: nothing about the far side leaks into results.
            raise RequestError(CONNECTION_FAILED) from exc
        notes: list[str] = []
        output_tokens = _count(usage.get("completion_tokens")) if usage else None
        prompt_tokens = _count(usage.get("prompt_tokens")) if usage and output_tokens is not None else None
        if output_tokens is None:
            output_tokens = len(times)
            notes.append(CHUNK_COUNT_NOTE)
        return Generation(
            text="".join(parts).strip(),
            prompt_tokens=prompt_tokens,
            output_tokens=output_tokens,
            sent_at=sent_at,
            sent=sent,
            first_token=times[0] if times else None,
            chunk_times=times,
            last_step=last_step if times and last_step is not None and last_step > times[-1] else None,
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
        try:
            return {"base_url": self.api_base(), "served_model": self.model_id()}
        except RuntimeFailure:  # a gray-box job whose server is gone: nothing to describe
            return {"base_url": None, "served_model": None}

    # -- serving under load ----------------------------------------------------------------------------

    #: Load sweeps this runtime can run (``RuntimeCapability.load_modes``): streaming requests to the endpoint.
    load_modes: ClassVar[tuple[str, ...]] = ("concurrency", "request_rate")
    #: Whether the endpoint is known to honour ``ignore_eos`` (vLLM's and llama.cpp's servers do; a black-box
    #: endpoint may ignore the field or refuse it).
    honours_ignore_eos: ClassVar[bool] = False

    def load_target(self, prompts: PromptSpec) -> LoadTarget:
        """Where and how the load generator sends a sweep's requests: the URL, headers and body of :meth:`generate`.

        Same endpoint (chat or completions), model id and key header as a sequential run; every request streams
        with usage, asks for ``prompt.output_tokens`` tokens at temperature 0 and, when the prompts want it,
        ``ignore_eos``.

        Args:
            prompts: The sweep's prompt spec (whether requests ask to ignore EOS).

        Returns:
            The target.

        Raises:
            RuntimeFailure: The key variable is not allowed or not set, or no local server serves the model.
        """
        from agent_runtime.load.generator import LoadTarget  # lazy: the generator imports this module (read_chunk)

        base = self.api_base().rstrip("/")
        completions = getattr(self.params, "endpoint", "chat") == "completions"
        url = f"{base}/completions" if completions else f"{base}/chat/completions"
        model = self.model_id()
        ignore_eos = prompts.wants_ignore_eos()

        def build_body(prompt: LoadPrompt) -> dict[str, Any]:
            """The body of one request for ``prompt``."""
            body: dict[str, Any] = {
                "model": model,
                "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": prompt.output_tokens,
                "temperature": 0.0,
            }
            if ignore_eos:
                body["ignore_eos"] = True
            if completions:
                body["prompt"] = prompt.text if prompt.text is not None else _flatten(prompt.messages or [])
            else:
                body["messages"] = (
                    prompt.messages if prompt.messages is not None else [{"role": "user", "content": prompt.text}]
                )
            return body

        return LoadTarget(url=url, headers=self._headers(), build_body=build_body)

    def load_notes(self, prompts: PromptSpec) -> list[str]:
        """Caveats every load point of this runtime carries.

        Args:
            prompts: The sweep's prompt spec.

        Returns:
            Notes for ``LoadPointRun.notes``.
        """
        notes = ["black-box endpoint: the serving host's power and energy are out of the agent's sight"]
        if prompts.wants_ignore_eos() and not self.honours_ignore_eos:
            notes.append(
                "ignore_eos was asked for, but a black-box endpoint may ignore it (or refuse the request): "
                "outputs may stop at EOS before output_tokens"
            )
        return notes

    def load_client(self, request_timeout_s: float) -> httpx.AsyncClient:
        """The generator's asynchronous client: pinned to checked addresses like :meth:`_http`, no redirects.

        Its innermost transport keeps one connection per lane of the generator (:class:`LaneTransport`).

        Args:
            request_timeout_s: The sweep's per-request timeout (also the longest wait for one chunk).

        Returns:
            A new client; the caller closes it.
        """
        from agent_runtime.load.generator import LaneTransport  # lazy: the generator imports this module (read_chunk)

        return async_pinned_client(
            self.policy.endpoints,
            self.name,
            # No pool timeout: at a high load point requests wait for a connection as long as they must.
            timeout=httpx.Timeout(request_timeout_s, connect=min(10.0, request_timeout_s), pool=None),
            secrets=self.policy.secrets,
            # Each of the generator's lanes (a worker, an open-loop slot) keeps a connection of its own: the cost of
            # a request stays flat however many are in flight.
            inner=LaneTransport(),
        )


def _flatten(messages: list[dict[str, Any]]) -> str:
    """Chat messages as one plain-text prompt (as :meth:`Task.prompt_text` flattens them)."""
    return "\n\n".join(str(m.get("content", "")) for m in messages) + "\n\n"
