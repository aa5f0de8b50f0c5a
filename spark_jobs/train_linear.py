"""The forecast and alpha models: Spark ML pipelines, walk-forward validation and their metrics.

Both are pipelines of three stages, saved whole, so ``PipelineModel.load(...).transform`` scores
raw ``bar_features`` rows on its own:
1. ``SQLTransformer`` adding the model features (``spark_jobs/model_features.py``) as ``x_<name>``;
2. ``VectorAssembler`` into ``features`` (``handleInvalid='skip'``: a bar with a missing feature,
   e.g. during its warm-up, gets no prediction);
3. ``LinearRegression`` on ``label`` (forecast) or binomial ``LogisticRegression`` on
   ``direction`` (alpha), L2 penalty ``models.reg_param`` on standardised features (Spark
   reports the coefficients on the original scale, which is what the manifest exports).

Metrics of a set of predictions (a walk-forward test block, all of them pooled, or in-sample),
``score`` being the forecast return or the up probability:
- forecast: ``rmse`` = sqrt(mean((score - label)^2)), ``r2`` = 1 - SSE / SST with SST around the
  block's own mean label (so a negative r2 is worse than predicting that mean), ``ic`` = Spearman
  rank correlation of score and label (the rank information coefficient), ``ic_pearson``;
- alpha: ``accuracy`` of the 0.5-threshold prediction, ``auc`` = area under the ROC curve of
  the up probability, ``up_rate`` = share of up labels in the block (the accuracy of always
  saying "up" is max(up_rate, 1 - up_rate));
- both: ``n`` rows scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import SQLTransformer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import LinearRegression
from pyspark.ml.stat import Correlation
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs import model_features
from spark_jobs.model_features import Feature
from spark_jobs.walk_forward import Fold
from tradelake.config import ModelsConfig

KINDS = ("forecast", "alpha")
TARGET = {"forecast": "label", "alpha": "direction"}
PREDICTS = {"forecast": "expected return of the next bar (its ret: close_t+1 / close_t - 1)",
            "alpha": "probability that the next bar's return is > 0"}


def pipeline(kind: str, features: Sequence[Feature], cfg: ModelsConfig) -> Pipeline:
    if kind == "forecast":
        estimator = LinearRegression(labelCol="label", regParam=cfg.reg_param, elasticNetParam=0.0,
                                     standardization=True, solver="normal")
    elif kind == "alpha":
        estimator = LogisticRegression(labelCol="direction", family="binomial", regParam=cfg.reg_param,
                                       elasticNetParam=0.0, standardization=True, maxIter=cfg.max_iter,
                                       tol=1e-6)
    else:
        raise ValueError(f"not a Spark ML model kind: {kind!r} (known: {', '.join(KINDS)})")
    return Pipeline(stages=[
        SQLTransformer(statement=model_features.sql_statement(features)),
        VectorAssembler(inputCols=[model_features.column(f) for f in features], outputCol="features",
                        handleInvalid="skip"),
        estimator])


def scored(kind: str, model: PipelineModel, rows: DataFrame) -> DataFrame:
    """``rows`` transformed, with ``score``: the forecast, or the probability of an up move."""
    out = model.transform(rows)
    score = F.col("prediction") if kind == "forecast" else vector_to_array("probability")[1]
    return out.withColumn("score", score)


def _spearman(pred: DataFrame) -> float:
    pair = VectorAssembler(inputCols=["score", "label"], outputCol="_pair").transform(pred)
    return float(Correlation.corr(pair, "_pair", "spearman").head()[0].toArray()[0, 1])


def metrics(kind: str, pred: DataFrame) -> dict:
    """The figures of the module doc for scored rows (NaN when undefined, e.g. an empty block)."""
    if kind == "forecast":
        got = pred.agg(F.count(F.lit(1)).alias("n"),
                       F.sum((F.col("score") - F.col("label")) ** 2).alias("sse"),
                       (F.var_pop("label") * F.count(F.lit(1))).alias("sst"),
                       F.corr("score", "label").alias("ic_pearson")).first()
        n = int(got["n"])
        if not n:
            return {"n": 0, "rmse": math.nan, "r2": math.nan, "ic": math.nan, "ic_pearson": math.nan}
        sst = got["sst"] or 0.0
        return {"n": n, "rmse": math.sqrt(got["sse"] / n),
                "r2": 1.0 - got["sse"] / sst if sst > 0 else math.nan,
                "ic": _spearman(pred) if n > 1 else math.nan,
                "ic_pearson": math.nan if got["ic_pearson"] is None else float(got["ic_pearson"])}
    got = pred.agg(F.count(F.lit(1)).alias("n"),
                   F.avg((F.col("prediction") == F.col("direction")).cast("double")).alias("accuracy"),
                   F.avg("direction").alias("up_rate"),
                   F.countDistinct("direction").alias("classes")).first()
    n = int(got["n"])
    if not n:
        return {"n": 0, "accuracy": math.nan, "auc": math.nan, "up_rate": math.nan}
    auc = (BinaryClassificationEvaluator(rawPredictionCol="rawPrediction", labelCol="direction",
                                         metricName="areaUnderROC").evaluate(pred)
           if got["classes"] == 2 else math.nan)
    return {"n": n, "accuracy": float(got["accuracy"]), "auc": float(auc), "up_rate": float(got["up_rate"])}


def fold_rows(data: DataFrame, fold: Fold) -> tuple[DataFrame, DataFrame]:
    """(train, test) of a fold. Training rows also need their label to end before the test block
    (``label_ts < test_from``): the purge, exact even for a symbol that skipped bar times."""
    ts = F.col("ts")
    train = data.where((ts >= fold.train_from) & (ts < fold.train_to) & (F.col("label_ts") < fold.test_from))
    test = data.where((ts >= fold.test_from) & (ts < fold.test_to))
    return train, test


def walk_forward(kind: str, data: DataFrame, features: Sequence[Feature], folds: Sequence[Fold],
                 cfg: ModelsConfig, progress=lambda msg: None) -> tuple[list[dict], dict]:
    """Per-fold metrics (plus n_train and the fold's bounds) and the metrics of all test blocks
    pooled. A fold without training or test rows is reported as skipped."""
    per_fold, tests = [], []
    for fold in folds:
        train, test = fold_rows(data, fold)
        n_train, n_test = train.count(), test.count()
        entry = {**fold.to_json(), "n_train": n_train}
        if not n_train or not n_test:
            per_fold.append({**entry, "skipped": "no training rows" if not n_train else "no test rows"})
            continue
        pred = scored(kind, pipeline(kind, features, cfg).fit(train), test)
        pred = pred.select("ts", "symbol", "score", "prediction", "rawPrediction" if kind == "alpha"
                           else F.lit(None).alias("rawPrediction"), "label", "direction").cache()
        tests.append(pred)
        per_fold.append({**entry, **metrics(kind, pred)})
        shown = ("n", "rmse", "r2", "ic", "accuracy", "auc")
        progress(f"{kind} fold {fold.index}/{len(folds)}: "
                 + ", ".join(f"{k} {v:.4g}" for k, v in per_fold[-1].items() if k in shown))
    pooled = tests[0] if tests else None
    for more in tests[1:]:
        pooled = pooled.unionByName(more)
    overall = metrics(kind, pooled) if pooled is not None else {"n": 0}
    for pred in tests:
        pred.unpersist()
    return per_fold, overall


def exported(kind: str, model: PipelineModel, features: Sequence[Feature], cfg: ModelsConfig) -> dict:
    """The manifest's ``model`` section: what live inference needs, without Spark."""
    est = model.stages[-1]
    return {
        "type": type(est).__name__,  # LinearRegressionModel / LogisticRegressionModel
        "link": "identity" if kind == "forecast" else "logistic",
        "predicts": PREDICTS[kind],
        "coefficients": [float(c) for c in est.coefficients.toArray()],
        "intercept": float(est.intercept),
        "feature_order": [f.name for f in features],
        "params": {"regParam": cfg.reg_param, "elasticNetParam": 0.0, "standardization": True,
                   **({"maxIter": cfg.max_iter} if kind == "alpha" else {"solver": "normal"})},
    }
