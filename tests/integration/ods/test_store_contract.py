"""The operational store contract (``ods.store``), run against both stores: PostgreSQL
(``ods.postgres``) and HBase (``hbase.store``). One scratch store per backend and module (a
schema ``it_<hex>`` / tables ``it_<hex>_*``), dropped at the end; each test uses symbols, order
and execution ids of its own, so the tests do not see each other's rows.

Expected values are worked out by hand (or, for the random arrivals, recomputed in plain Python
from the distinct trades sent), never with the code under test. Prices are multiples of 1/8 and
sizes whole numbers, so every sum is exact whatever order a store adds in. The rule names
asserted are the named constraints and triggers of ods/migrations/ (order_transition,
order_values, execution_order, ...), which both stores report; a refusal by a check PostgreSQL
names automatically (e.g. a trade side other than B/S) is only asserted to be refused.
"""

from __future__ import annotations

import random
import struct
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from ods.store import POSITION_FIELDS, StoreRuleViolation
from tradelake.schemas import BAR, QUOTE, SIGNAL, TRADE, arrow_schema

MIN, SEC = 60 * 10**9, 10**9
M0 = 1_699_999_980 * SEC  # 2023-11-14T22:13:00Z, a minute boundary
M1, M2, M3 = M0 + MIN, M0 + 2 * MIN, M0 + 3 * MIN


# -- stores -----------------------------------------------------------------------------------------
def open_store(kind: str, cfg, name: str):
    if kind == "postgres":
        from ods.postgres import PostgresStore

        return PostgresStore(cfg, schema=name)
    from hbase.store import HBaseStore

    return HBaseStore(cfg, table_prefix=name)


@pytest.fixture(scope="module", params=["postgres", "hbase"])
def scratch(request, cfg, stack) -> Iterator[tuple[Any, str]]:
    """(store, scratch name) of one backend, shared by the module's tests."""
    name = f"it_{uuid.uuid4().hex[:8]}"
    store = open_store(request.param, cfg, name)
    try:
        store.ensure_schema()
        yield store, name
    finally:
        store.drop()
        store.close()


@pytest.fixture
def store(scratch):
    return scratch[0]


@pytest.fixture
def uid() -> str:
    """A prefix of this test's own for symbols and ids."""
    return f"Z{uuid.uuid4().hex[:6].upper()}"


# -- rows -------------------------------------------------------------------------------------------
def trades(symbol: str, rows: list[tuple[int, int, float, float]], **extra: Any) -> pa.Table:
    """(ts, seq, price, size) rows as a TRADE batch."""
    return pa.Table.from_pylist(
        [{"ts": ts, "symbol": symbol, "price": price, "size": size, "trade_id": f"{symbol}-{seq}",
          "exchange": "XNAS", "seq": seq, "side": None, "conditions": None, "ingest_ts": None,
          **extra} for ts, seq, price, size in rows],
        schema=arrow_schema(TRADE))


def quote(symbol: str, ts: int, seq: int, bid: float, ask: float, *, exchange: str | None = None,
          ingest_ts: int | None = None, bid_size: float = 100.0, ask_size: float = 200.0) -> dict:
    return {"ts": ts, "symbol": symbol, "bid_price": bid, "bid_size": bid_size, "ask_price": ask,
            "ask_size": ask_size, "exchange": exchange, "seq": seq, "ingest_ts": ingest_ts}


def quotes(*rows: dict) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=arrow_schema(QUOTE))


def order(cl_ord_id: str, symbol: str, status: str, *, side: str = "B", quantity: float = 100.0,
          limit_price: float | None = 10.5, account: str | None = None, ts: int = M0) -> dict:
    return {"ts": ts, "symbol": symbol, "cl_ord_id": cl_ord_id, "side": side,
            "order_type": "LMT" if limit_price is not None else "MKT", "quantity": quantity,
            "limit_price": limit_price, "time_in_force": "DAY", "strategy_id": "s1",
            "status": status, "account": account}


