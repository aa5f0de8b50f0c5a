"""Batch-layer benchmark: raw ticks -> deduplicated ticks -> bars (1m, 5m, 1h, 1d) -> features,
in Spark local[2] (the real jobs) and in DuckDB (the baseline) over the same input files.

    .venv/bin/python benchmarks/batch_etl.py [--ticks 10000000] [--also 1000000]

Needs the local stack (the Hive metastore in PostgreSQL and the Thrift server; started if down).
The lake of this run is a local directory (``var/bench/batch``, so DuckDB can read the very files
Spark reads) and the warehouse databases are ``bench_raw``, ``bench_curated``, ``bench_features``:
nothing of the real warehouse is touched.

Input: ``--ticks`` simulator trades over 21 trading days for 20 symbols, written as the lander
writes them (``raw/<topic>/dt=D/p<partition>-o<first>-o<last>.parquet``, Kafka provenance
columns), plus 0.5% re-delivered copies in extra files, which both sides must drop.

Timed on each side, with the session/connection already open (Spark's JVM start-up is not
counted; a spark-submit adds ~15 s to each job):
  Spark: ``etl_ticks.run`` (lander source) + ``bars.run`` + ``features.run(recursive=False)``,
         each writing its Hive table (Parquet) exactly as in production;
  DuckDB: the same dedup, bars and non-recursive features in SQL, writing Parquet.
Then ``features.run(recursive=True)`` is timed again: the difference is
``recursive_features_seconds`` (EMA, MACD, RSI, ATR through applyInPandas; DuckDB has no
counterpart, so those are checked by the unit tests' hand-computed values, not here). Compared
between the two sides: every row of ticks (price, size, ingest_ts), bars (all values) and features
(the windowed columns): equal keys, values within 1e-9 relative (1e-12 absolute near zero).
``analyst_query_ms``: the median of 5 warm runs of "a month of 1-minute bars -> daily VWAP per
symbol" through the Thrift server (pyhive).

Prints the JSON last and writes benchmarks/results/batch_etl.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from tqdm import tqdm  # noqa: E402

SYMBOLS = tuple(f"S{i:02d}" for i in range(20))
DAYS = 21
START = date(2026, 3, 2)  # a Monday
PARTITIONS = 3
DUPLICATE_FRACTION = 0.005
BENCH_DBS = {"raw_db": "bench_raw", "curated_db": "bench_curated", "features_db": "bench_features",
             "trading_db": "bench_trading"}
REL_TOL, ABS_TOL = 1e-9, 1e-12


def bench_env(lake: Path) -> dict[str, str]:
    env = {"TRADELAKE_LAKE__ROOT": lake.resolve().as_uri()}
    env.update({f"TRADELAKE_WAREHOUSE__{k.upper()}": v for k, v in BENCH_DBS.items()})
    return env


# -- input ---------------------------------------------------------------------------------------
def generate_raw(lake: Path, topic: str, ticks: int, seed: int = 11) -> dict:
    """Simulator trades -> lander-layout Parquet (with re-delivered duplicates) under ``lake``."""
    from ingestion.lake_layout import OffsetRange, parquet_options
    from ingestion.simulator import MarketSimulator, SimulatorConfig
    from tradelake.schemas import TRADE, arrow_schema

    per_day = max(1, ticks // (len(SYMBOLS) * DAYS))
    sim = MarketSimulator(SimulatorConfig(symbols=SYMBOLS, seed=seed, start_date=START, days=DAYS,
                                          trades_per_symbol_per_day=per_day, quotes_per_trade=0.0))
    schema = pa.schema([*arrow_schema(TRADE), pa.field("kafka_partition", pa.int32(), False),
                        pa.field("kafka_offset", pa.int64(), False)])
    offsets = [0] * PARTITIONS
    rng = np.random.default_rng(seed)
    rows = duplicates = 0
    by_day: dict[str, list[pa.RecordBatch]] = {}
    bar = tqdm(total=sim.total_ticks(), unit="ticks", desc="generate raw", leave=False)
    for kind, batch in sim.batches(max_rows=200_000, by_symbol=True):
        if kind != "trade":
            continue
        day = str(np.datetime64(int(batch.column(0)[0].as_py()), "ns").astype("datetime64[D]"))
        by_day.setdefault(day, []).append(batch)
        bar.update(batch.num_rows)
    bar.close()
    for day, batches in sorted(by_day.items()):
        table = pa.Table.from_batches(batches)
        # symbols keyed to partitions as the publisher keys them: each symbol in one partition
        part = _symbol_partition(table["symbol"])
        for p in range(PARTITIONS):
            chunk = table.filter(pa.array(part == p))
            if not chunk.num_rows:
                continue
            chunk = chunk.set_column(chunk.schema.get_field_index("ingest_ts"), "ingest_ts",
                                     pc.add(chunk["ts"], 2_000_000))
            copies = [chunk]
            n_dup = int(chunk.num_rows * DUPLICATE_FRACTION)
            if n_dup:  # the same events delivered again, later, as a separate message
                again = chunk.take(pa.array(np.sort(rng.choice(chunk.num_rows, n_dup, replace=False))))
                copies.append(again.set_column(again.schema.get_field_index("ingest_ts"), "ingest_ts",
                                               pc.add(again["ts"], 9_000_000_000)))
                duplicates += n_dup
            for piece in copies:
                first = offsets[p]
                offsets[p] += piece.num_rows
                out = piece.append_column("kafka_partition", pa.array([p] * piece.num_rows, pa.int32()))
                out = out.append_column("kafka_offset", pa.array(np.arange(first, offsets[p]), pa.int64()))
                out = out.cast(schema)
                name = OffsetRange(p, first, offsets[p] - 1).file_name
                folder = lake / "raw" / topic / f"dt={day}"
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(out, folder / name, compression="snappy", **parquet_options(out.schema))
                rows += out.num_rows
    return {"rows": rows, "unique": rows - duplicates, "duplicates": duplicates,
            "dates": sorted(by_day)}


def _symbol_partition(symbols: pa.ChunkedArray) -> np.ndarray:
    per_partition = -(-len(SYMBOLS) // PARTITIONS)
    index = {s: i // per_partition for i, s in enumerate(SYMBOLS)}
    return np.array([index[s] for s in symbols.to_pylist()])


# -- the DuckDB baseline ------------------------------------------------------------------------
def duckdb_pipeline(con, raw_glob: str, out: Path, date_from: date, date_to: date,
                    warmup: dict[str, int]) -> None:
    """Dedup -> ticks Parquet; 1m bars -> 5m/1h/1d; windowed features; all written as Parquet."""
    out.mkdir(parents=True, exist_ok=True)
    lo = (date_from - date(1970, 1, 1)).days * 86_400 * 10**9
    hi = ((date_to - date(1970, 1, 1)).days + 1) * 86_400 * 10**9
    day_ns = 86_400 * 10**9
    con.execute(f"""
        CREATE OR REPLACE TABLE ticks AS
        SELECT ts, symbol, price, size, trade_id, exchange, seq, side, conditions, ingest_ts,
               DATE '1970-01-01' + CAST(ts // {day_ns} AS INTEGER) AS dt
        FROM read_parquet('{raw_glob}')
        WHERE ts >= {lo} AND ts < {hi}
        QUALIFY row_number() OVER (PARTITION BY symbol, ts, seq ORDER BY ingest_ts NULLS LAST,
            kafka_partition NULLS LAST, kafka_offset NULLS LAST, price, size, trade_id, exchange NULLS FIRST,
            side NULLS FIRST, conditions NULLS FIRST) = 1""")
    con.execute(f"COPY ticks TO '{out / 'ticks'}' (FORMAT parquet, PARTITION_BY (dt), OVERWRITE_OR_IGNORE)")
    con.execute("""
        CREATE OR REPLACE TABLE m1 AS
        SELECT symbol, ts - ts % 60000000000 AS ts, arg_min(price, (ts, seq)) AS open, max(price) AS high,
               min(price) AS low, arg_max(price, (ts, seq)) AS close, sum(size) AS volume,
               sum(price * size) AS turnover, count(*) AS trade_count
        FROM ticks GROUP BY ALL""")
    parts = []
    for interval, length in (("5m", 300), ("1h", 3600), ("1d", 86400)):
        ns = length * 10**9
        parts.append(f"""SELECT symbol, ts - ts % {ns} AS ts, arg_min(open, ts) AS open, max(high) AS high,
               min(low) AS low, arg_max(close, ts) AS close, sum(volume) AS volume,
               sum(turnover) AS turnover, sum(trade_count) AS trade_count, '{interval}' AS interval
            FROM m1 GROUP BY symbol, ts - ts % {ns}""")
    con.execute(f"""
        CREATE OR REPLACE TABLE bars AS
        SELECT ts, symbol, open, high, low, close, volume,
               CASE WHEN volume > 0 THEN turnover / volume END AS vwap, trade_count::BIGINT AS trade_count,
               interval, DATE '1970-01-01' + CAST(ts // {day_ns} AS INTEGER) AS dt
        FROM (SELECT *, '1m' AS interval FROM m1 UNION ALL {' UNION ALL '.join(parts)})""")
    con.execute(f"COPY bars TO '{out / 'bars'}' (FORMAT parquet, PARTITION_BY (interval, dt), "
                "OVERWRITE_OR_IGNORE)")
    cases = " ".join(f"WHEN '{k}' THEN {v}" for k, v in warmup.items())
    con.execute(f"""
        CREATE OR REPLACE TABLE features AS
        WITH days AS (SELECT CAST(d AS DATE) AS as_of
                      FROM range(DATE '{date_from}', DATE '{date_to}' + INTERVAL 1 DAY, INTERVAL 1 DAY) t(d)),
        series AS (
            SELECT b.*, days.as_of FROM bars b JOIN days
              ON days.as_of >= b.dt AND days.as_of <= b.dt + CAST(CASE b.interval {cases} END AS INTEGER)),
        w AS (
            SELECT *,
              lag(close) OVER s AS prev_close,
              count(*) OVER w20 AS n20, count(*) OVER w10 AS n10, count(*) OVER w50 AS n50,
              avg(close) OVER w10 AS a10, avg(close) OVER w20 AS a20, avg(close) OVER w50 AS a50,
              stddev_pop(close) OVER w20 AS sd20,
              sum(coalesce(vwap * volume, 0)) OVER w20 AS pv20,
              sum(CASE WHEN vwap IS NULL THEN 0 ELSE volume END) OVER w20 AS v20
            FROM series
            WINDOW s AS (PARTITION BY symbol, interval, as_of ORDER BY ts),
                   w10 AS (s ROWS BETWEEN 9 PRECEDING AND CURRENT ROW),
                   w20 AS (s ROWS BETWEEN 19 PRECEDING AND CURRENT ROW),
                   w50 AS (s ROWS BETWEEN 49 PRECEDING AND CURRENT ROW)),
        r AS (
            SELECT *, close / prev_close - 1 AS ret, ln(close / prev_close) AS log_ret,
                   coalesce(sign(close - prev_close) * volume, 0) AS obv_step
            FROM w),
        f AS (
            SELECT *,
              sum(obv_step) OVER (PARTITION BY symbol, interval, as_of ORDER BY ts
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS obv,
              sum(log_ret * log_ret) OVER (PARTITION BY symbol, interval, as_of ORDER BY ts
                                           ROWS BETWEEN 19 PRECEDING AND CURRENT ROW) AS lr2,
              count(log_ret) OVER (PARTITION BY symbol, interval, as_of ORDER BY ts
                                   ROWS BETWEEN 19 PRECEDING AND CURRENT ROW) AS nlr
            FROM r)
        SELECT ts, symbol, open, high, low, close, volume, vwap, trade_count, ret, log_ret,
               CASE WHEN n10 = 10 THEN a10 END AS sma_10, CASE WHEN n20 = 20 THEN a20 END AS sma_20,
               CASE WHEN n50 = 50 THEN a50 END AS sma_50,
               CASE WHEN n20 = 20 THEN a20 END AS bb_mid,
               CASE WHEN n20 = 20 THEN a20 + 2 * sd20 END AS bb_upper,
               CASE WHEN n20 = 20 THEN a20 - 2 * sd20 END AS bb_lower,
               CASE WHEN n20 = 20 AND sd20 > 0 THEN (close - a20) / sd20 END AS zscore_20,
               obv,
               CASE WHEN n20 = 20 AND v20 > 0 THEN pv20 / v20 END AS vwap_20,
               CASE WHEN nlr = 20 THEN sqrt(lr2) END AS rv_20,
               interval, dt
        FROM f WHERE dt = as_of""")
    con.execute(f"COPY features TO '{out / 'features'}' (FORMAT parquet, PARTITION_BY (interval, dt), "
                "OVERWRITE_OR_IGNORE)")


# -- comparison ---------------------------------------------------------------------------------
def compare(con, spark_glob: str, duck_glob: str, keys: list[str], values: list[str]) -> dict:
    """Rows only on one side, and values differing beyond the tolerance (nulls must agree)."""
    on = " AND ".join(f"s.{k} = d.{k}" for k in keys)
    diffs = " OR ".join(
        f"(s.{v} IS NULL) <> (d.{v} IS NULL) OR abs(s.{v} - d.{v}) > "
        f"greatest({REL_TOL} * greatest(abs(s.{v}), abs(d.{v})), {ABS_TOL})" for v in values)
    sql = f"""
        WITH s AS (SELECT * FROM read_parquet('{spark_glob}', hive_partitioning = true)),
             d AS (SELECT * FROM read_parquet('{duck_glob}', hive_partitioning = true))
        SELECT count(*) FILTER (WHERE d.symbol IS NULL) AS only_spark,
               count(*) FILTER (WHERE s.symbol IS NULL) AS only_duckdb,
               count(*) FILTER (WHERE s.symbol IS NOT NULL AND d.symbol IS NOT NULL AND ({diffs})) AS differ,
               count(*) AS rows
        FROM s FULL OUTER JOIN d ON {on}"""
    only_spark, only_duck, differ, rows = con.execute(sql).fetchone()
    return {"rows": rows, "only_spark": only_spark, "only_duckdb": only_duck, "values_differ": differ}


# -- the run -------------------------------------------------------------------------------------
def analyst_query_ms(cfg, date_from: date, date_to: date, runs: int = 5) -> tuple[float, int]:
    import contextlib

    from tradelake.hive_client import connect_hive

    sql = (f"SELECT symbol, dt, sum(vwap * volume) / sum(volume) AS vwap "
           f"FROM {cfg.warehouse.curated_db}.bars "
           f"WHERE `interval` = '1m' AND dt BETWEEN DATE '{date_from}' AND DATE '{date_to}' AND volume > 0 "
           "GROUP BY symbol, dt")
    conn = connect_hive(cfg.hive)
    times, n = [], 0
    try:
        with contextlib.closing(conn.cursor()) as cur:
            cur.execute(f"REFRESH TABLE {cfg.warehouse.curated_db}.bars")
            for i in range(runs + 1):
                started = time.perf_counter()
                cur.execute(sql)
                n = len(cur.fetchall())
                if i:  # the first run warms the caches
                    times.append((time.perf_counter() - started) * 1000)
    finally:
        conn.close()
    return statistics.median(times), n


def run_size(ticks: int, work: Path, topic: str, stack_cfg) -> dict:
    import duckdb

    from spark_jobs import bars, etl_ticks, features
    from tradelake.config import load_config
    from tradelake.spark import get_spark

    lake = work / f"lake-{ticks}"
    shutil.rmtree(lake, ignore_errors=True)
    for key, value in bench_env(lake).items():
        os.environ[key] = value
    os.environ["TRADELAKE_INGEST__TOPICS__TRADES"] = topic
    cfg = load_config()
    print(f"[{ticks:,} ticks] generating the raw zone under {lake}", file=sys.stderr)
    gen = generate_raw(lake, topic, ticks)
    date_from, date_to = date.fromisoformat(gen["dates"][0]), date.fromisoformat(gen["dates"][-1])

    spark = get_spark("tradelake-bench-batch", cfg)
    for db in BENCH_DBS.values():  # a clean warehouse for this size (tables are external)
        spark.sql(f"DROP DATABASE IF EXISTS {db} CASCADE")
    timings = {}
    print(f"[{ticks:,} ticks] Spark: etl_ticks, bars, features (windowed)", file=sys.stderr)
    started = time.perf_counter()
    etl = etl_ticks.run(spark, cfg, date_from, date_to, source="lander")
    timings["etl_ticks"] = time.perf_counter() - started
    t = time.perf_counter()
    bar_summary = bars.run(spark, cfg, date_from, date_to)
    timings["bars"] = time.perf_counter() - t
    t = time.perf_counter()
    features.run(spark, cfg, date_from, date_to, recursive=False)
    timings["features_windowed"] = time.perf_counter() - t
    spark_seconds = time.perf_counter() - started
    print(f"[{ticks:,} ticks] Spark stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
          file=sys.stderr)
    t = time.perf_counter()
    features.run(spark, cfg, date_from, date_to, recursive=True)
    timings["features_all"] = time.perf_counter() - t

    print(f"[{ticks:,} ticks] DuckDB baseline", file=sys.stderr)
    duck_out = work / f"duckdb-{ticks}"
    shutil.rmtree(duck_out, ignore_errors=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    raw_glob = f"{lake}/raw/{topic}/*/*.parquet"
    started = time.perf_counter()
    duckdb_pipeline(con, raw_glob, duck_out, date_from, date_to, dict(cfg.warehouse.feature_warmup_days))
    duckdb_seconds = time.perf_counter() - started

    bar_values = ["open", "high", "low", "close", "volume", "vwap", "trade_count"]
    feature_values = ["ret", "log_ret", "sma_10", "sma_20", "sma_50", "bb_mid", "bb_upper", "bb_lower",
                      "zscore_20", "obv", "vwap_20", "rv_20"]
    checks = {
        "ticks": compare(con, f"{lake}/{cfg.warehouse.curated_db}/ticks/*/*.parquet",
                         f"{duck_out}/ticks/*/*.parquet", ["symbol", "ts", "seq"],
                         ["price", "size", "ingest_ts"]),
        "bars": compare(con, f"{lake}/{cfg.warehouse.curated_db}/bars/*/*/*.parquet",
                        f"{duck_out}/bars/*/*/*.parquet", ["symbol", "interval", "ts"], bar_values),
        "features": compare(con, f"{lake}/{cfg.warehouse.features_db}/bar_features/*/*/*.parquet",
                            f"{duck_out}/features/*/*/*.parquet", ["symbol", "interval", "ts"],
                            feature_values),
    }
    con.close()
    outputs_match = all(c["only_spark"] == 0 and c["only_duckdb"] == 0 and c["values_differ"] == 0
                        for c in checks.values()) and etl["rows_written"] == gen["unique"]
    query_ms, query_rows = analyst_query_ms(cfg, date_from, date_to)
    rows = gen["rows"]
    return {
        "ticks": rows, "unique_ticks": gen["unique"], "days": len(gen["dates"]), "symbols": len(SYMBOLS),
        "spark_seconds": round(spark_seconds, 2), "spark_rows_per_s": round(rows / spark_seconds),
        "duckdb_seconds": round(duckdb_seconds, 2), "duckdb_rows_per_s": round(rows / duckdb_seconds),
        "ratio_spark_over_duckdb": round(duckdb_seconds / spark_seconds, 3),
        "recursive_features_seconds": round(timings["features_all"] - timings["features_windowed"], 2),
        "outputs_match": outputs_match, "analyst_query_ms": round(query_ms, 1),
        "analyst_query_rows": query_rows, "spark_stage_seconds": {k: round(v, 2) for k, v in timings.items()},
        "bars_written": bar_summary["bars_written"], "checks": checks,
        "duplicates_removed": etl["duplicates_removed"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=10_000_000, help="raw ticks (default 10M)")
    parser.add_argument("--also", type=int, default=1_000_000,
                        help="a smaller size run first to show how cost grows (0: skip)")
    parser.add_argument("--keep", action="store_true", help="keep the generated lake and outputs")
    args = parser.parse_args(argv)

    from tradelake.config import load_config
    from tradelake.stack.manager import Stack

    base = load_config()
    Stack(base).up()
    work = base.var_dir / "bench" / "batch"
    sizes = [s for s in (args.also, args.ticks) if s]
    results = {}
    for size in sizes:
        results[size] = run_size(size, work, "bench.trades", base)
        print(json.dumps(results[size]), file=sys.stderr)
    main_result = dict(results[args.ticks])
    if len(results) > 1:
        small = results[args.also]
        main_result["growth"] = {
            "sizes": [small["ticks"], main_result["ticks"]],
            "spark_seconds": [small["spark_seconds"], main_result["spark_seconds"]],
            "duckdb_seconds": [small["duckdb_seconds"], main_result["duckdb_seconds"]],
            "spark_cost_per_10x_rows": round(main_result["spark_seconds"] / small["spark_seconds"], 2),
            "duckdb_cost_per_10x_rows": round(main_result["duckdb_seconds"] / small["duckdb_seconds"], 2),
        }
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "benchmarks" / "results" / "batch_etl.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = ["ticks", "spark_seconds", "spark_rows_per_s", "duckdb_seconds", "duckdb_rows_per_s",
            "ratio_spark_over_duckdb", "recursive_features_seconds", "outputs_match", "analyst_query_ms"]
    out.write_text(json.dumps(main_result, indent=2) + "\n")
    print(json.dumps({k: main_result[k] for k in keys} | {"details": str(out.relative_to(ROOT))}))
    return 0 if main_result["outputs_match"] else 1


if __name__ == "__main__":
    sys.exit(main())
