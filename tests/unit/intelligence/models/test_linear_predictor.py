"""Live inference (intelligence/models/linear.py) against Spark ML on the same rows, the derived
features in SQL and in Python, and the registry's versioning on a local lake.

Run with ``-s`` to see the measured per-prediction latency (printed, never asserted)."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from pyspark.ml.feature import SQLTransformer
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from intelligence.models import LinearPredictor, Predictor
from spark_jobs import model_features, train_linear
from spark_jobs.model_registry import Registry, RegistryError
from tradelake.config import ModelsConfig
from tradelake.lakefs import LocalLakeFS

INPUTS = model_features.inputs(model_features.CATALOGUE)


def synthetic_rows(n: int = 400, seed: int = 11) -> list[dict]:
    """Bar-feature-like rows whose next return depends a little on ret and zscore_20."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        close = 100.0 * math.exp(rng.normal(0, 0.01))
        row = {"ts": i, "symbol": "AAPL" if i % 2 else "MSFT",
               "ret": rng.normal(0, 1e-3), "zscore_20": rng.normal(0, 1),
               "rv_20": abs(rng.normal(4e-3, 1e-3)),
               "rsi_14": rng.uniform(20, 80), "close": close, "sma_10": close * (1 + rng.normal(0, 2e-3)),
               "sma_50": close * (1 + rng.normal(0, 5e-3)), "ema_20": close * (1 + rng.normal(0, 3e-3)),
               "vwap_20": close * (1 + rng.normal(0, 2e-3)), "macd_hist": rng.normal(0, 0.05),
               "atr_14": abs(rng.normal(0.3, 0.05)), "bb_mid": close}
        row["bb_upper"], row["bb_lower"] = close + 2 * row["atr_14"], close - 2 * row["atr_14"]
        label = 0.2 * row["ret"] - 3e-4 * row["zscore_20"] + rng.normal(0, 1e-3)
        row.update(label=label, direction=1.0 if label > 0 else 0.0)
        rows.append(row)
    return rows


SCHEMA = ("ts BIGINT, symbol STRING, " + ", ".join(f"{c} DOUBLE" for c in INPUTS if c != "ret")
          + ", ret DOUBLE, label DOUBLE, direction DOUBLE")


@pytest.fixture(scope="module")
def frame(local_spark):
    rows = synthetic_rows()
    rows[5]["sma_10"] = None        # a missing feature: Spark skips the row, live gets None
    rows[7]["bb_mid"] = 0.0          # a zero denominator: Spark null (skipped), live NaN
    cols = [f.strip().split()[0] for f in SCHEMA.split(",")]
    return local_spark.createDataFrame([tuple(r[c] for c in cols) for r in rows], SCHEMA)


def manifest_of(kind: str, model) -> dict:
    features = model_features.CATALOGUE
    return {"name": f"{kind}_1m", "version": 1, "kind": kind,
            "features": [f.to_json() for f in features],
            "model": train_linear.exported(kind, model, features, ModelsConfig())}


def test_sql_and_python_feature_definitions_agree_bit_for_bit(frame):
    out = SQLTransformer(statement=model_features.sql_statement(model_features.CATALOGUE)).transform(frame)
    evaluate = model_features.evaluator(model_features.CATALOGUE)
    names = [model_features.column(f) for f in model_features.CATALOGUE]
    checked = 0
    for row in out.where(F.col("ts") != 5).collect():  # row 5 has a None input
        live = evaluate([row[c] for c in INPUTS])
        spark = [row[c] for c in names]
        if row.ts == 7:  # bb_mid 0: try_divide null in Spark, NaN live
            assert spark[-1] is None and math.isnan(live[-1])
            continue
        assert live == spark  # identical doubles, not merely close
        checked += 1
    assert checked == 398


