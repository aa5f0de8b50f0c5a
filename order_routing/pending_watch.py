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

Asking is harmless when the answer was only slow: FIX answers in session order, after the
request it is about, and a status report changes nothing that the venue's own reports did not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from order_routing.events import Route
from order_routing.oms import OrderManager
from order_routing.positions import Order

log = logging.getLogger(__name__)

PENDING_STATES = frozenset({"PENDING_NEW", "PENDING_CANCEL", "PENDING_REPLACE"})
WARN_AFTER_REQUESTS = 3  # unanswered requests before the watch logs an error
MAX_BACKOFF = 32  # the longest wait between two requests about one order, in timeouts


class _Asked(NamedTuple):
    status: str  # the order's status and updated_ts when asked: a new request (a cancel after an
    updated_ts: int  # answered order) starts the count again
    count: int
    at_ns: int  # clock time of the last request


class PendingWatch:
    """See the module doc. ``check()`` is one pass (the thread started by ``start()`` runs it
    four times per timeout, at most every second); ``ask()`` is one order status request, recorded so that the
    watch does not ask again before the timeout (``Router.reconcile`` asks through it)."""

    def __init__(self, oms: OrderManager, route: Route, timeout_s: float,
                 clock: Callable[[], int] = time.time_ns) -> None:
        if not timeout_s > 0:
            raise ValueError(f"pending timeout must be > 0 s, got {timeout_s!r}")
        self.oms, self.route, self.clock = oms, route, clock
        self.timeout_s = timeout_s
        self._timeout_ns = int(timeout_s * 1e9)
        self._asked: dict[str, _Asked] = {}
        self._lock = threading.Lock()  # check() from the thread, ask() from reconcile
        self.requests = 0  # status requests sent
        self.settled = 0  # asked orders no longer pending
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ask(self, order: Order) -> None:
        """An order status request for ``order`` (the route's error, e.g. not logged on, raises)."""
        with self._lock:
            self._request(order, self.clock())

    def _request(self, order: Order, now: int) -> int:
        seen = self._asked.get(order.cl_ord_id)
        same = seen is not None and (seen.status, seen.updated_ts) == (order.status, order.updated_ts)
        count = seen.count + 1 if same and seen is not None else 1
        self.route.request_status(order.cl_ord_id, order.symbol, order.side)
        self.requests += 1
        if order.status in PENDING_STATES:  # reconcile also asks about working orders
            self._asked[order.cl_ord_id] = _Asked(order.status, order.updated_ts, count, now)
        return count

    def check(self) -> list[str]:
        """Ask about every order pending past the timeout and not asked within it; forget the
        orders that are no longer pending. Returns the ClOrdIDs asked about."""
        now, timeout = self.clock(), self._timeout_ns
        # A snapshot without the OMS's lock (list() of a dict's values is one step under the GIL):
        # the scan must not hold up the route's thread applying reports. A status read while it
        # changes costs at most one needless request.
        orders = list(self.oms.orders.values())
        asked: list[str] = []
        with self._lock:
            pending = set()
            for order in orders:
                if order.status not in PENDING_STATES:
                    continue
                cid = order.cl_ord_id
                pending.add(cid)
                seen = self._asked.get(cid)
                if seen is None or (seen.status, seen.updated_ts) != (order.status, order.updated_ts):
                    since, wait = order.updated_ts, timeout  # not asked about in this state yet
                else:
                    since, wait = seen.at_ns, timeout * min(2 ** (seen.count - 1), MAX_BACKOFF)
                if now - since < wait:
                    continue
                age_s = (now - order.updated_ts) / 1e9
                try:
                    count = self._request(order, now)
                except Exception as exc:  # noqa: BLE001 - the route's own error; asked again next pass
                    log.warning("order %s is %s for %.1f s; cannot ask %s about it now: %s", cid,
                                order.status, age_s, self.route.venue, exc)
                    continue
                asked.append(cid)
                if count >= WARN_AFTER_REQUESTS:
                    log.error("order %s is %s for %.1f s: %s has not answered %d order status requests",
                              cid, order.status, age_s, self.route.venue, count)
                else:
                    log.warning("order %s is %s for %.1f s with no answer from %s: order status request "
                                "%d", cid, order.status, age_s, self.route.venue, count)
            for cid in [c for c in self._asked if c not in pending]:
                del self._asked[cid]
                self.settled += 1
                order = self.oms.orders.get(cid)
                log.info("order %s settled after order status request(s): %s", cid,
                         order.status if order is not None else "gone")
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
            self._thread = None

    def summary(self) -> dict[str, int]:
        with self._lock:
            return {"status_requests": self.requests, "settled": self.settled,
                    "still_pending": len(self._asked)}
