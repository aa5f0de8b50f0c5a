"""Pre-trade risk: ``PreTradeRisk.check(intent, oms) -> reason or None``, before anything is sent.

Rules run in a fixed order and the first failing one names the reject (``"RULE: detail"``); a
numeric limit of 0 switches its rule off (``tradelake.config.RiskConfig``):

1. KILL_SWITCH: ``limits.kill_switch`` or the ``KillSwitch`` is engaged: every new order.
2. MAX_ORDER_QTY: the order's quantity.
3. NO_MARK / MAX_ORDER_NOTIONAL: quantity x (limit price, else the last trade). A market order
   of a symbol with no last trade cannot be valued: NO_MARK (when a notional or exposure limit
   is on).
4. PRICE_COLLAR: a limit price more than ``price_collar_pct`` % from the last trade (a symbol
   with no last trade is not collared: there is nothing to compare with).
5. MAX_POSITION: |position + working orders on the order's side + the order| per symbol.
6. MAX_GROSS_EXPOSURE: sum over symbols of the worse side's |position + working| x price (the
   last trade, else the position's average cost), the order included.
7. DAILY_LOSS: the account's P&L (realized + unrealized - commission) since the start of the
   UTC day is below -limit. Only orders that increase risk are refused: an order that moves the
   position toward flat without crossing it (working orders on its side included) passes.
8. RISK_MODEL: ``risk_model(symbol)``'s volatility forecast above ``risk_model_max_vol`` (again
   only for orders that increase risk: a risky regime is a reason to get out, not to stay in).
9. THROTTLE: a token bucket of ``max_orders_per_s`` with a one-second burst, last so that only
   orders about to be sent take a token.

The day's P&L starts from the P&L seen at the first check of the UTC day (``reset_day`` sets it
when a restarted router knows better). ``check`` is on the order path of the latency benchmark:
no logging, no allocation on the pass path, and the position rules read the OMS's per-symbol
book (one object) rather than summing orders. The OMS calls it under its lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from intelligence.domain import BUY, OrderIntent

if TYPE_CHECKING:
    from order_routing.oms import OrderManager
    from order_routing.positions import Order

log = logging.getLogger(__name__)

NS_PER_DAY = 86_400_000_000_000
NS_PER_S = 1_000_000_000
EPSILON = 1e-9


def _n(x: float) -> str:
    return f"{x:.10g}"


class KillSwitch:
    """Refuse every new order while engaged. ``engage``/``release`` flip it in process (the
    ODS watcher, ``order_routing.kill_switch.watch``, does so from the shared row); ``poll``, if
    given, is re-read at most every ``poll_interval_s`` when ``engaged`` is asked, returning
    (engaged, reason) or None for "no news". A failing poll keeps the last state (logged)."""

    __slots__ = ("_engaged", "_reason", "_poll", "_interval_ns", "_next_poll_ns", "_clock")

    def __init__(self, poll: Callable[[], tuple[bool, str] | None] | None = None,
                 poll_interval_s: float = 1.0, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._engaged = False
        self._reason = ""
        self._poll = poll
        self._interval_ns = int(poll_interval_s * NS_PER_S)
        self._next_poll_ns = 0
        self._clock = clock

    @property
    def engaged(self) -> bool:
        if self._poll is not None:
            self._refresh()
        return self._engaged

    @property
    def reason(self) -> str:
        return self._reason

    def engage(self, reason: str = "engaged") -> None:
        if not self._engaged or reason != self._reason:
            log.warning("kill switch engaged: %s", reason)
        self._engaged, self._reason = True, reason

    def release(self) -> None:
        if self._engaged:
            log.warning("kill switch released (was: %s)", self._reason)
        self._engaged, self._reason = False, ""

    def _refresh(self) -> None:
        now = self._clock()
        if now < self._next_poll_ns:
            return
        self._next_poll_ns = now + self._interval_ns
        try:
            state = self._poll()  # type: ignore[misc]  # only called when set
        except Exception:
            log.exception("kill switch poll failed; keeping it %s",
                          "ENGAGED" if self._engaged else "released")
            return
        if state is not None:
            if state[0]:
                self.engage(state[1] or "engaged")
            else:
                self.release()


class PreTradeRisk:
    """The pre-trade checks of one account; see the module doc for the rules and their order."""

    def __init__(self, limits: Any, marks: Mapping[str, float] | None = None,
                 clock: Callable[[], int] = time.time_ns,
                 risk_model: Callable[[str], float | None] | None = None,
                 kill_switch: KillSwitch | None = None) -> None:
        # Limits are read once into plain attributes: the checks are on the hot path.
        self.max_order_qty = float(limits.max_order_qty)
        self.max_order_notional = float(limits.max_order_notional)
        self.max_position = float(limits.max_position)
        self.max_gross_exposure = float(limits.max_gross_exposure)
        self.price_collar_pct = float(limits.price_collar_pct)
        self.max_orders_per_s = float(limits.max_orders_per_s)
        self.daily_loss_limit = float(limits.daily_loss_limit)
        self.risk_model_max_vol = float(getattr(limits, "risk_model_max_vol", 0.0))
        self.config_kill = bool(getattr(limits, "kill_switch", False))
        self.marks: Mapping[str, float] = marks if marks is not None else {}
        self.clock = clock
        self.risk_model = risk_model
        self.kill_switch = kill_switch
        self._capacity = max(self.max_orders_per_s, 1.0)  # a one-second burst (at least one order)
        self._tokens = self._capacity  # the bucket starts full
        self._per_ns = self.max_orders_per_s / NS_PER_S
        self._refilled_ns = 0
        self._day = -1
        self._day_start_pnl = 0.0

    def reset_day(self, day_start_pnl: float, now_ns: int | None = None) -> None:
        """Set the P&L the current UTC day started from (e.g. after a restart mid-day)."""
        self._day = (self.clock() if now_ns is None else now_ns) // NS_PER_DAY
        self._day_start_pnl = day_start_pnl

    def day_pnl(self, oms: OrderManager) -> float:
        """P&L since the start of the current UTC day (as far as this process has seen it)."""
        # OrderManager.pnl() inlined (no summary dict, no second lock): this runs for every order
        # that adds risk while a daily loss limit is set.
        total, marks, fallback = 0.0, self.marks, oms.marks
        for pos in oms.positions_view():
            total += pos.realized_pnl - pos.commission
            if pos.quantity:
                mark = marks.get(pos.symbol)
                if mark is None:
                    mark = fallback.get(pos.symbol)
                if mark is not None:
                    total += pos.quantity * (mark - pos.avg_price)
        day = self.clock() // NS_PER_DAY
        if day != self._day:
            self._day, self._day_start_pnl = day, total
        return total - self._day_start_pnl

    def check(self, intent: OrderIntent, oms: OrderManager, replacing: Order | None = None) -> str | None:
        """The reason to refuse ``intent``, or None. ``replacing``: the order a cancel/replace
        would replace (its open quantity is replaced, its filled part stays)."""
        if self.config_kill:
            return "KILL_SWITCH: routing.risk.kill_switch is set"
        switch = self.kill_switch
        if switch is not None and switch.engaged:
            return f"KILL_SWITCH: {switch.reason}"
        qty = intent.quantity
        if self.max_order_qty and qty > self.max_order_qty:
            return f"MAX_ORDER_QTY: {_n(qty)} > {_n(self.max_order_qty)}"
        symbol = intent.symbol
        mark = self.marks.get(symbol)
        limit_price = intent.limit_price
        price = limit_price if limit_price is not None else mark
        if price is None:
            if self.max_order_notional or self.max_gross_exposure:
                return f"NO_MARK: no last trade of {symbol} to value a market order"
        elif self.max_order_notional and qty * price > self.max_order_notional:
            return f"MAX_ORDER_NOTIONAL: {_n(qty * price)} > {_n(self.max_order_notional)}"
        if self.price_collar_pct and limit_price is not None and mark:
            off = abs(limit_price - mark) / mark * 100.0
            if off > self.price_collar_pct + EPSILON:
                return (f"PRICE_COLLAR: limit {_n(limit_price)} is {off:.2f}% from last trade {_n(mark)} "
                        f"(max {_n(self.price_collar_pct)}%)")
        if self.max_position or self.max_gross_exposure or self.daily_loss_limit or self.risk_model_max_vol:
            reason = self._position_rules(intent, oms, replacing, price)
            if reason is not None:
                return reason
        if self.max_orders_per_s:
            return self._throttle()
        return None

    def _position_rules(self, intent: OrderIntent, oms: OrderManager, replacing: Order | None,
                        price: float | None) -> str | None:
        symbol, buy = intent.symbol, intent.side == BUY
        book = oms.position(symbol)
        position, same_side = book.quantity, book.working_buy if buy else book.working_sell
        add = intent.quantity
        if replacing is not None:  # the replacement's open part takes the place of the old one's
            same_side -= replacing.working
            add -= replacing.cum_qty
        if self.max_position:
            after = position + same_side + add if buy else position - same_side - add
            if abs(after) > self.max_position + EPSILON:
                return (f"MAX_POSITION: {symbol} would be {_n(after)} with working orders, "
                        f"limit {_n(self.max_position)}")
        if self.max_gross_exposure:
            gross = self._gross(oms, symbol, buy, same_side + add, price)
            if gross > self.max_gross_exposure + EPSILON:
                return f"MAX_GROSS_EXPOSURE: {_n(gross)} > {_n(self.max_gross_exposure)}"
        if not (self.daily_loss_limit or (self.risk_model_max_vol and self.risk_model is not None)):
            return None
        if self.daily_loss_limit and self.clock() // NS_PER_DAY != self._day:
            self.day_pnl(oms)  # a new UTC day: its P&L starts from here, whatever this order is
        reducing = -position >= same_side + add - EPSILON if buy else position >= same_side + add - EPSILON
        if reducing:
            return None
        if self.daily_loss_limit:
            day_pnl = self.day_pnl(oms)
            if day_pnl < -self.daily_loss_limit:
                return (f"DAILY_LOSS: day P&L {_n(day_pnl)} < -{_n(self.daily_loss_limit)}; "
                        f"only orders reducing a position pass")
        if self.risk_model_max_vol and self.risk_model is not None:
            vol = self.risk_model(symbol)
            if vol is not None and vol > self.risk_model_max_vol:
                return f"RISK_MODEL: {symbol} volatility forecast {vol:.6g} > {_n(self.risk_model_max_vol)}"
        return None

    def _gross(self, oms: OrderManager, symbol: str, buy: bool, side_total: float,
               price: float | None) -> float:
        """Gross exposure with the order: ``side_total`` is the order's side of its symbol, the
        working quantity there included."""
        gross, marks = 0.0, self.marks
        for book in oms.positions_view():
            q, long_side, short_side = book.quantity, book.working_buy, book.working_sell
            if book.symbol == symbol:
                if buy:
                    long_side = side_total
                else:
                    short_side = side_total
            up, down = abs(q + long_side), abs(q - short_side)
            worst = up if up > down else down
            if worst:
                mark = marks.get(book.symbol)
                if mark is None:
                    mark = price if book.symbol == symbol and price is not None else book.avg_price
                gross += worst * mark
        return gross

    def _throttle(self) -> str | None:
        now = self.clock()
        tokens = self._tokens
        if now > self._refilled_ns:  # a clock going back refills nothing
            tokens += (now - self._refilled_ns) * self._per_ns
            if tokens > self._capacity:
                tokens = self._capacity
            self._refilled_ns = now
        if tokens < 1.0:
            self._tokens = tokens
            return f"THROTTLE: more than {_n(self.max_orders_per_s)} orders/s"
        self._tokens = tokens - 1.0
        return None
