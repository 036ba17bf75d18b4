"""Serving under load: the sweep a job runs (:class:`LoadSpec`) and what each load point measured.

A job with a ``load`` runs its model and runtime as a sweep of load points instead of one request after another:
either closed-loop concurrency levels (N requests always in flight) or open-loop request rates (arrivals drawn
from a Poisson, gamma or constant process, as ``vllm bench serve`` draws them). The agent sends every request's
raw timings; the server computes each point's figures from them with :mod:`common.loadmetrics` (the same code the
agent uses to stop a sweep early), so nobody has to trust a summary.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from common.protocol.base import ProtocolModel

#: Most load points one sweep may hold.
MAX_LOAD_POINTS = 32
#: Highest concurrency (or ``max_concurrency``) a load point may ask for.
MAX_CONCURRENCY = 4096
#: Most measured requests per load point (warm-up apart).
MAX_REQUESTS_PER_POINT = 100_000
#: Longest a load point may last when it is sized by time.
MAX_POINT_DURATION_S = 3600.0
#: Highest finite request rate (requests/s).
MAX_REQUEST_RATE = 100_000.0
#: Longest synthetic prompt or output, in tokens.
MAX_SYNTHETIC_TOKENS = 131_072
#: The request-rate value that means "send every request at once" (``vllm bench serve --request-rate inf``).
INFINITE_RATE = "inf"


class Arrival(StrEnum):
    """How open-loop requests arrive (``vllm bench serve``: ``--request-rate`` with ``--burstiness``).

    Intervals are gamma-distributed with shape ``burstiness`` and mean ``1 / rate``: ``poisson`` is shape 1
    (exponential gaps), ``gamma`` takes the spec's ``burstiness`` (below 1 burstier, above 1 more regular) and
    ``constant`` sends at exactly ``1 / rate`` apart.
    """

    POISSON = "poisson"
    GAMMA = "gamma"
    CONSTANT = "constant"


class PromptSource(StrEnum):
    """Where the prompts of a sweep come from."""

    TASK = "task"  # the job's task (the packaged Wikipedia articles), cycled
    JSONL = "jsonl"  # a JSON Lines file on the agent, one {"prompt": ...} object per line
    SYNTHETIC = "synthetic"  # fixed input/output token lengths, comparable across hardware


class PromptSpec(ProtocolModel):
    """The prompts of a sweep.

    Attributes:
        source: Task samples, a JSONL file on the agent, or synthetic prompts.
        path: JSONL file on the agent (``jsonl`` only): relative to the agent's data directory or inside a
            directory the operator allowed; each line an object with a ``prompt`` string (and optionally
            ``output_tokens``).
        input_tokens: Prompt length in tokens (``synthetic`` only; measured with the model's tokenizer where the
            agent has it).
        output_tokens: Tokens to generate per request (``max_tokens``); the task's ``max_new_tokens`` when unset.
        ignore_eos: Ask the server to keep generating past EOS so every request yields ``output_tokens`` (vLLM's
            ``ignore_eos``; servers without it stop at EOS and the notes say so). Default: on for synthetic.
    """

    source: PromptSource = PromptSource.TASK
    path: str | None = Field(default=None, min_length=1, max_length=1024)
    input_tokens: int | None = Field(default=None, ge=1, le=MAX_SYNTHETIC_TOKENS)
    output_tokens: int | None = Field(default=None, ge=1, le=MAX_SYNTHETIC_TOKENS)
    ignore_eos: bool | None = None

    @model_validator(mode="after")
    def _fits_source(self) -> PromptSpec:
        """Each source takes its own fields and needs them."""
        if self.source is PromptSource.JSONL and not self.path:
            raise ValueError("prompts.path: a jsonl prompt source needs the file's path on the agent")
        if self.source is not PromptSource.JSONL and self.path is not None:
            raise ValueError("prompts.path: only a jsonl prompt source reads a file")
        if self.source is PromptSource.SYNTHETIC and (self.input_tokens is None or self.output_tokens is None):
            raise ValueError("prompts.input_tokens: synthetic prompts need input_tokens and output_tokens")
        if self.source is not PromptSource.SYNTHETIC and self.input_tokens is not None:
            raise ValueError("prompts.input_tokens: only synthetic prompts have a fixed input length")
        return self

    def wants_ignore_eos(self) -> bool:
        """Whether requests ask the server to ignore EOS (synthetic prompts do unless told otherwise)."""
        return self.ignore_eos if self.ignore_eos is not None else self.source is PromptSource.SYNTHETIC


class ServiceLevelObjectives(ProtocolModel):
    """Latency targets: a request is *good* when it meets every target given (``vllm bench serve --goodput``).

    A load point *meets* the objectives when the ``percentile`` of each targeted figure is within its target
    and its error rate is at most ``max_error_rate``.

    Attributes:
        ttft_ms: Time to first token, milliseconds.
        tpot_ms: Time per output token after the first, milliseconds.
        e2e_ms: End-to-end request latency, milliseconds.
        percentile: The percentile a load point is judged at (e.g. 99 for p99).
        max_error_rate: Largest share of failed requests a point may have and still meet the objectives.
    """

    ttft_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    tpot_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    e2e_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    percentile: float = Field(default=99.0, gt=0, le=100)
    max_error_rate: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _some_target(self) -> ServiceLevelObjectives:
        """Objectives without a target would make every point good."""
        if self.ttft_ms is None and self.tpot_ms is None and self.e2e_ms is None:
            raise ValueError("slo: give at least one of ttft_ms, tpot_ms, e2e_ms")
        return self


class EarlyStop(ProtocolModel):
    """When a sweep stops before its last load point (the points after it are not run).

    Attributes:
        latency_factor: Stop after a point whose median e2e latency is more than this many times the first
            point's (latency has exploded: the server is far past saturation).
        max_error_rate: Stop after a point where more than this share of requests failed or timed out.
    """

    latency_factor: float | None = Field(default=20.0, gt=1, le=10_000)
    max_error_rate: float | None = Field(default=0.5, ge=0, le=1)


RequestRate = float | Literal["inf"]


class LoadSpec(ProtocolModel):
    """A sweep of load points, run in the order given.

    Exactly one of ``concurrency`` (closed loop: that many requests always in flight) and ``request_rate``
    (open loop: arrivals at that rate, requests/s, or ``"inf"`` for all at once) lists the points. Exactly one of
    ``num_requests`` and ``duration_s`` sizes each point.

    Attributes:
        concurrency: Concurrency levels.
        request_rate: Request rates (requests/s) or ``"inf"``.
        arrival: Arrival process of open-loop points.
        burstiness: Gamma shape of ``gamma`` arrivals (1 is Poisson).
        max_concurrency: Cap on requests in flight at open-loop points (``vllm bench serve --max-concurrency``).
        num_requests: Measured requests per point.
        duration_s: Seconds per point (requests are sent until then; those in flight are awaited).
        warmup_requests: Requests sent before each point and left out of its figures.
        seed: Random seed of arrivals and prompt order (same seed, same schedule on every agent).
        request_timeout_s: A request still unfinished after this long counts as timed out.
        slo: Latency targets for goodput and saturation.
        prompts: Where prompts come from.
        early_stop: When to stop the sweep early.
    """

    concurrency: list[int] | None = Field(default=None, min_length=1, max_length=MAX_LOAD_POINTS)
    request_rate: list[RequestRate] | None = Field(default=None, min_length=1, max_length=MAX_LOAD_POINTS)
    arrival: Arrival = Arrival.POISSON
    burstiness: float = Field(default=1.0, gt=0, le=1000)
    max_concurrency: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY)
    num_requests: int | None = Field(default=None, ge=1, le=MAX_REQUESTS_PER_POINT)
    duration_s: float | None = Field(default=None, gt=0, le=MAX_POINT_DURATION_S)
    warmup_requests: int = Field(default=0, ge=0, le=10_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    request_timeout_s: float = Field(default=600.0, gt=0, le=86_400)
    slo: ServiceLevelObjectives | None = None
    prompts: PromptSpec = Field(default_factory=PromptSpec)
    early_stop: EarlyStop = Field(default_factory=EarlyStop)

    @field_validator("concurrency")
    @classmethod
    def _concurrency_levels(cls, value: list[int] | None) -> list[int] | None:
        """Each level is a whole number of requests in flight."""
        for i, level in enumerate(value or []):
            if isinstance(level, bool) or level < 1 or level > MAX_CONCURRENCY:
                raise ValueError(f"concurrency[{i}]: must be between 1 and {MAX_CONCURRENCY}, got {level}")
        return value

    @field_validator("request_rate", mode="before")
    @classmethod
    def _rates(cls, value: Any) -> Any:
        """Rates are positive and finite, or the string ``"inf"``."""
        if not isinstance(value, list):
            return value
        out: list[Any] = []
        for i, rate in enumerate(value):
            if isinstance(rate, str) and rate.strip().lower() in ("inf", "infinity"):
                out.append(INFINITE_RATE)
                continue
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise ValueError(f"request_rate[{i}]: must be a number of requests/s or \"inf\", got {rate!r}")
            if not math.isfinite(rate) or rate <= 0 or rate > MAX_REQUEST_RATE:
                raise ValueError(f"request_rate[{i}]: must be above 0 and at most {MAX_REQUEST_RATE:g}, got {rate}")
            out.append(float(rate))
        return out

    @model_validator(mode="after")
    def _one_of_each(self) -> LoadSpec:
        """One axis and one size; arrival settings only where they mean something."""
        if (self.concurrency is None) == (self.request_rate is None):
            raise ValueError("load: give exactly one of concurrency and request_rate")
        if (self.num_requests is None) == (self.duration_s is None):
            raise ValueError("load: give exactly one of num_requests and duration_s")
        if self.concurrency is not None and self.max_concurrency is not None:
            raise ValueError("load.max_concurrency: only open-loop (request_rate) sweeps take a cap")
        if self.arrival is not Arrival.GAMMA and self.burstiness != 1.0:
            raise ValueError("load.burstiness: only gamma arrivals take a burstiness (poisson is 1)")
        return self

    @property
    def mode(self) -> Literal["concurrency", "request_rate"]:
        """Which axis the sweep moves along."""
        return "concurrency" if self.concurrency is not None else "request_rate"

    def points(self) -> list[int | RequestRate]:
        """The load points' values, in order."""
        return list(self.concurrency if self.concurrency is not None else self.request_rate or [])


