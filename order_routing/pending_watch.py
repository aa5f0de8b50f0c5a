"""The pending-order watch: an order the venue has not answered is asked about again.

An order is PENDING_NEW, PENDING_CANCEL or PENDING_REPLACE from our request until the venue
answers it. An answer can be lost: a FIX session Reject (35=3) is an admin message that is never
resent after a crash; a TWS can hold an order behind a dialog and say nothing; a venue can fail.
Such an order would stay pending until the next start-up's reconciliation, with the strategy and
risk counting it as working. The watch asks the venue about every order pending for longer than
``routing.pending_timeout_s`` (an order status request: FIX 35=H; IB: its open and completed
orders), and again while the order stays pending, each wait twice the last (up to 32 timeouts).
The venue's answer is a report the OMS applies like any other: an order the venue does not know
becomes REJECTED, a cancel the venue never got leaves the order working. An answer that leaves
it pending (IB has not acknowledged an order we placed: it is PENDING_NEW, not unknown) keeps the
watch asking, and from the third request on each one is logged as an error for an operator.

Asking is harmless when the answer was only slow. A FIX venue answers in session order, after
the request the order waits on; the one answer that can then contradict the OMS, about a replaced
order's old ClOrdID (the venue answers for the order it became), is not applied to it
(``OrderManager.apply``). The IB route answers about an order whose cancel or modify TWS has not
taken yet with that request's pending status, and about the replacement with PENDING_NEW: until
TWS acts, its listing cannot say more.

The watch reads the orders without the OMS's lock (it must not hold up the route's thread) and
reads an overdue order again under it before asking. A request the route refuses (not logged on)
is tried again each timeout, logged once. Each answer is journaled like any report: an order held
all day adds a few hundred ORDER_STATUS rows, the record of the venue being asked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from order_routing.events import Route
from order_routing.oms import OrderManager
from order_routing.positions import Order

log = logging.getLogger(__name__)

PENDING_STATES = frozenset({"PENDING_NEW", "PENDING_CANCEL", "PENDING_REPLACE"})
WARN_AFTER_REQUESTS = 3  # unanswered requests before the watch logs an error
MAX_BACKOFF = 32  # the longest wait between two requests about one order, in timeouts


@dataclass(slots=True)
class _Pending:
    """One order's current pending episode, as the watch has seen it."""

    status: str  # the episode: the order's status and updated_ts (a new request starts another)
    updated_ts: int
    since_ns: int  # its start on our clock: updated_ts, or when first seen if the venue's clock is ahead
    count: int = 0  # status requests sent in this episode
    at_ns: int = 0  # the last request, or the last attempt the route refused (0: none yet)
    failing: bool = False  # the last attempt was refused (logged once, retried each timeout)


