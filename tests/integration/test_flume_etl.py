"""The batch ETL on real raw data: Flume's at-least-once SequenceFiles (with redeliveries) and,
through spark-submit, lander Parquet -> a curated table holding every trade exactly once."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ingestion.lake_layout import OffsetRange, final_path
from ingestion.lander import KAFKA_COLUMNS
from ingestion.publisher import TickPublisher
from spark_jobs import etl_ticks
from spark_jobs.etl_ticks import extract_flume, flume_glob, folder_dates, load, matching_files, transform
from tradelake.config import PROJECT_ROOT
from tradelake.lakefs import lake_fs
from tradelake.schemas import QUOTE, TRADE, arrow_schema
from tradelake.spark import spark_submit
from tradelake.stack.flume import Flume
from tradelake.stack.process import wait_until

NS_PER_DAY = 86_400 * 1_000_000_000
SYMBOLS = ["IT0", "IT1", "IT2", "IT3", "IT4"]
PER_SYMBOL = 100
TICKS_PER_MESSAGE = 20


def with_trades_topic(cfg, topic: str, **flume):
    """The profile with its trades topic (and optionally Flume settings) pointed at a test topic."""
    topics = dataclasses.replace(cfg.ingest.topics, trades=topic)
    return dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, topics=topics),
                               flume=dataclasses.replace(cfg.flume, **flume) if flume else cfg.flume)


def trade_table(day: date) -> pa.Table:
    """PER_SYMBOL trades per symbol on ``day``; pairs share a ts (told apart by seq)."""
    start = (day - date(1970, 1, 1)).days * NS_PER_DAY + 3_600 * 1_000_000_000
    rows = [{"ts": start + (i // 2) * 1_000_003, "symbol": s, "price": 100.0 + i / 100, "size": 1.0 + k,
             "trade_id": f"{s}-{i}", "exchange": "XNAS" if i % 3 else None, "seq": i,
             "side": "B" if i % 2 else "S", "conditions": None, "ingest_ts": None}
            for k, s in enumerate(SYMBOLS) for i in range(PER_SYMBOL)]
    return pa.Table.from_pylist(rows, schema=arrow_schema(TRADE))


def quote_table(day: date) -> pa.Table:
    ts = (day - date(1970, 1, 1)).days * NS_PER_DAY
    return pa.Table.from_pylist([{"ts": ts, "symbol": "IT0", "bid_price": 1.0, "bid_size": 1.0,
                                  "ask_price": 1.1, "ask_size": 1.0, "exchange": None, "seq": 1,
                                  "ingest_ts": None}], schema=arrow_schema(QUOTE))


def test_flume_redeliveries_are_written_once(stack, cfg, spark, scratch_warehouse):
    topic = f"it-etl-{uuid.uuid4().hex[:8]}"
    wh_cfg, _ = scratch_warehouse
    test_cfg = with_trades_topic(wh_cfg, topic, topics=(topic,), roll_interval_s=2)
    table = etl_ticks.ticks_table(test_cfg)
    today = datetime.now(UTC).date()
    trades = trade_table(today)
    redelivered = trades.filter(pc.is_in(trades.column("symbol"), pa.array(SYMBOLS[:2])))
    files = flume_glob(test_cfg)
    dates = folder_dates(today, today, 1)  # Flume's folder is the arrival date: today, or tomorrow

    def messages_landed() -> int:
        found = [f for d in dates for f in matching_files(spark, files.replace("{dt}", d))]
        return spark.sparkContext.sequenceFile(",".join(found)).count() if found else 0

    def wait_for(n: int) -> int:
        deadline, landed = time.monotonic() + 120, 0
        while time.monotonic() < deadline:
            landed = messages_landed()
            if landed >= n:
                return landed
            time.sleep(3)
        pytest.fail(f"Flume landed {landed} of {n} messages within 120 s")

    flume = Flume(test_cfg)
    flume.stop()  # a Flume agent from `stack up --with flume` has other topics: replace it
    flume.check_ports()  # a stray agent on the metrics port would answer for this one
    flume.prepare()
    flume.launch()
    publisher = TickPublisher(cfg.kafka.bootstrap, ticks_per_message=TICKS_PER_MESSAGE)
    try:
        wait_until("flume", flume.healthy, 120, flume.running, flume.processes()[0].log_file)
        first = publisher.publish(topic, "trade", trades)
        first += publisher.publish(topic, "quote", quote_table(today))  # not the trade schema
        publisher.producer.send(topic, key=b"IT0", value=b"not an Arrow stream")
        first += 1
        publisher.flush()
        wait_for(first)
        # at-least-once: the same messages again, received later (as after an agent crash)
        redelivered_at_ns = time.time_ns()
        again = publisher.publish(topic, "trade", redelivered)
        publisher.flush()
        landed = wait_for(first + again)
    finally:
        publisher.close()
        flume.stop()
    assert first == len(SYMBOLS) * PER_SYMBOL // TICKS_PER_MESSAGE + 2
    assert again == redelivered.num_rows // TICKS_PER_MESSAGE

    try:
        # the job's own functions, in process
        raw = extract_flume(spark, files, dates).persist()
        stats = etl_ticks.read_stats(raw, today, today)
        assert load(transform(None, raw, today, today), test_cfg) == table
        raw.unpersist()
        assert stats["undecodable"] == 2
        assert stats["rows"] >= trades.num_rows + redelivered.num_rows  # more if Flume redelivered too
        if landed == first + again:
            assert stats["rows"] == trades.num_rows + redelivered.num_rows

        written = spark.table(table)
        ids = {(r.symbol, r.ts, r.seq) for r in written.select("symbol", "ts", "seq").collect()}
        expected = set(zip(trades.column("symbol").to_pylist(), trades.column("ts").to_pylist(),
                           trades.column("seq").to_pylist(), strict=True))
        assert written.count() == trades.num_rows == len(expected)
        assert ids == expected
        assert [r.dt for r in written.select("dt").distinct().collect()] == [today]
        # the first delivery's copy is kept; ingest_ts came from the SequenceFile key (ms)
        assert written.where(f"ingest_ts >= {redelivered_at_ns}").count() == 0
        assert written.where("ingest_ts IS NULL").count() == 0
        assert written.where(f"ingest_ts < {redelivered_at_ns - 600 * 10**9}").count() == 0

        # the whole job again (idempotent rerun), with its summary
        summary = etl_ticks.run(spark, test_cfg, today, today, source="flume")
        print(f"messages landed {landed} (first {first}, again {again}); ETL_RESULT {json.dumps(summary)}")
        assert summary["rows_read"] == {"flume": stats["rows"]}
        assert summary["undecodable"] == 2
        assert summary["duplicates_removed"] == stats["rows"] - trades.num_rows
        assert summary["duplicates_removed"] >= redelivered.num_rows
        assert summary["rows_written"] == trades.num_rows
        assert summary["partitions_replaced"] == [today.isoformat()]
        assert summary["table"] == table
        assert spark.table(table).count() == trades.num_rows
    finally:
        lake_fs(cfg).delete(f"{cfg.flume.hdfs_subdir}/{topic}", recursive=True)


def lander_file(fs, cfg, topic: str, dt: str, rng: OffsetRange, rows: list[dict]) -> None:
    schema = pa.schema([*arrow_schema(TRADE), *KAFKA_COLUMNS])
    assert len(rows) == rng.last - rng.first + 1  # one message per row here
    table = pa.Table.from_pylist([{**r, "kafka_partition": rng.partition, "kafka_offset": rng.first + i}
                                  for i, r in enumerate(rows)], schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    fs.write_bytes(final_path(cfg.lander.raw_zone, topic, dt, rng), sink.getvalue().to_pybytes())


def test_spark_submit_job_on_lander_files(stack, cfg, spark, scratch_warehouse):
    topic = f"it-etl-lander-{uuid.uuid4().hex[:8]}"
    wh_cfg, wh_env = scratch_warehouse
    table = etl_ticks.ticks_table(wh_cfg)
    fs = lake_fs(cfg)
    d5 = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z

    def trade(ts: int, seq: int, ingest: int, sym: str = "AAPL") -> dict:
        return {"ts": ts, "symbol": sym, "price": 190.0 + seq, "size": 1.0, "trade_id": f"t{seq}",
                "exchange": None, "seq": seq, "side": None, "conditions": None, "ingest_ts": ingest}

    # a message spanning midnight lands whole in its first row's folder, 2026-01-04
    lander_file(fs, cfg, topic, "2026-01-04", OffsetRange(0, 0, 2),
                [trade(d5 - 1, 1, d5), trade(d5, 2, d5), trade(d5 + 5, 3, d5)])
    lander_file(fs, cfg, topic, "2026-01-05", OffsetRange(0, 3, 5),
                [trade(d5 + 10, 4, d5), trade(d5 + 11, 5, d5), trade(d5 + 12, 6, d5, "MSFT")])
    # the same events again in another partition's file (a replayed feed): written once
    lander_file(fs, cfg, topic, "2026-01-05", OffsetRange(1, 0, 1),
                [trade(d5 + 10, 4, d5 + 9), trade(d5 + 5, 3, d5 + 9)])
    lander_file(fs, cfg, topic, "2026-01-06", OffsetRange(0, 6, 6), [trade(d5 + NS_PER_DAY, 7, d5)])
    args = ["--from", "2026-01-05", "--to", "2026-01-05", "--source", "lander", "--symbols", "AAPL,MSFT"]
    try:
        started = time.monotonic()
        proc = spark_submit(cfg, PROJECT_ROOT / "spark_jobs" / "etl_ticks.py", args,
                            env={"TRADELAKE_INGEST__TOPICS__TRADES": topic, **wh_env}, timeout=600)
        result = [json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
                  if line.startswith("ETL_RESULT ")]
        assert proc.returncode == 0 and result, proc.stderr[-3000:]
        summary = result[0]
        print(f"spark-submit took {time.monotonic() - started:.1f}s: {summary}")
        assert {k: summary[k] for k in ("rows_read", "undecodable", "out_of_scope", "duplicates_removed",
                                        "rows_written", "partitions_replaced", "folders")} == {
            "rows_read": {"lander": 9}, "undecodable": 0, "out_of_scope": 2, "duplicates_removed": 2,
            "rows_written": 5, "partitions_replaced": ["2026-01-05"], "folders": ["2026-01-04", "2026-01-06"]}
        rows = sorted((r.symbol, r.ts, r.seq, r.ingest_ts, r.dt)
                      for r in spark.table(table).select("symbol", "ts", "seq", "ingest_ts", "dt").collect())
        day = date(2026, 1, 5)
        assert rows == [("AAPL", d5, 2, d5, day), ("AAPL", d5 + 5, 3, d5, day),
                        ("AAPL", d5 + 10, 4, d5, day), ("AAPL", d5 + 11, 5, d5, day),
                        ("MSFT", d5 + 12, 6, d5, day)]
    finally:
        fs.delete(f"{cfg.lander.raw_zone}/{topic}", recursive=True)

