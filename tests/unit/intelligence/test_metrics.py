"""intelligence/metrics.py on a series small enough to do by hand."""

from __future__ import annotations

import math

import pytest

from intelligence.metrics import NS_PER_YEAR, compute

YEAR = int(NS_PER_YEAR)


def test_metrics_by_hand():
    # initial 100, equity 110, 99, 108.9 at 1/4, 2/4 and 3/4 of a year
    ts = [YEAR // 4, YEAR // 2, 3 * YEAR // 4]
    m = compute(ts, [110.0, 99.0, 108.9], [1.0, 0.0, 1.0], 100.0, traded_notional=317.9,
                round_trips=[5.0, -1.0])
    # returns +10 %, -10 %, +10 %; mean 1/30, sample sd = sqrt(((2/30)^2 * 2 + (4/30)^2) / 2)
    r = [0.1, -0.1, 0.1]
    mean = sum(r) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    years = 0.5  # first sample to last
    ppy = 3 / years
    assert m["periods_per_year"] == pytest.approx(6.0)
    assert m["sharpe"] == pytest.approx(mean / sd * math.sqrt(ppy))
    # downside deviation sqrt((0 + 0.01 + 0) / 3)
    assert m["sortino"] == pytest.approx(mean / math.sqrt(0.01 / 3) * math.sqrt(ppy))
    assert m["total_return"] == pytest.approx(0.089)
    assert m["cagr"] == pytest.approx(1.089 ** 2 - 1)  # 8.9 % in half a year
    assert m["max_drawdown"] == pytest.approx(0.1)  # 110 -> 99
    assert m["turnover"] == pytest.approx(317.9 / ((110 + 99 + 108.9) / 3))
    assert m["hit_rate"] == 0.5 and m["exposure"] == pytest.approx(2 / 3)


def test_degenerate_runs_give_none_not_nan():
    m = compute([5], [100.0], [0.0], 100.0, 0.0, [])
    assert m["sharpe"] is None and m["cagr"] is None and m["hit_rate"] is None
    assert m["total_return"] == 0.0 and m["max_drawdown"] == 0.0
    flat = compute([1, 2, 3], [100.0, 100.0, 100.0], [0.0] * 3, 100.0, 0.0, [])
    assert flat["sharpe"] is None and flat["sortino"] is None
    assert compute([], [], [], 100.0, 0.0, [])["total_return"] == 0.0
