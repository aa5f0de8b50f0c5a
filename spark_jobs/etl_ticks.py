"""Batch layer, first job: raw trades (lander Parquet and/or Flume SequenceFiles) -> ``curated.ticks``.

    source .venv/bin/activate
    spark-submit spark_jobs/etl_ticks.py --from 2026-01-05 --to 2026-01-05 [--symbols A,B] [--source lander|flume|both]

(more: ``--slack-days`` (default 1); the stack's spark-defaults.conf makes plain ``spark-submit``
work locally; on YARN see the README.)
Prints one JSON summary line prefixed ``ETL_RESULT``: files and rows read per source,
``undecodable`` Flume messages, ``out_of_scope`` rows (outside the dates or symbols asked for),
``duplicates_removed``, ``rows_written`` and ``partitions_replaced``.

Sources (every path comes from the profile):
- lander: ``<lake.root>/<lander.raw_zone>/<ingest.topics.trades>/dt=D/p*.parquet``, exactly once,
  with ``kafka_partition``/``kafka_offset``; a folder's ``dt`` is the event date of the FIRST row
  of each message, so a message spanning midnight puts next-day rows in the earlier folder.
- flume: ``<lake.root>/<flume.hdfs_subdir>/<ingest.topics.trades>/dt=D/events*.seq``, SequenceFiles
  of (LongWritable ms, BytesWritable Kafka value = an Arrow IPC stream), at least once; a folder's
  ``dt`` is the ARRIVAL date at Flume (``useLocalTimeStamp``), so late rows land in later folders.
  Each message is decoded whole with pyarrow in ``mapInArrow`` (vectorised per message, no per-row
  Python); a message that is not a trade-schema Arrow stream is skipped and counted as
  ``undecodable`` (it travels as one in-band row with ``decode_error`` set, so counting is exact
  without accumulators). A null ``ingest_ts`` is filled from the SequenceFile key (when Flume took
  the message from Kafka), as the lander fills it from the Kafka timestamp.
Hence the job reads the folders of ``--from - slack .. --to + slack`` days and then keeps only rows
whose event date (``dt`` = UTC date of ``ts``) is within ``--from .. --to``: the job owns exactly
those partitions. A row arriving at Flume more than ``--slack-days`` after its date needs a rerun
of its date with a larger slack.

Dedup rule: the event id is (symbol, ts, seq), the schema's key; one row per id is kept, the first
by (ingest_ts ASC NULLS LAST, source: lander before flume, kafka_partition ASC NULLS LAST,
kafka_offset ASC NULLS LAST, then price, size, trade_id, exchange, side, conditions ASC NULLS
FIRST). That order is total over every column, so the result never depends on file or task order
(rows that tie on all of it are identical). In words: the earliest received copy wins, and for a
message present in both sources the lander's copy (with Kafka provenance) wins a tie. A row present
in both sources, or delivered twice by Flume, is written once and counted in ``duplicates_removed``.

Output: ``<warehouse.curated_db>.ticks`` (``hive/ddl/20_curated.hql``: external Parquet over
``<lake>/curated/ticks``, ``PARTITIONED BY (dt)``; created with its database if missing) written
with ``insertInto(overwrite=True)`` under dynamic partition overwrite, so a run replaces exactly the
``dt`` partitions it produces rows for and a rerun is idempotent. A date of the window with no rows
at all is left as it is (nothing replaces it). With ``--symbols`` the other symbols' rows of the
window's dates are carried over unchanged.
"""  # noqa: E501 (the spark-submit line)

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hive.warehouse import ensure_tables
from spark_jobs.batch import (
    day_bounds_ns,
    keep_others,
    overwrite_partitions,
    parse_window,
    utc_date,
    window_parser,
)
from tradelake.config import Config, load_config
from tradelake.schemas import TRADE, arrow_schema, spark_schema
from tradelake.spark import get_spark

SOURCES = ("lander", "flume")
SOURCE_RANK = {"lander": 0, "flume": 1}  # tie-break: the exactly-once copy first
KEY = ("symbol", "ts", "seq")
# hdfs.filePrefix / hdfs.fileSuffix of conf/flume/agent.properties.template; in-use files are
# "_events....seq.tmp" and do not match
FLUME_FILES = "events*.seq"
LANDER_FILES = "p*.parquet"  # ingestion/lake_layout.py names; skips _tmp/
PROVENANCE = [
    T.StructField("kafka_partition", T.IntegerType(), True),
    T.StructField("kafka_offset", T.LongType(), True),
    T.StructField("decode_error", T.StringType(), True),
]
# What both extract functions return: the trade columns, Kafka provenance (null for Flume) and
# decode_error (null, or why a Flume message was skipped: then every other column is null).
EXTRACT_SCHEMA = T.StructType(
    [T.StructField(f.name, f.dataType, True) for f in spark_schema(TRADE).fields] + PROVENANCE)
