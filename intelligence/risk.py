"""Pre-trade risk checks of the engine: ``check(intent, engine) -> reason or None``.

A check sees every intent before the execution client does; a non-empty reason rejects it
(the engine records it and tells its rejection subscribers). Checks run in the order given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intelligence.domain import OrderIntent

if TYPE_CHECKING:
    from intelligence.engine import Engine


class MaxPosition:
    """Refuse an order that would take |position + working orders| beyond ``limit`` units."""

    __slots__ = ("limit",)

    def __init__(self, limit: float) -> None:
        if not limit > 0:
            raise ValueError(f"position limit must be > 0, got {limit!r}")
        self.limit = float(limit)

    def __call__(self, intent: OrderIntent, engine: Engine) -> str | None:
        after = engine.position(intent.symbol) + intent.signed_quantity
        if abs(after) > self.limit + 1e-9:
            return f"MAX_POSITION: {intent.symbol} would be {after:g}, limit {self.limit:g}"
        return None
