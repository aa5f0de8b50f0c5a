"""The order management system: the one owner of order state between strategies and a route.

- Orders move only along ``ods.store.ORDER_TRANSITIONS`` (FIX OrdStatus names). A venue report
  that implies any other move is not applied: it goes to ``anomalies`` and the log, never lost.
- Listeners (the journal first) see every change synchronously, under the OMS lock, BEFORE
  anything is sent for it: write-ahead. ``on_order(row)`` gets the canonical ORDER row,
  ``on_execution(report)`` every applied report. A report is given to ``on_execution`` before the
  order rows it causes; ``replay`` relies on that order.
- Reports are idempotent by ExecID: a venue's resend changes nothing (``apply`` returns False).
- Cancel and replace requests carry their own ClOrdIDs (FIX). ``replace`` emits the old order's
  PENDING_REPLACE row and, right after it, the replacement's own PENDING_NEW row (so the store
  sees every ClOrdID start in an initial state); the REPLACED report moves the old order to
  REPLACED and the replacement to NEW / PARTIALLY_FILLED with the old order's fills. Until then
  the replacement's quantity is not counted as working (the old order's is).
- A report for an order the OMS does not know (a crash lost it) adopts the order; filled
  quantity the OMS never saw (the venue's CumQty ahead of ours) is booked at the price the
  venue's AvgPx implies, with a warning, so positions stay the sum of the venue's fills.
- ``replay`` rebuilds the state from the journal without sending or emitting (recovery).
  A process killed between a report's record and its order row leaves a state no row shows:
  ``journal_missing_rows`` emits those rows once the restarted OMS has its journal again.
- A listener with an ``unwritten`` count (the journal) gates what is sent: while it has records
  not on disk, a new order is rejected (JOURNAL_UNAVAILABLE, nothing sent) and a replace is
  refused like a failed send; a cancel still goes out (it only lowers risk; its outcome comes
  back from the venue at the next start if the records are lost). Reports are applied as ever.

Thread safety: one re-entrant lock guards all state (reports arrive on the route's thread; a
synchronous route may answer inside a send). Sends happen after the lock is released.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, ValuesView
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from intelligence.domain import BUY, OrderIntent
from ods.store import ORDER_TRANSITIONS
from order_routing.events import (
    FINAL_STATES,
    CancelReject,
    CancelRequest,
    ExecReport,
    OrderError,
    ReplaceRequest,
    Report,
    RequestReject,
    Route,
)
from order_routing.positions import Order, Position, pnl_summary

if TYPE_CHECKING:
    from order_routing.risk import PreTradeRisk

log = logging.getLogger(__name__)

EPSILON = 1e-9  # quantities closer than this are equal (float fills)
_EXEC_FIELDS = tuple(f.name for f in dataclasses.fields(ExecReport))
_LIVE_FROM_PENDING_NEW = ORDER_TRANSITIONS["PENDING_NEW"]
# The ExecID prefixes of the REJECTED report of a new order that never left (``_reject_unsent``)
UNSENT_EXEC_ID_PREFIXES = ("JOURNAL-", "SEND-")
_REPLACED_STATUS = ("REPLACED", "PENDING_REPLACE", "PENDING_NEW")  # not the replacement's own status


class RiskRejected(OrderError):
    """Pre-trade risk refused a replace (a refused new order becomes a REJECTED order instead)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class OrderListener(Protocol):
    def on_order(self, row: dict[str, Any]) -> None: ...
    def on_execution(self, report: ExecReport) -> None: ...


def _report_from_row(row: Mapping[str, Any]) -> ExecReport:
    """An ExecReport from a journal's EXECUTION row (nulls read back as NaN become None)."""
    values = {name: row[name] for name in _EXEC_FIELDS if name in row}
    values["ts"] = int(values["ts"])
    for name in ("order_id", "commission", "orig_cl_ord_id", "text"):
        if name in values and values[name] != values[name]:
            values[name] = None
    return ExecReport(**values)


