"""The pending-order watch: a real OrderManager on a manual clock; the route is a test double
that records the order status requests (the FIX and IB paths are in tests/integration)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from intelligence.domain import BUY, LIMIT, OrderIntent
from order_routing.events import ExecReport
from order_routing.oms import OrderManager
from order_routing.pending_watch import PendingWatch
from tradelake.config import RoutingConfig

S = 1_000_000_000  # ns


class StatusRoute:
    """Takes orders and records order status requests; ``down`` makes every send raise."""

    venue = "SIM"

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.down = False

    def connect(self, on_report: Any, timeout_s: float = 30.0) -> None:
        pass

    def send_new(self, order: OrderIntent) -> None:
        pass

    def send_cancel(self, request: Any) -> None:
        pass

    def send_replace(self, request: Any) -> None:
        pass

    def request_status(self, cl_ord_id: str, symbol: str, side: str) -> None:
        if self.down:
            raise ConnectionError("not logged on")
        self.asked.append(cl_ord_id)

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.ns = 100 * S

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * S)


def build(timeout_s: float = 10.0) -> tuple[OrderManager, StatusRoute, PendingWatch, Clock]:
    clock, route = Clock(), StatusRoute()
    oms = OrderManager(route, clock=clock)
    return oms, route, PendingWatch(oms, route, timeout_s, clock=clock), clock


def submit(oms: OrderManager, cid: str) -> None:
    oms.submit(OrderIntent(oms.clock(), "AAPL", cid, BUY, 10.0, LIMIT, 100.0))


def ack(oms: OrderManager, cid: str, exec_id: str) -> None:
    oms.apply(ExecReport(oms.clock(), "AAPL", exec_id, cid, "NEW", "NEW", BUY, 0.0, 0.0, 0.0, 10.0, 0.0))


def test_an_unanswered_order_is_asked_about_after_the_timeout_then_less_and_less_often(caplog):
    oms, route, watch, clock = build()
    submit(oms, "A")
    clock.advance(9.9)
    assert watch.check() == [] and route.asked == []
    clock.advance(0.1)
    with caplog.at_level(logging.WARNING, logger="order_routing.pending_watch"):
        assert watch.check() == ["A"]
    assert "order A is PENDING_NEW for 10.0 s with no answer from SIM: order status request 1" in caplog.text
    asked_at = [10]
    for t in range(11, 700):  # one pass a second
        clock.advance(1)
        if watch.check():
            asked_at.append(t)
    # waits of 1, 2, 4, ... timeouts, at most 32
    assert asked_at == [10, 20, 40, 80, 160, 320, 640]
    caplog.clear()
    clock.advance(320)
    with caplog.at_level(logging.WARNING, logger="order_routing.pending_watch"):
        assert watch.check() == ["A"]
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "has not answered 8 order status requests" in caplog.text
    assert route.asked == ["A"] * 8
    assert watch.summary() == {"status_requests": 8, "settled": 0, "still_pending": 1}


def test_an_answered_order_is_not_asked_about_and_an_asked_one_counts_as_settled():
    oms, route, watch, clock = build()
    submit(oms, "A")
    submit(oms, "B")
    clock.advance(1)
    ack(oms, "A", "E1")
    clock.advance(10)
    assert watch.check() == ["B"]
    ack(oms, "B", "E2")  # the venue's answer to the request
    assert watch.check() == []
    clock.advance(30)
    assert watch.check() == []
    assert route.asked == ["B"]
    assert watch.summary() == {"status_requests": 1, "settled": 1, "still_pending": 0}


def test_a_cancel_left_unanswered_is_asked_about_from_its_own_request_time():
    oms, route, watch, clock = build()
    submit(oms, "A")
    ack(oms, "A", "E1")
    clock.advance(60)
    assert watch.check() == []  # working, not pending
    oms.cancel("A", request_id="A-c")
    clock.advance(9)
    assert watch.check() == []
    clock.advance(1)
    assert watch.check() == ["A"]
    assert oms.order("A").status == "PENDING_CANCEL"


def test_a_new_request_on_the_same_order_starts_the_count_again():
    oms, route, watch, clock = build()
    submit(oms, "A")
    clock.advance(10)
    assert watch.check() == ["A"]
    ack(oms, "A", "E1")
    oms.cancel("A", request_id="A-c")  # between two passes: the watch never saw it working
    clock.advance(5)
    assert watch.check() == []  # the cancel is 5 s old, though A was asked about 5 s ago
    clock.advance(5.001)  # the OMS gives each of an order's rows its own ts: the cancel's is 1 ns on
    assert watch.check() == ["A"]
    assert watch._watched["A"].count == 1


def test_a_route_that_cannot_send_is_tried_again_each_timeout_and_logged_once(caplog):
    oms, route, watch, clock = build()
    submit(oms, "A")
    clock.advance(10)
    route.down = True
    with caplog.at_level(logging.WARNING, logger="order_routing.pending_watch"):
        assert watch.check() == []
        for _ in range(4):
            clock.advance(5)  # tried again at 20 and 30 s, not in between
            assert watch.check() == []
    assert [r.getMessage() for r in caplog.records] == [
        "order A is PENDING_NEW for 10.0 s; cannot ask SIM about it now (trying again every 10 s): "
        "not logged on"]
    route.down = False
    clock.advance(5)
    assert watch.check() == []  # 5 s after the last attempt
    clock.advance(5)
    assert watch.check() == ["A"]
    assert watch.summary() == {"status_requests": 1, "settled": 0, "still_pending": 1}


def test_an_order_stamped_ahead_of_our_clock_is_timed_from_when_the_watch_first_saw_it():
    """updated_ts can be a venue's TransactTime: a venue clock a minute ahead must not delay the
    request by a minute."""
    oms, route, watch, clock = build()
    oms.clock = lambda: clock.ns + 60 * S
    submit(oms, "A")
    oms.clock = clock
    assert watch.check() == []
    clock.advance(9.9)
    assert watch.check() == []
    clock.advance(0.1)
    assert watch.check() == ["A"]


def test_ask_of_a_working_order_sends_but_does_not_track_it():
    """Router.reconcile asks about every open order through the watch."""
    oms, route, watch, clock = build()
    submit(oms, "A")
    ack(oms, "A", "E1")
    submit(oms, "B")
    watch.ask(oms.order("A"))
    watch.ask(oms.order("B"))
    clock.advance(9)
    assert watch.check() == []  # B was asked 9 s ago
    assert watch.summary() == {"status_requests": 2, "settled": 0, "still_pending": 1}
    clock.advance(1)
    assert watch.check() == ["B"]


def test_the_thread_asks_on_its_own():
    route = StatusRoute()
    oms = OrderManager(route)
    watch = PendingWatch(oms, route, 0.05)
    submit(oms, "A")
    watch.start()
    try:
        deadline = time.monotonic() + 10
        while not route.asked:
            assert time.monotonic() < deadline, "the watch's thread asked nothing"
            time.sleep(0.01)
    finally:
        watch.stop()
    assert route.asked[0] == "A"
    assert watch._thread is None


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan")])
def test_a_watch_needs_a_positive_timeout(timeout):
    oms, route, _, _ = build()
    with pytest.raises(ValueError, match="pending timeout must be > 0 s"):
        PendingWatch(oms, route, timeout)


@pytest.mark.parametrize("timeout", [-1.0, float("inf"), float("nan")])
def test_config_refuses_a_negative_or_infinite_pending_timeout(timeout):
    with pytest.raises(ValueError, match="routing.pending_timeout_s must be >= 0"):
        RoutingConfig(pending_timeout_s=timeout)
