"""The IB route's mapping tables: IB order states and error codes to our (FIX OrdStatus) vocabulary,
and our orders to IB orders. No socket: the wire is covered by tests/integration/order_routing."""

from __future__ import annotations

import pytest
from ib_async import OrderStatus

from intelligence.domain import BUY, SELL
from ods.store import ORDER_TRANSITIONS
from order_routing.events import FINAL_STATES
from order_routing.ib_route import IB_STATUS, SIDE_BY_ACTION, SIDE_BY_EXEC, IbRoute, is_info, ord_status

IB_INTERNAL = {"ApiUpdate", "ValidationError"}  # ib_async's own pseudo states, never sent by TWS


def test_status_table_is_exactly_this():
    assert IB_STATUS == {
        "PendingSubmit": "PENDING_NEW", "ApiPending": "PENDING_NEW",
        "PreSubmitted": "NEW", "Submitted": "NEW",
        "PendingCancel": "PENDING_CANCEL",
        "Cancelled": "CANCELED", "ApiCancelled": "CANCELED",
        "Filled": "FILLED",
        "Inactive": "REJECTED",
    }
    assert set(IB_STATUS.values()) <= set(ORDER_TRANSITIONS)


def test_every_state_tws_sends_is_mapped_and_done_means_final():
    states = {v for k, v in vars(OrderStatus).items() if k[0].isupper() and isinstance(v, str)}
    assert states - IB_INTERNAL == set(IB_STATUS)  # PendingCancel is in neither of ib_async's sets
    for state in OrderStatus.DoneStates:
        assert ord_status(state, 0) in FINAL_STATES and ord_status(state, 10) in FINAL_STATES, state
    for state in OrderStatus.ActiveStates - IB_INTERNAL:
        assert ord_status(state, 0) not in FINAL_STATES, state


@pytest.mark.parametrize(("ib_status", "filled", "expected"), [
    ("PendingSubmit", 0, "PENDING_NEW"),
    ("ApiPending", 0, "PENDING_NEW"),
    ("PreSubmitted", 0, "NEW"),
    ("Submitted", 0, "NEW"),
    ("Submitted", 60, "PARTIALLY_FILLED"),
    ("PreSubmitted", 60, "PARTIALLY_FILLED"),
    ("PendingCancel", 60, "PENDING_CANCEL"),
    ("Cancelled", 0, "CANCELED"),
    ("Cancelled", 60, "CANCELED"),
    ("ApiCancelled", 0, "CANCELED"),
    ("Filled", 100, "FILLED"),
    ("Inactive", 0, "REJECTED"),
    ("Inactive", 60, "CANCELED"),  # a partly filled order cannot be rejected any more
    ("ValidationError", 0, None),  # ib_async's own: not a state of the order at IB
    ("Bogus", 0, None),
])
def test_ord_status(ib_status, filled, expected):
    assert ord_status(ib_status, filled) == expected


@pytest.mark.parametrize(("code", "info"), [
    (202, True), (399, True), (404, True), (2104, True), (2158, True), (10167, True), (10349, True),
    (201, False), (200, False), (110, False), (161, False), (10147, False), (10148, False), (1100, False),
])
def test_error_codes_that_are_notices(code, info):
    assert is_info(code) is info


def test_sides():
    assert SIDE_BY_ACTION == {"BUY": BUY, "SELL": SELL, "SSHORT": SELL}
    assert SIDE_BY_EXEC == {"BOT": BUY, "SLD": SELL}


def test_orders_sent_to_ib():
    route = IbRoute("127.0.0.1", 4002, 18, "DU123456")
    market = route._ib_order(BUY, 100.0, "MKT", None, "DAY", "C1")
    assert (market.action, market.totalQuantity, market.orderType, market.tif, market.orderRef,
            market.account, market.orderId) == ("BUY", 100.0, "MKT", "DAY", "C1", "DU123456", 0)
    modify = route._ib_order(SELL, 50.0, "LMT", 410.5, "GTC", "C2", orderId=7)
    assert (modify.action, modify.totalQuantity, modify.orderType, modify.lmtPrice, modify.orderRef,
            modify.orderId) == ("SELL", 50.0, "LMT", 410.5, "C2", 7)
    with pytest.raises(ValueError, match="MKT and LMT only"):
        route._ib_order(BUY, 1.0, "STP", None, "GTC", "C3")


def test_from_config_uses_the_routing_section():
    from tradelake.config import load_config

    cfg = load_config("local")
    route = IbRoute.from_config(cfg)
    assert (route.host, route.port, route.client_id, route.account, route.venue) == (
        cfg.ib.host, cfg.ib.port, cfg.routing.ib_client_id, cfg.routing.ib_account, "IB")
    assert not route.connected and route.ib_order_id("C1") is None
