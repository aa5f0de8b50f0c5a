"""spark_jobs/speed_layer.py: decode + validate of Kafka messages, the driver's split and
reconciliation, and the real-time tables' duplicate check, on tiny inline data with hand-computed
expectations. Timestamps: D5 is 2026-01-05T00:00:00Z in ns.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from ingestion import wire
from spark_jobs.speed_layer import (
    Histogram,
    HiveSink,
    ReconciliationError,
    collect_decoded,
    parse_args,
    split_outcome,
    table_columns,
    transform,
    with_partitions,
)
from tradelake.config import IngestConfig
from tradelake.schemas import QUOTE, TRADE, arrow_schema

D5 = 1_767_571_200_000_000_000  # 2026-01-05 00:00:00 UTC
SEC = 1_000_000_000
TOPICS = {"md.t": "trade", "md.q": "quote"}
KAFKA_DDL = ("key BINARY, value BINARY, topic STRING, partition INT, offset BIGINT, "
             "timestamp TIMESTAMP, timestampType INT")
TRADE_DDL = ("ts BIGINT, symbol STRING, price DOUBLE, size DOUBLE, trade_id STRING, exchange STRING, "
             "seq BIGINT, side STRING, conditions STRING, ingest_ts BIGINT")


def trade(ts: int, seq: int, price: float, ingest_ts: int | None = None, symbol: str = "AAPL") -> dict:
    return {"ts": ts, "symbol": symbol, "price": price, "size": 100.0, "trade_id": f"{symbol}-{seq}",
            "exchange": "XNAS", "seq": seq, "side": "B", "conditions": None, "ingest_ts": ingest_ts}


def quote(ts: int, seq: int, bid: float, ask: float, symbol: str = "MSFT") -> dict:
    return {"ts": ts, "symbol": symbol, "bid_price": bid, "bid_size": 200.0, "ask_price": ask,
            "ask_size": 300.0, "exchange": None, "seq": seq, "ingest_ts": None}


def message(kind: str, rows: list[dict]) -> bytes:
    schema = arrow_schema(TRADE if kind == "trade" else QUOTE)
    return wire.encode(pa.Table.from_pylist(rows, schema=schema))


def at(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / SEC, UTC)


T1 = trade(D5 + 1 * SEC, 1, 190.0)
T2_ZERO = trade(D5 + 2 * SEC, 2, 0.0)
T3 = trade(D5 + 3 * SEC, 3, 190.5, ingest_ts=D5 + 9 * SEC)  # the feed's own ingest_ts is kept
T4 = trade(D5 + 4 * SEC, 4, 191.0)
T5_FUTURE = trade(D5 + 30 * SEC, 5, 191.5)  # 19 s after the latest Kafka timestamp (skew: 5 s)
Q1 = quote(D5 + 1 * SEC, 1, 100.0, 100.1)
Q2_CROSSED = quote(D5 + 2 * SEC, 2, 101.0, 100.5)
GARBAGE = b"not an arrow stream"


def kafka_rows() -> list[tuple]:
    return [
        (b"AAPL", message("trade", [T1, T2_ZERO, T3]), "md.t", 0, 0, at(D5 + 10 * SEC), 0),
        (b"AAPL", message("trade", [T1, T4, T5_FUTURE]), "md.t", 0, 1, at(D5 + 11 * SEC), 0),
        (b"MSFT", message("quote", [Q1, Q2_CROSSED]), "md.q", 2, 7, at(D5 + 12 * SEC), 0),
        (b"IBM", GARBAGE, "md.t", 1, 0, at(D5 + 13 * SEC), 0),
        (b"MSFT", message("quote", [Q1]), "md.t", 1, 1, at(D5 + 14 * SEC), 0),  # wrong topic
    ]


def kafka_df(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(kafka_rows(), KAFKA_DDL).coalesce(1)


def test_decode_and_validate_accepts_fills_ingest_ts_and_keeps_the_feeds(local_spark):
    out = transform(kafka_df(local_spark), TOPICS, IngestConfig(), tasks=1)
    trades = out.where("row_type = 'accepted' AND kind = 'trade'").select(*TRADE.names)
    expected = local_spark.createDataFrame([
        (D5 + 1 * SEC, "AAPL", 190.0, 100.0, "AAPL-1", "XNAS", 1, "B", None, D5 + 10 * SEC),
        (D5 + 3 * SEC, "AAPL", 190.5, 100.0, "AAPL-3", "XNAS", 3, "B", None, D5 + 9 * SEC),
        (D5 + 4 * SEC, "AAPL", 191.0, 100.0, "AAPL-4", "XNAS", 4, "B", None, D5 + 11 * SEC),
    ], TRADE_DDL)
    assert_df_equality(trades, expected, ignore_row_order=True, ignore_nullable=True,
                       ignore_metadata=True)
    quotes = out.where("row_type = 'accepted' AND kind = 'quote'").select(*QUOTE.names).collect()
    assert [tuple(r) for r in quotes] == [
        (D5 + 1 * SEC, "MSFT", 100.0, 200.0, 100.1, 300.0, None, 1, D5 + 12 * SEC)]


def test_every_reject_is_quarantined_with_its_reason_and_the_batch_reconciles(local_spark):
    decoded = transform(kafka_df(local_spark), TOPICS, IngestConfig(), tasks=1).toArrow()
    outcome = split_outcome(decoded)
    counts = outcome.counts()
    assert (counts.received, counts.accepted, counts.quarantined, counts.filtered) == (10, 4, 6, 0)
    assert counts.by_reason == {"non_positive_price": 1, "duplicate": 1, "future_timestamp": 1,
                                "crossed_quote": 1, "malformed": 2}
    q = {(r["kind"], r["symbol"], r["reason"], r["event_ts"]): r for r in outcome.quarantine.to_pylist()}
    # typed rejects: judged at the latest Kafka timestamp of their topic's messages
    assert q[("trade", "AAPL", "non_positive_price", D5 + 2 * SEC)]["ts"] == D5 + 11 * SEC
    dup = q[("trade", "AAPL", "duplicate", D5 + 1 * SEC)]
    assert dup["source"] == "kafka:md.t" and b'"seq":1' in dup["payload"]
    assert ("trade", "AAPL", "future_timestamp", D5 + 30 * SEC) in q
    assert q[("quote", "MSFT", "crossed_quote", D5 + 2 * SEC)]["ts"] == D5 + 12 * SEC
    # undecodable messages: one row each, with the message's bytes, Kafka position and time
    garbage = q[("trade", "IBM", "malformed", None)]
    assert garbage["payload"] == GARBAGE and garbage["source"] == "kafka:md.t/1@0"
    assert garbage["ts"] == D5 + 13 * SEC and "undecodable Kafka message" in garbage["detail"]
    wrong = q[("trade", "MSFT", "malformed", None)]
    assert "is not the trade schema" in wrong["detail"] and wrong["source"] == "kafka:md.t/1@1"
    assert outcome.trades.schema == arrow_schema(TRADE)
    assert outcome.trades.column("seq").to_pylist() == [1, 3, 4]


def test_a_replayed_batch_is_judged_exactly_as_the_first_time(local_spark):
    first = transform(kafka_df(local_spark), TOPICS, IngestConfig(), tasks=1).toArrow()
    again = transform(kafka_df(local_spark), TOPICS, IngestConfig(), tasks=1).toArrow()
    assert first.equals(again)


def test_decoding_on_the_driver_gives_the_same_rows_as_in_the_executors(local_spark):
    in_executors = collect_decoded(kafka_df(local_spark), TOPICS, IngestConfig(), on_driver=False, tasks=1)
    on_driver = collect_decoded(kafka_df(local_spark), TOPICS, IngestConfig(), on_driver=True)
    assert on_driver.equals(in_executors.cast(on_driver.schema))


def test_symbols_outside_the_universe_are_counted_as_filtered(local_spark):
    decoded = transform(kafka_df(local_spark), TOPICS, IngestConfig(universe=("MSFT",)), tasks=1).toArrow()
    counts = split_outcome(decoded).counts()
    # every AAPL trade is filtered whatever else is wrong with it; the two undecodable messages
    # cannot be judged by symbol and stay quarantined
    assert (counts.received, counts.accepted, counts.quarantined, counts.filtered) == (10, 1, 3, 6)
    assert counts.by_reason == {"crossed_quote": 1, "malformed": 2}


def test_a_batch_that_lost_a_row_fails_instead_of_passing_silently(local_spark):
    decoded = transform(kafka_df(local_spark), TOPICS, IngestConfig(), tasks=1).toArrow()
    first_accepted = decoded.column("row_type").to_pylist().index("accepted")
    keep = np.ones(decoded.num_rows, bool)
    keep[first_accepted] = False
    with pytest.raises(ReconciliationError, match="received 10 = accepted 3"):
        split_outcome(decoded.filter(pa.array(keep)))


def _trades(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=arrow_schema(TRADE))


def test_hive_dedup_quarantines_repeats_and_keys_already_written_but_not_late_new_ticks(cfg):
    sink = HiveSink(None, cfg, "checkpoints/x/hive", fs=None)
    looked_up: list[list[int]] = []

    def already_written(kind: str, rows: pa.Table, batch_id: int) -> np.ndarray:
        looked_up.append(rows.column("seq").to_pylist())
        return np.array([seq == 10 for seq in rows.column("seq").to_pylist()])  # 10 was written

    sink._already_written = already_written
    ingest = D5 + 60 * SEC
    table = _trades([trade(D5 + 20 * SEC, 20, 10.0, ingest), trade(D5 + 20 * SEC, 20, 10.0, ingest),
                     trade(D5 + 5 * SEC, 10, 10.0, ingest),   # below the mark, in the table
                     trade(D5 + 6 * SEC, 11, 10.0, ingest),   # below the mark, late but new
                     trade(D5 + 15 * SEC, 15, 10.0, ingest),  # at the mark's ts, higher seq: new
                     trade(D5 + 5 * SEC, 10, 10.0, ingest, symbol="MSFT")])  # no mark for MSFT
    hwm = {"trade": {"AAPL": (D5 + 15 * SEC, 14)}}
    kept, dups = sink.dedup("trade", table, 7, hwm)
    assert looked_up == [[10, 11]]  # only rows at or below the mark are looked up
    assert list(zip(kept.column("symbol").to_pylist(), kept.column("seq").to_pylist(), strict=True)) == [
        ("AAPL", 20), ("AAPL", 11), ("AAPL", 15), ("MSFT", 10)]
    assert dups.column("reason").to_pylist() == ["duplicate", "duplicate"]
    assert dups.column("event_ts").to_pylist() == [D5 + 20 * SEC, D5 + 5 * SEC]
    assert dups.column("ts").to_pylist() == [ingest, ingest]  # judged at the batch's data, not now
    details = dups.column("detail").to_pylist()
    assert "repeats an earlier row of micro-batch 7" in details[0]
    assert "by an earlier micro-batch" in details[1]


def test_high_water_marks_take_the_greatest_ts_then_seq_per_symbol():
    hwm = {"trade": {"AAPL": (D5 + 1, 9)}}
    HiveSink._merge(hwm, "trade", _trades([trade(D5 + 5, 3, 1.0), trade(D5 + 5, 4, 1.0),
                                           trade(D5 + 2, 8, 1.0), trade(D5, 1, 1.0, symbol="MSFT")]))
    assert hwm == {"trade": {"AAPL": (D5 + 5, 4), "MSFT": (D5, 1)}}


def test_real_time_rows_carry_their_utc_date_and_batch():
    table = with_partitions(_trades([trade(D5 - 1, 1, 1.0), trade(D5, 2, 1.0)]), "ts", 42)
    assert table.column_names == table_columns("trade")
    assert table.column("dt").to_pylist() == [date(2026, 1, 4), date(2026, 1, 5)]
    assert table.column("batch_id").to_pylist() == [42, 42]


def test_histogram_quantiles_are_exact_to_the_millisecond():
    h = Histogram()
    h.add(np.arange(1, 101, dtype=float))
    h.add(np.array([1e9]))
    assert h.summary() == {"p50": 51, "p99": 100, "max": Histogram.LIMIT, "n": 101}


def test_arguments():
    assert parse_args(["--available-now"]).available_now
    assert parse_args([]).mode == "split"
    with pytest.raises(SystemExit):
        parse_args(["--available-now", "--duration", "5"])
    with pytest.raises(SystemExit):
        parse_args(["--trigger-ms", "0"])


# -- Spark's step timings and the worker's priority ------------------------------------------------
class _Query:
    """A stand-in for a StreamingQuery's ``recentProgress`` (a list of progress dicts)."""

    def __init__(self, progress: list[dict]) -> None:
        self.recentProgress = progress


