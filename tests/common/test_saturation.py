"""Peak, max goodput within objectives and Kleinrock's knee of hand-made throughput-delay curves."""

from __future__ import annotations

import math

import pytest

from common.saturation import kleinrock_power, summarize_sweep


def point(index, load, throughput, e2e_median, *, goodput=None, slo_met=None, mode="concurrency", **extra):
    """Figures of one point, with only what saturation reads (and per-dollar/joule figures for max_goodput)."""
    return {
        "index": index,
        "concurrency": load if mode == "concurrency" else None,
        "request_rate": load if mode == "request_rate" else None,
        "request_throughput": throughput / 100 if throughput is not None else None,
        "output_throughput": throughput,
        "goodput": goodput,
        "slo_met": slo_met,
        "e2e_s": None if e2e_median is None else {"median": e2e_median, "mean": e2e_median},
        "output_tokens_per_dollar": extra.get("per_dollar"),
        "output_tokens_per_joule": extra.get("per_joule"),
    }


# A classic curve: throughput climbs and flattens at 1000 tok/s, latency grows slowly then explodes.
#   load        1     2     4     8     16    32
#   tok/s       100   190   360   640   900   1000
#   e2e (s)     1.0   1.05  1.1   1.4   2.5   6.0
#   power       100   181   327   457   360   167   -> knee at 8
CURVE = [(1, 100, 1.0), (2, 190, 1.05), (4, 360, 1.1), (8, 640, 1.4), (16, 900, 2.5), (32, 1000, 6.0)]


def test_peak_is_the_highest_output_throughput_and_knee_maximizes_power():
    figures = [point(i, load, tput, e2e) for i, (load, tput, e2e) in enumerate(CURVE)]
    summary = summarize_sweep(figures, "concurrency")
    assert summary["peak"] == {"index": 5, "load": 32, "request_throughput": 10.0, "output_throughput": 1000}
    assert summary["knee"] == {"index": 3, "load": 8, "output_throughput": 640, "e2e_median_s": 1.4}
    # Without objectives there is no goodput to maximize.
    assert summary["max_goodput"] is None
    assert kleinrock_power(figures[3]) == pytest.approx(640 / 1.4)


def test_max_goodput_is_the_best_point_that_meets_the_objectives():
    # Goodput keeps rising with load, but the last two points miss the objectives: the best one within is load 8.
    figures = [
        point(0, 1.0, 100, 1.0, goodput=1.0, slo_met=True, mode="request_rate", per_dollar=1e5, per_joule=2.0),
        point(1, 4.0, 360, 1.1, goodput=3.9, slo_met=True, mode="request_rate", per_dollar=3e5, per_joule=5.0),
        point(2, 8.0, 640, 1.4, goodput=7.5, slo_met=True, mode="request_rate", per_dollar=5e5, per_joule=7.0),
        point(3, 16.0, 900, 2.5, goodput=9.0, slo_met=False, mode="request_rate"),
        point(4, "inf", 1000, 6.0, goodput=2.0, slo_met=False, mode="request_rate"),
    ]
    summary = summarize_sweep(figures, "request_rate")
    assert summary["max_goodput"] == {
        "index": 2, "load": 8.0, "goodput": 7.5, "output_throughput": 640,
        "output_tokens_per_dollar": 5e5, "output_tokens_per_joule": 7.0,
    }
    assert summary["peak"]["load"] == "inf" and summary["peak"]["index"] == 4
    assert summary["knee"]["load"] == 8.0


def test_no_point_meets_the_objectives():
    figures = [point(0, 1, 100, 1.0, goodput=0.0, slo_met=False), point(1, 2, 150, 3.0, goodput=0.0, slo_met=False)]
    assert summarize_sweep(figures, "concurrency")["max_goodput"] is None


def test_ties_go_to_the_earliest_point():
    figures = [point(0, 1, 500, 1.0), point(1, 2, 500, 1.0)]
    summary = summarize_sweep(figures, "concurrency")
    assert summary["peak"]["index"] == 0 and summary["knee"]["index"] == 0


def test_points_without_figures_are_skipped_and_an_empty_sweep_has_no_summary():
    # A point where every request failed has no throughput and no latency; NaN and zero latency are not figures.
    figures = [
        point(0, 1, None, None),
        point(1, 2, 0.0, None),
        point(2, 4, 300, 0.0),
        point(3, 8, math.nan, 1.0),
        point(4, 16, 200, 2.0),
    ]
    summary = summarize_sweep(figures, "concurrency")
    assert summary["peak"]["index"] == 2  # 300 tok/s, even though its latency is unusable
    assert summary["knee"]["index"] == 4  # the only point with both figures
    assert summarize_sweep([], "concurrency") == {"peak": None, "max_goodput": None, "knee": None}


def test_unknown_mode_is_refused_by_name():
    with pytest.raises(ValueError, match="mode: must be one of concurrency, request_rate"):
        summarize_sweep([], "batch")
