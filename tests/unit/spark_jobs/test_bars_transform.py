"""spark_jobs/bars.py: minute bars, roll-ups, finish and transform (the bar definitions).

Expected frames are written out by hand (the arithmetic is in the comments); prices and sizes are
picked so that every vwap is an exact binary fraction. Timestamps: D5 is 2026-01-05T00:00:00Z in
ns and ``utc(h, m, s)`` a time of that day.
"""

from __future__ import annotations

from datetime import date

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from spark_jobs.bars import BAR_COLUMNS, INTERVALS, finish, minute_bars, roll_up, transform

D5 = 1_767_571_200_000_000_000  # 2026-01-05 00:00:00 UTC
SEC = 1_000_000_000
MIN, HOUR, DAY = 60 * SEC, 3_600 * SEC, 86_400 * SEC
JAN4, JAN5 = date(2026, 1, 4), date(2026, 1, 5)

TICKS_DDL = "ts BIGINT, symbol STRING, price DOUBLE, size DOUBLE, seq BIGINT"
# minute_bars / roll_up frames: bars still carrying turnover = sum(price * size)
RAW_DDL = ("symbol STRING, ts BIGINT, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, "
           "volume DOUBLE, turnover DOUBLE, trade_count BIGINT")
BARS_DDL = ("ts BIGINT, symbol STRING, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, "
            "volume DOUBLE, vwap DOUBLE, trade_count BIGINT, interval STRING, dt DATE")


def utc(h: int, m: int, s: int = 0, ns: int = 0) -> int:
    """2026-01-05 h:m:s.ns UTC in ns since the epoch."""
    return D5 + h * HOUR + m * MIN + s * SEC + ns


def ticks(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, TICKS_DDL)


def raw(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, RAW_DDL)


def bars(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, BARS_DDL)


def check(actual: DataFrame, expected: DataFrame) -> None:
    assert actual.columns == expected.columns
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True,
                       ignore_metadata=True)


# -- minute bars -----------------------------------------------------------------------------
OUT_OF_ORDER = [  # one minute (10:00) of AAPL, not in event-time order, then the next minute's first
    (utc(10, 0, 40), "AAPL", 11.0, 3.0, 4),
    (utc(10, 0, 5), "AAPL", 10.0, 1.0, 1),  # earliest: open
    (utc(10, 0, 59, 999_999_999), "AAPL", 10.5, 2.0, 5),  # latest (last ns of the minute): close
    (utc(10, 0, 20), "AAPL", 12.5, 1.0, 2),  # high
    (utc(10, 0, 30), "AAPL", 9.5, 1.0, 3),  # low
    (utc(10, 1), "AAPL", 13.0, 1.0, 6),  # 10:01:00.000000000 starts the next bar
]


def test_minute_bars_take_open_and_close_by_event_time_not_input_order(local_spark):
    spark = local_spark
    check(minute_bars(ticks(spark, OUT_OF_ORDER)), raw(spark, [
        # volume 3 + 1 + 2 + 1 + 1 = 8; turnover 11*3 + 10*1 + 10.5*2 + 12.5*1 + 9.5*1 = 86
        ("AAPL", utc(10, 0), 10.0, 12.5, 9.5, 10.5, 8.0, 86.0, 5),
        ("AAPL", utc(10, 1), 13.0, 13.0, 13.0, 13.0, 1.0, 13.0, 1),
    ]))


def test_one_minute_bar_ohlc_volume_count_and_vwap(local_spark):
    spark = local_spark
    check(transform(ticks(spark, OUT_OF_ORDER), ["1m"]), bars(spark, [
        # vwap 86 / 8
        (utc(10, 0), "AAPL", 10.0, 12.5, 9.5, 10.5, 8.0, 10.75, 5, "1m", JAN5),
        (utc(10, 1), "AAPL", 13.0, 13.0, 13.0, 13.0, 1.0, 13.0, 1, "1m", JAN5),
    ]))


TIES = [
    # 10:00: two trades at the first instant and two at the last, one in between
    (utc(10, 0, 1), "AAPL", 20.0, 1.0, 12),
    (utc(10, 0, 1), "AAPL", 20.5, 1.0, 11),  # lower seq at the first ts: open
    (utc(10, 0, 30), "AAPL", 22.0, 2.0, 13),
    (utc(10, 0, 50), "AAPL", 19.0, 1.0, 15),  # higher seq at the last ts: close
    (utc(10, 0, 50), "AAPL", 21.0, 3.0, 14),
    # 10:01: only two trades, at the same ts; the lower seq has the higher price
    (utc(10, 1, 7), "AAPL", 31.0, 1.0, 20),
    (utc(10, 1, 7), "AAPL", 30.0, 1.0, 21),
]


