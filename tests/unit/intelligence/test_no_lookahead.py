"""No look-ahead: changing the bars after time t never changes a decision made at or before t.

For each strategy, hypothesis generates a bar series (two symbols, so pairs and the cross-symbol
dispatch are covered), a cut k and a different future; the decision log (every signal and order
intent, with its time) of the original and of the altered series must agree on everything
stamped at or before the close of bar k. Fills of the altered future may differ (they happen
after t), and so may everything decided later.
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intelligence.backtest import Backtest
from intelligence.domain import Bar
from intelligence.execution import Commission, Slippage
from intelligence.strategies import MeanReversion, MlSignal, Pairs, RegimeSelector, TrendFollowing

MIN = 60_000_000_000
SYMBOLS = ("AAA", "BBB")


class Linear:
    feature_names = ("zscore_20", "rsi_14", "ret")

    def predict(self, features: Mapping[str, float]) -> float:
        return -0.01 * features["zscore_20"] + 0.0002 * (features["rsi_14"] - 50) + 0.5 * features["ret"]


STRATEGIES = {
    "mean_reversion": lambda: MeanReversion(5, 1.0, 0.2, qty=10),
    "trend": lambda: TrendFollowing(3, 8, "ema", momentum_window=4, qty=10),
    "pairs": lambda: Pairs(SYMBOLS, window=6, entry_z=1.0, exit_z=0.3, qty=10),
    "selector": lambda: RegimeSelector(TrendFollowing(3, 8, "sma", 4, qty=10, strategy_id="t"),
                                       MeanReversion(5, 1.0, 0.2, qty=10, strategy_id="m"),
                                       adx_window=5, trend_threshold=30.0, qty=10),
    "ml_signal": lambda: MlSignal(Linear(), threshold=0.001, qty=10),
}

moves = st.lists(st.floats(-0.03, 0.03, allow_nan=False), min_size=2, max_size=2)


def make_bars(steps: list[list[float]], first: int = 0, prices: dict[str, float] | None = None) -> list[Bar]:
    prices = dict(prices or {s: 100.0 for s in SYMBOLS})
    out = []
    for i, step in enumerate(steps, start=first):
        for symbol, move in zip(SYMBOLS, step, strict=True):
            o = prices[symbol]
            c = round(o * (1 + move), 4)
            out.append(Bar(i * MIN, symbol, "1m", o, max(o, c) * 1.001, min(o, c) * 0.999, c, 100.0 + i))
            prices[symbol] = c
    return out


def decision_log(name: str, bars: list[Bar]) -> list[tuple]:
    bt = Backtest(STRATEGIES[name](), commission=Commission("per_share", 0.01), slippage=Slippage("bps", 2.0))
    return bt.run(bars).decisions()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(past=st.lists(moves, min_size=30, max_size=80), future=st.lists(moves, min_size=1, max_size=40),
       other=st.lists(moves, min_size=1, max_size=40), name=st.sampled_from(sorted(STRATEGIES)))
def test_the_future_never_changes_past_decisions(past, future, other, name):
    head = make_bars(past)
    last = {b.symbol: b.close for b in head[-2:]}
    t = head[-1].ts_close  # the close of the cut bar: decisions up to here are final
    original = decision_log(name, head + make_bars(future, len(past), last))
    altered = decision_log(name, head + make_bars(other, len(past), last))
    assert [d for d in original if d[1] <= t] == [d for d in altered if d[1] <= t]


def test_the_check_can_fail():
    """Guard: a strategy that peeks at the next bar is caught by the same comparison."""
    from intelligence.strategies.base import Strategy

    class Peeking(Strategy):
        def __init__(self, bars: list[Bar]) -> None:
            super().__init__(qty=1)
            self.closes = {(b.symbol, b.ts): b.close for b in bars}

        def on_bar(self, bar: Bar) -> None:
            tomorrow = self.closes.get((bar.symbol, bar.ts + MIN))
            if tomorrow is not None:
                self.decide(bar.symbol, 1.0 if tomorrow > bar.close else -1.0, "entry")

    head = make_bars([[0.01, 0.01]] * 5)
    up, down = make_bars([[0.02, 0.02]], 5, {"AAA": head[-2].close, "BBB": head[-1].close}), make_bars(
        [[-0.02, -0.02]], 5, {"AAA": head[-2].close, "BBB": head[-1].close})
    t = head[-1].ts_close
    logs = []
    for future in (up, down):
        bars = head + future
        logs.append([d for d in Backtest(Peeking(bars)).run(bars).decisions() if d[1] <= t])
    assert logs[0] != logs[1]