def _progress(at: str, rows: int, **durations: int) -> dict:
    return {"timestamp": at, "numInputRows": rows, "durationMs": durations}


def test_progress_durations_adds_each_batchs_unnamed_rest_and_the_gaps_between_batches():
    from spark_jobs.speed_layer import progress_durations

    query = _Query([
        # trigger 300 = 250 named + 50 unnamed; the next batch starts 20 ms after it ends
        _progress("2026-01-05T00:00:00.000Z", 10, addBatch=200, walCommit=50, triggerExecution=300),
        # 100 = 100 named; the next report, 10 s later, is a trigger without data: no gap counted
        _progress("2026-01-05T00:00:00.320Z", 20, addBatch=100, walCommit=0, triggerExecution=100),
        _progress("2026-01-05T00:00:10.000Z", 0, addBatch=0, walCommit=0, triggerExecution=5),
    ])
    steps = progress_durations(query)
    assert steps["unnamed"] == 25.0  # median of 50 and 0 (batches with data only)
    assert steps["addBatch"] == 150.0
    assert steps["betweenTriggers"] == 20.0


def test_progress_durations_of_a_query_with_no_progress_yet_is_empty():
    # the demo's stop after a short live day: the Hive query (30 s trigger) had reported nothing,
    # and the summary was never printed
    from spark_jobs.speed_layer import progress_durations

    assert progress_durations(_Query([])) == {}


def test_lower_priority_only_ever_raises_the_nice_value():
    import subprocess
    import sys

    code = ("import os; from spark_jobs.speed_layer import lower_priority; "
            "base = os.nice(0); lower_priority(base + 3); lower_priority(base + 3); "
            "lower_priority(base + 1); print(os.nice(0) - base)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"
