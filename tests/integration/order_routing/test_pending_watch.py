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

from intelligence.domain import BUY, MARKET, OrderIntent
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


def buy(cid: str, symbol: str, qty: float = 1.0) -> OrderIntent:
    return OrderIntent(time.time_ns(), symbol, cid, BUY, qty, MARKET)


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
        os.kill(exchange.proc.pid, signal.SIGSTOP)
        try:
            router.submit(buy("S2", "AAPL"))
            wait_for(lambda: router.pending.requests >= 2, "two status requests while the venue stalls")
            assert router.oms.order("S2").status == "PENDING_NEW"
        finally:
            os.kill(exchange.proc.pid, signal.SIGCONT)
        wait_for(lambda: router.oms.order("S2").status == "FILLED", "fill of S2")
        wait_for(lambda: router.pending.summary()["settled"] == 1, "the watch to see S2 settled")
        requests = router.pending.requests
    finally:
        router.close()
        exchange.stop()
    assert not router.oms.anomalies
    assert router.oms.order("S2").cum_qty == 1.0 and router.oms.position("AAPL").quantity == 2.0
    assert order_statuses(router, "S2") == ["PENDING_NEW", "NEW", "FILLED"]  # the status answers: no rows
    watch = router.summary()["pending_watch"]
    assert watch == {"status_requests": requests, "settled": 1, "still_pending": 0}
    log = [fix_fields(line) for line in exchange.message_log(sender).read_text().splitlines()]
    asked = [f["11"] for f in log if f.get("35") == "H"]
    answers = [f for f in log if f.get("35") == "8" and f.get("150") == "I" and f.get("11") == "S2"]
    assert asked == ["S2"] * requests and len(answers) == requests  # every request reached the venue
    assert [f["39"] for f in answers] == ["2"] * requests  # asked after the order: answered FILLED
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