@pytest.mark.parametrize("kind", ["forecast", "alpha"])
def test_live_predictions_equal_spark_transform(frame, kind):
    model = train_linear.pipeline(kind, model_features.CATALOGUE, ModelsConfig()).fit(frame)
    scored = train_linear.scored(kind, model, frame)
    if kind == "alpha":
        scored = scored.withColumn("p_up", vector_to_array("probability")[1])
    rows = {r.ts: r for r in scored.collect()}
    assert len(rows) == 398 and 5 not in rows and 7 not in rows  # the incomplete rows get no prediction

    predictor = LinearPredictor.from_manifest(json.loads(json.dumps(manifest_of(kind, model))))
    assert isinstance(predictor, Predictor)
    assert predictor.feature_names == INPUTS
    worst = 0.0
    for row in rows.values():
        features = {c: row[c] for c in INPUTS}
        if kind == "forecast":
            worst = max(worst, abs(predictor.predict(features) - row.prediction))
        else:
            worst = max(worst, abs(predictor.probability(features) - row.p_up),
                        abs(predictor.predict(features) - (2 * row.p_up - 1)))
    assert worst <= 1e-9, worst
    print(f"\n{kind}: largest |live - Spark| over {len(rows)} rows: {worst:.3g}")

    bad = {c: frame.where("ts = 7").first()[c] for c in INPUTS}
    assert math.isnan(predictor.predict(bad))  # zero denominator: no prediction live either
    with pytest.raises(KeyError):
        predictor.predict({k: v for k, v in bad.items() if k != "close"})

    # the latency of one call, measured (printed; tests never assert on time)
    sample = [{c: r[c] for c in INPUTS} for r in list(rows.values())[:200]]
    calls, started = 0, time.perf_counter()
    while calls < 50_000:
        for features in sample:
            predictor.predict(features)
        calls += len(sample)
    per_call = (time.perf_counter() - started) / calls
    print(f"{kind}: {per_call * 1e6:.2f} us per prediction ({calls} calls, {len(INPUTS)} inputs, "
          f"{len(model_features.CATALOGUE)} features)")


def test_a_risk_manifest_is_not_a_predictor():
    with pytest.raises(ValueError, match="no exported coefficients"):
        LinearPredictor.from_manifest({"name": "risk_1m", "kind": "risk", "metrics": {}})


def test_registry_versions_commit_last_and_ignore_unfinished_folders(tmp_path):
    registry = Registry(LocalLakeFS(tmp_path / "lake"), "models")
    assert registry.names() == [] and registry.next_version("alpha_1m") == 1
    v1 = registry.reserve("alpha_1m")
    assert v1 == 1 and registry.versions("alpha_1m") == []  # reserved, not committed: invisible
    with pytest.raises(RegistryError, match="no model 'alpha_1m'"):
        registry.manifest("alpha_1m")
    uri = registry.commit({"name": "alpha_1m", "version": 1, "metrics": {"auc": float("nan"), "n": 3}})
    assert uri.endswith("/lake/models/alpha_1m/v1/manifest.json")
    assert registry.manifest("alpha_1m") == {"format": "tradelake.model/1", "name": "alpha_1m", "version": 1,
                                             "metrics": {"auc": None, "n": 3}}  # NaN stored as null
    assert registry.reserve("alpha_1m") == 2  # a crashed run's folder: never committed ...
    assert registry.reserve("alpha_1m") == 3  # ... and never reused
    registry.commit({"name": "alpha_1m", "version": 3})
    assert registry.versions("alpha_1m") == [1, 3] and registry.manifest("alpha_1m")["version"] == 3
    assert registry.names() == ["alpha_1m"]
    with pytest.raises(RegistryError, match="no version 2"):
        registry.manifest("alpha_1m", 2)
    with pytest.raises(Exception, match="exists"):
        registry.commit({"name": "alpha_1m", "version": 3})  # a committed version never changes
    with pytest.raises(RegistryError, match="lower-case"):
        registry.path("Alpha")
