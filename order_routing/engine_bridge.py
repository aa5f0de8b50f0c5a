"""The live execution client: the intelligence engine's orders go through the router's OMS.

One kernel for backtest and live (NautilusTrader's habit): the same ``Engine`` and strategies run
with ``SimulatedExecution`` in a backtest and with ``OmsExecution`` here; only the clock and this
client differ. Intents pass the engine's checks, then the OMS's pre-trade risk, then the route.

Fills arrive on the route's thread; the engine is single-threaded, so they are queued and handed
to ``engine.on_fill`` on the engine's thread, before the next event (``events()`` wraps the
source; live sources yield a heartbeat at least every poll, so a fill waits < ~50 ms).

ClOrdIDs: the engine numbers its orders from 1 in every run; a run prefix (start time) keeps them
unique across restarts, as FIX requires. A restarted router's engine starts from the OMS's
recovered positions (one synthetic ``RESTORE`` fill per open position at its average price).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from intelligence.domain import BUY, SELL, Bar, Fill, OrderIntent, Quote
from order_routing.oms import UNSENT_EXEC_ID_PREFIXES

if TYPE_CHECKING:
    from intelligence.engine import Engine
    from order_routing.events import ExecReport
    from order_routing.router import Router

log = logging.getLogger(__name__)


class OmsExecution:
    def __init__(self, router: Router, run_prefix: str | None = None) -> None:
        self.router = router
        self.working: dict[str, float] = {}  # the engine's view: symbols with open orders only
        self.engine: Engine | None = None
        self.prefix = run_prefix or f"R{time.time_ns() // 1_000_000:x}-"
        self._reports: collections.deque = collections.deque()  # appended on the route's thread
        self.submitted = self.rejected = self.fills = 0
        self.risk_rejected = self.not_sent = 0  # orders refused by risk; orders that never left
        self.latencies_ms: list[float] = []  # tick -> order, when the source says when its tick was sent
        self.source = None  # set by events(): a source with ``last_message_ms`` (Kafka timestamp)
        router.oms.subscribe(self)

    # -- ExecutionClient ----------------------------------------------------------------------------
    def bind(self, engine: Engine) -> None:
        self.engine = engine
        now = time.time_ns()
        for symbol, pos in self.router.oms.positions().items():
            if pos.quantity:
                engine.portfolio.apply_fill(Fill(now, symbol, f"RESTORE-{symbol}", "RESTORE",
                                                 BUY if pos.quantity > 0 else SELL, abs(pos.quantity),
                                                 pos.avg_price, venue="RESTORE"))
        for order in self.router.oms.open_orders():
            self._sync(order.symbol)

    def submit(self, intent: OrderIntent) -> None:
        intent = dataclasses.replace(intent, cl_ord_id=self.prefix + intent.cl_ord_id)
        sent_ms = getattr(self.source, "last_message_ms", None)
        order = self.router.submit(intent)
        if sent_ms:
            self.latencies_ms.append(time.time_ns() / 1e6 - sent_ms)
        self.submitted += 1
        if order.status == "REJECTED":
            self.rejected += 1
        else:
            self.working[intent.symbol] = self.working.get(intent.symbol, 0.0) + intent.signed_quantity

    def working_qty(self, symbol: str) -> float:
        return self.working.get(symbol, 0.0)

    def on_bar(self, bar: Bar) -> None:  # the venue fills, not the bars
        pass

    def on_quote(self, quote: Quote) -> None:
        pass

    # -- OMS listener (route's thread) --------------------------------------------------------------
    def on_order(self, row: dict[str, Any]) -> None:
        pass

    def on_execution(self, report: ExecReport) -> None:
        if report.exec_type == "REJECTED":  # these two only ever inside submit(), on its thread
            if report.venue == "RISK":
                self.risk_rejected += 1
            elif report.exec_id.startswith(UNSENT_EXEC_ID_PREFIXES):  # a failing journal or route
                self.not_sent += 1
        self._reports.append(report)

    # -- engine thread ------------------------------------------------------------------------------
    def _sync(self, symbol: str) -> None:
        qty = self.router.oms.working_qty(symbol)
        if abs(qty) > 1e-9:
            self.working[symbol] = qty
        else:
            self.working.pop(symbol, None)

    def drain(self) -> None:
        reports, engine = self._reports, self.engine
        while reports:
            report = reports.popleft()
            if report.exec_type == "TRADE" and engine is not None:
                self.fills += 1
                engine.on_fill(Fill(report.ts, report.symbol, report.exec_id, report.cl_ord_id, report.side,
                                    report.last_qty, report.last_price, report.commission or 0.0,
                                    report.venue))
            self._sync(report.symbol)

    def latency_summary(self) -> dict[str, float] | None:
        """p50/p99 of tick -> order (ms): from the Kafka timestamp of the message that completed the
        event (the bar's closing tick, or the quote) to the order handed to the route (after risk
        and the journal). Kafka timestamps are whole milliseconds."""
        if not self.latencies_ms:
            return None
        import numpy as np

        values = np.asarray(self.latencies_ms)
        return {"n": len(values), "p50": round(float(np.percentile(values, 50)), 3),
                "p99": round(float(np.percentile(values, 99)), 3), "max": round(float(values.max()), 3)}

    def events(self, source: Iterable[Bar | Quote | None]) -> Iterator[Bar | Quote | None]:
        """The source's events, with queued fills delivered and marks updated before each."""
        self.source = source
        mark = self.router.mark
        for event in source:
            if self._reports:
                self.drain()
            if type(event) is Bar:
                mark(event.symbol, event.close)
            elif event is not None:
                mark(event.symbol, (event.bid_price + event.ask_price) / 2)
            yield event
        self.drain()
