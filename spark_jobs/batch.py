"""What every batch job shares: the ``--from/--to/--symbols`` window, UTC dates of ns timestamps,
and the one way a job writes: replace exactly the partitions it produced (dynamic overwrite)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.window_args import add_window_arguments

NS_PER_DAY = 86_400 * 1_000_000_000
EPOCH = date(1970, 1, 1)


def utc_date(ts: str = "ts") -> Column:
    """UTC calendar date of an int64 ns timestamp, in exact integer arithmetic (no float ns)."""
    return F.expr(f"date_from_unix_date(CAST(({ts} - pmod({ts}, {NS_PER_DAY})) div {NS_PER_DAY} AS INT))")


def day_bounds_ns(date_from: date, date_to: date) -> tuple[int, int]:
    """[lo, hi) in ns covering the UTC days ``date_from .. date_to``."""
    return (date_from - EPOCH).days * NS_PER_DAY, ((date_to - EPOCH).days + 1) * NS_PER_DAY


def window_parser(doc: str) -> argparse.ArgumentParser:
    """A job's parser with the common ``--from``, ``--to`` and ``--symbols``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0],
                                     epilog="See the module docstring for the rules.")
    add_window_arguments(parser)
    return parser


def parse_window(parser: argparse.ArgumentParser, argv: list[str] | None = None):
    args = parser.parse_args(argv)
    if args.date_to < args.date_from:
        parser.error("--to is before --from")
    args.symbols = [s.strip() for s in args.symbols.split(",") if s.strip()] or None
    return args


def symbol_filter(symbols: Sequence[str] | None) -> Column:
    return F.col("symbol").isin(list(symbols)) if symbols else F.lit(True)


def keep_others(date_from: date, date_to: date, symbols: Sequence[str] | None) -> Column | None:
    """Rows a ``--symbols`` run must carry over: other symbols' rows of the window's dates."""
    if not symbols:
        return None
    return F.col("dt").between(F.lit(date_from), F.lit(date_to)) & ~F.col("symbol").isin(list(symbols))


def overwrite_partitions(df: DataFrame, table: str, keep: Column | None = None,
                         one_file_per: Sequence[str] = ()) -> None:
    """Replace exactly the partitions present in ``df`` (dynamic partition overwrite).

    ``keep`` selects existing rows to write back with ``df`` (a ``--symbols`` run replaces its
    symbols, not their neighbours in the same partitions). They are materialised first, because
    Spark cannot overwrite a table while it is still reading it.
    ``one_file_per``: the table's partition columns, for small outputs (bars, features), to
    write each partition from one task, so as one file: every task otherwise opens a file in
    every partition it has rows for, and those small files then cost every reader an open each
    (on HDFS, a NameNode call each).
    ``insertInto`` is positional, so the frame must have the table's columns in the table's order;
    anything else is refused rather than written into the wrong columns.
    """
    spark = df.sparkSession
    mode = spark.conf.get("spark.sql.sources.partitionOverwriteMode", "static")
    if mode.lower() != "dynamic":  # static overwrite would truncate every other partition
        raise RuntimeError(f"spark.sql.sources.partitionOverwriteMode is {mode!r}; batch jobs need "
                           "'dynamic' (set by tradelake.spark.get_spark)")
    have = [(f.name, f.dataType) for f in spark.table(table).schema.fields]
    want = [(f.name, f.dataType) for f in df.schema.fields]
    if have != want:
        raise RuntimeError(f"{table} has columns {have}, the job writes {want}")
    if keep is not None:
        others = spark.table(table).where(keep).localCheckpoint(eager=True)
        df = df.unionByName(others)
    if one_file_per:
        df = df.repartition(*one_file_per)
    df.write.insertInto(table, overwrite=True)
