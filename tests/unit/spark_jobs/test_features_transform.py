"""spark_jobs/features.py: the as_of explosion, the feature definitions and per-date determinism.

Expected values are worked out by hand (the arithmetic is in the comments). Most series are 1m bars
of 2026-01-05 with no warm-up, so bar t of a series is at D5 + t minutes and ``t`` in the checks is
the index of the module doc's definitions.
"""

from __future__ import annotations

from datetime import date

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.features import (
    OUTPUT_COLUMNS,
    RECURSIVE_COLUMNS,
    WINDOWED_COLUMNS,
    as_of_series,
    transform,
)

D5 = 1_767_571_200_000_000_000  # 2026-01-05 00:00:00 UTC
SEC = 1_000_000_000
MIN, HOUR, DAY = 60 * SEC, 3_600 * SEC, 86_400 * SEC
JAN2, JAN3, JAN4, JAN5, JAN6, JAN7 = (date(2026, 1, d) for d in range(2, 8))
LN2 = 0.6931471805599453  # ln 2
LINEAR = [float(c) for c in range(1, 56)]  # close_t = t + 1, t = 0..54

BARS_DDL = ("ts BIGINT, symbol STRING, interval STRING, open DOUBLE, high DOUBLE, low DOUBLE, "
            "close DOUBLE, volume DOUBLE, vwap DOUBLE, trade_count BIGINT, dt DATE")


def bars(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, BARS_DDL)


def minute_bars(closes: list[float], symbol: str = "AAPL", *, highs: list[float] | None = None,
                lows: list[float] | None = None, volumes: list[float] | None = None,
                vwaps: list[float | None] | None = None) -> list[tuple]:
    """1m bars of 2026-01-05, bar t at D5 + t minutes; high = low = vwap = close, volume 1 unless given."""
    n = len(closes)
    highs, lows = highs or closes, lows or closes
    volumes = volumes or [1.0] * n
    vwaps = closes if vwaps is None else vwaps
    return [(D5 + t * MIN, symbol, "1m", closes[t], highs[t], lows[t], closes[t], volumes[t], vwaps[t], 1,
             JAN5) for t in range(n)]


def at(spark: SparkSession, rows: list[tuple], columns: list[str], ts: list[int],
       recursive: bool = False) -> DataFrame:
    """The given feature columns of the 1m bars t in ``ts``, keyed by (symbol, t), for 2026-01-05 alone."""
    out = transform(bars(spark, rows), JAN5, JAN5, {"1m": 0}, recursive=recursive)
    t = ((F.col("ts") - F.lit(D5)) / F.lit(MIN)).cast("int")
    return out.select("symbol", t.alias("t"), *columns).where(F.col("t").isin(ts))


def expect(spark: SparkSession, columns: list[str], rows: list[tuple]) -> DataFrame:
    ddl = ", ".join(["symbol STRING", "t INT", *[f"{c} DOUBLE" for c in columns]])
    return spark.createDataFrame(rows, ddl)


def check_approx(actual: DataFrame, expected: DataFrame) -> None:
    assert actual.columns == expected.columns
    # ordered by the key rather than ignore_row_order, which would sort on the (inexact) doubles
    assert_approx_df_equality(actual.orderBy("symbol", "t"), expected.orderBy("symbol", "t"), 1e-9,
                              ignore_nullable=True)