class OrderManager:
    """Orders, positions and P&L of one account, fed by a route's reports. See the module doc."""

    def __init__(self, route: Route | None = None, *, account: str = "DEFAULT",
                 risk: PreTradeRisk | None = None, clock: Callable[[], int] = time.time_ns,
                 venue: str = "SIM") -> None:
        self.route = route
        self.account = account
        self.risk = risk
        self.clock = clock
        self.venue = getattr(route, "venue", None) or venue
        self.orders: dict[str, Order] = {}
        self.anomalies: list[tuple[Report, str]] = []
        self.exec_ids: set[str] = set()  # every applied report's ExecID (idempotence)
        self.marks: dict[str, float] = {}
        self._positions: dict[str, Position] = {}
        self._requests: dict[str, str] = {}  # cancel/replace request ClOrdID -> the order it acts on
        self._latest_request: dict[str, str] = {}  # order ClOrdID -> its latest cancel/replace's
        self._on_order: list[Callable[[dict[str, Any]], None]] = []
        self._on_execution: list[Callable[[ExecReport], None]] = []
        self._write_ahead: list[Any] = []  # listeners with an ``unwritten`` count (the journal)
        self._lock = threading.RLock()
        self._replaying = False
        self._journaled: dict[str, tuple[str, int]] = {}  # (status, ts) of each order's last row
        # Generated request ids: wall-clock prefix, so a restarted OMS does not reuse its predecessor's.
        self._id_prefix = f"C{time.time_ns() // 1_000_000:x}-"
        self._id_seq = itertools.count(1)

    # -- listeners -----------------------------------------------------------------------------------
    def subscribe(self, listener: OrderListener) -> None:
        with self._lock:
            self._on_order.append(listener.on_order)
            self._on_execution.append(listener.on_execution)
            if hasattr(type(listener), "unwritten"):
                self._write_ahead.append(listener)

    def unwritten(self) -> int:
        """Records the write-ahead listeners (the journal) hold in memory only: 0 when all is on disk."""
        n = 0
        for listener in self._write_ahead:
            n += listener.unwritten
        return n

    def _emit_order(self, order: Order) -> None:
        if not self._replaying:
            row = order.row()
            self._journaled[order.cl_ord_id] = (order.status, order.updated_ts)
            for callback in self._on_order:
                callback(row)

    def _emit_execution(self, report: ExecReport) -> None:
        if not self._replaying:
            for callback in self._on_execution:
                callback(report)

    # -- requests ------------------------------------------------------------------------------------
    def submit(self, intent: OrderIntent) -> Order:
        """Risk-check and send a new order; a risk reject returns a REJECTED order (nothing sent)."""
        cid = intent.cl_ord_id
        with self._lock:
            if cid in self.orders or cid in self._requests:
                raise OrderError(f"ClOrdID {cid!r} was already used")
            reason = self.risk.check(intent, self) if self.risk is not None else None
            ts = self.clock()
            order = Order(cid, intent.symbol, intent.side, intent.quantity, order_type=intent.order_type,
                          limit_price=intent.limit_price, time_in_force=intent.time_in_force,
                          strategy_id=intent.strategy_id, account=self.account,
                          status="PENDING_NEW" if reason is None else "REJECTED", ts=ts)
            self.orders[cid] = order
            if reason is not None:
                report = ExecReport(ts, intent.symbol, f"RISK-{cid}", cid, "REJECTED", "REJECTED",
                                    intent.side, venue="RISK", text=reason)
                self.exec_ids.add(report.exec_id)
                self._emit_order(order)
                self._emit_execution(report)
                return order
            self._settle(order)
            self._emit_order(order)
            refused = self._journal_refusal()
            if refused:  # not on disk: it must not exist at a venue
                log.error("order %s rejected, not sent: %s", cid, refused)
                self._reject_unsent(intent, "JOURNAL", "OMS", refused)
                return order
        if self.route is not None:
            try:
                self.route.send_new(intent)
            except Exception as exc:
                log.exception("sending new order %s failed", cid)
                self._reject_unsent(intent, "SEND", self.venue, f"SEND_FAILED: {exc}")
        return order

    def _journal_refusal(self) -> str | None:
        """Why nothing may be sent now (records held in memory only), or None."""
        unwritten = self.unwritten()
        return f"JOURNAL_UNAVAILABLE: {unwritten} journal record(s) not on disk" if unwritten else None

    def _reject_unsent(self, intent: OrderIntent, source: str, venue: str, text: str) -> None:
        """A new order that never left: REJECTED on the record, by a report of our own."""
        cid = intent.cl_ord_id
        self.apply(ExecReport(self.clock(), intent.symbol, f"{source}-{cid}", cid, "REJECTED", "REJECTED",
                              intent.side, venue=venue, text=text))

    def cancel(self, cl_ord_id: str, request_id: str | None = None) -> str:
        """Request a cancel; returns the request's ClOrdID. The answer is a later report."""
        with self._lock:
            order = self._live(cl_ord_id, "PENDING_CANCEL")
            rid = self._request_id(request_id)
            request = CancelRequest(rid, cl_ord_id, order.symbol, order.side, order.quantity)
            self._requests[rid] = cl_ord_id
            self._latest_request[cl_ord_id] = rid
            self._move(order, "PENDING_CANCEL", self.clock())
            self._emit_order(order)
        self._send(request)
        return rid

    def replace(self, cl_ord_id: str, *, quantity: float | None = None, limit_price: float | None = None,
                request_id: str | None = None) -> str:
        """Request a cancel/replace to a new total ``quantity`` and/or ``limit_price``; returns the
        replacement's ClOrdID. Risk checks the replacement (RiskRejected: nothing changes)."""
        if quantity is None and limit_price is None:
            raise OrderError(f"replace {cl_ord_id}: give a quantity and/or a limit_price")
        with self._lock:
            order = self._live(cl_ord_id, "PENDING_REPLACE")
            qty = order.quantity if quantity is None else quantity
            price = order.limit_price if limit_price is None else limit_price
            if qty < order.cum_qty - EPSILON:
                raise OrderError(f"replace {cl_ord_id}: quantity {qty:g} < filled {order.cum_qty:g}")
            rid = self._request_id(request_id)
            request = ReplaceRequest(rid, cl_ord_id, order.symbol, order.side, qty, order.order_type, price)
            ts = self.clock()
            if self.risk is not None:
                intent = OrderIntent(ts, order.symbol, rid, order.side, qty, order.order_type, price,
                                     order.time_in_force, order.strategy_id)
                reason = self.risk.check(intent, self, replacing=order)
                if reason is not None:
                    raise RiskRejected(reason, f"replace of {cl_ord_id} refused by risk: {reason}")
            new = Order(rid, order.symbol, order.side, qty, order_type=order.order_type, limit_price=price,
                        time_in_force=order.time_in_force, strategy_id=order.strategy_id,
                        account=order.account, ts=ts)
            new.replaces = cl_ord_id
            self.orders[rid] = new
            self._requests[rid] = cl_ord_id
            self._latest_request[cl_ord_id] = rid
            self._move(order, "PENDING_REPLACE", ts)
            self._settle(new)
            self._emit_order(order)
            self._emit_order(new)
        self._send(request)
        return rid

    def _live(self, cl_ord_id: str, to: str) -> Order:
        order = self.orders.get(cl_ord_id)
        if order is None:
            raise OrderError(f"unknown order {cl_ord_id!r}")
        if order.is_final or to not in ORDER_TRANSITIONS[order.status]:
            raise OrderError(f"order {cl_ord_id} is {order.status}: cannot move to {to}")
        return order

    def _request_id(self, request_id: str | None) -> str:
        if request_id is None:
            request_id = f"{self._id_prefix}{next(self._id_seq)}"
            while request_id in self.orders or request_id in self._requests:
                request_id = f"{self._id_prefix}{next(self._id_seq)}"
        elif request_id in self.orders or request_id in self._requests:
            raise OrderError(f"ClOrdID {request_id!r} was already used")
        return request_id

    def _send(self, request: CancelRequest | ReplaceRequest) -> None:
        if self.route is None:
            return
        kind = "CANCEL" if isinstance(request, CancelRequest) else "REPLACE"
        refused = self._journal_refusal()
        if refused and kind == "REPLACE":  # like a new order: not on disk, not sent
            log.error("replace %s of %s refused, not sent: %s", request.cl_ord_id, request.orig_cl_ord_id,
                      refused)
            self._undo_unsent(request, kind, "OMS", refused)
        if refused:  # a cancel only lowers risk: it goes
            log.warning("cancel %s of %s sent while %s", request.cl_ord_id, request.orig_cl_ord_id, refused)
        try:
            if kind == "CANCEL":
                self.route.send_cancel(request)
            else:
                self.route.send_replace(request)
        except Exception as exc:
            self._undo_unsent(request, kind, self.venue, f"SEND_FAILED: {exc}", exc)

    def _undo_unsent(self, request: CancelRequest | ReplaceRequest, kind: str, venue: str,
                     text: str, cause: Exception | None = None) -> NoReturn:
        """A request that never left: undone as the venue would, by a cancel reject; raises."""
        status = self._status_if_refused(self.orders[request.orig_cl_ord_id])
        self.apply(CancelReject(self.clock(), request.cl_ord_id, request.orig_cl_ord_id, status, kind,
                                text=text, venue=venue))
        raise OrderError(f"{kind.lower()} {request.cl_ord_id} of {request.orig_cl_ord_id} could not be sent: "
                         f"{text}") from cause

    # -- reports -------------------------------------------------------------------------------------
    def apply(self, report: Report) -> bool:
        """Apply a venue report; False if it changed nothing (a duplicate, or an anomaly)."""
        with self._lock:
            if isinstance(report, CancelReject):
                return self._cancel_reject(report)
            if isinstance(report, RequestReject):
                return self._request_reject(report)
            if report.exec_id in self.exec_ids:
                return False
            if report.exec_type == "REPLACED":
                return self._replaced(report)
            order = self._target(report)
            if order is None:
                return self._adopt(report)
            if report.exec_type == "ORDER_STATUS" and order.status == "REPLACED":
                # asked about by its old ClOrdID (a status request sent while the replace was
                # pending), the venue answers for the order it became: news of the replacement
                log.info("status of %s, now replaced: %s (the replacement's), not applied", order.cl_ord_id,
                         report.order_status)
                return False
            old, new = order.status, report.order_status
            reason = self._illegal(order, new, report)
            if reason is not None:
                return self._anomaly(report, f"{order.cl_ord_id}: {reason}")
            self.exec_ids.add(report.exec_id)
            self._book(order, report)
            # A new order row (and ts) for a new status, or another fill in a status the store may
            # repeat (PARTIALLY_FILLED); otherwise the report alone records what happened.
            row = new != old or (report.exec_type == "TRADE" and new in ORDER_TRANSITIONS[new])
            if row:
                self._move(order, new, report.ts)
            else:
                self._settle(order)
            self._emit_execution(report)
            if row:
                self._emit_order(order)
            return True

    def _target(self, report: ExecReport) -> Order | None:
        order = self.orders.get(report.cl_ord_id)
        orig = self.orders.get(report.orig_cl_ord_id) if report.orig_cl_ord_id else None
        if order is not None:
            # A replacement still pending: the report is about the order it replaces (FIX 41).
            return orig if order.status == "PENDING_NEW" and orig is not None else order
        via = self._requests.get(report.cl_ord_id)
        return self.orders.get(via) if via is not None else orig

    @staticmethod
    def _illegal(order: Order, new: str, report: ExecReport) -> str | None:
        old = order.status
        if new != old and new not in ORDER_TRANSITIONS[old]:
            return f"ILLEGAL_TRANSITION: {old} -> {new}"
        last = report.last_qty if report.exec_type == "TRADE" else 0.0
        filled = max(report.cum_qty, order.cum_qty + last)
        if filled > order.cum_qty + EPSILON and old in FINAL_STATES:
            return f"FILL_ON_FINAL_ORDER: {old}"
        if filled > order.quantity + EPSILON:
            return f"OVERFILL: {filled:g} > quantity {order.quantity:g}"
        return None

    def _book(self, order: Order, report: ExecReport) -> None:
        """Book a report's fill, any fills we missed (CumQty ahead of ours), commission, OrderID."""
        last = report.last_qty if report.exec_type == "TRADE" else 0.0
        missed = report.cum_qty - order.cum_qty - last
        if missed > EPSILON:
            price = (report.avg_price * report.cum_qty - order.avg_price * order.cum_qty
                     - last * report.last_price) / missed
            if price > 0.0:
                log.warning("order %s: booking %g filled the OMS never saw at %g (venue CumQty %g, AvgPx %g)",
                            order.cl_ord_id, missed, price, report.cum_qty, report.avg_price)
                self._fill(order, missed, price)
            else:
                log.error("order %s: venue CumQty %g is ahead of ours %g but AvgPx %g gives no price",
                          order.cl_ord_id, report.cum_qty, order.cum_qty, report.avg_price)
        if last:
            self._fill(order, last, report.last_price)
        if report.commission:
            self.position(order.symbol).commission += report.commission
        if report.order_id:
            order.order_id = report.order_id

    def _fill(self, order: Order, qty: float, price: float) -> None:
        order.avg_price = (order.avg_price * order.cum_qty + price * qty) / (order.cum_qty + qty)
        order.cum_qty += qty
        self.position(order.symbol).fill(qty if order.side == BUY else -qty, price)

    def _replaced(self, report: ExecReport) -> bool:
        new = self.orders.get(report.cl_ord_id)
        old = self.orders.get(report.orig_cl_ord_id) if report.orig_cl_ord_id else None
        if old is None and new is not None and new.replaces:
            old = self.orders.get(new.replaces)
        if old is None:
            if new is None:
                return self._adopt(report)
            return self._anomaly(report, f"{new.cl_ord_id}: REPLACED without a known replaced order")
        if "REPLACED" not in ORDER_TRANSITIONS[old.status]:
            return self._anomaly(report, f"{old.cl_ord_id}: ILLEGAL_TRANSITION: {old.status} -> REPLACED")
        if new is not None and (new is old or new.status != "PENDING_NEW"):
            return self._anomaly(report, f"{report.cl_ord_id}: replacement is {new.status}, not PENDING_NEW")
        status = report.order_status
        if status not in _LIVE_FROM_PENDING_NEW and status not in _REPLACED_STATUS:
            return self._anomaly(report, f"{report.cl_ord_id}: ILLEGAL_TRANSITION: PENDING_NEW -> {status}")
        if new is None:  # a replace we did not issue, or lost: the old order's terms, the venue's size
            qty = report.cum_qty + report.leaves_qty or old.quantity
            log.warning("order %s replaced by unknown %s: adopting it", old.cl_ord_id, report.cl_ord_id)
            new = self.orders[report.cl_ord_id] = Order(
                report.cl_ord_id, old.symbol, old.side, qty, order_type=old.order_type,
                limit_price=old.limit_price, time_in_force=old.time_in_force, strategy_id=old.strategy_id,
                account=old.account, ts=report.ts)
        self.exec_ids.add(report.exec_id)
        new.replaces = old.cl_ord_id
        new.cum_qty, new.avg_price, new.order_id = old.cum_qty, old.avg_price, old.order_id
        self._book(new, report)
        self._move(old, "REPLACED", report.ts)
        self._move(new, status if status in _LIVE_FROM_PENDING_NEW else self._by_fills(new), report.ts)
        self._emit_execution(report)
        self._emit_order(old)
        self._emit_order(new)
        return True

    def _adopt(self, report: ExecReport) -> bool:
        """An order the venue knows and we do not (lost in a crash): rebuild it from the report."""
        # a cancel's report names its request (11) and the order (41); a replacement is its own order
        replaced = report.exec_type == "REPLACED"
        cid = report.cl_ord_id if replaced else report.orig_cl_ord_id or report.cl_ord_id
        qty = report.cum_qty + report.leaves_qty or report.last_qty
        log.warning("adopting unknown order %s from report %s: %s %g %s, %s", cid, report.exec_id,
                    report.side, qty, report.symbol, report.order_status)
        order = self.orders[cid] = Order(cid, report.symbol, report.side, qty, account=self.account,
                                         status=report.order_status, ts=report.ts)
        self.exec_ids.add(report.exec_id)
        self._book(order, report)
        if replaced and report.order_status in ("REPLACED", "PENDING_REPLACE"):
            order.status = self._by_fills(order)
        self._settle(order)
        self._emit_execution(report)
        self._emit_order(order)
        return True

    def _cancel_reject(self, reject: CancelReject) -> bool:
        order = self.orders.get(reject.orig_cl_ord_id)
        if order is None:
            return self._anomaly(reject, f"{reject.orig_cl_ord_id}: cancel reject for an unknown order")
        target = reject.order_status
        if target != order.status and target not in ORDER_TRANSITIONS[order.status]:
            return self._anomaly(reject, f"{order.cl_ord_id}: ILLEGAL_TRANSITION: {order.status} -> {target}")
        repl = self.orders.get(reject.cl_ord_id)
        if repl is None or repl is order or repl.status != "PENDING_NEW" or reject.response_to != "REPLACE":
            repl = None
        log.info("%s of %s rejected (%s): order stays %s", reject.response_to.lower(), order.cl_ord_id,
                 reject.text, target)
        changed = target != order.status
        if changed:
            self._move(order, target, reject.ts)
            self._emit_order(order)
        if repl is not None:
            self._move(repl, "REJECTED", reject.ts)
            self._emit_order(repl)
        return changed or repl is not None

    def _request_reject(self, reject: RequestReject) -> bool:
        """A request the venue refused unread. A new order still PENDING_NEW gets its REJECTED
        report; the order's latest cancel or replace, still pending, is undone as by the venue's
        cancel reject (``_status_if_refused``). Anything else is a resent or stale reject: logged,
        no change."""
        cid = reject.cl_ord_id
        target = self._requests.get(cid) or reject.orig_cl_ord_id  # after a restart: only the latter
        order = self.orders.get(target) if target is not None else None
        if order is not None:
            replacement = self.orders.get(cid)
            if replacement is not None:
                pending = replacement.status == "PENDING_NEW"
            else:  # the latest request is known unless the OMS restarted since
                pending = order.status == "PENDING_CANCEL" and self._latest_request.get(target, cid) == cid
            if not pending:
                log.info("refused request %s of %s no longer pending: %s", cid, target, reject.text)
                return False
            return self._cancel_reject(CancelReject(reject.ts, cid, target, self._status_if_refused(order),
                                                    "REPLACE" if replacement else "CANCEL", reject.text,
                                                    reject.venue))
        order = self.orders.get(cid)
        if order is None:
            return self._anomaly(reject, f"{cid}: refused request for an unknown ClOrdID")
        if order.status != "PENDING_NEW":  # a resend of the reject, or of a message the venue already has
            log.info("refused request %s: order already %s: %s", cid, order.status, reject.text)
            return False
        return self.apply(ExecReport(reject.ts, order.symbol, f"REJECT-{cid}", cid, "REJECTED", "REJECTED",
                                     order.side, venue=reject.venue, text=reject.text))

    def _status_if_refused(self, order: Order) -> str:
        """An order's status once its pending cancel or replace is refused: what its fills say
        (fills during the request keep OrdStatus PENDING_CANCEL under FIX precedence), or its status
        if it has moved on since (filled, canceled)."""
        if order.status in ("PENDING_CANCEL", "PENDING_REPLACE"):
            return self._by_fills(order)
        return order.status

    def _anomaly(self, report: Report, reason: str) -> bool:
        self.anomalies.append((report, reason))
        log.warning("report not applied: %s: %r", reason, report)
        return False

    @staticmethod
    def _by_fills(order: Order) -> str:
        if order.cum_qty >= order.quantity - EPSILON:
            return "FILLED"
        return "PARTIALLY_FILLED" if order.cum_qty > 0.0 else "NEW"

    def _move(self, order: Order, status: str, ts: int) -> None:
        order.status = status
        order.updated_ts = max(ts, order.updated_ts + 1)  # rows of an order never share a ts (store key)
        self._settle(order)

    def _settle(self, order: Order) -> None:
        """Recompute leaves and the order's share of its symbol's working quantity."""
        final = order.status in FINAL_STATES
        order.leaves_qty = 0.0 if final else max(order.quantity - order.cum_qty, 0.0)
        pending_replacement = order.replaces is not None and order.status == "PENDING_NEW"
        working = 0.0 if final or pending_replacement else order.leaves_qty
        delta = working - order.working
        if delta:
            pos = self.position(order.symbol)
            if order.side == BUY:
                total = pos.working_buy + delta
                pos.working_buy = total if abs(total) > EPSILON else 0.0  # no float dust left when all done
            else:
                total = pos.working_sell + delta
                pos.working_sell = total if abs(total) > EPSILON else 0.0
            order.working = working

    # -- queries -------------------------------------------------------------------------------------
    def order(self, cl_ord_id: str) -> Order:
        with self._lock:
            try:
                return self.orders[cl_ord_id]
            except KeyError:
                raise OrderError(f"unknown order {cl_ord_id!r}") from None

    def state_of(self, cl_ord_id: str) -> tuple[str, int] | None:
        """An order's (status, updated_ts), read together under the lock; None if unknown."""
        with self._lock:
            order = self.orders.get(cl_ord_id)
            return None if order is None else (order.status, order.updated_ts)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders not in a final state (a replacement awaiting the venue is PENDING_NEW)."""
        with self._lock:
            return [o for o in self.orders.values()
                    if o.status not in FINAL_STATES and (symbol is None or o.symbol == symbol)]

    def position(self, symbol: str) -> Position:
        """The live position object of ``symbol`` (created flat on first use)."""
        pos = self._positions.get(symbol)
        if pos is None:
            with self._lock:
                pos = self._positions.setdefault(symbol, Position(symbol))
        return pos

    def positions(self) -> dict[str, Position]:
        with self._lock:
            return dict(self._positions)

    def positions_view(self) -> ValuesView[Position]:
        """The live positions, uncopied: for the risk checks, which run under the OMS lock."""
        return self._positions.values()

    def working_qty(self, symbol: str) -> float:
        """Signed open quantity of the live orders of ``symbol`` (buys - sells)."""
        pos = self._positions.get(symbol)
        return pos.working_qty if pos is not None else 0.0

    def mark(self, symbol: str, price: float) -> None:
        """Set the price unrealized P&L is computed at."""
        self.marks[symbol] = price

    def pnl(self, marks: Mapping[str, float] | None = None) -> dict[str, float]:
        """realized, unrealized (at ``marks``, else ``mark()``'s prices), commission, total (net)."""
        with self._lock:
            return pnl_summary(self._positions.values(), marks, self.marks)

    def state(self) -> dict[str, Any]:
        """Everything recovery must restore, as plain values (replay equivalence, diagnostics)."""
        with self._lock:
            orders = {cid: (o.row(), o.cum_qty, o.leaves_qty, o.avg_price, o.order_id, o.replaces,
                            o.working) for cid, o in self.orders.items()}
            positions = {s: (p.quantity, p.avg_price, p.realized_pnl, p.commission, p.working_buy,
                             p.working_sell) for s, p in self._positions.items()
                         if p.quantity or p.realized_pnl or p.commission or p.working_buy or p.working_sell}
            return {"orders": orders, "positions": positions, "exec_ids": set(self.exec_ids)}

    # -- recovery ------------------------------------------------------------------------------------
    @classmethod
    def replay(cls, records: Iterable[tuple[str, Any]], route: Route | None = None,
               **kwargs: Any) -> OrderManager:
        """Rebuild an OMS from its journal: ("order", ORDER row) and ("execution", ExecReport or
        EXECUTION row) records in the order the listeners got them. Nothing is sent or emitted.

        Executions are re-applied (same code, same result); an order row is the state change
        itself when no report caused it (a submit, a risk reject, cancel/replace requests, cancel
        rejects) and is already applied otherwise, since its report came first."""
        oms = cls(route, **kwargs)
        oms._replaying = True
        previous: Order | None = None
        try:
            for kind, payload in records:
                if kind == "order":
                    previous = oms._restore(payload, previous)
                elif kind == "execution":
                    oms.apply(payload if isinstance(payload, ExecReport) else _report_from_row(payload))
                    previous = None
                else:
                    raise ValueError(f"journal record kind must be 'order' or 'execution', got {kind!r}")
        finally:
            oms._replaying = False
        return oms

    def _restore(self, row: Mapping[str, Any], previous: Order | None) -> Order:
        with self._lock:
            order = self.orders.get(row["cl_ord_id"])
            if order is None:
                order = self.orders[row["cl_ord_id"]] = Order.from_row(row)
                # replace() emits the replacement's PENDING_NEW row right after the old order's
                # PENDING_REPLACE row: that adjacency is the link (the ORDER row has no OrigClOrdID).
                if (order.status == "PENDING_NEW" and previous is not None
                        and previous.status == "PENDING_REPLACE"
                        and (previous.symbol, previous.side) == (order.symbol, order.side)):
                    order.replaces = previous.cl_ord_id
                    self._requests[order.cl_ord_id] = previous.cl_ord_id
                self._settle(order)
            elif order.status != row["status"]:
                if row["status"] not in ORDER_TRANSITIONS[order.status]:
                    log.warning("journal moves %s %s -> %s", order.cl_ord_id, order.status, row["status"])
                self._move(order, row["status"], int(row["ts"]))
            self._journaled[order.cl_ord_id] = (row["status"], int(row["ts"]))
            return order

    def journal_missing_rows(self) -> list[str]:
        """Emit the order row of every order whose state (status and ts) its last journaled row
        does not show; returns their ClOrdIDs. A report is journaled before the order rows it
        causes, so a process killed between the two leaves a journal whose replay reaches a state
        (FILLED, or another fill while PARTIALLY_FILLED) that no order row records, and the
        warehouse and the ODS, fed by the rows, would never learn it. Call once, after
        subscribing the journal to a replayed OMS."""
        with self._lock:
            missing = [o for o in self.orders.values()
                       if self._journaled.get(o.cl_ord_id) != (o.status, o.updated_ts)]
            for order in missing:
                log.warning("order %s: the journal's last row (status, ts) is %s, its replayed state "
                            "is (%s, %d) (the process died between a report and its order row); "
                            "journaling the row", order.cl_ord_id, self._journaled.get(order.cl_ord_id),
                            order.status, order.updated_ts)
                self._emit_order(order)
            return [o.cl_ord_id for o in missing]