class RequestRecord(ProtocolModel):
    """One measured request of a load point: raw timings on the generator's monotonic clock.

    Times are seconds from the point's start (its first scheduled send). A request that failed keeps what it
    got before failing.

    Attributes:
        scheduled_s: When the arrival schedule wanted it sent (closed loop: when a slot freed).
        sent_s: When it was sent.
        ttft_s: Time to first token (first chunk with text), from ``sent_s``.
        e2e_s: End-to-end latency, from ``sent_s`` to the last chunk (the final EOS step included).
        itl_s: From the first chunk with text on, the gaps between consecutive chunks with a choice, text or not
            (``vllm bench serve``'s ``itl``: a token the detokenizer holds back and the final EOS step count).
        prompt_tokens: Prompt tokens (the server's usage, else the agent's tokenizer, else None).
        output_tokens: Output tokens (the server's usage, else chunks with text).
        error: Why it failed (None when it succeeded).
        timed_out: It passed ``request_timeout_s``.
    """

    scheduled_s: float
    sent_s: float
    ttft_s: float | None = None
    e2e_s: float | None = None
    itl_s: list[float] = Field(default_factory=list)
    prompt_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    error: str | None = Field(default=None, max_length=500)
    timed_out: bool = False


class GeneratorOverhead(ProtocolModel):
    """What the load generator itself cost at a point, so that a reader can tell it did not distort figures.

    Attributes:
        send_lag_p50_s: Median delay between a request's scheduled time and its send.
        send_lag_p99_s: 99th percentile of that delay.
        send_lag_max_s: Largest such delay.
        cpu_s: CPU seconds the generator's process used during the point.
        chunk_handling_s: Mean seconds spent handling one streamed chunk (parse and record).
    """

    send_lag_p50_s: float | None = None
    send_lag_p99_s: float | None = None
    send_lag_max_s: float | None = None
    cpu_s: float | None = None
    chunk_handling_s: float | None = None


