"""The PostgreSQL ODS against a real PostgreSQL: migrations, continuous views equal to a
recomputation from their base rows after random out-of-order and duplicated batches, the
business rules, and the complex-event rules with their notifications."""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import uuid

import psycopg2
import pyarrow as pa
import pytest

from ods.checksum import store_checksums
from ods.migrate import MigrationError, migrate, migrations
from ods.postgres import PostgresStore
from ods.store import StoreRuleViolation

M = 60_000_000_000  # one minute in ns
DAY = 1_767_571_200_000_000_000  # 2026-01-05T00:00Z


@pytest.fixture
def store(cfg, stack):
    """A scratch schema with its own alerts channel, so no other test's alerts reach ours."""
    name = f"it_{uuid.uuid4().hex[:10]}"
    scratch = dataclasses.replace(cfg, ods=dataclasses.replace(cfg.ods, alerts_channel=name))
    s = PostgresStore(scratch, schema=name)
    s.ensure_schema()
    yield s
    s.drop()
    s.close()


def query(store: PostgresStore, text: str, params: tuple = ()) -> list[tuple]:
    return store.query(text, params)


def trades(rows: list[tuple]) -> pa.Table:
    """(ts, symbol, seq, price, size) tuples as a trade batch."""
    ts, symbol, seq, price, size = (list(c) for c in zip(*rows, strict=True))
    return pa.table({"ts": ts, "symbol": symbol, "seq": seq, "price": price, "size": size,
                     "trade_id": [f"t{s}" for s in seq]})


def quotes(rows: list[tuple]) -> pa.Table:
    ts, symbol, seq, bid, ask = (list(c) for c in zip(*rows, strict=True))
    return pa.table({"ts": ts, "symbol": symbol, "seq": seq, "bid_price": bid, "ask_price": ask,
                     "bid_size": [100.0] * len(ts), "ask_size": [200.0] * len(ts)})


def test_migrations_are_versioned_and_idempotent(cfg, store):
    versions = [m.version for m in migrations()]
    assert versions == sorted(versions) and versions[0] == 1
    conn = psycopg2.connect(cfg.postgres.dsn())
    try:
        assert migrate(conn, cfg.ods, store.schema) == []  # already at the last version
        with conn, conn.cursor() as cur:
            cur.execute(f"UPDATE {store.schema}.schema_migrations SET checksum = 'x' "
                        "WHERE version = 1")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            migrate(conn, cfg.ods, store.schema)
    finally:
        conn.close()
    applied = query(store, "SELECT version FROM schema_migrations ORDER BY version")
    assert [v for (v,) in applied] == versions


