"""Gray-box runtime: a vLLM server on the agent's host (its OpenAI-compatible API and its ``/metrics``).

Everything but the names of vLLM's Prometheus metrics is common to gray-box runtimes
(:class:`~agent_runtime.runtimes.server_runtime.ServerRuntime`). The client's figures follow the definitions of
``vllm bench serve``: a request ends at its last generation step (the EOS chunk included), and TPOT divides by the
server's own output-token count.
"""

from __future__ import annotations

from agent_runtime.runtimes.server_runtime import ServerRuntime
from agent_runtime.vllm_metrics import parse_vllm_metrics, vllm_metrics_delta
from common.metrics import SERVER_FIGURES


class VllmRuntime(ServerRuntime):
    """A local vLLM server via its OpenAI-compatible API plus its ``/metrics`` (gray box)."""

    name = "vllm"
    label = "vLLM"
    server_metrics = tuple(SERVER_FIGURES)

    def parse_metrics(self, text: str) -> dict[str, float]:
        """Flatten a scrape with vLLM's names (V0 and V1 engines)."""
        return parse_vllm_metrics(text)

    def metrics_delta(self, before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """Histogram means and counter increases of vLLM over the run."""
        return vllm_metrics_delta(before, after)
