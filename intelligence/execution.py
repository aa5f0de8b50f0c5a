"""Execution: the client protocol the engine talks to, and the simulated venue of backtests and
paper trading, with its commission and slippage models.

The engine hands every accepted ``OrderIntent`` to an ``ExecutionClient`` and gets fills back
through ``engine.on_fill``. Backtests (and paper trading on live bars) use ``SimulatedExecution``;
a real broker route (order_routing/, downstream of this layer) implements the same protocol.

Fill rules of the simulated venue (what makes a backtest honest):

- An order can only fill on market data that starts at or after the moment it was submitted:
  a bar whose open time ``ts >= submitted`` (or a quote with ``ts >= submitted``). An order sent
  while bar k is processed (at k's close) therefore fills on bar k + 1, never on k, and never on
  a bar of another symbol that shares k's timestamp but was dispatched later.
- ``fill_on="next_open"``: a market order fills at that bar's open, moved against the order by
  the slippage model. A limit buy fills at the open if the open is at or below the limit,
  else at the limit if the bar's low reaches it (sells mirrored); limit fills get no slippage.
- ``fill_on="quote"``: a market order fills at the first eligible quote, buys at the ask and
  sells at the bid (plus slippage); a limit buy fills at the ask if ask <= limit.
- The whole quantity fills at once (no volume or queue model). Time in force: IOC/FOK are
  cancelled if the first eligible bar or quote does not fill them, DAY at the end of the UTC
  day it was sent, GTC stays working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from intelligence.domain import BUY, LIMIT, Bar, Fill, OrderIntent, Quote

if TYPE_CHECKING:
    from intelligence.engine import Engine

NS_PER_DAY = 86_400_000_000_000
FILL_ON = ("next_open", "quote")


class ExecutionClient(Protocol):
    """What the engine needs from a venue. ``working`` maps each symbol WITH orders not yet
    filled to its signed working quantity (a symbol without orders is absent: the engine calls
    ``on_bar``/``on_quote`` only for symbols in it, which keeps the common bar cheap; it must stay
    the same dict object for the client's life); ``working_qty`` reads it, so a strategy's target
    does not order the same units twice."""

    working: dict[str, float]

    def bind(self, engine: Engine) -> None: ...
    def submit(self, intent: OrderIntent) -> None: ...
    def working_qty(self, symbol: str) -> float: ...
    def on_bar(self, bar: Bar) -> None: ...
    def on_quote(self, quote: Quote) -> None: ...


# -- commission and slippage --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Commission:
    """``per_share``: ``rate`` per unit; ``bps``: ``rate`` basis points of notional; ``fixed``:
    ``rate`` per fill; ``none``. ``minimum`` applies per fill (not to ``none``)."""

    model: str = "none"
    rate: float = 0.0
    minimum: float = 0.0

    def __post_init__(self) -> None:
        if self.model not in ("per_share", "bps", "fixed", "none"):
            raise ValueError(f"commission model must be per_share, bps, fixed or none, got {self.model!r}")
        if self.rate < 0 or self.minimum < 0:
            raise ValueError("commission rate and minimum must be >= 0")

    def __call__(self, qty: float, price: float) -> float:
        model = self.model
        if model == "none":
            return 0.0
        if model == "per_share":
            fee = self.rate * qty
        elif model == "bps":
            fee = self.rate * 1e-4 * qty * price
        else:
            fee = self.rate
        return fee if fee > self.minimum else self.minimum


@dataclass(frozen=True, slots=True)
class Slippage:
    """``bps``: price moved ``amount`` basis points against the order; ``fixed``: ``amount`` in
    price units (e.g. one tick); ``none``."""

    model: str = "none"
    amount: float = 0.0

    def __post_init__(self) -> None:
        if self.model not in ("bps", "fixed", "none"):
            raise ValueError(f"slippage model must be bps, fixed or none, got {self.model!r}")
        if self.amount < 0:
            raise ValueError("slippage amount must be >= 0")

    def __call__(self, side: str, price: float) -> float:
        if self.model == "none":
            return price
        move = price * self.amount * 1e-4 if self.model == "bps" else self.amount
        return price + move if side == BUY else max(price - move, price * 1e-6)


# -- the simulated venue ----------------------------------------------------------------------
class _Working:
    __slots__ = ("intent", "submitted", "signed")

    def __init__(self, intent: OrderIntent, submitted: int) -> None:
        self.intent, self.submitted = intent, submitted
        self.signed = intent.quantity if intent.side == BUY else -intent.quantity


class SimulatedExecution:
    """Fills orders against the next bar (or quote); see the module doc for the rules."""

    __slots__ = ("engine", "commission", "slippage", "fill_on", "venue", "_orders", "working",
                 "_exec_seq", "cancelled")

    def __init__(self, commission: Commission | None = None, slippage: Slippage | None = None,
                 fill_on: str = "next_open", venue: str = "SIM") -> None:
        if fill_on not in FILL_ON:
            raise ValueError(f"fill_on must be one of {FILL_ON}, got {fill_on!r}")
        self.commission = commission or Commission()
        self.slippage = slippage or Slippage()
        self.fill_on, self.venue = fill_on, venue
        self.engine: Engine | None = None
        self._orders: dict[str, list[_Working]] = {}  # symbol -> its working orders (never empty)
        self.working: dict[str, float] = {}  # symbol -> signed working quantity (same keys)
        self._exec_seq = 0
        self.cancelled: list[OrderIntent] = []

    def bind(self, engine: Engine) -> None:
        self.engine = engine

    def submit(self, intent: OrderIntent) -> None:
        order = _Working(intent, self.engine.now)
        self._orders.setdefault(intent.symbol, []).append(order)
        self.working[intent.symbol] = self.working.get(intent.symbol, 0.0) + order.signed

    def working_qty(self, symbol: str) -> float:
        return self.working.get(symbol, 0.0)

    def on_bar(self, bar: Bar) -> None:
        if bar.symbol in self._orders and self.fill_on == "next_open":
            self._match(bar.symbol, bar.ts, bar.open, bar.open, bar.low, bar.high)

    def on_quote(self, quote: Quote) -> None:
        if quote.symbol in self._orders and self.fill_on == "quote":
            self._match(quote.symbol, quote.ts, quote.ask_price, quote.bid_price,
                        quote.ask_price, quote.bid_price)

    def _match(self, symbol: str, ts: int, buy_at: float, sell_at: float, low: float, high: float) -> None:
        """Fill what this market data can fill. Buys pay ``buy_at`` (the open, or the ask), sells
        get ``sell_at``; a buy limit is reached if ``low`` <= limit, a sell limit if ``high`` >= it."""
        still, filled = [], []
        for order in self._orders[symbol]:
            if order.submitted > ts:  # sent after this bar opened: the next one
                still.append(order)
                continue
            intent = order.intent
            buy = intent.side == BUY
            price = None
            if intent.order_type == LIMIT:
                limit = intent.limit_price
                if buy and buy_at <= limit or not buy and sell_at >= limit:
                    price = buy_at if buy else sell_at
                elif buy and low <= limit or not buy and high >= limit:
                    price = limit
            else:
                price = self.slippage(intent.side, buy_at if buy else sell_at)
            if price is not None:
                filled.append((order, price))
            elif intent.time_in_force in ("IOC", "FOK") or (
                    intent.time_in_force == "DAY" and ts // NS_PER_DAY > order.submitted // NS_PER_DAY):
                self.cancelled.append(intent)
                filled.append((order, None))
            else:
                still.append(order)
        if still:
            self._orders[symbol] = still
            self.working[symbol] = sum(o.signed for o in still)
        else:
            del self._orders[symbol], self.working[symbol]
        for order, price in filled:
            if price is None:  # cancelled
                continue
            intent = order.intent
            self._exec_seq += 1
            self.engine.on_fill(Fill(ts, symbol, f"{self.venue}-{self._exec_seq}", intent.cl_ord_id,
                                     intent.side, intent.quantity, price,
                                     self.commission(intent.quantity, price), self.venue, intent.strategy_id))
