"""Latency of one live prediction (``intelligence.models.LinearPredictor``) against scikit-learn.

The predictors come from the lake's model registry (``--models``, default ``forecast_1m`` and
``alpha_1m``, latest versions: train them first with ``tradelake train``); with ``--synthetic``,
or when the registry has none, a predictor over the whole feature catalogue with random
coefficients is used instead (the latency does not depend on the values). Inputs are
``--rows`` distinct bar-feature mappings with plausible values (close ~100, averages within a
few tenths of a percent of it), cycled through.

Measured per call with ``time.perf_counter_ns`` around each ``predict`` (p50, p99, max, mean)
over ``--calls`` calls after a warm-up. Baseline, in the same run: scikit-learn's
``LinearRegression.predict`` / ``LogisticRegression.predict_proba`` on one row with the same
coefficients, the row built from the same mapping (what "use scikit-learn live" would cost),
whose outputs are checked against the predictor's first.

Usage: ``.venv/bin/python benchmarks/model_inference.py [--calls 200000] [--synthetic]``;
writes ``benchmarks/results/model_inference.json`` and prints it last.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intelligence.models import LinearPredictor, load_predictor  # noqa: E402
from spark_jobs import model_features  # noqa: E402
from spark_jobs.model_registry import RegistryError  # noqa: E402
from tradelake.config import load_config  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "model_inference.json"


def feature_rows(names: tuple[str, ...], n: int, seed: int = 1) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        close = 100.0 * (1 + rng.normal(0, 0.01))
        row = {c: close * (1 + rng.normal(0, 3e-3)) for c in names}  # price-like by default
        row.update(close=close, ret=rng.normal(0, 1e-3), zscore_20=rng.normal(0, 1),
                   rsi_14=rng.uniform(20, 80), rv_20=abs(rng.normal(4e-3, 1e-3)),
                   macd_hist=rng.normal(0, 0.05), atr_14=abs(rng.normal(0.3, 0.1)))
        rows.append({c: float(row[c]) for c in names})
    return rows


def synthetic(kind: str) -> LinearPredictor:
    rng = np.random.default_rng(7)
    features = model_features.CATALOGUE
    return LinearPredictor(features, rng.normal(0, 1e-3, len(features)), 1e-5,
                           "identity" if kind == "forecast" else "logistic", f"synthetic_{kind}", 0)


def percentiles(samples_ns: np.ndarray) -> dict[str, float]:
    us = samples_ns / 1000.0
    return {"p50_us": round(float(np.percentile(us, 50)), 2),
            "p99_us": round(float(np.percentile(us, 99)), 2),
            "max_us": round(float(us.max()), 1), "mean_us": round(float(us.mean()), 2)}


def time_calls(fn, rows: list[dict], calls: int) -> np.ndarray:
    for row in rows:  # warm-up
        fn(row)
    samples = np.empty(calls, dtype="int64")
    clock, n = time.perf_counter_ns, len(rows)
    for i in range(calls):
        row = rows[i % n]
        start = clock()
        fn(row)
        samples[i] = clock() - start
    return samples


def sklearn_baseline(predictor: LinearPredictor):
    """The same model in scikit-learn, called on one row built from the mapping."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    coef = np.array(predictor.coefficients)
    evaluate, names = model_features.evaluator(predictor.features), predictor.feature_names
    if predictor.link == "identity":
        model = LinearRegression()
        model.coef_, model.intercept_, model.n_features_in_ = coef, predictor.intercept, len(coef)
        return lambda row: float(model.predict(np.array([evaluate([row[c] for c in names])]))[0])
    model = LogisticRegression()
    model.coef_, model.intercept_ = coef.reshape(1, -1), np.array([predictor.intercept])
    model.classes_, model.n_features_in_ = np.array([0.0, 1.0]), len(coef)
    return lambda row: 2.0 * float(
        model.predict_proba(np.array([evaluate([row[c] for c in names])]))[0, 1]) - 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="forecast_1m,alpha_1m")
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--baseline-calls", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--synthetic", action="store_true", help="do not read the registry")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    cfg = load_config()
    results = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        kind = name.split("_")[0]
        source = "registry"
        try:
            if args.synthetic:
                raise RegistryError("--synthetic")
            predictor = load_predictor(cfg, name)
        except RegistryError:
            predictor, source = synthetic(kind), "synthetic"
        rows = feature_rows(predictor.feature_names, args.rows)
        baseline = sklearn_baseline(predictor)
        worst = max(abs(baseline(r) - predictor.predict(r)) for r in rows)
        assert worst < 1e-12 or math.isnan(worst), f"baseline disagrees by {worst}"
        ours = percentiles(time_calls(predictor.predict, rows, args.calls))
        theirs = percentiles(time_calls(baseline, rows, args.baseline_calls))
        results[name] = {"source": source, "version": predictor.version,
                         "inputs": len(predictor.feature_names), "features": len(predictor.features),
                         "calls": args.calls, **ours,
                         "baseline": "scikit-learn predict on one row", "baseline_calls": args.baseline_calls,
                         **{f"baseline_{k}": v for k, v in theirs.items()},
                         "speedup_p50": round(theirs["p50_us"] / ours["p50_us"], 1),
                         "target_us": 1000.0, "max_abs_diff_vs_baseline": worst}
        print(f"{name} ({source}): p50 {ours['p50_us']} us, p99 {ours['p99_us']} us per prediction; "
              f"scikit-learn p50 {theirs['p50_us']} us ({results[name]['speedup_p50']}x)", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
