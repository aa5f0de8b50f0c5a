"""The vocabulary of order processing, shared by the OMS, the routes and the simulated exchange.

- Order states are FIX 4.4 OrdStatus names; the legal moves are ``ods.store.ORDER_TRANSITIONS``
  (one table for the OMS, the ODS trigger and the tests).
- New orders are ``intelligence.domain.OrderIntent`` values: the engine's intent is the order
  (one kernel for backtest and live: only the execution client differs).
- Cancel and cancel/replace requests carry their own new ClOrdID, as in FIX (41 = the order).
- Everything a venue says about an order is an ``ExecReport`` (FIX 35=8), whatever the route:
  the FIX route and the IB route both turn their venue's messages into these. Its fields are the
  canonical EXECUTION row (``tradelake/schemas.py``). A refused cancel is a ``CancelReject``
  (FIX 35=9). A risk reject is an ExecReport too (exec_type REJECTED, venue RISK, text = reason).
  A message of ours the venue refused unread (a FIX session Reject 35=3 or BusinessMessageReject
  35=j) is a ``RequestReject``: the OMS turns it into the order's REJECTED report, or a cancel
  reject for a cancel or replace.
- A ``Route`` is what the OMS sends through; reports come back through the callback given to
  ``connect`` (on the route's own thread).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from intelligence.domain import BUY, LIMIT, MARKET, SELL, SIDES, OrderIntent, _fast_init
from ods.store import ORDER_TRANSITIONS

__all__ = ["BUY", "LIMIT", "MARKET", "SIDES", "OrderIntent"]  # re-exported for routes

_INF = math.inf
FINAL_STATES = frozenset(state for state, moves in ORDER_TRANSITIONS.items() if not moves)

# FIX 4.4 tag 150 ExecType and tag 39 OrdStatus: wire character <-> name.
EXEC_TYPE_BY_FIX = {"0": "NEW", "3": "DONE_FOR_DAY", "4": "CANCELED", "5": "REPLACED",
                    "6": "PENDING_CANCEL", "8": "REJECTED", "A": "PENDING_NEW", "C": "EXPIRED",
                    "E": "PENDING_REPLACE", "F": "TRADE", "I": "ORDER_STATUS"}
ORD_STATUS_BY_FIX = {"0": "NEW", "1": "PARTIALLY_FILLED", "2": "FILLED", "3": "DONE_FOR_DAY",
                     "4": "CANCELED", "5": "REPLACED", "6": "PENDING_CANCEL", "8": "REJECTED",
                     "A": "PENDING_NEW", "C": "EXPIRED", "E": "PENDING_REPLACE"}
FIX_EXEC_TYPE = {name: char for char, name in EXEC_TYPE_BY_FIX.items()}
FIX_ORD_STATUS = {name: char for char, name in ORD_STATUS_BY_FIX.items()}
FIX_SIDE = {BUY: "1", "S": "2"}
SIDE_BY_FIX = {char: side for side, char in FIX_SIDE.items()}
FIX_ORD_TYPE = {MARKET: "1", LIMIT: "2"}
ORD_TYPE_BY_FIX = {char: kind for kind, char in FIX_ORD_TYPE.items()}
FIX_TIME_IN_FORCE = {"DAY": "0", "GTC": "1", "IOC": "3", "FOK": "4"}
TIME_IN_FORCE_BY_FIX = {char: tif for tif, char in FIX_TIME_IN_FORCE.items()}


class OrderError(ValueError):
    """An order request or report is invalid, or a move the order's state does not allow."""


def _text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value or value != value.strip():
        raise OrderError(f"{name} must be a non-empty string without surrounding spaces, got {value!r}")


