"""Gray-box runtime: a vLLM server on the agent's host.

Requests go through the same streaming client as the black-box runtime; in addition the server's
Prometheus ``/metrics`` are read before and after every run (server-side TTFT, latency, token counters),
and the host's GPUs are sampled through NVML. Both URLs must be allowed endpoints: loopback always is for this
runtime (a server on the agent's own host), anything else only when the operator allowed it.
"""

from __future__ import annotations

from typing import Any

import httpx

from agent_runtime.egress import CONNECTION_FAILED, EgressRefused
from agent_runtime.logging import get_logger
from agent_runtime.runtimes.base import RunMeasurement, RuntimeFailure
from agent_runtime.runtimes.openai_runtime import OpenAIRuntime
from agent_runtime.telemetry import RunMonitor, nvml_status
from agent_runtime.vllm_metrics import parse_vllm_metrics, vllm_metrics_delta
from common.catalog import VllmParams
from common.metrics import Metric
from common.protocol import AgentInfo, RuntimeCapability

log = get_logger(__name__)


class VllmRuntime(OpenAIRuntime):
    """A local vLLM server via its OpenAI-compatible API plus its ``/metrics`` (gray box)."""

    name = "vllm"
    params: VllmParams  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._monitor: RunMonitor | None = None
        self._before: dict[str, float] | None = None
        self._metrics_problem: str | None = None

    @classmethod
    def capability(cls, info: AgentInfo) -> RuntimeCapability:
        """Client metrics always; host GPU metrics where NVML works."""
        rdef = cls.definition()
        nvml = next((m for m in info.monitoring if m.name == "nvml"), None)
        ok, reason = (nvml.available, nvml.reason) if nvml else nvml_status()
        metrics = list(rdef.metrics)
        unavailable = {
            Metric.MODEL_LOAD_S: "the vLLM server loads the model itself",
            Metric.PEAK_RSS_BYTES: "the model lives in the vLLM server process",
        }
        for m in rdef.gpu_metrics:
            if ok:
                metrics.append(m)
            else:
                unavailable[m] = reason or "NVML unavailable"
        return RuntimeCapability(
            name=cls.name,
            access_mode=rdef.access_mode,
            available=True,
            metrics=metrics,
            unavailable_metrics=unavailable,
        )

    def _metrics_url(self) -> str:
        """The Prometheus endpoint: explicit, or the base URL without ``/v1`` plus ``/metrics``."""
        if self.params.metrics_url:
            return self.params.metrics_url
        return self.params.base_url.rstrip("/").removesuffix("/v1") + "/metrics"

    def endpoint_urls(self) -> list[tuple[str, str]]:
        """The API and the metrics URL (derived from the API's when not given), with their request fields."""
        field = "runtime.params.metrics_url" if self.params.metrics_url else "runtime.params.base_url"
        return [("runtime.params.base_url", self.params.base_url), (field, self._metrics_url())]

    def _scrape(self) -> dict[str, float] | None:
        """Read and parse ``/metrics``; on failure remember why (in fixed words) and return None."""
        try:
            # The engine starts the cold run's measurement before load(): the client may not be open yet.
            resp = self._http().get(self._metrics_url(), headers=self._headers())
        except (EgressRefused, RuntimeFailure) as exc:
            self._metrics_problem = f"server metrics not read: {exc}"
            return None
        except httpx.HTTPError:
            self._metrics_problem = f"server metrics not read: {CONNECTION_FAILED}"
            return None
        if resp.status_code != 200:
            self._metrics_problem = f"server metrics not read: the metrics URL answered HTTP {resp.status_code}"
            return None
        try:
            return parse_vllm_metrics(resp.text)
        except (ValueError, TypeError, IndexError):
            # The parser's messages quote the offending line: what the endpoint sent is not repeated.
            self._metrics_problem = "server metrics not read: the answer is not Prometheus text"
            return None

    def start_run(self, cold: bool) -> None:
        """Scrape ``/metrics`` and start GPU sampling."""
        self._metrics_problem = None
        self._before = self._scrape()
        self._monitor = RunMonitor(gpu=True, gpu_memory=True, interval_s=self.telemetry_interval_s)
        self._monitor.start()

    def finish_run(self) -> RunMeasurement:
        """Stop sampling, scrape ``/metrics`` again and add the server-side deltas."""
        assert self._monitor is not None  # nosec B101  # narrowing: start() set it
        report = self._monitor.stop()
        metrics = {k: v for k, v in report.metrics.items() if k != Metric.PEAK_RSS_BYTES}
        out = RunMeasurement(metrics, dict(report.unavailable), report.series)
        after = self._scrape() if self._before is not None else None
        if self._before is not None and after is not None:
            out.metrics.update(vllm_metrics_delta(self._before, after))
        else:
            out.unavailable["server_metrics"] = self._metrics_problem or "server metrics unavailable"
            log.warning("vllm.metrics.unavailable", reason=out.unavailable["server_metrics"])
        return out
