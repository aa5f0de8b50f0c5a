"""The market simulator must emit canonical, deterministic, microstructurally sane data.

Session bounds are written out by hand (from ``date -u -d``), not computed with the module's
own helpers, so a time-zone or DST mistake in the module cannot hide in the test.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ingestion import simulator as simulator_module
from ingestion.simulator import MarketSimulator, SimulatorConfig
from tradelake.schemas import QUOTE, TRADE, arrow_schema

pytestmark = pytest.mark.unit

NS = 1_000_000_000
# Friday 2026-03-06 is still EST (UTC-5): 09:30-16:00 New York = 14:30-21:00 UTC.
FRI_OPEN, FRI_CLOSE = 1772807400 * NS, 1772830800 * NS
# Monday 2026-03-09, after the US switch to EDT (UTC-4) on Sunday: 13:30-20:00 UTC.
MON_OPEN, MON_CLOSE = 1773063000 * NS, 1773086400 * NS

SYMBOLS = ("AAPL", "MSFT", "SPY")
TRADES_PER_DAY = 2_000
EVENTS_PER_DAY = TRADES_PER_DAY * 4  # 3 quotes per trade by default


def small_config(**overrides: object) -> SimulatorConfig:
    """Three symbols over Friday and Monday around the DST change: 48k ticks, fast."""
    params: dict[str, object] = dict(symbols=SYMBOLS, seed=42, start_date=date(2026, 3, 6), days=2,
                                     trades_per_symbol_per_day=TRADES_PER_DAY)
    params.update(overrides)
    return SimulatorConfig(**params)  # type: ignore[arg-type]


def collect(simulator: MarketSimulator, max_rows: int = 65_536) -> tuple[pa.Table, pa.Table]:
    """All trades and all quotes as two tables, in the order they were yielded."""
    trades, quotes = [], []
    for kind, batch in simulator.batches(max_rows):
        (trades if kind == "trade" else quotes).append(batch)
    return (pa.Table.from_batches(trades, schema=arrow_schema(TRADE)),
            pa.Table.from_batches(quotes, schema=arrow_schema(QUOTE)))


@pytest.fixture(scope="module")
def tables() -> tuple[pa.Table, pa.Table]:
    return collect(MarketSimulator(small_config()))


def ipc_bytes(simulator: MarketSimulator, max_rows: int) -> bytes:
    """The yielded stream serialised batch by batch (Arrow IPC), each prefixed with its kind."""
    parts = []
    for kind, batch in simulator.batches(max_rows):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        parts.append(kind.encode() + sink.getvalue().to_pybytes())
    return b"".join(parts)


def test_batches_conform_to_the_canonical_schemas() -> None:
    expected = {"trade": arrow_schema(TRADE), "quote": arrow_schema(QUOTE)}
    seen = set()
    for kind, batch in MarketSimulator(small_config()).batches(max_rows=5_000):
        seen.add(kind)
        schema = expected[kind]
        assert batch.schema.names == schema.names
        assert batch.schema.types == schema.types
        assert 0 < batch.num_rows <= 5_000
        for field in schema:
            if not field.nullable:
                assert batch.column(field.name).null_count == 0, (kind, field.name)
        assert batch.column("ingest_ts").null_count == batch.num_rows
        ts = batch.column("ts").to_numpy()
        assert np.all(np.diff(ts) >= 0), "rows within a batch are sorted by ts"
    assert seen == {"trade", "quote"}


def test_same_config_gives_byte_identical_batches() -> None:
    first = ipc_bytes(MarketSimulator(small_config()), max_rows=7_000)
    second = ipc_bytes(MarketSimulator(small_config()), max_rows=7_000)
    assert first == second


def test_max_rows_only_rebatches_the_same_data(tables: tuple[pa.Table, pa.Table]) -> None:
    trades, quotes = collect(MarketSimulator(small_config()), max_rows=999)
    assert trades.equals(tables[0])
    assert quotes.equals(tables[1])


def test_different_seeds_give_different_data(tables: tuple[pa.Table, pa.Table]) -> None:
    trades, quotes = collect(MarketSimulator(small_config(seed=43)))
    assert not trades.equals(tables[0])
    assert not np.array_equal(quotes.column("ts").to_numpy(), tables[1].column("ts").to_numpy())


def test_total_ticks_matches_what_is_yielded(tables: tuple[pa.Table, pa.Table]) -> None:
    simulator = MarketSimulator(small_config())
    assert simulator.total_ticks() == tables[0].num_rows + tables[1].num_rows
    assert simulator.total_ticks() == len(SYMBOLS) * 2 * EVENTS_PER_DAY
    assert tables[0].num_rows == len(SYMBOLS) * 2 * TRADES_PER_DAY


def test_book_is_never_crossed_and_prices_are_on_the_tick_grid(
        tables: tuple[pa.Table, pa.Table]) -> None:
    trades, quotes = tables
    bid = quotes.column("bid_price").to_numpy()
    ask = quotes.column("ask_price").to_numpy()
    price = trades.column("price").to_numpy()
    assert np.all(bid > 0)
    assert np.all(bid < ask)
    assert np.all(price > 0)
    for values in (bid, ask, price):
        cents = values * 100
        assert np.allclose(cents, np.round(cents), rtol=0, atol=1e-6)


def test_trades_print_at_or_inside_the_latest_quote(tables: tuple[pa.Table, pa.Table]) -> None:
    trades = tables[0].to_pandas().sort_values("ts")
    quotes = tables[1].to_pandas().sort_values("ts")
    for frame in (trades, quotes):
        frame["monday"] = frame.ts >= MON_OPEN
    joined = pd.merge_asof(trades, quotes[["ts", "symbol", "monday", "bid_price", "ask_price"]],
                           on="ts", by=["symbol", "monday"], allow_exact_matches=False)
    # A day's first trades may come before its first quote; there are at most a handful.
    joined = joined.dropna(subset=["bid_price"])
    assert len(joined) > 0.99 * len(trades)
    assert (joined.price >= joined.bid_price).all() and (joined.price <= joined.ask_price).all()
    at_touch = np.where(joined.side == "S", joined.price == joined.bid_price,
                        joined.price == joined.ask_price)
    inside = (joined.price > joined.bid_price) & (joined.price < joined.ask_price)
    assert np.all(at_touch | inside)
    assert 0.85 < at_touch.mean() < 1


def test_trade_fields_are_plausible(tables: tuple[pa.Table, pa.Table]) -> None:
    trades, quotes = tables
    size = trades.column("size").to_numpy()
    conditions = trades.column("conditions").to_pylist()
    assert np.all(size >= 1) and np.all(size == np.round(size))
    odd = size < 100
    assert np.all(size[~odd] % 100 == 0), "sizes of 100 or more are round lots"
    assert 0.5 < np.mean(~odd) < 1, "mostly round lots"
    assert all(c == "I" for c, is_odd in zip(conditions, odd, strict=True) if is_odd)
    assert set(conditions) <= {"@", "F", "I", None}
    assert conditions.count("@") > len(conditions) / 2
    assert set(trades.column("side").to_pylist()) == {"B", "S"}
    venues = {"XNAS", "ARCX", "BATS", "IEXG"}
    assert set(trades.column("exchange").to_pylist()) == venues
    assert set(quotes.column("exchange").to_pylist()) == venues
    assert np.all(quotes.column("bid_size").to_numpy() >= 100)
    assert np.all(quotes.column("ask_size").to_numpy() % 100 == 0)


def events_by_symbol(tables: tuple[pa.Table, pa.Table]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per symbol, (ts, seq) of its trades and quotes together, ordered by seq."""
    combined = pa.concat_tables([t.select(["ts", "symbol", "seq"]) for t in tables])
    frame = combined.to_pandas().sort_values("seq", kind="stable")
    return {symbol: (group["ts"].to_numpy(), group["seq"].to_numpy())
            for symbol, group in frame.groupby("symbol")}


