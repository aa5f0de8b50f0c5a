"""What every strategy shares: it subscribes to bars, decides a direction per symbol, and turns
a change of direction into a Signal and a target position (the engine sends the order).

A strategy holds only what its decision needs (its own indicators), reacts in ``on_bar`` and
``on_fill``, and never sees a bar before the engine dispatches it, so it cannot look ahead.
``decide`` is called on every bar but acts only on a change: no object is allocated per bar.

``sink`` is where decisions go: by default the engine (signal + order); the regime selector points
its sub-strategies' sinks at itself, so the same strategy code runs alone or under a selector.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from intelligence.domain import Bar, Fill, Signal

if TYPE_CHECKING:
    from intelligence.engine import Engine

Sink = Callable[[str, float, float, str], None]  # (symbol, target units, strength, signal_type)


class Strategy:
    """Base class. ``symbols``: the symbols it trades (None: every bar it is given); ``qty``: the
    units of a full position (direction 1)."""

    name = "strategy"
    __slots__ = ("strategy_id", "symbols", "qty", "engine", "sink", "direction", "model_version")

    def __init__(self, strategy_id: str | None = None, symbols: Iterable[str] | None = None,
                 qty: float = 100.0) -> None:
        if not qty > 0:
            raise ValueError(f"qty must be > 0, got {qty!r}")
        self.strategy_id = strategy_id or self.name
        self.symbols = tuple(symbols) if symbols else None
        self.qty = float(qty)
        self.engine: Engine | None = None
        self.sink: Sink = self._emit
        self.direction: dict[str, float] = {}
        self.model_version: str | None = None

    def attach(self, engine: Engine) -> None:
        """Subscribe to the engine (Engine.add_strategy calls this)."""
        self.engine = engine
        engine.subscribe_bars(self.on_bar, self.symbols)
        engine.subscribe_fills(self._own_fill)

    def on_bar(self, bar: Bar) -> None:
        raise NotImplementedError

    def on_fill(self, fill: Fill) -> None:
        """A fill of one of this strategy's orders (no-op by default)."""

    def _own_fill(self, fill: Fill) -> None:
        if fill.strategy_id == self.strategy_id:
            self.on_fill(fill)

    def decide(self, symbol: str, direction: float, signal_type: str, units: float | None = None) -> None:
        """Want ``direction`` (-1 short, 0 flat, 1 long; fractions allowed) in ``symbol``:
        ``units`` (default ``direction * qty``) is the target position. Acts only on a change."""
        if self.direction.get(symbol, 0.0) == direction:
            return
        self.direction[symbol] = direction
        self.sink(symbol, direction * self.qty if units is None else units,
                  max(-1.0, min(1.0, direction)), signal_type)

    def _emit(self, symbol: str, target: float, strength: float, signal_type: str) -> None:
        engine = self.engine
        if engine.wants_signals:  # a parameter sweep records none: no object to build
            engine.emit_signal(Signal(engine.now, symbol, self.strategy_id, signal_type, strength, target,
                                      self.model_version))
        engine.set_target(self.strategy_id, symbol, target)
