"""Batch layer, first job: raw trades (lander Parquet and/or Flume SequenceFiles) -> ``curated.trades``.

    source .venv/bin/activate
    spark-submit spark_jobs/etl_ticks.py --from 2026-01-05 --to 2026-01-05 [--symbols A,B] [--source lander|flume|both]

(more options: ``--table`` (default ``curated.trades``) and ``--slack-days`` (default 1); the
stack's spark-defaults.conf makes plain ``spark-submit`` work locally, see spark_jobs/smoke.py.)
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

Output: ``curated.trades`` (Spark parquet table ``PARTITIONED BY (dt)``, created with its database
if missing) written with ``insertInto(overwrite=True)`` under dynamic partition overwrite, so a run
replaces exactly the ``dt`` partitions it produces rows for and a rerun is idempotent. A date of
the window with no rows at all is left as it is (nothing replaces it).
"""  # noqa: E501 (the spark-submit line)

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from tradelake.config import Config, load_config
from tradelake.schemas import TRADE, arrow_schema, spark_schema
from tradelake.spark import get_spark

DEFAULT_TABLE = "curated.trades"
SOURCES = ("lander", "flume")
SOURCE_RANK = {"lander": 0, "flume": 1}  # tie-break: the exactly-once copy first
KEY = ("symbol", "ts", "seq")
NS_PER_DAY = 86_400 * 1_000_000_000
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
    files = [f for d in dates for f in matching_files(spark, f"{path}/dt={d}/{LANDER_FILES}")]
    file_schema = T.StructType(spark_schema(TRADE).fields + PROVENANCE[:2])
    if not files:
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
    files = [f for d in dates for f in matching_files(spark, path_glob.replace("{dt}", d))]
    if not files:
        return spark.createDataFrame([], EXTRACT_SCHEMA)
    pairs = spark.sparkContext.sequenceFile(",".join(files)).map(lambda kv: (kv[0], bytes(kv[1])))
    messages = spark.createDataFrame(pairs, "flume_ts_ms BIGINT, body BINARY")
    return messages.mapInArrow(decode_messages, EXTRACT_SCHEMA)


# -- transform -------------------------------------------------------------------------------
def utc_date(ts: str = "ts") -> Column:
    """UTC calendar date of an int64 ns timestamp, in exact integer arithmetic (no float ns)."""
    return F.expr(f"date_from_unix_date(CAST(({ts} - pmod({ts}, {NS_PER_DAY})) div {NS_PER_DAY} AS INT))")


def scope(date_from: date, date_to: date, symbols: Sequence[str] | None = None) -> Column:
    """Decoded rows whose event date is in ``date_from..date_to`` (and symbol in ``symbols``).

    Compares ``ts`` with the window's ns bounds (pushed down to Parquet), equivalent to
    ``utc_date(ts) BETWEEN date_from AND date_to``.
    """
    epoch = date(1970, 1, 1)
    lo, hi = (date_from - epoch).days * NS_PER_DAY, ((date_to - epoch).days + 1) * NS_PER_DAY
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
    rows = union.where(scope(date_from, date_to, symbols))
    order = [F.col("ingest_ts").asc_nulls_last(), F.col("source_rank").asc(),
             F.col("kafka_partition").asc_nulls_last(), F.col("kafka_offset").asc_nulls_last(),
             *[F.col(c).asc_nulls_first() for c in ("price", "size", "trade_id", "exchange", "side",
                                                    "conditions")]]
    first = F.row_number().over(Window.partitionBy(*KEY).orderBy(*order))
    return (rows.withColumn("_n", first).where(F.col("_n") == 1)
            .select(*TRADE.names, utc_date("ts").alias("dt")))