def execution(exec_id: str, cl_ord_id: str, symbol: str, *, side: str = "B", last_qty: float,
              last_price: float, commission: float | None = None, ts: int = M0 + SEC) -> dict:
    return {"ts": ts, "symbol": symbol, "exec_id": exec_id, "cl_ord_id": cl_ord_id,
            "order_id": None, "exec_type": "TRADE" if last_qty else "NEW",
            "order_status": "PARTIALLY_FILLED" if last_qty else "NEW", "side": side,
            "last_qty": last_qty, "last_price": last_price, "cum_qty": max(last_qty, 0.0),
            "leaves_qty": 0.0, "avg_price": last_price, "commission": commission,
            "venue": "SIM"}


def bar(ts: int, symbol: str, o: float, h: float, lo: float, c: float, volume: float,
        vwap: float | None, count: int) -> dict:
    return {"ts": ts, "symbol": symbol, "interval": "1m", "open": o, "high": h, "low": lo,
            "close": c, "volume": volume, "vwap": vwap, "trade_count": count}


def all_bars(store, symbol: str) -> list[dict]:
    return store.bars(symbol, 0, 2**62).to_pylist()


def stored_signals(store, name: str, symbol: str) -> list[dict]:
    """The signals of ``symbol`` as stored (the interface has no reader for them)."""
    names = ("ts", "symbol", "strategy_id", "signal_type", "strength", "target_position",
             "model_version")
    if store.kind == "postgres":
        import psycopg2

        conn = psycopg2.connect(store.cfg.postgres.dsn())
        try:
            with conn, conn.cursor() as cur:
                cur.execute(f'SELECT {", ".join(names)} FROM "{name}".signals WHERE symbol = %s',
                            (symbol,))
                rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        finally:
            conn.close()
    else:
        import happybase

        h = store.cfg.hbase
        conn = happybase.Connection(h.thrift_host, h.thrift_port)
        try:
            scanned = list(conn.table(f"{name}_signals").scan())
        finally:
            conn.close()
        rows = []
        for key, cells in scanned:
            # salt | symbol | 00 | 2**63-1-ts | strategy_id | 00 | signal_type (module docstring)
            sym, rest = key[1:].split(b"\x00", 1)
            strategy, kind = rest[8:].split(b"\x00", 1)

            def value(col: bytes, fmt: str | None, cells: dict = cells) -> Any:
                raw = cells[b"s:" + col]  # 0xFF is a null; doubles '>d'; strings UTF-8
                return None if raw == b"\xff" else (struct.unpack(fmt, raw)[0] if fmt
                                                    else raw.decode())

            rows.append({"ts": 2**63 - 1 - struct.unpack(">Q", rest[:8])[0],
                         "symbol": sym.decode(), "strategy_id": strategy.decode(),
                         "signal_type": kind.decode(), "strength": value(b"strength", ">d"),
                         "target_position": value(b"target_position", ">d"),
                         "model_version": value(b"model_version", None)})
        rows = [r for r in rows if r["symbol"] == symbol]
    return sorted(rows, key=lambda r: (r["ts"], r["strategy_id"], r["signal_type"]))


# -- schema -----------------------------------------------------------------------------------------
def test_ensure_schema_is_idempotent_and_keeps_data(store, uid):
    assert store.kind in ("postgres", "hbase")
    assert store.write_trades(trades(uid, [(M0, 1, 10.0, 1.0)])) == 1
    store.ensure_schema()
    assert store.last_trade(uid) == {"ts": M0, "symbol": uid, "seq": 1, "price": 10.0, "size": 1.0}


def test_drop_removes_everything(store, cfg, uid):
    name = f"it_{uuid.uuid4().hex[:8]}"
    other = open_store(store.kind, cfg, name)
    try:
        other.ensure_schema()
        other.write_trades(trades(uid, [(M0, 1, 10.0, 1.0)]))
        other.drop()
        other.ensure_schema()
        assert other.last_trade(uid) is None
        assert other.bars(uid, 0, 2**62).num_rows == 0
    finally:
        other.drop()
        other.close()


