"""Cash and position accounting, with the invariant ``cash + sum(position value) == equity``.

Two independent books are kept so the invariant means something:

- the balance sheet: ``cash`` (debited ``qty * price + commission`` by each fill) and each open
  position's ``qty`` and ``mark`` (last price seen); ``equity_from_books()`` sums them;
- the P&L ledger: ``equity``, which starts at the initial cash and only ever moves by P&L:
  ``qty * (new_mark - old_mark)`` when a price is marked, and ``q * (mark - price) - commission``
  when ``q`` units fill at ``price`` (the cost of trading away from the mark).

A sign slip in a cash debit, a lost commission or a position that does not follow its fills
makes the two disagree, and ``check()`` raises ``AccountingError`` with both numbers. The
tolerance is relative (1e-9 of the gross book) because the ledger adds millions of float
increments; with exactly representable prices (the hand-computed tests) they agree exactly.

Round trips (flat -> open -> flat, or a flip through zero) are tracked for the hit rate.
"""

from __future__ import annotations

from intelligence.domain import Fill

TOLERANCE = 1e-9


class AccountingError(AssertionError):
    """The balance sheet and the P&L ledger disagree: a bookkeeping bug, never a market event."""


class Position:
    """One symbol's position: signed ``qty``, ``avg_price`` of the open quantity, ``mark``."""

    __slots__ = ("symbol", "qty", "avg_price", "mark", "realized_pnl", "trip_pnl")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.qty = 0.0
        self.avg_price = 0.0
        self.mark = 0.0
        self.realized_pnl = 0.0  # from closing fills, before commissions
        self.trip_pnl = 0.0  # realized P&L minus commissions of the current round trip

    def __repr__(self) -> str:
        return f"Position({self.symbol} qty={self.qty} avg={self.avg_price} mark={self.mark})"


class Portfolio:
    """Positions by symbol, cash, the P&L ledger and the round trips closed so far."""

    __slots__ = ("initial_cash", "cash", "equity", "positions", "open", "commissions",
                 "traded_notional", "round_trips", "fills")

    def __init__(self, initial_cash: float = 0.0) -> None:
        self.initial_cash = float(initial_cash)
        self.cash = self.equity = self.initial_cash
        self.positions: dict[str, Position] = {}
        self.open: dict[str, Position] = {}  # the non-flat ones: what marks and checks iterate
        self.commissions = 0.0
        self.traded_notional = 0.0
        self.round_trips: list[float] = []  # net P&L of each closed round trip
        self.fills = 0

    def position(self, symbol: str) -> float:
        pos = self.open.get(symbol)
        return pos.qty if pos is not None else 0.0

    def mark(self, symbol: str, price: float) -> None:
        """Mark an open position to ``price`` (the ledger takes the P&L). O(1); flat: no-op."""
        pos = self.open.get(symbol)
        if pos is not None:
            self.equity += pos.qty * (price - pos.mark)
            pos.mark = price

    def apply_fill(self, fill: Fill) -> float:
        """Book a fill on both sides; returns the P&L it realized (before commission)."""
        symbol, price, commission = fill.symbol, fill.last_price, fill.commission
        q = fill.last_qty if fill.side == "B" else -fill.last_qty
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        if pos.qty == 0.0:
            pos.mark = price  # a new position is marked at its fill until the next price
        self.cash -= q * price + commission
        self.equity += q * (pos.mark - price) - commission
        self.commissions += commission
        self.traded_notional += abs(q) * price
        self.fills += 1
        realized = 0.0
        old = pos.qty
        new = old + q
        if old == 0.0 or (old > 0.0) == (q > 0.0):  # opening or adding: average in
            pos.avg_price = (old * pos.avg_price + q * price) / new
        else:  # reducing, closing or flipping
            closed = min(abs(q), abs(old))
            realized = closed * (price - pos.avg_price) * (1.0 if old > 0.0 else -1.0)
            if abs(q) > abs(old):  # flipped: the rest opens at this price
                pos.avg_price = price
            elif new == 0.0:
                pos.avg_price = 0.0
        pos.realized_pnl += realized
        if old == 0.0:
            pos.trip_pnl = -commission
        elif (new == 0.0) or (new > 0.0) != (old > 0.0):
            # a flip's commission goes to the trip it closes; the remainder starts a new one
            self.round_trips.append(pos.trip_pnl + realized - commission)
            pos.trip_pnl = 0.0
        else:
            pos.trip_pnl += realized - commission
        pos.qty = new
        if new == 0.0:
            self.open.pop(symbol, None)
        else:
            self.open[symbol] = pos
        return realized

    def equity_from_books(self) -> tuple[float, float, float]:
        """(cash + sum(qty * mark), gross exposure sum(|qty * mark|), net exposure)."""
        net = gross = 0.0
        for pos in self.open.values():
            value = pos.qty * pos.mark
            net += value
            gross += value if value > 0.0 else -value
        return self.cash + net, gross, net

    def check(self) -> tuple[float, float, float]:
        """Raise AccountingError unless cash + sum(position value) == equity (the P&L ledger);
        returns ``equity_from_books()``."""
        net = gross = 0.0  # equity_from_books(), inlined: this runs once per bar in a backtest
        for pos in self.open.values():
            value = pos.qty * pos.mark
            net += value
            gross += value if value > 0.0 else -value
        books = self.cash + net
        if books != self.equity and abs(books - self.equity) > TOLERANCE * (abs(self.cash) + gross + 1.0):
            raise AccountingError(f"cash {self.cash!r} + positions {net!r} = {books!r} "
                                  f"!= equity {self.equity!r} (P&L ledger)")
        return books, gross, net