# -- as_of_series ----------------------------------------------------------------------------
def test_as_of_series_copies_a_bar_into_each_date_it_serves_up_to_the_warmup(local_spark):
    spark = local_spark
    daily = [(D5 + (d - JAN5).days * DAY, "AAPL", "1d", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1, d)
             for d in (JAN2, JAN3, JAN4, JAN5, JAN6, JAN7)]
    hourly = [(D5 + (d - JAN5).days * DAY + HOUR, "AAPL", "1h", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1, d)
              for d in (JAN4, JAN5, JAN6)]
    series = as_of_series(bars(spark, daily + hourly), JAN5, JAN6, {"1d": 2, "1h": 0, "1m": 9})
    assert series.columns == [*bars(spark, []).columns, "as_of"]
    assert dict(series.dtypes)["as_of"] == "date"
    expected = spark.createDataFrame([
        # 1d, warm-up 2: a bar serves [dt, dt + 2] within [JAN5, JAN6]
        # JAN2 + 2 = JAN4 < JAN5: dropped (just outside)
        ("1d", JAN3, JAN5),  # JAN3 + 2 = JAN5: kept, on the boundary
        ("1d", JAN4, JAN5), ("1d", JAN4, JAN6),
        ("1d", JAN5, JAN5), ("1d", JAN5, JAN6),
        ("1d", JAN6, JAN6),
        # JAN7 is after date_to: dropped
        # 1h, no warm-up: each bar serves its own date only, JAN4 is before the range
        ("1h", JAN5, JAN5),
        ("1h", JAN6, JAN6),
    ], "interval STRING, dt DATE, as_of DATE")
    assert_df_equality(series.select("interval", "dt", "as_of"), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_as_of_series_rejects_an_interval_without_warmup(local_spark):
    rows = minute_bars([1.0, 2.0]) + [(D5, "AAPL", "5m", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1, JAN5)]
    with pytest.raises(ValueError, match="'5m'"):
        as_of_series(bars(local_spark, rows), JAN5, JAN5, {"1m": 0, "1h": 3})
    with pytest.raises(ValueError, match="before date_from"):
        as_of_series(bars(local_spark, rows), JAN6, JAN5, {"1m": 0, "5m": 0})
    with pytest.raises(ValueError, match="0 or more"):
        as_of_series(bars(local_spark, rows), JAN5, JAN5, {"1m": 0, "5m": -1})


# -- output shape, filtering and per-interval warm-up ----------------------------------------
def test_output_keeps_the_range_dates_once_in_the_output_column_order(local_spark):
    spark = local_spark
    rows = [
        # 1d, warm-up 1: JAN5's series is (JAN4, JAN5), JAN6's is (JAN5, JAN6); JAN3 and JAN7 serve nothing
        (D5 - 2 * DAY, "AAPL", "1d", 1.0, 1.0, 1.0, 100.0, 1000.0, 1.0, 1, JAN3),
        (D5 - DAY, "AAPL", "1d", 1.0, 1.0, 1.0, 110.0, 1000.0, 1.0, 1, JAN4),
        (D5, "AAPL", "1d", 1.0, 1.0, 1.0, 121.0, 1000.0, 1.0, 1, JAN5),
        (D5 + DAY, "AAPL", "1d", 1.0, 1.0, 1.0, 121.0, 1000.0, 1.0, 1, JAN6),
        (D5 + 2 * DAY, "AAPL", "1d", 1.0, 1.0, 1.0, 50.0, 1000.0, 1.0, 1, JAN7),
        # 1h, no warm-up: JAN5's series starts at its first bar, JAN4 23:00 is not in it
        (D5 - HOUR, "AAPL", "1h", 1.0, 1.0, 1.0, 50.0, 10.0, 1.0, 1, JAN4),
        (D5, "AAPL", "1h", 1.0, 1.0, 1.0, 55.0, 10.0, 1.0, 1, JAN5),
        (D5 + HOUR, "AAPL", "1h", 1.0, 1.0, 1.0, 44.0, 10.0, 1.0, 1, JAN5),
    ]
    out = transform(bars(spark, rows), JAN5, JAN6, {"1d": 1, "1h": 0})
    assert out.columns == [
        "ts", "symbol", "open", "high", "low", "close", "volume", "vwap", "trade_count",
        "ret", "log_ret", "sma_10", "sma_20", "sma_50", "bb_mid", "bb_upper", "bb_lower", "zscore_20",
        "obv", "vwap_20", "rv_20",
        "ema_10", "ema_20", "ema_50", "macd", "macd_signal", "macd_hist", "rsi_14", "atr_14",
        "interval", "dt"]
    assert out.columns == OUTPUT_COLUMNS
    types = dict(out.dtypes)
    assert {types[c] for c in WINDOWED_COLUMNS + RECURSIVE_COLUMNS} == {"double"}
    expected = spark.createDataFrame([
        ("1d", JAN5, 0.1, 1000.0),  # 121/110 - 1; obv 0 + 1000 (JAN3 -> JAN4 up would add 1000 more)
        ("1d", JAN6, 0.0, 0.0),  # 121/121 - 1; obv 0 + 0 * 1000 (flat)
        ("1h", JAN5, None, 0.0),  # first bar of its series
        ("1h", JAN5, -0.2, -10.0),  # 44/55 - 1; obv 0 - 10
    ], "interval STRING, dt DATE, ret DOUBLE, obv DOUBLE")
    actual = out.select("interval", "dt", "ret", "obv")
    assert_approx_df_equality(actual.orderBy("interval", "dt", F.col("ret").asc_nulls_first()),
                              expected.orderBy("interval", "dt", F.col("ret").asc_nulls_first()), 1e-12,
                              ignore_nullable=True)


def test_without_recursive_the_recursive_columns_are_null_doubles(local_spark):
    out = transform(bars(local_spark, minute_bars(LINEAR)), JAN5, JAN5, {"1m": 0}, recursive=False)
    assert out.columns == OUTPUT_COLUMNS
    assert {dict(out.dtypes)[c] for c in RECURSIVE_COLUMNS} == {"double"}
    nulls = out.agg(*[F.count(c).alias(c) for c in RECURSIVE_COLUMNS]).first().asDict()
    assert nulls == dict.fromkeys(RECURSIVE_COLUMNS, 0)
    assert out.where(F.col("sma_50").isNotNull()).count() == 6  # t = 49..54


def test_only_the_recursive_step_copies_bars_into_as_of_series(local_spark, capsys):
    frame = bars(local_spark, minute_bars(LINEAR))
    transform(frame, JAN5, JAN5, {"1m": 0}, recursive=False).explain()
    windowed_plan = capsys.readouterr().out
    assert "explode" not in windowed_plan and "FlatMapGroupsInPandas" not in windowed_plan
    transform(frame, JAN5, JAN5, {"1m": 0}).explain()
    full_plan = capsys.readouterr().out
    assert full_plan.count("explode(") == 1 and "FlatMapGroupsInPandas" in full_plan


# -- determinism -----------------------------------------------------------------------------
def _hourly_bars() -> list[tuple]:
    """Four days (JAN3..JAN6) of irregular 1h bars, a null-vwap zero-volume bar now and then."""
    rows = []
    for i in range(96):
        close = 100.0 + (i * 37 % 23) * 0.25 - (i % 7) * 0.5
        quiet = i % 11 == 0
        rows.append((D5 - 2 * DAY + i * HOUR, "MSFT", "1h", close - 0.1, close + (i % 3) * 0.5 + 0.25,
                     close - (i % 4) * 0.5 - 0.25, close, 0.0 if quiet else float(10 + i % 9),
                     None if quiet else close + 0.1, 0 if quiet else 5, date(2026, 1, 3 + i // 24)))
    return rows


def test_a_date_alone_equals_the_same_date_within_a_range(local_spark):
    spark = local_spark
    frame = bars(spark, _hourly_bars())
    # a 2-day warm-up: JAN5 reads JAN3..JAN5 and JAN6 reads JAN4..JAN6, never JAN3, in either run
    ranged = transform(frame, JAN5, JAN6, {"1h": 2}).persist()
    for day in (JAN5, JAN6):
        alone = transform(frame, day, day, {"1h": 2})
        # bit for bit, windowed and recursive columns alike
        assert_df_equality(alone, ranged.where(F.col("dt") == day), ignore_row_order=True)
    # not vacuous: every feature has values on each date (t = 48..71 of a 72-bar series)
    for day in (JAN5, JAN6):
        counts = ranged.where(F.col("dt") == day).agg(
            *[F.count(c).alias(c) for c in WINDOWED_COLUMNS + RECURSIVE_COLUMNS]).first()
        assert min(counts) > 0
    ranged.unpersist()


# -- windowed features -----------------------------------------------------------------------
def test_ret_and_log_ret(local_spark):
    cols = ["ret", "log_ret"]
    actual = at(local_spark, minute_bars([1.0, 2.0, 3.0, 3.0, 1.5]), cols, list(range(5)))
    check_approx(actual, expect(local_spark, cols, [
        ("AAPL", 0, None, None),
        ("AAPL", 1, 1.0, LN2),  # 2/1 - 1, ln 2
        ("AAPL", 2, 0.5, 0.4054651081081644),  # 3/2 - 1, ln 1.5
        ("AAPL", 3, 0.0, 0.0),
        ("AAPL", 4, -0.5, -LN2),  # 1.5/3 - 1, ln 0.5
    ]))


def test_sma_is_null_until_its_window_is_full(local_spark):
    # close_t = t + 1, so the mean of n consecutive closes is the middle one, e.g. t = 9: (1+..+10)/10
    cols = ["sma_10", "sma_20", "sma_50"]
    actual = at(local_spark, minute_bars(LINEAR), cols, [8, 9, 18, 19, 48, 49, 54])
    check_approx(actual, expect(local_spark, cols, [
        ("AAPL", 8, None, None, None),
        ("AAPL", 9, 5.5, None, None),
        ("AAPL", 18, 14.5, None, None),  # (10+..+19)/10
        ("AAPL", 19, 15.5, 10.5, None),  # (11+..+20)/10, (1+..+20)/20
        ("AAPL", 48, 44.5, 39.5, None),  # (40+..+49)/10, (30+..+49)/20
        ("AAPL", 49, 45.5, 40.5, 25.5),  # (1+..+50)/50
        ("AAPL", 54, 50.5, 45.5, 30.5),  # (46+..+55)/10, (36+..+55)/20, (6+..+55)/50
    ]))


def test_bollinger_bands_and_zscore_use_the_population_sd(local_spark):
    # 9, 11, 9, 11, ...: any 20 consecutive closes are ten 9s and ten 11s, mean 10, population sd 1
    # (the sample sd would be sqrt(20/19)); a constant series has sd 0, so no zscore
    rows = minute_bars([9.0 if t % 2 == 0 else 11.0 for t in range(21)], "ZIG") + minute_bars(
        [10.0] * 20, "FLAT")
    cols = ["bb_mid", "bb_upper", "bb_lower", "zscore_20"]
    actual = at(local_spark, rows, cols, [18, 19, 20])
    check_approx(actual, expect(local_spark, cols, [
        ("FLAT", 18, None, None, None, None),
        ("FLAT", 19, 10.0, 10.0, 10.0, None),
        ("ZIG", 18, None, None, None, None),
        ("ZIG", 19, 10.0, 12.0, 8.0, 1.0),  # 10 +/- 2*1; close 11: (11 - 10)/1
        ("ZIG", 20, 10.0, 12.0, 8.0, -1.0),  # close 9: (9 - 10)/1
    ]))


def test_obv_adds_volume_on_up_moves_and_subtracts_it_on_down_moves(local_spark):
    rows = minute_bars([10.0, 11.0, 11.0, 10.0, 12.0], volumes=[100.0, 200.0, 300.0, 400.0, 500.0])
    actual = at(local_spark, rows, ["obv"], list(range(5)))
    check_approx(actual, expect(local_spark, ["obv"], [
        ("AAPL", 0, 0.0),
        ("AAPL", 1, 200.0),  # up: +200
        ("AAPL", 2, 200.0),  # flat: +0
        ("AAPL", 3, -200.0),  # down: -400
        ("AAPL", 4, 300.0),  # up: +500
    ]))


def test_vwap_20_leaves_out_bars_without_vwap(local_spark):
    # t = 0..9: vwap 10, volume 1, except t = 5: no vwap, volume 1000 (ignored); t = 10..20: vwap 20,
    # volume 3. "DRY": no volume at all, so no vwap_20.
    vwaps = [None if t == 5 else 10.0 if t < 10 else 20.0 for t in range(21)]
    volumes = [1000.0 if t == 5 else 1.0 if t < 10 else 3.0 for t in range(21)]
    rows = (minute_bars([1.0] * 21, vwaps=vwaps, volumes=volumes)
            + minute_bars([1.0] * 20, "DRY", vwaps=[None] * 20, volumes=[0.0] * 20))
    actual = at(local_spark, rows, ["vwap_20"], [18, 19, 20])
    check_approx(actual, expect(local_spark, ["vwap_20"], [
        ("AAPL", 18, None),
        ("AAPL", 19, (9 * 10 * 1 + 10 * 20 * 3) / (9 * 1 + 10 * 3)),  # t = 0..19: 690/39
        ("AAPL", 20, (8 * 10 * 1 + 11 * 20 * 3) / (8 * 1 + 11 * 3)),  # t = 1..20: 740/41
        ("DRY", 18, None),
        ("DRY", 19, None),
    ]))


def test_rv_20_needs_20_log_returns(local_spark):
    # 1, 2, 1, 2, ...: every log return is +/- ln 2, so rv_20 = sqrt(20 * ln2^2) = ln 2 * sqrt(20)
    rows = minute_bars([1.0 if t % 2 == 0 else 2.0 for t in range(22)])
    actual = at(local_spark, rows, ["rv_20"], [19, 20, 21])
    check_approx(actual, expect(local_spark, ["rv_20"], [
        ("AAPL", 19, None),  # only 19 returns so far
        ("AAPL", 20, LN2 * 20 ** 0.5),
        ("AAPL", 21, LN2 * 20 ** 0.5),
    ]))


# -- recursive features ----------------------------------------------------------------------
def test_ema_is_seeded_with_the_sma_then_recursive(local_spark):
    # on close_t = t + 1 the EMA keeps a constant lag of (n - 1)/2 behind the close: seed
    # (1+..+n)/n = (n+1)/2 = close_{n-1} - (n-1)/2, then ema + (close + 1 - ema) * 2/(n+1) = ema + 1
    cols = ["ema_10", "ema_20", "ema_50"]
    actual = at(local_spark, minute_bars(LINEAR), cols, [8, 9, 10, 11, 18, 19, 20, 48, 49, 50],
                recursive=True)
    check_approx(actual, expect(local_spark, cols, [
        ("AAPL", 8, None, None, None),
        ("AAPL", 9, 5.5, None, None),  # (1+..+10)/10
        ("AAPL", 10, 6.5, None, None),  # 5.5 + (11 - 5.5) * 2/11
        ("AAPL", 11, 7.5, None, None),  # 6.5 + (12 - 6.5) * 2/11
        ("AAPL", 18, 14.5, None, None),
        ("AAPL", 19, 15.5, 10.5, None),  # (1+..+20)/20
        ("AAPL", 20, 16.5, 11.5, None),  # 10.5 + (21 - 10.5) * 2/21
        ("AAPL", 48, 44.5, 39.5, None),
        ("AAPL", 49, 45.5, 40.5, 25.5),  # (1+..+50)/50
        ("AAPL", 50, 46.5, 41.5, 26.5),  # 25.5 + (51 - 25.5) * 2/51
    ]))


def test_macd_starts_at_25_and_its_signal_at_33(local_spark):
    # same series: ema_12 = close - 5.5 and ema_26 = close - 12.5, so macd = 7 from t = 25 on, and
    # its EMA_9 seeded with the mean of nine 7s is 7 as well
    cols = ["macd", "macd_signal", "macd_hist"]
    actual = at(local_spark, minute_bars(LINEAR), cols, [24, 25, 32, 33, 54], recursive=True)
    check_approx(actual, expect(local_spark, cols, [
        ("AAPL", 24, None, None, None),
        ("AAPL", 25, 7.0, None, None),  # 20.5 - 13.5
        ("AAPL", 32, 7.0, None, None),
        ("AAPL", 33, 7.0, 7.0, 0.0),
        ("AAPL", 54, 7.0, 7.0, 0.0),
    ]))


def test_rsi_14_wilder(local_spark):
    rows = (minute_bars([float(t) for t in range(1, 18)], "UP")  # no losses: 100
            + minute_bars([5.0] * 17, "FLAT")  # no moves: 50
            + minute_bars([10.0 if t % 2 == 0 else 11.0 for t in range(17)], "ZIG"))  # +1, -1, ...
    actual = at(local_spark, rows, ["rsi_14"], [13, 14, 15, 16], recursive=True)
    check_approx(actual, expect(local_spark, ["rsi_14"], [
        ("FLAT", 13, None), ("FLAT", 14, 50.0), ("FLAT", 15, 50.0), ("FLAT", 16, 50.0),
        ("UP", 13, None), ("UP", 14, 100.0), ("UP", 15, 100.0), ("UP", 16, 100.0),
        # t = 1..14: seven +1, seven -1: avg_gain = avg_loss = 7/14 = 0.5, RS = 1
        ("ZIG", 13, None), ("ZIG", 14, 50.0),
        # t = 15 up: gain (0.5*13 + 1)/14 = 7.5/14, loss 6.5/14; 100 - 100/(1 + 7.5/6.5) = 100 * 7.5/14
        ("ZIG", 15, 100 * 7.5 / 14),
        # t = 16 down: gain (7.5/14*13)/14 = 97.5/196, loss (6.5/14*13 + 1)/14 = 98.5/196; sum 1
        ("ZIG", 16, 100 * 97.5 / 196),
    ]))


def test_atr_14_wilder_uses_the_previous_close(local_spark):
    # close_t = 100 + t with high/low = close +/- 1: TR = max(2, |c+1 - (c-1)|, |c-1 - (c-1)|) = 2;
    # t = 15: +/- 8 -> TR 16; t = 17 gaps up to 126 (+/- 1) after 116: TR = |127 - 116| = 11
    closes = [100.0 + t for t in range(17)] + [126.0]
    widths = [8.0 if t == 15 else 1.0 for t in range(18)]
    rows = minute_bars(closes, highs=[c + w for c, w in zip(closes, widths, strict=True)],
                       lows=[c - w for c, w in zip(closes, widths, strict=True)])
    actual = at(local_spark, rows, ["atr_14"], [13, 14, 15, 16, 17], recursive=True)
    check_approx(actual, expect(local_spark, ["atr_14"], [
        ("AAPL", 13, None),
        ("AAPL", 14, 2.0),  # mean of fourteen 2s
        ("AAPL", 15, 3.0),  # (2*13 + 16)/14
        ("AAPL", 16, 41 / 14),  # (3*13 + 2)/14
        ("AAPL", 17, 687 / 196),  # (41/14*13 + 11)/14
    ]))
