"""Load-point figures: against NumPy on random data (a port of ``vllm bench serve``'s ``calculate_metrics``) and
against hand-computed tiny cases."""

from __future__ import annotations

import math
import random
import time

import numpy as np
import pytest

from common.loadmetrics import (
    DISTRIBUTIONS,
    distribution,
    early_stop_reason,
    percentile_sorted,
    point_figures,
    point_series,
)
from common.protocol.load import EarlyStop, LoadPointRun, RequestRecord, ServiceLevelObjectives

FIGURE_KEYS = {
    "index", "concurrency", "request_rate", "completed", "failed", "timed_out", "error_rate", "duration_s",
    "total_input_tokens", "total_output_tokens", "request_throughput", "output_throughput",
    "total_token_throughput", "goodput", "achieved_concurrency", "slo_met", "ttft_s", "tpot_s", "itl_s", "e2e_s",
    "power_w", "energy_j", "energy_per_output_token_j", "output_tokens_per_joule", "output_tokens_per_dollar",
}  # fmt: skip


def _random_point(rng: random.Random, n: int, *, failures: bool = True) -> LoadPointRun:
    """A point of ``n`` requests with random timings, some of them failed or timed out."""
    requests = []
    for i in range(n):
        sent = i * 0.01 + rng.random() * 0.005
        kind = rng.random() if failures else 1.0
        if kind < 0.05:
            requests.append(
                RequestRecord(
                    scheduled_s=sent, sent_s=sent, error="endpoint answered HTTP 500", e2e_s=rng.random() * 0.01
                )
            )
            continue
        if kind < 0.08:
            requests.append(
                RequestRecord(
                    scheduled_s=sent,
                    sent_s=sent,
                    timed_out=True,
                    error="timed out",
                    ttft_s=0.2,
                    e2e_s=2.0,
                    itl_s=[0.1],
                    output_tokens=2,
                )
            )
            continue
        tokens = rng.choice([1, 1, 2, 5, 17, 40])
        ttft = rng.lognormvariate(-3, 0.6)
        itl = [rng.lognormvariate(-5, 0.4) for _ in range(tokens - 1)]
        # A final EOS step without text after the last token, as vLLM streams it: e2e goes past the last ITL.
        e2e = ttft + sum(itl) + rng.random() * 0.002
        requests.append(
            RequestRecord(
                scheduled_s=sent,
                sent_s=sent,
                ttft_s=ttft,
                e2e_s=e2e,
                itl_s=itl,
                prompt_tokens=rng.randint(5, 500),
                output_tokens=tokens,
            )
        )
    return LoadPointRun(index=3, concurrency=8, duration_s=n * 0.01 + 1.0, requests=requests)


def _vllm_reference(point: LoadPointRun, goodput: dict[str, float]) -> dict[str, object]:
    """``calculate_metrics`` of ``vllm/benchmarks/serve.py``, ported line by line onto RequestRecords (NumPy)."""
    actual_output_lens, total_input, completed, good_completed = [], 0, 0, 0
    itls, tpots, all_tpots, ttfts, e2els = [], [], [], [], []
    for r in point.requests:
        if r.error is None and not r.timed_out:
            output_len = r.output_tokens
            actual_output_lens.append(output_len)
            total_input += r.prompt_tokens
            tpot = 0
            if output_len > 1:
                tpot = (r.e2e_s - r.ttft_s) / (output_len - 1)
                tpots.append(tpot)
            all_tpots.append(tpot)
            itls += r.itl_s
            ttfts.append(r.ttft_s)
            e2els.append(r.e2e_s)
            completed += 1
        else:
            actual_output_lens.append(0)
    if goodput:
        valid_metrics, slo_values = [], []
        for key, series in (("ttft", ttfts), ("tpot", all_tpots), ("e2el", e2els)):
            if key in goodput:
                valid_metrics.append(series)
                slo_values.append(goodput[key] / 1000.0)
        for req_metric in zip(*valid_metrics, strict=True):
            if all(s >= r for s, r in zip(slo_values, req_metric, strict=True)):
                good_completed += 1
    dur_s = point.duration_s
    out: dict[str, object] = {
        "completed": completed,
        "total_input_tokens": total_input,
        "total_output_tokens": sum(actual_output_lens),
        "request_throughput": completed / dur_s,
        "goodput": good_completed / dur_s,
        "output_throughput": sum(actual_output_lens) / dur_s,
        "total_token_throughput": (total_input + sum(actual_output_lens)) / dur_s,
    }
    for key, series in (("ttft_s", ttfts), ("tpot_s", tpots), ("itl_s", itls), ("e2e_s", e2els)):
        out[key] = {
            "mean": np.mean(series), "std": np.std(series), "median": np.median(series),
            "p90": np.percentile(series, 90), "p95": np.percentile(series, 95), "p99": np.percentile(series, 99),
            "min": np.min(series), "max": np.max(series), "count": len(series),
        }  # fmt: skip
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1001])
def test_percentile_matches_numpy_linear_on_random_data(n):
    rng = random.Random(n)
    values = sorted(rng.expovariate(3.0) for _ in range(n))
    for q in (0, 0.1, 1, 25, 33.3, 50, 90, 95, 99, 99.9, 99.99, 100):
        assert percentile_sorted(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-13, abs=0)


