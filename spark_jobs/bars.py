"""Batch layer: curated ticks -> OHLCV bars at 1m, 5m, 1h and 1d in ``curated.bars``.

    source .venv/bin/activate
    spark-submit spark_jobs/bars.py --from 2026-01-05 --to 2026-01-09 [--symbols AAPL,MSFT]

Prints one JSON summary line prefixed ``BARS_RESULT``: ticks read, bars written per interval and
the (interval, dt) partitions replaced.

Rules (the definitions analysts and models rely on):
- Buckets are aligned to the UTC clock: a bar's ``ts`` is the start of its bucket,
  ``ts - ts mod length`` for 1m, 5m and 1h, and UTC midnight for 1d. A bar never spans two UTC
  days, so ``dt`` (the partition) is the UTC date of every trade in it.
- ``open`` is the first trade and ``close`` the last trade by event time, ties on ``ts`` broken by
  the feed's ``seq`` (arrival order plays no part, so late ticks land in the right place once the
  ETL has them); ``high``/``low`` are the extreme prices, ``volume`` the summed size,
  ``trade_count`` the number of trades, and ``vwap`` = sum(price * size) / sum(size), null when the
  volume is 0 (zero-size prints only).
- Empty intervals produce no bar: there is no forward-filled bar for a minute without trades
  (consumers that need a regular grid fill it themselves, knowing nothing traded).
- Sessions: curated ticks are already inside the instrument's session (ingestion quarantines the
  rest when sessions are configured), so bars cover traded time only; a clock-aligned bucket cut
  by the open or close (e.g. the 14:00 UTC hour of a 14:30 UTC open) is a partial bar of the
  trades inside it. The 1d bar is the UTC day, which is the trading day for sessions that do not
  cross UTC midnight.
- 5m, 1h and 1d bars are rolled up from the 1m bars (first open, max high, min low, last close,
  summed volume, turnover and counts), which is exact and spares three more passes over the ticks.

Idempotent: the job replaces exactly the (interval, dt) partitions it produces; a date without
ticks is left as it is. With ``--symbols`` the other symbols' bars in those partitions are carried
over unchanged, so rebuilding one symbol never loses another.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from hive.warehouse import ensure_tables
from spark_jobs.batch import (
    keep_others,
    overwrite_partitions,
    parse_window,
    symbol_filter,
    utc_date,
    window_parser,
)
from tradelake.config import Config, load_config
from tradelake.spark import get_spark

NS_PER_S = 1_000_000_000
INTERVALS = {"1m": 60 * NS_PER_S, "5m": 300 * NS_PER_S, "1h": 3_600 * NS_PER_S, "1d": 86_400 * NS_PER_S}
BROADCAST_MAX_MINUTES = 1_000_000  # symbol-minutes, ~80 MB as a hash table: a month of 100 symbols
BAR_COLUMNS = ["ts", "symbol", "open", "high", "low", "close", "volume", "vwap", "trade_count",
               "interval", "dt"]


# -- extract ---------------------------------------------------------------------------------
def extract(spark: SparkSession, ticks_table: str, date_from: date, date_to: date,
            symbols: Sequence[str] | None = None) -> DataFrame:
    return (spark.table(ticks_table)
            .where(F.col("dt").between(F.lit(date_from), F.lit(date_to)) & symbol_filter(symbols))
            .select("ts", "symbol", "price", "size", "seq"))


# -- transform -------------------------------------------------------------------------------
def bucket(length_ns: int, ts: str = "ts"):
    return F.col(ts) - F.pmod(F.col(ts), F.lit(length_ns))


def minute_stats(ticks: DataFrame) -> DataFrame:
    """Per (symbol, 1m bucket): first and last ts, high, low, volume, turnover, trade count."""
    return (ticks.groupBy("symbol", bucket(INTERVALS["1m"]).alias("bucket")).agg(
        F.min("ts").alias("first_ts"), F.max("ts").alias("last_ts"), F.max("price").alias("high"),
        F.min("price").alias("low"), F.sum("size").alias("volume"),
        F.sum(F.col("price") * F.col("size")).alias("turnover"), F.count(F.lit(1)).alias("trade_count")))


def minute_bars(ticks: DataFrame, stats: DataFrame | None = None, broadcast: bool = False) -> DataFrame:
    """Ticks (ts, symbol, price, size, seq) -> 1m bars with ``turnover`` = sum(price * size).

    Two hash aggregations instead of one sort: ordering open/close by (ts, seq) in a single pass
    needs a struct ordering key, which Spark can only aggregate by sorting all the ticks. So the
    first pass (``minute_stats``, or ``stats`` already computed from these ticks) finds each
    bucket's first and last ts and every other figure; the second picks, among the few ticks AT
    those instants, the one with the lowest / highest seq. ``broadcast`` sends the instants to
    every task instead of sorting the ticks for a join: for callers that know they are small.
    """
    stats = minute_stats(ticks) if stats is None else stats
    instants = stats.select("symbol", "bucket", "first_ts", "last_ts")
    t = ticks.withColumn("bucket", bucket(INTERVALS["1m"]))
    at_first, at_last = F.col("ts") == F.col("first_ts"), F.col("ts") == F.col("last_ts")
    edges = (t.join(F.broadcast(instants) if broadcast else instants, ["symbol", "bucket"])
             .where(at_first | at_last)
             .groupBy("symbol", "bucket")
             .agg(F.min_by(F.when(at_first, F.col("price")), F.when(at_first, F.col("seq"))).alias("open"),
                  F.max_by(F.when(at_last, F.col("price")), F.when(at_last, F.col("seq"))).alias("close")))
    return (stats.join(edges, ["symbol", "bucket"])
            .select("symbol", F.col("bucket").alias("ts"), "open", "high", "low", "close", "volume",
                    "turnover", "trade_count"))


def roll_up(bars: DataFrame, length_ns: int) -> DataFrame:
    """Bars with turnover -> longer bars (``length_ns`` a multiple of theirs, dividing a day)."""
    return (bars.groupBy("symbol", bucket(length_ns).alias("bucket"))
            .agg(F.min_by("open", "ts").alias("open"), F.max("high").alias("high"),
                 F.min("low").alias("low"), F.max_by("close", "ts").alias("close"),
                 F.sum("volume").alias("volume"), F.sum("turnover").alias("turnover"),
                 F.sum("trade_count").alias("trade_count"))
            .withColumnRenamed("bucket", "ts"))


def finish(bars: DataFrame, interval: str) -> DataFrame:
    vwap = F.when(F.col("volume") > 0, F.col("turnover") / F.col("volume"))
    return bars.select("ts", "symbol", "open", "high", "low", "close", "volume", vwap.alias("vwap"),
                       F.col("trade_count").cast("bigint").alias("trade_count"),
                       F.lit(interval).alias("interval"), utc_date("ts").alias("dt"))


def transform(ticks: DataFrame, intervals: Sequence[str] = tuple(INTERVALS),
              one_minute: DataFrame | None = None) -> DataFrame:
    """Ticks -> bars at every interval asked for, in the table's column order (``one_minute``:
    the ticks' 1m bars if the caller has them already)."""
    unknown = [i for i in intervals if i not in INTERVALS]
    if unknown or not intervals or len(set(intervals)) != len(intervals):
        raise ValueError(f"intervals must be distinct values of {list(INTERVALS)}, got {list(intervals)}")
    one_minute = minute_bars(ticks) if one_minute is None else one_minute
    frames = [finish(one_minute if i == "1m" else roll_up(one_minute, INTERVALS[i]), i) for i in intervals]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


