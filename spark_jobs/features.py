"""Batch layer: bars -> technical features, one output row per input bar, reproducible per date.

    source .venv/bin/activate
    spark-submit spark_jobs/features.py --from 2026-01-05 --to 2026-01-09 [--symbols AAPL] [--windowed-only]

Reads ``<warehouse.curated_db>.bars`` (from ``--from`` minus the longest warm-up), writes
``<warehouse.features_db>.bar_features`` (``hive/ddl/30_features.hql``), replacing exactly the
(interval, dt) partitions of the window (with ``--symbols``, other symbols' rows are carried over).
Warm-ups come from ``warehouse.feature_warmup_days``. Prints one JSON summary line prefixed
``FEATURES_RESULT``. ``--windowed-only`` leaves the recursive columns null (a quick refresh of the
window-function features; the benchmark times the recursive ones separately with it).

Determinism rule: every feature of a bar dated D (its ``dt``) is computed ONLY from the bars of the
same (symbol, interval) whose ``dt`` is in ``[D - warmup_days[interval], D]`` (calendar days,
inclusive). A date's output is therefore identical whether it is computed alone or within a longer
range, and a rerun of any sub-range reproduces the same rows bit for bit. ``as_of_series`` does it
by copying each bar into every target date ``as_of`` it serves (``as_of`` in ``[dt, dt + warmup]``
within the run's ``[date_from, date_to]``); a "series" is then the rows of one
(symbol, interval, as_of) ordered by ``ts`` (index t = 0, 1, 2, ...), every window function and
recursion runs per series, and the output keeps the rows with ``dt == as_of``. The price is that a
run holds each bar up to ``warmup + 1`` times; the first bars of a series see no history older than
the warm-up, so long windows need a warm-up that covers them (e.g. sma_50 on '1d' bars needs about
70 calendar days with weekends and holidays).

Input (``bars``): ts BIGINT (bar open time, UTC ns), symbol, interval ('1m', '5m', '1h', '1d'),
open, high, low, close, volume, vwap (null when volume is 0) DOUBLE, trade_count BIGINT and dt DATE
(UTC date of ts).

Features (all DOUBLE; n = window length in bars; "null while t < k" means the first valid index is k):
- ``ret`` = close_t / close_{t-1} - 1 and ``log_ret`` = ln(close_t / close_{t-1}); null at t = 0
  (and when close_{t-1} is 0, or for log_ret when the ratio is not positive).
- ``sma_10``, ``sma_20``, ``sma_50``: mean of the last n closes; null while t < n - 1.
- ``bb_mid`` = sma_20, ``bb_upper``/``bb_lower`` = bb_mid +/- 2 * sd_20, sd_20 the POPULATION
  standard deviation of the last 20 closes; null while t < 19.
- ``zscore_20`` = (close - sma_20) / sd_20; null while t < 19 and when sd_20 is 0.
- ``obv``: On-Balance Volume from the start of the series: obv_0 = 0,
  obv_t = obv_{t-1} + sign(close_t - close_{t-1}) * volume_t (a flat move adds 0).
- ``vwap_20`` = sum(vwap * volume) / sum(volume) over the last 20 bars; a bar with a null vwap adds
  0 to both sums (its volume is not counted either, so it cannot drag the average towards 0); null
  while t < 19 and when the volume sum is 0.
- ``rv_20``: realised volatility = sqrt(sum of the last 20 log_ret^2), not annualised; null unless
  those 20 log returns are all non-null (so null while t < 20).
- ``ema_10``, ``ema_20``, ``ema_50`` (TA-Lib convention): alpha = 2 / (n + 1), seeded at t = n - 1
  with the mean of the first n closes, then ema_t = alpha * close_t + (1 - alpha) * ema_{t-1}.
- ``macd`` = ema_12 - ema_26 (from t = 25); ``macd_signal`` = EMA_9 of macd seeded with the mean of
  its first 9 values (from t = 33); ``macd_hist`` = macd - macd_signal.
- ``rsi_14`` (Wilder): d_t = close_t - close_{t-1}, gain = max(d, 0), loss = max(-d, 0); at t = 14
  avg_gain/avg_loss = mean of gain/loss over t = 1..14, then avg_t = (avg_{t-1} * 13 + x_t) / 14;
  RSI = 100 - 100 / (1 + avg_gain / avg_loss), or when avg_loss is 0: 100 if avg_gain > 0 else 50.
- ``atr_14`` (Wilder): TR_t = max(high_t - low_t, |high_t - close_{t-1}|, |low_t - close_{t-1}|)
  for t >= 1; ATR_14 = mean(TR_1..TR_14) at t = 14, then ATR_t = (ATR_{t-1} * 13 + TR_t) / 14.
The first group (WINDOWED_COLUMNS) uses built-in window functions only; the recursive group
(RECURSIVE_COLUMNS) runs in ``applyInPandas``, one call per series, with numpy inside.

Transform functions: ``windowed_features`` (one pass per (symbol, interval) series, the warm-up
rule applied as masks, no copies) and ``as_of_series`` -> ``recursive_features`` (copies, one
pandas call per (symbol, interval, as_of)), joined by ``transform``, which returns OUTPUT_COLUMNS
(``interval`` and ``dt``, the partition columns, last). OBV is a difference of running sums: exact
for whole volumes (share counts); with fractional volumes a date computed alone and in a range
can differ in the last bits of ``obv``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta
from itertools import chain

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window, WindowSpec
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hive.warehouse import ensure_tables
from spark_jobs.batch import keep_others, overwrite_partitions, parse_window, symbol_filter, window_parser
from tradelake.config import Config, load_config
from tradelake.spark import get_spark

SERIES_KEY = ("symbol", "interval", "as_of")
SMA_WINDOWS = (10, 20, 50)
EMA_WINDOWS = (10, 20, 50)
BB_WINDOW, BB_WIDTH = 20, 2.0
ZSCORE_WINDOW = VWAP_WINDOW = RV_WINDOW = 20
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
RSI_WINDOW = ATR_WINDOW = 14

WINDOWED_COLUMNS = [
    "ret", "log_ret", *[f"sma_{n}" for n in SMA_WINDOWS], "bb_mid", "bb_upper", "bb_lower",
    f"zscore_{ZSCORE_WINDOW}", "obv", f"vwap_{VWAP_WINDOW}", f"rv_{RV_WINDOW}",
]
RECURSIVE_COLUMNS = [
    *[f"ema_{n}" for n in EMA_WINDOWS], "macd", "macd_signal", "macd_hist",
    f"rsi_{RSI_WINDOW}", f"atr_{ATR_WINDOW}",
]
OUTPUT_COLUMNS = ["ts", "symbol", "open", "high", "low", "close", "volume", "vwap", "trade_count",
                  *WINDOWED_COLUMNS, *RECURSIVE_COLUMNS, "interval", "dt"]

_START = "_start"  # the first date of a bar's warm-up window; dropped on return


# -- as_of explosion -------------------------------------------------------------------------
def _in_reach(date_from: date, date_to: date, warmup_days: dict[str, int]) -> Column:
    """Bars that could serve a target date under the longest warm-up (a plain dt range, so a
    dt-partitioned source prunes its folders)."""
    earliest = date_from - timedelta(days=max(warmup_days.values()))
    return F.col("dt").between(F.lit(earliest), F.lit(date_to))


def _check_warmup(bars: DataFrame, date_from: date, date_to: date, warmup_days: dict[str, int]) -> None:
    """Fail early, in the driver, on a bad window or an interval of the run without a warm-up."""
    if date_to < date_from:
        raise ValueError(f"date_to {date_to} is before date_from {date_from}")
    if not warmup_days:
        raise ValueError("warmup_days is empty: give every interval of the run a warm-up (0 for none)")
    negative = {k: v for k, v in warmup_days.items() if v < 0}
    if negative:
        raise ValueError(f"warmup_days must be 0 or more: {negative}")
    # only the bars in reach are looked at, so the check costs a pruned scan, not the whole history
    in_reach = bars.where(_in_reach(date_from, date_to, warmup_days))
    seen = {row["interval"] for row in in_reach.select("interval").distinct().collect()}
    missing = sorted(seen - set(warmup_days), key=str)
    if missing:
        raise ValueError(f"no warmup_days for interval(s) {', '.join(map(repr, missing))}")


def as_of_series(bars: DataFrame, date_from: date, date_to: date, warmup_days: dict[str, int],
                 checked: bool = False) -> DataFrame:
    """Each bar once per target date it serves, with that date as ``as_of`` (DATE).

    ``as_of`` runs over ``[dt, dt + warmup_days[interval]] ∩ [date_from, date_to]``; a bar serving
    no target date (too old, or dated after ``date_to``) is dropped. Raises ValueError for an
    interval without a warm-up (looked for among the bars dated up to the longest warm-up before
    ``date_from``), a negative warm-up or ``date_to < date_from``.
    """
    if not checked:
        _check_warmup(bars, date_from, date_to, warmup_days)
    warmup = F.create_map(*chain.from_iterable(
        (F.lit(k), F.lit(int(v))) for k, v in sorted(warmup_days.items())))[F.col("interval")]
    first = F.greatest(F.col("dt"), F.lit(date_from))
    last = F.least(F.date_add(F.col("dt"), warmup), F.lit(date_to))
    return (bars.where(_in_reach(date_from, date_to, warmup_days)).where(first <= last)
            .select("*", F.explode(F.sequence(first, last)).alias("as_of")))


# -- windowed features (built-in window functions) -------------------------------------------
# They are computed once per (symbol, interval) over the continuous bars, not per as_of series:
# a window of k bars ending at a bar dated D holds exactly the rows the as_of = D series would
# hold iff its oldest row is dated D - warmup or later, and the feature is null otherwise, which
# is what the as_of series would give (a window that is not full). So no bar is copied.
def _bars() -> WindowSpec:
    return Window.partitionBy("symbol", "interval").orderBy("ts")


def _last(n: int) -> WindowSpec:
    """The current bar and the n - 1 before it."""
    return _bars().rowsBetween(-(n - 1), Window.currentRow)


def _reaches(back: int) -> Column:
    """The bar ``back`` rows before this one exists and lies in this bar's warm-up window."""
    return F.lag("dt", back).over(_bars()) >= F.col(_START)


