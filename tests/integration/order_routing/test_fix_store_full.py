"""QuickFIX's own store on a full disk: an order it cannot store is rejected, never left pending
as if sent, and the route recovers by itself once there is room. A real ``tradelake exchange``
process and the harness ``route_store_full.py`` (the OMS and our FixRoute in a process of their
own, under a file size limit: RLIMIT_FSIZE, a real kernel refusal). No service stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.exchange_process import die_with_parent, fix_fields, start_exchange

from intelligence.domain import BUY, MARKET, OrderIntent
from order_routing.fix_route import FixRoute
from order_routing.oms import OrderManager
from tradelake.config import PROJECT_ROOT, FixSessionConfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

HARNESS = Path(__file__).with_name("route_store_full.py")
SENDER = "STOREFULL"


def test_an_order_quickfix_cannot_store_is_rejected_and_the_route_recovers(tmp_path: Path) -> None:
    (tmp_path / "exchange").mkdir()
    exchange = start_exchange(tmp_path / "exchange", symbols={"AAPL": 100.0}, clients=[SENDER])
    try:
        run = subprocess.run([sys.executable, str(HARNESS), "--port", str(exchange.port), "--var-dir",
                              str(tmp_path / "route")], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=150, preexec_fn=die_with_parent,
                             env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "tests")})
        assert run.returncode == 0, run.stderr[-3000:]
        out = json.loads(run.stdout.strip().splitlines()[-1])
        summary = exchange.stop()
    finally:
        if exchange.proc.poll() is None:
            exchange.proc.kill()
    # with room: sent and filled
    assert out["m1"] == "FILLED"
    # the store refuses the next message: the order is rejected with the reason, not left
    # PENDING_NEW as if sent, and the connection is dropped (QuickFIX's store is left in error)
    assert out["m2"] == "REJECTED"
    assert out["m2_text"].startswith("SEND_FAILED: QuickFIX did not send the message"), out["m2_text"]
    assert out["logged_on_after_m2"] is False
    assert "could not be sent: SEND_FAILED: FIX session" in out["cancel_during"], out["cancel_during"]
    assert out["l_after_cancel_during"] == "NEW"
    assert out["counts"]["store_refused"] == 1
    # still full: no logon, and an order is refused as not logged on, not queued for later
    assert out["logged_on_while_full"] is False
    assert out["m3"] == "REJECTED" and "is not logged on" in out["m3_text"], out["m3_text"]
    # room again: the route logs on by itself (its store reopened at logon) and sends
    assert out["m4"] == "FILLED"
    assert out["cancel_after"] is None
    assert out["statuses"] == {"L": "CANCELED", "M1": "FILLED", "M2": "REJECTED", "M3": "REJECTED",
                               "M4": "FILLED"}
    # what the exchange received from us, from its own FIX log: nothing refused ever arrived
    log = exchange.message_log(SENDER).read_text().splitlines()
    received = [f["11"] for f in map(fix_fields, log) if f.get("49") == SENDER and f.get("35") in ("D", "F")]
    assert received == ["L", "M1", "M4", "L-c2"]
    assert summary["reports_lost"] == 0


def test_a_report_the_exchange_cannot_store_is_logged_and_counted(tmp_path: Path) -> None:
    # the exchange's QuickFIX may not grow a file past 6 kB: its message log fills first (QuickFIX
    # says nothing), then its store refuses a report, which is then neither sent nor kept for resend
    # (its own stderr, a few hundred bytes, stays under the limit)
    (tmp_path / "exchange").mkdir()
    exchange = start_exchange(tmp_path / "exchange", symbols={"AAPL": 100.0}, clients=[SENDER],
                              max_file_bytes=6000)
    route = FixRoute(FixSessionConfig(port=exchange.port, sender_comp_id=SENDER, store_dir="fix/route"),
                     tmp_path / "route")
    oms = OrderManager(route, account=SENDER)
    route.connect(oms.apply, 30)
    try:
        for i in range(100):  # one at a time, until the venue's answer does not come
            cid = f"M{i}"
            oms.submit(OrderIntent(time.time_ns(), "AAPL", cid, BUY, 1.0, MARKET))
            deadline = time.monotonic() + 3
            while oms.order(cid).status != "FILLED" and time.monotonic() < deadline:
                time.sleep(0.01)
            if oms.order(cid).status != "FILLED":
                break
        # the exchange logs the client out (its store is reopened at the next logon)
        deadline = time.monotonic() + 15
        while route.logged_on and time.monotonic() < deadline:
            time.sleep(0.05)
        dropped = not route.logged_on
    finally:
        route.close()
        summary = exchange.stop()
    assert 0 < i < 99, "the exchange's store never refused a report"
    assert summary["reports_lost"] >= 1 and summary["fills"] == i + 1
    stderr = (tmp_path / "exchange" / "exchange.stderr").read_text()
    assert "QuickFIX's store cannot be written (disk full?): report not sent" in stderr
    assert f"|11={cid}|" in stderr  # the lost report is in the log, whole
    assert dropped and f"session {SENDER} logged out" in stderr