def _qty(name: str, value: object, *, positive: bool) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise OrderError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Cancel order ``orig_cl_ord_id``; the request itself is ``cl_ord_id`` (FIX 35=F)."""

    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: str
    quantity: float

    def __post_init__(self) -> None:
        for name in ("cl_ord_id", "orig_cl_ord_id", "symbol"):
            _text(name, getattr(self, name))
        if self.side not in SIDES:
            raise OrderError(f"side must be one of {SIDES}, got {self.side!r}")
        _qty("quantity", self.quantity, positive=True)


@dataclass(frozen=True, slots=True)
class ReplaceRequest:
    """Replace order ``orig_cl_ord_id`` by ``cl_ord_id`` with a new quantity and/or limit price
    (FIX 35=G). ``quantity`` is the new TOTAL order quantity, filled part included, as in FIX."""

    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: str
    quantity: float
    order_type: str = LIMIT
    limit_price: float | None = None

    def __post_init__(self) -> None:
        for name in ("cl_ord_id", "orig_cl_ord_id", "symbol"):
            _text(name, getattr(self, name))
        if self.side not in SIDES:
            raise OrderError(f"side must be one of {SIDES}, got {self.side!r}")
        _qty("quantity", self.quantity, positive=True)
        if self.order_type == LIMIT:
            if self.limit_price is None:
                raise OrderError(f"replace {self.cl_ord_id}: a limit order needs a limit_price")
            _qty("limit_price", self.limit_price, positive=True)
        elif self.order_type != MARKET or self.limit_price is not None:
            raise OrderError(f"replace {self.cl_ord_id}: order_type {self.order_type!r} with "
                             f"limit_price {self.limit_price!r}")


@_fast_init
@dataclass(frozen=True, slots=True)
class ExecReport:
    """What a venue said about an order (FIX 35=8): one canonical EXECUTION row, including the
    order a cancel/replace acted on (``orig_cl_ord_id``, tag 41) and free text (a reject reason, 58)."""

    ts: int
    symbol: str
    exec_id: str
    cl_ord_id: str
    exec_type: str
    order_status: str
    side: str
    last_qty: float = 0.0
    last_price: float = 0.0
    cum_qty: float = 0.0
    leaves_qty: float = 0.0
    avg_price: float = 0.0
    order_id: str | None = None
    commission: float | None = None
    venue: str = "SIM"
    orig_cl_ord_id: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        # Fast path (a route builds two per order): one combined predicate for the common case
        # (float quantities, plain str ids); when it is unsure, the precise checks below decide
        # and raise the error that names the field.
        try:
            sym, eid, cid, venue = self.symbol, self.exec_id, self.cl_ord_id, self.venue
            lq, lp, cq, lv, ap, com = (self.last_qty, self.last_price, self.cum_qty, self.leaves_qty,
                                       self.avg_price, self.commission)
            if (type(self.ts) is int and self.ts >= 0
                    and type(sym) is type(eid) is type(cid) is type(venue) is str
                    and sym.strip() == sym != "" and eid.strip() == eid != "" and cid.strip() == cid != ""
                    and venue.strip() == venue != ""
                    and self.exec_type in FIX_EXEC_TYPE and self.order_status in ORDER_TRANSITIONS
                    and (self.side == BUY or self.side == SELL)
                    and type(lq) is type(lp) is type(cq) is type(lv) is type(ap) is float
                    and 0.0 <= lq < _INF and 0.0 <= lp < _INF and 0.0 <= cq < _INF and 0.0 <= lv < _INF
                    and 0.0 <= ap < _INF
                    and (self.exec_type != "TRADE" or (lq > 0.0 and lp > 0.0))
                    and (com is None or (type(com) is float and 0.0 <= com < _INF))):
                return
        except TypeError:  # e.g. an unhashable exec_type: the checks below say what is wrong
            pass
        if not isinstance(self.ts, int) or isinstance(self.ts, bool) or self.ts < 0:
            raise OrderError(f"ts must be a non-negative int of UTC ns, got {self.ts!r}")
        for name in ("symbol", "exec_id", "cl_ord_id", "venue"):
            _text(name, getattr(self, name))
        if self.exec_type not in FIX_EXEC_TYPE:
            raise OrderError(f"exec_type must be one of {sorted(FIX_EXEC_TYPE)}, got {self.exec_type!r}")
        if self.order_status not in ORDER_TRANSITIONS:
            raise OrderError(f"order_status must be one of {sorted(ORDER_TRANSITIONS)}, "
                             f"got {self.order_status!r}")
        if self.side not in SIDES:
            raise OrderError(f"side must be one of {SIDES}, got {self.side!r}")
        for name in ("last_qty", "last_price", "cum_qty", "leaves_qty", "avg_price"):
            _qty(name, getattr(self, name), positive=False)
        if self.exec_type == "TRADE" and not (self.last_qty > 0 and self.last_price > 0):
            raise OrderError(f"trade report {self.exec_id}: last_qty and last_price must be > 0")
        if self.commission is not None:
            _qty("commission", self.commission, positive=False)

    @property
    def is_fill(self) -> bool:
        return self.exec_type == "TRADE"

    def row(self) -> dict[str, object]:
        """The canonical EXECUTION row (``tradelake.schemas.EXECUTION`` field names)."""
        return {"ts": self.ts, "symbol": self.symbol, "exec_id": self.exec_id,
                "cl_ord_id": self.cl_ord_id, "order_id": self.order_id, "exec_type": self.exec_type,
                "order_status": self.order_status, "side": self.side, "last_qty": self.last_qty,
                "last_price": self.last_price, "cum_qty": self.cum_qty, "leaves_qty": self.leaves_qty,
                "avg_price": self.avg_price, "commission": self.commission, "venue": self.venue,
                "orig_cl_ord_id": self.orig_cl_ord_id, "text": self.text}


@dataclass(frozen=True, slots=True)
class CancelReject:
    """The venue refused a cancel or cancel/replace (FIX 35=9): request ``cl_ord_id`` on order
    ``orig_cl_ord_id``, which stays in ``order_status``; ``text`` says why."""

    ts: int
    cl_ord_id: str
    orig_cl_ord_id: str
    order_status: str
    response_to: str  # "CANCEL" (434=1) or "REPLACE" (434=2)
    text: str | None = None
    venue: str = "SIM"

    def __post_init__(self) -> None:
        for name in ("cl_ord_id", "orig_cl_ord_id", "venue"):
            _text(name, getattr(self, name))
        if self.order_status not in ORDER_TRANSITIONS:
            raise OrderError(f"order_status must be one of {sorted(ORDER_TRANSITIONS)}, "
                             f"got {self.order_status!r}")
        if self.response_to not in ("CANCEL", "REPLACE"):
            raise OrderError(f"response_to must be CANCEL or REPLACE, got {self.response_to!r}")


@dataclass(frozen=True, slots=True)
class RequestReject:
    """The venue refused one of our requests without acting on it (FIX session Reject 35=3, or
    BusinessMessageReject 35=j): ``cl_ord_id`` is the request's own ClOrdID (a new order's, or a
    cancel's or replace's), ``orig_cl_ord_id`` the order a cancel or replace was for (FIX 41),
    when known; ``text`` says why."""

    ts: int
    cl_ord_id: str
    text: str
    venue: str = "SIM"
    orig_cl_ord_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("cl_ord_id", "text", "venue"):
            _text(name, getattr(self, name))


Report = ExecReport | CancelReject | RequestReject
ReportHandler = Callable[[Report], None]


class Route(Protocol):
    """A way to a venue. ``connect`` returns once the session can take orders (FIX: logged on)
    and then calls ``on_report`` for every report, on the route's thread, in the venue's order.
    Sends are asynchronous: the answer is a later report (a reject is a report too)."""

    venue: str

    def connect(self, on_report: ReportHandler, timeout_s: float = 30.0) -> None: ...
    def send_new(self, order: OrderIntent) -> None: ...
    def send_cancel(self, request: CancelRequest) -> None: ...
    def send_replace(self, request: ReplaceRequest) -> None: ...
    def request_status(self, cl_ord_id: str, symbol: str, side: str) -> None: ...
    def close(self) -> None: ...