def _ratio(num: Column, den: Column) -> Column:
    # null, not an ANSI divide-by-zero error, for a zero denominator
    return F.when(den != 0, num / den)


def _sma(n: int) -> Column:
    return F.when(_reaches(n - 1), F.avg("close").over(_last(n)))


def _sd(n: int) -> Column:
    return F.when(_reaches(n - 1), F.stddev_pop("close").over(_last(n)))


def _bollinger() -> list[Column]:
    mid, sd = _sma(BB_WINDOW), _sd(BB_WINDOW)
    return [mid.alias("bb_mid"), (mid + BB_WIDTH * sd).alias("bb_upper"),
            (mid - BB_WIDTH * sd).alias("bb_lower")]


def _zscore(n: int) -> Column:
    return _ratio(F.col("close") - _sma(n), _sd(n))


def _vwap(n: int) -> Column:
    return F.when(_reaches(n - 1), _ratio(F.sum("_pv").over(_last(n)), F.sum("_v").over(_last(n))))


def _rv(n: int) -> Column:
    # n log returns need n + 1 bars in reach (the first bar of a series has no return)
    frame = _last(n)
    return F.when(_reaches(n) & (F.count("log_ret").over(frame) == n),
                  F.sqrt(F.sum(F.col("log_ret") ** 2).over(frame)))