def test_seq_is_contiguous_from_one_per_symbol_and_follows_event_time(
        tables: tuple[pa.Table, pa.Table]) -> None:
    per_symbol = events_by_symbol(tables)
    assert set(per_symbol) == set(SYMBOLS)
    for symbol, (ts, seq) in per_symbol.items():
        assert np.array_equal(seq, np.arange(1, 2 * EVENTS_PER_DAY + 1)), symbol
        assert np.all(np.diff(ts) > 0), f"{symbol}: ts strictly increasing in seq order"


def test_trade_id_is_symbol_dash_seq(tables: tuple[pa.Table, pa.Table]) -> None:
    trades = tables[0]
    expected = [f"{s}-{q}" for s, q in zip(trades.column("symbol").to_pylist(),
                                           trades.column("seq").to_pylist(), strict=True)]
    assert trades.column("trade_id").to_pylist() == expected


def test_timestamps_fall_inside_the_dst_correct_sessions(tables: tuple[pa.Table, pa.Table]) -> None:
    ts = np.concatenate([t.column("ts").to_numpy() for t in tables])
    friday = ts[(ts >= FRI_OPEN) & (ts < FRI_CLOSE)]
    monday = ts[(ts >= MON_OPEN) & (ts < MON_CLOSE)]
    assert len(friday) == len(monday) == len(SYMBOLS) * EVENTS_PER_DAY
    for day, (open_ns, close_ns) in ((friday, (FRI_OPEN, FRI_CLOSE)),
                                     (monday, (MON_OPEN, MON_CLOSE))):
        # Busy open and close: events come within a minute of both edges, so an hour's shift
        # (a DST mistake) could not stay inside the bounds.
        assert day.min() < open_ns + 60 * NS
        assert day.max() > close_ns - 60 * NS