# -- ticks ------------------------------------------------------------------------------------------
def test_duplicate_ticks_are_ignored_and_not_counted(store, uid):
    first = [(M0 + SEC, 1, 10.0, 1.0), (M0 + SEC, 2, 10.5, 2.0), (M0 + 2 * SEC, 3, 11.0, 3.0)]
    assert store.write_trades(trades(uid, first)) == 3
    assert store.write_trades(trades(uid, first)) == 0
    # one stored, one new, the new one twice in the batch: 1 new row
    again = [(M0 + SEC, 2, 10.5, 2.0), (M0 + 3 * SEC, 4, 12.0, 4.0), (M0 + 3 * SEC, 4, 12.0, 4.0)]
    assert store.write_trades(trades(uid, again)) == 1
    assert all_bars(store, uid) == [bar(M0, uid, 10.0, 12.0, 10.0, 12.0, 10.0,
                                        (10.0 + 21.0 + 33.0 + 48.0) / 10.0, 4)]
    assert store.write_trades(trades(uid, [])) == 0

    q = [quote(uid, M0, 1, 9.875, 10.125), quote(uid, M0, 2, 9.75, 10.25)]
    assert store.write_quotes(quotes(*q)) == 2
    assert store.write_quotes(quotes(*q, quote(uid, M0, 3, 9.5, 10.5))) == 1


def test_bars_from_out_of_order_and_duplicate_arrivals(store, uid):
    t1 = (M0 + 10 * SEC, 1, 100.0, 10.0)
    t2 = (M0 + 10 * SEC, 2, 101.0, 5.0)  # same ts as t1, later seq
    t3 = (M0 + 30 * SEC, 3, 99.5, 20.0)
    t4 = (M0 + 5 * SEC, 7, 100.5, 4.0)  # the minute's first trade, arriving last
    t5 = (M1, 8, 102.0, 1.0)  # first nanosecond of the next minute
    t6 = (M1 + MIN - 1, 9, 101.5, 3.0)  # its last nanosecond

    assert store.write_trades(trades(uid, [t3, t1, t5])) == 3
    assert all_bars(store, uid) == [
        bar(M0, uid, 100.0, 100.0, 99.5, 99.5, 30.0, (1000.0 + 1990.0) / 30.0, 2),
        bar(M1, uid, 102.0, 102.0, 102.0, 102.0, 1.0, 102.0, 1),
    ]
    assert store.write_trades(trades(uid, [t1, t2, t6, t2])) == 2
    assert store.write_trades(trades(uid, [t4, t3])) == 1
    assert all_bars(store, uid) == [
        bar(M0, uid, 100.5, 101.0, 99.5, 99.5, 39.0, (1000.0 + 505.0 + 1990.0 + 402.0) / 39.0, 4),
        bar(M1, uid, 102.0, 102.0, 101.5, 101.5, 4.0, (102.0 + 304.5) / 4.0, 2),
    ]
    # t4 was older: the last trade is still t6
    assert store.last_trade(uid) == {"ts": M1 + MIN - 1, "symbol": uid, "seq": 9, "price": 101.5,
                                     "size": 3.0}


def test_bars_equal_a_recomputation_from_random_arrivals(store, uid):
    rng = random.Random(20240611)
    symbols = [f"{uid}A", f"{uid}B"]
    sent: dict[tuple[str, int, int], dict] = {}
    seq = 0
    for symbol in symbols:
        for _ in range(150):
            seq += 1
            # whole seconds: many trades share a ts and are ordered by seq
            ts = M0 + rng.randrange(4) * MIN + rng.randrange(60) * SEC
            sent[(symbol, ts, seq)] = {"ts": ts, "symbol": symbol, "seq": seq,
                                       "price": rng.randrange(760, 840) / 8,
                                       "size": float(rng.randrange(1, 500))}
    distinct = list(sent.values())
    arrivals = distinct[:]
    rng.shuffle(arrivals)
    batches, i = [], 0
    while i < len(arrivals):
        n = rng.randrange(1, 40)
        batch = arrivals[i:i + n]
        if batches and rng.random() < 0.4:  # re-deliver part of an earlier batch
            earlier = rng.choice(batches)
            batch = batch + rng.sample(earlier, rng.randrange(1, len(earlier) + 1))
        if rng.random() < 0.2:  # a duplicate within the batch
            batch = batch + [rng.choice(batch)]
        rng.shuffle(batch)
        batches.append(batch)
        i += n
    batches.append(rng.sample(arrivals, 50))  # a late replay of old ticks

    def table(batch: list[dict]) -> pa.Table:
        return pa.Table.from_pylist(
            [{**t, "trade_id": f"t{t['seq']}", "exchange": None, "side": None,
              "conditions": None, "ingest_ts": None} for t in batch], schema=arrow_schema(TRADE))

    new = [store.write_trades(table(b)) for b in batches]
    assert sum(new) == len(distinct) == 300
    assert new[-1] == 0

    for symbol in symbols:
        by_minute: dict[int, list[dict]] = {}
        for t in sorted((t for t in distinct if t["symbol"] == symbol),
                        key=lambda t: (t["ts"], t["seq"])):
            by_minute.setdefault(t["ts"] - t["ts"] % MIN, []).append(t)
        expected = []
        for minute, ts_ in sorted(by_minute.items()):
            volume = sum(t["size"] for t in ts_)
            expected.append(bar(minute, symbol, ts_[0]["price"], max(t["price"] for t in ts_),
                                min(t["price"] for t in ts_), ts_[-1]["price"], volume,
                                sum(t["price"] * t["size"] for t in ts_) / volume, len(ts_)))
        assert len(expected) == 4
        assert store.bars(symbol, M0, M0 + 4 * MIN).to_pylist() == expected
        last = max((t for t in distinct if t["symbol"] == symbol), key=lambda t: (t["ts"], t["seq"]))
        assert store.last_trade(symbol) == {"ts": last["ts"], "symbol": symbol, "seq": last["seq"],
                                            "price": last["price"], "size": last["size"]}


