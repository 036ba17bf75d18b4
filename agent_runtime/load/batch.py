"""A concurrency load point run as batches on a white-box model (``transformers``).

Concurrency ``c`` becomes the model's ``generate()`` on a batch of ``c`` prompts (left-padded, with an attention
mask), batch after batch until the point has its requests (or its time is up). This is *static* batching: a
batch's requests start together and the next batch starts only when the whole batch has ended, so there is no
continuous batching as a serving engine does it, and every request's TTFT includes the prefill of the whole
batch. The figures are comparable with each other along the sweep, not with a server's at the same concurrency.

Timing comes from a :class:`transformers.StoppingCriteria`, which ``generate()`` calls once per decoding step
with the sequences so far (the step's new token last); it reads the new tokens (which waits for the device to
produce them), stamps the step with :func:`time.perf_counter`, and ends each row on its own: at its EOS (unless
EOS is ignored), at its own token limit, past ``request_timeout_s``, or every row when ``should_stop()`` turns
true. A row that has ended keeps its place in the batch (``generate()`` still computes it: padding, or tokens
thrown away) until the batch ends; its record stops at its last token, as a server would report it. Every token
counts as one streamed chunk: TTFT is the first step, whether or not its token decodes to text.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent_runtime.load.generator import LoadPrompt, prompt_order
from agent_runtime.runtimes.base import RuntimeFailure
from common.loadmetrics import percentile_sorted
from common.protocol.load import GeneratorOverhead, LoadPointRun, LoadSpec, RequestRecord

if TYPE_CHECKING:
    from agent_runtime.runtimes.transformers_runtime import TransformersRuntime

#: Longest error message kept on a request (the protocol's limit).
_MAX_ERROR_CHARS = 500

#: The caveat every batch point carries.
STATIC_BATCHING_NOTE = (
    "batch mode: static batching (generate() on batches of this many prompts, left-padded; no continuous "
    "batching): a batch's requests start together, the next batch starts when its last request ends, and each "
    "request's TTFT includes the whole batch's prefill"
)
#: What ``overhead.cpu_s`` means here: the generator is the model's own process.
CPU_NOTE = "overhead.cpu_s is the agent process's CPU time, the model's own computation included"


@dataclass
class _Row:
    """One request of a batch while it runs: its prompt, its limit and what happened to it."""

    input_ids: list[int]
    max_tokens: int
    tokens: int = 0
    last_step: int | None = None  # index of the step that produced its last token
    finished: bool = False
    timed_out: bool = False
    stopped: bool = False


@dataclass
class _BatchOutcome:
    """What one ``generate()`` call produced: step times (absolute, ``perf_counter``) and each row's fate."""

    sent: float
    ended: float
    step_times: list[float] = field(default_factory=list)
    rows: list[_Row] = field(default_factory=list)
    error: str | None = None
    hook_costs: list[float] = field(default_factory=list)
    stopped: bool = False


def _make_step_clock(
    rows: list[_Row], *, eos_ids: set[int], timeout_s: float, should_stop: Callable[[], bool], outcome: _BatchOutcome
) -> Any:
    """Build the per-step hook of one batch (transformers is imported lazily: the agent runs without it).

    Args:
        rows: The batch's rows, in batch order (updated in place).
        eos_ids: Tokens that end a row (empty when EOS is ignored).
        timeout_s: A row still generating this long after the batch's start ends, timed out.
        should_stop: Ends every row when it turns true.
        outcome: Receives the step times and the hook's own cost.

    Returns:
        A ``StoppingCriteria``.
    """
    import torch
    from transformers import StoppingCriteria

    class _StepClock(StoppingCriteria):
        """Stamps every decoding step and ends each row at its EOS, its limit, its timeout or a stop."""

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> Any:
            # Reading the new tokens waits for the device to have computed them, so the stamp after it is
            # when the step's tokens exist (as a streamer's ``.cpu()`` would see them).
            new_tokens = input_ids[:, -1].tolist()
            now = time.perf_counter()
            step = len(outcome.step_times)
            outcome.step_times.append(now)
            late = now - outcome.sent > timeout_s
            stop = should_stop()
            done: list[bool] = []
            for row, token in zip(rows, new_tokens, strict=True):
                if not row.finished:
                    row.tokens += 1
                    row.last_step = step
                    if (token in eos_ids) or row.tokens >= row.max_tokens:
                        row.finished = True
                    elif late:
                        row.finished = row.timed_out = True
                    elif stop:
                        row.finished = row.stopped = True
                done.append(row.finished)
            outcome.stopped = outcome.stopped or stop
            outcome.hook_costs.append(time.perf_counter() - now)
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return _StepClock()


