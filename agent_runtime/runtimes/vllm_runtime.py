"""Gray-box runtime: a vLLM server on the agent's host (its OpenAI-compatible API and its ``/metrics``).

Everything but the names of vLLM's Prometheus metrics is common to gray-box runtimes
(:class:`~agent_runtime.runtimes.server_runtime.ServerRuntime`). The client's figures follow the definitions of
``vllm bench serve``: a request ends at its last generation step (the EOS chunk included), and TPOT divides by the
server's own output-token count. For synthetic load prompts the server's ``/tokenize`` and ``/detokenize``
measure prompt lengths in the served model's own tokens (:class:`ServerTokenizer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from agent_runtime.egress import CONNECTION_FAILED, EgressRefused
from agent_runtime.logging import get_logger
from agent_runtime.runtimes.base import RequestError, RuntimeFailure
from agent_runtime.runtimes.openai_runtime import check_status
from agent_runtime.runtimes.server_runtime import ServerRuntime
from agent_runtime.vllm_metrics import parse_vllm_metrics, vllm_metrics_delta
from common.metrics import SERVER_FIGURES

log = get_logger(__name__)


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

    def server_tokenizer(self) -> ServerTokenizer | None:
        """The served model's tokenizer through the server's ``/tokenize`` and ``/detokenize`` (synthetic prompts).

        Returns:
            The tokenizer, or None when the server does not answer them (then prompts are approximate).
        """
        tokenizer = ServerTokenizer(self._http(), self.api_base().rstrip("/").removesuffix("/v1"), self.model_id(),
                                    self._headers())
        try:
            tokenizer.encode("hello")
        except (RequestError, RuntimeFailure, EgressRefused) as exc:
            log.info("vllm.tokenize.unavailable", reason=str(exc))
            return None
        return tokenizer


class ServerTokenizer:
    """A vLLM server's tokenizer, through its ``POST /tokenize`` and ``POST /detokenize``.

    Args:
        client: The runtime's pinned HTTP client.
        root: The server's root URL (without ``/v1``).
        model: The served model's name.
        headers: The runtime's request headers (its key).
    """

    def __init__(self, client: httpx.Client, root: str, model: str, headers: dict[str, str]) -> None:
        self.client = client
        self.root = root
        self.model = model
        self.headers = {k: v for k, v in headers.items() if k.lower() != "accept"}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One call; only its status code and the expected field are read.

        Raises:
            RequestError: No answer, an error status, or not the expected JSON.
        """
        try:
            resp = self.client.post(f"{self.root}{path}", json={"model": self.model, **body}, headers=self.headers)
        except httpx.HTTPError as exc:
            raise RequestError(CONNECTION_FAILED) from exc
        check_status(resp)
        try:
            data = resp.json()
        except ValueError:
            raise RequestError(f"{path} did not answer JSON") from None
        if not isinstance(data, dict):
            raise RequestError(f"{path} did not answer a JSON object")
        return data

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens."""
        tokens = self._post("/tokenize", {"prompt": text, "add_special_tokens": False}).get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
            raise RequestError("/tokenize did not answer a list of token ids")
        return tokens

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``."""
        text = self._post("/detokenize", {"tokens": list(ids)}).get("prompt")
        if not isinstance(text, str):
            raise RequestError("/detokenize did not answer a prompt string")
        return text

    def candidate_ids(self) -> None:
        """The server does not list its vocabulary: ids come from encoding plain words."""
        return None
