"""Risk figures from a return series: VaR and ES (historical and Gaussian) and an EWMA
volatility forecast (numpy on the driver: one series is a few hundred thousand doubles at most).

Conventions (returns r are simple one-bar returns; losses L = -r; figures are positive losses
as a fraction of the position, for one bar ahead at confidence level a, e.g. 0.95):
- historical VaR_a = the a-quantile of L with numpy's ``inverted_cdf`` method: the k-th smallest
  loss with k = ceil(a * n), i.e. the smallest loss l with P(L <= l) >= a in the sample;
  historical ES_a = the mean of the losses >= VaR_a (the VaR observation included);
- Gaussian VaR_a = -mu + sigma * z_a, ES_a = -mu + sigma * phi(z_a) / (1 - a), with mu the sample
  mean, sigma the sample standard deviation (ddof 1), z_a the standard normal a-quantile and
  phi its density;
- EWMA (RiskMetrics) variance: s2_1 = r_0^2, s2_{t+1} = lambda * s2_t + (1 - lambda) * r_t^2;
  the forecast for the bar after the last one is sqrt(s2_n) (zero-mean convention).
  lambda = ``models.ewma_lambda`` (0.94, RiskMetrics' daily value: a half-life of about 11 bars).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np


def _clean(returns: Sequence[float] | np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype="float64")
    return r[np.isfinite(r)]


def historical_var_es(returns: Sequence[float] | np.ndarray, level: float) -> tuple[float, float]:
    losses = -_clean(returns)
    if not len(losses):
        return float("nan"), float("nan")
    var = float(np.quantile(losses, level, method="inverted_cdf"))
    return var, float(losses[losses >= var].mean())


def gaussian_var_es(returns: Sequence[float] | np.ndarray, level: float) -> tuple[float, float]:
    r = _clean(returns)
    if len(r) < 2:
        return float("nan"), float("nan")
    mu, sigma = float(r.mean()), float(r.std(ddof=1))
    normal = NormalDist()
    z = normal.inv_cdf(level)
    return -mu + sigma * z, -mu + sigma * normal.pdf(z) / (1.0 - level)


def ewma_volatility(returns: Sequence[float] | np.ndarray, lam: float) -> float:
    r = _clean(returns)
    if not len(r):
        return float("nan")
    var = r[0] ** 2
    for x in r[1:]:
        var = lam * var + (1.0 - lam) * x * x
    return float(np.sqrt(var))


def pct(level: float) -> str:
    """0.95 -> '95', 0.975 -> '97.5' (metric name suffixes)."""
    return f"{level * 100:g}"


def risk_figures(returns: Sequence[float] | np.ndarray, levels: Sequence[float], lam: float) -> dict:
    """Every figure of one series: n, mean, vol, ewma_vol, hist/gauss VaR and ES per level."""
    r = _clean(returns)
    out = {"n": int(len(r)), "mean": float(r.mean()) if len(r) else float("nan"),
           "vol": float(r.std(ddof=1)) if len(r) > 1 else float("nan"),
           "ewma_vol": ewma_volatility(r, lam)}
    for level in levels:
        out[f"hist_var_{pct(level)}"], out[f"hist_es_{pct(level)}"] = historical_var_es(r, level)
        out[f"gauss_var_{pct(level)}"], out[f"gauss_es_{pct(level)}"] = gaussian_var_es(r, level)
    return out


def portfolio_returns(matrix: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Per-bar returns of a portfolio rebalanced to ``weights`` every bar: matrix @ w
    (rows are bar times, columns symbols; rows with a missing return are dropped)."""
    matrix = np.asarray(matrix, dtype="float64")
    complete = np.isfinite(matrix).all(axis=1)
    return matrix[complete] @ np.asarray(weights, dtype="float64")


def exceedances(test_returns: Sequence[float] | np.ndarray, var: float) -> float:
    """Share of test bars losing more than ``var`` (a VaR backtest: about 1 - level if calibrated)."""
    r = _clean(test_returns)
    return float((-r > var).mean()) if len(r) else float("nan")


def var_backtest(train: Sequence[float] | np.ndarray, test: Sequence[float] | np.ndarray,
                 levels: Sequence[float]) -> dict:
    """VaR estimated on ``train``, exceedance rates on ``test``, per level and method."""
    out: dict[str, float] = {"n_test": int(len(_clean(test)))}
    for level in levels:
        out[f"exceed_hist_{pct(level)}"] = exceedances(test, historical_var_es(train, level)[0])
        out[f"exceed_gauss_{pct(level)}"] = exceedances(test, gaussian_var_es(train, level)[0])
    return out


def per_symbol(columns: Mapping[str, np.ndarray], levels: Sequence[float], lam: float) -> dict:
    return {symbol: risk_figures(r, levels, lam) for symbol, r in columns.items()}
