"""Statistics of one metric, as they travel in the protocol (server results, agent benchmark figures)."""

from __future__ import annotations

from pydantic import Field

from common.protocol.base import ProtocolModel

__all__ = ["MetricStatistics"]


class MetricStatistics(ProtocolModel):
    """Statistics of one metric over runs or repeats (see ``common.stats.describe``).

    Attributes:
        n: Number of values.
        mean: Mean.
        std: Sample standard deviation.
        min: Minimum.
        max: Maximum.
        median: Median.
        p90: 90th percentile.
        p95: 95th percentile.
        p99: 99th percentile.
        cv: Coefficient of variation (std / mean), None when the mean is 0.
        ci95: 95% confidence interval of the (arithmetic) mean, None for n < 2 and in the agent's hardware
            benchmark figures (the agent computes no confidence intervals). Never below zero for a series
            without negative values (see ``common.stats``).
        ci_method: How ``ci95`` was computed (``common.stats.CiMethod``: ``lognormal_cox``,
            ``bootstrap_bca``, ``student_t_nonneg``, ``student_t``); None without an interval.
        outliers: Indices into ``values`` flagged by ``outlier_rule``.
        outlier_rule: The robust rule used.
        values: Raw values, in run order.
        unit: Unit symbol.
    """

    n: int = Field(ge=1)
    mean: float
    std: float
    min: float
    max: float
    median: float
    p90: float
    p95: float
    p99: float
    cv: float | None = None
    ci95: tuple[float, float] | None = None
    ci_method: str | None = None
    outliers: list[int] = Field(default_factory=list)
    outlier_rule: str = "modified_z_mad>3.5"
    values: list[float] = Field(default_factory=list)
    unit: str = ""
