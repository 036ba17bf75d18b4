"""Gray-box runtime: a llama.cpp server on the agent's host (``llama-server``, ``python -m llama_cpp.server``, Ollama).

Everything but the server's own figures is common to gray-box runtimes
(:class:`~agent_runtime.runtimes.server_runtime.ServerRuntime`). llama.cpp's ``/metrics`` (``llama-server
--metrics``) holds counters without a request count, so the runtime counts the requests of each run itself and
hands that count to :func:`~agent_runtime.llamacpp_metrics.llamacpp_interval`, which needs it for the
per-request figures. Servers without ``/metrics`` (llama-cpp-python's server, Ollama, ``llama-server`` without
``--metrics``) give the client's figures, and the run says why the server's are missing.
"""

from __future__ import annotations

from typing import Any

from agent_runtime.llamacpp_metrics import LLAMACPP_SERVER_FIGURES, llamacpp_interval, parse_llamacpp_metrics
from agent_runtime.runtimes.base import Generation, RunMeasurement, StopCheck
from agent_runtime.runtimes.server_runtime import ServerRuntime
from agent_runtime.tasks.base import GenerationSettings, Sample, Task


class LlamaCppServerRuntime(ServerRuntime):
    """A local llama.cpp server via its OpenAI-compatible API plus, where it has one, its ``/metrics`` (gray box)."""

    name = "llamacpp_server"
    label = "llama.cpp"
    server_metrics = LLAMACPP_SERVER_FIGURES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._requests = 0
        self._interval_unavailable: dict[str, str] = {}

    def parse_metrics(self, text: str) -> dict[str, float]:
        """Flatten one scrape of llama.cpp's ``/metrics``."""
        return parse_llamacpp_metrics(text)

    def metrics_delta(self, before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """The server's figures over the run; the run's request count makes the per-request ones possible."""
        interval = llamacpp_interval(before, after, self._requests)
        self._interval_unavailable = interval.unavailable
        return interval.metrics

    def start_run(self, cold: bool) -> None:
        """Reset the run's request count, then scrape and start sampling."""
        self._requests = 0
        self._interval_unavailable = {}
        super().start_run(cold)

    def generate(self, task: Task, sample: Sample, settings: GenerationSettings, should_stop: StopCheck) -> Generation:
        """Stream one completion; a request that got an answer counts towards the run's requests."""
        gen = super().generate(task, sample, settings, should_stop)
        # The server counts a request's tokens when the request ends, cancelled or not: so does the count.
        self._requests += 1
        return gen

    def finish_run(self) -> RunMeasurement:
        """The common end of a run, plus why each server figure the scrapes could not support is missing."""
        out = super().finish_run()
        for name, reason in self._interval_unavailable.items():
            if name not in out.metrics:
                out.unavailable.setdefault(name, reason)
        return out
