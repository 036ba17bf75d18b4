"""llama.cpp Prometheus /metrics parsing and interval figures.

The fixtures are two real scrapes of ``llama-server --metrics`` (llama.cpp as vendored in llama-cpp-python 0.3.36,
the packaged SmolLM2 GGUF, a fresh server), taken before and after three sequential chat requests whose answers'
``usage`` said: prompt tokens 46, 47 and 46 (31 of the last two reused from the prompt cache), completion tokens
10, 11 and 24.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.llamacpp_metrics import (
    MAX_ROUNDING_ERROR,
    llamacpp_interval,
    llamacpp_metrics_delta,
    parse_llamacpp_metrics,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "telemetry"
#: What the three requests between the fixtures' scrapes did (from the client's side of the same run).
REQUESTS = 3


def _scrape(name: str) -> dict[str, float]:
    return parse_llamacpp_metrics((FIXTURES / name).read_text())


@pytest.fixture
def before():
    return _scrape("llamacpp-before.prom")


@pytest.fixture
def after():
    return _scrape("llamacpp-after.prom")


def test_real_scrape_flattens_counters_and_gauges(after):
    for name in ("llamacpp:prompt_tokens_total", "llamacpp:prompt_tokens_cached_total", "llamacpp:prompt_seconds_total",
                 "llamacpp:tokens_predicted_total", "llamacpp:tokens_predicted_seconds_total",
                 "llamacpp:n_decode_total", "llamacpp:requests_processing", "llamacpp:requests_deferred"):
        assert name in after, name
    assert after["llamacpp:tokens_predicted_total"] > 0


def test_interval_of_the_real_run(before, after):
    out = llamacpp_interval(before, after, requests=REQUESTS)
    m = out.metrics
    generated = after["llamacpp:tokens_predicted_total"] - before["llamacpp:tokens_predicted_total"]
    seconds = after["llamacpp:tokens_predicted_seconds_total"] - before["llamacpp:tokens_predicted_seconds_total"]
    assert m["server_generation_tokens"] == generated == 10 + 11 + 24  # the answers' completion_tokens
    assert m["server_prompt_tokens"] == 46 + 47 + 46  # the answers' prompt_tokens
    assert m["server_prompt_tokens_cached"] == 31 + 31
    # Each request spends its generation seconds over (its tokens - 1) decode steps.
    assert m["server_inter_token_latency_s"] == pytest.approx(seconds / (generated - REQUESTS))
    assert m["server_prompt_tokens"] == m["server_prompt_tokens_processed"] + m["server_prompt_tokens_cached"]
    assert m["server_prefill_s"] > 0 and m["server_prefill_tokens_per_s"] > 0
    assert m["server_requests_running"] == 0 and m["server_requests_waiting"] == 0
    # Names whose vLLM definitions these counters cannot give are never used.
    assert not {"server_ttft_s", "server_tpot_s", "server_e2e_latency_s", "server_requests"} & set(m)
    assert out.unavailable == {}


def test_per_request_figures_need_the_request_count(before, after):
    out = llamacpp_interval(before, after, requests=None)
    assert "server_inter_token_latency_s" not in out.metrics
    assert out.unavailable["server_inter_token_latency_s"] == "the number of requests in the interval is unknown"
    assert out.unavailable["server_prefill_s"] == "the number of requests in the interval is unknown"
    assert out.metrics["server_generation_tokens"] > 0  # the counts do not need it


def test_empty_interval_and_restart(after):
    same = llamacpp_interval(after, after, requests=0)
    assert same.metrics["server_generation_tokens"] == 0
    assert same.unavailable["server_inter_token_latency_s"].startswith("no request generated")
    # A restarted server's counters start again from zero: figures are left out, never negative.
    restarted = llamacpp_interval(after, {k: 0.0 for k in after}, requests=REQUESTS)
    assert "server_generation_tokens" not in restarted.metrics
    assert "went backwards" in restarted.unavailable["server_inter_token_latency_s"]


def test_six_digit_printing_is_not_trusted_beyond_its_precision():
    # A long-running server: 12.3457 million tokens printed as 1.23457e+07 moves in steps of 10.
    text_before = (
        "llamacpp:tokens_predicted_total 1.23457e+07\nllamacpp:tokens_predicted_seconds_total 123457\n"
        "llamacpp:prompt_tokens_total 5\nllamacpp:prompt_seconds_total 0.5\n"
    )
    text_after = text_before.replace("1.23457e+07", "1.23458e+07").replace("123457", "123458")
    out = llamacpp_interval(parse_llamacpp_metrics(text_before), parse_llamacpp_metrics(text_after), requests=1)
    assert "server_inter_token_latency_s" not in out.metrics
    assert "six significant digits" in out.unavailable["server_inter_token_latency_s"]
    # Small counters print exactly: the same interval on a fresh server is measured.
    fresh_before = {"llamacpp:tokens_predicted_total": 100.0, "llamacpp:tokens_predicted_seconds_total": 1.0}
    fresh_after = {"llamacpp:tokens_predicted_total": 165.0, "llamacpp:tokens_predicted_seconds_total": 1.64}
    assert llamacpp_metrics_delta(fresh_before, fresh_after, requests=1)["server_inter_token_latency_s"] == (
        pytest.approx(0.64 / 64)
    )
    assert MAX_ROUNDING_ERROR <= 0.01


def test_kv_cache_ratio_of_older_servers_is_a_percentage():
    out = llamacpp_metrics_delta({}, {"llamacpp:kv_cache_usage_ratio": 0.25, "llamacpp:tokens_predicted_total": 0})
    assert out["server_kv_cache_usage_pct"] == pytest.approx(25.0)


def test_not_prometheus_text_is_refused():
    with pytest.raises(ValueError):
        parse_llamacpp_metrics("<html>not metrics</html>\n{")