def test_bars_range_is_start_inclusive_end_exclusive(store, uid):
    store.write_trades(trades(uid, [(M0 + SEC, 1, 10.0, 1.0), (M1, 2, 11.0, 1.0),
                                    (M2 + 59 * SEC, 3, 12.0, 1.0)]))
    b0 = bar(M0, uid, 10.0, 10.0, 10.0, 10.0, 1.0, 10.0, 1)
    b1 = bar(M1, uid, 11.0, 11.0, 11.0, 11.0, 1.0, 11.0, 1)
    b2 = bar(M2, uid, 12.0, 12.0, 12.0, 12.0, 1.0, 12.0, 1)
    assert store.bars(uid, M0, M3).to_pylist() == [b0, b1, b2]
    assert store.bars(uid, M0, M2).to_pylist() == [b0, b1]
    assert store.bars(uid, M0 + 1, M2 + 1).to_pylist() == [b1, b2]  # a bar's ts is its open
    assert store.bars(uid, M1, M1 + 1).to_pylist() == [b1]
    assert store.bars(uid, M1, M1).to_pylist() == []
    assert store.bars(uid, M3, M3 + 10 * MIN).to_pylist() == []
    assert store.bars(uid, M3, M0).to_pylist() == []
    assert store.bars(uid, -(2**63), 2**63 - 1).to_pylist() == [b0, b1, b2]


def test_bars_of_a_symbol_exclude_symbols_it_prefixes(store, uid):
    store.write_trades(trades(uid, [(M0, 1, 10.0, 1.0)]))
    store.write_trades(trades(uid + "X", [(M0, 1, 20.0, 2.0)]))
    assert all_bars(store, uid) == [bar(M0, uid, 10.0, 10.0, 10.0, 10.0, 1.0, 10.0, 1)]
    assert all_bars(store, uid + "X") == [bar(M0, uid + "X", 20.0, 20.0, 20.0, 20.0, 2.0, 20.0, 1)]
    assert store.last_trade(uid)["price"] == 10.0


def test_bars_table_has_the_bar_schema(store, uid):
    store.write_trades(trades(uid, [(M0, 1, 10.0, 0.0)]))  # a zero-size print: no vwap
    table = store.bars(uid, M0, M1)
    assert table.schema.names == list(BAR.names)
    assert table.schema.equals(arrow_schema(BAR))
    assert table.to_pylist() == [bar(M0, uid, 10.0, 10.0, 10.0, 10.0, 0.0, None, 1)]
    empty = store.bars(uid + "NONE", M0, M1)
    assert empty.num_rows == 0 and empty.schema.equals(arrow_schema(BAR))


