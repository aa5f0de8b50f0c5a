"""Tiny backtests whose every number is worked out by hand in the comments (prices are exact
binary fractions, so the books are exact and compared with ==)."""

from __future__ import annotations

import pytest

from intelligence.backtest import Backtest
from intelligence.domain import Bar
from intelligence.execution import Commission, Slippage
from intelligence.strategies import MeanReversion
from intelligence.strategies.base import Strategy

MIN = 60_000_000_000


def bars(ohlc: list[tuple[float, float, float, float]], symbol: str = "AAA") -> list[Bar]:
    return [Bar(i * MIN, symbol, "1m", o, h, lo, c, 1000.0) for i, (o, h, lo, c) in enumerate(ohlc)]


class Scripted(Strategy):
    """Wants the given direction after the given bar indices: the decisions are the test's input."""

    name = "scripted"

    def __init__(self, script: dict[int, float], qty: float) -> None:
        super().__init__(qty=qty)
        self.script, self.seen = script, 0

    def on_bar(self, bar: Bar) -> None:
        if self.seen in self.script:
            direction = self.script[self.seen]
            self.decide(bar.symbol, direction, "exit" if direction == 0 else "entry")
        self.seen += 1


SIX_BARS = bars([
    (100.0, 101.0, 99.0, 100.0),   # 0: decide long 10
    (100.5, 102.0, 100.0, 101.5),  # 1: buy 10 fills at the open 100.5 + 0.25 slippage = 100.75
    (102.0, 103.0, 101.0, 102.5),  # 2: decide short 10 (sell 20)
    (102.25, 103.0, 101.0, 102.75),  # 3: sell 20 fills at 102.25 - 0.25 = 102.0
    (100.75, 101.0, 99.5, 100.0),  # 4: decide flat (buy 10)
    (99.5, 100.0, 98.0, 98.5),     # 5: buy 10 fills at 99.5 + 0.25 = 99.75
])


def test_long_then_short_then_flat_exact_pnl():
    bt = Backtest(Scripted({0: 1.0, 2: -1.0, 4: 0.0}, qty=10), initial_cash=10_000.0,
                  commission=Commission("per_share", 0.1, 0.5), slippage=Slippage("fixed", 0.25))
    r = bt.run(SIX_BARS)
    # fills: buy 10 @ 100.75 (commission 10 * 0.1 = 1), sell 20 @ 102 (2), buy 10 @ 99.75 (1)
    fills = [(f.fill.ts, f.fill.side, f.fill.last_qty, f.fill.last_price, f.fill.commission) for f in r.fills]
    assert fills == [
        (1 * MIN, "B", 10.0, 100.75, 1.0), (3 * MIN, "S", 20.0, 102.0, 2.0), (5 * MIN, "B", 10.0, 99.75, 1.0)]
    # cash: 10000 - 1007.5 - 1 = 8991.5; + 2040 - 2 = 11029.5; - 997.5 - 1 = 10031
    # position after: 10, -10, 0; realized: 0, (102 - 100.75) * 10 = 12.5, + (102 - 99.75) * 10 = 35
    assert [(f.position, f.cash, f.realized_pnl) for f in r.fills] == [
        (10.0, 8991.5, 0.0), (-10.0, 11029.5, 12.5), (0.0, 10031.0, 35.0)]
    # equity at each bar's close: flat 10000; 8991.5 + 10 * 101.5 = 10006.5; + 10 * 102.5 = 10016.5;
    # 11029.5 - 10 * 102.75 = 10002; 11029.5 - 10 * 100 = 10029.5; flat 10031
    assert list(r.equity) == [10000.0, 10006.5, 10016.5, 10002.0, 10029.5, 10031.0]
    assert list(r.ts) == [i * MIN for i in range(1, 7)]  # sampled at each bar's close
    assert list(r.gross) == [0.0, 1015.0, 1025.0, 1027.5, 1000.0, 0.0]
    assert r.final_equity == 10031.0 and r.commissions == 4.0 and r.fill_count == 3
    m = r.metrics
    assert m["total_return"] == pytest.approx(31.0 / 10_000.0)
    # round trips: long 12.5 - 1 - 2 (the flip's commission closes it) = 9.5; short 22.5 - 1 = 21.5
    assert bt.portfolio.round_trips == [9.5, 21.5] and m["hit_rate"] == 1.0
    assert m["max_drawdown"] == pytest.approx(14.5 / 10016.5)  # 10016.5 -> 10002
    assert m["exposure"] == pytest.approx(4 / 6)  # open after bars 1, 2, 3, 4
    # traded 1007.5 + 2040 + 997.5 = 4045 over a mean equity of 60085.5 / 6 = 10014.25
    assert m["turnover"] == pytest.approx(4045.0 / 10014.25)
    # decisions at each deciding bar's close; orders for the difference to the target
    assert [(s.ts, s.target_position) for s in r.signals] == [
        (1 * MIN, 10.0), (3 * MIN, -10.0), (5 * MIN, 0.0)]
    assert [(i.ts, i.side, i.quantity) for i in r.intents] == [
        (1 * MIN, "B", 10.0), (3 * MIN, "S", 20.0), (5 * MIN, "B", 10.0)]


def test_mean_reversion_on_a_hand_computed_series():
    # window 3, entry 1.4, exit 0.5; closes 10, 10, 10, 10, 13, 12, 10, 10
    # bar 4: window 10, 10, 13: mean 11, sd sqrt((1 + 1 + 4) / 3) = sqrt(2); z = 2 / 1.41421 = 1.414 > 1.4
    #        -> short 100
    # bar 5: window 10, 13, 12: mean 35/3, sd sqrt(14/9) = 1.2472; z = (12 - 11.667) / 1.2472 = 0.267 <= 0.5
    #        -> flat
    # fills: sell 100 at bar 5's open 12.5, buy 100 at bar 6's open 10.5: P&L (12.5 - 10.5) * 100 = 200
    closes = [10, 10, 10, 10, 13, 12, 10, 10]
    opens = [10, 10, 10, 10, 10, 12.5, 10.5, 10]
    ohlc = [(float(o), max(o, c) + 0.25, min(o, c) - 0.25, float(c))
            for o, c in zip(opens, closes, strict=True)]
    bt = Backtest(MeanReversion(window=3, entry_z=1.4, exit_z=0.5, qty=100), initial_cash=100_000.0)
    r = bt.run(bars(ohlc))
    assert [(s.ts // MIN, s.signal_type, s.target_position) for s in r.signals] == [
        (5, "entry", -100.0), (6, "exit", 0.0)]
    assert [(f.fill.ts // MIN, f.fill.side, f.fill.last_price) for f in r.fills] == [
        (5, "S", 12.5), (6, "B", 10.5)]
    assert r.final_equity == 100_200.0 and bt.portfolio.round_trips == [200.0]