CURATED_COLUMNS = [*TRADE.names, "dt"]
log = logging.getLogger("tradelake.etl_ticks")


# -- extract ---------------------------------------------------------------------------------
def folder_dates(date_from: date, date_to: date, slack_days: int = 1) -> list[str]:
    """``dt=`` folder names to read for an event-date window (see the module doc)."""
    first, last = date_from - timedelta(days=slack_days), date_to + timedelta(days=slack_days)
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def lander_path(cfg: Config) -> str:
    return f"{cfg.lake.root.rstrip('/')}/{cfg.lander.raw_zone}/{cfg.ingest.topics.trades}"


def flume_glob(cfg: Config) -> str:
    """Flume's files for trades; ``{dt}`` stands for the date folder."""
    return (f"{cfg.lake.root.rstrip('/')}/{cfg.flume.hdfs_subdir}/{cfg.ingest.topics.trades}"
            f"/dt={{dt}}/{FLUME_FILES}")


def matching_files(spark: SparkSession, pattern: str) -> list[str]:
    """Files matching a Hadoop glob (none, rather than an error, if nothing matches)."""
    sc = spark.sparkContext
    path = sc._jvm.org.apache.hadoop.fs.Path(pattern)
    statuses = path.getFileSystem(sc._jsc.hadoopConfiguration()).globStatus(path)
    return sorted(s.getPath().toString() for s in (statuses or []) if s.isFile())


def extract_lander(spark: SparkSession, path: str, dates: Iterable[str]) -> DataFrame:
    """The lander's Parquet files under ``path/dt=<date>/`` for each of ``dates``."""
    files = matching_files(spark, f"{path}/dt={{{','.join(dates)}}}/{LANDER_FILES}")  # one glob call
    file_schema = T.StructType(spark_schema(TRADE).fields + PROVENANCE[:2])
    if not files:
        log.warning("no lander files under %s for dt=%s..%s: is the lake root or topic right?",
                    path, min(dates), max(dates))
        return spark.createDataFrame([], EXTRACT_SCHEMA)
    df = spark.read.schema(file_schema).parquet(*files)
    return df.select(*[F.col(f.name).cast(f.dataType) for f in EXTRACT_SCHEMA.fields[:-1]],
                     F.lit(None).cast("string").alias("decode_error"))


def _extract_arrow_schema() -> pa.Schema:
    trade = arrow_schema(TRADE)
    return pa.schema([f.with_nullable(True) for f in trade]
                     + [pa.field("kafka_partition", pa.int32()), pa.field("kafka_offset", pa.int64()),
                        pa.field("decode_error", pa.string())])


