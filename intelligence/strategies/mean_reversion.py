"""Mean reversion: trade the z-score of the close against its rolling mean.

z = (close - mean_n) / sd_n over the last ``window`` closes (population sd; no decision until the
window is full or while sd is 0). Enter short when z > entry_z, long when z < -entry_z; a long
exits when z >= -exit_z, a short when z <= exit_z (so exit_z < entry_z gives a band of holding);
a move through the opposite entry band flips the position directly.
"""

from __future__ import annotations

from collections.abc import Iterable

from intelligence.domain import Bar
from intelligence.indicators import RollingMoments
from intelligence.strategies.base import Strategy


class MeanReversion(Strategy):
    name = "mean_reversion"
    __slots__ = ("window", "entry_z", "exit_z", "_stats")

    def __init__(self, window: int = 20, entry_z: float = 2.0, exit_z: float = 0.5, *,
                 strategy_id: str | None = None, symbols: Iterable[str] | None = None,
                 qty: float = 100.0) -> None:
        super().__init__(strategy_id, symbols, qty)
        if window < 2:
            raise ValueError("mean_reversion.window must be >= 2")
        if not 0 <= exit_z < entry_z:
            raise ValueError(f"mean_reversion needs 0 <= exit_z < entry_z, got {exit_z}, {entry_z}")
        self.window, self.entry_z, self.exit_z = window, entry_z, exit_z
        self._stats: dict[str, RollingMoments] = {}

    def on_bar(self, bar: Bar) -> None:
        symbol, close = bar.symbol, bar.close
        stats = self._stats.get(symbol)
        if stats is None:
            stats = self._stats[symbol] = RollingMoments(self.window)
        stats.update(close)
        sd = stats.sd
        if not sd:  # window not full (None) or no dispersion (0.0)
            return
        z = (close - stats.mean) / sd
        current = self.direction.get(symbol, 0.0)
        if z > self.entry_z:
            wanted = -1.0
        elif z < -self.entry_z:
            wanted = 1.0
        elif (current > 0.0 and z >= -self.exit_z) or (current < 0.0 and z <= self.exit_z):
            wanted = 0.0
        else:
            return
        if wanted != current:
            self.decide(symbol, wanted, "exit" if wanted == 0.0 else "entry")
