"""A message the venue refuses at the session level (FIX 35=3, e.g. a tag it requires and we do
not send) reaches the OMS: a new order becomes REJECTED with the venue's reason, a cancel or
replace is undone. Before, it was only logged, and the order sat in PENDING_NEW (or the cancel in
PENDING_CANCEL) as if the venue were working on it. A real ``tradelake exchange`` process, whose
QuickFIX validates every message against the FIX 4.4 dictionary. No service stack."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.exchange_process import fix_fields, start_exchange
from support.oms_listeners import RejectTexts

from intelligence.domain import BUY, LIMIT, OrderIntent
from order_routing.fix_common import SOH
from order_routing.fix_route import FixRoute
from order_routing.oms import OrderManager
from tradelake.config import FixSessionConfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SENDER = "TAGLESS"


class RouteLeavingOutATag(FixRoute):
    """Our FixRoute, except that what it sends lacks tag ``left_out`` (None: nothing left out):
    the venue's dictionary requires Side (54) on orders, cancels and replaces."""

    left_out: str | None = None

    def _send(self, msg_type: str, body: str) -> None:
        if self.left_out:
            body = SOH.join(f for f in body.split(SOH) if not f.startswith(f"{self.left_out}="))
        super()._send(msg_type, body)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:g}s"
        time.sleep(0.02)


def test_a_session_level_reject_rejects_the_order_and_undoes_a_cancel_or_replace(tmp_path: Path) -> None:
    (tmp_path / "exchange").mkdir()
    exchange = start_exchange(tmp_path / "exchange", symbols={"AAPL": 100.0}, clients=[SENDER])
    route = RouteLeavingOutATag(FixSessionConfig(port=exchange.port, sender_comp_id=SENDER,
                                                 store_dir="fix/route"), tmp_path / "route")
    oms = OrderManager(route, account=SENDER)
    rejections = RejectTexts()
    oms.subscribe(rejections)
    route.connect(oms.apply, 30)
    try:
        route.left_out = "54"
        oms.submit(OrderIntent(time.time_ns(), "AAPL", "NOSIDE", BUY, 1.0, LIMIT, 90.0))
        wait_for(lambda: oms.order("NOSIDE").status == "REJECTED", "reject of the order")
        route.left_out = None
        oms.submit(OrderIntent(time.time_ns(), "AAPL", "L", BUY, 1.0, LIMIT, 90.0))
        wait_for(lambda: oms.order("L").status == "NEW", "ack of L")
        route.left_out = "54"
        oms.cancel("L", request_id="L-c")
        wait_for(lambda: oms.order("L").status == "NEW", "cancel of L undone")
        oms.replace("L", quantity=2.0, request_id="L-r")
        wait_for(lambda: oms.order("L-r").status == "REJECTED", "replace of L undone")
        route.left_out = None
        oms.cancel("L", request_id="L-c2")
        wait_for(lambda: oms.order("L").status == "CANCELED", "cancel of L")
    finally:
        route.close()
        summary = exchange.stop()
    assert rejections.texts == {"NOSIDE": "SESSION_REJECT: Required tag missing (tag 54, reason 1)"}
    assert oms.order("L-r").status == "REJECTED"  # the replacement: its own row, no report
    assert oms.order("L").status == "CANCELED" and oms.order("L").cum_qty == 0.0
    assert not oms.anomalies
    # the exchange refused three messages at the session level and took the rest
    log = [fix_fields(line) for line in exchange.message_log(SENDER).read_text().splitlines()]
    rejects = [f for f in log if f.get("35") == "3"]
    assert [(f["371"], f["373"]) for f in rejects] == [("54", "1")] * 3
    assert summary["orders"] == 1 and summary["cancels"] == 1 and summary["replaces"] == 0