def decode_messages(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: (flume_ts_ms, body) message batches -> extract-schema row batches.

    One Arrow IPC stream per message, decoded whole; a message that is not one, or whose schema is
    not the trade schema, becomes a single row carrying only ``decode_error``.
    """
    from ingestion import wire

    expected, out = arrow_schema(TRADE), _extract_arrow_schema()
    ingest_idx = expected.get_field_index("ingest_ts")
    for batch in batches:
        keys = batch.column(0).to_pylist()
        for key_ms, body in zip(keys, batch.column(1).to_pylist(), strict=True):
            try:
                table = wire.decode(body or b"")
                if table.schema.names != expected.names or table.schema.types != expected.types:
                    raise wire.WireError(f"schema {table.schema.names} is not the trade schema")
            except wire.WireError as exc:
                yield pa.RecordBatch.from_pylist([{"decode_error": str(exc)[:500]}], schema=out)
                continue
            n = table.num_rows
            if n == 0:
                continue
            ingest = table.column(ingest_idx)
            if key_ms is not None and ingest.null_count:
                ingest = pc.fill_null(ingest, pa.scalar(key_ms * 1_000_000, pa.int64()))
            columns = [*table.columns[:ingest_idx], ingest, *table.columns[ingest_idx + 1:],
                       pa.nulls(n, pa.int32()), pa.nulls(n, pa.int64()), pa.nulls(n, pa.string())]
            yield from pa.Table.from_arrays(columns, schema=out).combine_chunks().to_batches()


def extract_flume(spark: SparkSession, path_glob: str, dates: Iterable[str]) -> DataFrame:
    """Flume's SequenceFiles matching ``path_glob`` (with ``{dt}`` replaced by each of ``dates``)."""
    files = matching_files(spark, path_glob.replace("{dt}", "{" + ",".join(dates) + "}"))
    if not files:
        log.warning("no Flume files match %s for dt=%s..%s", path_glob, min(dates), max(dates))
        return spark.createDataFrame([], EXTRACT_SCHEMA)
    pairs = spark.sparkContext.sequenceFile(",".join(files)).map(lambda kv: (kv[0], bytes(kv[1])))
    messages = spark.createDataFrame(pairs, "flume_ts_ms BIGINT, body BINARY")
    return messages.mapInArrow(decode_messages, EXTRACT_SCHEMA)


# -- transform -------------------------------------------------------------------------------
def scope(date_from: date, date_to: date, symbols: Sequence[str] | None = None) -> Column:
    """Decoded rows whose event date is in ``date_from..date_to`` (and symbol in ``symbols``).

    Compares ``ts`` with the window's ns bounds (a Parquet filter when nothing stands between it
    and the scan; ``run`` counts every row read first, so it reads the slack folders whole), as
    ``utc_date(ts) BETWEEN date_from AND date_to``.
    """
    lo, hi = day_bounds_ns(date_from, date_to)
    cond = F.col("decode_error").isNull() & (F.col("ts") >= F.lit(lo)) & (F.col("ts") < F.lit(hi))
    if symbols:
        cond = cond & F.col("symbol").isin(list(symbols))
    return cond


def _normalise(df: DataFrame, source: str) -> DataFrame:
    """Extract schema (missing provenance columns as nulls) plus the source and its rank."""
    cols = [F.col(f.name).cast(f.dataType) if f.name in df.columns else F.lit(None).cast(f.dataType)
            for f in EXTRACT_SCHEMA.fields]
    return df.select(*[c.alias(f.name) for c, f in zip(cols, EXTRACT_SCHEMA.fields, strict=True)],
                     F.lit(SOURCE_RANK[source]).alias("source_rank"))


def transform(lander: DataFrame | None, flume: DataFrame | None, date_from: date, date_to: date,
              symbols: Sequence[str] | None = None) -> DataFrame:
    """Union the sources, keep the window's rows, one row per (symbol, ts, seq), add ``dt``.

    Either source may be None. Returns the curated columns (trade columns, then ``dt``).
    """
    frames = [_normalise(df, name) for name, df in (("lander", lander), ("flume", flume))
              if df is not None]
    if not frames:
        raise ValueError("transform needs at least one source DataFrame")
    union = frames[0]
    for df in frames[1:]:
        union = union.unionByName(df)
    rows = union.where(scope(date_from, date_to, symbols)).withColumn("dt", utc_date("ts"))
    # (the source rank is left out when there is one source: a constant the optimiser drops
    # from the sort but not from the window, which would then sort the rows a second time)
    order = [F.col("ingest_ts").asc_nulls_last(), *([F.col("source_rank").asc()] if len(frames) > 1 else []),
             F.col("kafka_partition").asc_nulls_last(), F.col("kafka_offset").asc_nulls_last(),
             *[F.col(c).asc_nulls_first() for c in ("price", "size", "trade_id", "exchange", "side",
                                                    "conditions")]]
    # One shuffle and one sort serve the dedup and the write: the window's key (dt is a function
    # of ts, so adding it changes nothing) is clustered by (dt, symbol), and the sort leads with
    # dt, so the partitioned writer finds its rows already grouped by dt. (dt, symbol) rather than
    # symbol alone: a month of 20 symbols is 420 keys, which hash evenly over the tasks, where 20
    # keys left one of 4 tasks with about a third of the rows, and the stage waited for it.
    key = ("dt", *KEY)
    rows = (rows.repartition(int(rows.sparkSession.conf.get("spark.sql.shuffle.partitions")), "dt", "symbol")
            .sortWithinPartitions(*key, *order))
    first = F.row_number().over(Window.partitionBy(*key).orderBy(*order))
    return rows.withColumn("_n", first).where(F.col("_n") == 1).select(*TRADE.names, "dt")


# -- load ------------------------------------------------------------------------------------
def ticks_table(cfg: Config) -> str:
    return f"{cfg.warehouse.curated_db}.ticks"


def load(df: DataFrame, cfg: Config, keep: Column | None = None) -> str:
    """Create the table (and database) from the warehouse DDL if missing, then replace exactly the
    ``dt`` partitions present in ``df`` (carrying over the existing rows ``keep`` selects).
    Returns the table name."""
    table = ticks_table(cfg)
    ensure_tables(df.sparkSession, cfg, [table])
    overwrite_partitions(df.select(*CURATED_COLUMNS), table, keep)
    return table


# -- the job ---------------------------------------------------------------------------------
def read_stats(df: DataFrame, date_from: date, date_to: date,
               symbols: Sequence[str] | None = None) -> dict[str, int]:
    """rows (decoded), undecodable (messages) and in_scope rows of one extracted source, in a pass
    of its own (``run`` counts the same while it writes, see ``observed_source``)."""
    ok = F.col("decode_error").isNull()
    row = df.agg(F.count_if(ok).alias("rows"), F.count_if(~ok).alias("undecodable"),
                 F.count_if(scope(date_from, date_to, symbols)).alias("in_scope")).first()
    return {k: int(row[k] or 0) for k in ("rows", "undecodable", "in_scope")}


def observed_source(df: DataFrame, name: str, date_from: date, date_to: date,
                    symbols: Sequence[str] | None) -> tuple[DataFrame, Observation]:
    """Count decoded rows, undecodable messages and in-window rows while the write runs (no
    extra pass over the input)."""
    ok = F.col("decode_error").isNull()
    obs = Observation(f"read_{name}")
    df = df.observe(obs, F.count_if(ok).alias("rows"), F.count_if(~ok).alias("undecodable"),
                    F.count_if(scope(date_from, date_to, symbols)).alias("in_scope"))
    return df, obs


def run(spark: SparkSession, cfg: Config, date_from: date, date_to: date, *,
        symbols: Sequence[str] | None = None, source: str = "both", slack_days: int = 1) -> dict:
    """Extract, transform and load one window in a single pass; returns the ``ETL_RESULT`` summary."""
    started = time.monotonic()
    dates = folder_dates(date_from, date_to, slack_days)
    wanted = SOURCES if source == "both" else (source,)
    extracted, observations = {}, {}
    if "lander" in wanted:
        extracted["lander"], observations["lander"] = observed_source(
            extract_lander(spark, lander_path(cfg), dates), "lander", date_from, date_to, symbols)
    if "flume" in wanted:
        extracted["flume"], observations["flume"] = observed_source(
            extract_flume(spark, flume_glob(cfg), dates), "flume", date_from, date_to, symbols)
    curated = transform(extracted.get("lander"), extracted.get("flume"), date_from, date_to, symbols)
    written_obs = Observation("written")
    curated = curated.observe(written_obs, F.count(F.lit(1)).alias("rows"),
                              F.sort_array(F.collect_set("dt")).alias("dts"))
    table = load(curated, cfg, keep_others(date_from, date_to, symbols))
    stats = {name: {k: int(v or 0) for k, v in obs.get.items()} for name, obs in observations.items()}
    written = written_obs.get
    in_window = sum(s["in_scope"] for s in stats.values())
    return {
        "table": table, "from": date_from.isoformat(), "to": date_to.isoformat(), "source": source,
        "symbols": list(symbols) if symbols else None, "folders": [dates[0], dates[-1]],
        "rows_read": {name: s["rows"] for name, s in stats.items()},
        "undecodable": sum(s["undecodable"] for s in stats.values()),
        "out_of_scope": sum(s["rows"] - s["in_scope"] for s in stats.values()),
        "duplicates_removed": in_window - int(written["rows"]),
        "rows_written": int(written["rows"]),
        "partitions_replaced": [d.isoformat() for d in written["dts"] or []],
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = window_parser(__doc__)
    parser.add_argument("--source", choices=["lander", "flume", "both"], default="both")
    parser.add_argument("--slack-days", type=int, default=1,
                        help="also read this many days of folders either side of the window")
    args = parse_window(parser, argv)
    if args.slack_days < 0:
        parser.error("--slack-days must be 0 or more")
    cfg = load_config()
    spark = get_spark("tradelake-etl-ticks", cfg)
    summary = run(spark, cfg, args.date_from, args.date_to, symbols=args.symbols, source=args.source,
                  slack_days=args.slack_days)
    print("ETL_RESULT " + json.dumps(summary), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
