"""Models end to end on the real stack: synthetic 1m bars -> features (a scratch warehouse) ->
``tradelake train`` (spark-submit spark_jobs/train.py) -> the registry (a scratch registry dir)
-> ``tradelake models list/show`` -> ``load_predictor``, whose live predictions equal the saved
Spark PipelineModel's on the same rows; the metrics are in Hive; a rerun adds a version.

Kept small, since none of these claims depends on the sizes: two walk-forward folds (still
several, so per-fold and pooled metrics and the purge gap are exercised) and ``models.max_iter``
cut to 10 for the logistic regression (from the environment, as a user would; it need not
converge for its saved pipeline and the live predictor to agree, and the manifest must record
the setting).

Run with ``-s`` to see the per-prediction latency of the loaded predictors (printed only)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
import uuid
from datetime import date

import numpy as np
import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from intelligence.models import Predictor, load_manifest, load_predictor
from spark_jobs import features, train
from spark_jobs.model_registry import SPARK_MODEL, Registry
from tradelake.config import PROJECT_ROOT
from tradelake.lakefs import lake_fs

D5 = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z
DAY, MIN = 86_400 * 10**9, 60 * 10**9
OPEN = (14 * 60 + 30) * MIN
JAN5, JAN6 = date(2026, 1, 5), date(2026, 1, 6)
SYMBOLS, BARS_PER_DAY = ("AAA", "BBB", "CCC"), 150
FOLDS, MAX_ITER = 2, 10  # small on purpose: see the module doc
BARS_DDL = ("ts BIGINT, symbol STRING, interval STRING, open DOUBLE, high DOUBLE, low DOUBLE, "
            "close DOUBLE, volume DOUBLE, vwap DOUBLE, trade_count BIGINT, dt DATE")


def synthetic_bars(seed: int = 42) -> list[tuple]:
    """A random walk per symbol, 150 one-minute bars on each of two days (with a little
    mean reversion, so the models have something to find)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, symbol in enumerate(SYMBOLS):
        close, drift = 50.0 * (k + 1), 0.0
        for day, dt in enumerate((JAN5, JAN6)):
            for i in range(BARS_PER_DAY):
                drift = -0.3 * drift + rng.normal(0, 1e-3)
                open_, close = close, round(close * (1 + drift), 4)
                high, low = max(open_, close) * 1.0005, min(open_, close) * 0.9995
                volume = float(rng.integers(100, 1000))
                rows.append((D5 + day * DAY + OPEN + i * MIN, symbol, "1m", open_, high, low, close, volume,
                             (open_ + close) / 2, int(rng.integers(1, 20)), dt))
    return rows


@pytest.fixture
def models_env(spark, scratch_warehouse, spark_submit_env):
    """A scratch warehouse with bar_features for Jan 5-6, and a scratch model registry."""
    wh_cfg, wh_env = scratch_warehouse
    registry_dir = f"it_{uuid.uuid4().hex[:8]}_models"
    cfg = dataclasses.replace(wh_cfg, models=dataclasses.replace(wh_cfg.models, registry_dir=registry_dir,
                                                                 max_iter=MAX_ITER))
    bars = spark.createDataFrame(synthetic_bars(), BARS_DDL)
    feats = features.transform(bars, JAN5, JAN6, dict(cfg.warehouse.feature_warmup_days))
    features.load(feats, cfg, JAN5, JAN6)
    yield cfg, {**wh_env, **spark_submit_env, "TRADELAKE_MODELS__REGISTRY_DIR": registry_dir,
                "TRADELAKE_MODELS__MAX_ITER": str(MAX_ITER)}
    fs = lake_fs(cfg)
    if fs.exists(registry_dir):
        fs.delete(registry_dir, recursive=True)


def tradelake(env: dict, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tradelake.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=PROJECT_ROOT, timeout=timeout)


def latency_us(predictor: Predictor, rows: list[dict], calls: int = 20_000) -> float:
    started, done = time.perf_counter(), 0
    while done < calls:
        for features_ in rows:
            predictor.predict(features_)
        done += len(rows)
    return (time.perf_counter() - started) / done * 1e6


