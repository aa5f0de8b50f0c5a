"""The router: one process owning an account's OMS, its journal, its route and its risk.

Start-up is recovery, every time (kdb+'s habit: a restart replays the log):

1. the journal is replayed into a fresh ``OrderManager`` (nothing is sent or re-journaled);
2. the journal is subscribed (write-ahead for everything from now on) and its shipper started
   (Kafka -> lake -> ``trading.*``, and the ODS), resuming where each sink stopped;
3. the route connects; a FIX venue resends what it sent while we were down (sequence numbers in
   the FileStore), and those reports are applied like any other (idempotent by ExecID);
4. every order the journal leaves open gets an order status request; the venue's answer settles
   it (an order the venue never received, journaled just before a crash, comes back rejected
   as unknown). ``reconcile()`` waits for those answers.

While it runs, the pending-order watch (``order_routing.pending_watch``) asks the venue about any
order left pending past ``routing.pending_timeout_s``: a lost answer costs a timeout, not a day.

So ``tradelake oms recover`` is a router that starts, reconciles, reports and stops; and a
``tradelake route`` restarted after kill -9 carries on with the same orders and positions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from intelligence.domain import OrderIntent
from order_routing.events import Route
from order_routing.journal import Journal, read_journal
from order_routing.oms import OrderManager
from order_routing.pending_watch import PENDING_STATES, PendingWatch
from order_routing.positions import Order
from order_routing.risk import KillSwitch, PreTradeRisk
from tradelake.config import Config

log = logging.getLogger(__name__)


class ReportCounter:
    """An OMS listener counting this run's applied reports by ExecType (the live status line)."""

    def __init__(self) -> None:
        self.reports: dict[str, int] = {}
        self.last_fill_ns = 0

    def on_order(self, row: dict[str, Any]) -> None:
        pass

    def on_execution(self, report: Any) -> None:
        self.reports[report.exec_type] = self.reports.get(report.exec_type, 0) + 1
        if report.exec_type == "TRADE":
            self.last_fill_ns = time.time_ns()


def build_route(cfg: Config, route: str | None = None) -> Route:
    """The profile's route (``routing.route``): the FIX session or Interactive Brokers."""
    kind = route or cfg.routing.route
    if kind == "fix":
        from order_routing.fix_route import FixRoute

        return FixRoute(cfg.routing.fix, cfg.var_dir, account=cfg.routing.account,
                        venue=cfg.routing.fix.target_comp_id)
    if kind == "ib":
        from order_routing.ib_route import IbRoute

        return IbRoute.from_config(cfg)
    raise ValueError(f"unknown route {kind!r}: expected fix or ib")


def journal_dir(cfg: Config) -> Path:
    path = Path(cfg.routing.journal_dir)
    return path if path.is_absolute() else cfg.var_dir / path


class Router:
    """See the module doc. ``ship``: also send the journal to Kafka and the ODS (off the order
    path); ``watch_kill_switch``: follow the shared kill switch row (PostgreSQL)."""

    def __init__(self, cfg: Config, route: Route, *, ship: bool = True, ship_ods: bool = True,
                 watch_kill_switch: bool = True, directory: Path | None = None,
                 risk_model: Callable[[str], float | None] | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.cfg, self.route = cfg, route
        self.directory = directory or journal_dir(cfg)
        self.marks: dict[str, float] = {}
        self.kill_switch = KillSwitch()
        self.risk = PreTradeRisk(cfg.routing.risk, self.marks, clock=clock, risk_model=risk_model,
                                 kill_switch=self.kill_switch)
        self.journal = Journal(self.directory)
        records = [(kind, row) for _, kind, row in read_journal(self.journal.path)]
        self.oms = OrderManager.replay(records, route, account=cfg.routing.account, risk=self.risk,
                                       clock=clock)
        self.recovered_records = len(records)
        self.oms.subscribe(self.journal)
        self.counter = ReportCounter()
        self.oms.subscribe(self.counter)
        # a crash between a report's record and its order row: journal the row now
        self.repaired_orders = self.oms.journal_missing_rows()
        timeout_s = cfg.routing.pending_timeout_s
        self.pending = PendingWatch(self.oms, route, timeout_s, clock=clock) if timeout_s > 0 else None
        self.shipper = None
        if ship:
            from order_routing.shipper import JournalShipper

            self.shipper = JournalShipper.start(cfg, self.journal, cfg.routing.account, ods=ship_ods)
        self._kill_watch = None
        if watch_kill_switch:
            from order_routing.kill_switch import watch

            self._kill_watch = watch(cfg, self.kill_switch)
        if records:
            log.info("recovered %d journal records: %d orders, %d open, %d order rows journaled again",
                     len(records), len(self.oms.orders), len(self.oms.open_orders()),
                     len(self.repaired_orders))

    def connect(self, timeout_s: float = 30.0) -> None:
        self.route.connect(self.oms.apply, timeout_s)
        if self.pending is not None:
            self.pending.start()

    def submit(self, intent: OrderIntent) -> Order:
        return self.oms.submit(intent)

    def mark(self, symbol: str, price: float) -> None:
        self.marks[symbol] = price
        self.oms.mark(symbol, price)

    def reconcile(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """Ask the venue about every open order and wait until none is left open-and-unanswered:
        an order still working at the venue stays open, with the venue's status."""
        asked = {}
        for order in self.oms.open_orders():
            if self.pending is not None:
                self.pending.ask(order)  # so the watch does not ask again before its timeout
            else:
                self.route.request_status(order.cl_ord_id, order.symbol, order.side)
            asked[order.cl_ord_id] = order.status
        deadline = time.monotonic() + timeout_s
        pending = set(asked)
        while pending and time.monotonic() < deadline:
            pending = {c for c in pending if self.oms.order(c).status in PENDING_STATES}
            time.sleep(0.02)
        return {"asked": len(asked), "unanswered": sorted(pending)}

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until the shipper has everything journaled so far in Kafka and the ODS."""
        if self.shipper:
            self.shipper.flush(self.journal.seq, timeout_s)

    def close(self) -> None:
        """Stop the route, ship what is on disk, close the journal (whatever failed before it).
        ``journal.unwritten`` afterwards counts records that never reached the disk."""
        try:
            if self.pending is not None:
                self.pending.stop()
            self.route.close()
        finally:
            try:
                if self._kill_watch is not None:
                    self._kill_watch.set()
                if self.shipper:
                    self.journal.flush_unwritten()
                    try:
                        self.flush()
                    finally:
                        self.shipper.stop()
            finally:
                self.journal.close()

    def summary(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for order in self.oms.orders.values():
            by_status[order.status] = by_status.get(order.status, 0) + 1
        positions = {s: {"quantity": p.quantity, "avg_price": p.avg_price, "realized_pnl": p.realized_pnl}
                     for s, p in self.oms.positions().items() if p.quantity or p.realized_pnl}
        return {"orders": len(self.oms.orders), "by_status": dict(sorted(by_status.items())),
                "reports": dict(self.counter.reports), "positions": positions,
                "pnl": self.oms.pnl(), "anomalies": len(self.oms.anomalies),
                "journal_seq": self.journal.seq, "journal_unwritten": self.journal.unwritten,
                "pending_watch": self.pending.summary() if self.pending else None,
                "shipped": self.shipper.summary() if self.shipper else None}