class LoadPointRun(ProtocolModel):
    """What the agent measured at one load point (the server derives every figure from ``requests``).

    Attributes:
        index: 0-based position in the sweep.
        concurrency: The point's concurrency (closed loop).
        request_rate: The point's rate, requests/s, or ``"inf"`` (open loop).
        duration_s: From the first send to the last request's end (``vllm bench serve``'s benchmark duration).
        requests: Every measured request (warm-up excluded), in send order.
        warmup_requests: Warm-up requests sent before the point.
        power_w: Mean accelerator (else host) power over the point, where telemetry has it.
        energy_j: Energy over the point, where telemetry has it.
        power_source: What ``power_w`` measured (``nvml``, ``rocm-smi``, ``rapl`` ...).
        overhead: The generator's own cost.
        notes: Caveats (an endpoint without ``ignore_eos``, token counts from chunks ...).
    """

    index: int = Field(ge=0)
    concurrency: int | None = Field(default=None, ge=1)
    request_rate: RequestRate | None = None
    duration_s: float = Field(ge=0)
    requests: list[RequestRecord] = Field(default_factory=list)
    warmup_requests: int = Field(default=0, ge=0)
    power_w: float | None = Field(default=None, ge=0)
    energy_j: float | None = Field(default=None, ge=0)
    power_source: str | None = Field(default=None, max_length=50)
    overhead: GeneratorOverhead = Field(default_factory=GeneratorOverhead)
    notes: list[str] = Field(default_factory=list)


class LoadSweepRun(ProtocolModel):
    """A job's sweep: the points run, in order, and why it stopped early (if it did).

    Attributes:
        mode: ``concurrency`` or ``request_rate``.
        spec: The load spec the job ran.
        points: The points run.
        stopped_early: Why the sweep stopped before its last point (None when it ran them all).
        method: How the runtime made the load: ``http`` (streaming requests to an OpenAI-compatible endpoint)
            or ``batch`` (white-box ``generate`` on a batch of that size: concurrency sweeps only).
    """

    mode: Literal["concurrency", "request_rate"]
    spec: LoadSpec
    points: list[LoadPointRun] = Field(default_factory=list)
    stopped_early: str | None = Field(default=None, max_length=500)
    method: Literal["http", "batch"] = "http"