def test_train_register_list_show_and_live_inference_equal_to_spark(spark, models_env):
    cfg, env = models_env
    started = time.monotonic()
    proc = tradelake(env, "train", "--from", "2026-01-05", "--to", "2026-01-06", "--folds", str(FOLDS),
                     "--purge-bars", "5", "--weights", "AAA=0.5,BBB=0.5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"\ntradelake train (spark-submit included): {time.monotonic() - started:.1f}s")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert f"[train] forecast fold {FOLDS}/{FOLDS}" in proc.stderr  # progress is shown as it happens
    assert set(summary["models"]) == {"forecast_1m", "alpha_1m", "risk_1m", "portfolio_1m"}
    assert all(m["version"] == 1 for m in summary["models"].values())
    assert summary["bar_times"] == 2 * BARS_PER_DAY and summary["folds"] == FOLDS

    # the registry, through the CLI
    listed = tradelake(env, "models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == set(summary["models"])
    assert rows["alpha_1m"]["latest"] == 1 and rows["alpha_1m"]["trained_on"] == "2026-01-05..2026-01-06"
    shown = tradelake(env, "models", "show", "forecast_1m")
    assert shown.returncode == 0
    assert f"walk-forward, expanding, {FOLDS} folds, purge 5 bar times" in shown.stdout
    assert "| overall |" in shown.stdout
    assert tradelake(env, "models", "show", "portfolio_1m").returncode == 0
    missing = tradelake(env, "models", "show", "forecast_1m", "--version", "9")
    assert missing.returncode == 1 and "no version 9" in missing.stderr

    manifest = load_manifest(cfg, "forecast_1m")
    assert manifest["training_range"]["from"] == "2026-01-05" and manifest["kind"] == "forecast"
    assert [f["index"] for f in manifest["metrics"]["folds"]] == list(range(1, FOLDS + 1))
    for fold in manifest["validation"]["bounds"]:
        assert fold["test_from"] > fold["train_to"]  # the purge gap
    assert load_manifest(cfg, "alpha_1m")["model"]["params"]["maxIter"] == MAX_ITER  # the env reached the job
    portfolio = load_manifest(cfg, "portfolio_1m")
    for method, weights in portfolio["weights"].items():
        assert sum(weights.values()) == pytest.approx(1.0), method
        assert max(weights.values()) <= portfolio["metrics"]["cap"] + 1e-9
    assert load_manifest(cfg, "risk_1m")["metrics"]["portfolios"]["given"]["weights"]["CCC"] == 0.0

    # live predictions == the saved Spark pipeline's, on the same bar_features rows
    table = spark.table(f"{cfg.warehouse.features_db}.bar_features")
    registry = Registry.of(cfg)
    for name in ("forecast_1m", "alpha_1m"):
        predictor = load_predictor(cfg, name)
        assert isinstance(predictor, Predictor)
        pipeline = PipelineModel.load(registry.uri(name, 1, SPARK_MODEL))
        out = pipeline.transform(table)
        out = out.withColumn("spark", F.col("prediction") if name.startswith("forecast")
                             else 2 * vector_to_array("probability")[1] - 1)
        scored = out.select(*predictor.feature_names, "spark").collect()
        assert len(scored) > 400
        worst = max(abs(predictor.predict(r.asDict()) - r.spark) for r in scored)
        assert worst <= 1e-9, (name, worst)
        # and the rows Spark gives no prediction are those with a missing input live
        everything = table.select(*predictor.feature_names).collect()
        complete = [r for r in everything if all(v is not None and not math.isnan(v) for v in r)]
        assert len(complete) == len(scored)
        sample = [r.asDict() for r in scored[:100]]
        print(f"{name}: {len(scored)} rows, largest |live - Spark| {worst:.2g}, "
              f"{latency_us(predictor, sample):.2f} us per prediction")

    # metrics in Hive, the same figures as the manifest's
    metrics = f"{cfg.warehouse.trading_db}.model_metrics"
    spark.sql(f"REFRESH TABLE {metrics}")
    counts = {r.model: r.n for r in spark.sql(f"SELECT model, count(*) AS n FROM {metrics} GROUP BY model")
              .collect()}
    assert set(counts) == set(summary["models"]) and sum(counts.values()) == summary["metrics_rows"]
    ic = spark.sql(f"SELECT value FROM {metrics} WHERE model = 'forecast_1m' AND scope = 'overall' "
                   "AND metric = 'ic'").collect()
    assert ic[0].value == pytest.approx(manifest["metrics"]["overall"]["ic"], rel=1e-12)
    folds = spark.sql(f"SELECT fold, value FROM {metrics} WHERE model = 'alpha_1m' AND scope = 'fold' "
                      "AND metric = 'auc' ORDER BY fold").collect()
    assert [r.fold for r in folds] == list(range(1, FOLDS + 1)) and all(0 <= r.value <= 1 for r in folds)

    # a rerun (in process this time) adds a version and leaves the others as they were
    again = train.run(spark, cfg, JAN5, JAN6, kinds=["risk"], n_folds=FOLDS, purge=5)
    assert again["models"]["risk_1m"]["version"] == 2
    assert Registry.of(cfg).versions("risk_1m") == [1, 2] and Registry.of(cfg).versions("alpha_1m") == [1]
    assert load_manifest(cfg, "risk_1m")["version"] == 2
    assert load_manifest(cfg, "risk_1m", 1)["run_id"] == summary["run_id"]
    assert not math.isnan(load_manifest(cfg, "risk_1m")["headline"]["hist_var_95"])
