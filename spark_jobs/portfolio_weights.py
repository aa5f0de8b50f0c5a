"""Portfolio construction from a covariance matrix: minimum-variance, risk-parity and
mean-variance weights, long-only, summing to 1, each at most a position cap.

A symbols x symbols problem: scipy's SLSQP on the driver. The covariance is rescaled to a mean
variance of 1 before solving (per-bar variances are ~1e-6, which would leave the optimiser's
tolerances meaningless); that changes no minimiser. Definitions (w the weights, S the covariance,
m the mean returns, c the cap; every problem has sum(w) = 1 and 0 <= w_i <= c):
- minimum variance: minimise w'Sw;
- risk parity (equal risk contribution): w_i (Sw)_i = w'Sw / n for every i. Without binding caps
  it is solved exactly as the minimiser of y'Sy / 2 - sum(ln y_i) / n (y > 0), w = y / sum(y);
  when that breaks a cap, the capped weights closest to equal contributions are taken:
  minimise sum_i (w_i (Sw)_i / w'Sw - 1/n)^2 under the caps;
- mean-variance: maximise m'w - gamma / 2 * w'Sw, gamma = ``models.risk_aversion`` in per-bar
  return units.
A cap below 1/n cannot be met by weights summing to 1; it is raised to 1/n (``effective_cap``),
and the caller records the cap used.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

TOL = 1e-12  # SLSQP's ftol: objectives are O(1) after rescaling


def effective_cap(n: int, cap: float) -> float:
    return max(cap, 1.0 / n)


def _scaled(cov: np.ndarray) -> tuple[np.ndarray, float]:
    cov = np.asarray(cov, dtype="float64")
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or not np.isfinite(cov).all():
        raise ValueError(f"covariance must be a finite square matrix, got shape {cov.shape}")
    scale = float(np.mean(np.diag(cov)))
    if scale <= 0:
        raise ValueError("covariance has no variance (every return constant?)")
    return cov / scale, scale


def _solve(objective: Callable, gradient: Callable | None, n: int, cap: float,
           start: np.ndarray | None = None) -> np.ndarray:
    cap = effective_cap(n, cap)
    x0 = np.full(n, 1.0 / n) if start is None else np.clip(start, 0.0, cap)
    result = minimize(objective, x0, jac=gradient, method="SLSQP", bounds=[(0.0, cap)] * n,
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                    "jac": lambda w: np.ones_like(w)}],
                      options={"ftol": TOL, "maxiter": 1000})
    feasible = abs(result.x.sum() - 1.0) < 1e-9 and (result.x > -1e-9).all() and (result.x < cap + 1e-9).all()
    # SLSQP's status 8 ("positive directional derivative in the line search") means it could not
    # improve any more at a point it had already reached: accepted when that point is feasible
    if not (result.success or (result.status == 8 and feasible)):
        raise RuntimeError(f"portfolio optimisation failed: {result.message}")
    w = np.clip(result.x, 0.0, cap)
    w[w < 1e-10] = 0.0  # the solver's residue on positions it closed (e.g. 3e-13): a clean 0
    return w / w.sum()


def min_variance(cov: np.ndarray, cap: float = 1.0) -> np.ndarray:
    s, _ = _scaled(cov)
    return _solve(lambda w: w @ s @ w, lambda w: 2.0 * s @ w, len(s), cap)


def mean_variance(mean: np.ndarray, cov: np.ndarray, gamma: float, cap: float = 1.0) -> np.ndarray:
    s, scale = _scaled(cov)
    m = np.asarray(mean, dtype="float64") / scale  # the objective divided by scale: same argmin
    return _solve(lambda w: gamma / 2.0 * (w @ s @ w) - m @ w, lambda w: gamma * (s @ w) - m, len(s), cap)


def _erc_uncapped(s: np.ndarray, sweeps: int = 10_000) -> np.ndarray:
    """Cyclical coordinate descent on y'Sy / 2 - sum(ln y_i) / n (Griveau-Billion, Richard and
    Roncalli, 2013): each step solves S_ii y_i^2 + c_i y_i - 1/n = 0, c_i = sum_{j != i} S_ij y_j,
    for its positive root. Convex with a unique minimiser, so it converges from any y > 0."""
    n = len(s)
    y = 1.0 / np.sqrt(np.diag(s))
    for _ in range(sweeps):
        before = y.copy()
        for i in range(n):
            c = s[i] @ y - s[i, i] * y[i]
            y[i] = (-c + np.sqrt(c * c + 4.0 * s[i, i] / n)) / (2.0 * s[i, i])
        if np.max(np.abs(y - before) / y) < 1e-13:
            break
    else:
        raise RuntimeError(f"risk parity did not converge in {sweeps} sweeps")
    return y / y.sum()


def risk_parity(cov: np.ndarray, cap: float = 1.0) -> np.ndarray:
    s, _ = _scaled(cov)
    n = len(s)
    w = _erc_uncapped(s)
    if w.max() <= effective_cap(n, cap) + 1e-12:
        return w

    def spread(x: np.ndarray) -> float:
        total = x @ s @ x
        return float((((x * (s @ x)) / total - 1.0 / n) ** 2).sum())

    return _solve(spread, None, n, cap, start=w)


def risk_contributions(weights: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Each position's share of the portfolio variance: w_i (Sw)_i / w'Sw (they sum to 1)."""
    w, s = np.asarray(weights, dtype="float64"), np.asarray(cov, dtype="float64")
    return w * (s @ w) / (w @ s @ w)


METHODS = ("min_variance", "risk_parity", "mean_variance")


def all_weights(mean: np.ndarray, cov: np.ndarray, cap: float, gamma: float) -> dict[str, np.ndarray]:
    return {"min_variance": min_variance(cov, cap), "risk_parity": risk_parity(cov, cap),
            "mean_variance": mean_variance(mean, cov, gamma, cap)}
