"""FIX end to end: our FixRoute (QuickFIX initiator) against the simulated exchange, a real
``tradelake exchange`` process (QuickFIX acceptor) on a free loopback port. No service stack.

One exchange process serves the whole module (start-up is most of the cost); each test works on
its own symbol so the shared books do not interfere. Listed: AAPL (mark 100), MSFT (400),
IBM (150) - the market maker quotes 1000 at mark -/+ 2 bps - and AMD, XOM without a mark.
Sessions: TRADELAKE (ours), CONTRA (the other side of trades), RESTART (the restart test),
INTRUDER (logon auth). Every route logs on with username/password, which the exchange requires.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from intelligence.domain import BUY, LIMIT, SELL, OrderIntent
from order_routing.events import CancelReject, CancelRequest, ExecReport, ReplaceRequest
from order_routing.exchange.acceptor import port_in_use
from order_routing.fix_route import FixRoute, FixRouteError, LogonRefused
from tradelake.config import PROJECT_ROOT, FixSessionConfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

USER, PASSWORD = "tl-test", "s3cret"
CLIENTS = "TRADELAKE,CONTRA,RESTART,INTRUDER"
Report = ExecReport | CancelReject


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: SIGTERM it when pytest dies, so a crashed run leaves no exchange behind."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclasses.dataclass
class Exchange:
    port: int
    var_dir: Path
    proc: subprocess.Popen


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    var_dir = tmp_path_factory.mktemp("fixvar")
    port = free_port()
    env = dict(os.environ, TRADELAKE_STACK__VAR_DIR=str(var_dir), TRADELAKE_ROUTING__EXCHANGE__USERNAME=USER,
               TRADELAKE_ROUTING__EXCHANGE__PASSWORD=PASSWORD)
    cmd = [sys.executable, "-m", "tradelake.cli", "exchange", "--profile", "local", "--port", str(port),
           "--symbols", "AAPL,MSFT,IBM,AMD,XOM", "--clients", CLIENTS, "--no-kafka-marks",
           "--mark", "AAPL=100", "--mark", "MSFT=400", "--mark", "IBM=150", "--status-interval", "0"]
    log = (var_dir / "exchange.stderr").open("w")
    proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
                            preexec_fn=_die_with_parent)
    deadline = time.monotonic() + 30
    while not port_in_use(port):
        assert proc.poll() is None, (var_dir / "exchange.stderr").read_text()
        assert time.monotonic() < deadline, "the exchange did not listen within 30 s"
        time.sleep(0.1)
    yield Exchange(port, var_dir, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    log.close()
    assert proc.returncode == 0, (var_dir / "exchange.stderr").read_text()
    # QuickFIX stores and logs the Logon; the password must not stay there (nor "wrong")
    leaks = [p for p in var_dir.rglob("FIX.4.4-*") if p.is_file()
             and (PASSWORD.encode() in p.read_bytes() or b"554=wrong" in p.read_bytes())]
    assert leaks == []
    summary = json.loads(out.strip().splitlines()[-1])  # the summary of a clean stop
    assert {"orders", "fills", "logons_refused"} <= set(summary)


class Reports:
    """The reports a route delivered: every raw delivery in order, and the set by ExecID."""

    def __init__(self, apply: Callable[[Report], object] | None = None) -> None:
        self.raw: list[Report] = []
        self.by_exec_id: dict[str, ExecReport] = {}
        self.apply = apply
        self._cond = threading.Condition()

    def __call__(self, report: Report) -> None:
        if self.apply is not None:
            self.apply(report)
        with self._cond:
            self.raw.append(report)
            if isinstance(report, ExecReport):
                self.by_exec_id.setdefault(report.exec_id, report)
            self._cond.notify_all()

    def of(self, cl_ord_id: str, kind: str | None = None) -> list[Report]:
        return [r for r in list(self.raw) if r.cl_ord_id == cl_ord_id
                and (kind is None or (r.exec_type if isinstance(r, ExecReport) else "CANCEL_REJECT") == kind)]

    def wait(self, cl_ord_id: str, kind: str, count: int = 1, timeout: float = 10.0) -> list[Report]:
        """Wait for ``count`` reports of ``kind`` (an ExecType name or CANCEL_REJECT) on an order."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.of(cl_ord_id, kind)) >= count, timeout)
        assert ok, f"no {count} x {kind} for {cl_ord_id} within {timeout}s; got {self.raw}"
        return self.of(cl_ord_id, kind)