@pytest.mark.parametrize("rows", [TIES, TIES[::-1]], ids=["as_listed", "reversed"])
def test_ties_on_ts_are_broken_by_seq_whatever_the_input_order(local_spark, rows: list[tuple]):
    spark = local_spark
    check(transform(ticks(spark, rows), ["1m"]), bars(spark, [
        # volume 1 + 1 + 2 + 1 + 3 = 8; vwap (20*1 + 20.5*1 + 22*2 + 19*1 + 21*3) / 8 = 166.5 / 8
        (utc(10, 0), "AAPL", 20.5, 22.0, 19.0, 19.0, 8.0, 20.8125, 5, "1m", JAN5),
        # vwap (31 + 30) / 2
        (utc(10, 1), "AAPL", 31.0, 31.0, 30.0, 30.0, 2.0, 30.5, 2, "1m", JAN5),
    ]))


def test_empty_intervals_produce_no_bar(local_spark):
    spark = local_spark
    rows = [
        (utc(10, 0, 10), "AAPL", 10.0, 1.0, 1),
        (utc(10, 0, 50), "AAPL", 11.0, 1.0, 2),
        (utc(10, 3, 20), "AAPL", 12.0, 2.0, 3),
    ]
    check(transform(ticks(spark, rows), ["1m", "5m"]), bars(spark, [
        (utc(10, 0), "AAPL", 10.0, 11.0, 10.0, 11.0, 2.0, 10.5, 2, "1m", JAN5),  # (10 + 11) / 2
        # nothing at 10:01 or 10:02
        (utc(10, 3), "AAPL", 12.0, 12.0, 12.0, 12.0, 2.0, 12.0, 1, "1m", JAN5),
        # vwap (10*1 + 11*1 + 12*2) / 4 = 45 / 4
        (utc(10, 0), "AAPL", 10.0, 12.0, 10.0, 12.0, 4.0, 11.25, 3, "5m", JAN5),
    ]))


def test_a_utc_day_boundary_splits_every_interval(local_spark):
    spark = local_spark
    rows = [
        (D5 - 30 * SEC, "AAPL", 100.0, 1.0, 1),  # 2026-01-04 23:59:30
        (D5 + 10 * SEC, "AAPL", 101.0, 2.0, 2),  # 2026-01-05 00:00:10
    ]
    day4 = (100.0, 100.0, 100.0, 100.0, 1.0, 100.0, 1)
    day5 = (101.0, 101.0, 101.0, 101.0, 2.0, 101.0, 1)
    check(transform(ticks(spark, rows)), bars(spark, [
        (D5 - MIN, "AAPL", *day4, "1m", JAN4),  # 23:59
        (D5, "AAPL", *day5, "1m", JAN5),
        (D5 - 5 * MIN, "AAPL", *day4, "5m", JAN4),  # 23:55
        (D5, "AAPL", *day5, "5m", JAN5),
        (D5 - HOUR, "AAPL", *day4, "1h", JAN4),  # 23:00
        (D5, "AAPL", *day5, "1h", JAN5),
        (D5 - DAY, "AAPL", *day4, "1d", JAN4),  # 2026-01-04 00:00 UTC
        (D5, "AAPL", *day5, "1d", JAN5),  # 2026-01-05 00:00 UTC
    ]))


# -- roll-ups --------------------------------------------------------------------------------
MINUTES = [  # 1m bars with turnover, not in time order
    ("AAPL", utc(10, 59), 11.5, 11.75, 8.0, 9.0, 2.0, 20.0, 5),
    ("AAPL", utc(10, 4), 10.25, 13.0, 10.0, 12.0, 3.0, 36.0, 4),
    ("AAPL", utc(11, 0), 9.0, 9.0, 9.0, 9.0, 1.0, 9.0, 1),
    ("AAPL", utc(10, 0), 10.0, 10.5, 9.5, 10.25, 1.0, 10.0, 2),
    ("AAPL", utc(10, 5), 12.0, 12.5, 11.0, 11.5, 2.0, 23.0, 3),
]


def test_roll_up_to_five_minutes(local_spark):
    spark = local_spark
    check(roll_up(raw(spark, MINUTES), INTERVALS["5m"]), raw(spark, [
        # 10:00 + 10:04: open of 10:00, close of 10:04, max(10.5, 13), min(9.5, 10), 1 + 3, 10 + 36, 2 + 4
        ("AAPL", utc(10, 0), 10.0, 13.0, 9.5, 12.0, 4.0, 46.0, 6),
        ("AAPL", utc(10, 5), 12.0, 12.5, 11.0, 11.5, 2.0, 23.0, 3),
        ("AAPL", utc(10, 55), 11.5, 11.75, 8.0, 9.0, 2.0, 20.0, 5),
        ("AAPL", utc(11, 0), 9.0, 9.0, 9.0, 9.0, 1.0, 9.0, 1),
    ]))