def test_percentile_refuses_nothing_and_bad_q():
    with pytest.raises(ValueError, match="empty"):
        percentile_sorted([], 50)
    with pytest.raises(ValueError, match="q must be between 0 and 100"):
        percentile_sorted([1.0], 101)


def test_distribution_matches_numpy_with_population_std():
    rng = random.Random(7)
    values = [rng.gammavariate(2.0, 0.01) for _ in range(5000)]
    d = distribution(values)
    assert d is not None
    assert d["count"] == 5000
    assert d["mean"] == pytest.approx(float(np.mean(values)), rel=1e-12)
    assert d["std"] == pytest.approx(float(np.std(values)), rel=1e-10)  # np.std: denominator n
    assert d["median"] == pytest.approx(float(np.median(values)), rel=1e-13)
    for q in (90, 95, 99):
        assert d[f"p{q}"] == pytest.approx(float(np.percentile(values, q)), rel=1e-13)
    assert (d["min"], d["max"]) == (min(values), max(values))
    assert distribution([]) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_figures_match_vllm_calculate_metrics_on_random_points(seed):
    rng = random.Random(seed)
    point = _random_point(rng, 2000)
    slo = ServiceLevelObjectives(ttft_ms=60, tpot_ms=8, e2e_ms=300)
    ours = point_figures(point, slo)
    ref = _vllm_reference(point, {"ttft": 60, "tpot": 8, "e2el": 300})
    assert set(ours) == FIGURE_KEYS
    for key in ("completed", "total_input_tokens", "total_output_tokens"):
        assert ours[key] == ref[key], key
    for key in ("request_throughput", "goodput", "output_throughput", "total_token_throughput"):
        assert ours[key] == pytest.approx(ref[key], rel=1e-12), key
    assert 0 < ours["goodput"] < ours["request_throughput"]  # the objectives bite: the comparison means something
    for key in DISTRIBUTIONS:
        for stat, value in ref[key].items():
            assert ours[key][stat] == pytest.approx(float(value), rel=1e-9), f"{key}.{stat}"
    assert ours["completed"] + ours["failed"] + ours["timed_out"] == len(point.requests)


def test_goodput_per_objective_matches_vllm():
    point = _random_point(random.Random(11), 1500)
    for goodput in ({"ttft": 50}, {"tpot": 7}, {"e2el": 120}, {"ttft": 80, "e2el": 200}):
        slo = ServiceLevelObjectives(
            ttft_ms=goodput.get("ttft"), tpot_ms=goodput.get("tpot"), e2e_ms=goodput.get("e2el")
        )
        assert point_figures(point, slo)["goodput"] == pytest.approx(_vllm_reference(point, goodput)["goodput"])


