"""The strategies' decisions on short series worked out by hand, and building them from conf/."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from intelligence.backtest import Backtest
from intelligence.domain import Bar
from intelligence.strategies import (
    MlSignal,
    Pairs,
    RegimeSelector,
    TrendFollowing,
    build_strategy,
    with_overrides,
)
from intelligence.strategies.mean_reversion import MeanReversion
from tradelake.config import load_config

MIN = 60_000_000_000


def flat_bars(closes, symbol="AAA", spread=0.0):
    return [Bar(i * MIN, symbol, "1m", c, c + spread, c - spread, c, 100.0) for i, c in enumerate(closes)]


def decisions(strategy, bars):
    r = Backtest(strategy, initial_cash=1e6).run(bars)
    return [(s.ts // MIN - 1, s.symbol, s.signal_type, s.target_position) for s in r.signals]


def test_trend_enters_with_momentum_and_flips_when_the_cross_reverses():
    # sma 2 / sma 3, momentum over 2 bars. t=3: sma2 10.5 > sma3 10.33, momentum 11/10 - 1 > 0 -> long.
    # t=4..6 the cross holds. t=7: sma2 11.5 < sma3 12, momentum 11/13 - 1 < 0 -> short.
    closes = [10, 10, 10, 11, 12, 13, 12, 11, 10, 9]
    got = decisions(TrendFollowing(2, 3, "sma", momentum_window=2, qty=10), flat_bars(closes))
    assert got == [(3, "AAA", "entry", 10.0), (7, "AAA", "entry", -10.0)]
    # momentum filter: with min_momentum 0.2 the 10 % move at t=3 is not enough, and no short opens
    # either (11/13 - 1 = -15 %): nothing happens
    assert decisions(TrendFollowing(2, 3, "sma", 2, min_momentum=0.2, qty=10), flat_bars(closes)) == []


def test_pairs_enters_on_the_spread_z_score_with_the_ols_hedge_ratio():
    # window 4 of (x, y): (1, 2), (2, 4), (3, 6), (4, 9): mean x 2.5, mean y 5.25,
    # cov = (4.875 + 0.625 + 0.375 + 5.625) / 4 = 2.875, var x = 1.25 -> beta 2.3, alpha -0.5;
    # residuals 0.2, -0.1, -0.4, 0.3: sd sqrt(0.3 / 4) = 0.27386; z = 0.3 / 0.27386 = 1.095 > 1
    # -> y rich: short 100 y, long 2.3 * 100 = 230 x
    xs, ys = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 9.0]
    bars = sorted(flat_bars(ys, "YYY") + flat_bars(xs, "XXX"), key=lambda b: (b.ts, b.symbol))
    strategy = Pairs(("YYY", "XXX"), window=4, entry_z=1.0, exit_z=0.5, qty=100)
    got = decisions(strategy, bars)
    assert got[0] == (3, "YYY", "entry", -100.0)
    assert got[1][:3] == (3, "XXX", "entry") and got[1][3] == pytest.approx(230.0)
    assert strategy.ols.beta == pytest.approx(2.3) and strategy.ols.alpha == pytest.approx(-0.5)


def test_pairs_waits_for_both_legs_of_a_timestamp():
    strategy = Pairs(("YYY", "XXX"), window=2, qty=1)
    Backtest(strategy).run(flat_bars([1.0, 2.0, 3.0], "YYY"))  # x never arrives
    assert len(strategy.ols.buf) == 0


class OnlyReturn:
    """A real (if tiny) linear model: forecast = 1.0 * ret."""

    feature_names = ("ret",)
    version = "test-1"

    def predict(self, features: Mapping[str, float]) -> float:
        return 1.0 * features["ret"]


def test_ml_signal_thresholds_the_models_forecast():
    # ret: t=1 1 % -> long; t=2 0.198 % -> flat; t=3 -1.19 % -> short (threshold 0.5 %)
    got = decisions(MlSignal(OnlyReturn(), threshold=0.005, qty=5), flat_bars([100.0, 101.0, 101.2, 100.0]))
    assert got == [(1, "AAA", "alpha", 5.0), (2, "AAA", "exit", 0.0), (3, "AAA", "alpha", -5.0)]


def test_ml_signal_refuses_a_model_reading_unknown_columns():
    class Odd(OnlyReturn):
        feature_names = ("sentiment",)

    with pytest.raises(ValueError, match="sentiment"):
        MlSignal(Odd())
    with pytest.raises(TypeError):
        MlSignal(object())


def test_selector_follows_the_active_regimes_strategy():
    # 40 bars up by 1 each (high = close + 0.5, low = close - 0.5): +DM 1, -DM 0 every bar, so
    # DX = 100 and ADX = 100 from t = 27: trend regime, and the trend strategy is long by then.
    # Then 80 bars oscillating +-0.5 around a level: DM alternates, ADX decays below 25: range regime.
    up = [100.0 + i for i in range(40)]
    chop = [139.0 + (0.5 if i % 2 else -0.5) for i in range(80)]
    bars = flat_bars(up + chop, spread=0.5)
    trend = TrendFollowing(3, 6, "sma", momentum_window=3, qty=10, strategy_id="t")
    mr = MeanReversion(window=10, entry_z=1.9, exit_z=0.1, qty=10, strategy_id="m")
    selector = RegimeSelector(trend, mr, adx_window=14, trend_threshold=25.0, qty=10)
    r = Backtest(selector).run(bars)
    regimes = [(s.ts // MIN - 1, s.signal_type) for s in r.signals if s.signal_type.startswith("regime")]
    assert regimes[0] == (27, "regime_trend")  # ADX needs 2 * 14 - 1 moves
    assert regimes[-1][1] == "regime_range" and regimes[-1][0] > 40
    positions = {s.ts // MIN - 1: s.target_position for s in r.signals if s.target_position is not None}
    assert positions[27] == 10.0  # the trend strategy's long, adopted when the trend regime starts
    assert all(s.strategy_id == selector.strategy_id for s in r.signals)  # subs never reach the engine


def test_build_from_the_profile_and_overrides():
    icfg = load_config("local").intelligence
    mr = build_strategy("mean_reversion", icfg)
    assert (mr.window, mr.entry_z, mr.exit_z, mr.qty) == (20, 2.0, 0.5, 100.0)
    tuned = with_overrides(icfg, "mean_reversion",
                           {"window": "30", "backtest.order_qty": 5, "trend.fast": "7"})
    assert tuned.mean_reversion.window == 30 and tuned.backtest.order_qty == 5.0 and tuned.trend.fast == 7
    assert build_strategy("selector", icfg).trend.strategy_id == "selector.trend"
    with pytest.raises(ValueError, match="unknown parameter"):
        with_overrides(icfg, "mean_reversion", {"windw": "3"})
    with pytest.raises(ValueError, match="unknown section"):
        with_overrides(icfg, "mean_reversion", {"nosuch.window": "3"})
    with pytest.raises(ValueError, match="ema or sma"):
        build_strategy("trend", with_overrides(icfg, "trend", {"average": "wma"}))
    with pytest.raises(ValueError, match="needs a predictor"):
        build_strategy("ml_signal", icfg)
    with pytest.raises(ValueError, match="unknown strategy"):
        build_strategy("martingale", icfg)
