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


def test_ci95_student_t_known_value_for_a_series_that_can_be_negative():
    values = [10.0, -2.0, 11.0, 13.0, 9.0]
    (low, high), method = stats.ci95_with_method(values)
    half = 2.776445105 * stats.std(values) / math.sqrt(5)
    assert method == stats.CiMethod.STUDENT_T
    assert low == pytest.approx(stats.mean(values) - half)
    assert high == pytest.approx(stats.mean(values) + half)
    assert stats.ci95([1.0]) is None and stats.ci95_with_method([1.0]) is None


def test_busy_host_example_interval_is_not_negative():
    """73, 22 and 27 GFLOP/s: Student's t read [-29, 111]; the log-normal interval of the mean stays above 0."""
    values = [73.0, 22.0, 27.0]
    t_low, _ = stats._student_t(values)
    assert t_low < 0  # what the issue saw
    (low, high), method = stats.ci95_with_method(values)
    assert method == stats.CiMethod.LOGNORMAL_COX
    assert 0 < low < stats.mean(values) < high
    # Modified Cox (Olsson 2005) by hand: logs' mean and variance, t(0.975, 2) = 4.302652730.
    logs = [math.log(v) for v in values]
    ybar, var = stats.mean(logs), stats.std(logs) ** 2
    half = 4.302652730 * math.sqrt(var / 3 + var**2 / 4)
    assert low == pytest.approx(math.exp(ybar + var / 2 - half))
    assert high == pytest.approx(math.exp(ybar + var / 2 + half))
    d = stats.describe(values, unit="GFLOP/s")
    assert d.ci95 == pytest.approx((low, high)) and d.ci_method == "lognormal_cox"


def test_lognormal_interval_covers_the_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    sigma, n, trials = 0.6, 5, 2000
    true_mean = math.exp(sigma**2 / 2)
    hits = sum(
        low <= true_mean <= high
        for low, high in (stats.ci95(list(rng.lognormal(0.0, sigma, n))) for _ in range(trials))
    )
    assert 0.93 <= hits / trials <= 0.97


def test_bootstrap_interval_from_twenty_values_is_reproducible_and_within_the_range():
    rng = np.random.default_rng(3)
    values = list(rng.exponential(2.0, stats.BOOTSTRAP_MIN_N))
    (low, high), method = stats.ci95_with_method(values)
    assert method == stats.CiMethod.BOOTSTRAP_BCA
    assert min(values) <= low < stats.mean(values) < high <= max(values)
    assert stats.ci95_with_method(values) == ((low, high), method)  # fixed seed: same values, same interval
    # Below the threshold the log-normal interval is used.
    assert stats.ci95_with_method(values[:-1])[1] == stats.CiMethod.LOGNORMAL_COX


def test_zeros_and_long_series_use_the_t_interval_cut_at_zero():
    (low, high), method = stats.ci95_with_method([0.0, 0.0, 35.0])
    assert method == stats.CiMethod.STUDENT_T_NONNEG and low == 0.0 and high > 35.0
    long = [0.0] * stats.BOOTSTRAP_MAX_N + [1000.0]
    (low, high), method = stats.ci95_with_method(long)
    assert method == stats.CiMethod.STUDENT_T_NONNEG and low == 0.0 < high


def test_interval_of_a_series_without_spread_is_the_value():
    assert stats.ci95_with_method([5.0, 5.0, 5.0]) == ((5.0, 5.0), stats.CiMethod.LOGNORMAL_COX)
    assert stats.ci95([2.0] * 30) == (2.0, 2.0)


def test_every_method_has_a_label():
    assert set(stats.CI_METHOD_LABELS) == {m.value for m in stats.CiMethod}


def test_peak_outliers_are_only_the_slow_repeats():
    """For a best-of-N peak a fast repeat is the measurement; the robust rule flags only slow ones."""
    assert stats.outlier_indices([73.0, 22.0, 27.0]) == [0]
    assert stats.outlier_indices([73.0, 22.0, 27.0], side="low") == []
    assert stats.outlier_indices([70.0, 71.0, 72.0, 70.5, 20.0], side="low") == [4]
    peak = stats.describe([73.0, 22.0, 27.0], peak=True)
    assert peak.outliers == [] and peak.outlier_rule == descriptive.OUTLIER_RULE_LOW
    runs = stats.describe_runs([{"gflops.cpu.fp32": v, "run_wall_s": v} for v in (73.0, 22.0, 27.0)])
    assert runs["gflops.cpu.fp32"].outliers == [] and runs["run_wall_s"].outliers == [0]


@pytest.mark.parametrize(("cv", "text"), [(0.48, "unstable: CV 48%"), (0.1, None), (0.05, None), (None, None)])
def test_cv_warning(cv, text):
    assert stats.cv_warning(cv) == text
    assert stats.UNSTABLE_CV == 0.10


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
    assert summary.ci95 is None and full.ci95 is not None and full.ci_method == "lognormal_cox"
    assert summary.model_dump(exclude={"ci95", "ci_method"}) == full.model_dump(exclude={"ci95", "ci_method"})
