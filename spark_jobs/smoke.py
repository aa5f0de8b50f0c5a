"""Smoke job: create a partitioned Hive table on the lake through the shared metastore.

    source .venv/bin/activate
    spark-submit spark_jobs/smoke.py --table default.tradelake_smoke --rows 1000

(``tradelake stack up`` writes spark-defaults.conf/spark-env.sh for the venv's spark-submit, so
no further flags are needed on the local stack; on a cluster add ``--master yarn`` and
``--py-files dist/tradelake.zip``.) Prints one JSON summary line prefixed ``SMOKE_RESULT``.
"""

from __future__ import annotations

import argparse
import json
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tradelake.spark import get_spark

SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN"]


def extract(spark: SparkSession, rows: int) -> DataFrame:
    """Deterministic rows: id, symbol (round-robin), a price and a trading day."""
    return spark.range(rows).withColumnRenamed("id", "seq")


def transform(df: DataFrame, symbols: list[str]) -> DataFrame:
    symbol = F.element_at(F.array(*[F.lit(s) for s in symbols]),
                          (F.col("seq") % len(symbols) + 1).cast("int"))
    return df.select(
        F.col("seq"),
        symbol.alias("symbol"),
        (F.lit(100.0) + F.col("seq") / 100.0).alias("price"),
        F.date_add(F.lit("2026-01-05").cast("date"), (F.col("seq") % 3).cast("int")).alias("dt"),
    )


def load(df: DataFrame, table: str) -> None:
    """Create the table once, then replace exactly the partitions in ``df`` (a rerun is a no-op)."""
    spark = df.sparkSession
    database = table.split(".")[0] if "." in table else "default"
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {table} (seq BIGINT, symbol STRING, price DOUBLE, dt DATE) "
        "USING parquet PARTITIONED BY (dt)"
    )
    df.write.insertInto(table, overwrite=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="default.tradelake_smoke")
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    spark = get_spark("tradelake-smoke")
    load(transform(extract(spark, args.rows), SYMBOLS), args.table)
    written = spark.table(args.table)
    location = spark.sql(f"DESCRIBE FORMATTED {args.table}").where("col_name = 'Location'")
    summary = {
        "table": args.table,
        "rows": written.count(),
        "partitions": [r[0] for r in spark.sql(f"SHOW PARTITIONS {args.table}").collect()],
        "location": location.first()["data_type"],
    }
    print("SMOKE_RESULT " + json.dumps(summary), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
