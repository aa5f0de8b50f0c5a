"""The serving merge on the batch watermark: Hive's batch bars before it, the ODS's real-time
bars from it, nothing missing and nothing twice — through the Python API and `tradelake bars`."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import uuid

import pyarrow as pa
import pytest

from ods.postgres import PostgresStore
from ods.serving import merged_bars, roll_up
from tradelake.hive_client import connect_hive

M = 60_000_000_000
JAN5 = 1_767_571_200_000_000_000  # 2026-01-05T00:00Z: the batch view's last day
JAN6 = JAN5 + 1440 * M  # the watermark


@pytest.fixture
def served(scratch_warehouse, stack):
    """Batch bars for Jan 5 23:57-23:59 (in Hive), real-time trades from Jan 5 23:58 to Jan 6
    00:02 (in a scratch ODS): the two views overlap on Jan 5 23:58-23:59, with other prices."""

    cfg, _ = scratch_warehouse
    schema = f"it_{uuid.uuid4().hex[:10]}"
    cfg = dataclasses.replace(cfg, ods=dataclasses.replace(cfg.ods, schema=schema))
    conn = connect_hive(cfg.hive)
    with contextlib.closing(conn), contextlib.closing(conn.cursor()) as cur:
        from hive.warehouse import apply

        apply(cfg, cur.execute)
        db = cfg.warehouse.curated_db
        # batch bars: close = 10 + minute index, volume 100
        values = ", ".join(f"({JAN5 + m * M}, 'AAA', {10 + m}.0, {10 + m}.5, {9 + m}.5, "
                           f"{10 + m}.0, 100.0, {10 + m}.0, 4)" for m in (1437, 1438, 1439))
        cur.execute(f"INSERT INTO {db}.bars PARTITION (`interval`='1m', dt='2026-01-05') "
                    f"VALUES {values}")
        cur.execute(f"INSERT INTO {db}.bars PARTITION (`interval`='1m', dt='2026-01-04') "
                    f"VALUES ({JAN5 - M}, 'AAA', 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1)")
        cur.execute(f"INSERT INTO {db}.bars PARTITION (`interval`='5m', dt='2026-01-05') "
                    f"VALUES ({JAN5 + 1435 * M}, 'AAA', 99.0, 99.0, 99.0, 99.0, 5.0, 99.0, 5)")
    store = PostgresStore(cfg)
    store.ensure_schema()
    # real-time: one trade a minute, price 500 + minute offset from Jan 5 23:58
    minutes = range(-2, 3)
    store.write_trades(pa.table({
        "ts": [JAN6 + m * M + 1 for m in minutes], "symbol": ["AAA"] * 5,
        "price": [500.0 + m for m in minutes], "size": [7.0] * 5,
        "trade_id": [f"t{m}" for m in minutes], "seq": [m + 10 for m in minutes]}))
    yield cfg, store
    store.drop()
    store.close()


def test_merge_switches_source_on_the_watermark(served):
    cfg, store = served
    result = merged_bars(cfg, "AAA", JAN5 + 1437 * M, JAN6 + 3 * M, store=store)
    assert result.watermark_ns == JAN6
    rows = [(r["ts"], r["close"], r["source"]) for r in result.bars.to_pylist()]
    assert rows == [
        (JAN5 + 1437 * M, 1447.0, "batch"), (JAN5 + 1438 * M, 1448.0, "batch"),
        (JAN5 + 1439 * M, 1449.0, "batch"),  # the ODS has these minutes too: not served twice
        (JAN6, 500.0, "realtime"), (JAN6 + M, 501.0, "realtime"), (JAN6 + 2 * M, 502.0, "realtime"),
    ]
    assert result.counts == {"batch": 3, "realtime": 3}
    # a range entirely after the watermark is all real-time, entirely before it all batch
    after = merged_bars(cfg, "AAA", JAN6 + M, JAN6 + 2 * M, store=store).bars.to_pylist()
    assert [(r["ts"], r["source"]) for r in after] == [(JAN6 + M, "realtime")]
    before = merged_bars(cfg, "AAA", JAN5 - M, JAN5 + 1438 * M, store=store).bars.to_pylist()
    assert [(r["ts"], r["source"]) for r in before] == [(JAN5 - M, "batch"),
                                                         (JAN5 + 1437 * M, "batch")]


def test_rolled_up_intervals_do_not_cross_the_watermark(served):
    cfg, store = served
    result = merged_bars(cfg, "AAA", JAN5 + 1435 * M, JAN6 + 5 * M, "5m", store=store)
    # the batch 23:55 bar, not one rolled from the ODS's 23:58-23:59; then minutes 0-2 rolled
    rows = result.bars.to_pylist()
    assert [(r["ts"], r["close"], r["source"]) for r in rows] == [
        (JAN5 + 1435 * M, 99.0, "batch"), (JAN6, 502.0, "realtime")]
    assert (rows[1]["open"], rows[1]["volume"], rows[1]["trade_count"]) == (500.0, 21.0, 3)
    assert rows[1]["vwap"] == pytest.approx(501.0)
    # an interval the batch layer has never written: everything comes from the real-time view
    hourly = merged_bars(cfg, "AAA", JAN5 + 1380 * M, JAN6 + 60 * M, "1h", store=store)
    assert hourly.watermark_ns is None
    assert [(r["ts"], r["open"], r["close"], r["source"]) for r in hourly.bars.to_pylist()] == [
        (JAN5 + 1380 * M, 498.0, 499.0, "realtime"), (JAN6, 500.0, 502.0, "realtime")]


def test_roll_up_by_hand():
    minute = [{"ts": 5 * M + i * M, "symbol": "X", "interval": "1m", "open": o, "high": h,
               "low": lo, "close": c, "volume": v, "vwap": w, "trade_count": 1}
              for i, (o, h, lo, c, v, w) in enumerate([(1, 2, 1, 2, 10, 1.5), (2, 3, 2, 3, 30, 2.5),
                                                       (3, 3, 1, 1, 0, None)])]
    (bar,) = roll_up(minute, "5m")
    assert (bar["ts"], bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"]) == (
        5 * M, 1, 3, 1, 1, 40)
    assert bar["vwap"] == pytest.approx((15 + 75) / 40) and bar["trade_count"] == 3


def test_bars_command(served):
    cfg, _ = served
    env = {**os.environ, "TRADELAKE_ODS__SCHEMA": cfg.ods.schema,
           "TRADELAKE_WAREHOUSE__CURATED_DB": cfg.warehouse.curated_db}
    done = subprocess.run([sys.executable, "-m", "tradelake.cli", "bars", "AAA", "--from",
                           "2026-01-05T23:58", "--to", "2026-01-06T00:02", "--format", "csv"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].split(",")[-1] == "source"
    assert [line.split(",")[-1] for line in lines[1:]] == ["batch", "batch", "realtime", "realtime"]
    assert "2 from the batch view, 2 from the real-time view" in done.stderr
    bad = subprocess.run([sys.executable, "-m", "tradelake.cli", "bars", "AAA", "--from",
                          "yesterday", "--to", "2026-01-06"], capture_output=True, text=True,
                         env=env, timeout=60, check=False)
    assert bad.returncode == 2 and "not an ISO date" in bad.stderr
