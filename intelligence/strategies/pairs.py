"""Pairs / statistical arbitrage on two symbols, y and x (``legs = (y, x)``).

On every timestamp where both legs have a bar, a rolling OLS over the last ``window`` closes
gives y = alpha + beta * x; the spread is the residual y - alpha - beta * x and its z-score is
spread / sd(residuals of the window). Enter when |z| > entry_z: z > entry_z means y is rich, so
short the spread (short ``qty`` y, long ``beta * qty`` x), z < -entry_z long it; exit both legs
when |z| < exit_z. The hedge ratio is fixed at entry (the x leg is not re-traded as beta drifts).
No trade while beta is undefined (x constant) or the residual sd is 0.

Bars of the two legs arrive separately (and from Kafka in any interleaving of the two symbols):
the strategy keeps the last bar of each leg and acts when both carry the same ``ts``.
"""

from __future__ import annotations

from collections.abc import Sequence

from intelligence.domain import Bar
from intelligence.indicators import RollingOLS
from intelligence.strategies.base import Strategy


class Pairs(Strategy):
    name = "pairs"
    __slots__ = ("y", "x", "window", "entry_z", "exit_z", "ols", "_last", "_state", "_done_ts")

    def __init__(self, legs: Sequence[str], window: int = 120, entry_z: float = 2.0, exit_z: float = 0.5,
                 *, strategy_id: str | None = None, qty: float = 100.0) -> None:
        if len(legs) != 2 or legs[0] == legs[1]:
            raise ValueError(f"pairs needs two different legs (y, x), got {tuple(legs)!r}")
        super().__init__(strategy_id, legs, qty)
        if not 0 <= exit_z < entry_z:
            raise ValueError(f"pairs needs 0 <= exit_z < entry_z, got {exit_z}, {entry_z}")
        self.y, self.x = legs
        self.window, self.entry_z, self.exit_z = window, entry_z, exit_z
        self.ols = RollingOLS(window)
        self._last: dict[str, Bar] = {}
        self._state = 0.0  # +1 long spread, -1 short spread, 0 flat
        self._done_ts = -1

    def on_bar(self, bar: Bar) -> None:
        self._last[bar.symbol] = bar
        by, bx = self._last.get(self.y), self._last.get(self.x)
        if by is None or bx is None or by.ts != bx.ts or by.ts == self._done_ts:
            return
        self._done_ts = by.ts
        ols = self.ols
        ols.update(bx.close, by.close)
        if ols.beta is None or not ols.resid_sd:
            return
        z = (by.close - ols.alpha - ols.beta * bx.close) / ols.resid_sd
        state = self._state
        if z > self.entry_z:
            wanted = -1.0
        elif z < -self.entry_z:
            wanted = 1.0
        elif state != 0.0 and abs(z) < self.exit_z:
            wanted = 0.0
        else:
            return
        if wanted == state:
            return
        self._state = wanted
        kind = "exit" if wanted == 0.0 else "entry"
        self.decide(self.y, wanted, kind, units=wanted * self.qty)
        self.decide(self.x, -wanted, kind, units=-wanted * ols.beta * self.qty)