def _obv(with_running: DataFrame, warmup_days: dict[str, int]) -> DataFrame:
    """obv = the running sum of the steps from the first bar of the bar's warm-up window on
    (that bar's own step counts 0): running(t) - running(first bar in reach). Exact for whole
    volumes (share counts); for fractional volumes the difference can move in the last bits."""
    days = (with_running.groupBy("symbol", "interval", "dt")
            .agg(F.min_by("_run", "ts").alias("_run_at_open")))
    target, source = days.alias("t"), days.alias("s")
    reach = F.date_sub(F.col("t.dt"), warmup_for("t.interval", warmup_days))
    start = (target.join(source, (F.col("t.symbol") == F.col("s.symbol"))
                         & (F.col("t.interval") == F.col("s.interval"))
                         & F.col("s.dt").between(reach, F.col("t.dt")))
             .groupBy("t.symbol", "t.interval", "t.dt")
             .agg(F.min_by("s._run_at_open", "s.dt").alias("_run_at_start")))
    return (with_running.join(F.broadcast(start), ["symbol", "interval", "dt"])
            .withColumn("obv", F.col("_run") - F.col("_run_at_start")))


def warmup_for(interval: str, warmup_days: dict[str, int]) -> Column:
    """The warm-up (days) of the bar length in column ``interval``."""
    return F.create_map(*chain.from_iterable(
        (F.lit(k), F.lit(int(v))) for k, v in sorted(warmup_days.items())))[F.col(interval)]


