"""Gray-box runtimes: an inference server on the agent's host, read through its API and its Prometheus metrics.

Requests go through the same streaming client as the black-box runtime (:class:`OpenAIRuntime`); in addition the
server's ``/metrics`` are scraped before and after every run, and the difference is the server's own view of the
run (its TTFT, latency and per-token histograms, its token counters), reported next to the client's figures under
``server_*`` names. The host's GPUs are sampled through NVML.

Which server: a job names one (``runtime.params.base_url``) or leaves it out, and the agent picks the local server
(:mod:`agent_runtime.local_servers`) of this runtime that serves the job's model. The runtime is advertised as
available only while one of its servers answers, with the models they serve.

Subclasses say which Prometheus names their engine uses (:meth:`ServerRuntime.parse_metrics`,
:meth:`ServerRuntime.metrics_delta`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from agent_runtime.egress import CONNECTION_FAILED, EgressRefused
from agent_runtime.local_servers import ServerSpec, probe_server, served_name
from agent_runtime.logging import get_logger
from agent_runtime.runtimes.base import RunMeasurement, RuntimeFailure, gpu_host_metrics
from agent_runtime.runtimes.openai_runtime import OpenAIRuntime
from agent_runtime.telemetry import RunMonitor
from common.catalog import VllmParams
from common.metrics import Metric
from common.protocol import AgentInfo, LocalServer, PromptSpec, RuntimeCapability

log = get_logger(__name__)

#: Key of ``unavailable_metrics`` that says why the server's own figures are missing.
SERVER_METRICS = "server_metrics"


def _no_server_reason(name: str, label: str, servers: list[LocalServer]) -> str:
    """Why a gray-box runtime is unavailable: no server configured or found, or none of them answers."""
    if not servers:
        return (f"no {label} server found on this host: name one with --endpoint {name}=URL "
                "(the usual loopback ports were probed or probing is off)")
    return "; ".join(s.reason or f"{s.url} does not answer" for s in servers)


class ServerRuntime(OpenAIRuntime):
    """A local inference server via its OpenAI-compatible API plus its ``/metrics`` (gray box).

    Attributes:
        label: The engine's name in messages (``vLLM``, ``llama.cpp``).
        server_metrics: The server's own figures it reports next to the client's.
    """

    name: ClassVar[str]
    label: ClassVar[str] = "inference"
    #: The ``server_*`` figures :meth:`metrics_delta` gives when the server's metrics can be read.
    server_metrics: ClassVar[tuple[str, ...]] = ()
    params: VllmParams  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._monitor: RunMonitor | None = None
        self._before: dict[str, float] | None = None
        self._metrics_problem: str | None = None
        self._server: ServerSpec | None = None
        self._served: str | None = None
        self._engine: LocalServer | None = None

    # -- what the host offers ------------------------------------------------------------------------

    @classmethod
    def capability(cls, info: AgentInfo) -> RuntimeCapability:
        """Available while one of this runtime's local servers answers; client metrics, host GPU metrics via NVML."""
        rdef = cls.definition()
        gpu_metrics, unavailable = gpu_host_metrics(info, rdef.gpu_metrics)
        metrics = [*rdef.metrics, *gpu_metrics]
        unavailable[Metric.MODEL_LOAD_S] = f"the {cls.label} server loads the model itself"
        unavailable[Metric.PEAK_RSS_BYTES] = f"the model lives in the {cls.label} server process"
        servers = [s for s in info.local_servers if s.runtime == cls.name]
        answering = [s for s in servers if s.available]
        if any(s.metrics_available for s in answering):
            metrics.extend(cls.server_metrics)
        else:
            why = "; ".join(s.metrics_reason or "no metrics" for s in answering) or f"no {cls.label} server answers"
            unavailable[SERVER_METRICS] = why
            unavailable.update({m: f"the server's metrics cannot be read: {why}" for m in cls.server_metrics})
        return RuntimeCapability(
            name=cls.name,
            access_mode=rdef.access_mode,
            available=bool(answering),
            reason=None if answering else _no_server_reason(cls.name, cls.label, servers),
            metrics=metrics,
            unavailable_metrics=unavailable,
            served_models=sorted({m for s in answering for m in s.models}),
            load_modes=list(cls.load_modes),
        )

    # -- which server ---------------------------------------------------------------------------------

    def _wanted_model(self) -> str:
        """The model the job asks the server for."""
        return self.params.served_model or self.request.model.name

    def _find_server(self) -> str | None:
        """Pick the local server that serves the job's model; return the problem when there is none."""
        wanted = self._wanted_model()
        seen: list[str] = []
        for spec in self.policy.servers:
            if spec.runtime != self.name:
                continue
            found = probe_server(spec)
            if not found.available:
                if spec.source == "configured":
                    seen.append(f"{spec.url}: {found.reason}")
                continue
            model = served_name(found.models, wanted)
            if model is not None:
                self._server, self._served, self._engine = spec, model, found
                return None
            seen.append(f"{spec.url} serves {', '.join(found.models) or 'no model'}")
        detail = "; ".join(seen) if seen else f"no {self.label} server answers on this host"
        return f"no local {self.name} server serves model {wanted!r} ({detail})"

    def _picked(self) -> ServerSpec:
        """The local server for this job, picked on first use (admission checks with a runtime object of its own).

        Raises:
            RuntimeFailure: No local server of this runtime serves the job's model (any more).
        """
        if self._server is None:
            problem = self._find_server()
            if problem is not None:
                raise RuntimeFailure(problem)
        assert self._server is not None  # nosec B101  # narrowing: _find_server() set it
        return self._server

    def api_base(self) -> str:
        """The job's ``base_url``, else the API of the local server picked for its model."""
        return self.params.base_url or self._picked().api_url

    def model_id(self) -> str:
        """The name the server serves the model under (a catalogue alias of the job's model, when picked)."""
        if not self.params.base_url:
            self._picked()
        return self._served or self._wanted_model()

    def _metrics_url(self) -> str:
        """The Prometheus endpoint: explicit, the picked server's, or the base URL without ``/v1`` + ``/metrics``."""
        if self.params.metrics_url:
            return self.params.metrics_url
        if not self.params.base_url:
            return self._picked().prometheus_url
        return self.api_base().rstrip("/").removesuffix("/v1") + "/metrics"

    def endpoint_urls(self) -> list[tuple[str, str]]:
        """The API and the metrics URL, with the request fields they come from."""
        field = "runtime.params.metrics_url" if self.params.metrics_url else "runtime.params.base_url"
        return [("runtime.params.base_url", self.api_base()), (field, self._metrics_url())]

    def check(self) -> dict[str, str]:
        """Pick the server (when the job names none), then the common checks (key variable, allowed endpoints)."""
        if not self.params.base_url and self._server is None:
            problem = self._find_server()
            if problem is not None:
                return {"runtime.params.base_url": problem}
        return super().check()

    def _headers(self) -> dict[str, str]:
        """The common headers; the picked server's own key (the operator's ``api_key_env``) when the job has none."""
        headers = super()._headers()
        if "Authorization" not in headers and self._server is not None and not self.params.base_url:
            headers.update(self._server.headers())
        return headers

    # -- the server's own figures ---------------------------------------------------------------------

    def parse_metrics(self, text: str) -> dict[str, float]:
        """Flatten one scrape of ``/metrics`` (subclasses: their engine's names).

        Raises:
            ValueError: Not Prometheus text.
        """
        raise NotImplementedError

    def metrics_delta(self, before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """The server's figures over a run, from the scrapes before and after it (subclasses)."""
        raise NotImplementedError

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
            return self.parse_metrics(resp.text)
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
            out.metrics.update(self.metrics_delta(self._before, after))
        else:
            out.unavailable[SERVER_METRICS] = self._metrics_problem or "server metrics unavailable"
            log.warning(f"{self.name}.metrics.unavailable", reason=out.unavailable[SERVER_METRICS])
        return out

    def describe(self) -> dict[str, Any]:
        """The endpoint and, when the agent picked the server, the engine and its version."""
        out = super().describe()
        if self._engine is not None:
            out.update(engine=self._engine.engine, engine_version=self._engine.engine_version)
        return out

    # -- serving under load ----------------------------------------------------------------------------

    #: vLLM's and llama.cpp's servers honour ``ignore_eos``.
    honours_ignore_eos: ClassVar[bool] = True

    def load_notes(self, prompts: PromptSpec) -> list[str]:
        """No caveat of its own: the server honours ``ignore_eos`` and its host's GPUs are read through NVML.

        Args:
            prompts: The sweep's prompt spec.

        Returns:
            Notes for ``LoadPointRun.notes`` (none).
        """
        return []
