"""vLLM Prometheus /metrics parsing and interval figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.vllm_metrics import parse_vllm_metrics, vllm_metrics_delta

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "telemetry"
REFERENCE = REPO / ".." / "shared" / "reference" / "telemetry" / "vllm-metrics"


def _scrape(name: str) -> dict[str, float]:
    return parse_vllm_metrics((FIXTURES / name).read_text())


def test_flatten_sums_label_sets_and_keeps_histogram_sum_count():
    after = _scrape("vllm-v1-after.prom")
    assert after["vllm:generation_tokens_total"] == 1000.0  # 700 + 300 across two engines
    assert after["vllm:prompt_tokens_total"] == 250.0
    assert after["vllm:request_success_total"] == 8.0  # summed over finished_reason
    assert after["vllm:num_requests_running"] == 3.0
    assert after["vllm:kv_cache_usage_perc"] == pytest.approx(0.20)  # fractions are averaged
    assert after["vllm:time_to_first_token_seconds_sum"] == 1.6
    assert after["vllm:time_to_first_token_seconds_count"] == 8.0
    assert not any(k.endswith("_bucket") for k in after)


def test_delta_v1():
    delta = vllm_metrics_delta(_scrape("vllm-v1-before.prom"), _scrape("vllm-v1-after.prom"))
    assert delta["server_ttft_s"] == pytest.approx(0.8 / 4)
    assert delta["server_e2e_latency_s"] == pytest.approx(10.0 / 4)
    assert delta["server_tpot_s"] == pytest.approx(0.08 / 4)  # per-request histogram preferred
    assert delta["server_inter_token_latency_s"] == pytest.approx(8.0 / 400)
    assert delta["server_generation_tokens"] == 400.0
    assert delta["server_prompt_tokens"] == 100.0
    assert delta["server_requests"] == 4.0
    assert delta["server_kv_cache_usage_pct"] == pytest.approx(20.0)
    assert delta["server_requests_running"] == 3.0


def test_delta_v0_names():
    v0 = _scrape("vllm-v0.prom")
    delta = vllm_metrics_delta({}, v0)
    assert delta["server_ttft_s"] == pytest.approx(0.2)
    assert delta["server_e2e_latency_s"] == pytest.approx(0.5)
    assert delta["server_tpot_s"] == pytest.approx(0.03)  # time_per_output_token_seconds
    assert delta["server_kv_cache_usage_pct"] == pytest.approx(50.0)  # gpu_cache_usage_perc
    assert delta["server_generation_tokens"] == 33.0


def test_delta_omits_what_the_interval_cannot_support():
    same = _scrape("vllm-v1-after.prom")
    delta = vllm_metrics_delta(same, same)
    assert "server_ttft_s" not in delta and "server_tpot_s" not in delta  # no request finished
    assert delta["server_generation_tokens"] == 0.0
    # A server restart makes counters go backwards: the figures are dropped, not negative.
    restarted = vllm_metrics_delta(_scrape("vllm-v1-after.prom"), _scrape("vllm-v1-before.prom"))
    assert "server_generation_tokens" not in restarted and "server_ttft_s" not in restarted
    assert vllm_metrics_delta({}, {}) == {}


def test_invalid_exposition_raises():
    with pytest.raises(ValueError):
        parse_vllm_metrics("vllm:broken{ 1.0\n")


def test_reference_sample():
    files = sorted(REFERENCE.glob("*.txt")) if REFERENCE.is_dir() else []
    if not files:
        pytest.skip(f"reference vLLM sample not present at {REFERENCE}")
    for path in files:
        scrape = parse_vllm_metrics(path.read_text())  # no final newline in that file
        assert scrape["vllm:generation_tokens_total"] == 7.0
        assert scrape["vllm:time_to_first_token_seconds_count"] == 1.0
        delta = vllm_metrics_delta({}, scrape)
        assert delta["server_ttft_s"] == pytest.approx(0.31326723098754883)
        assert delta["server_e2e_latency_s"] == pytest.approx(0.5034303665161133)
        assert delta["server_tpot_s"] == pytest.approx(0.02554149661946724 / 6)
        assert delta["server_kv_cache_usage_pct"] == 0.0