def _generate_batch(
    runtime: TransformersRuntime,
    rows: list[_Row],
    *,
    eos_ids: set[int],
    ignore_eos: bool,
    timeout_s: float,
    should_stop: Callable[[], bool],
) -> _BatchOutcome:
    """Run one batch through ``generate()`` (on the caller's thread: the runtime's torch thread).

    Args:
        runtime: The loaded runtime.
        rows: The batch's rows (updated in place).
        eos_ids: The model's EOS tokens.
        ignore_eos: Generate past EOS up to each row's limit.
        timeout_s: The request timeout.
        should_stop: Checked at every step.

    Returns:
        The batch's step times and rows; ``error`` set (and no steps) when ``generate()`` raised.
    """
    import torch
    from transformers import StoppingCriteriaList

    tokenizer = runtime.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        pad_id = 0  # masked out by the attention mask: any valid id does
    width = max(len(r.input_ids) for r in rows)
    # Left padding: every row's last prompt token sits at the same position, so the step's new tokens line up.
    ids = [[pad_id] * (width - len(r.input_ids)) + r.input_ids for r in rows]
    mask = [[0] * (width - len(r.input_ids)) + [1] * len(r.input_ids) for r in rows]
    input_ids = torch.tensor(ids, dtype=torch.long, device=runtime.device)
    attention_mask = torch.tensor(mask, dtype=torch.long, device=runtime.device)
    if runtime.device == "cuda":
        torch.cuda.synchronize()  # the copy to the device is not part of the first step
    kwargs: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "max_new_tokens": max(r.max_tokens for r in rows),
        "pad_token_id": pad_id,
        "do_sample": False,
        "temperature": None,
        "top_p": None,
        "top_k": None,
    }
    if ignore_eos:
        # ``generate()`` would end a row at EOS on its own; an explicit None (applied over the model's generation
        # config) lets the rows run to their limits (vLLM's ignore_eos), the hook ending each one.
        kwargs["eos_token_id"] = None
    outcome = _BatchOutcome(sent=time.perf_counter(), ended=0.0, rows=rows)
    clock = _make_step_clock(
        rows, eos_ids=set() if ignore_eos else eos_ids, timeout_s=timeout_s, should_stop=should_stop, outcome=outcome
    )
    kwargs["stopping_criteria"] = StoppingCriteriaList([clock])
    outcome.sent = time.perf_counter()
    try:
        runtime.model.generate(**kwargs)
    except Exception as exc:  # out of memory at a large batch is a result of the point, not a crash
        outcome.error = f"generate() failed at batch size {len(rows)}: {type(exc).__name__}: {exc}"
    outcome.ended = time.perf_counter()
    if outcome.error is not None and runtime.device == "cuda":
        # Here, not in the handler: the exception's frames hold the failed batch's tensors until it is gone.
        torch.cuda.empty_cache()
    return outcome


def _records(outcome: _BatchOutcome, *, t0: float, scheduled: float, timeout_s: float) -> list[RequestRecord]:
    """Turn a batch's rows into request records (times relative to the point's start ``t0``).

    Args:
        outcome: The batch.
        t0: The point's start (``perf_counter``).
        scheduled: When the batch's slots freed, relative to ``t0`` (the previous batch's end, else 0).
        timeout_s: The request timeout (for the timed-out rows' message).

    Returns:
        One record per row, in batch order.
    """
    sent_s = outcome.sent - t0
    records: list[RequestRecord] = []
    for row in outcome.rows:
        error: str | None = None
        if outcome.error is not None and not row.finished:
            error = outcome.error
        elif row.timed_out:
            error = f"timed out after {timeout_s:g} s (request_timeout_s)"
        elif row.stopped or (not row.finished and outcome.stopped):
            error = "stopped before it finished: the job was cancelled or ran out of time"
        elif not row.finished:
            error = "generate() ended before this request's last token"
        ttft = e2e = None
        itl: list[float] = []
        if row.last_step is not None:
            times = outcome.step_times[: row.last_step + 1]
            ttft = times[0] - outcome.sent
            e2e = times[-1] - outcome.sent
            itl = [b - a for a, b in itertools.pairwise(times)]
        records.append(
            RequestRecord(
                scheduled_s=scheduled,
                sent_s=sent_s,
                ttft_s=ttft,
                e2e_s=e2e,
                itl_s=itl,
                prompt_tokens=len(row.input_ids),
                output_tokens=row.tokens,
                error=error[:_MAX_ERROR_CHARS] if error else None,
                timed_out=row.timed_out,
            )
        )
    return records


