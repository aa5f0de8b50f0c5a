"""order_routing/fix_route.py without a venue: a BusinessMessageReject (35=j) of one of our
messages becomes the OMS's RequestReject (the session-level Reject, 35=3, is tested against a
real exchange in tests/integration/order_routing/test_fix_session_reject.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from order_routing.events import RequestReject
from order_routing.fix_common import SOH
from order_routing.fix_route import FixRoute
from tradelake.config import FixSessionConfig

pytestmark = pytest.mark.unit


def fix(*pairs: tuple[str, str]) -> str:
    return "".join(f"{tag}={value}{SOH}" for tag, value in pairs)


def business_reject(*extra: tuple[str, str]) -> str:
    return fix(("8", "FIX.4.4"), ("9", "99"), ("35", "j"), ("34", "7"), ("49", "SIMEX"),
               ("52", "20261123-08:00:00.250"), ("56", "US"), *extra, ("58", "symbol halted"),
               ("380", "4"), ("10", "000"))


def route_with_store(tmp_path: Path, stored: dict[int, str]) -> tuple[FixRoute, list]:
    """A route (never connected) whose QuickFIX FileStore holds ``stored`` (seq -> message), in
    QuickFIX's format: ``.header`` lists 'seq,offset,size ' entries into ``.body``."""
    route = FixRoute(FixSessionConfig(sender_comp_id="US", target_comp_id="SIMEX", store_dir="fix"), tmp_path)
    route.store_dir.mkdir(parents=True)
    header, body = [], b""
    for seq, message in stored.items():
        data = message.encode()
        header.append(f"{seq},{len(body)},{len(data)} ")
        body += data
    prefix = route.store_dir / "FIX.4.4-US-SIMEX"
    Path(f"{prefix}.header").write_text("".join(header))
    Path(f"{prefix}.body").write_bytes(body)
    reports: list = []
    route._on_report = reports.append
    return route, reports


def test_a_business_reject_of_our_order_found_in_the_store_by_its_sequence_number(tmp_path):
    order = fix(("8", "FIX.4.4"), ("35", "D"), ("34", "5"), ("11", "O-5"), ("55", "AAPL"), ("54", "1"))
    heartbeat = fix(("8", "FIX.4.4"), ("35", "0"), ("34", "6"))
    route, reports = route_with_store(tmp_path, {5: order, 6: heartbeat})
    route._on_app(business_reject(("45", "5"), ("372", "D")))
    assert reports == [RequestReject(1_795_420_800_250_000_000, "O-5",  # 2026-11-23 08:00:00.250 UTC
                                     "BUSINESS_REJECT: symbol halted (reason 4)", "SIMEX")]
    route._on_app(business_reject(("45", "6"), ("372", "0")))  # not an order of ours: logged only
    assert len(reports) == 1


def test_a_business_reject_of_a_message_no_longer_stored_is_matched_by_its_reference_id(tmp_path):
    route, reports = route_with_store(tmp_path, {})
    route._on_app(business_reject(("45", "9"), ("372", "F"), ("379", "C-9")))
    assert [(r.cl_ord_id, r.text) for r in reports] == [("C-9", "BUSINESS_REJECT: symbol halted (reason 4)")]
    route._on_app(business_reject(("45", "9"), ("372", "F")))  # nothing names the request: logged only
    assert len(reports) == 1


def test_a_business_reject_of_our_cancel_names_the_order_it_was_for(tmp_path):
    cancel = fix(("8", "FIX.4.4"), ("35", "F"), ("34", "8"), ("41", "O-5"), ("11", "C-8"), ("55", "AAPL"))
    route, reports = route_with_store(tmp_path, {8: cancel})
    route._on_app(business_reject(("45", "8"), ("372", "F")))
    assert [(r.cl_ord_id, r.orig_cl_ord_id) for r in reports] == [("C-8", "O-5")]