def session(exchange: Exchange, sender: str, password: str = PASSWORD) -> FixSessionConfig:
    return FixSessionConfig(host="127.0.0.1", port=exchange.port, sender_comp_id=sender,
                            target_comp_id="SIMEX", heartbeat_s=30, username=USER, password=password,
                            store_dir=f"fix/{sender}")


def connect(exchange: Exchange, sender: str, reports: Reports) -> FixRoute:
    route = FixRoute(session(exchange, sender), exchange.var_dir / "client", account="ACC1")
    route.connect(reports, timeout_s=10)
    return route


@pytest.fixture(scope="module")
def ours(exchange: Exchange) -> Iterator[tuple[FixRoute, Reports]]:
    reports = Reports()
    route = connect(exchange, "TRADELAKE", reports)
    yield route, reports
    route.close()
    assert route.counts["bad_reports"] == 0 and route.counts["reports"] == len(reports.raw)


@pytest.fixture(scope="module")
def contra(exchange: Exchange) -> Iterator[tuple[FixRoute, Reports]]:
    reports = Reports()
    route = connect(exchange, "CONTRA", reports)
    yield route, reports
    route.close()


def new(cl: str, symbol: str, side: str, qty: float, price: float | None = None,
        tif: str = "GTC") -> OrderIntent:
    if price is None:
        return OrderIntent(time.time_ns(), symbol, cl, side, qty, time_in_force=tif)
    return OrderIntent(time.time_ns(), symbol, cl, side, qty, LIMIT, price, tif)


def test_market_order_fills_against_the_market_maker(ours) -> None:
    route, reports = ours
    route.send_new(new("m1", "AAPL", BUY, 10))
    ack = reports.wait("m1", "NEW")[0]
    fill = reports.wait("m1", "TRADE")[0]
    assert (ack.order_status, ack.leaves_qty, ack.venue) == ("NEW", 10, "SIMEX")
    # mark 100, 2 bps: the maker's ask is 100.02
    assert (fill.order_status, fill.last_qty, fill.last_price, fill.cum_qty, fill.leaves_qty,
            fill.avg_price) == ("FILLED", 10, 100.02, 10, 0, 100.02)
    assert fill.order_id == ack.order_id and fill.exec_id != ack.exec_id
    assert abs(fill.ts - time.time_ns()) < 60e9  # TransactTime -> UTC ns


def test_limit_crossing_a_smaller_resting_order_fills_partially(ours, contra) -> None:
    route, reports = ours
    contra[0].send_new(new("c-p1", "MSFT", SELL, 40, 400.05))  # inside the maker's 399.92/400.08
    contra[1].wait("c-p1", "NEW")
    route.send_new(new("p1", "MSFT", BUY, 100, 400.05))
    fill = reports.wait("p1", "TRADE")[0]
    assert (fill.order_status, fill.last_qty, fill.last_price, fill.cum_qty, fill.leaves_qty) == \
        ("PARTIALLY_FILLED", 40, 400.05, 40, 60)
    other = contra[1].wait("c-p1", "TRADE")[0]
    assert (other.order_status, other.last_qty, other.side) == ("FILLED", 40, SELL)
    route.send_cancel(CancelRequest("p1-x", "p1", "MSFT", BUY, 100))  # the rest rested: cancel it
    done = reports.wait("p1-x", "CANCELED")[0]
    assert (done.orig_cl_ord_id, done.cum_qty, done.leaves_qty, done.avg_price) == ("p1", 40, 0, 400.05)