class PendingWatch:
    """See the module doc. ``check()`` is one pass (the thread started by ``start()`` runs it
    every quarter timeout, at least once a second); ``ask()`` is one order status request,
    recorded so that the watch does not ask again before the timeout (``Router.reconcile`` asks
    through it)."""

    def __init__(self, oms: OrderManager, route: Route, timeout_s: float,
                 clock: Callable[[], int] = time.time_ns) -> None:
        if not timeout_s > 0:
            raise ValueError(f"pending timeout must be > 0 s, got {timeout_s!r}")
        self.oms, self.route, self.clock = oms, route, clock
        self.timeout_s = timeout_s
        self._timeout_ns = int(timeout_s * 1e9)
        self._watched: dict[str, _Pending] = {}
        self._lock = threading.Lock()  # check() from the thread, ask() from reconcile
        self.requests = 0  # status requests sent
        self.settled = 0  # pending episodes that ended after at least one request
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _episode(self, cid: str, status: str, updated_ts: int, now: int) -> _Pending:
        rec = self._watched.get(cid)
        if rec is None or (rec.status, rec.updated_ts) != (status, updated_ts):
            if rec is not None:
                self._ended(cid, rec)
            rec = self._watched[cid] = _Pending(status, updated_ts, min(updated_ts, now))
        return rec

    def _ended(self, cid: str, rec: _Pending) -> None:
        if rec.count:
            self.settled += 1
            order = self.oms.orders.get(cid)
            log.info("order %s is no longer %s after %d order status request(s): now %s", cid,
                     rec.status, rec.count, order.status if order is not None else "gone")

    def ask(self, order: Order) -> None:
        """An order status request for ``order`` (the route's error, e.g. not logged on, raises)."""
        with self._lock:
            now = self.clock()
            self.route.request_status(order.cl_ord_id, order.symbol, order.side)
            self.requests += 1
            state = self.oms.state_of(order.cl_ord_id)
            if state is not None and state[0] in PENDING_STATES:  # reconcile asks about working ones too
                rec = self._episode(order.cl_ord_id, *state, now)
                rec.count, rec.at_ns, rec.failing = rec.count + 1, now, False

    def check(self) -> list[str]:
        """Ask about every order pending past the timeout and not asked within it; forget the
        orders that are no longer pending. Returns the ClOrdIDs asked about."""
        now, timeout = self.clock(), self._timeout_ns
        # A snapshot without the OMS's lock (list() of a dict's values is one step under the GIL):
        # the scan must not hold up the route's thread applying reports. An order found overdue
        # is read again under the lock before anything is sent.
        orders = list(self.oms.orders.values())
        asked: list[str] = []
        with self._lock:
            pending = set()
            for order in orders:
                if order.status not in PENDING_STATES:
                    continue
                cid, status, updated_ts = order.cl_ord_id, order.status, order.updated_ts
                pending.add(cid)
                rec = self._episode(cid, status, updated_ts, now)
                wait = timeout * min(2 ** max(rec.count - 1, 0), MAX_BACKOFF)
                if now - (rec.at_ns or rec.since_ns) < wait:
                    continue
                if self.oms.state_of(cid) != (status, updated_ts):
                    continue  # moving on as we read it (a torn pair, or a report): the next pass sees
                age_s = (now - rec.since_ns) / 1e9
                try:
                    self.route.request_status(cid, order.symbol, order.side)
                except Exception as exc:  # noqa: BLE001 - the route's own error; tried again each timeout
                    if not rec.failing:
                        log.warning("order %s is %s for %.1f s; cannot ask %s about it now (trying again "
                                    "every %g s): %s", cid, status, age_s, self.route.venue, self.timeout_s,
                                    exc)
                    rec.at_ns, rec.failing = now, True
                    continue
                rec.count, rec.at_ns, rec.failing = rec.count + 1, now, False
                self.requests += 1
                asked.append(cid)
                if rec.count >= WARN_AFTER_REQUESTS:
                    log.error("order %s is %s for %.1f s: %s has not answered %d order status requests",
                              cid, status, age_s, self.route.venue, rec.count)
                else:
                    log.warning("order %s is %s for %.1f s with no answer from %s: order status request "
                                "%d", cid, status, age_s, self.route.venue, rec.count)
            for cid in [c for c in self._watched if c not in pending]:
                self._ended(cid, self._watched.pop(cid))
        return asked

    # -- the thread ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pending-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = min(max(self.timeout_s / 4, 0.05), 1.0)
        while not self._stop.wait(interval):
            try:
                self.check()
            except Exception:  # a bug here must not end the watch silently
                log.exception("pending-order watch: check failed; trying again")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():  # a route call stuck; the daemon thread ends with the process
                log.warning("pending-order watch: its thread did not stop within 5 s")
            self._thread = None

    def summary(self) -> dict[str, int]:
        """Requests sent; episodes settled after a request; orders asked about and still pending."""
        with self._lock:
            return {"status_requests": self.requests, "settled": self.settled,
                    "still_pending": sum(1 for rec in self._watched.values() if rec.count)}