def test_time_slices_join_seamlessly_and_come_out_in_event_time_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator_module, "_SLICE_TARGET_EVENTS", 4_000)
    simulator = MarketSimulator(small_config())
    assert simulator.slices_per_day > 1
    last_ts = {"trade": -1, "quote": -1}
    for kind, batch in simulator.batches(max_rows=1_000):
        ts = batch.column("ts").to_numpy()
        assert ts[0] >= last_ts[kind], f"{kind} batches go forward in time"
        last_ts[kind] = ts[-1]
    per_symbol = events_by_symbol(collect(simulator))
    for symbol, (ts, seq) in per_symbol.items():
        assert np.array_equal(seq, np.arange(1, 2 * EVENTS_PER_DAY + 1)), symbol
        assert np.all(np.diff(ts) > 0), symbol


def test_weekends_are_skipped() -> None:
    saturday_start = small_config(start_date=date(2026, 3, 7), days=1)
    ts = np.concatenate([t.column("ts").to_numpy() for t in collect(MarketSimulator(saturday_start))])
    assert ts.min() >= MON_OPEN and ts.max() < MON_CLOSE


def test_activity_is_u_shaped_over_the_session() -> None:
    cfg = SimulatorConfig(symbols=("SPY",), seed=1, start_date=date(2026, 3, 9),
                          trades_per_symbol_per_day=20_000)
    ts = np.concatenate([t.column("ts").to_numpy() for t in collect(MarketSimulator(cfg))])
    minute = (ts - MON_OPEN) // (60 * NS)
    per_minute = np.bincount(minute, minlength=390)
    assert len(per_minute) == 390
    first, middle, last = per_minute[:30].mean(), per_minute[150:240].mean(), per_minute[-30:].mean()
    assert first > 1.5 * middle
    assert last > 1.5 * middle