def test_last_trade_is_the_greatest_ts_seq_not_the_last_written(store, uid):
    assert store.last_trade(uid) is None
    store.write_trades(trades(uid, [(M0 + 5 * SEC, 5, 10.0, 1.0)]))
    store.write_trades(trades(uid, [(M0 + 5 * SEC, 4, 9.0, 2.0)]))  # same ts, lower seq
    store.write_trades(trades(uid, [(M0, 9, 8.0, 3.0)]))  # older ts, higher seq
    assert store.last_trade(uid) == {"ts": M0 + 5 * SEC, "symbol": uid, "seq": 5, "price": 10.0,
                                     "size": 1.0}
    store.write_trades(trades(uid, [(M0 + 5 * SEC, 6, 10.25, 4.0), (M0 + SEC, 10, 7.0, 1.0)]))
    assert store.last_trade(uid) == {"ts": M0 + 5 * SEC, "symbol": uid, "seq": 6, "price": 10.25,
                                     "size": 4.0}


def test_last_trades_answers_for_many_symbols_at_once_as_last_trade_does(store, uid):
    a, b, never = uid + "A", uid + "B", uid + "N"
    assert store.last_trades([a, b, never]) == {}
    store.write_quotes(quotes(quote(never, M0, 1, 9.0, 10.0)))  # quoted, never traded
    store.write_trades(trades(a, [(M0, 1, 10.0, 1.0), (M0 + SEC, 2, 11.0, 2.0)]))
    store.write_trades(trades(b, [(M0 + 2 * SEC, 7, 20.0, 3.0)]))
    assert store.last_trades([a, b, never]) == {
        a: {"ts": M0 + SEC, "symbol": a, "seq": 2, "price": 11.0, "size": 2.0},
        b: {"ts": M0 + 2 * SEC, "symbol": b, "seq": 7, "price": 20.0, "size": 3.0}}
    assert store.last_trades([b]) == {b: store.last_trade(b)}
    assert store.last_trades([]) == {}


def test_latest_quote_is_the_greatest_ts_seq_not_the_last_written(store, uid):
    assert store.latest_quote(uid) is None
    q1 = quote(uid, M0 + SEC, 5, 9.875, 10.125, exchange="ARCA", ingest_ts=M0 + 2 * SEC)
    assert store.write_quotes(quotes(q1)) == 1
    assert store.write_quotes(quotes(quote(uid, M0 + SEC, 4, 1.0, 2.0),
                                     quote(uid, M0, 9, 3.0, 4.0))) == 2
    assert store.latest_quote(uid) == q1
    q2 = quote(uid, M0 + 2 * SEC, 0, 9.75, 10.0)  # newer, no exchange: the old one must go
    store.write_quotes(quotes(q2, quote(uid, M0 + SEC, 6, 5.0, 6.0)))
    assert store.latest_quote(uid) == q2
    assert list(store.latest_quote(uid)) == list(QUOTE.names)


def test_floats_round_trip_exactly(store, uid):
    price, size = 0.1 + 0.2, 1 / 3  # 0.30000000000000004, 0.3333333333333333
    store.write_trades(trades(uid, [(M0, 1, price, size)]))
    assert store.last_trade(uid) == {"ts": M0, "symbol": uid, "seq": 1, "price": price,
                                     "size": size}
    q = quote(uid, M0, 1, 1e-300, 1.7976931348623157e308, bid_size=2.0 / 3.0, ask_size=0.0)
    store.write_quotes(quotes(q))
    assert store.latest_quote(uid) == q


@pytest.mark.parametrize(("column", "value", "rule"), [
    ("price", -1.0, "trade_price_positive"),
    ("price", float("nan"), "trade_price_positive"),
    ("price", float("inf"), "trade_price_positive"),
    ("size", -1.0, "trade_size_non_negative"),
    ("size", float("nan"), "trade_size_non_negative"),
    ("side", "X", None),  # refused; the rule has no name of its own in PostgreSQL
])
def test_an_invalid_trade_refuses_the_whole_batch(store, uid, column, value, rule):
    good = {"ts": M0, "symbol": uid, "price": 10.0, "size": 1.0, "trade_id": "g", "seq": 1}
    bad = {**good, "ts": M0 + SEC, "trade_id": "b", "seq": 2, column: value}
    batch = pa.Table.from_pylist([good, bad], schema=arrow_schema(TRADE))
    with pytest.raises(StoreRuleViolation) as refused:
        store.write_trades(batch)
    assert rule is None or refused.value.rule == rule
    assert store.last_trade(uid) is None
    assert all_bars(store, uid) == []
    assert store.write_trades(batch.slice(0, 1)) == 1  # the good row was not stored


