"""Intelligence models from the bar features -> the lake's model registry (+ metrics in Hive).

    source .venv/bin/activate
    spark-submit spark_jobs/train.py --from 2026-01-05 --to 2026-01-09 [--symbols AAPL,MSFT] \\
        [--interval 1m] [--models forecast,alpha,risk,portfolio] [--features ret,zscore_20,...] \\
        [--weights AAPL=0.5,MSFT=0.5] [--folds 4] [--purge-bars 10]

Reads the ``<warehouse.features_db>.bar_features`` rows of one ``--interval`` dated
``--from..--to`` (``spark_jobs/features.py``) and trains, pooled over the symbols (one model for
all of them), each model named ``<kind>_<interval>``:
- ``forecast``: next-bar return regression (Spark ML LinearRegression) and
- ``alpha``: next-bar direction classifier (Spark ML LogisticRegression), both on the scale-free
  features of ``spark_jobs/model_features.py`` (``spark_jobs/train_linear.py``);
- ``risk``: historical and Gaussian VaR / ES per symbol and per portfolio, EWMA volatility;
- ``portfolio``: minimum-variance, risk-parity and mean-variance weights with position caps
  (both ``spark_jobs/train_risk.py``).

Labels (no look-ahead): within each (symbol, interval) series ordered by ``ts``,
``label`` = the next bar's ``ret`` (``lead(ret)``: close_t+1 / close_t - 1), ``label_ts`` = its
``ts``, ``direction`` = 1.0 if label > 0 else 0.0 (a flat bar counts as "not up"). The last bar of
a symbol in the window has no label (the window's end is never looked past). Features of a bar
use only bars up to it (features.py), so a row's inputs precede its label.

Walk-forward validation (``spark_jobs/walk_forward.py``): the window's bar times are cut into
``folds + 1`` blocks; fold i trains on the blocks before i (expanding, or the last
``models.train_blocks``), drops ``purge_bars`` bar times, and tests on the rest of block i;
training rows whose label reaches the test block are dropped too. Metrics per fold and pooled
over the folds (``overall``); the registered model is then fitted on the whole window.

Output: one registry version per model (``spark_jobs/model_registry.py``: ``manifest.json``
and, for forecast/alpha, the Spark ML ``PipelineModel`` in ``spark_model/``), the metrics
appended to ``<warehouse.trading_db>.model_metrics`` (``hive/ddl/60_models.hql``), and one JSON
summary line prefixed ``TRAIN_RESULT``. Settings: the profile's ``models:`` section. Progress
lines go to stderr, prefixed ``[train]``.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

import numpy as np
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hive.warehouse import ensure_tables
from spark_jobs import model_features, train_linear, train_risk
from spark_jobs import walk_forward as wf
from spark_jobs.batch import parse_window, symbol_filter, window_parser
from spark_jobs.model_registry import SPARK_MODEL, Registry
from tradelake.config import Config, load_config
from tradelake.spark import get_spark

KINDS = ("forecast", "alpha", "risk", "portfolio")
METRIC_COLUMNS = ["version", "run_id", "kind", "interval", "train_from", "train_to", "scope", "fold",
                  "subject", "metric", "value", "created_at", "model"]
METRIC_SCHEMA = T.StructType([
    T.StructField("version", T.IntegerType()), T.StructField("run_id", T.StringType()),
    T.StructField("kind", T.StringType()), T.StructField("interval", T.StringType()),
    T.StructField("train_from", T.DateType()), T.StructField("train_to", T.DateType()),
    T.StructField("scope", T.StringType()), T.StructField("fold", T.IntegerType()),
    T.StructField("subject", T.StringType()), T.StructField("metric", T.StringType()),
    T.StructField("value", T.DoubleType()), T.StructField("created_at", T.LongType()),
    T.StructField("model", T.StringType())])


class TrainError(ValueError):
    """The window cannot be trained on (no rows, too few bar times...); the message says why."""


def _progress(message: str) -> None:
    print(f"[train] {message}", file=sys.stderr, flush=True)


# -- extract / transform ---------------------------------------------------------------------
def extract(spark: SparkSession, table: str, date_from: date, date_to: date, interval: str,
            symbols: Sequence[str] | None = None) -> DataFrame:
    """The window's bar_features rows of one interval (pruned to its partitions)."""
    return spark.table(table).where((F.col("interval") == interval)
                                    & F.col("dt").between(F.lit(date_from), F.lit(date_to))
                                    & symbol_filter(symbols))