def _tiny_point() -> LoadPointRun:
    """Three requests worked out by hand below, one failed, one timed out."""
    return LoadPointRun(
        index=1,
        request_rate=4.0,
        duration_s=2.0,
        power_w=100.0,
        requests=[
            RequestRecord(scheduled_s=0.0, sent_s=0.0, ttft_s=0.1, e2e_s=0.5, itl_s=[0.1, 0.1, 0.1],
                          prompt_tokens=10, output_tokens=5),
            RequestRecord(scheduled_s=0.25, sent_s=0.25, ttft_s=0.3, e2e_s=0.3, itl_s=[],
                          prompt_tokens=20, output_tokens=1),
            RequestRecord(scheduled_s=0.5, sent_s=0.5, ttft_s=0.2, e2e_s=1.1, itl_s=[0.3, 0.3, 0.3],
                          prompt_tokens=30, output_tokens=4),
            RequestRecord(scheduled_s=0.75, sent_s=0.76, error="endpoint answered HTTP 503", e2e_s=0.02),
            RequestRecord(scheduled_s=1.0, sent_s=1.0, timed_out=True, error="timed out", ttft_s=0.1,
                          e2e_s=0.9, output_tokens=3),
        ],
    )  # fmt: skip


def test_tiny_point_by_hand():
    slo = ServiceLevelObjectives(ttft_ms=250, tpot_ms=201, percentile=50, max_error_rate=0.5)
    f = point_figures(_tiny_point(), slo, cost_per_hour=3.6)
    assert (f["index"], f["request_rate"], f["concurrency"]) == (1, 4.0, None)
    assert (f["completed"], f["failed"], f["timed_out"]) == (3, 1, 1)
    assert f["error_rate"] == pytest.approx(2 / 5)
    assert (f["total_input_tokens"], f["total_output_tokens"]) == (60, 10)  # failed requests count no tokens
    assert f["request_throughput"] == pytest.approx(1.5)
    assert f["output_throughput"] == pytest.approx(5.0)
    assert f["total_token_throughput"] == pytest.approx(35.0)
    # TPOT: (0.5-0.1)/4 = 0.1 and (1.1-0.2)/3 = 0.3; the 1-token request has none (TPOT 0 for goodput).
    assert f["tpot_s"]["count"] == 2
    assert f["tpot_s"]["mean"] == pytest.approx(0.2)
    assert f["tpot_s"]["std"] == pytest.approx(0.1)  # population std of {0.1, 0.3}
    # Good: request 1 (ttft 0.1, tpot 0.1) and request 2 (ttft 0.3 > 0.25: no); request 3 (tpot 0.3 > 0.201: no).
    assert f["goodput"] == pytest.approx(0.5)
    # ITL pooled: 0.1 x3, 0.3 x3 -> median 0.2, p90 = 0.3.
    assert f["itl_s"]["count"] == 6
    assert f["itl_s"]["median"] == pytest.approx(0.2)
    assert f["itl_s"]["p90"] == pytest.approx(0.3)
    assert f["ttft_s"]["median"] == pytest.approx(0.2)
    assert f["e2e_s"]["max"] == pytest.approx(1.1)
    # In flight: 0.5 + 0.3 + 1.1 + 0.02 + 0.9 = 2.82 s over 2 s.
    assert f["achieved_concurrency"] == pytest.approx(1.41)
    # Median TTFT 0.2 <= 0.25, median TPOT 0.2 <= 0.201, error rate 0.4 <= 0.5.
    assert f["slo_met"] is True
    # Energy from power: 100 W x 2 s = 200 J over 10 tokens.
    assert f["energy_j"] == pytest.approx(200.0)
    assert f["energy_per_output_token_j"] == pytest.approx(20.0)
    assert f["output_tokens_per_joule"] == pytest.approx(0.05)
    # 5 tok/s x 3600 s / $3.6 per hour.
    assert f["output_tokens_per_dollar"] == pytest.approx(5000.0)


def test_slo_met_judges_the_percentile_and_the_error_rate():
    point = _tiny_point()
    assert point_figures(point, ServiceLevelObjectives(ttft_ms=250, percentile=50, max_error_rate=0.5))["slo_met"]
    # p99 TTFT is ~0.298 s: over a 250 ms target.
    assert not point_figures(point, ServiceLevelObjectives(ttft_ms=250, percentile=99, max_error_rate=0.5))["slo_met"]
    # 40% failed: over a 10% limit, whatever the latencies.
    assert not point_figures(point, ServiceLevelObjectives(ttft_ms=1000, max_error_rate=0.1))["slo_met"]
    assert not point_figures(point, ServiceLevelObjectives(e2e_ms=1000, percentile=99, max_error_rate=0.5))["slo_met"]
    assert point_figures(point, ServiceLevelObjectives(e2e_ms=1100, percentile=99, max_error_rate=0.5))["slo_met"]