# -- load ------------------------------------------------------------------------------------
def _sql_str(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def table_ddl(table: str) -> str:
    columns = ",\n    ".join(
        f"`{f.name}` {f.dataType.simpleString().upper()} COMMENT '{_sql_str(f.metadata.get('comment', ''))}'"
        for f in spark_schema(TRADE).fields)
    return (f"CREATE TABLE IF NOT EXISTS {table} (\n    {columns},\n"
            f"    `dt` DATE COMMENT 'UTC date of ts'\n)\nUSING parquet\nPARTITIONED BY (dt)\n"
            f"COMMENT '{_sql_str(TRADE.doc)} Deduplicated by (symbol, ts, seq).'")


def load(df: DataFrame, table: str = DEFAULT_TABLE) -> None:
    """Create the database and table if missing, then replace exactly the ``dt`` partitions in ``df``."""
    spark = df.sparkSession
    mode = spark.conf.get("spark.sql.sources.partitionOverwriteMode", "static")
    if mode.lower() != "dynamic":  # static overwrite would truncate every other partition
        raise RuntimeError(f"spark.sql.sources.partitionOverwriteMode is {mode!r}; the ETL needs "
                           "'dynamic' (set by tradelake.spark.get_spark)")
    if "." in table:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {table.rsplit('.', 1)[0]}")
    spark.sql(table_ddl(table))
    have = [(f.name, f.dataType) for f in spark.table(table).schema.fields]
    want = [(f.name, f.dataType) for f in df.select(*CURATED_COLUMNS).schema.fields]
    if have != want:  # insertInto is positional: refuse to write into a different layout
        raise RuntimeError(f"{table} has columns {have}, the ETL writes {want}")
    df.select(*CURATED_COLUMNS).write.insertInto(table, overwrite=True)


# -- the job ---------------------------------------------------------------------------------
def read_stats(df: DataFrame, date_from: date, date_to: date,
               symbols: Sequence[str] | None = None) -> dict[str, int]:
    """rows (decoded), undecodable (messages) and in_scope rows of one extracted source."""
    ok = F.col("decode_error").isNull()
    row = df.agg(F.count_if(ok).alias("rows"), F.count_if(~ok).alias("undecodable"),
                 F.count_if(scope(date_from, date_to, symbols)).alias("in_scope")).first()
    return {k: int(row[k] or 0) for k in ("rows", "undecodable", "in_scope")}


def run(spark: SparkSession, cfg: Config, date_from: date, date_to: date, *,
        symbols: Sequence[str] | None = None, source: str = "both", table: str = DEFAULT_TABLE,
        slack_days: int = 1) -> dict:
    """Extract, transform and load one window; returns the summary printed as ``ETL_RESULT``."""
    started = time.monotonic()
    dates = folder_dates(date_from, date_to, slack_days)
    wanted = SOURCES if source == "both" else (source,)
    extracted = {}
    if "lander" in wanted:
        extracted["lander"] = extract_lander(spark, lander_path(cfg), dates).persist()
    if "flume" in wanted:
        extracted["flume"] = extract_flume(spark, flume_glob(cfg), dates).persist()
    stats = {name: read_stats(df, date_from, date_to, symbols) for name, df in extracted.items()}
    curated = transform(extracted.get("lander"), extracted.get("flume"), date_from, date_to,
                        symbols).persist()
    per_dt = sorted((r["dt"].isoformat(), r["n"]) for r in curated.groupBy("dt").agg(
        F.count(F.lit(1)).alias("n")).collect())
    load(curated, table)
    written = sum(n for _, n in per_dt)
    in_window = sum(s["in_scope"] for s in stats.values())
    summary = {
        "table": table, "from": date_from.isoformat(), "to": date_to.isoformat(), "source": source,
        "symbols": list(symbols) if symbols else None, "folders": [dates[0], dates[-1]],
        "rows_read": {name: s["rows"] for name, s in stats.items()},
        "undecodable": sum(s["undecodable"] for s in stats.values()),
        "out_of_scope": sum(s["rows"] - s["in_scope"] for s in stats.values()),
        "duplicates_removed": in_window - written,
        "rows_written": written,
        "partitions_replaced": [dt for dt, _ in per_dt],
        "seconds": round(time.monotonic() - started, 1),
    }
    for df in (*extracted.values(), curated):
        df.unpersist()
    return summary


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="date_from", type=_date, required=True, help="first event date")
    parser.add_argument("--to", dest="date_to", type=_date, required=True, help="last event date")
    parser.add_argument("--symbols", default="", help="comma-separated; default: all")
    parser.add_argument("--source", choices=["lander", "flume", "both"], default="both")
    parser.add_argument("--table", default=DEFAULT_TABLE)
    parser.add_argument("--slack-days", type=int, default=1,
                        help="also read this many days of folders either side of the window")
    args = parser.parse_args(argv)
    if args.date_to < args.date_from:
        parser.error("--to is before --from")
    if args.slack_days < 0:
        parser.error("--slack-days must be 0 or more")
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()] or None
    cfg = load_config()
    spark = get_spark("tradelake-etl-ticks", cfg)
    summary = run(spark, cfg, args.date_from, args.date_to, symbols=symbols, source=args.source,
                  table=args.table, slack_days=args.slack_days)
    print("ETL_RESULT " + json.dumps(summary), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