# -- load ------------------------------------------------------------------------------------
def load(bars: DataFrame, cfg: Config, date_from: date, date_to: date,
         symbols: Sequence[str] | None = None) -> str:
    table = f"{cfg.warehouse.curated_db}.bars"
    ensure_tables(bars.sparkSession, cfg, [table])
    overwrite_partitions(bars.select(*BAR_COLUMNS), table, keep_others(date_from, date_to, symbols),
                         one_file_per=("interval", "dt"))
    return table


def run(spark: SparkSession, cfg: Config, date_from: date, date_to: date,
        symbols: Sequence[str] | None = None) -> dict:
    started = time.monotonic()
    bars_obs = Observation("bars")
    ticks = extract(spark, f"{cfg.warehouse.curated_db}.ticks", date_from, date_to, symbols)
    # The per-minute figures are small (one row per symbol and minute): computed once here, they
    # spare a third pass over the ticks, tell how many ticks were read, and when they are small
    # enough to broadcast, the second pass joins them without sorting the ticks.
    stats = minute_stats(ticks).localCheckpoint(eager=True)
    size = stats.agg(F.count(F.lit(1)).alias("n"), F.sum("trade_count").alias("ticks")).first()
    one_minute = minute_bars(ticks, stats, broadcast=size["n"] <= BROADCAST_MAX_MINUTES)
    bars = transform(ticks, one_minute=one_minute)
    bars = bars.observe(bars_obs, *[F.count_if(F.col("interval") == i).alias(i) for i in INTERVALS],
                        F.sort_array(F.collect_set(F.col("dt").cast("string"))).alias("dates"))
    table = load(bars, cfg, date_from, date_to, symbols)
    counts = bars_obs.get
    return {"table": table, "from": date_from.isoformat(), "to": date_to.isoformat(),
            "symbols": list(symbols) if symbols else None, "ticks_read": int(size["ticks"] or 0),
            "bars_written": {i: int(counts[i]) for i in INTERVALS}, "dates": list(counts["dates"]),
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    args = parse_window(window_parser(__doc__), argv)
    cfg = load_config()
    spark = get_spark("tradelake-bars", cfg)
    summary = run(spark, cfg, args.date_from, args.date_to, args.symbols)
    print("BARS_RESULT " + json.dumps(summary), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
