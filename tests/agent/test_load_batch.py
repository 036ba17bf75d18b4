"""Concurrency load points run as batches on the tiny real model (white-box transformers)."""

from __future__ import annotations

import time

import pytest

from agent_runtime.load.batch import STATIC_BATCHING_NOTE, run_batch_point
from agent_runtime.load.generator import LoadPrompt, prompt_order
from agent_runtime.runtimes import make_runtime
from common.loadmetrics import point_figures
from common.protocol import JobRequest
from common.protocol.load import LoadSpec

from .conftest import allowing, job_payload

OUT = 6


def _prompt(text: str, output_tokens: int = OUT, *, chat: bool = False) -> LoadPrompt:
    messages = [{"role": "user", "content": text}] if chat else None
    return LoadPrompt(text=None if chat else text, messages=messages, prompt_tokens=None, output_tokens=output_tokens)


PROMPTS = [_prompt("a"), _prompt("hello there"), _prompt("the quick brown fox", chat=True), _prompt("xyz!")]


def _spec(**kw) -> LoadSpec:
    body = {"concurrency": [1, 4], "num_requests": 4}
    body.update(kw)
    return LoadSpec.model_validate(body)


def never() -> bool:
    return False


@pytest.fixture(scope="module")
def runtime(tiny_model_dir, tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    data_dir = tmp_path_factory.mktemp("agent")
    # One torch thread: a width-32 model gains nothing from two, and on a shared 2-core host each of its
    # many small parallel regions would wait for a descheduled second thread.
    request = JobRequest.model_validate(job_payload(tiny_model_dir, runtime={"name": "transformers",
                                                                             "params": {"device": "cpu",
                                                                                        "threads": 1}}))
    rt = make_runtime(request, data_dir=data_dir, policy=allowing(data_dir, paths=(tiny_model_dir.parent,)))
    rt.prepare()
    rt.load()
    yield rt
    rt.close()
    torch.set_num_threads(threads)


@pytest.fixture
def batch_sizes(runtime, monkeypatch):
    """The batch size of every generate() call (the real one runs)."""
    sizes: list[int] = []
    real = runtime.model.generate

    def counting(*args, **kwargs):
        sizes.append(int(kwargs["input_ids"].shape[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(runtime.model, "generate", counting)
    return sizes


def _length(runtime, prompt: LoadPrompt) -> int:
    enc, _ = runtime.encode_prompt(prompt.messages, prompt.text)
    return int(enc["input_ids"].shape[-1])


def _in_order(count: int, seed: int = 0) -> list[LoadPrompt]:
    """The prompts the point's requests get (warm-up first): the HTTP generator's seeded order, cycling."""
    order = prompt_order(PROMPTS, seed)
    return [next(order) for _ in range(count)]


def _check_request(r, out_tokens: int = OUT) -> None:
    assert r.error is None and not r.timed_out
    assert r.output_tokens == out_tokens
    assert 0 < r.ttft_s <= r.e2e_s
    assert len(r.itl_s) == r.output_tokens - 1
    assert all(gap > 0 for gap in r.itl_s)  # the steps are stamped in order
    assert r.e2e_s == pytest.approx(r.ttft_s + sum(r.itl_s), abs=1e-9)
    assert 0 <= r.scheduled_s <= r.sent_s


@pytest.mark.parametrize("size", [1, 4])
def test_batch_point_records_every_request(runtime, batch_sizes, size):
    point = run_batch_point(runtime, PROMPTS, index=3, spec=_spec(num_requests=8), value=size, should_stop=never)
    assert point.index == 3 and point.concurrency == size and point.request_rate is None
    assert batch_sizes == [size] * (8 // size)
    assert len(point.requests) == 8
    assert [r.prompt_tokens for r in point.requests] == [_length(runtime, p) for p in _in_order(8)]
    for r in point.requests:
        _check_request(r)
    for start in range(0, 8, size):
        batch = point.requests[start : start + size]
        # One generate() call: the same send and the same first step (the batch's prefill) for every row.
        assert len({r.sent_s for r in batch}) == 1
        assert len({r.ttft_s for r in batch}) == 1
        assert len({r.e2e_s for r in batch}) == 1  # no EOS in the tiny model: every row runs to its limit
    # Batches follow each other: the next one is scheduled when the previous ended, after its last token.
    for prev, nxt in zip(point.requests[::size], point.requests[size::size], strict=False):
        assert nxt.scheduled_s >= prev.sent_s + prev.e2e_s
        assert nxt.sent_s >= nxt.scheduled_s
    last = point.requests[-1]
    assert point.duration_s == pytest.approx(last.sent_s + last.e2e_s - point.requests[0].sent_s)
    assert STATIC_BATCHING_NOTE in point.notes
    assert point.overhead.chunk_handling_s is not None and 0 < point.overhead.chunk_handling_s < 0.01
    assert point.overhead.cpu_s is not None and point.overhead.cpu_s >= 0
    assert point.overhead.send_lag_max_s is not None and point.overhead.send_lag_max_s < 1.0
    figures = point_figures(point, None)
    assert figures["completed"] == 8 and figures["failed"] == 0 and figures["timed_out"] == 0
    assert figures["total_output_tokens"] == 8 * OUT
    assert figures["itl_s"]["count"] == 8 * (OUT - 1)


def test_warmup_is_left_out_and_the_last_batch_holds_the_rest(runtime, batch_sizes):
    spec = _spec(num_requests=5, warmup_requests=3, seed=7)
    point = run_batch_point(runtime, PROMPTS, index=0, spec=spec, value=2, should_stop=never)
    assert batch_sizes == [2, 1, 2, 2, 1]  # warm-up 2 + 1, then 5 measured
    assert point.warmup_requests == 3
    assert len(point.requests) == 5
    assert point.requests[0].scheduled_s == 0.0
    # Measured request i is request 3 + i of the point: prompts cycle through warm-up and measurement alike.
    assert [r.prompt_tokens for r in point.requests] == [_length(runtime, p) for p in _in_order(8, seed=7)[3:]]
    assert any("last batch held 1 requests" in n for n in point.notes)


def test_per_prompt_output_limits(runtime):
    prompts = [_prompt("a", 2), _prompt("bb", 5), _prompt("ccc", 1)]
    order = prompt_order(prompts, 0)
    limits = [next(order).output_tokens for _ in range(3)]
    point = run_batch_point(runtime, prompts, index=0, spec=_spec(num_requests=3), value=3, should_stop=never)
    assert sorted(limits) == [1, 2, 5]
    assert [r.output_tokens for r in point.requests] == limits
    for r, n in zip(point.requests, limits, strict=True):
        _check_request(r, n)
    # The rows that ended first end at their own last step, before the batch's end.
    by_limit = {r.output_tokens: r for r in point.requests}
    assert by_limit[1].e2e_s == by_limit[1].ttft_s
    assert by_limit[1].e2e_s < by_limit[2].e2e_s < by_limit[5].e2e_s


def _reference_tokens(runtime, prompts, max_new: int) -> list[list[int]]:
    """Greedy tokens of each row of one left-padded batch, without EOS (what the point's batch computes)."""
    import torch

    ids = [runtime.encode_prompt(p.messages, p.text)[0]["input_ids"][0].tolist() for p in prompts]
    width = max(map(len, ids))
    pad = runtime.tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(i)) + i for i in ids])
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
    out = runtime.run_on_torch_thread(
        lambda: runtime.model.generate(
            input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new, min_new_tokens=max_new,
            do_sample=False, pad_token_id=pad,
        )
    )
    return [row[width:].tolist() for row in out]


def test_rows_end_at_their_own_eos(runtime, monkeypatch):
    reference = _reference_tokens(runtime, _in_order(4), OUT)
    # Make one of the tokens row 0 produces before its limit the model's EOS, one that ends the rows at different
    # steps: every row must end at its own first EOS (included), the others running on.
    candidates = [
        (eos, [row.index(eos) + 1 if eos in row else OUT for row in reference]) for eos in reference[0][: OUT - 1]
    ]
    eos, expected = next((c for c in candidates if len(set(c[1])) > 1), candidates[0])
    assert len(set(expected)) > 1, f"the tiny model's greedy rows give no EOS that ends them apart: {reference}"
    monkeypatch.setattr(runtime.model.generation_config, "eos_token_id", eos)
    point = run_batch_point(runtime, PROMPTS, index=0, spec=_spec(num_requests=4), value=4, should_stop=never)
    assert [r.output_tokens for r in point.requests] == expected
    for r, n in zip(point.requests, expected, strict=True):
        _check_request(r, n)
    # With ignore_eos every row runs to its limit, past the EOS.
    spec = _spec(num_requests=4, prompts={"source": "task", "ignore_eos": True})
    point = run_batch_point(runtime, PROMPTS, index=0, spec=spec, value=4, should_stop=never)
    assert [r.output_tokens for r in point.requests] == [OUT] * 4


def test_should_stop_ends_the_batch_mid_way(runtime, batch_sizes):
    calls = 0

    def stop_at_third_step() -> bool:
        # Called once before the batch, then once per decoding step.
        nonlocal calls
        calls += 1
        return calls > 3

    spec = _spec(num_requests=12)
    point = run_batch_point(runtime, PROMPTS, index=0, spec=spec, value=4, should_stop=stop_at_third_step)
    assert batch_sizes == [4]  # no batch after the stop
    assert len(point.requests) == 4
    for r in point.requests:
        assert r.output_tokens == 3 < OUT
        assert r.error and "stopped" in r.error
        assert len(r.itl_s) == 2 and r.ttft_s <= r.e2e_s
    assert any("stopped before the point finished" in n for n in point.notes)
    assert point_figures(point, None)["failed"] == 4


def test_stop_before_the_point_measures_nothing(runtime, batch_sizes):
    point = run_batch_point(
        runtime, PROMPTS, index=1, spec=_spec(warmup_requests=2), value=2, should_stop=lambda: True
    )
    assert batch_sizes == [] and point.requests == [] and point.warmup_requests == 0
    assert any("warm-up" in n for n in point.notes)


def test_requests_past_the_timeout_are_timed_out(runtime):
    spec = _spec(num_requests=2, request_timeout_s=1e-6)
    point = run_batch_point(runtime, PROMPTS, index=0, spec=spec, value=2, should_stop=never)
    for r in point.requests:
        assert r.timed_out and r.output_tokens == 1 and r.ttft_s == r.e2e_s
    assert point_figures(point, None)["timed_out"] == 2


def test_point_sized_by_time_runs_whole_batches(runtime, batch_sizes):
    spec = LoadSpec.model_validate({"concurrency": [2], "duration_s": 0.05})
    point = run_batch_point(runtime, PROMPTS, index=0, spec=spec, value=2, should_stop=never)
    assert batch_sizes and set(batch_sizes) == {2}
    assert len(point.requests) == 2 * len(batch_sizes)
    # The last batch started before the time was up.
    assert point.requests[-1].sent_s < 0.05 + point.requests[0].sent_s + 1.0


def test_a_failing_generate_fails_its_batch_and_ends_the_point(runtime, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(runtime.model, "generate", out_of_memory)
    point = run_batch_point(runtime, PROMPTS, index=0, spec=_spec(num_requests=8), value=4, should_stop=never)
    assert len(point.requests) == 4
    assert all(r.error and "batch size 4" in r.error and "out of memory" in r.error for r in point.requests)
    assert any("ended early" in n for n in point.notes)
    assert point_figures(point, None)["failed"] == 4


def test_bad_input_names_the_field(runtime):
    with pytest.raises(ValueError, match=r"load\.concurrency"):
        run_batch_point(runtime, PROMPTS, index=0, spec=_spec(), value=0, should_stop=never)
    with pytest.raises(ValueError, match=r"load\.prompts"):
        run_batch_point(runtime, [], index=0, spec=_spec(), value=1, should_stop=never)
    with pytest.raises(ValueError, match=r"prompts\[0\]"):
        run_batch_point(runtime, [_prompt("a", 0)], index=0, spec=_spec(), value=1, should_stop=never)


@pytest.mark.slow
def test_real_model_rows_match_their_unbatched_selves(smollm2_dir, tmp_path):
    """SmolLM2 (a real chat template and EOS): left padding and the mask give every row its own greedy answer."""
    import torch

    threads = torch.get_num_threads()
    params = {"name": "transformers", "params": {"device": "cpu", "threads": 1}}
    request = JobRequest.model_validate(job_payload(smollm2_dir, model={"name": "smollm2", "path": str(smollm2_dir)},
                                                    runtime=params))
    rt = make_runtime(request, data_dir=tmp_path, policy=allowing(tmp_path, paths=(smollm2_dir.parent,)))
    try:
        rt.prepare()
        rt.load()
        questions = ["Say hi.", "What is the capital of France? Answer in one word.", "Count from one to twenty."]
        prompts = [LoadPrompt(None, [{"role": "user", "content": q}], None, 12) for q in questions]
        spec = _spec(num_requests=3)
        alone = run_batch_point(rt, prompts, index=0, spec=spec, value=1, should_stop=never)
        together = run_batch_point(rt, prompts, index=1, spec=spec, value=3, should_stop=never)
    finally:
        rt.close()
        torch.set_num_threads(threads)
    counts = [r.output_tokens for r in alone.requests]
    # The prompts differ in length (padding), and one answer ends at its EOS before the limit.
    assert len({r.prompt_tokens for r in together.requests}) == 3
    assert min(counts) < 12
    assert [r.output_tokens for r in together.requests] == counts
    assert [r.prompt_tokens for r in together.requests] == [r.prompt_tokens for r in alone.requests]
    for r in together.requests:
        _check_request(r, r.output_tokens)
    short = min(together.requests, key=lambda r: r.output_tokens)
    assert short.e2e_s < max(r.e2e_s for r in together.requests)


def test_the_hook_stamps_each_step_as_the_streamer_sees_it(runtime):
    """One stamp per decoding step, as the streamer sees the steps (one token each at batch size 1)."""
    import torch
    from transformers import StoppingCriteriaList

    from agent_runtime.load.batch import _BatchOutcome, _make_step_clock, _Row

    enc, _ = runtime.encode_prompt(None, "hello there")
    rows = [_Row(enc["input_ids"][0].tolist(), OUT)]
    outcome = _BatchOutcome(sent=0.0, ended=0.0, rows=rows)
    clock = _make_step_clock(rows, eos_ids=set(), timeout_s=60.0, should_stop=never, outcome=outcome)
    streamer = runtime._streamer_cls(runtime.tokenizer, skip_prompt=True)

    def generate():
        outcome.sent = time.perf_counter()
        return runtime.model.generate(
            input_ids=torch.tensor([rows[0].input_ids]), attention_mask=torch.ones(1, len(rows[0].input_ids)),
            max_new_tokens=OUT + 4, do_sample=False, pad_token_id=runtime.tokenizer.pad_token_id,
            streamer=streamer, stopping_criteria=StoppingCriteriaList([clock]),
        )

    out = runtime.run_on_torch_thread(generate)
    # The hook ended the row at its own limit, before max_new_tokens.
    assert out.shape[-1] - len(rows[0].input_ids) == OUT == rows[0].tokens
    seen, stamps = streamer.token_times, outcome.step_times
    assert len(seen) == len(stamps) == OUT
    # Step k's two sightings (the hook's and the streamer's, in whichever order this transformers calls them)
    # both come before either sighting of step k + 1.
    for k in range(OUT - 1):
        assert max(seen[k], stamps[k]) <= min(seen[k + 1], stamps[k + 1])
    assert streamer.token_ids == out[0, len(rows[0].input_ids):].tolist()
