"""Per-symbol position of the OMS: signed quantity, average cost, realized P&L, commission, and the
quantity of open orders on each side (kept here so a pre-trade check reads one object per symbol).

Average cost, as the backtest portfolio (``intelligence/portfolio.py``): adding to a position
averages the price in; reducing realizes ``closed * (price - avg)`` (sign of the position) and
leaves the average unchanged; a flip through zero realizes the closed part and opens the rest at
the fill price. Commission is kept apart (``realized_pnl`` is before commission) so the P&L
summary can show both.
"""

from __future__ import annotations

DUST = 1e-12  # relative: a quantity this small next to the traded ones is float noise, i.e. flat


class Position:
    """One symbol's book in the OMS. Mutated only by the OMS, under its lock."""

    __slots__ = ("symbol", "quantity", "avg_price", "realized_pnl", "commission",
                 "working_buy", "working_sell")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.quantity = 0.0  # signed: > 0 long, < 0 short
        self.avg_price = 0.0  # average cost of the open quantity; 0 when flat
        self.realized_pnl = 0.0  # before commission
        self.commission = 0.0
        self.working_buy = 0.0  # open (unfilled) quantity of live buy orders
        self.working_sell = 0.0  # same for sells, positive

    def __repr__(self) -> str:
        return (f"Position({self.symbol} qty={self.quantity:g} avg={self.avg_price:g} "
                f"realized={self.realized_pnl:g} commission={self.commission:g})")

    def fill(self, signed_qty: float, price: float) -> float:
        """Book a fill of ``signed_qty`` (buy > 0) at ``price``; returns the P&L it realized."""
        old = self.quantity
        new = old + signed_qty
        if abs(new) <= DUST * max(abs(old), abs(signed_qty)):
            new = 0.0
        realized = 0.0
        if old == 0.0 or (old > 0.0) == (signed_qty > 0.0):  # opening or adding: average in
            self.avg_price = (old * self.avg_price + signed_qty * price) / new
        else:  # reducing, closing or flipping
            closed = min(abs(signed_qty), abs(old))
            realized = closed * (price - self.avg_price) * (1.0 if old > 0.0 else -1.0)
            if new == 0.0:
                self.avg_price = 0.0
            elif (new > 0.0) != (old > 0.0):  # flipped: the remainder opens at this price
                self.avg_price = price
        self.quantity = new
        self.realized_pnl += realized
        return realized

    def unrealized(self, mark: float) -> float:
        """P&L of the open quantity if it were closed at ``mark``."""
        return self.quantity * (mark - self.avg_price) if self.quantity else 0.0

    @property
    def working_qty(self) -> float:
        """Signed open order quantity: buys minus sells."""
        return self.working_buy - self.working_sell
