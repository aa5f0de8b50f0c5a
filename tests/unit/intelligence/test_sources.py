"""intelligence/sources.py without services: the lake reader on a file:// lake, Arrow round trips,
and the event-time buffer that makes Kafka's interleaving into the lake's order."""

from __future__ import annotations

import dataclasses
import random
from datetime import date

import pytest

from intelligence.domain import Bar
from intelligence.sources import (
    EventTimeBuffer,
    bars_from_arrow,
    bars_to_arrow,
    read_lake_bars,
    table_location,
)
from intelligence.synthetic import synthetic_bars, write_lake_bars
from tradelake.config import load_config

MIN = 60_000_000_000


@pytest.fixture
def local_lake(tmp_path):
    cfg = load_config("local")
    return dataclasses.replace(cfg, lake=dataclasses.replace(cfg.lake, root=f"file://{tmp_path}"))


def test_the_table_location_comes_from_the_ddl(local_lake):
    assert table_location(local_lake, "curated.bars") == "curated/bars"
    warehouse = dataclasses.replace(local_lake.warehouse, curated_db="x_cur")
    other = dataclasses.replace(local_lake, warehouse=warehouse)
    assert table_location(other, "x_cur.bars") == "x_cur/bars"


def test_read_lake_bars_filters_dates_and_symbols_and_sorts(local_lake):
    table = synthetic_bars(["MSFT", "AAPL", "XOM"], 3, bars_per_day=5)  # Jan 5, 6, 7
    assert write_lake_bars(local_lake, table) == [
        ("1m", "2026-01-05"), ("1m", "2026-01-06"), ("1m", "2026-01-07")]
    seen = []
    got = read_lake_bars(local_lake, date(2026, 1, 6), date(2026, 1, 9), ["XOM", "AAPL"],
                         on_partition=lambda dt, rows: seen.append((dt, rows)))
    assert seen == [("2026-01-06", 10), ("2026-01-07", 10)]
    rows = got.to_pylist()
    assert [(r["ts"], r["symbol"]) for r in rows] == sorted((r["ts"], r["symbol"]) for r in rows)
    assert {r["symbol"] for r in rows} == {"AAPL", "XOM"} and {r["interval"] for r in rows} == {"1m"}
    assert read_lake_bars(local_lake, date(2026, 2, 1), date(2026, 2, 2)).num_rows == 0
    with pytest.raises(ValueError):
        read_lake_bars(local_lake, date(2026, 1, 7), date(2026, 1, 6))


def test_arrow_round_trip_and_null_vwap():
    table = synthetic_bars(["AAA", "BBB"], 1, bars_per_day=7)
    bars = bars_from_arrow(table)
    assert bars_to_arrow(bars).equals(table)
    quiet = Bar(0, "AAA", "1m", 1.0, 1.0, 1.0, 1.0, 0.0, None, 0)
    assert bars_from_arrow(bars_to_arrow([quiet])) == [quiet]


def test_event_time_buffer_restores_the_lake_order_from_any_interleaving():
    bars = bars_from_arrow(synthetic_bars(["AAA", "BBB", "CCC"], 1, bars_per_day=30))
    by_symbol = {s: [b for b in bars if b.symbol == s] for s in ("AAA", "BBB", "CCC")}
    rng = random.Random(4)
    arrival = []  # each symbol's bars stay in order (its Kafka partition); symbols interleave at random
    while any(by_symbol.values()):
        symbol = rng.choice([s for s, rest in by_symbol.items() if rest])
        arrival.append(by_symbol[symbol].pop(0))
    buffer = EventTimeBuffer(lateness_ns=40 * MIN)
    out = []
    for bar in arrival:
        assert buffer.push(bar)
        out.extend(buffer.ready())
    out.extend(buffer.flush())
    assert out == bars  # (ts, symbol) order, as read_lake_bars sorts
    assert not buffer.push(bars[0])  # older than what was released: late


def test_event_time_buffer_holds_a_step_until_a_later_one_arrives():
    buffer = EventTimeBuffer()
    a0, b0 = Bar(0, "A", "1m", 1, 1, 1, 1, 1), Bar(0, "B", "1m", 1, 1, 1, 1, 1)
    a1 = Bar(MIN, "A", "1m", 1, 1, 1, 1, 1)
    buffer.push(b0)
    buffer.push(a0)
    assert list(buffer.ready()) == []
    buffer.push(a1)
    assert list(buffer.ready()) == [a0, b0]
    assert list(buffer.flush()) == [a1]
