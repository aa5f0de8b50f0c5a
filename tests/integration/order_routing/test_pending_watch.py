"""The pending-order watch in a Router on both routes: a FIX venue that stalls (a real
``tradelake exchange`` process, stopped with SIGSTOP) and a TWS that holds an order without a
word (FakeTws, the test double, with ``hold``). No service stack."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from doubles.fake_tws import FakeTws
from support.exchange_process import fix_fields, start_exchange

from intelligence.domain import BUY, LIMIT, MARKET, OrderIntent
from order_routing.fix_route import FixRoute
from order_routing.ib_route import IbRoute
from order_routing.journal import read_journal
from order_routing.router import Router
from tradelake.config import Config, FixSessionConfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TIMEOUT_S = 0.2  # routing.pending_timeout_s of these tests


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:g}s"
        time.sleep(0.01)


def watching(cfg: Config) -> Config:
    return dataclasses.replace(cfg, routing=dataclasses.replace(cfg.routing, pending_timeout_s=TIMEOUT_S))


def buy(cid: str, symbol: str, qty: float = 1.0, limit: float | None = None) -> OrderIntent:
    return OrderIntent(time.time_ns(), symbol, cid, BUY, qty, MARKET if limit is None else LIMIT, limit)


class Stalled:
    """The exchange process stopped (SIGSTOP) for the block: it reads and answers nothing."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def __exit__(self, *exc: object) -> None:
        os.kill(self.pid, signal.SIGCONT)


def order_statuses(router: Router, cid: str) -> list[str]:
    return [row["status"] for _, kind, row in read_journal(router.journal.path)
            if kind == "order" and row["cl_ord_id"] == cid]


def test_a_stalled_venue_is_asked_and_its_late_answers_settle_the_order(cfg: Config, tmp_path: Path) -> None:
    sender = "WATCHED"
    (tmp_path / "exchange").mkdir()
    exchange = start_exchange(tmp_path / "exchange", symbols={"AAPL": 100.0}, clients=[sender])
    route = FixRoute(FixSessionConfig(port=exchange.port, sender_comp_id=sender, store_dir="fix/route"),
                     tmp_path / "route")
    router = Router(watching(cfg), route, ship=False, watch_kill_switch=False, directory=tmp_path / "oms")
    router.mark("AAPL", 100.0)
    try:
        router.connect(30)
        router.submit(buy("S1", "AAPL"))
        wait_for(lambda: router.oms.order("S1").status == "FILLED", "fill of S1")
        stalled = Stalled(exchange.proc.pid)
        with stalled:
            router.submit(buy("S2", "AAPL"))
            wait_for(lambda: router.pending.requests >= 2, "two status requests while the venue stalls")
            assert router.oms.order("S2").status == "PENDING_NEW"
        wait_for(lambda: router.oms.order("S2").status == "FILLED", "fill of S2")
        wait_for(lambda: router.pending.summary()["settled"] == 1, "the watch to see S2 settled")
        on_s2 = router.pending.requests
        # a replace, then a cancel, each while the venue stalls: both the order and its replacement
        # are asked about; the answer about the old ClOrdID comes after REPLACED (not applied)
        router.submit(buy("L", "AAPL", 1.0, limit=95.0))  # rests: the market maker asks ~100
        wait_for(lambda: router.oms.order("L").status == "NEW", "ack of L")
        with stalled:
            router.oms.replace("L", quantity=2.0, request_id="L-r")
            wait_for(lambda: router.pending.requests >= on_s2 + 2, "requests about L and L-r")
        wait_for(lambda: router.oms.order("L-r").status == "NEW", "the replace of L")
        with stalled:
            router.oms.cancel("L-r", request_id="L-c")
            wait_for(lambda: router.pending.requests >= on_s2 + 3, "a request about L-r's cancel")
            assert router.oms.order("L-r").status == "PENDING_CANCEL"
        wait_for(lambda: router.oms.order("L-r").status == "CANCELED", "the cancel of L-r")
        wait_for(lambda: router.pending.summary()["still_pending"] == 0, "the watch to see all settled")
        requests = router.pending.requests
    finally:
        router.close()
        exchange.stop()
    assert not router.oms.anomalies
    assert router.oms.order("S2").cum_qty == 1.0 and router.oms.position("AAPL").quantity == 2.0
    assert order_statuses(router, "S2") == ["PENDING_NEW", "NEW", "FILLED"]  # the status answers: no rows
    assert router.oms.order("L").status == "REPLACED"
    assert router.summary()["pending_watch"]["still_pending"] == 0
    log = [fix_fields(line) for line in exchange.message_log(sender).read_text().splitlines()]
    asked = [f["11"] for f in log if f.get("35") == "H"]
    answers = [f for f in log if f.get("35") == "8" and f.get("150") == "I"]
    assert len(asked) == requests and len(answers) == requests  # every request reached the venue
    assert asked[:on_s2] == ["S2"] * on_s2 and {"L", "L-r"} <= set(asked[on_s2:])
    assert [f["39"] for f in answers[:on_s2]] == ["2"] * on_s2  # asked after the order: answered FILLED
    assert exchange.positions(sender) == {"AAPL": 2.0}  # one fill each, none doubled