def run_batch_point(
    runtime: TransformersRuntime,
    prompts: Sequence[LoadPrompt],
    *,
    index: int,
    spec: LoadSpec,
    value: int,
    should_stop: Callable[[], bool],
) -> LoadPointRun:
    """Run one concurrency point as batches of ``value`` prompts on the runtime's loaded model.

    ``spec.warmup_requests`` requests go first, in batches of the same size, and are left out. Then batches
    run until ``spec.num_requests`` requests are measured (the last batch holds the remainder) or, for a point
    sized by time, until ``spec.duration_s`` has passed (the batch running then is awaited). Prompts are taken
    in the HTTP generator's seeded shuffled order, cycling, warm-up first (the same seed, the same prompt for
    each request), each with its own output limit. Greedy decoding; EOS ignored when ``spec.prompts`` asks for
    it.

    Each request's record: ``scheduled_s`` when its batch's slots freed (the previous batch's end; the point's
    start for the first), ``sent_s`` the batch's ``generate()`` call, ``ttft_s`` the step that produced its first
    token (the batch's first step: the prefill), ``itl_s`` the gaps between the steps that produced its tokens,
    ``e2e_s`` its last token (its EOS or its limit), ``output_tokens`` its tokens (EOS included),
    ``prompt_tokens`` its unpadded prompt length. A ``generate()`` that raises (out of memory at a large batch)
    fails its batch's requests and ends the point.

    Args:
        runtime: A transformers runtime whose model is loaded.
        prompts: The prompts to cycle through.
        index: The point's 0-based position in the sweep.
        spec: The sweep (sizes, warm-up, timeout, prompts' EOS handling).
        value: The point's concurrency: the batch size.
        should_stop: Checked at every decoding step; when it turns true the running batch ends, its unfinished
            requests are recorded as stopped, and the point returns what it measured.

    Returns:
        The point, with every measured request's raw timings, the generator's overhead and notes.

    Raises:
        ValueError: A bad batch size, no prompts, or a prompt that cannot be tokenized.
        RuntimeFailure: When the runtime has no loaded model.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"load.concurrency: a batch size must be a whole number of at least 1, got {value!r}")
    if spec.mode != "concurrency":
        raise ValueError("load.request_rate: batch mode runs concurrency sweeps only (no open-loop arrivals)")
    if not prompts:
        raise ValueError("load.prompts: a batch load point needs at least one prompt")
    if runtime.model is None or runtime.tokenizer is None:
        raise RuntimeFailure("the model must be loaded before a batch load point runs")
    return runtime.run_on_torch_thread(
        lambda: _run_point(runtime, prompts, index=index, spec=spec, value=value, should_stop=should_stop)
    )


def _run_point(
    runtime: TransformersRuntime,
    prompts: Sequence[LoadPrompt],
    *,
    index: int,
    spec: LoadSpec,
    value: int,
    should_stop: Callable[[], bool],
) -> LoadPointRun:
    """The body of :func:`run_batch_point`, on the runtime's torch thread."""
    notes = [STATIC_BATCHING_NOTE]
    # Every distinct prompt is tokenized once, before the clock starts: the batches only pad and copy.
    encoded: dict[int, tuple[list[int], int]] = {}
    for i, prompt in enumerate(prompts):
        if prompt.output_tokens < 1:
            raise ValueError(f"prompts[{i}].output_tokens: must be at least 1, got {prompt.output_tokens}")
        try:
            enc, prompt_notes = runtime.encode_prompt(prompt.messages, prompt.text)
        except ValueError as exc:
            raise ValueError(f"prompts[{i}]: {exc}") from exc
        encoded[id(prompt)] = (enc["input_ids"][0].tolist(), prompt.output_tokens)
        notes.extend(n for n in prompt_notes if n not in notes)
    eos_ids = runtime.eos_token_ids()
    ignore_eos = spec.prompts.wants_ignore_eos()
    timeout_s = spec.request_timeout_s

    order = prompt_order(prompts, spec.seed)

    def rows_for(size: int) -> list[_Row]:
        """The rows of the next batch of ``size`` requests (the next prompts in the sweep's order)."""
        return [_Row(*encoded[id(next(order))]) for _ in range(size)]

    def run(rows: list[_Row]) -> _BatchOutcome:
        return _generate_batch(
            runtime, rows, eos_ids=eos_ids, ignore_eos=ignore_eos, timeout_s=timeout_s, should_stop=should_stop
        )

    warmed = 0
    while warmed < spec.warmup_requests:
        if should_stop():
            notes.append(f"stopped during warm-up after {warmed} of {spec.warmup_requests} requests")
            return LoadPointRun(index=index, concurrency=value, duration_s=0.0, warmup_requests=warmed, notes=notes)
        size = min(value, spec.warmup_requests - warmed)
        outcome = run(rows_for(size))
        warmed += size
        if outcome.error is not None:
            notes.append(f"warm-up failed: {outcome.error}"[:_MAX_ERROR_CHARS])
            break  # the measured batches will fail the same way and record it per request
        if outcome.stopped:
            notes.append(f"stopped during warm-up after {warmed} of {spec.warmup_requests} requests")
            return LoadPointRun(index=index, concurrency=value, duration_s=0.0, warmup_requests=warmed, notes=notes)

    requests: list[RequestRecord] = []
    hook_costs: list[float] = []
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    scheduled = 0.0
    last_end = t0
    stopped = False
    while True:
        measured = len(requests)
        if spec.num_requests is not None:
            if measured >= spec.num_requests:
                break
            size = min(value, spec.num_requests - measured)
        else:
            if measured and time.perf_counter() - t0 >= (spec.duration_s or 0.0):
                break
            size = value
        if should_stop():
            stopped = True
            break
        outcome = run(rows_for(size))
        requests.extend(_records(outcome, t0=t0, scheduled=scheduled, timeout_s=timeout_s))
        hook_costs.extend(outcome.hook_costs)
        # The batch's last request ends at its last token: ``generate()`` may run a step more (on MPS it reads the
        # stop decision one step late, then undoes that step), which no request counts.
        ends = [outcome.step_times[r.last_step] for r in outcome.rows if r.last_step is not None]
        last_end = max(ends) if ends else outcome.ended
        scheduled = outcome.ended - t0
        if size < value:
            notes.append(f"the last batch held {size} requests (num_requests is not a multiple of {value})")
        if outcome.error is not None:
            notes.append(f"the point ended early: {outcome.error}"[:_MAX_ERROR_CHARS])
            break
        if outcome.stopped:
            stopped = True
            break
    cpu_s = time.process_time() - cpu0
    if stopped:
        notes.append(f"stopped before the point finished: {len(requests)} requests measured")
    notes.append(CPU_NOTE)
    lags = sorted(r.sent_s - r.scheduled_s for r in requests)
    first_sent = min((r.sent_s for r in requests), default=0.0)
    overhead = GeneratorOverhead(
        send_lag_p50_s=percentile_sorted(lags, 50) if lags else None,
        send_lag_p99_s=percentile_sorted(lags, 99) if lags else None,
        send_lag_max_s=lags[-1] if lags else None,
        cpu_s=cpu_s,
        chunk_handling_s=sum(hook_costs) / len(hook_costs) if hook_costs else None,
    )
    return LoadPointRun(
        index=index,
        concurrency=value,
        duration_s=max(0.0, (last_end - t0) - first_sent) if requests else 0.0,
        requests=requests,
        warmup_requests=warmed,
        overhead=overhead,
        notes=notes,
    )
