"""The OMS's books: ``Order`` (one order's state) and ``Position`` (one symbol's signed quantity,
average cost, realized P&L, commission, and the open order quantity on each side, kept here so a
pre-trade check reads one object per symbol). Both are mutated only by the OMS, under its lock.

Average cost, as the backtest portfolio (``intelligence/portfolio.py``): adding to a position
averages the price in; reducing realizes ``closed * (price - avg)`` (sign of the position) and
leaves the average unchanged; a flip through zero realizes the closed part and opens the rest at
the fill price. Commission is kept apart (``realized_pnl`` is before commission) so the P&L
summary can show both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from intelligence.domain import MARKET
from order_routing.events import FINAL_STATES

DUST = 1e-12  # relative: a quantity this small next to the traded ones is float noise, i.e. flat


class Position:
    """One symbol's book in the OMS."""

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


def pnl_summary(positions: Iterable[Position], marks: Mapping[str, float] | None,
                fallback: Mapping[str, float]) -> dict[str, float]:
    """realized, unrealized, commission and total = realized + unrealized - commission. A position
    is marked at ``marks``, else ``fallback``; one with no price at all counts 0 unrealized."""
    realized = unrealized = commission = 0.0
    for pos in positions:
        realized += pos.realized_pnl
        commission += pos.commission
        if pos.quantity:
            price = marks.get(pos.symbol) if marks is not None else None
            if price is None:
                price = fallback.get(pos.symbol)
            if price is not None:
                unrealized += pos.unrealized(price)
    return {"realized": realized, "unrealized": unrealized, "commission": commission,
            "total": realized + unrealized - commission}


class Order:
    """One order as the OMS knows it (``row()``: its canonical ORDER row)."""

    __slots__ = ("cl_ord_id", "symbol", "side", "order_type", "quantity", "limit_price", "time_in_force",
                 "strategy_id", "account", "status", "cum_qty", "leaves_qty", "avg_price", "order_id",
                 "created_ts", "updated_ts", "replaces", "working")

    def __init__(self, cl_ord_id: str, symbol: str, side: str, quantity: float, *, order_type: str = MARKET,
                 limit_price: float | None = None, time_in_force: str = "GTC", strategy_id: str | None = None,
                 account: str | None = None, status: str = "PENDING_NEW", ts: int = 0) -> None:
        self.cl_ord_id, self.symbol, self.side = cl_ord_id, symbol, side
        self.order_type, self.quantity, self.limit_price = order_type, float(quantity), limit_price
        self.time_in_force, self.strategy_id, self.account = time_in_force, strategy_id, account
        self.status = status
        self.cum_qty = self.avg_price = 0.0
        self.leaves_qty = 0.0 if status in FINAL_STATES else self.quantity
        self.order_id: str | None = None  # the venue's
        self.created_ts = self.updated_ts = ts
        self.replaces: str | None = None  # a replacement: the ClOrdID of the order it replaces
        self.working = 0.0  # what this order adds to its position's working_buy/sell

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Order:
        """An order from its canonical ORDER row (a journal record)."""
        price = row.get("limit_price")
        return cls(row["cl_ord_id"], row["symbol"], row["side"], row["quantity"],
                   order_type=row.get("order_type") or MARKET, limit_price=None if price != price else price,
                   time_in_force=row.get("time_in_force") or "GTC", strategy_id=row.get("strategy_id"),
                   account=row.get("account"), status=row["status"], ts=int(row["ts"]))

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES

    def row(self) -> dict[str, Any]:
        """The canonical ORDER row (``tradelake.schemas.ORDER``) of the current state."""
        return {"ts": self.updated_ts, "symbol": self.symbol, "cl_ord_id": self.cl_ord_id, "side": self.side,
                "order_type": self.order_type, "quantity": self.quantity, "limit_price": self.limit_price,
                "time_in_force": self.time_in_force, "strategy_id": self.strategy_id, "status": self.status,
                "account": self.account}

    def __repr__(self) -> str:
        return (f"Order({self.cl_ord_id} {self.side} {self.quantity:g} {self.symbol} {self.status} "
                f"cum={self.cum_qty:g} avg={self.avg_price:g})")