def test_a_null_in_a_required_tick_column_is_refused(store, uid):
    batch = pa.Table.from_pylist([{"ts": M0, "symbol": uid, "price": None, "size": 1.0,
                                   "trade_id": "n", "seq": 1}], schema=arrow_schema(TRADE))
    with pytest.raises(StoreRuleViolation):
        store.write_trades(batch)
    assert store.last_trade(uid) is None


@pytest.mark.parametrize(("column", "value", "rule"), [
    ("bid_price", 0.0, "quote_bid_positive"),
    ("ask_price", -2.0, "quote_ask_positive"),
    ("ask_size", -1.0, None),
])
def test_an_invalid_quote_refuses_the_whole_batch(store, uid, column, value, rule):
    good = quote(uid, M0, 1, 9.5, 10.5)
    with pytest.raises(StoreRuleViolation) as refused:
        store.write_quotes(quotes(good, {**quote(uid, M0 + SEC, 2, 9.5, 10.5), column: value}))
    assert rule is None or refused.value.rule == rule
    assert store.latest_quote(uid) is None


# -- orders -----------------------------------------------------------------------------------------
def test_order_moves_along_the_transition_graph(store, uid):
    oid = f"{uid}-1"
    assert store.order_status(oid) is None
    store.record_order(order(oid, uid, "PENDING_NEW"))
    assert store.order_status(oid) == "PENDING_NEW"
    for status in ("NEW", "PARTIALLY_FILLED", "PARTIALLY_FILLED", "FILLED"):
        store.record_order(order(oid, uid, status))
        assert store.order_status(oid) == status
    with pytest.raises(StoreRuleViolation) as refused:
        store.record_order(order(oid, uid, "CANCELED"))  # FILLED is terminal
    assert refused.value.rule == "order_transition"
    assert store.order_status(oid) == "FILLED"


def test_a_refused_transition_leaves_the_status(store, uid):
    oid = f"{uid}-1"
    store.record_order(order(oid, uid, "NEW"))
    for status in ("NEW", "PENDING_NEW", "REPLACED", "NO_SUCH_STATE"):
        with pytest.raises(StoreRuleViolation) as refused:
            store.record_order(order(oid, uid, status))
        assert refused.value.rule == "order_transition"
        assert store.order_status(oid) == "NEW"
    store.record_order(order(oid, uid, "PENDING_REPLACE", limit_price=10.25))
    store.record_order(order(oid, uid, "REPLACED"))
    assert store.order_status(oid) == "REPLACED"


@pytest.mark.parametrize("status", ["FILLED", "PARTIALLY_FILLED", "CANCELED", "NO_SUCH_STATE"])
def test_an_order_cannot_start_in_a_non_initial_state(store, uid, status):
    with pytest.raises(StoreRuleViolation) as refused:
        store.record_order(order(f"{uid}-1", uid, status))
    assert refused.value.rule == "order_transition"
    assert store.order_status(f"{uid}-1") is None


@pytest.mark.parametrize("status", ["PENDING_NEW", "NEW", "REJECTED"])
def test_an_order_can_start_in_an_initial_state(store, uid, status):
    store.record_order(order(f"{uid}-1", uid, status))
    assert store.order_status(f"{uid}-1") == status


@pytest.mark.parametrize("changes", [{"quantity": 0.0}, {"quantity": -5.0},
                                     {"quantity": float("nan")}, {"limit_price": 0.0},
                                     {"limit_price": -1.0}, {"limit_price": float("inf")}])
def test_order_values_are_checked(store, uid, changes):
    with pytest.raises(StoreRuleViolation) as refused:
        store.record_order({**order(f"{uid}-1", uid, "NEW"), **changes})
    assert refused.value.rule == "order_values"
    assert store.order_status(f"{uid}-1") is None
    store.record_order(order(f"{uid}-2", uid, "NEW"))
    with pytest.raises(StoreRuleViolation) as refused:  # an update is checked too
        store.record_order({**order(f"{uid}-2", uid, "PARTIALLY_FILLED"), "limit_price": -1.0})
    assert refused.value.rule == "order_values"
    assert store.order_status(f"{uid}-2") == "NEW"