def windowed_features(bars: DataFrame, warmup_days: dict[str, int]) -> DataFrame:
    """``bars`` with WINDOWED_COLUMNS added (every row; the caller keeps the dates it wants)."""
    prev_close = F.lag("close").over(_bars())
    growth = F.when(_reaches(1), _ratio(F.col("close"), prev_close))
    no_vwap = F.col("vwap").isNull()
    step = F.coalesce(F.signum(F.col("close") - prev_close), F.lit(0.0)) * F.col("volume")
    base = bars.select(
        "*",
        F.date_sub(F.col("dt"), warmup_for("interval", warmup_days)).alias(_START),
        F.when(no_vwap, F.lit(0.0)).otherwise(F.col("vwap") * F.col("volume")).alias("_pv"),
        F.when(no_vwap, F.lit(0.0)).otherwise(F.col("volume")).alias("_v"),
        F.sum(step).over(_bars().rowsBetween(Window.unboundedPreceding, Window.currentRow)).alias("_run"),
    ).select("*", (growth - 1).alias("ret"), F.ln(growth).alias("log_ret"))
    # projections in steps because some windows read earlier window results (_START, log_ret);
    # all use the same partitioning and order, so Spark shuffles and sorts once for them
    out = base.select(
        *bars.columns, "_run", "ret", "log_ret",
        *[_sma(n).alias(f"sma_{n}") for n in SMA_WINDOWS],
        *_bollinger(),
        _zscore(ZSCORE_WINDOW).alias(f"zscore_{ZSCORE_WINDOW}"),
        _vwap(VWAP_WINDOW).alias(f"vwap_{VWAP_WINDOW}"),
        _rv(RV_WINDOW).alias(f"rv_{RV_WINDOW}"),
    )
    return _obv(out, warmup_days).select(*bars.columns, *WINDOWED_COLUMNS)


