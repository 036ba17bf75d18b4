"""Measurement arithmetic on plain numbers: the metric definitions of DESIGN section 6."""

from __future__ import annotations

import pytest

from agent_runtime.measure import (
    add_model_load,
    build_result,
    job_unavailable_metrics,
    merge_metrics,
    run_metrics,
    sample_result,
)
from agent_runtime.runtimes.base import Generation
from agent_runtime.tasks.base import Sample
from common.protocol import AccessMode, AgentJobState, JobRequest, SampleResult, SingleRunResult

from .conftest import job_payload


def _gen(output_tokens=3, first_token=10.5, chunk_times=(10.5, 10.7, 11.0), prompt_tokens=5):
    return Generation(
        text="hi",
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        sent_at=100.0,
        sent=10.0,
        first_token=first_token,
        chunk_times=list(chunk_times),
    )


def _sample(sample_id="a"):
    return Sample(sample_id, sample_id.upper(), "doc", "ref")


def test_per_request_metrics_follow_the_definitions():
    s = sample_result(_sample(), _gen())
    assert s.metrics["ttft_s"] == pytest.approx(0.5)  # sent -> first token
    assert s.metrics["e2e_latency_s"] == pytest.approx(1.0)  # sent -> last chunk
    assert s.metrics["tpot_s"] == pytest.approx(0.25)  # (1.0 - 0.5) / (3 - 1)
    assert s.inter_token_gaps_s == pytest.approx([0.2, 0.3])
    assert s.metrics["inter_token_gaps_s"] == pytest.approx(0.25)
    # Wall-clock timestamps: sent_at plus the offsets measured on the monotonic clock.
    assert s.request_sent_at == 100.0
    assert s.first_token_at == pytest.approx(100.5) and s.finished_at == pytest.approx(101.0)
    assert (s.id, s.title, s.reference, s.output, s.prompt_tokens, s.output_tokens) == ("a", "A", "ref", "hi", 5, 3)


def test_single_token_has_no_tpot_and_silence_has_no_latency():
    one = sample_result(_sample(), _gen(output_tokens=1, first_token=10.1, chunk_times=[10.1]))
    assert "tpot_s" not in one.metrics and "inter_token_gaps_s" not in one.metrics
    assert one.metrics["e2e_latency_s"] == pytest.approx(0.1)
    nothing = sample_result(_sample(), _gen(output_tokens=0, first_token=None, chunk_times=[]))
    assert nothing.metrics == {} and nothing.first_token_at is None and nothing.finished_at is None


def test_run_metrics_aggregate_requests():
    a = sample_result(_sample("a"), _gen())  # gaps 0.2, 0.3
    b = sample_result(_sample("b"), _gen(output_tokens=5, chunk_times=[10.5, 10.6, 10.7, 10.8, 12.5]))
    failed = SampleResult(id="c", error="HTTP 500")  # skipped
    metrics, unavailable = run_metrics([a, b, failed], wall_s=4.0)
    assert unavailable == {}
    assert metrics["run_wall_s"] == 4.0
    assert metrics["ttft_s"] == pytest.approx(0.5)
    assert metrics["e2e_latency_s"] == pytest.approx((1.0 + 2.5) / 2)
    assert metrics["tpot_s"] == pytest.approx((0.25 + 0.5) / 2)
    # Over every gap of every request (6 gaps), not the mean of the per-request means.
    assert metrics["inter_token_gaps_s"] == pytest.approx((0.2 + 0.3 + 0.1 + 0.1 + 0.1 + 1.7) / 6)
    assert metrics["output_tokens"] == 8.0 and metrics["output_tokens_per_s"] == pytest.approx(2.0)
    assert metrics["prompt_tokens"] == 10.0


def test_run_metrics_missing_figures_are_absent_with_a_reason():
    one = sample_result(_sample(), _gen(output_tokens=None, prompt_tokens=None, first_token=10.1, chunk_times=[10.1]))
    metrics, unavailable = run_metrics([one], wall_s=1.0)
    for name in ("tpot_s", "inter_token_gaps_s", "output_tokens", "output_tokens_per_s", "prompt_tokens"):
        assert name not in metrics and unavailable[name], name
    assert "more than one token" in unavailable["tpot_s"]
    metrics, unavailable = run_metrics([SampleResult(id="x", error="boom")], wall_s=1.0)
    assert set(metrics) == {"run_wall_s"} and "no request produced a token" in unavailable["ttft_s"]


def test_merge_metrics_second_source_wins_and_measured_is_never_unavailable():
    metrics, unavailable = merge_metrics(
        {"a": 1.0, "b": 2.0}, {"c": "first", "d": "first"}, {"b": 3.0, "c": 4.0}, {"a": "second", "e": "second"}
    )
    assert metrics == {"a": 1.0, "b": 3.0, "c": 4.0}
    assert unavailable == {"d": "first", "e": "second"}


def test_model_load_or_its_reason():
    metrics, unavailable = {}, {}
    add_model_load(metrics, unavailable, 2.5, None)
    assert metrics == {"model_load_s": 2.5} and unavailable == {}
    metrics, unavailable = {}, {}
    add_model_load(metrics, unavailable, None, "the endpoint loads the model")
    assert metrics == {} and unavailable == {"model_load_s": "the endpoint loads the model"}
    add_model_load(metrics, unavailable, None, None)
    assert unavailable == {"model_load_s": "not measured"}


def test_job_result_carries_raw_runs_and_the_cold_run_apart():
    request = JobRequest.model_validate(job_payload("/m", runs_per_job=2))
    cold = SingleRunResult(
        run_index=1,
        cold_start=True,
        metrics={"run_wall_s": 3.0, "model_load_s": 2.0},
        unavailable_metrics={"gpu_power_w": "no GPU", "ttft_s": "cold only"},
    )
    warm = SingleRunResult(run_index=2, metrics={"run_wall_s": 1.0, "ttft_s": 0.1})
    assert job_unavailable_metrics([cold, warm]) == {"gpu_power_w": "no GPU"}
    result = build_result(request, [cold, warm], AgentJobState.COMPLETED, fingerprint="cpu=x|gpu=none|mem=1GiB")
    assert result.runs == [cold, warm] and result.cold_start == {"run_wall_s": 3.0, "model_load_s": 2.0}
    assert result.statistics == {} and result.statistics_source == "none"
    assert result.unavailable_metrics == {"gpu_power_w": "no GPU"}
    assert result.access_mode is AccessMode.WHITE_BOX and result.runtime == "transformers"
    assert (result.job_id, result.attempt_token, result.hardware_fingerprint) == (
        "job-1",
        "attempt-token-1",
        "cpu=x|gpu=none|mem=1GiB",
    )
    empty = build_result(request, [], AgentJobState.CANCELLED, error="cancelled")
    assert empty.cold_start is None and empty.error == "cancelled"
