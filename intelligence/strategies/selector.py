"""Regime selector: per symbol, a trend strategy in trending markets and a range (mean-reversion)
strategy otherwise.

Regime from Wilder's ADX over ``adx_window`` bars (``intelligence.indicators.ADX``): "trend" when
ADX >= ``trend_threshold``, "range" below it, none (flat) until ADX is defined. Both sub-strategies
see every bar (so their indicators are warm when their regime comes), but their decisions go to
the selector, not the engine; the selector holds the active regime's wanted position. A regime
change emits an advisory ``regime_trend`` / ``regime_range`` signal (strength = ADX / 100, no
target) and moves the position to what the newly active strategy wants.
"""

from __future__ import annotations

from collections.abc import Iterable

from intelligence.domain import Bar, Signal
from intelligence.indicators import ADX
from intelligence.strategies.base import Strategy

TREND, RANGE = "trend", "range"


class RegimeSelector(Strategy):
    name = "selector"
    __slots__ = ("trend", "range", "adx_window", "trend_threshold", "_adx", "_regime")

    def __init__(self, trend: Strategy, range_: Strategy, adx_window: int = 14, trend_threshold: float = 25.0,
                 *, strategy_id: str | None = None, symbols: Iterable[str] | None = None,
                 qty: float = 100.0) -> None:
        super().__init__(strategy_id, symbols, qty)
        if not 0 < trend_threshold < 100:
            raise ValueError("selector.trend_threshold must be in (0, 100)")
        self.trend, self.range = trend, range_
        self.adx_window, self.trend_threshold = adx_window, trend_threshold
        self._adx: dict[str, ADX] = {}
        self._regime: dict[str, str | None] = {}
        for sub in (trend, range_):  # their wanted direction stays in sub.direction; nothing is sent
            sub.sink = _nowhere

    def on_bar(self, bar: Bar) -> None:
        symbol = bar.symbol
        adx = self._adx.get(symbol)
        if adx is None:
            adx = self._adx[symbol] = ADX(self.adx_window)
        value = adx.update(bar.high, bar.low, bar.close)
        self.trend.on_bar(bar)
        self.range.on_bar(bar)
        regime = None if value is None else (TREND if value >= self.trend_threshold else RANGE)
        if regime != self._regime.get(symbol):
            self._regime[symbol] = regime
            if regime is not None:
                self.engine.emit_signal(Signal(self.engine.now, symbol, self.strategy_id, f"regime_{regime}",
                                               value / 100.0))
        if regime is None:
            return
        direction = (self.trend if regime == TREND else self.range).direction.get(symbol, 0.0)
        if direction != self.direction.get(symbol, 0.0):
            self.decide(symbol, direction, "entry" if direction else "exit")


def _nowhere(symbol: str, target: float, strength: float, signal_type: str) -> None:
    """A sub-strategy's sink under the selector: its decision is read, not sent."""
