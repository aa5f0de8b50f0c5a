"""The batch layer on the real stack: raw lander files on HDFS -> etl_ticks -> bars -> features in
a warehouse of the test's own, read back through the Thrift server; reruns replace partitions
with identical content; ``--symbols`` reruns keep the other symbols; the CLI applies the DDL
(idempotently), runs the jobs with spark-submit and prints query results.

One test, one warehouse: the first build runs the jobs in process, the full rerun is the CLI's
(``tradelake batch``: a spark-submit per job), so the CLI's output is checked against the
in-process build instead of paying for a second warehouse and a second full build.

Expected figures are worked out by hand from the handful of ticks below.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import date
from fractions import Fraction

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hive.warehouse import apply
from ingestion.lake_layout import OffsetRange, final_path
from ingestion.lander import KAFKA_COLUMNS
from spark_jobs import bars, etl_ticks, features
from tradelake.config import PROJECT_ROOT
from tradelake.hive_client import connect_hive
from tradelake.lakefs import lake_fs
from tradelake.schemas import TRADE, arrow_schema

D5 = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z
DAY, MIN, SEC = 86_400 * 10**9, 60 * 10**9, 10**9
OPEN = D5 + (14 * 60 + 30) * MIN  # 14:30 UTC
JAN5, JAN6 = date(2026, 1, 5), date(2026, 1, 6)


def trade(ts: int, symbol: str, price: float, size: float, seq: int, ingest: int) -> dict:
    return {"ts": ts, "symbol": symbol, "price": price, "size": size, "trade_id": f"{symbol}-{seq}",
            "exchange": "XNAS", "seq": seq, "side": None, "conditions": None, "ingest_ts": ingest}


FIRST = [trade(OPEN, "AAPL", 10.0, 1.0, 1, OPEN + SEC),
         trade(OPEN + 30 * SEC, "AAPL", 12.0, 3.0, 2, OPEN + SEC),
         trade(OPEN + 5 * SEC, "MSFT", 20.0, 1.0, 1, OPEN + SEC),
         trade(OPEN + 70 * SEC, "AAPL", 11.0, 2.0, 3, OPEN + 80 * SEC)]
AGAIN = [trade(OPEN + 30 * SEC, "AAPL", 12.0, 3.0, 2, OPEN + 99 * SEC)]  # a re-delivery: dropped
NEXT_DAY = [trade(OPEN + DAY, "AAPL", 13.0, 1.0, 4, OPEN + DAY + SEC),
            trade(OPEN + DAY + SEC, "MSFT", 21.0, 2.0, 2, OPEN + DAY + 2 * SEC)]


def write_raw(fs, cfg, topic: str) -> None:
    schema = pa.schema([*arrow_schema(TRADE), *KAFKA_COLUMNS])
    offset = 0
    for dt, rows in (("2026-01-05", FIRST), ("2026-01-05", AGAIN), ("2026-01-06", NEXT_DAY)):
        rng = OffsetRange(0, offset, offset + len(rows) - 1)
        table = pa.Table.from_pylist([{**r, "kafka_partition": 0, "kafka_offset": offset + i}
                                      for i, r in enumerate(rows)], schema=schema)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        fs.write_bytes(final_path(cfg.lander.raw_zone, topic, dt, rng), sink.getvalue().to_pybytes())
        offset += len(rows)


@pytest.fixture
def batch_cfg(cfg, scratch_warehouse):
    wh_cfg, wh_env = scratch_warehouse
    topic = f"it-batch-{uuid.uuid4().hex[:8]}"
    topics = dataclasses.replace(wh_cfg.ingest.topics, trades=topic)
    test_cfg = dataclasses.replace(wh_cfg, ingest=dataclasses.replace(wh_cfg.ingest, topics=topics))
    fs = lake_fs(cfg)
    write_raw(fs, cfg, topic)
    yield test_cfg, {**wh_env, "TRADELAKE_INGEST__TOPICS__TRADES": topic}
    fs.delete(f"{cfg.lander.raw_zone}/{topic}", recursive=True)


def rows(spark, table: str, order: str = "symbol, ts") -> list[tuple]:
    order = f"interval, {order}" if "bar" in table else order
    return [tuple(r) for r in spark.sql(f"SELECT * FROM {table} ORDER BY {order}").collect()]


def files_per_partition(spark, table: str) -> set[int]:
    """How many data files the (interval, dt) partitions of ``table`` hold (as a set)."""
    got = spark.sql(f"SELECT interval, dt, count(DISTINCT file) AS n FROM (SELECT interval, dt, "
                    f"input_file_name() AS file FROM {table}) GROUP BY interval, dt").collect()
    return {r["n"] for r in got}


def run_all(spark, cfg, symbols=None) -> dict:
    return {"etl": etl_ticks.run(spark, cfg, JAN5, JAN6, symbols=symbols, source="lander"),
            "bars": bars.run(spark, cfg, JAN5, JAN6, symbols),
            "features": features.run(spark, cfg, JAN5, JAN6, symbols)}


def test_jobs_build_the_warehouse_the_cli_reruns_them_identically_and_sql_prints_the_result(
        spark, batch_cfg, thrift_query, spark_submit_env):
    cfg, env = batch_cfg
    wh = cfg.warehouse
    full_env = {**os.environ, **env, **spark_submit_env}
    tradelake = [sys.executable, "-m", "tradelake.cli"]

    # the first build, in process, into a fresh warehouse (each job creates its tables)
    first = run_all(spark, cfg)
    assert first["etl"]["rows_written"] == 6 and first["etl"]["duplicates_removed"] == 1
    assert first["etl"]["partitions_replaced"] == ["2026-01-05", "2026-01-06"]
    assert first["bars"]["bars_written"] == {"1m": 5, "5m": 4, "1h": 4, "1d": 4}

    # 1m bars of AAPL on Jan 5: 14:30 holds seq 1 and 2 (the re-delivered copy of 2 counts once)
    got = thrift_query(f"SELECT ts, open, high, low, close, volume, vwap, trade_count "
                       f"FROM {wh.curated_db}.bars WHERE symbol = 'AAPL' AND interval = '1m' "
                       "AND dt = '2026-01-05' ORDER BY ts")
    assert got == [(OPEN, 10.0, 12.0, 10.0, 12.0, 4.0, 11.5, 2),  # (10*1 + 12*3) / 4
                   (OPEN + MIN, 11.0, 11.0, 11.0, 11.0, 2.0, 11.0, 1)]
    # the analysts' views: daily VWAP from 1m bars = (10 + 36 + 22) / 6; Jan 6 return = 13 / 11 - 1
    vwap = thrift_query(f"SELECT vwap FROM {wh.curated_db}.daily_vwap "
                        "WHERE symbol = 'AAPL' AND dt = '2026-01-05'")
    assert vwap[0][0] == pytest.approx(68 / 6, rel=1e-12)
    ret = thrift_query(f"SELECT dt, ret FROM {wh.curated_db}.daily_returns WHERE symbol = 'AAPL' ORDER BY dt")
    assert ret[0] == ("2026-01-05", None) and ret[1][0] == "2026-01-06"
    assert ret[1][1] == pytest.approx(float(Fraction(13, 11) - 1), rel=1e-12)
    # features: the Jan 6 1m bar's return reaches back to Jan 5 (inside the 1m warm-up)
    feat = thrift_query(f"SELECT dt, ret FROM {wh.features_db}.bar_features "
                        f"WHERE symbol = 'AAPL' AND interval = '1m' ORDER BY ts")
    assert [d for d, _ in feat] == ["2026-01-05", "2026-01-05", "2026-01-06"]
    assert feat[0][1] is None
    assert feat[1][1] == pytest.approx(11 / 12 - 1) and feat[2][1] == pytest.approx(13 / 11 - 1)
    # bars and features are small: each partition is written as one file, whichever tasks
    # computed its symbols
    small = (f"{wh.curated_db}.bars", f"{wh.features_db}.bar_features")
    assert [files_per_partition(spark, t) for t in small] == [{1}, {1}]
    before = {t: rows(spark, t) for t in (f"{wh.curated_db}.ticks", f"{wh.curated_db}.bars",
                                         f"{wh.features_db}.bar_features")}

    # the whole DDL through the CLI: creates what the jobs did not, leaves what they did
    proc = subprocess.run([*tradelake, "hive", "apply"], capture_output=True, text=True,
                          env=full_env, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    creates = sum(len(re.findall(r"^CREATE ", f.read_text(), re.M))
                  for f in (PROJECT_ROOT / "hive" / "ddl").glob("*.hql"))
    assert f"applied {creates} statements" in proc.stderr

    # the rerun: the CLI, a spark-submit per job; it replaces the partitions with identical content
    proc = subprocess.run([*tradelake, "batch", "--from", "2026-01-05", "--to", "2026-01-06"],
                          capture_output=True, text=True, env=full_env, cwd=PROJECT_ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["jobs"]["etl_ticks"]["rows_written"] == 6
    assert summary["jobs"]["bars"]["bars_written"]["1d"] == 4
    assert summary["jobs"]["features"]["rows_written"] == 17  # one row per bar
    for table, content in before.items():
        spark.sql(f"REFRESH TABLE {table}")
        assert rows(spark, table) == content, table
    partitions = thrift_query(f"SHOW PARTITIONS {wh.curated_db}.bars")
    assert len(partitions) == 8  # 4 intervals x 2 days, each replaced in place, none added

    # the CLI's sql prints the result as a table
    query = (f"SELECT symbol, dt, round(vwap, 4) AS vwap FROM {wh.curated_db}.daily_vwap "
             "ORDER BY symbol, dt")
    proc = subprocess.run([*tradelake, "sql", query], capture_output=True, text=True, env=full_env,
                          cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1] == "| symbol | dt         |    vwap |"
    assert lines[3:7] == ["| AAPL   | 2026-01-05 | 11.3333 |", "| AAPL   | 2026-01-06 |      13 |",
                          "| MSFT   | 2026-01-05 |      20 |", "| MSFT   | 2026-01-06 |      21 |"]
    assert "4 rows in" in proc.stderr

    # rebuilding one symbol leaves the other's rows in the same partitions alone
    run_all(spark, cfg, symbols=["AAPL"])
    for table, content in before.items():
        spark.sql(f"REFRESH TABLE {table}")
        assert rows(spark, table) == content, table
    assert [files_per_partition(spark, t) for t in small] == [{1}, {1}]  # the kept rows too

    # the DDL is idempotent: applied once more (in process), still nothing to change
    with contextlib.closing(connect_hive(cfg.hive)) as conn, contextlib.closing(conn.cursor()) as cur:
        assert len(apply(cfg, cur.execute)) == creates
