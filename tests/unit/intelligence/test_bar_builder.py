"""Trades -> bars as the live router builds them (``TradeBars``, shared with the DR replay),
worked by hand; and the replay's ``MarketEvents`` giving the same bars from replayed batches."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from intelligence.bar_builder import QuoteEvents, TradeBars
from intelligence.domain import Bar
from intelligence.replay_engine import MarketEvents

S = 1_000_000_000
M = 60 * S
T0 = 1_767_623_400 * S  # 2026-01-05 14:30:00 UTC


def trades(rows: list[tuple]) -> pa.Table:
    ts, symbol, seq, price, size = zip(*rows, strict=True)
    return pa.table({"ts": list(ts), "symbol": list(symbol), "price": list(price), "size": list(size),
                     "seq": list(seq)})


ROWS = [(T0 + 10 * S, "AAPL", 1, 10.0, 1.0), (T0 + 20 * S, "AAPL", 3, 12.0, 3.0),
        (T0 + 20 * S, "AAPL", 2, 9.0, 1.0),  # same ts, lower seq: not the close
        (T0 + 30 * S, "MSFT", 1, 20.0, 1.0), (T0 + M + 5 * S, "AAPL", 4, 11.0, 2.0),
        (T0 + M + 6 * S, "MSFT", 2, 21.0, 0.0)]
EXPECTED = [  # open, high, low, close, volume, vwap = notional / volume, trades
    Bar(T0, "AAPL", "1m", 10.0, 12.0, 9.0, 12.0, 5.0, (10.0 + 36.0 + 9.0) / 5.0, 3),
    Bar(T0, "MSFT", "1m", 20.0, 20.0, 20.0, 20.0, 1.0, 20.0, 1),
    Bar(T0 + M, "AAPL", "1m", 11.0, 11.0, 11.0, 11.0, 2.0, 11.0, 1),
    Bar(T0 + M, "MSFT", "1m", 21.0, 21.0, 21.0, 21.0, 0.0, None, 1),  # no volume: no vwap
]


def test_bars_by_hand_released_in_close_then_symbol_order():
    rejected: Counter = Counter()
    bars = TradeBars("1m", lambda reason, _: rejected.update([reason]))
    assert bars.add(trades(ROWS[:4])) == 4
    assert list(bars.release()) == []  # AAPL and MSFT are both still building minute 0
    bars.add(trades(ROWS[4:5]))
    assert list(bars.release()) == []  # MSFT has not moved past minute 0 yet
    bars.add(trades(ROWS[5:]))
    assert list(bars.release()) == EXPECTED[:2]
    assert list(bars.release(everything=True)) == EXPECTED[2:]
    bars.add(trades([(T0 + 50 * S, "AAPL", 9, 10.0, 1.0), (T0 + 2 * M, "NVDA", 1, -1.0, 1.0)]))
    assert rejected == Counter({"LATE": 1, "INVALID_TRADE": 1})


def bar(minute: int, symbol: str, price: float, trades: int = 1) -> Bar:
    """A bar of ``trades`` trades of size 1, all at ``price``."""
    return Bar(T0 + minute * M, symbol, "1m", price, price, price, price, float(trades), price, trades)


def test_a_halted_symbol_holds_nothing_back_once_idle_and_its_bar_keeps_its_place():
    """MSFT trades in minute 0 and then halts; AAPL trades every minute. Arrival times (seconds,
    any clock) one per minute of trades; idle: no trade arrived for 2.5 of them; grace 0.5."""
    rejected: Counter = Counter()
    bars = TradeBars("1m", lambda reason, _: rejected.update([reason]))
    live = {"idle_s": 2.5, "grace_s": 0.5}
    bars.add(trades([(T0 + 1 * S, "MSFT", 1, 20.0, 1.0), (T0 + 2 * S, "AAPL", 1, 10.0, 1.0)]), now=0.0)
    for minute in range(1, 4):
        bars.add(trades([(T0 + minute * M + S, "AAPL", minute + 1, 10.0 + minute, 1.0)]), now=float(minute))
        # MSFT is active at 1 and 2 (its last trade arrived at 0): it holds minute 0 back, as before;
        # idle at 3, but in its grace: still held
        assert list(bars.release(now=float(minute), **live)) == []
    # past its grace: MSFT's minute 0 is completed and released in its place, with AAPL's 0, 1, 2
    assert list(bars.release(now=3.5, **live)) == [bar(0, "AAPL", 10.0), bar(0, "MSFT", 20.0),
                                                    bar(1, "AAPL", 11.0), bar(2, "AAPL", 12.0)]
    # MSFT trades again: a new bar, nothing late; a trade in its closed minute is LATE
    bars.add(trades([(T0 + 3 * M + 9 * S, "MSFT", 2, 21.0, 1.0), (T0 + 30 * S, "MSFT", 3, 1.0, 1.0)]),
             now=4.0)
    bars.add(trades([(T0 + 4 * M + S, "AAPL", 5, 14.0, 1.0), (T0 + 4 * M + 2 * S, "MSFT", 4, 22.0, 1.0)]),
             now=5.0)
    assert list(bars.release(now=5.0, **live)) == [bar(3, "AAPL", 13.0), bar(3, "MSFT", 21.0)]
    assert rejected == Counter({"LATE": 1})


def test_an_idle_symbols_trade_delivered_a_little_late_still_lands_in_its_bar():
    """XYZ's last trade arrived 10 s ago; AAPL's trade of the next minute arrives 50 ms before
    XYZ's last trade of the minute (another partition): the grace keeps XYZ's bar open for it."""
    rejected: Counter = Counter()
    bars = TradeBars("1m", lambda reason, _: rejected.update([reason]))
    bars.add(trades([(T0 + 50 * S, "XYZ", 1, 20.0, 1.0)]), now=50.0)
    for second in range(50, 61):
        bars.add(trades([(T0 + second * S + 10_000_000, "AAPL", second, 10.0, 1.0)]), now=second + 0.01)
        assert list(bars.release(now=second + 0.01)) == []
    bars.add(trades([(T0 + 59 * S + 900_000_000, "XYZ", 2, 21.0, 1.0)]), now=60.06)
    assert list(bars.release(now=60.06)) == []  # XYZ is active again: it holds minute 0
    bars.add(trades([(T0 + M + 30 * S, "AAPL", 99, 11.0, 1.0)]), now=67.0)
    assert list(bars.release(now=67.0)) == []  # XYZ idle again (> 5 s): in its grace (1 s)
    released = list(bars.release(now=68.0))
    xyz = Bar(T0, "XYZ", "1m", 20.0, 21.0, 20.0, 21.0, 2.0, 20.5, 2)
    assert released[-1] == xyz and [b.symbol for b in released] == ["AAPL", "XYZ"]
    assert rejected == Counter()


def test_without_arrival_times_every_symbol_holds_the_release_as_in_a_replay():
    bars = TradeBars("1m", lambda reason, detail: None)
    bars.add(trades([(T0 + S, "MSFT", 1, 20.0, 1.0), (T0 + 2 * S, "AAPL", 1, 10.0, 1.0)]))
    for minute in range(1, 4):
        bars.add(trades([(T0 + minute * M + S, "AAPL", minute + 1, 10.0, 1.0)]))
    assert list(bars.release(now=1e9)) == []  # no arrival recorded: none is idle
    assert list(bars.release()) == []


def test_when_every_symbol_is_idle_the_complete_bars_go_with_the_idle_ones_they_follow():
    bars = TradeBars("1m", lambda reason, detail: None)
    live = {"idle_s": 0.5, "grace_s": 0.0}
    bars.add(trades([(T0 + S, "MSFT", 1, 20.0, 1.0), (T0 + 2 * S, "AAPL", 1, 10.0, 1.0)]), now=0.0)
    bars.add(trades([(T0 + M + S, "AAPL", 2, 11.0, 1.0)]), now=1.0)  # completes AAPL's minute 0
    assert list(bars.release(now=1.0, **live)) == [bar(0, "AAPL", 10.0), bar(0, "MSFT", 20.0)]
    assert list(bars.release(now=5.0, **live)) == []  # AAPL's minute 1: nothing after it to release
    assert list(bars.release(everything=True)) == [bar(1, "AAPL", 11.0)]


def test_replayed_batches_give_the_same_bars():
    import numpy as np

    from ingestion.replay import ReplayBatch

    table = trades(ROWS)
    batches = [ReplayBatch(("md.trades",), np.array(table["ts"].to_pylist()[i:i + 2]), np.zeros(2, np.int8),
                           {"md.trades": table.slice(i, 2)}) for i in range(0, 6, 2)]
    events = MarketEvents({"md.trades": "trade"}, "bars", "1m")
    assert list(events(batches)) == EXPECTED
    assert (events.ticks, events.events, events.rejected) == (6, 4, Counter())


def test_quotes_pass_through_unless_late_or_invalid():
    rejected: Counter = Counter()
    quotes = QuoteEvents(lambda reason, _: rejected.update([reason]), symbols=["AAPL"])
    table = pa.table({"ts": [T0, T0 + S, T0 + 2 * S, T0 + S // 2, T0 + 3 * S],
                      "symbol": ["AAPL", "MSFT", "AAPL", "AAPL", "AAPL"],
                      "bid_price": [9.9, 1.0, 9.8, 9.7, 10.2], "bid_size": [1.0] * 5,
                      "ask_price": [10.1, 1.1, 10.0, 9.9, 10.1], "ask_size": [1.0] * 5})
    got = [(q.ts, q.bid_price) for q in quotes.events(table)]
    assert got == [(T0, 9.9), (T0 + 2 * S, 9.8)]  # MSFT filtered; the 0.5 s one late; crossed refused
    assert quotes.ticks == 4 and rejected == Counter({"LATE": 1, "INVALID_QUOTE": 1})
