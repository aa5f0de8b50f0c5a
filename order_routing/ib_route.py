"""The Interactive Brokers route: our orders to TWS / IB Gateway through ``ib_async``, and IB's order
states and executions back as ``ExecReport`` / ``CancelReject`` in our (FIX OrdStatus) vocabulary.

Identity: IB knows an order by its API order id (per client id, from TWS's nextValidId); we know
it by ClOrdID, sent as IB's ``orderRef``. IB echoes orderRef in openOrder, completedOrder and
execDetails, also after a reconnect or a restart of this process, so the route maps both ways
(``ib_order_id`` / ``cl_ord_id``) without a store of its own. A replace is IB's modify (placeOrder
again with the same order id) and sets orderRef to the new ClOrdID; IB's openOrder echo of that
orderRef is the acknowledgement (ExecReport REPLACED, 41 = the old ClOrdID).

Status: ``ord_status`` maps IB's orderStatus (table ``IB_STATUS``). Only executions make fills:
execDetails become TRADE reports with exec_id = IB's execId, and an orderStatus Filled or
Submitted-with-filled is not reported (TWS often sends it before the execDetails). A final
status (Cancelled, Inactive) that counts more filled shares than the executions seen so far is
held back until those executions arrived, so no fill follows the order's end.

Commission: IB sends commissionReport after execDetails. A TRADE report waits for it, at most
``commission_wait_s``, and carries it; a report missing it then goes out with commission None and
a late commission is only logged (a second report for the same exec_id would be dropped by the
OMS's exec_id dedup, or counted twice). Reports leave in IB's order: a held TRADE holds the ones
behind it. ``close`` sends held reports at once.

Errors for an order: one while a cancel/replace is pending refuses that request (CancelReject;
the order lives on, as IB keeps it); one for an order IB has not acknowledged yet (e.g. 201
"Order rejected - reason:...") is a REJECTED report with IB's text. ``INFO_CODES`` and 2100-2199
are notices. Otherwise the text waits for the orderStatus that follows.

Reconnect: a lost connection is retried every ``reconnect_s``. ib_async's start-up sync asks for
open orders, completed orders and executions again; the route reports what changed meanwhile and
skips executions it already reported. A NEW route instance learns orders from that sync silently
(their status is the baseline) but reports every re-sent execution: the OMS dedups by exec_id.
Then the OMS asks ``request_status`` for the orders it holds open.

Threading: ib_async runs on a private event loop in a daemon thread; sends are handed to it, and
``on_report`` is called from it, as the Route protocol says.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ib_async import IB, Contract, ExecutionFilter, LimitOrder, MarketOrder, Order, Stock
from ib_async.ib import StartupFetch

from intelligence.domain import BUY, LIMIT, MARKET, OrderIntent
from ods.store import ORDER_TRANSITIONS
from order_routing.events import FINAL_STATES, CancelReject, CancelRequest, ExecReport, ReplaceRequest

if TYPE_CHECKING:
    from order_routing.events import ReportHandler
    from tradelake.config import Config

__all__ = ["IB_STATUS", "INFO_CODES", "IbRoute", "IbRouteError", "ord_status"]

log = logging.getLogger(__name__)

IB_STATUS: dict[str, str] = {  # IB orderStatus -> OrdStatus before fills are taken into account
    "PendingSubmit": "PENDING_NEW", "ApiPending": "PENDING_NEW",  # not yet at IB's servers
    "PreSubmitted": "NEW", "Submitted": "NEW",  # accepted (PreSubmitted: held, e.g. until the open)
    "PendingCancel": "PENDING_CANCEL",
    "Cancelled": "CANCELED", "ApiCancelled": "CANCELED",
    "Filled": "FILLED",
    "Inactive": "REJECTED",  # received but not working: refused (or cancelled, if partly filled)
}
INFO_CODES = frozenset({202, 399, 404, 10167, 10311, 10349})  # cancel confirmed, order warnings
SIDE_BY_ACTION = {"BUY": BUY, "SELL": "S", "SSHORT": "S"}
SIDE_BY_EXEC = {"BOT": BUY, "SLD": "S"}
_STARTUP = StartupFetch.ORDERS_OPEN | StartupFetch.ORDERS_COMPLETE | StartupFetch.EXECUTIONS
_EPS = 1e-9
_UNSET = 1e300  # IB writes "unset" doubles as 1.7976931348623157E308


def ord_status(ib_status: str, filled: float) -> str | None:
    """Our OrdStatus for IB's ``status`` with ``filled`` shares executed; None if IB's is unknown."""
    status = IB_STATUS.get(ib_status)
    if status == "NEW" and filled > 0:
        return "PARTIALLY_FILLED"
    if status == "REJECTED" and filled > 0:
        return "CANCELED"  # a partly filled order cannot be rejected any more
    return status


def is_info(code: int) -> bool:
    return 2100 <= code < 2200 or code in INFO_CODES


class IbRouteError(RuntimeError):
    """TWS could not be reached, or the route is used before ``connect`` / after ``close``."""


@dataclasses.dataclass(eq=False)
class _Order:
    """The route's view of one order. ``status`` is what we last reported (None: learnt from IB's
    start-up sync, its first IB status becomes the baseline without a report)."""

    cl_ord_id: str
    symbol: str
    side: str
    quantity: float | None
    tif: str = "GTC"
    order_id: int | None = None
    perm_id: int = 0
    status: str | None = "PENDING_NEW"
    cum_qty: float = 0.0
    avg_price: float = 0.0
    ib_filled: float = 0.0  # filled shares per IB's latest status
    pending: CancelRequest | ReplaceRequest | None = None
    deferred: str | None = None  # IB's final status, held until its executions arrived
    text: str | None = None  # IB's last error text about it

    def current(self) -> str:
        if self.status is not None:
            return self.status
        filled = self.quantity is not None and self.cum_qty >= self.quantity - _EPS
        return "FILLED" if filled else "PARTIALLY_FILLED" if self.cum_qty > 0 else "NEW"


@dataclasses.dataclass(eq=False)
class _Outgoing:
    report: ExecReport | CancelReject
    due: float | None = None  # loop time until which a TRADE waits for its commission


class IbRoute:
    """A ``Route`` to TWS / IB Gateway for SMART-routed US stocks (market and limit orders)."""

    def __init__(self, host: str, port: int, client_id: int, account: str = "", *, venue: str = "IB",
                 timeout_s: float = 10.0, commission_wait_s: float = 2.0, reconnect_s: float = 2.0) -> None:
        self.host, self.port, self.client_id, self.account = host, int(port), int(client_id), account
        self.venue, self.timeout_s = venue, timeout_s
        self.commission_wait_s, self.reconnect_s = commission_wait_s, reconnect_s
        self._on_report: ReportHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ib: IB | None = None
        self._closing = False
        self._by_ref: dict[str, _Order] = {}  # every ClOrdID an order had -> the order
        self._by_id: dict[int, _Order] = {}  # IB order id -> the order
        self._exec_ids: set[str] = set()  # executions this route reported
        self._outbox: collections.deque[_Outgoing] = collections.deque()
        self._awaiting: dict[str, _Outgoing] = {}  # exec_id -> its TRADE waiting for a commission
        self._timer: asyncio.TimerHandle | None = None
        self._ids = itertools.count(1)
        self._epoch = time.time_ns()
        self._status_lock: asyncio.Lock | None = None

    @classmethod
    def from_config(cls, cfg: Config, **options: Any) -> IbRoute:
        """The route ``routing.route: ib`` describes: TWS at ``ib.host``/``ib.port``, client id
        ``routing.ib_client_id``, account ``routing.ib_account``."""
        return cls(cfg.ib.host, cfg.ib.port, cfg.routing.ib_client_id, cfg.routing.ib_account, **options)

    @property
    def endpoint(self) -> str:
        return f"TWS/IB Gateway at {self.host}:{self.port} (client id {self.client_id})"

    @property
    def connected(self) -> bool:
        return self._ib is not None and self._ib.isConnected()

    def ib_order_id(self, cl_ord_id: str) -> int | None:
        """IB's order id for any ClOrdID the order had (replaced ones included)."""
        order = self._by_ref.get(cl_ord_id)
        return None if order is None else order.order_id

    def cl_ord_id(self, ib_order_id: int) -> str | None:
        """The current ClOrdID of IB's order ``ib_order_id`` (placed by this client id)."""
        order = self._by_id.get(ib_order_id)
        return None if order is None else order.cl_ord_id

    # -- Route ---------------------------------------------------------------------------------

    def connect(self, on_report: ReportHandler, timeout_s: float = 30.0) -> None:
        """Start the event loop thread, connect and sync (open/completed orders, executions)."""
        if self._thread is not None:
            raise IbRouteError(f"{self.endpoint}: already connected")
        self._on_report, self._closing = on_report, False
        self._loop = loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name=f"ib-route-{self.client_id}",
                                        daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._connect(timeout_s), loop)
        try:
            future.result(timeout_s + 5)
        except BaseException as exc:
            future.cancel()
            self.close()
            raise IbRouteError(f"cannot connect to {self.endpoint}: {exc!r}; is TWS running with API "
                               f"connections enabled, and is the client id free?") from exc

    def send_new(self, order: OrderIntent) -> None:
        self._call(self._place_new, order)

    def send_cancel(self, request: CancelRequest) -> None:
        self._call(self._change, request)

    def send_replace(self, request: ReplaceRequest) -> None:
        self._call(self._change, request)

    def request_status(self, cl_ord_id: str, symbol: str, side: str) -> None:
        """Refresh from IB (open orders, completed orders, executions of ``symbol``), then answer
        with an ORDER_STATUS report; an order IB does not know is REJECTED ("unknown order")."""
        if self._loop is None or self._closing:
            raise IbRouteError(f"{self.endpoint}: not connected (call connect first)")
        asyncio.run_coroutine_threadsafe(self._status(cl_ord_id, symbol, side), self._loop)

    def close(self) -> None:
        """Send held reports, disconnect and stop the loop thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._closing = True
        if loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(self.timeout_s)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=self.timeout_s)
        if not loop.is_running():
            loop.close()
        self._loop = self._thread = self._ib = None

    # -- connection ----------------------------------------------------------------------------

    def _call(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None or self._closing:
            raise IbRouteError(f"{self.endpoint}: not connected (call connect first)")
        loop.call_soon_threadsafe(self._guarded, fn, *args)

    @staticmethod
    def _guarded(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("IB route: %s%r failed", getattr(fn, "__name__", fn), args)

    async def _connect(self, timeout_s: float) -> None:
        self._status_lock = self._status_lock or asyncio.Lock()
        ib = IB()
        wrapper = ib.wrapper
        for name, ours in (("openOrder", self._on_open_order), ("orderStatus", self._on_order_status),
                           ("completedOrder", self._on_completed_order), ("execDetails", self._on_exec),
                           ("commissionReport", self._on_commission), ("error", self._on_error)):
            setattr(wrapper, name, _tap(ours, getattr(wrapper, name)))
        self._ib = ib  # the sync below already reports through the taps
        await ib.connectAsync(self.host, self.port, self.client_id, timeout=timeout_s, account=self.account,
                              raiseSyncErrors=True, fetchFields=_STARTUP)
        ib.disconnectedEvent += self._on_disconnected
        log.info("IB route connected to %s", self.endpoint)

    def _on_disconnected(self) -> None:
        if not self._closing and self._loop is not None:
            log.warning("IB route lost %s; reconnecting every %s s", self.endpoint, self.reconnect_s)
            if self.reconnect_s > 0:
                self._loop.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.reconnect_s)
            try:
                await self._connect(self.timeout_s)
                return
            except Exception as exc:  # refused, timed out, broken during the sync: try again
                log.warning("IB route: reconnecting to %s failed: %r", self.endpoint, exc)

    async def _shutdown(self) -> None:
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        self._flush(force=True)
        ib = self._ib
        if ib is not None and ib.isConnected():
            conn = ib.client.conn
            ib.disconnect()
            for _ in range(100):  # let the transport close (as ingestion.ib_source does)
                if not conn.isConnected():
                    break
                await asyncio.sleep(0.01)

    # -- sends (on the loop thread) ------------------------------------------------------------

    def _place_new(self, intent: OrderIntent) -> None:
        if intent.cl_ord_id in self._by_ref:
            log.error("IB route: ClOrdID %s was already sent; not sent again", intent.cl_ord_id)
            return
        order = _Order(intent.cl_ord_id, intent.symbol, intent.side, intent.quantity, intent.time_in_force)
        self._by_ref[intent.cl_ord_id] = order
        try:
            if not self.connected:
                raise ConnectionError(f"not connected to {self.endpoint}")
            ib_order = self._ib_order(intent.side, intent.quantity, intent.order_type, intent.limit_price,
                                      intent.time_in_force, intent.cl_ord_id)
            trade = self._ib.placeOrder(Stock(intent.symbol, "SMART", "USD"), ib_order)  # type: ignore[union-attr]
        except Exception as exc:  # never reached IB: a reject the OMS can see
            self._report(order, "REJECTED", "REJECTED", text=f"not sent: {exc}")
            return
        order.order_id = trade.order.orderId
        self._by_id[order.order_id] = order

    def _change(self, request: CancelRequest | ReplaceRequest) -> None:
        order = self._by_ref.get(request.orig_cl_ord_id)
        why = ("unknown order" if order is None or order.order_id is None
               else f"order is {order.current()}" if order.current() in FINAL_STATES
               else "a cancel or replace of this order is pending" if order.pending is not None
               else f"not connected to {self.endpoint}" if not self.connected else None)
        if why is None and order is not None:
            order.pending = request
            try:
                if isinstance(request, CancelRequest):
                    self._ib.cancelOrder(Order(orderId=order.order_id, clientId=self.client_id,  # type: ignore[union-attr]
                                               permId=order.perm_id))
                else:
                    self._ib.placeOrder(Stock(order.symbol, "SMART", "USD"), self._ib_order(  # type: ignore[union-attr]
                        request.side, request.quantity, request.order_type, request.limit_price, order.tif,
                        request.cl_ord_id, orderId=order.order_id))
                return
            except Exception as exc:  # e.g. ib_async's own view says the order is done
                order.pending, why = None, f"not sent: {exc!r}"
        kind = "CANCEL" if isinstance(request, CancelRequest) else "REPLACE"
        self._emit(CancelReject(time.time_ns(), request.cl_ord_id, request.orig_cl_ord_id,
                                "REJECTED" if order is None else order.current(), kind, why, self.venue))

    def _ib_order(self, side: str, quantity: float, order_type: str, limit_price: float | None, tif: str,
                  cl_ord_id: str, **fields: Any) -> Order:
        common = {"tif": tif, "orderRef": cl_ord_id, "account": self.account, **fields}
        action = "BUY" if side == BUY else "SELL"
        if order_type == LIMIT:
            return LimitOrder(action, quantity, limit_price, **common)
        if order_type != MARKET:
            raise ValueError(f"order type {order_type!r}: the IB route sends MKT and LMT only")
        return MarketOrder(action, quantity, **common)

    async def _status(self, cl_ord_id: str, symbol: str, side: str) -> None:
        async with self._status_lock:  # type: ignore[union-attr]  # ib_async keys these requests by name
            ib = self._ib
            if ib is not None and ib.isConnected():
                try:
                    await asyncio.wait_for(ib.reqOpenOrdersAsync(), self.timeout_s)
                    await asyncio.wait_for(ib.reqCompletedOrdersAsync(True), self.timeout_s)
                    executions = ib.reqExecutionsAsync(ExecutionFilter(symbol=symbol))
                    await asyncio.wait_for(executions, self.timeout_s)
                except (TimeoutError, ConnectionError) as exc:
                    log.warning("IB route: status refresh for %s failed (%r); answering from memory",
                                cl_ord_id, exc)
            order = self._by_ref.get(cl_ord_id)
            if order is None:
                owner = next((o for o in self._by_ref.values()
                              if o.pending is not None and o.pending.cl_ord_id == cl_ord_id), None)
                if owner is not None and isinstance(owner.pending, ReplaceRequest):
                    # a modify IB has not answered yet: its replacement is still pending, not unknown
                    replacement = _Order(cl_ord_id, owner.symbol, owner.side, owner.pending.quantity)
                    self._report(replacement, "ORDER_STATUS", "PENDING_NEW", keep=False)
                    return
                order = _Order(cl_ord_id, symbol, side, None)
                self._report(order, "ORDER_STATUS", "REJECTED", text="unknown order at IB", keep=False)
            elif order.pending is not None and cl_ord_id == order.cl_ord_id:
                # a cancel or modify IB has not answered yet: until it does, that is the status
                status = "PENDING_CANCEL" if isinstance(order.pending, CancelRequest) else "PENDING_REPLACE"
                self._report(order, "ORDER_STATUS", status, keep=False)
            else:
                orig = cl_ord_id if cl_ord_id != order.cl_ord_id else None
                self._report(order, "ORDER_STATUS", order.current(), orig_cl_ord_id=orig, keep=False)

    # -- what IB says (on the loop thread, through the wrapper taps) ---------------------------

    def _find(self, order_id: int, client_id: int, order_ref: str) -> _Order | None:
        order = self._by_id.get(order_id) if client_id == self.client_id and order_id > 0 else None
        if order is None and order_ref:
            order = self._by_ref.get(order_ref)
            if order is not None and order.order_id is None and client_id == self.client_id and order_id > 0:
                order.order_id = order_id
                self._by_id[order_id] = order
        return order

    def _learn(self, cl_ord_id: str, symbol: str, side: str, quantity: float | None, order_id: int) -> _Order:
        order = _Order(cl_ord_id, symbol, side, quantity, status=None)
        self._by_ref[cl_ord_id] = order
        if order_id > 0:
            order.order_id = order_id
            self._by_id[order_id] = order
        return order

    def _on_open_order(self, order_id: int, contract: Contract, ib_order: Order, state: Any) -> None:
        if ib_order.whatIf:
            return
        order = self._find(order_id, ib_order.clientId, ib_order.orderRef)
        if order is None:
            if not ib_order.orderRef or ib_order.clientId != self.client_id:
                return  # not one of ours
            order = self._learn(ib_order.orderRef, contract.symbol, SIDE_BY_ACTION.get(ib_order.action, BUY),
                                ib_order.totalQuantity, order_id)
        order.perm_id = ib_order.permId or order.perm_id
        order.tif = ib_order.tif or order.tif
        request = order.pending
        if isinstance(request, ReplaceRequest) and ib_order.orderRef == request.cl_ord_id:
            old, order.pending = order.cl_ord_id, None
            order.cl_ord_id, order.quantity = request.cl_ord_id, request.quantity
            self._by_ref[request.cl_ord_id] = order
            self._report(order, "REPLACED", "PARTIALLY_FILLED" if order.cum_qty > 0 else "NEW",
                         orig_cl_ord_id=old)
        elif order.quantity is None:
            order.quantity = ib_order.totalQuantity

    def _on_order_status(self, order_id: int, status: str, filled: float, remaining: float, avg_price: float,
                         perm_id: int, parent_id: int, last_price: float, client_id: int, *_: Any) -> None:
        order = self._by_id.get(order_id) if client_id == self.client_id else None
        if order is not None:
            order.ib_filled = max(order.ib_filled, filled)
            self._move(order, status)

    def _on_completed_order(self, contract: Contract, ib_order: Order, state: Any) -> None:
        order = self._by_ref.get(ib_order.orderRef) if ib_order.orderRef else None
        if ib_order.orderRef and order is None:
            order = self._learn(ib_order.orderRef, contract.symbol, SIDE_BY_ACTION.get(ib_order.action, BUY),
                                ib_order.totalQuantity, 0)
        if order is not None:
            filled = float(ib_order.filledQuantity)
            order.ib_filled = max(order.ib_filled, filled if filled < _UNSET else 0.0)
            self._move(order, state.status)

    def _move(self, order: _Order, ib_status: str) -> None:
        """Report the status change IB's ``ib_status`` means, if it is one (see the module doc)."""
        new = ord_status(ib_status, order.ib_filled)
        if new is None:
            log.info("IB route: order %s in IB status %r (not mapped)", order.cl_ord_id, ib_status)
        elif order.status is None:
            order.status = new  # learnt from the start-up sync: baseline, no report
        elif new == "NEW" and order.status == "PENDING_NEW":
            self._report(order, "NEW", "NEW")
        elif new in ("CANCELED", "REJECTED", "PENDING_CANCEL") and new != order.status:
            if new != "PENDING_CANCEL" and order.cum_qty < order.ib_filled - _EPS:
                order.deferred = ib_status  # executions still to come
            elif new not in ORDER_TRANSITIONS[order.status]:
                log.warning("IB route: %s says %s -> %s; not reported", order.cl_ord_id, order.status, new)
            else:
                request = order.pending if isinstance(order.pending, CancelRequest) else None
                if new != "PENDING_CANCEL":
                    order.pending = None
                self._report(order, new, new, cl_ord_id=request.cl_ord_id if request else None,
                             orig_cl_ord_id=order.cl_ord_id if request else None, text=order.text)

    def _on_exec(self, req_id: int, contract: Contract, ex: Any) -> None:
        order = self._find(ex.orderId, ex.clientId, ex.orderRef)
        if order is None:
            if not ex.orderRef or ex.clientId != self.client_id:
                return  # not one of ours (manual, or another API client's)
            side = SIDE_BY_EXEC.get(ex.side, BUY)
            order = self._learn(ex.orderRef, contract.symbol, side, None, ex.orderId)
        if ex.execId in self._exec_ids:
            return  # reported before a reconnect; IB re-sends it
        cum = ex.cumQty if ex.cumQty > 0 else order.cum_qty + ex.shares
        order.cum_qty, order.avg_price = max(order.cum_qty, cum), ex.avgPrice or ex.price
        quantity = order.quantity if order.quantity is not None else max(cum, order.ib_filled)
        status = "FILLED" if cum >= quantity - _EPS else "PARTIALLY_FILLED"
        if order.status not in FINAL_STATES:
            order.status = status
        report = ExecReport(int(ex.time.timestamp() * 1_000_000) * 1000, order.symbol, ex.execId,
                            order.cl_ord_id, "TRADE", status, order.side, ex.shares, ex.price, cum,
                            max(quantity - cum, 0.0), ex.avgPrice or ex.price,
                            str(ex.orderId) if ex.orderId > 0 else None, None, self.venue)
        self._exec_ids.add(ex.execId)
        self._emit(report, wait_commission=True)
        if order.deferred and order.cum_qty >= order.ib_filled - _EPS:
            deferred, order.deferred = order.deferred, None
            self._move(order, deferred)

    def _on_commission(self, report: Any) -> None:
        entry = self._awaiting.pop(report.execId, None)
        commission = report.commission
        if entry is None:
            if report.execId in self._exec_ids:
                log.warning("IB route: commission %s of execution %s came after its fill was reported "
                            "(commission_wait_s=%s): not counted", commission, report.execId,
                            self.commission_wait_s)
            return
        if not 0 <= commission < _UNSET:
            log.warning("IB route: commission %r of execution %s not used", commission, report.execId)
            commission = None
        entry.report, entry.due = dataclasses.replace(entry.report, commission=commission), None
        self._flush()

    def _on_error(self, req_id: int, code: int, text: str, *_: Any) -> None:
        order = self._by_id.get(req_id)
        message = f"IB {code}: {text}"
        if order is None or is_info(code):
            if order is not None:
                order.text = message
            log.log(logging.INFO if order is not None or is_info(code) else logging.WARNING,
                    "IB route: %s (reqId %s)", message, req_id)
            return
        request = order.pending
        if request is not None:  # IB refused the cancel / modify; the order stays as it was
            order.pending = None
            if order.status == "PENDING_CANCEL":
                order.status = "PARTIALLY_FILLED" if order.cum_qty > 0 else "NEW"
            self._emit(CancelReject(time.time_ns(), request.cl_ord_id, order.cl_ord_id, order.current(),
                                    "CANCEL" if isinstance(request, CancelRequest) else "REPLACE",
                                    message, self.venue))
        elif order.status == "PENDING_NEW":
            self._report(order, "REJECTED", "REJECTED", text=message)
        else:
            order.text = message
            log.warning("IB route: %s about %s (%s); waiting for its status", message, order.cl_ord_id,
                        order.status)

    # -- reports -------------------------------------------------------------------------------

    def _report(self, order: _Order, exec_type: str, status: str, *, cl_ord_id: str | None = None,
                orig_cl_ord_id: str | None = None, text: str | None = None, keep: bool = True) -> None:
        if keep:
            order.status = status
        quantity = order.quantity if order.quantity is not None else order.cum_qty
        leaves = 0.0 if status in FINAL_STATES else max(quantity - order.cum_qty, 0.0)
        self._emit(ExecReport(time.time_ns(), order.symbol, f"IB-{self._epoch:x}-{next(self._ids)}",
                              cl_ord_id or order.cl_ord_id, exec_type, status, order.side,
                              cum_qty=order.cum_qty, leaves_qty=leaves, avg_price=order.avg_price,
                              order_id=None if order.order_id is None else str(order.order_id),
                              venue=self.venue, orig_cl_ord_id=orig_cl_ord_id, text=text))

    def _emit(self, report: ExecReport | CancelReject, wait_commission: bool = False) -> None:
        entry = _Outgoing(report)
        if wait_commission and self.commission_wait_s > 0 and isinstance(report, ExecReport):
            entry.due = self._loop.time() + self.commission_wait_s  # type: ignore[union-attr]
            self._awaiting[report.exec_id] = entry
        self._outbox.append(entry)
        self._flush()

    def _flush(self, force: bool = False) -> None:
        """Deliver reports in order; stop at a TRADE still waiting for its commission."""
        loop = self._loop
        while self._outbox:
            head = self._outbox[0]
            if head.due is not None and not force and loop is not None and loop.time() < head.due:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = loop.call_at(head.due, self._flush)
                return
            self._outbox.popleft()
            if head.due is not None and isinstance(head.report, ExecReport):
                self._awaiting.pop(head.report.exec_id, None)
                log.warning("IB route: no commission for execution %s yet; reported without",
                            head.report.exec_id)
            try:
                self._on_report(head.report)  # type: ignore[misc]
            except Exception:
                log.exception("IB route: the report handler failed on %r", head.report)


def _tap(ours: Any, theirs: Any) -> Any:
    """Call our handler on a decoded IB message, then ib_async's own (which must always run)."""
    def call(*args: Any) -> None:
        try:
            ours(*args)
        except Exception:
            log.exception("IB route: handling %s%r failed", getattr(ours, "__name__", ours), args)
        theirs(*args)
    return call