def test_cancel_replace_and_their_rejects(ours) -> None:
    route, reports = ours
    route.send_new(new("r1", "IBM", BUY, 100, 149.00))
    reports.wait("r1", "NEW")
    route.send_replace(ReplaceRequest("r1-a", "r1", "IBM", BUY, 50, LIMIT, 149.50))
    rep = reports.wait("r1-a", "REPLACED")[0]
    assert (rep.orig_cl_ord_id, rep.order_status, rep.leaves_qty) == ("r1", "NEW", 50)
    route.send_cancel(CancelRequest("r1-b", "r1-a", "IBM", BUY, 50))
    assert reports.wait("r1-b", "CANCELED")[0].orig_cl_ord_id == "r1-a"
    route.send_cancel(CancelRequest("r1-c", "r1-a", "IBM", BUY, 50))  # again: too late
    late = reports.wait("r1-c", "CANCEL_REJECT")[0]
    assert (late.response_to, late.order_status, late.orig_cl_ord_id) == ("CANCEL", "CANCELED", "r1-a")
    assert "too late" in late.text
    route.send_replace(ReplaceRequest("r1-d", "nope", "IBM", BUY, 5, LIMIT, 149.0))
    unknown = reports.wait("r1-d", "CANCEL_REJECT")[0]
    assert unknown.response_to == "REPLACE" and "unknown order" in unknown.text
    # a replace that makes the order marketable trades right after the REPLACED report
    route.send_new(new("r2", "IBM", BUY, 10, 149.00))
    reports.wait("r2", "NEW")
    route.send_replace(ReplaceRequest("r2-a", "r2", "IBM", BUY, 10, LIMIT, 150.03))  # the maker's ask
    assert reports.wait("r2-a", "REPLACED")[0].order_status == "NEW"
    fill = reports.wait("r2-a", "TRADE")[0]
    assert (fill.last_price, fill.order_status) == (150.03, "FILLED")


def test_rejects(ours) -> None:
    route, reports = ours
    cases = {"x1": (new("x1", "ZZZ", BUY, 1, 10.0), "unknown symbol"),
             "x2": (new("x2", "AAPL", BUY, 1, 100.005), "not a multiple of the tick"),
             "x3": (new("x3", "AAPL", BUY, 1, 150.0), "from the mark"),
             "x4": (new("x4", "XOM", BUY, 1), "no liquidity")}
    for intent, _ in cases.values():
        route.send_new(intent)
    for cl, (_, why) in cases.items():
        rej = reports.wait(cl, "REJECTED")[0]
        assert rej.order_status == "REJECTED" and why in rej.text, rej
    # what our own types never send, straight onto the wire: the exchange refuses it too
    route._send("D", "11=x5\x0155=AAPL\x0154=1\x0160=20260105-14:30:00.000\x0138=-5\x0140=1\x01")
    route._send("D", "11=x6\x0155=AAPL\x0154=1\x0160=20260105-14:30:00.000\x0138=5\x0140=2\x0144=0\x01")
    assert "quantity" in reports.wait("x5", "REJECTED")[0].text
    assert "positive" in reports.wait("x6", "REJECTED")[0].text
    # a duplicate ClOrdID is refused; the live order keeps going
    route.send_new(new("d1", "AAPL", BUY, 5, 95.0))
    reports.wait("d1", "NEW")
    route.send_new(new("d1", "AAPL", BUY, 7, 95.0))
    assert "duplicate ClOrdID" in reports.wait("d1", "REJECTED")[0].text
    route.request_status("d1", "AAPL", BUY)
    assert reports.wait("d1", "ORDER_STATUS")[0].order_status == "NEW"


def test_order_status_request(ours) -> None:
    route, reports = ours
    route.send_new(new("s1", "AAPL", SELL, 20, 104.0))
    ack = reports.wait("s1", "NEW")[0]
    route.request_status("s1", "AAPL", SELL)
    status = reports.wait("s1", "ORDER_STATUS")[0]
    assert (status.order_status, status.leaves_qty, status.cum_qty, status.order_id) == \
        ("NEW", 20, 0, ack.order_id)
    route.request_status("never-sent", "AAPL", SELL)
    unknown = reports.wait("never-sent", "ORDER_STATUS")[0]
    assert unknown.order_status == "REJECTED" and unknown.text == "unknown order"


def test_logon_needs_the_password(exchange: Exchange) -> None:
    reports = Reports()
    bad = FixRoute(session(exchange, "INTRUDER", password="wrong"), exchange.var_dir / "client")
    with pytest.raises(LogonRefused, match="bad username or password"):
        bad.connect(reports, timeout_s=10)
    assert not bad.logged_on
    good = FixRoute(session(exchange, "INTRUDER"), exchange.var_dir / "client")  # same store
    good.connect(reports, timeout_s=10)
    assert good.logged_on
    good.close()


