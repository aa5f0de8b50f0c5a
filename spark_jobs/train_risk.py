"""The risk and portfolio models from a returns matrix (numpy on the driver, no Spark).

The matrix has one row per bar time (ascending ``times``, UTC ns) and one column per symbol,
holding the bar's ``ret`` (NaN when the symbol has no bar or no return then). A symbol's own
figures use its own returns; a portfolio's use the bar times where every symbol has a return.

- risk: per symbol and per portfolio (equal weight, and the ``--weights`` given, if any) the
  figures of ``spark_jobs/risk_metrics.py``; validated walk-forward by a VaR backtest: VaR
  estimated on each fold's training block, exceedance rate on its test block (calibrated when it
  is about 1 - level), per fold and pooled over the folds (``overall``, weighted by test bars).
- portfolio: minimum-variance, risk-parity and mean-variance weights with the position cap
  (``spark_jobs/portfolio_weights.py``) from the sample mean and covariance (ddof 1) of the whole
  window, with each portfolio's figures and risk contributions; validated walk-forward: weights
  from the training block, the portfolio's realised mean, volatility and mean/vol on the test
  block, per fold and pooled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from spark_jobs import portfolio_weights as pw
from spark_jobs import risk_metrics as rm
from spark_jobs.walk_forward import Fold


def _rows(times: np.ndarray, start: int, end: int) -> slice:
    lo, hi = np.searchsorted(times, [start, end], side="left")
    return slice(int(lo), int(hi))


def _complete(matrix: np.ndarray) -> np.ndarray:
    return matrix[np.isfinite(matrix).all(axis=1)]


def given_weights(symbols: Sequence[str], weights: Mapping[str, float] | None) -> dict[str, np.ndarray]:
    """The portfolios whose risk is reported: equal weight, and ``weights`` if given (the
    symbols it names must be in the data; the others get 0; the weights must sum to 1)."""
    out = {"equal_weight": np.full(len(symbols), 1.0 / len(symbols))}
    if weights:
        unknown = sorted(set(weights) - set(symbols))
        if unknown:
            raise ValueError(f"--weights names symbols without returns in the window: {unknown}")
        if abs(sum(weights.values()) - 1.0) > 1e-9:
            raise ValueError(f"--weights must sum to 1, got {sum(weights.values())}")
        out["given"] = np.array([float(weights.get(s, 0.0)) for s in symbols])
    return out


def risk_model(times: np.ndarray, symbols: Sequence[str], matrix: np.ndarray, folds: Sequence[Fold],
               levels: Sequence[float], lam: float, weights: Mapping[str, float] | None = None) -> dict:
    portfolios = given_weights(symbols, weights)

    def series(m: np.ndarray) -> dict[str, np.ndarray]:
        out = {s: m[:, j] for j, s in enumerate(symbols)}
        out.update({name: rm.portfolio_returns(m, w) for name, w in portfolios.items()})
        return out

    whole = series(matrix)
    per_fold, pooled = [], {}
    for fold in folds:
        train = series(matrix[_rows(times, fold.train_from, fold.train_to)])
        test = series(matrix[_rows(times, fold.test_from, fold.test_to)])
        figures = {name: rm.var_backtest(train[name], test[name], levels) for name in whole}
        per_fold.append({**fold.to_json(), "subjects": figures})
        for name, fig in figures.items():
            acc = pooled.setdefault(name, {})
            for key, value in fig.items():
                if key != "n_test" and np.isfinite(value):
                    acc[key] = acc.get(key, 0.0) + value * fig["n_test"]
            acc["n_test"] = acc.get("n_test", 0) + fig["n_test"]
    overall = {name: {k: (v / acc["n_test"] if k != "n_test" else v) if acc["n_test"] else float("nan")
                      for k, v in acc.items()} for name, acc in pooled.items()}
    return {
        "symbols": {s: rm.risk_figures(whole[s], levels, lam) for s in symbols},
        "portfolios": {name: {"weights": dict(zip(symbols, map(float, w), strict=True)),
                              **rm.risk_figures(whole[name], levels, lam)} for name, w in portfolios.items()},
        "folds": per_fold, "overall": overall,
    }


def _stats(returns: np.ndarray) -> dict:
    n = len(returns)
    mean = float(returns.mean()) if n else float("nan")
    vol = float(returns.std(ddof=1)) if n > 1 else float("nan")
    ratio = mean / vol if vol and vol > 0 else float("nan")
    return {"n": n, "mean": mean, "vol": vol, "mean_over_vol": ratio}


def _moments(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return rows.mean(axis=0), np.atleast_2d(np.cov(rows, rowvar=False, ddof=1))


def portfolio_model(times: np.ndarray, symbols: Sequence[str], matrix: np.ndarray, folds: Sequence[Fold],
                    cap: float, gamma: float, levels: Sequence[float], lam: float) -> dict:
    n = len(symbols)
    rows = _complete(matrix)
    if len(rows) < 2:
        raise ValueError(f"portfolio: {len(rows)} bar time(s) where every symbol has a return; "
                         "need 2 or more")
    mean, cov = _moments(rows)
    weights = {**pw.all_weights(mean, cov, cap, gamma), "equal_weight": np.full(n, 1.0 / n)}
    methods = {}
    for method, w in weights.items():
        r = rows @ w
        methods[method] = {
            "weights": dict(zip(symbols, map(float, w), strict=True)),
            "risk_contributions": dict(zip(symbols, map(float, pw.risk_contributions(w, cov)), strict=True)),
            **rm.risk_figures(r, levels, lam), "mean_over_vol": _stats(r)["mean_over_vol"]}
    per_fold, realised = [], {m: [] for m in weights}
    for fold in folds:
        train = _complete(matrix[_rows(times, fold.train_from, fold.train_to)])
        test = _complete(matrix[_rows(times, fold.test_from, fold.test_to)])
        if len(train) < 2 or not len(test):
            per_fold.append({**fold.to_json(), "skipped": "too few complete bar times"})
            continue
        m, c = _moments(train)
        fold_w = {**pw.all_weights(m, c, cap, gamma), "equal_weight": np.full(n, 1.0 / n)}
        entry = {}
        for method, w in fold_w.items():
            realised[method].append(test @ w)
            entry[method] = {**_stats(test @ w), "weights": dict(zip(symbols, map(float, w), strict=True))}
        per_fold.append({**fold.to_json(), "methods": entry})
    overall = {m: _stats(np.concatenate(parts)) if parts else _stats(np.array([]))
               for m, parts in realised.items()}
    return {"cap": pw.effective_cap(n, cap), "risk_aversion": gamma, "methods": methods,
            "folds": per_fold, "overall": overall}
