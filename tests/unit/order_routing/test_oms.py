"""order_routing/oms.py: the order state machine driven through ``apply``, requests, listeners,
idempotence, adoption. Numbers are exact binary fractions, compared with ==."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intelligence.domain import BUY, LIMIT, SELL, OrderIntent
from ods.store import ORDER_TRANSITIONS
from order_routing.events import (
    CancelReject,
    CancelRequest,
    ExecReport,
    OrderError,
    ReplaceRequest,
    RequestReject,
)
from order_routing.oms import OrderManager, RiskRejected
from order_routing.risk import PreTradeRisk
from tradelake.config import RiskConfig
from tradelake.schemas import ORDER

_exec_ids = itertools.count(1)


class RecordingRoute:
    """A test route: records what the OMS sends, into a log it may share with a listener."""

    venue = "SIM"

    def __init__(self, log: list | None = None, fail: bool = False) -> None:
        self.log = log if log is not None else []
        self.fail = fail

    def connect(self, on_report: Any, timeout_s: float = 30.0) -> None:
        pass

    def _record(self, kind: str, obj: Any) -> None:
        if self.fail:
            raise ConnectionError("session down")
        self.log.append((kind, obj))

    def send_new(self, order: OrderIntent) -> None:
        self._record("send_new", order)

    def send_cancel(self, request: CancelRequest) -> None:
        self._record("send_cancel", request)

    def send_replace(self, request: ReplaceRequest) -> None:
        self._record("send_replace", request)

    def request_status(self, cl_ord_id: str, symbol: str, side: str) -> None:
        pass

    def close(self) -> None:
        pass


class Recorder:
    def __init__(self, log: list | None = None) -> None:
        self.log = log if log is not None else []

    def on_order(self, row: dict) -> None:
        self.log.append(("order", dict(row)))

    def on_execution(self, report: ExecReport) -> None:
        self.log.append(("execution", report))

    def statuses(self, cl_ord_id: str) -> list[str]:
        return [p["status"] for kind, p in self.log if kind == "order" and p["cl_ord_id"] == cl_ord_id]


def intent(cid: str, side: str = BUY, qty: float = 100, price: float | None = 10.0, symbol: str = "AAA"):
    kind = LIMIT if price is not None else "MKT"
    return OrderIntent(1, symbol, cid, side, qty, kind, price)


def report(oms: OrderManager, cid: str, exec_type: str, status: str, last_qty: float = 0.0,
           last_price: float = 0.0, *, as_id: str | None = None, **kw: Any) -> ExecReport:
    """A venue report on order ``cid`` consistent with its fills so far (cum/leaves/avg), sent
    as ``as_id`` (a cancel request's ClOrdID) when given."""
    order = oms.order(cid)
    cum = order.cum_qty + last_qty
    avg = (order.avg_price * order.cum_qty + last_price * last_qty) / cum if cum else 0.0
    return ExecReport(2, order.symbol, f"E{next(_exec_ids)}", as_id or cid, exec_type, status, order.side,
                      last_qty, last_price, cum, max(order.quantity - cum, 0.0), avg, **kw)


def setup(route: RecordingRoute | None = None, **kw: Any) -> tuple[OrderManager, Recorder]:
    oms = OrderManager(route, clock=iter(range(1000, 10**6)).__next__, **kw)
    rec = Recorder()
    oms.subscribe(rec)
    return oms, rec


# -- submit and listeners ------------------------------------------------------------------------------
def test_order_row_reaches_listeners_before_the_route_gets_the_order():
    log: list = []
    oms = OrderManager(RecordingRoute(log), clock=lambda: 7)
    oms.subscribe(Recorder(log))
    order = oms.submit(intent("A1"))
    assert [kind for kind, _ in log] == ["order", "send_new"]
    row = log[0][1]
    assert tuple(row) == ORDER.names  # the canonical ORDER row, in schema order
    assert row == {"ts": 7, "symbol": "AAA", "cl_ord_id": "A1", "side": BUY, "order_type": LIMIT,
                   "quantity": 100.0, "limit_price": 10.0, "time_in_force": "GTC", "strategy_id": None,
                   "status": "PENDING_NEW", "account": "DEFAULT"}
    assert log[1][1].cl_ord_id == "A1" and order.status == "PENDING_NEW"
    assert oms.working_qty("AAA") == 100.0 and oms.open_orders() == [order]


def test_an_applied_report_reaches_listeners_before_the_order_rows_it_causes():
    oms, rec = setup()
    oms.submit(intent("A1"))
    rec.log.clear()
    r = report(oms, "A1", "NEW", "NEW", order_id="V1")
    assert oms.apply(r) is True
    assert [kind for kind, _ in rec.log] == ["execution", "order"] and rec.log[0][1] is r
    assert oms.order("A1").order_id == "V1"


def test_client_order_ids_are_never_reused():
    oms, _ = setup()
    oms.submit(intent("A1"))
    oms.apply(report(oms, "A1", "REJECTED", "REJECTED"))  # final
    with pytest.raises(OrderError, match="already used"):
        oms.submit(intent("A1"))
    oms.submit(intent("A2"))
    oms.apply(report(oms, "A2", "NEW", "NEW"))
    cancel_id = oms.cancel("A2", request_id="X1")
    with pytest.raises(OrderError, match="already used"):
        oms.submit(intent(cancel_id))
    oms.apply(CancelReject(3, "X1", "A2", "NEW", "CANCEL"))
    with pytest.raises(OrderError, match="already used"):
        oms.replace("A2", quantity=5, request_id="A1")
    generated = {oms.cancel("A2")}
    oms.apply(CancelReject(4, next(iter(generated)), "A2", "NEW", "CANCEL"))
    generated.add(oms.replace("A2", limit_price=9.5))
    assert len(generated) == 2 and not generated & {"A1", "A2", "X1"}


def test_risk_reject_is_a_rejected_order_and_a_risk_report_and_nothing_is_sent():
    route = RecordingRoute()
    limits = RiskConfig(max_order_qty=50, max_order_notional=0, max_position=0, max_gross_exposure=0,
                        price_collar_pct=0, max_orders_per_s=0, daily_loss_limit=0)
    oms, rec = setup(route, risk=PreTradeRisk(limits))
    order = oms.submit(intent("A1", qty=60))
    assert order.status == "REJECTED" and order.leaves_qty == 0.0 and route.log == []
    (k1, row), (k2, rj) = rec.log
    assert (k1, row["status"], k2) == ("order", "REJECTED", "execution")
    assert (rj.exec_id, rj.venue, rj.exec_type, rj.order_status, rj.text) == (
        "RISK-A1", "RISK", "REJECTED", "REJECTED", "MAX_ORDER_QTY: 60 > 50")
    assert oms.working_qty("AAA") == 0.0 and "RISK-A1" in oms.exec_ids


def test_a_failed_send_rejects_the_order_on_the_record():
    oms, rec = setup(RecordingRoute(fail=True))
    order = oms.submit(intent("A1"))
    assert order.status == "REJECTED" and rec.statuses("A1") == ["PENDING_NEW", "REJECTED"]
    assert rec.log[1][1].text == "SEND_FAILED: session down"


# -- the transition table, through apply -----------------------------------------------------------------
def _order_in(oms: OrderManager, state: str) -> str:
    """Bring a fresh order to ``state`` through the OMS's own requests and venue reports."""
    oms.submit(intent("O"))
    if state == "PENDING_NEW":
        return "O"
    oms.apply(report(oms, "O", "NEW", "NEW"))
    steps = {"PARTIALLY_FILLED": ("TRADE", 10), "FILLED": ("TRADE", 100), "CANCELED": ("CANCELED", 0),
             "REJECTED": ("REJECTED", 0), "EXPIRED": ("EXPIRED", 0), "DONE_FOR_DAY": ("DONE_FOR_DAY", 0)}
    if state in steps:
        exec_type, qty = steps[state]
        oms.apply(report(oms, "O", exec_type, state, qty, 10.0 if qty else 0.0))
    elif state == "PENDING_CANCEL":
        oms.cancel("O", request_id="C")
    elif state in ("PENDING_REPLACE", "REPLACED"):
        oms.replace("O", quantity=120, request_id="R")
        if state == "REPLACED":
            oms.apply(_report_into(oms, "O", "REPLACED"))
    assert oms.order("O").status == state
    return "O"


def _report_into(oms: OrderManager, cid: str, new: str) -> ExecReport:
    order = oms.order(cid)
    if new in ("PARTIALLY_FILLED", "FILLED"):
        last = 10.0 if new == "PARTIALLY_FILLED" else max(order.leaves_qty, 1.0)
        return report(oms, cid, "TRADE", new, last, 10.0)
    if new == "REPLACED":
        return ExecReport(2, "AAA", f"E{next(_exec_ids)}", "R", "REPLACED", "NEW", BUY, cum_qty=order.cum_qty,
                          leaves_qty=120 - order.cum_qty, orig_cl_ord_id=cid)
    return report(oms, cid, new, new)


ALL_MOVES = [(a, b) for a in ORDER_TRANSITIONS for b in ORDER_TRANSITIONS if a != b]


@pytest.mark.parametrize(("old", "new"), ALL_MOVES, ids=[f"{a}->{b}" for a, b in ALL_MOVES])
def test_every_move_of_the_transition_table(old: str, new: str):
    oms, rec = setup()
    cid = _order_in(oms, old)
    rec.log.clear()
    applied = oms.apply(_report_into(oms, cid, new))
    if new in ORDER_TRANSITIONS[old]:
        assert applied and oms.order(cid).status == new and oms.anomalies == []
        assert rec.statuses(cid)[-1] == new
    else:
        assert not applied and oms.order(cid).status == old and rec.log == []
        (_, reason), = oms.anomalies
        assert "ILLEGAL_TRANSITION" in reason or "FILL_ON_FINAL_ORDER" in reason


def test_an_illegal_report_is_logged_and_recorded_each_time_never_dropped(caplog):
    oms, _ = setup()
    _order_in(oms, "FILLED")
    late = report(oms, "O", "CANCELED", "CANCELED")
    with caplog.at_level(logging.WARNING, logger="order_routing.oms"):
        assert oms.apply(late) is False and oms.apply(late) is False
    assert [reason for _, reason in oms.anomalies] == ["O: ILLEGAL_TRANSITION: FILLED -> CANCELED"] * 2
    assert "ILLEGAL_TRANSITION" in caplog.text and late.exec_id not in oms.exec_ids


def test_overfill_is_an_anomaly():
    oms, _ = setup()
    _order_in(oms, "NEW")
    assert oms.apply(report(oms, "O", "TRADE", "FILLED", 101, 10.0)) is False
    assert oms.anomalies[0][1] == "O: OVERFILL: 101 > quantity 100" and oms.order("O").cum_qty == 0.0


def test_a_status_report_repeating_the_status_is_applied_without_an_order_row():
    oms, rec = setup()
    _order_in(oms, "PENDING_CANCEL")
    rec.log.clear()
    assert oms.apply(report(oms, "O", "PENDING_CANCEL", "PENDING_CANCEL")) is True
    assert [kind for kind, _ in rec.log] == ["execution"]


# -- fills, cancel, replace ---------------------------------------------------------------------------
def test_partial_fills_update_cum_leaves_average_price_and_position():
    oms, rec = setup()
    oms.submit(intent("A1"))
    oms.apply(report(oms, "A1", "NEW", "NEW"))
    oms.apply(report(oms, "A1", "TRADE", "PARTIALLY_FILLED", 30, 10.0))
    oms.apply(report(oms, "A1", "TRADE", "PARTIALLY_FILLED", 50, 12.0))
    o = oms.order("A1")
    # avg (30 * 10 + 50 * 12) / 80 = 900 / 80 = 11.25
    assert (o.cum_qty, o.leaves_qty, o.avg_price, o.status) == (80.0, 20.0, 11.25, "PARTIALLY_FILLED")
    assert oms.working_qty("AAA") == 20.0
    oms.apply(report(oms, "A1", "TRADE", "FILLED", 20, 12.5, commission=1.5))
    # (900 + 20 * 12.5) / 100 = 11.5
    assert (o.cum_qty, o.leaves_qty, o.avg_price, o.is_final) == (100.0, 0.0, 11.5, True)
    pos = oms.position("AAA")
    assert (pos.quantity, pos.avg_price, pos.commission) == (100.0, 11.5, 1.5)
    assert rec.statuses("A1") == ["PENDING_NEW", "NEW", "PARTIALLY_FILLED", "PARTIALLY_FILLED", "FILLED"]
    assert oms.open_orders() == [] and oms.working_qty("AAA") == 0.0


def test_cancel_sends_a_request_and_the_venue_answer_is_matched_by_request_id():
    route = RecordingRoute()
    oms, rec = setup(route)
    oms.submit(intent("A1", side=SELL))
    with pytest.raises(OrderError, match="PENDING_NEW: cannot move to PENDING_CANCEL"):
        oms.cancel("A1")
    oms.apply(report(oms, "A1", "NEW", "NEW"))
    assert oms.working_qty("AAA") == -100.0
    assert oms.cancel("A1", request_id="C1") == "C1"
    assert route.log[-1] == ("send_cancel", CancelRequest("C1", "A1", "AAA", SELL, 100.0))
    assert rec.statuses("A1")[-1] == "PENDING_CANCEL"
    oms.apply(report(oms, "A1", "CANCELED", "CANCELED", orig_cl_ord_id="A1", as_id="C1"))
    assert oms.order("A1").status == "CANCELED" and oms.working_qty("AAA") == 0.0
    with pytest.raises(OrderError, match="CANCELED"):
        oms.cancel("A1")
    with pytest.raises(OrderError, match="unknown order"):
        oms.cancel("nope")


def test_replace_of_a_partially_filled_order_carries_its_fills_to_the_replacement():
    route = RecordingRoute()
    oms, rec = setup(route)
    oms.submit(intent("A1"))
    oms.apply(report(oms, "A1", "NEW", "NEW", order_id="V1"))
    oms.apply(report(oms, "A1", "TRADE", "PARTIALLY_FILLED", 40, 10.0))
    rid = oms.replace("A1", quantity=150, limit_price=10.5, request_id="A1b")
    assert route.log[-1] == ("send_replace", ReplaceRequest("A1b", "A1", "AAA", BUY, 150, LIMIT, 10.5))
    rows = [p for kind, p in rec.log if kind == "order"][-2:]
    assert [(r["cl_ord_id"], r["status"], r["quantity"], r["limit_price"]) for r in rows] == [
        ("A1", "PENDING_REPLACE", 100.0, 10.0), ("A1b", "PENDING_NEW", 150.0, 10.5)]
    assert oms.working_qty("AAA") == 60.0  # the old order's open part, until the venue replaces it
    oms.apply(ExecReport(5, "AAA", "E-rep", rid, "REPLACED", "PARTIALLY_FILLED", BUY, cum_qty=40,
                         leaves_qty=110, avg_price=10.0, order_id="V1", orig_cl_ord_id="A1"))
    old, new = oms.order("A1"), oms.order(rid)
    assert (old.status, old.leaves_qty) == ("REPLACED", 0.0)
    assert (new.status, new.cum_qty, new.leaves_qty, new.avg_price, new.order_id) == (
        "PARTIALLY_FILLED", 40.0, 110.0, 10.0, "V1")
    assert oms.working_qty("AAA") == 110.0
    oms.apply(report(oms, rid, "TRADE", "FILLED", 110, 11.0))
    # 40 @ 10 + 110 @ 11 = 1610 over 150
    assert new.status == "FILLED" and oms.position("AAA").quantity == 150.0
    assert new.avg_price == 1610 / 150 and oms.anomalies == []


def test_a_status_answer_about_a_replaced_orders_old_clordid_is_not_applied_to_it():
    """Asked about by its old ClOrdID while the replace was pending, a venue answers for the order
    it became (the simulated exchange does): news of the replacement, not a move of the old one."""
    oms, rec = setup(RecordingRoute())
    oms.submit(intent("A1"))
    oms.apply(report(oms, "A1", "NEW", "NEW", order_id="V1"))
    rid = oms.replace("A1", limit_price=10.5, request_id="A1b")
    oms.apply(ExecReport(5, "AAA", "E-rep", rid, "REPLACED", "NEW", BUY, leaves_qty=100, order_id="V1",
                         orig_cl_ord_id="A1"))
    rows = len(rec.log)
    answer = ExecReport(6, "AAA", "E-st", "A1", "ORDER_STATUS", "NEW", BUY, leaves_qty=100, order_id="V1")
    assert oms.apply(answer) is False
    assert oms.order("A1").status == "REPLACED" and oms.order(rid).status == "NEW"
    assert oms.anomalies == [] and len(rec.log) == rows  # nothing journaled
    # any other final order still disagrees loudly
    oms.cancel(rid, request_id="A1c")
    oms.apply(report(oms, rid, "CANCELED", "CANCELED", as_id="A1c"))
    assert oms.apply(ExecReport(7, "AAA", "E-st2", rid, "ORDER_STATUS", "NEW", BUY, leaves_qty=100)) is False
    assert "ILLEGAL_TRANSITION: CANCELED -> NEW" in oms.anomalies[-1][1]


def test_a_fill_while_the_replace_is_pending_goes_to_the_old_order():
    oms, _ = setup()
    _order_in(oms, "PENDING_REPLACE")
    # FIX precedence: OrdStatus stays PENDING_REPLACE; the report names the replacement and 41
    fill = ExecReport(3, "AAA", "F1", "R", "TRADE", "PENDING_REPLACE", BUY, 30, 10.0, 30, 70, 10.0,
                      orig_cl_ord_id="O")
    assert oms.apply(fill) and oms.order("O").cum_qty == 30.0 and oms.order("R").cum_qty == 0.0


def test_cancel_reject_returns_the_order_to_the_status_the_venue_states():
    oms, rec = setup(RecordingRoute())
    _order_in(oms, "PARTIALLY_FILLED")
    oms.cancel("O", request_id="C1")
    reject = CancelReject(3, "C1", "O", "PARTIALLY_FILLED", "CANCEL", "too late")
    assert oms.apply(reject) is True and oms.order("O").status == "PARTIALLY_FILLED"
    assert oms.apply(reject) is False  # said twice: nothing more to change
    rid = oms.replace("O", quantity=50, request_id="R1")
    assert oms.apply(CancelReject(4, rid, "O", "PARTIALLY_FILLED", "REPLACE")) is True
    assert oms.order("O").status == "PARTIALLY_FILLED" and oms.order(rid).status == "REJECTED"
    assert rec.statuses(rid) == ["PENDING_NEW", "REJECTED"] and oms.working_qty("AAA") == 90.0
    bad = CancelReject(5, "C9", "O", "PENDING_NEW", "CANCEL")
    assert oms.apply(bad) is False and "ILLEGAL_TRANSITION" in oms.anomalies[-1][1]


def test_a_request_the_venue_refused_unread_rejects_the_order_or_undoes_the_cancel_or_replace():
    oms, rec = setup(RecordingRoute())
    oms.submit(intent("N"))
    refused = RequestReject(3, "N", "SESSION_REJECT: Required tag missing (tag 54, reason 1)", "SIM")
    assert oms.apply(refused) is True
    assert oms.order("N").status == "REJECTED" and rec.statuses("N") == ["PENDING_NEW", "REJECTED"]
    rejected = [r for kind, r in rec.log if kind == "execution" and r.cl_ord_id == "N"]
    assert [(r.exec_type, r.text, r.venue) for r in rejected] == [("REJECTED", refused.text, "SIM")]
    assert oms.apply(refused) is False  # the venue's resend: nothing more
    _order_in(oms, "PARTIALLY_FILLED")
    oms.cancel("O", request_id="C1")
    assert oms.apply(RequestReject(4, "C1", "BUSINESS_REJECT: not now (reason 4)")) is True
    assert oms.order("O").status == "PARTIALLY_FILLED"
    oms.replace("O", quantity=50, request_id="R1")
    assert oms.apply(RequestReject(5, "R1", "SESSION_REJECT: bad (reason 5)")) is True
    assert oms.order("O").status == "PARTIALLY_FILLED" and oms.order("R1").status == "REJECTED"
    assert oms.working_qty("AAA") == 90.0
    assert oms.apply(RequestReject(6, "X1", "SESSION_REJECT: ? (reason 1)")) is False
    assert "unknown ClOrdID" in oms.anomalies[-1][1]


def test_a_refused_cancel_leaves_the_order_where_fills_during_the_cancel_took_it():
    oms, _ = setup(RecordingRoute())
    _order_in(oms, "NEW")
    oms.cancel("O", request_id="C1")
    # FIX precedence: a fill while the cancel is pending reports OrdStatus PENDING_CANCEL
    oms.apply(report(oms, "O", "TRADE", "PENDING_CANCEL", 100, 10.0))
    assert oms.order("O").status == "PENDING_CANCEL" and oms.order("O").cum_qty == 100
    assert oms.apply(RequestReject(4, "C1", "BUSINESS_REJECT: not now (reason 4)")) is True
    assert oms.order("O").status == "FILLED" and not oms.open_orders()


def test_a_stale_or_resent_reject_changes_nothing():
    oms, _ = setup(RecordingRoute())
    _order_in(oms, "NEW")
    # a reject of our resend (PossDup) of an order the venue already works: it stays working
    assert oms.apply(RequestReject(3, "O", "BUSINESS_REJECT: duplicate ClOrdID (reason 0)")) is False
    assert oms.order("O").status == "NEW" and oms.working_qty("AAA") == 100
    oms.replace("O", quantity=50, request_id="R1")
    oms.apply(CancelReject(4, "R1", "O", "NEW", "REPLACE", "too late"))
    oms.replace("O", quantity=60, request_id="R2")
    # the venue resends its reject of R1 while R2 is pending: R2 and the order are untouched
    assert oms.apply(RequestReject(5, "R1", "BUSINESS_REJECT: old (reason 0)")) is False
    assert oms.order("O").status == "PENDING_REPLACE" and oms.order("R2").status == "PENDING_NEW"
    assert oms.apply(report(oms, "O", "REPLACED", "REPLACED", as_id="R2", orig_cl_ord_id="O")) is True
    assert oms.order("R2").status == "NEW" and not oms.anomalies


def test_a_refused_replace_of_an_order_canceled_meanwhile_rejects_the_replacement_only():
    oms, _ = setup(RecordingRoute())
    _order_in(oms, "NEW")
    oms.replace("O", quantity=50, request_id="R1")
    oms.apply(report(oms, "O", "CANCELED", "CANCELED"))  # the venue canceled it (say, end of day)
    assert oms.apply(RequestReject(4, "R1", "BUSINESS_REJECT: no (reason 0)")) is True
    assert oms.order("O").status == "CANCELED" and oms.order("R1").status == "REJECTED"
    assert not oms.anomalies and not oms.open_orders()


def test_a_resent_reject_of_an_earlier_cancel_leaves_the_pending_one_alone():
    oms, _ = setup(RecordingRoute())
    _order_in(oms, "NEW")
    oms.cancel("O", request_id="C1")
    oms.apply(CancelReject(3, "C1", "O", "NEW", "CANCEL", "too late"))
    oms.cancel("O", request_id="C2")
    assert oms.apply(RequestReject(4, "C1", "BUSINESS_REJECT: old (reason 0)")) is False
    assert oms.order("O").status == "PENDING_CANCEL"
    assert oms.apply(RequestReject(5, "C2", "BUSINESS_REJECT: now (reason 0)")) is True
    assert oms.order("O").status == "NEW"


def test_a_refused_cancel_sent_before_a_restart_is_found_by_the_order_it_was_for():
    oms, rec = setup(RecordingRoute())
    _order_in(oms, "NEW")
    oms.cancel("O", request_id="C1")
    records = [(kind, row if kind == "order" else row.row()) for kind, row in rec.log]
    restarted = OrderManager.replay(records, RecordingRoute(), clock=iter(range(2000, 10**6)).__next__)
    assert restarted.order("O").status == "PENDING_CANCEL"
    assert restarted.apply(RequestReject(4, "C1", "SESSION_REJECT: x (reason 5)")) is False  # who is C1?
    assert restarted.apply(RequestReject(4, "C1", "SESSION_REJECT: x (reason 5)", orig_cl_ord_id="O")) is True
    assert restarted.order("O").status == "NEW"


def test_a_failed_cancel_send_puts_the_order_back_and_raises():
    route = RecordingRoute()
    oms, _ = setup(route)
    _order_in(oms, "NEW")
    route.fail = True
    with pytest.raises(OrderError, match="could not be sent"):
        oms.cancel("O")
    assert oms.order("O").status == "NEW"


def test_replace_refused_by_risk_changes_nothing():
    limits = RiskConfig(max_order_qty=100, max_order_notional=0, max_position=0, max_gross_exposure=0,
                        price_collar_pct=0, max_orders_per_s=0, daily_loss_limit=0)
    route = RecordingRoute()
    oms, rec = setup(route, risk=PreTradeRisk(limits))
    _order_in(oms, "NEW")
    n_log, n_sent = len(rec.log), len(route.log)
    with pytest.raises(RiskRejected, match="MAX_ORDER_QTY: 150 > 100"):
        oms.replace("O", quantity=150)
    assert oms.order("O").status == "NEW" and len(rec.log) == n_log and len(route.log) == n_sent


# -- idempotence and adoption -------------------------------------------------------------------------
def test_the_same_report_twice_is_applied_once():
    oms, rec = setup()
    _order_in(oms, "NEW")
    fill = report(oms, "O", "TRADE", "PARTIALLY_FILLED", 25, 8.0)
    n = len(rec.log)
    assert oms.apply(fill) is True and oms.apply(fill) is False
    assert oms.order("O").cum_qty == 25.0 and oms.position("AAA").quantity == 25.0
    assert len(rec.log) == n + 2  # one execution, one order row


def test_a_report_for_an_unknown_order_adopts_it_with_the_fills_the_venue_knows(caplog):
    oms, rec = setup()
    # the venue: 30 filled at an average of 19, the last 10 of them at 20, 70 open
    lost = ExecReport(9, "BBB", "E-lost", "LOST-1", "TRADE", "PARTIALLY_FILLED", SELL, 10, 20.0, 30, 70, 19.0,
                      order_id="V9")
    with caplog.at_level(logging.WARNING, logger="order_routing.oms"):
        assert oms.apply(lost) is True
    assert "adopting unknown order LOST-1" in caplog.text
    o = oms.order("LOST-1")
    assert (o.symbol, o.side, o.quantity, o.status, o.cum_qty, o.leaves_qty, o.avg_price, o.order_id) == (
        "BBB", SELL, 100.0, "PARTIALLY_FILLED", 30.0, 70.0, 19.0, "V9")
    # the 20 never seen: (30 * 19 - 10 * 20) / 20 = 18.5 each; short 30 at average 19
    pos = oms.position("BBB")
    assert (pos.quantity, pos.avg_price) == (-30.0, 19.0) and oms.working_qty("BBB") == -70.0
    assert [kind for kind, _ in rec.log] == ["execution", "order"]
    oms.apply(ExecReport(10, "BBB", "E-lost2", "LOST-1", "TRADE", "FILLED", SELL, 70, 20.0, 100, 0, 19.7))
    assert o.status == "FILLED" and pos.quantity == -100.0


def test_a_cancel_for_an_unknown_order_adopts_it_under_the_order_id_not_the_request_id():
    oms, _ = setup()
    gone = ExecReport(9, "AAA", "E-c", "CXL-7", "CANCELED", "CANCELED", BUY, cum_qty=0, leaves_qty=0,
                      orig_cl_ord_id="ORD-7")
    assert oms.apply(gone) and oms.order("ORD-7").status == "CANCELED" and "CXL-7" not in oms.orders


# -- recovery ------------------------------------------------------------------------------------------
def _drive(oms: OrderManager, data: st.DataObject, steps: int) -> None:
    """Random but legal-ish traffic: submits (some refused by risk), venue acks, fills (FIX status
    precedence while a request is pending), cancels and replaces with their answers and rejects,
    resent reports, late reports (anomalies) and reports for orders the OMS never knew."""
    requests: dict[str, str] = {}  # order -> its pending cancel/replace request id
    sent: list[ExecReport] = []
    draw = data.draw

    def pick(*states: str):
        live = sorted(cid for cid, o in oms.orders.items() if o.status in states
                      and not (o.replaces and o.status == "PENDING_NEW"))
        return oms.order(draw(st.sampled_from(live))) if live else None

    def venue(r: ExecReport | CancelReject) -> None:
        oms.apply(r)
        if isinstance(r, ExecReport):
            sent.append(r)

    for step in range(steps):
        action = draw(st.sampled_from(["submit", "submit", "ack", "fill", "fill", "cancel", "replace",
                                       "answer", "reject", "resend", "late", "adopt"]))
        if action == "submit":
            price = draw(st.sampled_from([None, 9.5, 10.0, 10.25]))
            oms.submit(intent(f"S{step}", draw(st.sampled_from([BUY, SELL])), draw(st.integers(1, 20)) * 10,
                              price, draw(st.sampled_from(["AAA", "BBB"]))))
        elif action == "ack" and (o := pick("PENDING_NEW")):
            venue(report(oms, o.cl_ord_id, "NEW", "NEW", order_id=f"V{step}"))
        elif action == "fill" and (o := pick("NEW", "PARTIALLY_FILLED", "PENDING_CANCEL", "PENDING_REPLACE")):
            qty = draw(st.integers(1, int(o.leaves_qty)))
            done = qty == o.leaves_qty
            status = "FILLED" if done else o.status if o.status.startswith("PENDING") else "PARTIALLY_FILLED"
            venue(report(oms, o.cl_ord_id, "TRADE", status, qty, draw(st.sampled_from([9.5, 10.0, 10.5])),
                         commission=draw(st.sampled_from([None, 0.25]))))
        elif action == "cancel" and (o := pick("NEW", "PARTIALLY_FILLED")):
            requests[o.cl_ord_id] = oms.cancel(o.cl_ord_id)
        elif action == "replace" and (o := pick("NEW", "PARTIALLY_FILLED")):
            more = draw(st.integers(1, 20)) * 10  # over 150 in all: refused by risk, nothing changes
            with contextlib.suppress(RiskRejected):
                requests[o.cl_ord_id] = oms.replace(o.cl_ord_id, quantity=o.cum_qty + more)
        elif action in ("answer", "reject") and (o := pick("PENDING_CANCEL", "PENDING_REPLACE")):
            rid, by_fills = requests[o.cl_ord_id], "PARTIALLY_FILLED" if o.cum_qty else "NEW"
            too_small = o.status == "PENDING_REPLACE" and oms.order(rid).quantity < o.cum_qty
            if action == "reject" or too_small:  # (the venue refuses a replace below the filled size)
                oms.apply(CancelReject(step, rid, o.cl_ord_id, by_fills, o.status[8:]))
            elif o.status == "PENDING_CANCEL":
                venue(report(oms, o.cl_ord_id, "CANCELED", "CANCELED", as_id=rid, orig_cl_ord_id=o.cl_ord_id))
            else:
                new = oms.order(rid)
                venue(ExecReport(step, o.symbol, f"E{next(_exec_ids)}", rid, "REPLACED", by_fills, o.side,
                                 cum_qty=o.cum_qty, leaves_qty=new.quantity - o.cum_qty,
                                 avg_price=o.avg_price, orig_cl_ord_id=o.cl_ord_id))
        elif action == "resend" and sent:
            oms.apply(draw(st.sampled_from(sent)))
        elif action == "late" and (o := pick("FILLED", "CANCELED", "REPLACED")):
            oms.apply(report(oms, o.cl_ord_id, "EXPIRED", "EXPIRED"))
        elif action == "adopt":
            venue(ExecReport(step, "BBB", f"E{next(_exec_ids)}", f"LOST{step}", "TRADE", "PARTIALLY_FILLED",
                             SELL, 10, 11.0, 30, 20, 10.5))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_replaying_the_journal_rebuilds_the_live_state(data: st.DataObject):
    limits = RiskConfig(max_order_qty=150, max_order_notional=0, max_position=0, max_gross_exposure=0,
                        price_collar_pct=0, max_orders_per_s=0, daily_loss_limit=0)
    oms, journal = setup(RecordingRoute(), risk=PreTradeRisk(limits), account="ACC")
    _drive(oms, data, data.draw(st.integers(1, 40)))
    # the journal as the lead's writes it: JSON lines of canonical rows (reports sometimes kept whole)
    as_objects = data.draw(st.booleans())
    records = [(kind, payload if kind == "order" or as_objects else payload.row())
               for kind, payload in journal.log]
    if not as_objects:
        records = json.loads(json.dumps(records))
    replayed = OrderManager.replay(records, account="ACC")
    assert replayed.state() == oms.state()
    assert replayed.pnl({"AAA": 10.0, "BBB": 10.0}) == oms.pnl({"AAA": 10.0, "BBB": 10.0})


def test_replay_sends_and_emits_nothing_and_the_restored_oms_carries_on():
    route = RecordingRoute()
    oms, journal = setup(route)
    oms.submit(intent("A1"))
    oms.apply(report(oms, "A1", "NEW", "NEW"))
    oms.apply(report(oms, "A1", "TRADE", "PARTIALLY_FILLED", 40, 10.0))
    rid = oms.replace("A1", quantity=120, request_id="A1b")
    again_route, again = RecordingRoute(), Recorder()
    restored = OrderManager.replay(journal.log, again_route)
    restored.subscribe(again)
    assert again_route.log == [] and again.log == [] and restored.state() == oms.state()
    assert restored.working_qty("AAA") == 60.0 and restored.order(rid).replaces == "A1"
    done = ExecReport(9, "AAA", "E-r", rid, "REPLACED", "PARTIALLY_FILLED", BUY, cum_qty=40, leaves_qty=80,
                      avg_price=10.0, orig_cl_ord_id="A1")
    assert restored.apply(done) and oms.apply(done) and restored.state() == oms.state()
    assert restored.apply(done) is False  # its exec ids came back too
    with pytest.raises(OrderError, match="already used"):
        restored.submit(intent("A1b"))