def with_labels(bars: DataFrame) -> DataFrame:
    """``bars`` with ``label_ts``, ``label`` and ``direction`` (the module doc's definitions)."""
    series = Window.partitionBy("symbol", "interval").orderBy("ts")
    label = F.lead("ret").over(series)
    return bars.select("*", F.lead("ts").over(series).alias("label_ts"), label.alias("label")).withColumn(
        "direction", F.when(F.col("label") > 0, 1.0).when(F.col("label").isNotNull(), 0.0))


def complete(features: Sequence[model_features.Feature]) -> F.Column:
    """Rows with a label and every feature defined (what the models train and are scored on)."""
    cond = F.col("label").isNotNull()
    for f in features:
        value = F.expr(f.sql())
        cond = cond & value.isNotNull() & ~F.isnan(value)
    return cond


def bar_times(bars: DataFrame) -> list[int]:
    return [r[0] for r in bars.select("ts").distinct().orderBy("ts").collect()]


def returns_matrix(bars: DataFrame) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(bar times, symbols, returns[time, symbol]) with NaN where a symbol has no return."""
    symbols = sorted(r[0] for r in bars.select("symbol").distinct().collect())
    wide = (bars.groupBy("ts").pivot("symbol", symbols).agg(F.first("ret")).orderBy("ts")).collect()
    times = np.array([r["ts"] for r in wide], dtype="int64")
    matrix = np.array([[np.nan if r[s] is None else r[s] for s in symbols] for r in wide], dtype="float64")
    return times, symbols, matrix.reshape(len(wide), len(symbols))


# -- metrics rows for Hive -------------------------------------------------------------------
def metric_rows(scope: str, values: dict, fold: int | None = None, subject: str | None = None) -> list[tuple]:
    """(scope, fold, subject, metric, value) for each number in ``values`` (nested dicts are
    flattened by ``flatten_subjects``; strings, lists and bounds are not metrics)."""
    skip = {"index", "train_from", "train_to", "test_from", "test_to"}
    return [(scope, fold, subject, k, float(v)) for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in skip]


def linear_rows(folds: list[dict], overall: dict, in_sample: dict) -> list[tuple]:
    rows = [r for f in folds for r in metric_rows("fold", f, fold=f["index"])]
    return rows + metric_rows("overall", overall) + metric_rows("in_sample", in_sample)


def risk_rows(content: dict) -> list[tuple]:
    rows = [r for s, v in content["symbols"].items() for r in metric_rows("symbol", v, subject=s)]
    rows += [r for p, v in content["portfolios"].items() for r in metric_rows("portfolio", v, subject=p)]
    rows += [r for f in content["folds"] for s, v in f["subjects"].items()
             for r in metric_rows("fold", v, fold=f["index"], subject=s)]
    return rows + [r for s, v in content["overall"].items() for r in metric_rows("overall", v, subject=s)]


def portfolio_rows(content: dict) -> list[tuple]:
    rows = []
    for method, v in content["methods"].items():
        rows += metric_rows("portfolio", v, subject=method)
        rows += [("weight", None, symbol, method, w) for symbol, w in v["weights"].items()]
    rows += [r for f in content["folds"] for m, v in f.get("methods", {}).items()
             for r in metric_rows("fold", v, fold=f["index"], subject=m)]
    return rows + [r for m, v in content["overall"].items() for r in metric_rows("overall", v, subject=m)]


# -- load ------------------------------------------------------------------------------------
def save_metrics(spark: SparkSession, cfg: Config, rows: list[tuple]) -> str:
    """Append rows (METRIC_COLUMNS order) to the metrics table: a new version adds rows, never
    replaces any."""
    table = f"{cfg.warehouse.trading_db}.model_metrics"
    ensure_tables(spark, cfg, [table])
    have = [f.name for f in spark.table(table).schema.fields]
    if have != METRIC_COLUMNS:
        raise RuntimeError(f"{table} has columns {have}, train.py writes {METRIC_COLUMNS}")
    spark.createDataFrame(rows, METRIC_SCHEMA).write.insertInto(table, overwrite=False)
    return table


# -- the job ---------------------------------------------------------------------------------
def train_linear_model(kind: str, data: DataFrame, features, folds, cfg: Config) -> tuple:
    """(fitted PipelineModel, manifest fields, Hive rows) of a forecast or alpha model."""
    per_fold, overall = train_linear.walk_forward(kind, data, features, folds, cfg.models, _progress)
    model = train_linear.pipeline(kind, features, cfg.models).fit(data)
    in_sample = train_linear.metrics(kind, train_linear.scored(kind, model, data))
    headline = ({k: overall.get(k) for k in ("ic", "r2", "rmse")} if kind == "forecast"
                else {k: overall.get(k) for k in ("auc", "accuracy", "up_rate")})
    fields = {
        "inputs": list(model_features.inputs(features)),
        "features": [f.to_json() for f in features],
        "label": {"column": train_linear.TARGET[kind], "definition": "next bar's ret within the "
                  "(symbol, interval) series" + ("" if kind == "forecast" else "; 1.0 if > 0 else 0.0"),
                  "horizon_bars": 1},
        "model": {**train_linear.exported(kind, model, features, cfg.models), "spark_model": SPARK_MODEL},
        "metrics": {"overall": overall, "in_sample": in_sample, "folds": per_fold},
        "headline": headline,
    }
    return model, fields, linear_rows(per_fold, overall, in_sample)


def run(spark: SparkSession, cfg: Config, date_from: date, date_to: date,
        symbols: Sequence[str] | None = None, interval: str = "1m", kinds: Sequence[str] = KINDS,
        feature_names: Sequence[str] | None = None, weights: dict[str, float] | None = None,
        n_folds: int | None = None, purge: int | None = None) -> dict:
    started = time.monotonic()
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise TrainError(f"unknown model kind(s) {unknown}; known: {', '.join(KINDS)}")
    mc = cfg.models
    n_folds, purge = n_folds or mc.folds, purge or mc.purge_bars
    features = model_features.select(feature_names)
    source = f"{cfg.warehouse.features_db}.bar_features"
    bars = extract(spark, source, date_from, date_to, interval, symbols).cache()
    times = bar_times(bars)
    if not times:
        which = f" for {list(symbols)}" if symbols else ""
        raise TrainError(f"no {source} rows for interval {interval!r} dated {date_from}..{date_to}{which}: "
                         "run spark_jobs/features.py first")
    try:
        folds = wf.folds(times, n_folds, purge, mc.train_blocks)
    except ValueError as exc:
        raise TrainError(str(exc)) from exc
    _progress(f"{source} {interval} {date_from}..{date_to}: {len(times)} bar times, "
              f"{n_folds} folds, purge {purge} bar times")
    run_id, created = uuid.uuid4().hex[:12], datetime.now(UTC)
    registry = Registry.of(cfg)
    common = {"interval": interval, "run_id": run_id, "created_at": created.isoformat(timespec="seconds"),
              "training_range": {"from": date_from.isoformat(), "to": date_to.isoformat(),
                                 "first_ts": times[0], "last_ts": times[-1], "bar_times": len(times)},
              "source": {"table": source, "symbols": list(symbols) if symbols else "all"},
              "validation": {"scheme": "walk-forward, " + (f"rolling {mc.train_blocks} blocks"
                                                          if mc.train_blocks else "expanding"),
                             "folds": n_folds, "purge_bars": purge, "bounds": [f.to_json() for f in folds]}}
    staged: list[tuple[dict, list[tuple]]] = []  # (manifest, metric rows), committed at the end
    summary_models: dict[str, dict] = {}

    data = None
    if {"forecast", "alpha"} & set(kinds):
        data = with_labels(bars).where(complete(features)).cache()
        n_rows = data.count()
        _progress(f"{n_rows} complete labelled rows ({len(features)} features)")
        if not n_rows:
            raise TrainError("no row has every feature and a label (warm-up too short for the window?)")
    matrix = None
    if {"risk", "portfolio"} & set(kinds):
        matrix = returns_matrix(bars)
    for kind in (k for k in KINDS if k in kinds):
        t0 = time.monotonic()
        name = f"{kind}_{interval}".lower()
        version = registry.reserve(name)
        manifest = {"name": name, "version": version, "kind": kind, **common}
        if kind in ("forecast", "alpha"):
            model, fields, rows = train_linear_model(kind, data, features, folds, cfg)
            model.save(registry.uri(name, version, SPARK_MODEL))
            manifest.update(fields, rows_trained=n_rows)
        else:
            t, syms, m = matrix
            if kind == "risk":
                content = train_risk.risk_model(t, syms, m, folds, mc.var_levels, mc.ewma_lambda, weights)
                rows = risk_rows(content)
                ew = content["portfolios"]["equal_weight"]
                headline = {k: ew[k] for k in ew
                            if k.startswith(("hist_var", "gauss_var")) or k == "ewma_vol"}
                manifest.update(symbols=syms, levels=list(mc.var_levels), ewma_lambda=mc.ewma_lambda,
                                metrics=content, headline=headline)
            else:
                content = train_risk.portfolio_model(t, syms, m, folds, mc.max_weight, mc.risk_aversion,
                                                     mc.var_levels, mc.ewma_lambda)
                rows = portfolio_rows(content)
                headline = {f"oos_vol_{k}": v["vol"] for k, v in content["overall"].items()}
                weights_by_method = {k: v["weights"] for k, v in content["methods"].items()}
                manifest.update(symbols=syms, weights=weights_by_method, metrics=content, headline=headline)
        staged.append((manifest, rows))
        summary_models[name] = {"version": version, "headline": manifest["headline"],
                                "seconds": round(time.monotonic() - t0, 1)}
        _progress(f"{name} v{version} trained in {time.monotonic() - t0:.1f}s: "
                  f"{json.dumps(manifest['headline'])}")

    created_ns = int(created.timestamp() * 1e9)
    hive_rows = [(m["version"], run_id, m["kind"], interval, date_from, date_to, *row, created_ns, m["name"])
                 for m, rows in staged for row in rows]
    table = save_metrics(spark, cfg, hive_rows)
    for manifest, _ in staged:  # the commit points, last
        summary_models[manifest["name"]]["manifest"] = registry.commit(manifest)
    if data is not None:
        data.unpersist()
    bars.unpersist()
    return {"from": date_from.isoformat(), "to": date_to.isoformat(), "interval": interval,
            "symbols": list(symbols) if symbols else None, "run_id": run_id, "bar_times": len(times),
            "folds": n_folds, "purge_bars": purge, "models": summary_models,
            "metrics_table": table, "metrics_rows": len(hive_rows),
            "registry": registry.fs.uri(registry.dir), "seconds": round(time.monotonic() - started, 1)}


def parse_weights(text: str) -> dict[str, float] | None:
    if not text.strip():
        return None
    out = {}
    for part in text.split(","):
        symbol, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"--weights: expected SYMBOL=WEIGHT, got {part!r}")
        out[symbol.strip()] = float(value)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = window_parser(__doc__)
    parser.add_argument("--interval", default="1m", help="bar interval to train on (default 1m)")
    parser.add_argument("--models", default=",".join(KINDS), help=f"subset of {','.join(KINDS)}")
    parser.add_argument("--features", default="", help="model features, comma-separated (default: all of "
                        f"{','.join(model_features.BY_NAME)})")
    parser.add_argument("--weights", default="",
                        help="a portfolio to report risk for: SYM=W,... summing to 1")
    parser.add_argument("--folds", type=int, help="walk-forward folds (default models.folds)")
    parser.add_argument("--purge-bars", type=int, help="purge gap in bar times (default models.purge_bars)")
    args = parse_window(parser, argv)
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    names = [f.strip() for f in args.features.split(",") if f.strip()] or None
    cfg = load_config()
    spark = get_spark("tradelake-train", cfg)
    try:
        summary = run(spark, cfg, args.date_from, args.date_to, args.symbols, args.interval, kinds, names,
                      parse_weights(args.weights), args.folds, args.purge_bars)
    except ValueError as exc:  # TrainError, or a bad --features / --weights: one line, no traceback
        print(f"TRAIN_ERROR {exc}", file=sys.stderr, flush=True)
        spark.stop()
        return 1
    print("TRAIN_RESULT " + json.dumps(summary), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
