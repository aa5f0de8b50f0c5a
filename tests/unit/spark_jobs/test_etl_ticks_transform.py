"""spark_jobs/etl_ticks.py: transform (window, dedup, dt) and the Flume message decoder.

Expected frames are written out by hand. Timestamps: D5 is 2026-01-05T00:00:00Z in ns.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from ingestion import wire
from spark_jobs.etl_ticks import decode_messages, folder_dates, transform
from tradelake.schemas import QUOTE, TRADE, arrow_schema

D5 = 1_767_571_200_000_000_000  # 2026-01-05 00:00:00 UTC
D4 = D5 - 86_400_000_000_000  # 2026-01-04 00:00:00 UTC
SEC = 1_000_000_000
JAN4, JAN5, JAN6 = date(2026, 1, 4), date(2026, 1, 5), date(2026, 1, 6)

TRADE_DDL = ("ts BIGINT, symbol STRING, price DOUBLE, size DOUBLE, trade_id STRING, exchange STRING, "
             "seq BIGINT, side STRING, conditions STRING, ingest_ts BIGINT")
LANDER_DDL = TRADE_DDL + ", kafka_partition INT, kafka_offset BIGINT"
CURATED_DDL = TRADE_DDL + ", dt DATE"


def lander(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, LANDER_DDL)


def flume(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, TRADE_DDL)


def curated(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, CURATED_DDL)


def check(actual: DataFrame, expected: DataFrame) -> None:
    assert actual.columns == expected.columns
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True,
                       ignore_metadata=True)


def test_duplicates_within_one_source_keep_earliest_ingest_then_lowest_offset(local_spark):
    spark = local_spark
    lander_rows = [
        # same id twice, same ingest_ts: the lower Kafka offset wins
        (D5 + 1, "AAPL", 190.0, 5.0, "a1", "XNAS", 1, "B", None, D5 + 10 * SEC, 0, 20),
        (D5 + 1, "AAPL", 190.0, 5.0, "a1", "XNAS", 1, "B", "dup", D5 + 10 * SEC, 0, 7),
        # same id twice, different ingest_ts: the earlier wins although its offset is higher
        (D5 + 2, "AAPL", 190.5, 1.0, "a2", "XNAS", 2, "S", "late", D5 + 12 * SEC, 1, 3),
        (D5 + 2, "AAPL", 190.5, 1.0, "a2", "XNAS", 2, "S", None, D5 + 11 * SEC, 1, 9),
        # same ts and symbol, another seq: a different event, both kept
        (D5 + 2, "AAPL", 190.6, 2.0, "a3", "XNAS", 3, "S", None, D5 + 11 * SEC, 1, 9),
    ]
    flume_rows = [  # a Flume redelivery: identical payload, later receipt
        (D5 + 5, "MSFT", 400.0, 3.0, "m1", None, 1, None, None, D5 + 20 * SEC),
        (D5 + 5, "MSFT", 400.0, 3.0, "m1", None, 1, None, None, D5 + 95 * SEC),
    ]
    actual = transform(lander(spark, lander_rows), flume(spark, flume_rows), JAN5, JAN5)
    check(actual, curated(spark, [
        (D5 + 1, "AAPL", 190.0, 5.0, "a1", "XNAS", 1, "B", "dup", D5 + 10 * SEC, JAN5),
        (D5 + 2, "AAPL", 190.5, 1.0, "a2", "XNAS", 2, "S", None, D5 + 11 * SEC, JAN5),
        (D5 + 2, "AAPL", 190.6, 2.0, "a3", "XNAS", 3, "S", None, D5 + 11 * SEC, JAN5),
        (D5 + 5, "MSFT", 400.0, 3.0, "m1", None, 1, None, None, D5 + 20 * SEC, JAN5),
    ]))


def test_a_row_in_both_sources_is_written_once(local_spark):
    spark = local_spark
    lander_rows = [
        (D5 + 1, "AAPL", 190.0, 5.0, "a1", "XNAS", 1, "B", "lander", D5 + 10 * SEC, 2, 40),
        (D5 + 2, "AAPL", 191.0, 5.0, "a2", "XNAS", 2, "B", "lander", D5 + 10 * SEC, 2, 41),
        (D5 + 3, "AAPL", 192.0, 5.0, "a3", "XNAS", 3, "B", "lander", D5 + 10 * SEC, 2, 42),
    ]
    flume_rows = [
        # same ingest_ts as the lander's copy: the lander's wins the tie
        (D5 + 1, "AAPL", 190.0, 5.0, "a1", "XNAS", 1, "B", "flume", D5 + 10 * SEC),
        # Flume received it earlier: Flume's copy is the first received
        (D5 + 2, "AAPL", 191.0, 5.0, "a2", "XNAS", 2, "B", "flume", D5 + 9 * SEC),
        # later: lander's
        (D5 + 3, "AAPL", 192.0, 5.0, "a3", "XNAS", 3, "B", "flume", D5 + 11 * SEC),
        # only in Flume
        (D5 + 4, "AAPL", 193.0, 5.0, "a4", "XNAS", 4, "B", "flume", D5 + 11 * SEC),
    ]
    actual = transform(lander(spark, lander_rows), flume(spark, flume_rows), JAN5, JAN5)
    check(actual, curated(spark, [
        (D5 + 1, "AAPL", 190.0, 5.0, "a1", "XNAS", 1, "B", "lander", D5 + 10 * SEC, JAN5),
        (D5 + 2, "AAPL", 191.0, 5.0, "a2", "XNAS", 2, "B", "flume", D5 + 9 * SEC, JAN5),
        (D5 + 3, "AAPL", 192.0, 5.0, "a3", "XNAS", 3, "B", "lander", D5 + 10 * SEC, JAN5),
        (D5 + 4, "AAPL", 193.0, 5.0, "a4", "XNAS", 4, "B", "flume", D5 + 11 * SEC, JAN5),
    ]))


LATE = [  # Flume files of 2026-01-05 (arrival date) holding a trade of 2026-01-04
    (D5 + 60 * SEC, "AAPL", 190.0, 5.0, "a1", None, 10, None, None, D5 + 61 * SEC),
    (D4 + 3600 * SEC, "AAPL", 180.0, 5.0, "a0", None, 9, None, None, D5 + 62 * SEC),
]


def test_a_late_arrival_goes_to_its_own_event_date(local_spark):
    spark = local_spark
    actual = transform(None, flume(spark, LATE), JAN4, JAN5)
    check(actual, curated(spark, [
        (D5 + 60 * SEC, "AAPL", 190.0, 5.0, "a1", None, 10, None, None, D5 + 61 * SEC, JAN5),
        (D4 + 3600 * SEC, "AAPL", 180.0, 5.0, "a0", None, 9, None, None, D5 + 62 * SEC, JAN4),
    ]))


def test_a_late_arrival_outside_the_window_is_left_to_its_own_run(local_spark):
    # writing it would replace the whole 2026-01-04 partition with this one row
    spark = local_spark
    actual = transform(None, flume(spark, LATE), JAN5, JAN5)
    check(actual, curated(spark, [
        (D5 + 60 * SEC, "AAPL", 190.0, 5.0, "a1", None, 10, None, None, D5 + 61 * SEC, JAN5),
    ]))


BOUNDARY = [
    (D5 - 1, "AAPL", 190.0, 1.0, "last", None, 1, None, None, None, 0, 1),  # 23:59:59.999999999
    (D5, "AAPL", 190.1, 1.0, "first", None, 2, None, None, None, 0, 1),  # 00:00:00.000000000
    (D5 + 86_400 * SEC - 1, "AAPL", 190.2, 1.0, "eod", None, 3, None, None, None, 0, 1),
    (D5 + 86_400 * SEC, "AAPL", 190.3, 1.0, "next", None, 4, None, None, None, 0, 1),
]


def test_dt_is_the_utc_date_of_ts_to_the_nanosecond(local_spark):
    spark = local_spark
    actual = transform(lander(spark, BOUNDARY), None, JAN4, JAN6)
    check(actual, curated(spark, [
        (D5 - 1, "AAPL", 190.0, 1.0, "last", None, 1, None, None, None, JAN4),
        (D5, "AAPL", 190.1, 1.0, "first", None, 2, None, None, None, JAN5),
        (D5 + 86_400 * SEC - 1, "AAPL", 190.2, 1.0, "eod", None, 3, None, None, None, JAN5),
        (D5 + 86_400 * SEC, "AAPL", 190.3, 1.0, "next", None, 4, None, None, None, JAN6),
    ]))


def test_the_window_ends_exactly_at_the_day_boundaries(local_spark):
    spark = local_spark
    actual = transform(lander(spark, BOUNDARY), None, JAN5, JAN5)
    check(actual, curated(spark, [
        (D5, "AAPL", 190.1, 1.0, "first", None, 2, None, None, None, JAN5),
        (D5 + 86_400 * SEC - 1, "AAPL", 190.2, 1.0, "eod", None, 3, None, None, None, JAN5),
    ]))


# Four copies of one event that tie on ingest_ts in pairs; payloads differ so the kept one shows.
COPIES_LANDER = [
    (D5 + 7, "NVDA", 140.0, 9.0, "n1", "XNAS", 5, "B", "p2-o1", D5 + 30 * SEC, 2, 1),
    (D5 + 7, "NVDA", 140.0, 9.0, "n1", "XNAS", 5, "B", "p1-o8", D5 + 30 * SEC, 1, 8),
    (D5 + 7, "NVDA", 140.0, 9.0, "n1", "XNAS", 5, "B", "p0-o3-noingest", None, 0, 3),
]
COPIES_FLUME = [
    (D5 + 7, "NVDA", 140.0, 9.0, "n1", "XNAS", 5, "B", "flume-b", D5 + 30 * SEC),
    (D5 + 7, "NVDA", 140.0, 9.0, "n1", "XNAS", 5, "B", "flume-a", D5 + 30 * SEC),
]
KEPT = (D5 + 7, "NVDA", 140.0, 9.0, "n1", "XNAS", 5, "B", "p1-o8", D5 + 30 * SEC, JAN5)


def test_which_copy_is_kept_does_not_depend_on_row_order_or_partitioning(local_spark):
    spark = local_spark
    expected = curated(spark, [KEPT])
    for order in (1, -1):
        lander_df = lander(spark, COPIES_LANDER[::order]).repartition(3)
        flume_df = flume(spark, COPIES_FLUME[::order]).repartition(2)
        check(transform(lander_df, flume_df, JAN5, JAN5), expected)
        # and without the lander copies, Flume's tie falls to the payload order (conditions)
        check(transform(None, flume_df, JAN5, JAN5), curated(spark, [
            (D5 + 7, "NVDA", 140.0, 9.0, "n1", "XNAS", 5, "B", "flume-a", D5 + 30 * SEC, JAN5)]))


def test_symbols_filter_and_undecodable_rows_are_dropped(local_spark):
    spark = local_spark
    flume_rows = spark.createDataFrame(
        [(D5 + 1, "AAPL", 190.0, 5.0, "a1", None, 1, None, None, D5, None),
         (D5 + 1, "MSFT", 400.0, 5.0, "m1", None, 1, None, None, D5, None),
         (None, None, None, None, None, None, None, None, None, None, "not an Arrow IPC stream")],
        TRADE_DDL + ", decode_error STRING")
    actual = transform(None, flume_rows, JAN5, JAN5, symbols=["MSFT"])
    check(actual, curated(spark, [
        (D5 + 1, "MSFT", 400.0, 5.0, "m1", None, 1, None, None, D5, JAN5)]))


def test_transform_needs_a_source():
    with pytest.raises(ValueError, match="at least one source"):
        transform(None, None, JAN5, JAN5)


def test_folder_dates_cover_the_window_and_its_slack():
    assert folder_dates(JAN5, JAN5, 1) == ["2026-01-04", "2026-01-05", "2026-01-06"]
    assert folder_dates(JAN4, JAN5, 0) == ["2026-01-04", "2026-01-05"]


def test_flume_messages_decode_whole_and_bad_ones_become_one_error_row():
    trades = pa.Table.from_pylist([
        {"ts": D5 + 1, "symbol": "AAPL", "price": 190.0, "size": 5.0, "trade_id": "a1", "exchange": None,
         "seq": 1, "side": "B", "conditions": None, "ingest_ts": None},
        {"ts": D5 + 2, "symbol": "AAPL", "price": 190.5, "size": 1.0, "trade_id": "a2", "exchange": "XNAS",
         "seq": 2, "side": None, "conditions": "@", "ingest_ts": D5 + 3},
    ], schema=arrow_schema(TRADE))
    quotes = pa.Table.from_pylist([
        {"ts": D5, "symbol": "AAPL", "bid_price": 1.0, "bid_size": 1.0, "ask_price": 2.0, "ask_size": 1.0,
         "exchange": None, "seq": 1, "ingest_ts": None}], schema=arrow_schema(QUOTE))
    messages = pa.RecordBatch.from_pydict(
        {"flume_ts_ms": [1_767_571_260_000, 1, 2],
         "body": [wire.encode(trades), b"not arrow", wire.encode(quotes, "none")]},
        schema=pa.schema([("flume_ts_ms", pa.int64()), ("body", pa.binary())]))
    out = pa.Table.from_batches(list(decode_messages([messages])))
    assert out.column_names == [*TRADE.names, "kafka_partition", "kafka_offset", "decode_error"]
    good = out.filter(out.column("decode_error").is_null()).drop_columns(["decode_error"])
    assert good.to_pylist() == [
        {"ts": D5 + 1, "symbol": "AAPL", "price": 190.0, "size": 5.0, "trade_id": "a1", "exchange": None,
         "seq": 1, "side": "B", "conditions": None, "ingest_ts": 1_767_571_260_000_000_000,  # the key
         "kafka_partition": None, "kafka_offset": None},
        {"ts": D5 + 2, "symbol": "AAPL", "price": 190.5, "size": 1.0, "trade_id": "a2", "exchange": "XNAS",
         "seq": 2, "side": None, "conditions": "@", "ingest_ts": D5 + 3,  # the feed's own
         "kafka_partition": None, "kafka_offset": None},
    ]
    errors = out.column("decode_error").drop_null().to_pylist()
    assert len(errors) == 2
    assert "not an Arrow IPC stream" in errors[0] and "not the trade schema" in errors[1]
