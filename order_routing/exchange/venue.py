"""The exchange's order handling: FIX 4.4 requests applied to one ``OrderBook`` per symbol.

Kept apart from the QuickFIX plumbing (``acceptor.py``): a ``Venue`` takes a request as its FIX
string and answers through ``send(client_comp_id, fix_string)``, so it needs no session to run.

- NewOrderSingle (D): checks (duplicate ClOrdID, listed symbol, side/type/TIF, quantity, price:
  positive, on the tick grid, within ``price_band_pct`` of the mark), then ExecutionReports:
  NEW, a TRADE per fill, and CANCELED for an unfilled market/IOC/FOK remainder; else REJECTED.
- OrderCancelRequest (F) and OrderCancelReplaceRequest (G): CANCELED / REPLACED (then any trades
  the new price makes), or an OrderCancelReject (9) saying why (unknown order, too late,
  duplicate ClOrdID, quantity below the filled one...).
- OrderStatusRequest (H): an ExecutionReport with ExecType I (OrdStatus REJECTED if unknown).
- A resent request (PossDupFlag 43=Y) whose ClOrdID is known was processed already: ignored. One
  older than ``STALE_RESEND_S`` by its OrigSendingTime (122) is refused as stale.

ExecIDs and OrderIDs carry the venue's start time (ms, hex) and a counter: unique across restarts.
A trade between two clients moves the symbol's mark to its price (the market maker re-quotes
around it); a trade against the market maker only replenishes its quotes. One lock serialises
everything: QuickFIX's thread and the marks thread both come through it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from order_routing.events import LIMIT, ORD_TYPE_BY_FIX, SIDE_BY_FIX, TIME_IN_FORCE_BY_FIX
from order_routing.exchange.book import EPS, BookError, Order, OrderBook, Trade
from order_routing.fix_common import BEGIN_STRING, SOH, fields, num, parse_timestamp, utc_timestamp

if TYPE_CHECKING:
    from tradelake.config import ExchangeConfig

log = logging.getLogger(__name__)

STALE_RESEND_S = 60.0
_STATUS_CHAR = {"NEW": "0", "PARTIALLY_FILLED": "1", "FILLED": "2", "CANCELED": "4", "REJECTED": "8"}
_SIDE_CHAR = {"B": "1", "S": "2"}
_TIF_CHAR = {"DAY": "0", "GTC": "1", "IOC": "3", "FOK": "4"}
_HEAD8 = f"8={BEGIN_STRING}{SOH}9=0{SOH}35=8{SOH}"
_HEAD9 = f"8={BEGIN_STRING}{SOH}9=0{SOH}35=9{SOH}"


class Venue:
    """Books, orders and counters of the simulated exchange."""

    def __init__(self, cfg: ExchangeConfig, symbols: Sequence[str],
                 send: Callable[[str, str], None]) -> None:
        self.send = send
        self.books = {s: OrderBook(s, cfg.tick_size, mm_qty=cfg.liquidity_qty,
                                   half_spread_bps=cfg.half_spread_bps, price_band_pct=cfg.price_band_pct)
                      for s in symbols}
        self.lock = threading.Lock()
        self._prefix = f"{time.time_ns() // 1_000_000:x}"
        self._exec_n = self._order_n = 0
        self._orders: dict[tuple[str, str], tuple[Order, OrderBook] | None] = {}  # None: refused
        self.counts = dict.fromkeys(("orders", "fills", "rejects", "cancels", "replaces", "cancel_rejects",
                                     "status", "resends_ignored", "marks", "reports_lost"), 0)

    def set_mark(self, symbol: str, price: float) -> None:
        """New mark for ``symbol`` (unknown symbols ignored); re-posts the market maker's quotes,
        which may fill resting orders the market moved through."""
        book = self.books.get(symbol)
        if book is None:
            return
        with self.lock:
            self.counts["marks"] += 1
            self._report_trades(book, book.set_mark(price))

    # ----- requests
    def on_message(self, raw: str) -> None:
        """Handle one application message (its FIX string) from client ``49``."""
        d = fields(raw)
        key, msg_type = d["49"], d["35"]
        with self.lock:
            if d.get("43") == "Y" and self._resent(key, d):
                return
            if msg_type == "D":
                self._new(key, d)
            elif msg_type == "F":
                self._cancel(key, d)
            elif msg_type == "G":
                self._replace(key, d)
            elif msg_type == "H":
                self._status(key, d)
            else:
                log.warning("session %s: unsupported message type %s", key, msg_type)

    def _resent(self, key: str, d: dict[str, str]) -> bool:
        """A resent request: True (and dealt with) when seen before or stale."""
        if d["35"] in "DFG" and (key, d.get("11", "")) in self._orders:
            self.counts["resends_ignored"] += 1
            return True
        orig = d.get("122")
        if orig and time.time_ns() - parse_timestamp(orig) > STALE_RESEND_S * 1e9:
            text = f"stale resend: OrigSendingTime {orig} is more than {STALE_RESEND_S:g}s old"
            if d["35"] == "D":
                self._reject(key, d, text)
            elif d["35"] in "FG":
                self._cancel_reject(key, d, None, text, "99")
            return d["35"] in "DFG"
        return False

    def _new(self, key: str, d: dict[str, str]) -> None:
        cl = d.get("11", "")
        if (key, cl) in self._orders:
            return self._reject(key, d, f"duplicate ClOrdID {cl}")
        self._orders[(key, cl)] = None
        book = self.books.get(d.get("55", ""))
        if book is None:
            return self._reject(key, d, f"unknown symbol {d.get('55')!r}")
        side, kind = SIDE_BY_FIX.get(d.get("54", "")), ORD_TYPE_BY_FIX.get(d.get("40", ""))
        tif = TIME_IN_FORCE_BY_FIX.get(d.get("59", "0"))
        if side is None or kind is None or tif is None:
            return self._reject(key, d, "unsupported side, order type or time in force")
        try:
            qty = _quantity(d.get("38"))
            ticks = book.ticks(float(d["44"])) if kind == LIMIT else None
            order = Order(self._next_order_id(), side, qty, ticks, tif, key, cl)
            trades = book.submit(order)
        except (BookError, KeyError, ValueError) as exc:
            why = "limit order without a price" if isinstance(exc, KeyError) else str(exc)
            return self._reject(key, d, why)
        self._orders[(key, cl)] = (order, book)
        self.counts["orders"] += 1
        self._order_report(order, book, "0", status="NEW", cum=0.0, avg=0.0)
        self._finish(order, book, trades)

    def _cancel(self, key: str, d: dict[str, str]) -> None:
        entry = self._lookup(key, d)
        if entry is None:
            return
        order, book = entry
        try:
            book.cancel(order)
        except BookError as exc:
            return self._cancel_reject(key, d, order, f"too late to cancel: {exc}", "0")
        orig, order.cl_ord_id = order.cl_ord_id, d["11"]
        self._orders[(key, order.cl_ord_id)] = entry
        self.counts["cancels"] += 1
        self._order_report(order, book, "4", orig=d.get("41", orig))

    def _replace(self, key: str, d: dict[str, str]) -> None:
        entry = self._lookup(key, d)
        if entry is None:
            return
        order, book = entry
        before = (order.status, order.cum_qty, order.avg_price)
        try:
            kind = ORD_TYPE_BY_FIX[d.get("40", "2")]
            ticks = book.ticks(float(d["44"])) if kind == LIMIT else None
            trades = book.replace(order, _quantity(d.get("38")), ticks)
        except (BookError, KeyError, ValueError) as exc:
            why = "unsupported order type or no price" if isinstance(exc, KeyError) else str(exc)
            return self._cancel_reject(key, d, order, why, "99")
        orig, order.cl_ord_id = order.cl_ord_id, d["11"]
        self._orders[(key, order.cl_ord_id)] = entry
        self.counts["replaces"] += 1
        if trades:  # the replace report shows the order before the trades it then made
            self._order_report(order, book, "5", status=before[0], cum=before[1], avg=before[2], orig=orig)
        else:
            self._order_report(order, book, "5", orig=orig)
        self._finish(order, book, trades)

    def _status(self, key: str, d: dict[str, str]) -> None:
        self.counts["status"] += 1
        entry = self._orders.get((key, d.get("11", "")))
        if entry is None:
            return self._reject(key, d, "unknown order", exec_type="I")
        order, book = entry
        self._order_report(order, book, "I", cl=d["11"])

    def _lookup(self, key: str, d: dict[str, str]) -> tuple[Order, OrderBook] | None:
        """The order a cancel or replace names, or None after sending the cancel reject."""
        cl, orig = d.get("11", ""), d.get("41", "")
        if (key, cl) in self._orders:
            self._cancel_reject(key, d, None, f"duplicate ClOrdID {cl}", "6")
            return None
        self._orders[(key, cl)] = None
        entry = self._orders.get((key, orig))
        if entry is None:
            self._cancel_reject(key, d, None, f"unknown order {orig}", "1")
            return None
        order, book = entry
        if d.get("55") != book.symbol or SIDE_BY_FIX.get(d.get("54", "")) != order.side:
            self._cancel_reject(key, d, order, "symbol or side differ from the order's", "99")
            return None
        return entry

    def _finish(self, order: Order, book: OrderBook, trades: list[Trade]) -> None:
        """Report trades, an unfilled remainder canceled (market/IOC/FOK), then move the mark."""
        self._report_trades(book, trades)
        if order.status == "CANCELED":
            kind = "market order" if order.price is None else order.tif
            self._order_report(order, book, "4", text=f"unfilled remainder canceled ({kind})")
        if trades:
            # A trade between clients moves the mark; one against the market maker only has it
            # replenish its quotes (moving the mark to its own quote would walk one-sided flow
            # away on the maker's spread).
            between_clients = [t.price for t in trades if t.maker.owner is not None]
            price = between_clients[-1] if between_clients else book.mark
            if price:
                self._report_trades(book, book.set_mark(price))

    # ----- reports
    def _report_trades(self, book: OrderBook, trades: list[Trade]) -> None:
        for t in trades:
            for order, cum, avg in ((t.taker, t.taker_cum, t.taker_avg), (t.maker, t.maker_cum, t.maker_avg)):
                if order.owner is not None:
                    self.counts["fills"] += 1
                    status = "FILLED" if order.qty - cum <= EPS else "PARTIALLY_FILLED"
                    self._order_report(order, book, "F", status=status, cum=cum, avg=avg,
                                       last=(t.qty, t.price))

    def _order_report(self, order: Order, book: OrderBook, exec_type: str, *, status: str | None = None,
                      cum: float | None = None, avg: float | None = None,
                      last: tuple[float, float] | None = None, orig: str | None = None,
                      text: str | None = None, cl: str | None = None) -> None:
        status = order.status if status is None else status
        cum = order.cum_qty if cum is None else cum
        avg = order.avg_price if avg is None else avg
        leaves = 0.0 if status in ("FILLED", "CANCELED") else max(order.qty - cum, 0.0)
        body = (f"37={order.order_id}{SOH}11={cl or order.cl_ord_id}{SOH}17={self._next_exec_id()}{SOH}"
                f"150={exec_type}{SOH}39={_STATUS_CHAR[status]}{SOH}55={book.symbol}{SOH}"
                f"54={_SIDE_CHAR[order.side]}{SOH}38={num(order.qty)}{SOH}"
                f"40={'1' if order.price is None else '2'}{SOH}59={_TIF_CHAR[order.tif]}{SOH}"
                f"151={num(leaves)}{SOH}14={num(cum)}{SOH}6={num(avg)}{SOH}60={utc_timestamp()}{SOH}")
        if order.price is not None:
            body += f"44={num(book.price(order.price))}{SOH}"
        if last is not None:
            body += f"32={num(last[0])}{SOH}31={num(last[1])}{SOH}"
        if orig:
            body += f"41={orig}{SOH}"
        if text:
            body += f"58={text}{SOH}"
        self._send(order.owner, _HEAD8 + body)

    def _reject(self, key: str, d: dict[str, str], text: str, exec_type: str = "8") -> None:
        """An ExecutionReport refusing request ``d`` (a new order, or a status request's answer)."""
        if exec_type == "8":
            self.counts["rejects"] += 1
        body = (f"37=NONE{SOH}11={d.get('11', 'NONE')}{SOH}17={self._next_exec_id()}{SOH}150={exec_type}{SOH}"
                f"39=8{SOH}55={d.get('55', 'NONE')}{SOH}54={d.get('54', '1')}{SOH}151=0{SOH}14=0{SOH}6=0{SOH}"
                f"60={utc_timestamp()}{SOH}58={text}{SOH}")
        self._send(key, _HEAD8 + body)

    def _cancel_reject(self, key: str, d: dict[str, str], order: Order | None, text: str,
                       reason: str) -> None:
        self.counts["cancel_rejects"] += 1
        status = _STATUS_CHAR.get(order.status, "8") if order is not None else "8"
        body = (f"37={order.order_id if order is not None else 'NONE'}{SOH}11={d.get('11', 'NONE')}{SOH}"
                f"41={d.get('41', 'NONE')}{SOH}39={status}{SOH}434={'1' if d['35'] == 'F' else '2'}{SOH}"
                f"102={reason}{SOH}60={utc_timestamp()}{SOH}58={text}{SOH}")
        self._send(key, _HEAD9 + body)

    def _send(self, key: str, head_and_body: str) -> None:
        self.send(key, f"{head_and_body}10=000{SOH}")

    def _next_exec_id(self) -> str:
        self._exec_n += 1
        return f"{self._prefix}.{self._exec_n}"

    def _next_order_id(self) -> str:
        self._order_n += 1
        return f"O{self._prefix}.{self._order_n}"


def _quantity(value: str | None) -> float:
    qty = float(value) if value else float("nan")
    if not (math.isfinite(qty) and qty > 0):
        raise ValueError(f"quantity {value!r} must be a positive number")
    return qty