def test_start_prices_set_the_opening_mid() -> None:
    cfg = small_config(start_prices={"MSFT": 100.0}, days=1)
    quotes = collect(MarketSimulator(cfg))[1].to_pandas()
    first = quotes[quotes.symbol == "MSFT"].iloc[0]
    assert (first.bid_price + first.ask_price) / 2 == pytest.approx(100.0, rel=2e-3)


def test_a_stressed_day_has_wider_spreads() -> None:
    cfg = small_config(symbols=("SPY",), regime_switch_probability=1.0, stressed_vol_multiplier=3.0)
    quotes = collect(MarketSimulator(cfg))[1].to_pandas()
    quotes["spread_bps"] = (quotes.ask_price - quotes.bid_price) / quotes.bid_price * 1e4
    calm = quotes[quotes.ts < FRI_CLOSE].spread_bps.mean()
    stressed = quotes[quotes.ts >= MON_OPEN].spread_bps.mean()
    assert stressed > 1.8 * calm


def test_config_is_immutable_and_hashable() -> None:
    cfg = small_config(symbols=["AAPL", "MSFT"], start_prices={"AAPL": 150.0})
    assert cfg.symbols == ("AAPL", "MSFT")
    assert hash(cfg) == hash(small_config(symbols=("AAPL", "MSFT"), start_prices={"AAPL": 150.0}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.start_prices["AAPL"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(symbols=()), "symbols must not be empty"),
    (dict(symbols=("AAPL", "AAPL")), "unique"),
    (dict(symbols="AAPL"), "tuple of strings"),
    (dict(symbols=("AAPL", "")), "non-empty code"),
    (dict(seed=-1), "seed"),
    (dict(start_date=datetime(2026, 3, 6)), "start_date"),
    (dict(days=0), "days"),
    (dict(session_open=time(16, 0), session_close=time(9, 30)), "before session_close"),
    (dict(timezone="Mars/Olympus"), "unknown timezone"),
    (dict(trades_per_symbol_per_day=0), "trades_per_symbol_per_day"),
    (dict(quotes_per_trade=-1.0), "quotes_per_trade"),
    (dict(jump_probability=1.5), "jump_probability"),
    (dict(annual_volatility=float("nan")), "annual_volatility"),
    (dict(regime_switch_probability=-0.1), "regime_switch_probability"),
    (dict(stressed_vol_multiplier=0.5), "stressed_vol_multiplier"),
    (dict(spread_bps=0.0), "spread_bps"),
    (dict(u_shape_weight=2.0), "u_shape_weight"),
    (dict(exchanges=()), "exchanges must not be empty"),
    (dict(start_prices={"TSLA": 10.0}), "not in symbols"),
    (dict(start_prices={"AAPL": 0.0}), r"start_prices\['AAPL'\] must be in \[0.05"),
    (dict(jump_size_sigma=2.0), "jump_size_sigma"),
])
def test_config_refuses_bad_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        small_config(**overrides)


def test_batches_refuses_a_non_positive_max_rows() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        next(MarketSimulator(small_config()).batches(max_rows=0))


@pytest.mark.unit
def test_by_symbol_batches_hold_the_same_rows_one_symbol_each():
    cfg = SimulatorConfig(symbols=("AAA", "BBB", "CCC"), seed=4, start_date=date(2026, 1, 5),
                          trades_per_symbol_per_day=1500)
    merged, split = {}, {}
    for kind, batch in MarketSimulator(cfg).batches():
        merged.setdefault(kind, []).append(pa.Table.from_batches([batch]))
    for kind, batch in MarketSimulator(cfg).batches(by_symbol=True):
        assert len(set(batch.column("symbol").to_pylist())) == 1
        split.setdefault(kind, []).append(pa.Table.from_batches([batch]))
    for kind in ("trade", "quote"):
        order = [("symbol", "ascending"), ("seq", "ascending")]
        assert pa.concat_tables(split[kind]).sort_by(order).equals(
            pa.concat_tables(merged[kind]).sort_by(order))
