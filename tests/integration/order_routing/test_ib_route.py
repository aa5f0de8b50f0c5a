"""The IB route against FakeTws (the project's one test double): the real ib_async client over a
real loopback socket, driven through the real OMS (``OrderManager(route=IbRoute(...))``).

Each test checks three things: the reports the route produced (our vocabulary, IB's exec ids),
what the OMS made of them (order states, positions, commission, and no anomaly: every report was
a legal move), and what went over the wire to the fake. No running stack is needed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from doubles.fake_tws import FakeTws

from intelligence.domain import BUY, LIMIT, MARKET, SELL, OrderIntent
from order_routing.events import CancelReject, CancelRequest, ExecReport
from order_routing.ib_route import IbRoute
from order_routing.oms import OrderManager

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

T0 = 1_767_623_400_000_000_000
ACCOUNT = "DU123456"
Report = ExecReport | CancelReject


class Harness:
    """An OMS on an IbRoute to ``tws``, recording every report after the OMS applied it."""

    def __init__(self, tws: FakeTws, oms: OrderManager | None = None, **options: float) -> None:
        options = {"timeout_s": 5.0, "reconnect_s": 0.2, **options}
        self.tws = tws
        self.route = IbRoute("127.0.0.1", tws.port, 18, ACCOUNT, **options)
        self.oms = oms or OrderManager(account=ACCOUNT)
        self.oms.route = self.route
        self.reports: list[Report] = []
        self._cond = threading.Condition()
        self.route.connect(self._on_report, timeout_s=5)

    def _on_report(self, report: Report) -> None:
        self.oms.apply(report)
        with self._cond:
            self.reports.append(report)
            self._cond.notify_all()

    def wait(self, predicate: Callable[[list[Report]], bool], timeout: float = 10.0) -> list[Report]:
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self.reports), timeout), self.reports
            return list(self.reports)

    def wait_report(self, cl_ord_id: str, exec_type: str, count: int = 1) -> list[Report]:
        """Wait for ``count`` reports of ``exec_type`` about ``cl_ord_id``; returns those reports."""
        reports = self.wait(lambda rs: len(self.of(cl_ord_id, exec_type, rs)) >= count)
        return self.of(cl_ord_id, exec_type, reports)

    def of(self, cl_ord_id: str, exec_type: str | None = None, reports: list[Report] | None = None,
           ) -> list[Report]:
        return [r for r in (self.reports if reports is None else reports)
                if cl_ord_id in (r.cl_ord_id, r.orig_cl_ord_id)
                and (exec_type is None or getattr(r, "exec_type", "CANCEL_REJECT") == exec_type)]

    def trades(self) -> list[ExecReport]:
        return [r for r in self.reports if isinstance(r, ExecReport) and r.is_fill]


@pytest.fixture
def fake() -> Iterator[Callable[..., FakeTws]]:
    """FakeTws factory; the fakes close after the routes (``harness`` depends on this fixture)."""
    made: list[FakeTws] = []

    def make(**options) -> FakeTws:
        made.append(FakeTws(**options))
        return made[-1]

    yield make
    for tws in made:
        tws.close()


@pytest.fixture
def harness(fake) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(tws: FakeTws, **options) -> Harness:
        made.append(Harness(tws, **options))
        return made[-1]

    yield make
    for h in made:
        h.route.close()


def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def intent(cl_ord_id: str, symbol: str, side: str = BUY, quantity: float = 100.0,
           limit_price: float | None = None, tif: str = "GTC") -> OrderIntent:
    kind = LIMIT if limit_price else MARKET
    return OrderIntent(T0, symbol, cl_ord_id, side, quantity, kind, limit_price, tif)


def test_market_order_fills_in_one_execution_with_commission(fake, harness):
    tws = fake(marks={"AAPL": 187.25})
    h = harness(tws)
    h.oms.submit(intent("C1", "AAPL"))
    (trade,) = h.wait_report("C1", "TRADE")
    (new,) = h.of("C1", "NEW")

    ib_id = h.route.ib_order_id("C1")
    assert ib_id is not None and h.route.cl_ord_id(ib_id) == "C1"
    assert (new.exec_type, new.order_status, new.leaves_qty, new.order_id) == (
        "NEW", "NEW", 100, str(ib_id))
    (execution,) = tws.executions
    assert trade.exec_id == execution.exec_id  # IB's execId: what the OMS dedups by
    assert (trade.order_status, trade.side, trade.last_qty, trade.last_price, trade.cum_qty,
            trade.leaves_qty, trade.avg_price, trade.commission, trade.venue, trade.order_id) == (
        "FILLED", BUY, 100, 187.25, 100, 0, 187.25, 1.0, "IB", str(ib_id))  # 100 x 0.005, min 1.00

    order, position = h.oms.order("C1"), h.oms.position("AAPL")
    assert (order.status, order.cum_qty, order.order_id) == ("FILLED", 100, str(ib_id))
    assert (position.quantity, position.avg_price, position.commission) == (100, 187.25, 1.0)
    assert h.oms.anomalies == []

    # the wire: a SMART-routed USD stock, our ClOrdID as orderRef, tif and account as sent
    (place,) = tws.requests(3)
    assert (place[1], place[3], place[4], place[9], place[11]) == (
        str(ib_id), "AAPL", "STK", "SMART", "USD")
    assert (place[16], float(place[17]), place[18], place[21], place[23], place[26]) == (
        "BUY", 100.0, "MKT", "GTC", ACCOUNT, "C1")


@pytest.mark.parametrize("fill_order", [("exec", "commission", "status"), ("status", "exec", "commission"),
                                        ("exec", "status", "commission")])
def test_two_partial_executions_whatever_the_message_order(fake, harness, fill_order):
    """TWS may send orderStatus before execDetails and the commission last: same reports."""
    tws = fake(marks={"AAPL": 187.25}, max_lot=60, commission_per_share=0.02, fill_order=fill_order)
    h = harness(tws)
    h.oms.submit(intent("C1", "AAPL", side=SELL))
    h.wait(lambda rs: any(r.order_status == "FILLED" for r in rs))
    time.sleep(0.2)  # nothing more may come: orderStatus Filled is not a report of its own

    assert [(r.exec_type, r.order_status) for r in h.reports] == [
        ("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"), ("TRADE", "FILLED")]
    first, second = h.trades()
    assert [e.exec_id for e in tws.executions] == [first.exec_id, second.exec_id]
    assert (first.last_qty, first.cum_qty, first.leaves_qty, first.commission) == (60, 60, 40, 1.2)
    assert (second.last_qty, second.cum_qty, second.leaves_qty, second.commission) == (40, 100, 0, 1.0)
    position = h.oms.position("AAPL")
    assert (h.oms.order("C1").status, position.quantity) == ("FILLED", -100)
    assert position.commission == pytest.approx(2.2)
    assert h.oms.anomalies == []


def test_a_fill_without_commission_is_reported_after_the_wait(fake, harness):
    tws = fake(marks={"AAPL": 187.25}, commission_per_share=None)
    h = harness(tws, commission_wait_s=0.3)
    start = time.monotonic()
    h.oms.submit(intent("C1", "AAPL"))
    (trade,) = h.wait_report("C1", "TRADE")
    assert time.monotonic() - start >= 0.3
    assert (trade.order_status, trade.commission) == ("FILLED", None)
    assert (h.oms.position("AAPL").quantity, h.oms.position("AAPL").commission) == (100, 0)


def test_limit_order_works_then_is_cancelled(fake, harness):
    tws = fake(marks={"MSFT": 410.0})
    h = harness(tws)
    h.oms.submit(intent("C2", "MSFT", side=SELL, limit_price=420.0, tif="DAY"))  # above the mark: rests
    h.wait_report("C2", "NEW")
    assert (h.oms.order("C2").status, h.oms.position("MSFT").working_sell) == ("NEW", 100)

    request_id = h.oms.cancel("C2")
    (done,) = h.wait_report("C2", "CANCELED")
    assert (done.cl_ord_id, done.orig_cl_ord_id, done.order_status, done.leaves_qty) == (
        request_id, "C2", "CANCELED", 0)
    assert (h.oms.order("C2").status, h.oms.position("MSFT").working_sell) == ("CANCELED", 0)
    ib_id = h.route.ib_order_id("C2")
    assert tws.requests(4) == [("4", "1", str(ib_id), "")]
    place = tws.requests(3)[0]
    assert (place[18], float(place[19]), place[21]) == ("LMT", 420.0, "DAY")

    # a second cancel is refused by the route itself: the order is done
    h.route.send_cancel(CancelRequest("C2-again", "C2", "MSFT", SELL, 100))
    (reject,) = h.wait_report("C2-again", "CANCEL_REJECT")
    assert (reject.response_to, reject.order_status, reject.text) == (
        "CANCEL", "CANCELED", "order is CANCELED")
    assert len(tws.requests(4)) == 1 and h.oms.anomalies == []


def test_partially_filled_order_cancelled_keeps_its_fill(fake, harness):
    tws = fake(marks={"AAPL": 187.25}, liquidity={"AAPL": 60})
    h = harness(tws)
    h.oms.submit(intent("C1", "AAPL"))
    h.wait_report("C1", "TRADE")
    assert h.oms.order("C1").status == "PARTIALLY_FILLED"
    h.oms.cancel("C1")
    (done,) = h.wait_report("C1", "CANCELED")
    assert (done.cum_qty, done.leaves_qty) == (60, 0)
    order = h.oms.order("C1")
    assert (order.status, order.cum_qty, h.oms.position("AAPL").quantity) == ("CANCELED", 60, 60)
    assert h.oms.anomalies == []


def test_replace_modifies_the_same_ib_order(fake, harness):
    tws = fake(marks={"MSFT": 410.0})
    h = harness(tws)
    h.oms.submit(intent("C3", "MSFT", limit_price=400.0))  # below the mark: rests
    h.wait_report("C3", "NEW")
    ib_id = h.route.ib_order_id("C3")

    replacement = h.oms.replace("C3", quantity=150, limit_price=405.0)
    (replaced,) = h.wait_report(replacement, "REPLACED")
    assert (replaced.cl_ord_id, replaced.orig_cl_ord_id, replaced.order_status, replaced.leaves_qty) == (
        replacement, "C3", "NEW", 150)
    assert h.route.ib_order_id(replacement) == ib_id and h.route.cl_ord_id(ib_id) == replacement
    fake = tws.orders[ib_id]
    assert (fake.quantity, fake.limit_price, fake.order_ref) == (150, 405.0, replacement)
    assert (h.oms.order("C3").status, h.oms.order(replacement).status) == ("REPLACED", "NEW")
    assert h.oms.position("MSFT").working_buy == 150

    # a replace through the mark fills the order, under its newest ClOrdID
    second = h.oms.replace(replacement, limit_price=411.0)
    (trade,) = h.wait_report(second, "TRADE")
    assert (trade.cl_ord_id, trade.order_status, trade.last_qty, trade.last_price) == (
        second, "FILLED", 150, 410.0)
    assert [f[1] for f in tws.requests(3)] == [str(ib_id)] * 3  # one IB order, modified twice
    assert (h.oms.order(second).status, h.oms.position("MSFT").quantity) == ("FILLED", 150)
    assert h.oms.anomalies == []


def test_rejected_order_carries_ibs_reason(fake, harness):
    tws = fake(marks={"XYZ": 10.0}, order_reject={"XYZ": "Trading is not allowed for this account"})
    h = harness(tws)
    h.oms.submit(intent("C4", "XYZ"))
    (rejected,) = h.wait_report("C4", "REJECTED")
    assert rejected.order_status == "REJECTED"
    assert rejected.text == "IB 201: Order rejected - reason:Trading is not allowed for this account"
    assert (h.oms.order("C4").status, h.oms.position("XYZ").quantity) == ("REJECTED", 0)
    assert tws.orders == {} and h.oms.anomalies == []


def test_cancel_refused_by_ib_leaves_the_order_working(fake, harness):
    tws = fake(marks={"MSFT": 410.0})
    h = harness(tws)
    h.oms.submit(intent("C2", "MSFT", limit_price=400.0))
    h.wait_report("C2", "NEW")
    tws.orders[h.route.ib_order_id("C2")].status = "Filled"  # IB's view differs: it cannot cancel
    request_id = h.oms.cancel("C2")
    (reject,) = h.wait_report(request_id, "CANCEL_REJECT")
    assert (reject.orig_cl_ord_id, reject.response_to, reject.order_status) == ("C2", "CANCEL", "NEW")
    assert reject.text.startswith("IB 10148: OrderId") and h.oms.order("C2").status == "NEW"
    assert h.oms.anomalies == []


def test_sends_while_disconnected_are_refused_as_reports(fake, harness):
    tws = fake(marks={"MSFT": 410.0})
    h = harness(tws, reconnect_s=0)  # no reconnect
    h.oms.submit(intent("C2", "MSFT", limit_price=400.0))
    h.wait_report("C2", "NEW")
    tws.drop_client()
    until(lambda: not h.route.connected)

    h.oms.submit(intent("C6", "MSFT"))
    (rejected,) = h.wait_report("C6", "REJECTED")
    assert rejected.text.startswith("not sent: not connected to TWS/IB Gateway")
    request_id = h.oms.cancel("C2")
    (reject,) = h.wait_report(request_id, "CANCEL_REJECT")
    assert (reject.order_status, h.oms.order("C2").status) == ("NEW", "NEW")
    assert len(tws.requests(3)) == 1 and not tws.requests(4) and h.oms.anomalies == []


def test_reconnect_replays_executions_without_new_fills(fake, harness):
    tws = fake(marks={"AAPL": 187.25}, max_lot=60)
    h = harness(tws)
    h.oms.submit(intent("C1", "AAPL"))
    h.oms.submit(intent("C2", "MSFT", limit_price=300.0))  # no mark: works
    h.wait(lambda rs: len(h.trades()) == 2 and h.of("C2", "NEW", rs))
    c2 = h.route.ib_order_id("C2")

    tws.drop_client()
    tws.orders[c2].status = "Cancelled"  # IB cancels it while we are away
    until(lambda: len(tws.requests(7)) == 2)  # reconnected: executions asked for (and re-sent) again
    h.oms.submit(intent("C5", "AAPL", quantity=10))  # and orders flow again, with new IB ids
    h.wait_report("C5", "TRADE")  # the route handles IB's messages in order: the re-sync is done

    assert h.route.connected and len(tws.requests(71)) == 2
    assert [t.cl_ord_id for t in h.trades()] == ["C1", "C1", "C5"], "re-sent executions came again"
    assert h.route.ib_order_id("C5") > c2
    (cancelled,) = h.of("C2", "CANCELED")  # learnt from the completed orders of the re-sync
    assert (cancelled.cl_ord_id, h.oms.order("C2").status) == ("C2", "CANCELED")
    assert h.oms.position("AAPL").quantity == 110 and h.oms.anomalies == []


def test_new_route_instance_dedups_by_exec_id_and_recovers_orders(fake, harness):
    """A restarted route knows nothing: IB's re-sent executions come as TRADE reports with the
    same exec ids (the OMS drops them), orders are learnt back from their orderRef."""
    tws = fake(marks={"AAPL": 187.25, "MSFT": 410.0}, max_lot=60)
    first = harness(tws)
    first.oms.submit(intent("C1", "AAPL"))
    first.oms.submit(intent("C2", "MSFT", limit_price=400.0))
    first.wait(lambda rs: len(first.trades()) == 2 and first.of("C2", "NEW", rs))
    first.route.close()
    seen = {r.exec_id for r in first.trades()}
    before = (first.oms.position("AAPL").quantity, first.oms.position("AAPL").commission)

    second = harness(tws, oms=first.oms)  # the same OMS, a new route
    second.wait(lambda rs: len(second.trades()) == 2)
    assert {r.exec_id for r in second.trades()} == seen  # re-sent, nothing new in the dedup set
    assert (first.oms.position("AAPL").quantity, first.oms.position("AAPL").commission) == before
    assert second.route.cl_ord_id(first.route.ib_order_id("C2")) == "C2"  # from openOrder's orderRef

    for cl_ord_id, symbol in (("C1", "AAPL"), ("C2", "MSFT")):
        second.route.request_status(cl_ord_id, symbol, BUY)
    status = second.wait(lambda rs: len([r for r in rs if r.exec_type == "ORDER_STATUS"]) == 2)[-2:]
    assert [(r.cl_ord_id, r.order_status, r.cum_qty, r.leaves_qty) for r in status] == [
        ("C1", "FILLED", 100, 0), ("C2", "NEW", 0, 100)]

    request_id = second.oms.cancel("C2")  # cancels IB's order through the learnt mapping
    second.wait_report(request_id, "CANCELED")
    assert second.oms.order("C2").status == "CANCELED" and second.oms.anomalies == []


def test_status_of_an_order_ib_does_not_know_is_rejected(fake, harness):
    tws = fake()
    h = harness(tws)
    h.route.request_status("NOPE", "AAPL", SELL)
    (report,) = h.wait(lambda rs: len(rs) == 1)
    assert (report.exec_type, report.order_status, report.side, report.text) == (
        "ORDER_STATUS", "REJECTED", SELL, "unknown order at IB")
    assert tws.requests(5) and tws.requests(99) and tws.requests(7)  # it asked IB first


def test_connect_fails_cleanly_without_tws():
    with FakeTws() as tws:
        port = tws.port
    route = IbRoute("127.0.0.1", port, 18, timeout_s=1)
    with pytest.raises(Exception, match="cannot connect"):
        route.connect(lambda report: None, timeout_s=1)
    with pytest.raises(Exception, match="not connected"):
        route.send_new(intent("C1", "AAPL"))
