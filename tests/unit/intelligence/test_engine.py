"""intelligence/engine.py: ordering, determinism, timers, targets and risk checks."""

from __future__ import annotations

import pytest

from intelligence.domain import BUY, Bar, OrderIntent, Quote
from intelligence.engine import Engine, EventQueue, LiveClock, SimClock, event_ts, merge
from intelligence.execution import SimulatedExecution
from intelligence.risk import MaxPosition

MIN = 60_000_000_000


def bar(i: int, symbol: str = "AAA", close: float = 10.0) -> Bar:
    return Bar(i * MIN, symbol, "1m", close, close, close, close, 1.0)


def test_event_queue_is_stable_for_equal_times():
    q = EventQueue()
    for ts, item in [(5, "a"), (3, "b"), (5, "c"), (3, "d"), (5, "e")]:
        q.push(ts, item)
    assert [q.pop() for _ in range(len(q))] == [(3, "b"), (3, "d"), (5, "a"), (5, "c"), (5, "e")]


def test_merge_orders_by_event_time_and_keeps_source_order_on_ties():
    bars = [bar(0), bar(1), bar(2)]  # close at 1, 2, 3 minutes
    quotes = [Quote(1 * MIN, "AAA", 9.0, 1.0, 10.0, 1.0), Quote(2 * MIN + 1, "AAA", 9.0, 1.0, 10.0, 1.0)]
    merged = list(merge(bars, quotes))
    assert [event_ts(e) for e in merged] == [MIN, MIN, 2 * MIN, 2 * MIN + 1, 3 * MIN]
    assert type(merged[0]) is Bar and type(merged[1]) is Quote  # tie: the first source first
    assert list(merge(bars, quotes)) == merged


def test_dispatch_order_steps_and_time_going_back():
    engine = Engine(SimClock())
    seen: list = []
    engine.subscribe_bars(lambda b: seen.append(("all", b.symbol, engine.now)))
    engine.subscribe_bars(lambda b: seen.append(("BBB only", b.symbol)), symbols=["BBB"])
    engine.subscribe_steps(lambda ts: seen.append(("step", ts)))
    engine.run([bar(0), bar(0, "BBB"), bar(1)])
    engine.finish()
    assert seen == [("all", "AAA", MIN), ("BBB only", "BBB"), ("all", "BBB", MIN), ("step", MIN),
                    ("all", "AAA", 2 * MIN), ("step", 2 * MIN)]
    with pytest.raises(ValueError, match="event time went back"):
        Engine(SimClock()).run([bar(3), bar(1)])


def test_timers_fire_in_time_order_before_later_events():
    engine = Engine(SimClock())
    seen = []
    engine.subscribe_bars(lambda b: seen.append(("bar", engine.now)))
    engine.schedule(2 * MIN, lambda ts: seen.append(("timer", ts)))
    engine.schedule(int(1.5 * MIN), lambda ts: seen.append(("timer", ts)))
    engine.run([bar(0), bar(1), bar(2)])
    assert seen == [("bar", MIN), ("timer", int(1.5 * MIN)), ("timer", 2 * MIN), ("bar", 2 * MIN),
                    ("bar", 3 * MIN)]


def test_live_heartbeats_fire_timers_by_the_wall_clock():
    engine = Engine(LiveClock())
    fired = []
    engine.schedule(0, fired.append)  # long past
    engine.run([None])
    assert fired == [0]


def test_set_target_orders_the_difference_counting_working_orders():
    engine = Engine(SimClock(), SimulatedExecution())
    intents = []
    engine.subscribe_intents(intents.append)
    engine.run([bar(0)])
    first = engine.set_target("s", "AAA", 100.0)
    assert (first.side, first.quantity, first.ts) == (BUY, 100.0, MIN)
    assert engine.set_target("s", "AAA", 100.0) is None  # already on its way
    second = engine.set_target("s", "AAA", -50.0)
    assert (second.side, second.quantity) == ("S", 150.0)
    assert engine.position("AAA") == -50.0 and engine.portfolio.position("AAA") == 0.0
    engine.run([bar(1)])
    assert engine.portfolio.position("AAA") == -50.0 and engine.execution.working == {}
    assert [i.cl_ord_id for i in intents] == ["s-1", "s-2"]


def test_risk_checks_reject_before_the_venue_sees_an_order():
    engine = Engine(SimClock(), SimulatedExecution(), risk_checks=[MaxPosition(100)])
    rejected = []
    engine.subscribe_rejections(lambda intent, reason: rejected.append(reason))
    assert engine.submit(OrderIntent(0, "AAA", "a", BUY, 100.0))
    assert not engine.submit(OrderIntent(0, "AAA", "b", BUY, 1.0))
    assert rejected == ["MAX_POSITION: AAA would be 101, limit 100"]
    assert engine.execution.working == {"AAA": 100.0}
