"""Statistics helpers against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common import descriptive, stats


def test_mean_std_median_known_values():
    values = [2, 4, 4, 4, 5, 5, 7, 9]
    assert stats.mean(values) == 5.0
    # Sample std (n-1): sum of squared deviations 32 / 7
    assert stats.std(values) == pytest.approx(math.sqrt(32 / 7))
    assert stats.median(values) == 4.5
    assert stats.std([3.0]) == 0.0


@pytest.mark.parametrize("q", [0, 10, 50, 90, 95, 99, 100])
def test_percentile_matches_numpy_linear(q):
    values = [0.31, 0.12, 0.95, 0.44, 0.27, 0.68, 0.51]
    assert stats.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.706204736), (2, 4.302652730), (4, 2.776445105), (9, 2.262157163), (30, 2.042272456), (100, 1.983971519)],
)
def test_t_quantiles_known_values(df, expected):
    assert stats.t_ppf(0.975, df) == pytest.approx(expected, abs=1e-7)


def test_ci95_known_value():
    values = [10.0, 12.0, 11.0, 13.0, 9.0]
    low, high = stats.ci95(values)
    half = 2.776445105 * stats.std(values) / math.sqrt(5)
    assert low == pytest.approx(11.0 - half)
    assert high == pytest.approx(11.0 + half)
    assert stats.ci95([1.0]) is None


def test_outliers_robust_rule_flags_at_small_n():
    # A 2-sigma rule cannot flag anything at n=5; the MAD rule flags the obvious outlier.
    values = [1.0, 1.1, 0.9, 1.05, 9.0]
    m, s = stats.mean(values), stats.std(values)
    assert not [v for v in values if abs(v - m) > 2 * s]
    assert stats.outlier_indices(values) == [4]


def test_outliers_none_for_tight_or_identical_series():
    assert stats.outlier_indices([1.0, 1.01, 0.99, 1.0]) == []
    assert stats.outlier_indices([2.0, 2.0, 2.0, 2.0]) == []
    # MAD is 0 (most values identical) but one value differs a lot: still flagged.
    assert stats.outlier_indices([2.0, 2.0, 2.0, 2.0, 2.0, 50.0]) == [5]


def test_describe_full_statistics():
    values = [1.0, 2.0, 3.0, 4.0, 100.0]
    d = stats.describe(values, unit="s")
    assert d.n == 5
    assert d.mean == 22.0
    assert d.min == 1.0 and d.max == 100.0
    assert d.median == 3.0
    assert d.p95 == pytest.approx(float(np.percentile(values, 95)))
    assert d.cv == pytest.approx(d.std / d.mean)
    assert d.outliers == [4]
    assert d.values == values
    assert d.unit == "s"


def test_describe_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="empty"):
        stats.describe([])
    with pytest.raises(ValueError, match="NaN"):
        stats.describe([1.0, float("nan")])


def test_describe_runs_skips_absent_metrics():
    runs = [{"a": 1.0, "b": None}, {"a": 3.0}, {"a": 5.0, "b": 2.0}]
    out = stats.describe_runs(runs)
    assert out["a"].n == 3 and out["a"].mean == 3.0
    assert out["b"].n == 1 and out["b"].values == [2.0]
    assert "c" not in stats.describe_runs(runs, ["a", "c"])


def test_percentile_edge_cases():
    assert stats.percentile([4.2], 99) == 4.2
    assert stats.percentile([3.0, 1.0], 0) == 1.0 and stats.percentile([3.0, 1.0], 100) == 3.0
    values = [0.31, 0.12, 0.95, 0.44]
    assert stats.percentile(values, 97.5) == pytest.approx(float(np.percentile(values, 97.5)))
    assert stats.percentile(values, 99.99) == pytest.approx(float(np.percentile(values, 99.99)))
    with pytest.raises(ValueError, match="two decimals"):
        stats.percentile(values, 33.333)
    with pytest.raises(ValueError, match="within"):
        stats.percentile(values, 101)
    with pytest.raises(ValueError, match="empty"):
        stats.percentile([], 50)


def test_summary_without_scipy_matches_describe_but_for_the_interval():
    values = [1.0, 2.0, 3.0, 4.0, 100.0]
    summary = descriptive.summarize(values, unit="s")
    full = stats.describe(values, unit="s")
    assert summary.ci95 is None and full.ci95 is not None
    assert summary.model_dump(exclude={"ci95"}) == full.model_dump(exclude={"ci95"})