# -- recursive features (grouped pandas, one call per series) --------------------------------
def _ema(x: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib EMA from x's first non-NaN value s on: the mean of x[s..s+n-1] at s + n - 1, then
    alpha * x_t + (1 - alpha) * ema_{t-1}. NaN elsewhere (lets macd_signal start where macd does)."""
    out = np.full(len(x), np.nan)
    valid = np.flatnonzero(~np.isnan(x))
    if not len(valid) or valid[0] + n > len(x):
        return out
    start = int(valid[0])
    seed = start + n - 1
    alpha = 2.0 / (n + 1)
    out[seed] = x[start:seed + 1].mean()
    for t in range(seed + 1, len(x)):
        out[t] = alpha * x[t] + (1 - alpha) * out[t - 1]
    return out


def _wilder(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder smoothing of x_1, x_2, ... (x_0 is ignored: it has no previous bar): the mean of
    x_1..x_n at t = n, then (avg_{t-1} * (n - 1) + x_t) / n. NaN before t = n."""
    out = np.full(len(x), np.nan)
    if len(x) <= n:
        return out
    out[n] = x[1:n + 1].mean()
    for t in range(n + 1, len(x)):
        out[t] = (out[t - 1] * (n - 1) + x[t]) / n
    return out


def _rsi(close: np.ndarray, n: int) -> np.ndarray:
    move = np.diff(close, prepend=np.nan)
    gain, loss = _wilder(np.fmax(move, 0.0), n), _wilder(np.fmax(-move, 0.0), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100.0 - 100.0 / (1.0 + gain / loss)
    flat = np.where(gain > 0, 100.0, 50.0)  # no losses at all: up only, or no move at all
    return np.where(np.isnan(gain), np.nan, np.where(loss == 0, flat, rsi))


def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    prev = np.concatenate(([np.nan], close[:-1]))
    true_range = np.fmax.reduce([high - low, np.abs(high - prev), np.abs(low - prev)])
    return _wilder(true_range, n)


def _recursive_frame(pdf: pd.DataFrame) -> pd.DataFrame:
    """``applyInPandas`` body: one series in, the same rows (ordered by ts) with RECURSIVE_COLUMNS."""
    pdf = pdf.sort_values("ts", kind="stable", ignore_index=True)
    close = pdf["close"].to_numpy(dtype="float64")
    high, low = pdf["high"].to_numpy(dtype="float64"), pdf["low"].to_numpy(dtype="float64")
    macd = _ema(close, MACD_FAST) - _ema(close, MACD_SLOW)
    signal = _ema(macd, MACD_SIGNAL)
    features = {f"ema_{n}": _ema(close, n) for n in EMA_WINDOWS}
    features.update({
        "macd": macd, "macd_signal": signal, "macd_hist": macd - signal,
        f"rsi_{RSI_WINDOW}": _rsi(close, RSI_WINDOW),
        f"atr_{ATR_WINDOW}": _atr(high, low, close, ATR_WINDOW),
    })
    return pdf.assign(**features)  # NaN goes back to Spark as null


def recursive_features(series: DataFrame) -> DataFrame:
    """``series`` with RECURSIVE_COLUMNS added, computed per (symbol, interval, as_of) in pandas."""
    clash = sorted(set(series.columns) & set(RECURSIVE_COLUMNS))
    if clash:
        raise ValueError(f"series already has recursive columns {clash}")
    schema = T.StructType([*series.schema.fields,
                           *[T.StructField(c, T.DoubleType(), True) for c in RECURSIVE_COLUMNS]])
    return series.groupBy(*SERIES_KEY).applyInPandas(_recursive_frame, schema)


def _null_recursive(series: DataFrame) -> DataFrame:
    return series.select("*", *[F.lit(None).cast("double").alias(c) for c in RECURSIVE_COLUMNS])


def transform(bars: DataFrame, date_from: date, date_to: date, warmup_days: dict[str, int],
              recursive: bool = True) -> DataFrame:
    """Bars -> OUTPUT_COLUMNS for the bars dated ``date_from..date_to`` (see the module doc).

    The windowed columns come from one pass over each (symbol, interval) series; only the
    recursive ones need the as_of copies (``as_of_series``). With ``recursive=False`` the
    recursive columns are null and no bar is copied.
    """
    _check_warmup(bars, date_from, date_to, warmup_days)
    # each interval back to its own warm-up only (both are partition columns: folders are pruned)
    own_reach = F.col("dt") >= F.date_sub(F.lit(date_from), warmup_for("interval", warmup_days))
    in_reach = bars.where(_in_reach(date_from, date_to, warmup_days) & own_reach)
    windowed = (windowed_features(in_reach, warmup_days)
                .where(F.col("dt").between(F.lit(date_from), F.lit(date_to))))
    if not recursive:
        return _null_recursive(windowed).select(*OUTPUT_COLUMNS)
    series = as_of_series(in_reach, date_from, date_to, warmup_days, checked=True)
    rec = (recursive_features(series.select("ts", *SERIES_KEY, "dt", "high", "low", "close"))
           .where(F.col("dt") == F.col("as_of"))
           .select("symbol", "interval", "ts", *RECURSIVE_COLUMNS))
    return windowed.join(rec, ["symbol", "interval", "ts"]).select(*OUTPUT_COLUMNS)


# -- extract / load / the job -----------------------------------------------------------------
def extract(spark: SparkSession, bars_table: str, date_from: date, date_to: date,
            warmup_days: dict[str, int], symbols: Sequence[str] | None = None) -> DataFrame:
    """The bars the window's dates can reach (pruned to their ``dt`` folders)."""
    return spark.table(bars_table).where(_in_reach(date_from, date_to, warmup_days) & symbol_filter(symbols))


def load(features: DataFrame, cfg: Config, date_from: date, date_to: date,
         symbols: Sequence[str] | None = None) -> str:
    table = f"{cfg.warehouse.features_db}.bar_features"
    ensure_tables(features.sparkSession, cfg, [table])
    overwrite_partitions(features, table, keep_others(date_from, date_to, symbols),
                         one_file_per=("interval", "dt"))
    return table


def run(spark: SparkSession, cfg: Config, date_from: date, date_to: date,
        symbols: Sequence[str] | None = None, recursive: bool = True) -> dict:
    started = time.monotonic()
    warmup = dict(cfg.warehouse.feature_warmup_days)
    bars = extract(spark, f"{cfg.warehouse.curated_db}.bars", date_from, date_to, warmup, symbols)
    obs = Observation("features")
    features = transform(bars, date_from, date_to, warmup, recursive=recursive).observe(
        obs, F.count(F.lit(1)).alias("rows"), F.sort_array(F.collect_set("interval")).alias("intervals"),
        F.sort_array(F.collect_set(F.col("dt").cast("string"))).alias("dates"))
    table = load(features, cfg, date_from, date_to, symbols)
    got = obs.get
    return {"table": table, "from": date_from.isoformat(), "to": date_to.isoformat(),
            "symbols": list(symbols) if symbols else None, "recursive": recursive,
            "rows_written": int(got["rows"]), "intervals": list(got["intervals"]),
            "dates": list(got["dates"]), "warmup_days": warmup,
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = window_parser(__doc__)
    parser.add_argument("--windowed-only", action="store_true",
                        help="leave the recursive indicators (EMA, MACD, RSI, ATR) null")
    args = parse_window(parser, argv)
    cfg = load_config()
    spark = get_spark("tradelake-features", cfg)
    summary = run(spark, cfg, args.date_from, args.date_to, args.symbols, recursive=not args.windowed_only)
    print("FEATURES_RESULT " + json.dumps(summary), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