@pytest.mark.parametrize("changes", [{"quantity": 200.0}, {"side": "S"}, {"symbol": "OTHER"},
                                     {"account": "someone-else"}, {"order_type": "MKT"}])
def test_symbol_side_type_quantity_and_account_of_an_order_are_immutable(store, uid, changes):
    oid = f"{uid}-1"
    store.record_order(order(oid, uid, "NEW", account="acc-1"))
    with pytest.raises(StoreRuleViolation) as refused:
        store.record_order({**order(oid, uid, "PARTIALLY_FILLED", account="acc-1"), **changes})
    assert refused.value.rule == "order_immutable"
    assert store.order_status(oid) == "NEW"


def test_a_status_update_may_leave_the_other_fields_out(store, uid):
    oid = f"{uid}-1"
    store.record_order(order(oid, uid, "NEW", account="acc-1"))
    store.record_order({"cl_ord_id": oid, "ts": M0 + SEC, "status": "CANCELED"})
    assert store.order_status(oid) == "CANCELED"


# -- executions and positions -----------------------------------------------------------------------
def test_an_execution_of_an_unknown_order_is_refused(store, uid):
    with pytest.raises(StoreRuleViolation) as refused:
        store.record_execution(execution(f"{uid}-e1", f"{uid}-nope", uid, last_qty=10.0,
                                         last_price=10.0))
    assert refused.value.rule == "execution_order"
    assert store.position("default", uid) is None
    store.record_order(order(f"{uid}-1", uid, "NEW"))
    # the exec_id was not taken by the refused report
    assert store.record_execution(execution(f"{uid}-e1", f"{uid}-1", uid, last_qty=10.0,
                                            last_price=10.0)) is True


def test_an_execution_must_match_its_orders_symbol_and_side(store, uid):
    store.record_order(order(f"{uid}-1", uid, "NEW"))
    for changes in ({"side": "S"}, {"symbol": uid + "X"}):
        with pytest.raises(StoreRuleViolation) as refused:
            store.record_execution({**execution(f"{uid}-e1", f"{uid}-1", uid, last_qty=1.0,
                                                last_price=10.0), **changes})
        assert refused.value.rule == "execution_order"
    assert store.position("default", uid) is None
    assert store.position("default", uid + "X") is None


@pytest.mark.parametrize(("qty", "price", "rule"), [
    (5.0, 0.0, "execution_values"),  # a fill needs a price
    (-1.0, 10.0, None),  # refused by an unnamed check in PostgreSQL
    (5.0, -10.0, "execution_values"),
])
def test_execution_values_are_checked(store, uid, qty, price, rule):
    store.record_order(order(f"{uid}-1", uid, "NEW"))
    with pytest.raises(StoreRuleViolation) as refused:
        store.record_execution(execution(f"{uid}-e1", f"{uid}-1", uid, last_qty=qty,
                                         last_price=price))
    assert rule is None or refused.value.rule == rule
    assert store.position("default", uid) is None


def test_a_report_without_a_fill_makes_no_position(store, uid):
    store.record_order(order(f"{uid}-1", uid, "PENDING_NEW"))
    assert store.record_execution(execution(f"{uid}-e0", f"{uid}-1", uid, last_qty=0.0,
                                            last_price=0.0)) is True
    assert store.position("default", uid) is None