def test_an_order_tws_holds_is_asked_about_until_ib_speaks(cfg: Config, tmp_path: Path, caplog) -> None:
    tws = FakeTws(marks={"AAPL": 100.0, "MSFT": 200.0}, hold={"MSFT"})
    route = IbRoute("127.0.0.1", tws.port, 18, "DU123456", timeout_s=5.0, reconnect_s=0.2)
    router = Router(watching(cfg), route, ship=False, watch_kill_switch=False, directory=tmp_path / "oms")
    router.mark("AAPL", 100.0)
    router.mark("MSFT", 200.0)
    caplog.set_level(logging.WARNING, logger="order_routing.pending_watch")
    try:
        router.connect(10)
        router.submit(buy("A1", "AAPL", 10))
        router.submit(buy("M1", "MSFT", 10))
        wait_for(lambda: router.oms.order("A1").status == "FILLED", "fill of A1")
        wait_for(lambda: router.pending.requests >= 3, "three status requests about M1")
        # IB does not list M1 and the route sent it: still PENDING_NEW, not unknown (REJECTED)
        assert router.oms.order("M1").status == "PENDING_NEW"
        assert "order M1 is PENDING_NEW" in caplog.text
        assert "has not answered 3 order status requests" in caplog.text
        assert [f[3] for f in tws.requests(3)] == ["AAPL", "MSFT"]  # placed once, never again
        assert tws.release_held() == 1  # Transmit pressed in TWS
        wait_for(lambda: router.oms.order("M1").status == "FILLED", "fill of M1")
        wait_for(lambda: router.pending.summary()["settled"] == 1, "the watch to see M1 settled")
    finally:
        router.close()
        tws.close()
    assert not router.oms.anomalies
    assert order_statuses(router, "M1") == ["PENDING_NEW", "NEW", "FILLED"]  # as after any placeOrder
    assert router.oms.position("MSFT").quantity == 10.0
    asked = router.summary()["pending_watch"]["status_requests"]
    assert len(tws.requests(99)) >= asked  # each request refreshed IB's completed orders


def test_a_modify_and_a_cancel_tws_holds_leave_the_order_pending(cfg: Config, tmp_path: Path) -> None:
    """While TWS sits on a modify or a cancel, the route answers the watch with the request still
    pending (the replacement PENDING_NEW, not unknown; the order PENDING_REPLACE / PENDING_CANCEL,
    not NEW); once TWS acts, the order moves on with no anomaly and no fill lost."""
    tws = FakeTws(marks={"AAPL": 100.0}, hold_changes={"AAPL"})
    route = IbRoute("127.0.0.1", tws.port, 18, "DU123456", timeout_s=5.0, reconnect_s=0.2)
    router = Router(watching(cfg), route, ship=False, watch_kill_switch=False, directory=tmp_path / "oms")
    router.mark("AAPL", 100.0)
    oms = router.oms
    try:
        router.connect(10)
        router.submit(buy("A1", "AAPL", 10, limit=99.0))  # rests below the mark
        router.submit(buy("B1", "AAPL", 10, limit=98.0))
        wait_for(lambda: oms.order("A1").status == "NEW" and oms.order("B1").status == "NEW", "acks")
        oms.replace("A1", limit_price=101.0, request_id="A1-r")  # marketable once TWS takes it
        oms.cancel("B1", request_id="B1-c")
        wait_for(lambda: router.pending.summary()["still_pending"] == 3, "requests about A1, A1-r, B1")
        wait_for(lambda: router.pending.requests >= 6, "a second round of requests")
        assert [oms.order(c).status for c in ("A1", "A1-r", "B1")] == ["PENDING_REPLACE", "PENDING_NEW",
                                                                      "PENDING_CANCEL"]
        assert not oms.anomalies
        assert tws.release_held() == 2  # TWS takes the modify and the cancel
        wait_for(lambda: oms.order("A1-r").status == "FILLED", "fill of the replacement")
        wait_for(lambda: oms.order("B1").status == "CANCELED", "cancel of B1")
        wait_for(lambda: router.pending.summary()["still_pending"] == 0, "the watch to see all settled")
    finally:
        router.close()
        tws.close()
    assert oms.order("A1").status == "REPLACED" and oms.position("AAPL").quantity == 10.0
    assert not oms.anomalies
