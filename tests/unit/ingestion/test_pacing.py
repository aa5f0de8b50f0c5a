"""Pacing a feed: symbols merged by event time, released step by step at N x real time."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ingestion.pacing import paced

S = 1_000_000_000


def table(rows):
    return pa.Table.from_pylist([{"ts": ts, "symbol": sym} for ts, sym in rows],
                                schema=pa.schema([("ts", pa.int64()), ("symbol", pa.string())]))


class FakeClock:
    """A clock the pacer sleeps on (time is the test's input here, not the code under test)."""

    def __init__(self):
        self.now, self.sleeps = 100.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_symbols_are_merged_by_time_and_released_at_speed():
    # one window: AAPL's whole slice, then MSFT's (the simulator's by-symbol order)
    feed = [("trade", table([(0, "AAPL"), (3 * S, "AAPL"), (9 * S, "AAPL")])),
            ("trade", table([(1 * S, "MSFT"), (4 * S, "MSFT")])),
            ("quote", table([(2 * S, "AAPL")]))]
    clock = FakeClock()
    out = list(paced(feed, speed=10, step_s=0.25, clock=clock, sleep=clock.sleep))
    # steps of 2.5 s of event time each: [0, 2.5) [2.5, 5) [5, 7.5) [7.5, 10)
    got = [(kind, t.column("ts").to_pylist(), t.column("symbol").to_pylist()) for kind, t in out]
    assert got == [("trade", [0, 1 * S], ["AAPL", "MSFT"]), ("quote", [2 * S], ["AAPL"]),
                   ("trade", [3 * S, 4 * S], ["AAPL", "MSFT"]), ("trade", [9 * S], ["AAPL"])]
    assert clock.sleeps == [0.25, 0.25, 0.25]  # 10x: 2.5 s of market time per 0.25 s


def test_every_row_comes_out_once_and_long_gaps_are_not_slept():
    night = 17 * 3600 * S
    feed = [("trade", table([(0, "A"), (1 * S, "A")])), ("trade", table([(night, "A"), (night + S, "A")]))]
    clock = FakeClock()
    out = list(paced(feed, speed=100, step_s=0.1, clock=clock, sleep=clock.sleep))
    assert [ts for _, t in out for ts in t.column("ts").to_pylist()] == [0, S, night, night + S]
    assert sum(clock.sleeps) < 1.0  # not 17 h / 100


def test_speed_must_be_positive():
    with pytest.raises(ValueError, match="speed must be > 0"):
        list(paced([], speed=0))