def test_connect_times_out_without_a_venue(tmp_path: Path) -> None:
    cfg = FixSessionConfig(host="127.0.0.1", port=free_port(), sender_comp_id="NOBODY",
                           store_dir="fix/nobody")
    route = FixRoute(cfg, tmp_path)
    with pytest.raises(FixRouteError, match="no logon .* within 1s"):
        route.connect(Reports(), timeout_s=1)
    with pytest.raises(FixRouteError, match="not logged on"):
        route.send_new(new("n1", "AAPL", BUY, 1))


def test_one_route_per_session_in_a_process(exchange: Exchange, ours) -> None:
    twin = FixRoute(session(exchange, "TRADELAKE"), exchange.var_dir / "twin")
    with pytest.raises(FixRouteError, match="already open in this process"):
        twin.connect(Reports(), timeout_s=1)
    assert ours[0].logged_on


def _rewind_incoming(store: Path, sender: str, target_seq: int) -> None:
    """Simulate a crash that lost the last increments of the incoming sequence number."""
    path = store / f"FIX.4.4-{sender}-SIMEX.seqnums"
    out_seq = path.read_text().split(":")[0].strip()
    path.write_text(f"{out_seq} : {target_seq:010d}")


def test_initiator_restart_with_resend_counts_no_fill_twice(exchange: Exchange, contra) -> None:
    from order_routing.oms import OrderManager

    oms = OrderManager(account="ACC1", venue="SIMEX")
    reports = Reports(apply=oms.apply)
    first = connect(exchange, "RESTART", reports)
    oms.route = first
    for cl, price in (("rs1", 99.0), ("rs2", 98.0), ("rs3", 97.0)):
        oms.submit(new(cl, "AMD", BUY, 10, price))  # AMD has no mark: no market maker in the way
        reports.wait(cl, "NEW")
    first.close()

    contra[0].send_new(new("c-rs", "AMD", SELL, 30, 97.0))  # fills all three while we are away
    assert [r.last_price for r in contra[1].wait("c-rs", "TRADE", 3)] == [99.0, 98.0, 97.0]
    assert all(not reports.of(cl, "TRADE") for cl in ("rs1", "rs2", "rs3"))

    second = connect(exchange, "RESTART", reports)  # the venue resends the stored reports
    oms.route = second
    for cl in ("rs1", "rs2", "rs3"):
        reports.wait(cl, "TRADE")
    assert second.counts["resent_reports"] >= 3
    second.close()
    fills = {r.exec_id: r for r in reports.by_exec_id.values() if r.exec_type == "TRADE"}
    assert len(fills) == 3 and oms.position("AMD").quantity == 30

    # a crash lost the record of what we received: the venue resends everything again
    _rewind_incoming(first.store_dir, "RESTART", 1)
    third = connect(exchange, "RESTART", reports)
    for cl in ("rs1", "rs2", "rs3"):
        reports.wait(cl, "TRADE", 2)
        reports.wait(cl, "NEW", 2)
    third.close()
    raw_fills = [r for r in reports.raw if isinstance(r, ExecReport) and r.exec_type == "TRADE"]
    assert len(raw_fills) == 6  # every fill delivered twice ...
    assert {r.exec_id for r in raw_fills} == set(fills)  # ... the same three ExecIDs ...
    assert oms.position("AMD").quantity == 30  # ... and booked once
    assert all(oms.order(cl).status == "FILLED" and oms.order(cl).cum_qty == 10
               for cl in ("rs1", "rs2", "rs3"))
    assert oms.anomalies == []


def test_cli_exits_3_when_the_port_is_taken(exchange: Exchange) -> None:
    env = dict(os.environ, TRADELAKE_STACK__VAR_DIR=str(exchange.var_dir / "second"))
    done = subprocess.run([sys.executable, "-m", "tradelake.cli", "exchange", "--port", str(exchange.port),
                           "--no-kafka-marks", "--symbols", "AAPL"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert f"port {exchange.port} is already in use" in done.stderr
