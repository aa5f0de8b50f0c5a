"""intelligence/indicators.py: precision over long series, exact zeros, and ADX against a
straightforward reference written from the definition (the Spark comparison of every batch
feature is test_indicators_vs_spark.py)."""

from __future__ import annotations

import math
import random
import statistics
from fractions import Fraction

import pytest

from intelligence.indicators import ADX, EMA, RollingMoments, RollingOLS, RollingSum, Wilder


def exact_mean_sd(window: list[float]) -> tuple[float, float]:
    values = [Fraction(x) for x in window]
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    return float(mean), math.sqrt(var)


def test_rolling_moments_stay_within_1e_12_over_a_long_series_with_scale_changes():
    rng = random.Random(5)
    n, price = 20, 100.0
    stats = RollingMoments(n)
    window: list[float] = []
    worst = 0.0
    for t in range(200_000):
        # a random walk with volatility switching by 1000x and a jump in level now and then
        vol = 1e-5 if (t // 5_000) % 2 else 1e-2
        price *= math.exp(rng.gauss(0, vol)) * (50.0 if t == 100_000 else 1.0)
        stats.update(price)
        window = (window + [price])[-n:]
        if t % 997 == 0 and t >= n:
            mean, sd = exact_mean_sd(window)
            worst = max(worst, abs(stats.mean - mean) / mean, abs(stats.sd - sd) / sd)
    assert worst < 1e-12


def test_rolling_sum_recovers_after_a_huge_value_leaves_the_window():
    s = RollingSum(3)
    for x in (1e16, 1.0, 1.0, 1.0, 2.0, 3.0):
        s.update(x)
    assert s.value == 6.0  # adding the new value and subtracting the old one gives 4.0 here
    zeros = RollingSum(2)
    for x in (0.1, 0.2, 0.0, 0.0):
        zeros.update(x)
    assert zeros.value == 0.0  # exactly: "null when the volume sum is 0" must see 0


def test_constant_window_has_sd_exactly_zero():
    stats = RollingMoments(4)
    for x in (0.1, 0.1, 0.1, 0.1):
        stats.update(x)
    assert stats.sd == 0.0 and stats.mean == 0.1
    stats.update(0.2)
    assert stats.sd == pytest.approx(statistics.pstdev([0.1, 0.1, 0.1, 0.2]), rel=1e-12)


def test_ema_and_wilder_seeding():
    ema = EMA(3)
    assert [ema.update(x) for x in (1.0, 2.0, 3.0, 4.0)] == [None, None, 2.0, 3.0]  # 0.5 * 4 + 0.5 * 2
    wilder = Wilder(2)
    assert [wilder.update(x) for x in (2.0, 4.0, 9.0)] == [None, 3.0, 6.0]  # (3 * 1 + 9) / 2


def test_rolling_ols_matches_a_direct_fit():
    rng = random.Random(1)
    ols = RollingOLS(30)
    points = []
    for _ in range(500):
        x = 50 + rng.gauss(0, 5)
        y = 3.0 + 1.7 * x + rng.gauss(0, 0.5)
        ols.update(x, y)
        points = (points + [(x, y)])[-30:]
    mx = sum(p[0] for p in points) / 30
    my = sum(p[1] for p in points) / 30
    beta = sum((p[0] - mx) * (p[1] - my) for p in points) / sum((p[0] - mx) ** 2 for p in points)
    resid = [p[1] - (my - beta * mx) - beta * p[0] for p in points]
    assert ols.beta == pytest.approx(beta, rel=1e-10)
    assert ols.alpha == pytest.approx(my - beta * mx, rel=1e-10)
    assert ols.resid_sd == pytest.approx(math.sqrt(sum(r * r for r in resid) / 30), rel=1e-9)


def reference_adx(highs, lows, closes, n):
    """ADX straight from the definition: arrays, TA-Lib's sum-based Wilder smoothing of DM and TR."""
    length = len(closes)
    plus, minus, tr = [0.0] * length, [0.0] * length, [0.0] * length
    for t in range(1, length):
        up, down = highs[t] - highs[t - 1], lows[t - 1] - lows[t]
        plus[t] = up if up > down and up > 0 else 0.0
        minus[t] = down if down > up and down > 0 else 0.0
        tr[t] = max(highs[t] - lows[t], abs(highs[t] - closes[t - 1]), abs(lows[t] - closes[t - 1]))
    out = [None] * length
    s_plus, s_minus, s_tr = sum(plus[1:n + 1]), sum(minus[1:n + 1]), sum(tr[1:n + 1])
    dx = []
    for t in range(n, length):
        if t > n:
            s_plus = s_plus - s_plus / n + plus[t]
            s_minus = s_minus - s_minus / n + minus[t]
            s_tr = s_tr - s_tr / n + tr[t]
        di_p, di_m = 100 * s_plus / s_tr, 100 * s_minus / s_tr
        dx.append(100 * abs(di_p - di_m) / (di_p + di_m) if di_p + di_m else 0.0)
        if len(dx) == n:
            out[t] = sum(dx) / n
        elif len(dx) > n:
            out[t] = (out[t - 1] * (n - 1) + dx[-1]) / n
    return out


def test_adx_matches_the_reference():
    rng = random.Random(9)
    highs, lows, closes = [], [], []
    price = 100.0
    for _ in range(400):
        price += rng.gauss(0.05, 1.0)
        closes.append(price)
        highs.append(price + abs(rng.gauss(0, 0.5)))
        lows.append(price - abs(rng.gauss(0, 0.5)))
    adx = ADX(14)
    online = [adx.update(h, lo, c) for h, lo, c in zip(highs, lows, closes, strict=True)]
    expected = reference_adx(highs, lows, closes, 14)
    assert online[:27] == [None] * 27 and online[27] is not None
    for a, b in zip(online[27:], expected[27:], strict=True):
        assert a == pytest.approx(b, rel=1e-9)