def test_rolled_up_bars_take_vwap_from_turnover(local_spark):
    spark = local_spark
    minutes = raw(spark, MINUTES)
    check(finish(roll_up(minutes, INTERVALS["5m"]), "5m").where("ts = " + str(utc(10, 0))), bars(spark, [
        (utc(10, 0), "AAPL", 10.0, 13.0, 9.5, 12.0, 4.0, 11.5, 6, "5m", JAN5),  # (10 + 36) / 4
    ]))
    check(finish(roll_up(minutes, INTERVALS["1h"]), "1h"), bars(spark, [
        # 10:00, 10:04, 10:05, 10:59: volume 1 + 3 + 2 + 2 = 8, count 2 + 4 + 3 + 5 = 14,
        # vwap (10 + 36 + 23 + 20) / 8 = 89 / 8
        (utc(10, 0), "AAPL", 10.0, 13.0, 8.0, 9.0, 8.0, 11.125, 14, "1h", JAN5),
        (utc(11, 0), "AAPL", 9.0, 9.0, 9.0, 9.0, 1.0, 9.0, 1, "1h", JAN5),
    ]))


# -- vwap, symbols, intervals, schema ----------------------------------------------------------
def test_vwap_is_null_when_the_volume_is_zero_but_the_trades_are_counted(local_spark):
    spark = local_spark
    rows = [
        (utc(10, 0, 10), "AAPL", 10.0, 0.0, 1),
        (utc(10, 0, 20), "AAPL", 10.5, 0.0, 2),
        (utc(10, 1), "AAPL", 11.0, 2.0, 3),
        (utc(10, 5, 30), "AAPL", 12.0, 0.0, 4),
    ]
    check(transform(ticks(spark, rows), ["1m", "5m"]), bars(spark, [
        (utc(10, 0), "AAPL", 10.0, 10.5, 10.0, 10.5, 0.0, None, 2, "1m", JAN5),
        (utc(10, 1), "AAPL", 11.0, 11.0, 11.0, 11.0, 2.0, 11.0, 1, "1m", JAN5),
        (utc(10, 5), "AAPL", 12.0, 12.0, 12.0, 12.0, 0.0, None, 1, "1m", JAN5),
        # (10*0 + 10.5*0 + 11*2) / 2
        (utc(10, 0), "AAPL", 10.0, 11.0, 10.0, 11.0, 2.0, 11.0, 3, "5m", JAN5),
        (utc(10, 5), "AAPL", 12.0, 12.0, 12.0, 12.0, 0.0, None, 1, "5m", JAN5),
    ]))


def test_two_symbols_in_the_same_minute_are_separate_bars(local_spark):
    spark = local_spark
    rows = [  # same ts and seq across the symbols: nothing but the symbol tells them apart
        (utc(10, 0, 10), "AAPL", 190.0, 1.0, 7),
        (utc(10, 0, 10), "MSFT", 400.0, 2.0, 7),
        (utc(10, 0, 40), "AAPL", 191.0, 1.0, 8),
    ]
    check(transform(ticks(spark, rows), ["1m"]), bars(spark, [
        (utc(10, 0), "AAPL", 190.0, 191.0, 190.0, 191.0, 2.0, 190.5, 2, "1m", JAN5),  # (190 + 191) / 2
        (utc(10, 0), "MSFT", 400.0, 400.0, 400.0, 400.0, 2.0, 400.0, 1, "1m", JAN5),
    ]))


def test_only_the_intervals_asked_for_are_produced(local_spark):
    spark = local_spark
    rows = [
        (utc(10, 0, 10), "AAPL", 10.0, 1.0, 1),
        (utc(14, 30), "AAPL", 12.0, 3.0, 2),
    ]
    check(transform(ticks(spark, rows), intervals=["1m", "1d"]), bars(spark, [
        (utc(10, 0), "AAPL", 10.0, 10.0, 10.0, 10.0, 1.0, 10.0, 1, "1m", JAN5),
        (utc(14, 30), "AAPL", 12.0, 12.0, 12.0, 12.0, 3.0, 12.0, 1, "1m", JAN5),
        # (10*1 + 12*3) / 4 = 46 / 4
        (D5, "AAPL", 10.0, 12.0, 10.0, 12.0, 4.0, 11.5, 2, "1d", JAN5),
    ]))


@pytest.mark.parametrize("intervals", [["1m", "2m"], [], ["1m", "1m"]], ids=["unknown", "none", "twice"])
def test_intervals_must_be_known_and_distinct(local_spark, intervals):
    frame = ticks(local_spark, [(utc(10, 0), "AAPL", 10.0, 1.0, 1)])
    with pytest.raises(ValueError, match=r"intervals must be distinct values of \['1m', '5m', '1h', '1d'\]"):
        transform(frame, intervals)


def test_output_columns_and_types_are_the_tables(local_spark):
    out = transform(ticks(local_spark, [(utc(10, 0), "AAPL", 10.0, 1.0, 1)]))
    assert out.columns == BAR_COLUMNS
    assert out.dtypes == [
        ("ts", "bigint"), ("symbol", "string"), ("open", "double"), ("high", "double"),
        ("low", "double"), ("close", "double"), ("volume", "double"), ("vwap", "double"),
        ("trade_count", "bigint"), ("interval", "string"), ("dt", "date"),
    ]