def test_position_and_pnl_of_buys_and_sells_with_commission(store, uid):
    buy, sell = f"{uid}-B", f"{uid}-S"
    store.record_order(order(buy, uid, "NEW", side="B", quantity=100.0, account="acc-1"))
    store.record_order(order(sell, uid, "NEW", side="S", quantity=30.0, limit_price=None,
                             account="acc-1"))
    assert store.record_execution(execution(f"{uid}-e1", buy, uid, last_qty=60.0,
                                            last_price=10.25, commission=1.5)) is True
    assert store.record_execution(execution(f"{uid}-e2", buy, uid, last_qty=40.0,
                                            last_price=10.5, commission=1.0)) is True
    assert store.record_execution(execution(f"{uid}-e3", sell, uid, side="S", last_qty=30.0,
                                            last_price=11.0)) is True
    # bought 60 * 10.25 + 40 * 10.5 = 615 + 420 = 1035; sold 30 * 11 = 330; commission 2.5
    expected = {"account": "acc-1", "symbol": uid, "quantity": 70.0, "buy_qty": 100.0,
                "sell_qty": 30.0, "buy_notional": 1035.0, "sell_notional": 330.0,
                "commission": 2.5, "fills": 3, "cash": 330.0 - 1035.0 - 2.5,
                "last_price": None, "pnl": None}
    assert store.position("acc-1", uid) == expected
    assert set(expected) == {"account", "symbol", *POSITION_FIELDS}
    assert store.position("default", uid) is None  # the orders' account, not the default

    store.write_trades(trades(uid, [(M0 + 2 * SEC, 1, 10.75, 100.0)]))
    marked = {**expected, "last_price": 10.75, "pnl": -707.5 + 70.0 * 10.75}
    assert marked["pnl"] == 45.0
    assert store.position("acc-1", uid) == marked

    # a re-delivered report changes nothing, even with other figures
    assert store.record_execution(execution(f"{uid}-e2", buy, uid, last_qty=40.0,
                                            last_price=10.5, commission=1.0)) is False
    assert store.record_execution(execution(f"{uid}-e3", sell, uid, side="S", last_qty=99.0,
                                            last_price=12.0)) is False
    assert store.position("acc-1", uid) == marked


def test_an_order_without_account_fills_the_default_account(store, uid):
    store.record_order(order(f"{uid}-1", uid, "NEW", side="S", account=None))
    store.record_execution(execution(f"{uid}-e1", f"{uid}-1", uid, side="S", last_qty=2.0,
                                     last_price=20.0, commission=0.5))
    assert store.position("default", uid) == {
        "account": "default", "symbol": uid, "quantity": -2.0, "buy_qty": 0.0, "sell_qty": 2.0,
        "buy_notional": 0.0, "sell_notional": 40.0, "commission": 0.5, "fills": 1,
        "cash": 39.5, "last_price": None, "pnl": None}


def test_concurrent_writers_lose_no_fill(store, scratch, cfg, uid):
    """Two store instances (two connections) fill the same position at once."""
    oid = f"{uid}-1"
    store.record_order(order(oid, uid, "NEW", quantity=1000.0, account="acc-c"))
    others = [open_store(store.kind, cfg, scratch[1]) for _ in range(2)]
    errors: list[BaseException] = []

    def fill(writer, tag: str) -> None:
        try:
            for i in range(15):
                writer.record_execution(execution(f"{uid}-{tag}{i}", oid, uid, last_qty=1.0,
                                                  last_price=8.0 + i, commission=0.125))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=fill, args=(w, tag)) for w, tag in zip(others, "xy", strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in others:
        w.close()
    assert errors == []
    pos = store.position("acc-c", uid)
    # each writer: 15 fills of 1 at 8, 9, ..., 22 -> notional 15 * 15 = 225
    assert (pos["fills"], pos["quantity"], pos["buy_notional"], pos["commission"]) == \
        (30, 30.0, 450.0, 3.75)


# -- signals ----------------------------------------------------------------------------------------
def test_signals_replace_on_the_same_key(store, scratch, uid):
    def signal(ts: int, strategy: str, kind: str, strength: float, target: float | None,
               model: str | None) -> dict:
        return {"ts": ts, "symbol": uid, "strategy_id": strategy, "signal_type": kind,
                "strength": strength, "target_position": target, "model_version": model}

    first = [signal(M0, "mom", "entry", 0.5, 100.0, "v1"),
             signal(M0, "mom", "exit", -0.25, None, None),
             signal(M0, "rev", "entry", 1.0, 50.0, "v1"),
             signal(M1, "mom", "entry", 0.75, 200.0, "v1")]
    table = pa.Table.from_pylist(first, schema=arrow_schema(SIGNAL))
    assert store.write_signals(table) == 4
    assert stored_signals(store, scratch[1], uid) == first
    replaced = signal(M0, "mom", "entry", -1.0, None, "v2")  # nulls replace values too
    assert store.write_signals(pa.Table.from_pylist([replaced], schema=arrow_schema(SIGNAL))) == 1
    assert stored_signals(store, scratch[1], uid) == [replaced, *first[1:]]
    assert store.write_signals(pa.Table.from_pylist([], schema=arrow_schema(SIGNAL))) == 0
