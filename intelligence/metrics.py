"""Performance metrics of a backtest, from its equity samples and its trading.

Definitions (``equity`` sampled once per event time, ``e_0`` = initial cash before the first one):
- ``total_return`` = e_end / e_0 - 1.
- ``cagr`` = (e_end / e_0) ** (1 / years) - 1, ``years`` = (last sample ts - first sample ts) /
  365.25 days; None for a zero span or a non-positive final equity.
- per-step returns r_i = e_i / e_{i-1} - 1 (e_{-1} = e_0); ``periods_per_year`` = their count /
  years: annualisation follows the data's own sampling (1m bars of a 6.5 h session give ~98k a
  year, not 525,960), with no calendar assumed.
- ``sharpe`` = mean(r) / sd(r) * sqrt(periods_per_year) (sample sd, risk-free rate 0);
  ``sortino`` = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(periods_per_year); None when the
  denominator is 0 or there are fewer than 2 returns.
- ``max_drawdown`` = max over t of 1 - e_t / max(e_0..e_t): a positive fraction (0.1 = -10 %).
- ``turnover`` = traded notional (sum of |qty * price| of fills) / mean equity: how many times the
  average capital was traded over the run (not annualised).
- ``hit_rate`` = winning round trips / round trips, a round trip being flat -> position -> flat
  (or a flip through zero), net of commissions; None without a closed round trip.
- ``exposure`` = the fraction of samples with any open position (time in the market).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NS_PER_YEAR = 365.25 * 86_400 * 1_000_000_000
METRIC_NAMES = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "turnover", "hit_rate",
                "exposure")


def _clean(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def compute(ts: Sequence[int], equity: Sequence[float], gross: Sequence[float], initial: float,
            traded_notional: float, round_trips: Sequence[float]) -> dict[str, float | None]:
    """The metrics above; every value a float or None."""
    if initial <= 0:
        raise ValueError("initial equity must be > 0")
    e = np.asarray(equity, dtype="float64")
    if e.size == 0:
        return dict.fromkeys(METRIC_NAMES) | {"total_return": 0.0, "turnover": 0.0, "exposure": 0.0,
                                               "max_drawdown": 0.0, "periods_per_year": None}
    t = np.asarray(ts, dtype="int64")
    final = float(e[-1])
    years = float(t[-1] - t[0]) / NS_PER_YEAR
    path = np.concatenate(([initial], e))
    r = path[1:] / path[:-1] - 1.0
    ppy = len(r) / years if years > 0 else None
    sharpe = sortino = cagr = None
    if ppy is not None and len(r) >= 2:
        sd = float(np.std(r, ddof=1))
        mean = float(np.mean(r))
        sharpe = mean / sd * math.sqrt(ppy) if sd > 0 else None
        downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
        sortino = mean / downside * math.sqrt(ppy) if downside > 0 else None
    if years > 0 and final > 0:
        cagr = (final / initial) ** (1.0 / years) - 1.0
    peak = np.maximum.accumulate(path)
    drawdown = float(np.max(1.0 - path / peak))
    wins = sum(1 for p in round_trips if p > 0)
    return {
        "total_return": final / initial - 1.0,
        "cagr": _clean(cagr),
        "sharpe": _clean(sharpe),
        "sortino": _clean(sortino),
        "max_drawdown": drawdown,
        "turnover": traded_notional / float(np.mean(e)) if float(np.mean(e)) > 0 else None,
        "hit_rate": wins / len(round_trips) if round_trips else None,
        "exposure": float(np.count_nonzero(np.asarray(gross) > 0.0)) / e.size,
        "periods_per_year": _clean(ppy),
    }


def drawdown_series(equity: Sequence[float], initial: float) -> np.ndarray:
    """1 - e_t / running peak (including the initial equity), per sample."""
    path = np.concatenate(([initial], np.asarray(equity, dtype="float64")))
    return (1.0 - path / np.maximum.accumulate(path))[1:]
