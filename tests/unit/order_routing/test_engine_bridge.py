"""The live path's execution client (``OmsExecution``) and ``tradelake route``'s status line: an
order refused by risk and one that could not be sent are counted apart."""

from __future__ import annotations

import types

import pytest

from intelligence.domain import BUY, MARKET, OrderIntent
from order_routing.commands_oms import _StatusLine
from order_routing.engine_bridge import OmsExecution
from order_routing.events import ExecReport
from order_routing.router import Router
from tradelake.config import load_config

pytestmark = pytest.mark.unit


class FailingRoute:
    """A route whose sends of one symbol fail, as a session that refuses them would, and whose
    venue rejects another symbol's orders at once (before ``send_new`` returns)."""

    venue = "TEST"

    def __init__(self, failing_symbol: str, rejected_symbol: str) -> None:
        self.failing_symbol, self.rejected_symbol, self.sent = failing_symbol, rejected_symbol, []
        self.on_report = None

    def connect(self, on_report, timeout_s=30.0):
        self.on_report = on_report

    def send_new(self, order):
        if order.symbol == self.failing_symbol:
            raise RuntimeError("the session refused it")
        self.sent.append(order.cl_ord_id)
        if order.symbol == self.rejected_symbol:
            self.on_report(ExecReport(2, order.symbol, f"V-{order.cl_ord_id}", order.cl_ord_id, "REJECTED",
                                      "REJECTED", order.side, venue="TEST", text="unknown symbol"))
    def send_cancel(self, request): ...
    def send_replace(self, request): ...
    def request_status(self, cl_ord_id, symbol, side): ...
    def close(self): ...


def test_risk_rejects_and_unsent_orders_are_counted_apart(tmp_path):
    cfg = load_config("local", env={"TRADELAKE_STACK__VAR_DIR": str(tmp_path)})
    route = FailingRoute("MSFT", "IBM")
    router = Router(cfg, route, ship=False, watch_kill_switch=False, directory=tmp_path / "journal")
    router.connect()
    for symbol, price in {"AAPL": 100.0, "MSFT": 400.0, "IBM": 150.0}.items():
        router.mark(symbol, price)
    execution = OmsExecution(router, run_prefix="T-")
    too_big = cfg.routing.risk.max_order_qty * 2
    execution.submit(OrderIntent(1, "AAPL", "1", BUY, 10.0, MARKET))      # sent
    execution.submit(OrderIntent(2, "AAPL", "2", BUY, too_big, MARKET))   # risk
    execution.submit(OrderIntent(3, "MSFT", "3", BUY, 10.0, MARKET))      # send fails
    execution.submit(OrderIntent(4, "IBM", "4", BUY, 10.0, MARKET))       # sent, the venue rejects it
    assert route.sent == ["T-1", "T-4"]
    counts = execution.submitted, execution.rejected, execution.risk_rejected, execution.not_sent
    assert counts == (4, 3, 1, 1)
    line = _StatusLine(router, execution, types.SimpleNamespace(events=7)).text()
    assert "orders 4 (risk-rejected 1, not sent 1)" in line, line
    router.close()
