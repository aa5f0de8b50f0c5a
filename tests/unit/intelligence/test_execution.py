"""intelligence/execution.py: the simulated venue's fill rules and its cost models."""

from __future__ import annotations

import pytest

from intelligence.domain import BUY, LIMIT, SELL, Bar, OrderIntent, Quote
from intelligence.engine import Engine, SimClock
from intelligence.execution import Commission, SimulatedExecution, Slippage

MIN = 60_000_000_000


def bar(i: int, o: float, h: float, lo: float, c: float, symbol: str = "AAA") -> Bar:
    return Bar(i * MIN, symbol, "1m", o, h, lo, c, 100.0)


class Recorder:
    """Submits given intents when the given bar index is processed; keeps the fills."""

    def __init__(self, engine: Engine, orders: dict[tuple[str, int], list[OrderIntent]]) -> None:
        self.engine, self.orders, self.fills = engine, orders, []
        engine.subscribe_bars(self.on_bar)
        engine.subscribe_fills(self.fills.append)

    def on_bar(self, b: Bar) -> None:
        for intent in self.orders.get((b.symbol, b.ts // MIN), []):
            self.engine.submit(intent)


def run(bars, orders, **venue):
    engine = Engine(SimClock(), SimulatedExecution(**venue))
    rec = Recorder(engine, orders)
    engine.run(bars)
    return rec.fills, engine


def test_a_market_order_fills_at_the_next_bars_open_never_the_current_one():
    bars = [bar(0, 10, 11, 9, 10.5), bar(1, 10.75, 12, 10, 11), bar(2, 11, 11, 10, 10)]
    fills, engine = run(bars, {("AAA", 0): [OrderIntent(1, "AAA", "o-1", BUY, 5.0)]})
    assert [(f.ts, f.last_price, f.last_qty) for f in fills] == [(1 * MIN, 10.75, 5.0)]
    assert engine.portfolio.position("AAA") == 5.0


def test_an_order_sent_during_a_step_does_not_fill_on_another_symbols_bar_of_that_step():
    # BBB's bar 0 comes after AAA's bar 0 in the same step; an order for AAA sent on BBB's bar 0
    # must wait for AAA's bar 1 (its bar 0 opened before the order existed)
    bars = [bar(0, 10, 11, 9, 10.5), bar(0, 20, 21, 19, 20, "BBB"), bar(1, 10.25, 11, 10, 11),
            bar(1, 20, 21, 19, 20, "BBB")]
    fills, _ = run(bars, {("BBB", 0): [OrderIntent(1, "AAA", "o-1", BUY, 1.0)]})
    assert [(f.symbol, f.ts, f.last_price) for f in fills] == [("AAA", 1 * MIN, 10.25)]


def test_limit_orders_fill_at_the_open_or_the_limit_or_not_at_all():
    bars = [bar(0, 10, 10, 10, 10), bar(1, 10, 10.5, 9.5, 10), bar(2, 9, 9.5, 8.5, 9), bar(3, 9, 9, 9, 9)]
    orders = {("AAA", 0): [OrderIntent(1, "AAA", "buy-9.75", BUY, 1.0, LIMIT, 9.75),  # low 9.5 reaches it
                           OrderIntent(1, "AAA", "buy-9", BUY, 1.0, LIMIT, 9.0),  # waits: bar 2 opens at 9
                           OrderIntent(1, "AAA", "sell-11", SELL, 1.0, LIMIT, 11.0, "IOC"),  # cancelled
                           OrderIntent(1, "AAA", "sell-10.25", SELL, 1.0, LIMIT, 10.25)]}  # high 10.5 > it
    fills, engine = run(bars, orders)
    assert sorted((f.cl_ord_id, f.ts // MIN, f.last_price) for f in fills) == [
        ("buy-9", 2, 9.0), ("buy-9.75", 1, 9.75), ("sell-10.25", 1, 10.25)]
    assert [i.cl_ord_id for i in engine.execution.cancelled] == ["sell-11"]
    assert engine.execution.working == {}


def test_day_orders_expire_at_the_end_of_the_utc_day():
    day = 1440
    bars = [bar(day - 2, 10, 10, 10, 10), bar(day - 1, 10, 10, 10, 10), bar(day, 10, 10, 10, 10)]
    fills, engine = run(bars, {("AAA", day - 2): [OrderIntent(1, "AAA", "d", BUY, 1.0, LIMIT, 9.0, "DAY")]})
    assert fills == [] and [i.cl_ord_id for i in engine.execution.cancelled] == ["d"]


def test_commission_and_slippage_models():
    assert Commission("per_share", 0.01, 1.0)(50, 10.0) == 1.0  # 0.5 < minimum 1
    assert Commission("per_share", 0.01, 1.0)(200, 10.0) == 2.0
    assert Commission("bps", 5.0)(100, 20.0) == pytest.approx(1.0)  # 5 bp of 2000
    assert Commission("fixed", 2.5)(1, 1.0) == 2.5 and Commission()(100, 10.0) == 0.0
    assert Slippage("fixed", 0.25)(BUY, 10.0) == 10.25 and Slippage("fixed", 0.25)(SELL, 10.0) == 9.75
    assert Slippage("bps", 10.0)(BUY, 100.0) == pytest.approx(100.1)
    with pytest.raises(ValueError):
        Commission("percent", 1.0)


def test_market_orders_can_fill_against_quotes():
    engine = Engine(SimClock(), SimulatedExecution(fill_on="quote", slippage=Slippage("fixed", 0.01)))
    fills = []
    engine.subscribe_fills(fills.append)
    engine.subscribe_quotes(lambda q: q.ts == 1 and engine.submit(OrderIntent(1, "AAA", "b", BUY, 3.0)))
    engine.run([Quote(1, "AAA", 9.9, 100, 10.1, 100), Quote(2, "AAA", 9.95, 100, 10.05, 100)])
    assert [(f.ts, f.last_price) for f in fills] == [(2, 10.06)]  # the next quote's ask + 0.01