def test_views_equal_recomputation_after_random_batches(store):
    rng = random.Random(20261122)
    pool_trades, pool_quotes = [], []
    for symbol in ("AAA", "BBB", "CCC"):
        price = 100.0
        for seq in range(1, 601):
            price *= math.exp(rng.gauss(0, 0.002))
            ts = DAY + rng.randrange(0, 12 * 60) * 1_000_000_000  # whole seconds: ts ties, seq breaks them
            pool_trades.append((ts, symbol, seq, round(price, 4), float(rng.randint(1, 500))))
            pool_quotes.append((ts, symbol, seq, round(price - 0.01, 4), round(price + 0.01, 4)))
    written = set()
    for _ in range(12):  # each batch: a random, shuffled sample; later batches repeat rows
        batch = rng.sample(pool_trades, rng.randint(1, 400))
        batch += rng.sample(batch, len(batch) // 5)  # duplicates inside the batch too
        rng.shuffle(batch)
        new = store.write_trades(trades(batch))
        assert new == len({(t[1], t[0], t[2]) for t in batch} - written)
        written |= {(t[1], t[0], t[2]) for t in batch}
        store.write_quotes(quotes(rng.sample(pool_quotes, rng.randint(1, 300))))
    assert query(store, "SELECT count(*) FROM trades")[0][0] == len(written)

    stored = {(s, ts): (o, h, lo, c, v, n, pv) for s, ts, o, h, lo, c, v, pv, n in query(
        store, "SELECT symbol, ts, open, high, low, close, volume, pv, trade_count FROM bars_1m")}
    recomputed = {(s, m): (o, h, lo, c, v, n, pv) for s, m, o, h, lo, c, v, n, pv in query(store, """
        SELECT symbol, ts - ts % 60000000000 AS m,
               (array_agg(price ORDER BY ts, seq))[1], max(price), min(price),
               (array_agg(price ORDER BY ts DESC, seq DESC))[1], sum(size), count(*),
               sum(price * size)
        FROM trades GROUP BY 1, 2""")}
    assert stored.keys() == recomputed.keys()
    for key, (o, h, lo, c, v, n, pv) in recomputed.items():
        got = stored[key]
        assert got[:4] == (o, h, lo, c) and got[5] == n, key
        assert got[4] == pytest.approx(v, rel=1e-12) and got[6] == pytest.approx(pv, rel=1e-12)

    # A plain-Python recomputation of one symbol's bars and VWAP, from the rows we wrote.
    rows = sorted(t for t in pool_trades if t[1] == "BBB" and (t[1], t[0], t[2]) in written)
    by_minute: dict[int, list[tuple]] = {}
    for t in rows:
        by_minute.setdefault(t[0] - t[0] % M, []).append(t)
    served = store.bars("BBB", DAY, DAY + 12 * M).to_pylist()
    assert [b["ts"] for b in served] == sorted(by_minute)
    for bar in served:
        ticks = sorted(by_minute[bar["ts"]], key=lambda t: (t[0], t[2]))
        volume = sum(t[4] for t in ticks)
        assert (bar["open"], bar["close"]) == (ticks[0][3], ticks[-1][3])
        assert bar["vwap"] == pytest.approx(sum(t[3] * t[4] for t in ticks) / volume, rel=1e-12)
        assert bar["trade_count"] == len(ticks)

    assert sorted(query(store, "SELECT symbol, ts, seq, price FROM last_trades")) == sorted(
        query(store, "SELECT DISTINCT ON (symbol) symbol, ts, seq, price FROM trades "
                     "ORDER BY symbol, ts DESC, seq DESC"))
    assert sorted(query(store, "SELECT symbol, ts, seq, bid_price, ask_price "
                               "FROM latest_quotes")) == sorted(
        query(store, "SELECT DISTINCT ON (symbol) symbol, ts, seq, bid_price, ask_price "
                     "FROM quotes ORDER BY symbol, ts DESC, seq DESC"))
    window = int(query(store, "SELECT value FROM settings WHERE name = "
                              "'rolling_volume_minutes'")[0][0])
    rolling = {s: (m, v, n) for s, m, v, n in query(
        store, "SELECT symbol, as_of_minute, volume, trade_count FROM rolling_volume")}
    for symbol in ("AAA", "BBB", "CCC"):
        mine = [t for t in pool_trades if t[1] == symbol and (t[1], t[0], t[2]) in written]
        last_minute = max(t[0] for t in mine) // M * M
        inside = [t for t in mine if last_minute - (window - 1) * M <= t[0] < last_minute + M]
        assert rolling[symbol][0] == last_minute
        assert rolling[symbol][1] == pytest.approx(sum(t[4] for t in inside), rel=1e-12)
        assert rolling[symbol][2] == len(inside)

    # The bulk load's end (migration V007): every view recomputed from the whole tables in one
    # pass holds what the triggers built batch by batch (checksums round the summed doubles).
    assert query(store, "SELECT count(*) FROM (SELECT symbol, ts FROM trades GROUP BY 1, 2 "
                        "HAVING count(*) > 1) t")[0][0] > 0  # the data has ts ties for seq to break
    views = ("bars_1m", "last_trades", "latest_quotes", "rolling_volume")
    built = store_checksums(store, views)
    alerts = set(query(store, "SELECT rule, symbol, account, ts FROM alerts"))
    query(store, "SELECT refresh_continuous_views()")
    assert store_checksums(store, views) == built
    assert all(c.rows > 0 for c in built.values())
    # the rules are judged again on every bar, complete: the alerts already raised are kept
    assert alerts <= set(query(store, "SELECT rule, symbol, account, ts FROM alerts"))


def test_bulk_load_builds_the_views_at_the_end_and_leaves_the_triggers_on(cfg, store):
    """ods.bulk_load (the DR rebuild's path) into a second scratch schema: the same rows as a
    store fed through its triggers give the same checksums, and a live write afterwards still
    folds into the views (the trigger is back on, the key refuses a repeat)."""
    from ods.bulk_load import PostgresBulkLoad

    rng = random.Random(7)
    rows = [(DAY + rng.randrange(0, 20 * 60) * 1_000_000_000, s, seq, round(rng.uniform(50, 60), 2),
             float(rng.randint(1, 300))) for s in ("AAA", "BBB") for seq in range(1, 401)]
    quote_rows = [(t[0], t[1], t[2], t[3] - 0.01, t[3] + 0.01) for t in rows]
    store.write_trades(trades(rows))
    store.write_quotes(quotes(quote_rows))
    bulk_store = PostgresStore(cfg, schema=f"{store.schema}_bulk")
    bulk_store.ensure_schema()
    bulk = PostgresBulkLoad(cfg, bulk_store.schema)
    try:
        bulk.begin()
        writers = {"trades": bulk.writer("trades"), "quotes": bulk.writer("quotes")}
        writers["trades"](trades(rows[:500]))
        writers["trades"](trades(rows[500:]))
        writers["quotes"](quotes(quote_rows))
        bulk.end()
        tables = ("trades", "quotes", "bars_1m", "last_trades", "latest_quotes", "rolling_volume")
        assert store_checksums(bulk_store, tables) == store_checksums(store, tables)

        late = (DAY + 25 * M, "AAA", 10_000, 70.0, 5.0)  # a new minute, after the load
        assert bulk_store.write_trades(trades([late])) == 1
        assert bulk_store.write_trades(trades([late])) == 0  # the key is back
        assert query(bulk_store, "SELECT close, trade_count FROM bars_1m WHERE symbol = 'AAA' "
                                 "AND ts = %s", (DAY + 25 * M,)) == [(70.0, 1)]
        assert query(bulk_store, "SELECT price FROM last_trades WHERE symbol = 'AAA'") == [(70.0,)]
    finally:
        bulk.close()
        bulk_store.drop()
        bulk_store.close()


def order(cl_ord_id: str, side: str, status: str = "NEW", account: str | None = "acct-1",
          symbol: str = "AAA", quantity: float = 100.0) -> dict:
    return {"cl_ord_id": cl_ord_id, "ts": DAY, "symbol": symbol, "side": side,
            "order_type": "LMT", "quantity": quantity, "limit_price": 100.0,
            "time_in_force": "DAY", "status": status, "account": account}


def fill(exec_id: str, cl_ord_id: str, side: str, qty: float, price: float, ts: int = DAY,
         symbol: str = "AAA", commission: float | None = 1.0) -> dict:
    return {"exec_id": exec_id, "ts": ts, "symbol": symbol, "cl_ord_id": cl_ord_id,
            "exec_type": "TRADE", "order_status": "PARTIALLY_FILLED", "side": side,
            "last_qty": qty, "last_price": price, "cum_qty": qty, "leaves_qty": 0.0,
            "avg_price": price, "commission": commission, "venue": "SIM"}


def test_positions_equal_the_sum_of_their_executions(store):
    rng = random.Random(5)
    for i in range(8):
        store.record_order(order(f"o{i}", "B" if i % 2 == 0 else "S", quantity=1000.0,
                                 symbol=("AAA", "BBB")[i % 4 // 2]))
    fills = [fill(f"e{j}", f"o{j % 8}", "B" if j % 8 % 2 == 0 else "S",
                  float(rng.randint(1, 50)), round(rng.uniform(90, 110), 2),
                  symbol=("AAA", "BBB")[j % 8 % 4 // 2]) for j in range(60)]
    for f in rng.sample(fills, len(fills)) + fills[:10]:  # any order, some twice
        store.record_execution(f)
    for symbol in ("AAA", "BBB"):
        mine = [f for f in fills if f["symbol"] == symbol]
        position = store.position("acct-1", symbol)
        signed = sum(f["last_qty"] * (1 if f["side"] == "B" else -1) for f in mine)
        paid = sum(f["last_qty"] * f["last_price"] * (1 if f["side"] == "B" else -1) for f in mine)
        assert position["quantity"] == pytest.approx(signed)
        assert position["cash"] == pytest.approx(-paid - len(mine) * 1.0)
        assert position["fills"] == len(mine)
    recomputed = query(store, """
        SELECT o.account, e.symbol, sum(CASE e.side WHEN 'B' THEN last_qty ELSE -last_qty END)
        FROM executions e JOIN orders o USING (cl_ord_id) WHERE last_qty > 0 GROUP BY 1, 2""")
    stored = query(store, "SELECT account, symbol, quantity FROM positions")
    assert [r[:2] for r in sorted(recomputed)] == [r[:2] for r in sorted(stored)]
    assert [r[2] for r in sorted(recomputed)] == pytest.approx([r[2] for r in sorted(stored)])
    refused = pytest.raises(psycopg2.errors.CheckViolation, match="sum of their executions")
    with refused, store._conn, store._conn.cursor() as cur:
        cur.execute("UPDATE positions SET quantity = quantity + 1")


def test_business_rules_refuse_bad_rows(store):
    bad_bar = trades([(DAY, "AAA", 1, -5.0, 10.0)])
    with pytest.raises(StoreRuleViolation, match="trade_price_positive"):
        store.write_trades(bad_bar)
    with pytest.raises(StoreRuleViolation, match="trade_price_positive"):
        store.write_trades(trades([(DAY, "AAA", 2, float("nan"), 10.0)]))
    assert query(store, "SELECT count(*) FROM trades")[0][0] == 0  # the whole batch refused
    with pytest.raises(StoreRuleViolation, match="order_values"):
        store.record_order(order("bad", "B", quantity=0.0))
    with pytest.raises(StoreRuleViolation, match="order_transition"):
        store.record_order(order("late", "B", status="FILLED"))  # cannot be born filled
    store.record_order(order("o1", "B"))
    store.record_order({"cl_ord_id": "o1", "ts": DAY + 1, "status": "CANCELED"})
    with pytest.raises(StoreRuleViolation, match="order_transition"):
        store.record_order({"cl_ord_id": "o1", "ts": DAY + 2, "status": "NEW"})  # terminal
    with pytest.raises(StoreRuleViolation, match="order_immutable"):
        store.record_order({**order("o1", "S", status="CANCELED")})
    assert store.order_status("o1") == "CANCELED"
    history = query(store, "SELECT status FROM order_events WHERE cl_ord_id = 'o1' ORDER BY id")
    assert [s for (s,) in history] == ["NEW", "CANCELED"]
    with pytest.raises(StoreRuleViolation, match="execution_order"):
        store.record_execution(fill("e1", "nope", "B", 1.0, 100.0))
    store.record_order(order("o2", "B"))
    with pytest.raises(StoreRuleViolation, match="execution_order"):  # the order is a buy
        store.record_execution(fill("e2", "o2", "S", 1.0, 100.0))
    with pytest.raises(StoreRuleViolation, match="execution_values"):
        store.record_execution(fill("e3", "o2", "B", 1.0, 0.0))


def minute_bars(symbol: str, closes: list[float], volumes: list[float]) -> pa.Table:
    """One trade per minute: each makes a 1m bar with that close and volume."""
    return trades([(DAY + i * M, symbol, i + 1, c, v)
                   for i, (c, v) in enumerate(zip(closes, volumes, strict=True))])


def alerts(store: PostgresStore) -> list[tuple]:
    return query(store, "SELECT rule, symbol, account, ts FROM alerts ORDER BY id")


def test_market_rules_raise_alerts_once(store):
    calm = [100.0 + (0.05 if i % 2 else -0.05) for i in range(20)]  # sigma of 1m log returns ~1e-3
    store.write_trades(minute_bars("AAA", calm, [100.0] * 20))
    assert {rule for rule, *_ in alerts(store)} <= {"vwap_cross"}  # it swings around its VWAP
    before = len(alerts(store))
    jump = DAY + 20 * M
    store.write_trades(trades([(jump, "AAA", 21, 103.0, 900.0)]))  # +3% and 9x the volume
    raised = {(rule, ts) for rule, _, _, ts in alerts(store)[before:]}
    assert ("price_move", jump) in raised and ("volume_surge", jump) in raised
    # more ticks of the same minute re-evaluate the bar but do not raise it again
    count = len(alerts(store))
    store.write_trades(trades([(jump + 1, "AAA", 22, 103.5, 900.0)]))
    assert len(alerts(store)) == count


def test_vwap_cross_and_position_limit_are_notified(store):
    from ods.alerts import listen

    listening = threading.Event()
    got: list[dict] = []
    thread = threading.Thread(target=lambda: got.extend(
        listen(store.cfg, timeout_s=20, max_alerts=3, ready=listening.set)))
    thread.start()
    assert listening.wait(10)
    # running VWAP after each bar: 99, 100, 99.667, 99.742; the closes sit on it, above it,
    # below it (a down-cross at minute 2), above it (an up-cross at minute 3)
    store.write_trades(minute_bars("VVV", [99.0, 101.0, 99.0, 102.0], [10.0, 10.0, 10.0, 1.0]))
    store.set_risk_limit("acct-1", "*", 50.0)
    store.record_order(order("big", "B", symbol="VVV"))
    store.record_execution(fill("f1", "big", "B", 40.0, 100.0, symbol="VVV"))
    store.record_execution(fill("f2", "big", "B", 20.0, 100.0, ts=DAY + 5, symbol="VVV"))
    thread.join(25)
    rules = {(a["rule"], a["symbol"], a["ts"]) for a in got}
    assert rules == {("vwap_cross", "VVV", DAY + 2 * M), ("vwap_cross", "VVV", DAY + 3 * M),
                     ("position_limit", "VVV", DAY + 5)}
    assert {a["detail"]["direction"] for a in got if a["rule"] == "vwap_cross"} == {"up", "down"}
    stored = {(rule, symbol, ts) for rule, symbol, _, ts in alerts(store)}
    assert rules <= stored