def test_without_slo_or_cost_or_requests():
    f = point_figures(_tiny_point(), None)
    assert f["goodput"] is None and f["slo_met"] is None and f["output_tokens_per_dollar"] is None
    empty = point_figures(LoadPointRun(index=0, concurrency=1, duration_s=0.0), ServiceLevelObjectives(e2e_ms=1))
    assert set(empty) == FIGURE_KEYS
    assert empty["completed"] == 0 and empty["error_rate"] is None
    assert empty["request_throughput"] is None and empty["slo_met"] is False
    assert all(empty[key] is None for key in DISTRIBUTIONS)
    all_failed = LoadPointRun(
        index=0,
        concurrency=1,
        duration_s=1.0,
        requests=[RequestRecord(scheduled_s=0, sent_s=0, error="connection failed")],
    )
    f = point_figures(all_failed, ServiceLevelObjectives(e2e_ms=1, max_error_rate=1.0))
    assert f["error_rate"] == 1.0 and f["request_throughput"] == 0.0 and f["goodput"] == 0.0
    assert f["slo_met"] is False  # nothing completed: nothing met
    assert f["output_tokens_per_joule"] is None and f["achieved_concurrency"] == 0.0


def test_point_series_are_the_completed_requests_raw_values():
    series = point_series(_tiny_point())
    assert series["ttft_s"] == [0.1, 0.3, 0.2]
    assert series["e2e_s"] == [0.5, 0.3, 1.1]
    assert series["tpot_s"] == pytest.approx([0.1, 0.3])
    assert series["itl_s"] == [0.1, 0.1, 0.1, 0.3, 0.3, 0.3]


def _figures(median_e2e: float, error_rate: float) -> dict[str, object]:
    return {"e2e_s": {"median": median_e2e}, "error_rate": error_rate}


def test_early_stop_reasons():
    rule = EarlyStop(latency_factor=20, max_error_rate=0.5)
    assert early_stop_reason([], rule) is None
    assert early_stop_reason([_figures(0.5, 0.0)], rule) is None
    assert early_stop_reason([_figures(0.5, 0.0), _figures(9.9, 0.5)], rule) is None  # 19.8x, 50% is the limit
    assert early_stop_reason([_figures(0.5, 0.0), _figures(10.5, 0.0)], rule) == (
        "median e2e latency 10.5 s is more than 20 times the first point's 0.5 s"
    )
    assert early_stop_reason([_figures(0.5, 0.0), _figures(1.0, 0.625)], rule) == (
        "62.5% of requests failed or timed out (limit 50%)"
    )
    # A point where nothing completed has no latency: the error rate is what stops it.
    assert early_stop_reason([_figures(0.5, 0.0), {"e2e_s": None, "error_rate": 1.0}], rule) == (
        "100% of requests failed or timed out (limit 50%)"
    )
    off = EarlyStop(latency_factor=None, max_error_rate=None)
    assert early_stop_reason([_figures(0.5, 0.0), _figures(100.0, 1.0)], off) is None


def test_fast_enough_for_a_large_point():
    rng = random.Random(3)
    requests = [
        RequestRecord(scheduled_s=i * 1e-3, sent_s=i * 1e-3, ttft_s=0.05 + rng.random() * 0.01,
                      e2e_s=0.2 + rng.random() * 0.01, itl_s=[0.01] * 15, prompt_tokens=100, output_tokens=16)
        for i in range(100_000)
    ]  # fmt: skip
    point = LoadPointRun(index=0, request_rate=1000.0, duration_s=100.3, requests=requests)
    start = time.perf_counter()
    f = point_figures(point, ServiceLevelObjectives(ttft_ms=55, e2e_ms=205))
    elapsed = time.perf_counter() - start
    print(f"point_figures of 100,000 requests (1.5M ITL values): {elapsed:.2f} s")
    assert f["completed"] == 100_000 and f["itl_s"]["count"] == 1_500_000
    assert math.isclose(
        f["goodput"] * point.duration_s, sum(1 for r in requests if r.ttft_s <= 0.055 and r.e2e_s <= 0.205)
    )
    assert elapsed < 10.0, f"point_figures took {elapsed:.2f} s for 100,000 requests"
