"""FIX routing benchmark: our OMS + risk + journal + FIX route vs a bare QuickFIX loop, same run,
same simulated exchange.

    .venv/bin/python benchmarks/fix_routing.py [--orders 1000] [--burst 2000] [--rounds 5] [--ship]
                                               [--stages] [--layers] [--pm-qos]

One ``tradelake exchange`` process (QuickFIX acceptor + order books) on a free loopback port with
a temporary var dir, ``--no-kafka-marks`` and marks seeded with ``--mark``; two client sessions:
BARE and OURS, each on a symbol of its own (both marked 100, so each market order of 1 fills
against the exchange's market maker: an ExecutionReport NEW, then a TRADE).

- ours: ``Router(cfg, FixRoute, ship=False, watch_kill_switch=False)``: journal replay, the OMS,
  pre-trade risk with the default limits (the throttle is raised by config override only when a
  burst would exceed its one-second bucket; the output says so), the write-ahead journal (one
  write() per record) and our FixRoute (message strings, report parsing into ``ExecReport``s).
  Latency = ``router.submit(intent)`` -> the fill report applied in the OMS (an OMS listener,
  called after the journal wrote it). ``--ship`` also ships the journal to Kafka and the ODS
  (background threads; scratch topics and ODS schema, dropped afterwards; needs the stack).
- bare: a minimal ``quickfix.Application`` on a SocketInitiator with the same QuickFIX settings
  (FileStore, FileLog, data dictionary): the NewOrderSingle is built as one FIX string and sent
  (the fastest way from Python), and ``fromApp`` takes the time of the ExecutionReport with
  ExecType F (TRADE). No parsing into objects, no state, no journal, no risk.

Latency: ``--orders`` market orders one at a time (send, wait for its fill, next), p50/p99.
Throughput: a burst of ``--burst`` orders sent as fast as possible; orders/s = burst / (last
fill - first send); also the CPU each burst cost per order, of this process (ours or bare: the
other one is idle then) and of the exchange process. Both sides are warmed up (``--warmup``
orders each), then ``--rounds`` rounds alternate which side goes first, so load drift hits both;
every figure is the median of the rounds. ``overhead_ratio`` = our p50 / the bare p50.

Micro-benchmark (``path_cpu_us_per_order``): the CPU per order of our path without the network
(submit; the NEW and the TRADE report through ``FixRoute._on_app``), a stub session, hot loop.

What that CPU costs in latency here (``bare_plus_our_cpu_p50_ms``, ``latency_per_cpu_us``): each
round also runs the bare loop, third (after ours and bare), with the micro-benchmark's CPU burnt
as busy Python at the same three points (before the send, in the NEW and the TRADE callbacks,
the TRADE's before its fill is stamped); ``latency_per_cpu_us`` = (its median p50 - the bare
median p50) / our path's CPU per order, a difference of medians: read it with the per-round
figures, since the bare p50 alone moves by ~0.1 ms between rounds. 1.0 means a microsecond of
our CPU costs a microsecond of latency; on two shared cores it costs more, since the exchange and
the FIX threads wait for it.

``--layers``: after the rounds, what each part of our path adds to the latency: more interleaved
latency rounds of bare, our FixRoute alone, + the OMS, + the journal, and ours (+ risk), each part
on a FIX session of its own to the same exchange; every side's median p50 and its ratio to bare.
A control runs with them: the bare client on our symbol, on a session of its own (so neither the
symbol's busier book nor the session favours bare).

``--stages``: after the rounds, one more latency loop per side with each order's stages stamped
(the route's ``_send`` and ``_on_app`` wrapped on the instance for that loop only): how long
QuickFIX's send takes, the venue's round trip, our handling of each report, and QuickFIX's own
reading of the TRADE after the NEW. Each traced order starts once the previous one's handling is
over, so the stages of one order hold none of another's work. ``--pm-qos`` holds
``/dev/cpu_dma_latency`` at 0 for the run (root), so idle vCPUs poll instead of halting: what a
latency-tuned host does, for comparison.

Prints progress, the figures, writes benchmarks/results/fix_routing.json and prints it last:
{"orders", "p50_ms", "p99_ms", "orders_per_s", "bare_p50_ms", "bare_orders_per_s", "overhead_ratio", ...}
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intelligence.domain import BUY, SELL, OrderIntent  # noqa: E402
from order_routing.exchange.acceptor import port_in_use  # noqa: E402
from order_routing.fix_common import (  # noqa: E402
    BEGIN_STRING,
    SOH,
    common_settings,
    load_quickfix,
    utc_timestamp,
    write_settings,
)
from tradelake.config import Config, load_config  # noqa: E402
from tradelake.stack.kafka import delete_topics  # noqa: E402

BARE_SYMBOL, OUR_SYMBOL, MARK = "BENCHA", "BENCHB", 100.0
VENUE = "SIMEX"
TIMEOUT_S = 30.0


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def proc_cpu_s(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process, all threads (/proc/<pid>/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spin(us: float) -> None:
    """Burn ``us`` microseconds of this thread's CPU (not wall time: a descheduled thread burns
    none), holding the GIL as Python work does."""
    end = time.thread_time_ns() + int(us * 1000)
    while time.thread_time_ns() < end:
        pass


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


# -- the exchange ---------------------------------------------------------------------------------
class ExchangeProcess:
    """``tradelake exchange`` on a free port, var dir ``var_dir``, marks seeded, no Kafka, no auth."""

    def __init__(self, var_dir: Path, clients: list[str], profile: str | None,
                 marks: dict[str, float] | None = None) -> None:
        marks = marks or {BARE_SYMBOL: MARK, OUR_SYMBOL: MARK}
        self.port, self.var_dir = free_port(), var_dir
        env = dict(os.environ, TRADELAKE_STACK__VAR_DIR=str(var_dir))
        env.pop("TRADELAKE_ROUTING__EXCHANGE__PASSWORD", None)
        env.pop("TRADELAKE_ROUTING__EXCHANGE__USERNAME", None)
        cmd = [sys.executable, "-m", "tradelake.cli", "exchange", "--port", str(self.port),
               "--symbols", ",".join(marks), "--clients", ",".join(clients), "--no-kafka-marks",
               *(arg for symbol, price in marks.items() for arg in ("--mark", f"{symbol}={price:g}")),
               "--status-interval", "0"]
        if profile:
            cmd[4:4] = ["--profile", profile]
        self.stderr = (var_dir / "exchange.stderr").open("w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 60
        while not port_in_use(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the exchange did not start: {(var_dir / 'exchange.stderr').read_text()}")
            time.sleep(0.1)

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.stderr.close()
        lines = (out or "").strip().splitlines()
        with contextlib.suppress(ValueError, IndexError):
            return json.loads(lines[-1])
        return {}


# -- the bare QuickFIX loop -----------------------------------------------------------------------
class BareClient:
    """A minimal QuickFIX initiator: NewOrderSingle strings out, fill times in."""

    def __init__(self, port: int, store: Path, sender: str, symbol: str = BARE_SYMBOL) -> None:
        fix = self.fix = load_quickfix()
        self.logged_on = threading.Event()
        self.session = None
        self.fill_ns: dict[str, int] = {}
        self.expect = 0  # fills to wait for (burst)
        self.done = threading.Event()
        self.one = threading.Event()
        self._head = f"8={BEGIN_STRING}{SOH}9=0{SOH}35=D{SOH}"
        self.symbol = symbol
        # (submit, NEW report, TRADE report) microseconds of busy CPU added at those points: the
        # "bare + our CPU" side, which prices our path's CPU in latency on this host
        self.spin_us = (0.0, 0.0, 0.0)
        self.stamps: list[tuple[str, int]] | None = None  # (event, perf ns) of the --stages run
        client = self

        class BareApplication(fix.Application):
            def onCreate(self, sid) -> None:  # noqa: N802 - QuickFIX's names
                pass

            def onLogon(self, sid) -> None:  # noqa: N802
                client.session = fix.Session.lookupSession(sid)
                client.logged_on.set()

            def onLogout(self, sid) -> None:  # noqa: N802
                client.logged_on.clear()

            def toAdmin(self, message, sid) -> None:  # noqa: N802
                pass

            def fromAdmin(self, message, sid) -> None:  # noqa: N802
                pass

            def toApp(self, message, sid) -> None:  # noqa: N802
                pass

            def fromApp(self, message, sid) -> None:  # noqa: N802
                try:
                    raw = message.toString()
                    trade = f"{SOH}150=F{SOH}" in raw
                    if client.stamps is not None:
                        client.stamps.append(("trade_in" if trade else "new_in", time.perf_counter_ns()))
                    if client.spin_us[2 if trade else 1]:
                        spin(client.spin_us[2 if trade else 1])
                    if trade:
                        now = time.perf_counter_ns()
                        i = raw.index(f"{SOH}11=") + 4
                        client.fill_ns[raw[i:raw.index(SOH, i)]] = now
                        client.one.set()
                        if len(client.fill_ns) >= client.expect:
                            client.done.set()
                except Exception as exc:  # an escaping exception ends the process (quickfix)
                    print(f"bare fromApp: {exc!r}", file=sys.stderr)

        self.app = BareApplication()
        defaults = common_settings(store, 30) | {"ConnectionType": "initiator", "ReconnectInterval": 2,
                                                 "ResetOnLogon": "N"}
        session = {"BeginString": BEGIN_STRING, "SenderCompID": sender, "TargetCompID": VENUE,
                   "SocketConnectHost": "127.0.0.1", "SocketConnectPort": port}
        settings = write_settings(store / "initiator.cfg", defaults, [session])
        self.initiator = fix.SocketInitiator(self.app, fix.FileStoreFactory(settings), settings,
                                             fix.FileLogFactory(settings))
        self.initiator.start()
        if not self.logged_on.wait(TIMEOUT_S):
            raise RuntimeError("bare client: no logon")

    def send(self, cl_ord_id: str, side: str) -> None:
        if self.spin_us[0]:
            spin(self.spin_us[0])
        self.session.send(self.fix.Message(
            f"{self._head}11={cl_ord_id}{SOH}55={self.symbol}{SOH}54={'1' if side == BUY else '2'}{SOH}"
            f"60={utc_timestamp()}{SOH}38=1{SOH}40=1{SOH}59=1{SOH}10=000{SOH}", False))
        if self.stamps is not None:
            self.stamps.append(("sent", time.perf_counter_ns()))

    def latency(self, ids: list[str], pause_s: float, first: int = 0) -> list[float]:
        out, perf = [], time.perf_counter_ns
        for i, cid in enumerate(ids, first):
            if pause_s:
                time.sleep(pause_s)
            self.one.clear()
            self.expect = 1 << 62
            start = self.last_start_ns = perf()
            self.send(cid, BUY if i % 2 == 0 else SELL)
            while cid not in self.fill_ns:
                if not self.one.wait(TIMEOUT_S):
                    raise RuntimeError(f"bare: no fill for {cid}")
                self.one.clear()
            out.append((self.fill_ns[cid] - start) / 1e6)
        return out

    def fill_ns_of(self, cid: str) -> int:
        return self.fill_ns[cid]

    def burst(self, ids: list[str]) -> float:
        self.fill_ns.clear()
        self.done.clear()
        self.expect = len(ids)
        start = time.perf_counter_ns()
        for i, cid in enumerate(ids):
            self.send(cid, BUY if i % 2 == 0 else SELL)
        if not self.done.wait(TIMEOUT_S * 4):
            raise RuntimeError(f"bare burst: {len(self.fill_ns)}/{len(ids)} fills")
        return len(ids) / ((max(self.fill_ns[c] for c in ids) - start) / 1e9)

    def close(self) -> None:
        self.initiator.stop()
        del self.initiator


# -- our path -------------------------------------------------------------------------------------
class FillWatch:
    """An OMS listener (or a route's report handler): the time each fill report was applied
    (after the journal wrote it, when there is one), and the text of each order rejected."""

    def __init__(self) -> None:
        self.fill_ns: dict[str, int] = {}
        self.rejected: dict[str, str | None] = {}
        self.expect = 1 << 62
        self.one = threading.Event()
        self.done = threading.Event()

    def on_order(self, row: dict[str, Any]) -> None:
        pass

    def on_execution(self, report: Any) -> None:
        if report.exec_type == "TRADE":
            self.fill_ns[report.cl_ord_id] = time.perf_counter_ns()
            self.one.set()
            if len(self.fill_ns) >= self.expect:
                self.done.set()
        elif report.exec_type == "REJECTED":  # by risk, a failed send or the venue: no fill will come
            self.rejected[report.cl_ord_id] = report.text
            self.one.set()


def route_config(cfg: Config, port: int, sender: str) -> Any:
    """The profile's FIX session settings pointed at the benchmark's exchange as ``sender``."""
    return dataclasses.replace(cfg.routing.fix, host="127.0.0.1", port=port, sender_comp_id=sender,
                               target_comp_id=VENUE, username="", password=None, store_dir=f"fix/{sender}")


class OurPath:
    """A latency loop over (part of) our path: ``submit(intent)`` sends an order, ``watch`` sees
    its fill. The start is stamped right before ``submit``, the end by ``watch``."""

    name = "ours"
    submit: Any
    watch: FillWatch

    def intents(self, ids: list[str], first: int = 0) -> list[OrderIntent]:
        now = time.time_ns()
        return [OrderIntent(now, OUR_SYMBOL, cid, BUY if i % 2 == 0 else SELL, 1.0, strategy_id="bench")
                for i, cid in enumerate(ids, first)]

    def latency(self, ids: list[str], pause_s: float, first: int = 0) -> list[float]:
        watch, submit, perf = self.watch, self.submit, time.perf_counter_ns
        watch.expect = 1 << 62
        out = []
        for intent in self.intents(ids, first):
            cid = intent.cl_ord_id
            if pause_s:
                time.sleep(pause_s)
            watch.one.clear()
            start = self.last_start_ns = perf()
            submit(intent)
            while cid not in watch.fill_ns:
                if cid in watch.rejected:
                    raise RuntimeError(f"{self.name}: {cid} rejected: {watch.rejected[cid]}")
                if not watch.one.wait(TIMEOUT_S):
                    raise RuntimeError(f"{self.name}: no fill for {cid}")
                watch.one.clear()
            out.append((watch.fill_ns[cid] - start) / 1e6)
        return out


class Ours(OurPath):
    """The whole path: the Router (journal replay, OMS, risk, write-ahead journal, FixRoute)."""

    def __init__(self, cfg: Config, port: int, var_dir: Path, sender: str, ship: bool) -> None:
        from order_routing.fix_route import FixRoute
        from order_routing.router import Router

        route = FixRoute(route_config(cfg, port, sender), var_dir, account=cfg.routing.account, venue=VENUE)
        self.router = Router(cfg, route, ship=ship, watch_kill_switch=False, directory=var_dir / "oms")
        self.watch = FillWatch()
        self._stamps: list[tuple[str, int]] | None = None
        self.router.oms.subscribe(self.watch)
        self.router.mark(OUR_SYMBOL, MARK)  # what risk values a market order at
        self.router.connect(TIMEOUT_S)
        self.submit = self.router.submit

    def fill_ns_of(self, cid: str) -> int:
        return self.watch.fill_ns[cid]

    @property
    def stamps(self) -> list[tuple[str, int]] | None:
        return self._stamps

    @stamps.setter
    def stamps(self, value: list[tuple[str, int]] | None) -> None:
        """Stamping on: the route's ``_send`` and ``_on_app`` wrapped on the instance (the
        --stages run only; the measured rounds run the route as it is)."""
        route = self.router.route
        self._stamps = value
        if value is None:
            vars(route).pop("_send", None)
            vars(route).pop("_on_app", None)
            return
        send, on_app, perf = type(route)._send, type(route)._on_app, time.perf_counter_ns

        def staged_send(msg_type: str, body: str) -> None:
            value.append(("send_in", perf()))
            send(route, msg_type, body)
            value.append(("sent", perf()))

        def staged_on_app(raw: str) -> None:
            kind = "trade" if f"{SOH}150=F{SOH}" in raw else "new"
            value.append((f"{kind}_in", perf()))
            on_app(route, raw)
            value.append((f"{kind}_out", perf()))

        route._send, route._on_app = staged_send, staged_on_app

    def burst(self, ids: list[str]) -> float:
        watch, submit = self.watch, self.router.submit
        intents = self.intents(ids)
        watch.fill_ns.clear()
        watch.done.clear()
        watch.expect = len(ids)
        start = time.perf_counter_ns()
        for intent in intents:
            submit(intent)
        if not watch.done.wait(TIMEOUT_S * 4):
            rejected = sum(1 for c in ids if self.router.oms.order(c).status == "REJECTED")
            raise RuntimeError(f"ours burst: {len(watch.fill_ns)}/{len(ids)} fills ({rejected} rejected)")
        return len(ids) / ((max(watch.fill_ns[c] for c in ids) - start) / 1e9)

    def check(self) -> dict[str, Any]:
        oms = self.router.oms
        statuses: dict[str, int] = {}
        for order in oms.orders.values():
            statuses[order.status] = statuses.get(order.status, 0) + 1
        counts = self.router.route.counts
        return {"by_status": statuses, "anomalies": len(oms.anomalies),
                "journal_seq": self.router.journal.seq, "bad_reports": counts["bad_reports"]}


LAYERS = ("route", "oms", "oms_journal")  # --layers: each adds one part of our path to the last
LAYER_PREFIX = {"bare": "lb", "bare_our_symbol": "lc", "route": "lr", "oms": "lm", "oms_journal": "lj",
                "ours": "lo"}  # their ClOrdIDs


class Layer(OurPath):
    """Part of our path, for --layers: ``route``: our FixRoute alone (FIX strings out, reports
    parsed into ExecReports, the TRADE's taken as the fill); ``oms``: + the OrderManager (state
    machine, positions; no risk, no journal); ``oms_journal``: + the write-ahead journal. Adding
    risk and the Router's own listener gives ``Ours``."""

    def __init__(self, cfg: Config, port: int, var_dir: Path, sender: str, layer: str) -> None:
        from order_routing.fix_route import FixRoute
        from order_routing.journal import Journal
        from order_routing.oms import OrderManager

        self.name, self.watch, self.journal = layer, FillWatch(), None
        self.route = FixRoute(route_config(cfg, port, sender), var_dir, account=cfg.routing.account,
                              venue=VENUE)
        if layer == "route":
            self.route.connect(self.watch.on_execution, TIMEOUT_S)
            self.submit = self.route.send_new
            return
        oms = OrderManager(self.route, account=cfg.routing.account)
        if layer == "oms_journal":
            self.journal = Journal(var_dir / f"oms-{sender}")
            oms.subscribe(self.journal)
        oms.subscribe(self.watch)
        self.route.connect(oms.apply, TIMEOUT_S)
        self.submit = oms.submit

    def close(self) -> None:
        try:
            self.route.close()
        finally:
            if self.journal is not None:
                self.journal.close()


# -- scratch sinks for --ship ---------------------------------------------------------------------
def ship_env(run: str) -> dict[str, str]:
    return {"TRADELAKE_ROUTING__TOPICS__ORDERS": f"bench.{run}.orders",
            "TRADELAKE_ROUTING__TOPICS__EXECUTIONS": f"bench.{run}.executions",
            "TRADELAKE_ODS__SCHEMA": f"bench_{run}"}


def ship_setup(cfg: Config) -> None:
    from ods.store import open_store

    store = open_store(cfg)
    store.ensure_schema()
    store.close()


def ship_cleanup(cfg: Config) -> None:

    from ods.store import open_store

    scratch = (cfg.ods.schema, cfg.routing.topics.orders, cfg.routing.topics.executions)
    if not all(name.startswith("bench") for name in scratch):  # never the real ones
        raise RuntimeError(f"refusing to drop non-scratch {scratch}")
    with contextlib.suppress(Exception):
        store = open_store(cfg)
        store.drop()
        store.close()
    delete_topics(cfg.kafka.bootstrap, [cfg.routing.topics.orders, cfg.routing.topics.executions])


# -- --stages: where one order's time goes -------------------------------------------------------
BARE_STAGES = (("send", "start", "sent"), ("venue", "sent", "new_in"), ("new_to_trade", "new_in", "trade_in"))
OUR_STAGES = (("submit", "start", "send_in"), ("send", "send_in", "sent"), ("venue", "sent", "new_in"),
              ("new_report", "new_in", "new_out"), ("new_to_trade", "new_out", "trade_in"),
              ("trade_to_fill", "trade_in", "fill"), ("trade_report", "trade_in", "trade_out"))
TRACE_END = {"BareClient": "trade_in", "Ours": "trade_out"}  # each side's last stamp of an order


def stage_medians(runs: list[dict[str, int]], stages: tuple[tuple[str, str, str], ...]) -> dict[str, float]:
    """Median microseconds of each (name, from, to) stage over the traced orders, and the total."""
    out = {name: statistics.median(r[b] - r[a] for r in runs) / 1e3 for name, a, b in stages}
    out["total"] = statistics.median(r["fill"] - r["start"] for r in runs) / 1e3
    return {k: round(v, 1) for k, v in out.items()}


def traced(client: BareClient | Ours, ids: list[str], pause_s: float) -> list[dict[str, int]]:
    """One latency loop with every stage stamped (perf ns), through ``client.latency`` itself (its
    start and fill stamps open and close each order's trace; sides alternate as in the rounds).
    Unlike the rounds, each order starts only once the previous one's handling is over (ours
    journals the order row after the fill is seen), so no order's stages hold another's work."""
    runs, end = [], TRACE_END[type(client).__name__]
    for i, cid in enumerate(ids):
        stamps: list[tuple[str, int]] = []
        client.stamps = stamps
        client.latency([cid], pause_s, first=i)
        deadline = time.monotonic() + TIMEOUT_S
        while all(name != end for name, _ in stamps):
            if time.monotonic() > deadline:
                raise RuntimeError(f"--stages: {cid} never reached {end}")
            time.sleep(0)
        run = dict(stamps)
        run["start"], run["fill"] = client.last_start_ns, client.fill_ns_of(cid)
        runs.append(run)
    client.stamps = None
    return runs


def run_layers(clients: dict[str, BareClient | OurPath], ids: Any, orders: int, rounds: int,
               pause_s: float) -> dict[str, Any]:
    """--layers: ``rounds`` rounds of ``orders`` latency orders on every client, in turn (the order
    reversed every other round); each client's median p50 over the rounds and its ratio to bare."""
    p50s: dict[str, list[float]] = {name: [] for name in clients}
    for r in range(rounds):
        for name in (list(clients) if r % 2 == 0 else list(reversed(clients))):
            p50s[name].append(percentile(clients[name].latency(ids(LAYER_PREFIX[name], orders), pause_s), 50))
        say(f"layers round {r + 1}/{rounds}: p50 ms "
            + ", ".join(f"{n} {v[-1]:.3f}" for n, v in p50s.items()))
    p50 = {name: statistics.median(v) for name, v in p50s.items()}
    out = {"p50_ms": {n: round(v, 4) for n, v in p50.items()},
           "ratio": {n: round(v / p50["bare"], 3) for n, v in p50.items()},
           "round_p50_ms": {n: [round(x, 4) for x in v] for n, v in p50s.items()},
           "what": "median p50 over interleaved latency rounds run after the main rounds: bare; "
                   "bare_our_symbol = the bare client on our symbol, on a session of its own (a control: "
                   "the symbol's book and the session do not favour bare); route = "
                   "our FixRoute alone (the TRADE ExecReport taken as the fill); oms = + the OrderManager "
                   "(no risk, no journal); oms_journal = + the write-ahead journal; ours = + pre-trade risk "
                   "and the Router's listener (the headline path); each on a FIX session of its own"}
    say("layers (median p50 ms, ratio to bare): "
        + ", ".join(f"{n} {out['p50_ms'][n]:.3f} (x{out['ratio'][n]})" for n in clients))
    return out


# -- the in-process micro-benchmark --------------------------------------------------------------
def path_cpu(cfg: Config, batches: int = 30, size: int = 200) -> dict[str, float]:
    """CPU (this thread's time) per order of each stage of our path without the network: a Router
    whose FixRoute session is a stub (the quickfix.Message is built, not sent), fed the exchange's
    NEW and TRADE ExecutionReport strings through ``FixRoute._on_app``. Minimum over ``batches``
    batches (so preemption by other load counts little). The throttle is raised out of the way:
    this loop runs faster than any real order flow."""
    from order_routing.fix_route import FixRoute
    from order_routing.router import Router

    class StubSession:
        def send(self, message: Any) -> bool:
            return True

    cfg = dataclasses.replace(cfg, routing=dataclasses.replace(
        cfg.routing, risk=dataclasses.replace(cfg.routing.risk, max_orders_per_s=1e9)))
    tmp = Path(tempfile.mkdtemp(prefix="bench-fix-micro-"))
    route = FixRoute(dataclasses.replace(cfg.routing.fix, sender_comp_id="MICRO", store_dir="fix/MICRO"), tmp,
                     account=cfg.routing.account, venue=VENUE)
    route._session = StubSession()  # what onLogon would set
    route._logged_on.set()
    router = Router(cfg, route, ship=False, watch_kill_switch=False, directory=tmp / "oms")
    route._on_report = router.oms.apply
    router.mark(OUR_SYMBOL, MARK)
    stamp = utc_timestamp()
    head = f"8={BEGIN_STRING}{SOH}9=200{SOH}35=8{SOH}49={VENUE}{SOH}52={stamp}{SOH}56=MICRO{SOH}"
    best: dict[str, float] = {}
    n = 0
    clock = time.thread_time_ns
    try:
        for _ in range(batches):
            items = []
            for _ in range(size):
                n += 1
                side, cid = BUY if n % 2 else SELL, f"m{n}"
                tail = (f"{SOH}37=O{n}{SOH}38=1{SOH}40=1{SOH}54={'1' if side == BUY else '2'}{SOH}"
                        f"55={OUR_SYMBOL}{SOH}")
                new = (f"{head}34={n}{SOH}6=0{SOH}11={cid}{SOH}14=0{SOH}17=E{n}a{tail}39=0{SOH}"
                       f"60={stamp}{SOH}150=0{SOH}151=1{SOH}10=000{SOH}")
                trade = (f"{head}34={n}{SOH}6=100.02{SOH}11={cid}{SOH}14=1{SOH}17=E{n}b{SOH}31=100.02{SOH}"
                         f"32=1{tail}39=2{SOH}60={stamp}{SOH}150=F{SOH}151=0{SOH}10=000{SOH}")
                items.append((OrderIntent(time.time_ns(), OUR_SYMBOL, cid, side, 1.0), new, trade))
            t0 = clock()
            for intent, _, _ in items:
                router.submit(intent)
            t1 = clock()
            for _, new, _ in items:
                route._on_app(new)
            t2 = clock()
            for _, _, trade in items:
                route._on_app(trade)
            t3 = clock()
            for key, ns in (("submit", t1 - t0), ("new_report", t2 - t1), ("trade_report", t3 - t2),
                            ("total", t3 - t0)):
                best[key] = min(best.get(key, float("inf")), ns / size / 1e3)
        if router.oms.anomalies or any(o.status != "FILLED" for o in router.oms.orders.values()):
            raise RuntimeError("micro-benchmark: the stub path did not fill every order")
    finally:
        router.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return {k: round(v, 1) for k, v in best.items()}


# -- main -----------------------------------------------------------------------------------------
def summarise(name: str, lat: list[float]) -> str:
    return f"{name} p50 {percentile(lat, 50):.3f} ms p99 {percentile(lat, 99):.3f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--orders", type=int, default=1000, help="latency orders per side per round (1000)")
    parser.add_argument("--burst", type=int, default=2000, help="orders per throughput burst (2000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--pause-ms", type=float, default=0.0,
                        help="pause before each latency order, both sides (default 0: the next order goes "
                             "out as soon as the previous fill is seen, so ours also waits for the rest of "
                             "that fill's bookkeeping, e.g. its order row in the journal)")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up orders per side (300)")
    parser.add_argument("--ship", action="store_true",
                        help="also ship the journal to Kafka and the ODS (needs the running stack; "
                             "scratch topics and schema, dropped afterwards)")
    parser.add_argument("--stages", action="store_true",
                        help="after the rounds, one more latency loop per side with every stage of each "
                             "order stamped (send, venue, each report's handling): medians in stages_us")
    parser.add_argument("--layers", action="store_true",
                        help="after the rounds, more interleaved latency rounds of bare, our FixRoute "
                             "alone, + the OMS, + the journal, and ours: what each part adds (layers)")
    parser.add_argument("--pm-qos", action="store_true",
                        help="hold /dev/cpu_dma_latency at 0 for the run (root): idle CPUs poll instead "
                             "of halting, as latency-tuned hosts are set up (tuned's latency-performance)")
    parser.add_argument("--profile", default=None,
                        help="config profile (default: $TRADELAKE_PROFILE or local)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary var dir (FIX logs, journal)")
    args = parser.parse_args()
    if args.stages and args.orders < 1:
        parser.error("--stages needs --orders of at least 1")

    run = uuid.uuid4().hex[:8]
    pm_qos = None
    if args.pm_qos:
        try:  # the request lasts while the file stays open (the kernel's PM QoS interface)
            pm_qos = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
            os.write(pm_qos, (0).to_bytes(4, sys.byteorder))
        except OSError as exc:
            say(f"error: --pm-qos needs write access to /dev/cpu_dma_latency (root): {exc}")
            return 2
        say("PM QoS: cpu_dma_latency held at 0 us for the run")
    load_before = os.getloadavg()
    env = dict(os.environ, **(ship_env(run) if args.ship else {}))
    cfg = load_config(args.profile, env=env)
    default_throttle = cfg.routing.risk.max_orders_per_s
    throttle = default_throttle
    if default_throttle and args.burst > 0.9 * default_throttle:  # the bucket holds one second
        throttle = float(2 * args.burst)
        cfg = dataclasses.replace(cfg, routing=dataclasses.replace(
            cfg.routing, risk=dataclasses.replace(cfg.routing.risk, max_orders_per_s=throttle)))
        say(f"risk: routing.risk.max_orders_per_s raised {default_throttle:g} -> {throttle:g} by config "
            f"override (a burst of {args.burst} would empty its one-second bucket)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-fix-"))
    say(f"run {run}: var dir {tmp}; risk limits {dataclasses.asdict(cfg.routing.risk)}; "
        f"shipping {'ON (Kafka + ODS, scratch)' if args.ship else 'off'}")
    if args.ship:
        ship_setup(cfg)
    layer_ids = {layer: layer.upper().replace("_", "") for layer in LAYERS}  # their FIX CompIDs
    layer_clients = ["BAREB", *layer_ids.values()] if args.layers else []
    exchange = ExchangeProcess(tmp, ["BARE", "OURS", *layer_clients], args.profile)
    say(f"exchange up on port {exchange.port}")
    micro = path_cpu(cfg)
    say(f"micro-benchmark, CPU per order without the network: submit {micro['submit']} us, NEW report "
        f"{micro['new_report']} us, TRADE report {micro['trade_report']} us (total {micro['total']} us)")
    bare = ours = None
    layers: dict[str, Layer] = {}
    bare_b = None
    per_round: list[dict[str, float]] = []
    try:
        bare = BareClient(exchange.port, tmp / "fix" / "BARE", "BARE")
        ours = Ours(cfg, exchange.port, tmp, "OURS", args.ship)
        say("both sessions logged on; warming up")
        counter = iter(range(1, 1 << 62))

        def ids(prefix: str, n: int) -> list[str]:
            return [f"{prefix}{run}-{next(counter)}" for _ in range(n)]

        pause = args.pause_ms / 1e3
        bare.latency(ids("b", args.warmup), pause)
        ours.latency(ids("o", args.warmup), pause)
        bare.burst(ids("b", min(args.burst, 500)))
        ours.burst(ids("o", min(args.burst, 500)))
        for r in range(1, args.rounds + 1):
            order = ("bare", "ours") if r % 2 else ("ours", "bare")
            res: dict[str, Any] = {}
            for side in order:
                client = bare if side == "bare" else ours
                res[f"{side}_lat"] = client.latency(ids(side[0], args.orders), pause)
            bare.spin_us = (micro["submit"], micro["new_report"], micro["trade_report"])
            try:
                res["spin_lat"] = bare.latency(ids("s", args.orders), pause)
            finally:
                bare.spin_us = (0.0, 0.0, 0.0)
            for side in order:
                client = bare if side == "bare" else ours
                cpu, ex_cpu = time.process_time(), proc_cpu_s(exchange.proc.pid)
                res[f"{side}_rate"] = client.burst(ids(side[0], args.burst))
                res[f"{side}_cpu"] = (time.process_time() - cpu) / args.burst * 1e6
                res[f"{side}_ex_cpu"] = (proc_cpu_s(exchange.proc.pid) - ex_cpu) / args.burst * 1e6
            row = {"p50": percentile(res["ours_lat"], 50), "p99": percentile(res["ours_lat"], 99),
                   "bare_p50": percentile(res["bare_lat"], 50), "bare_p99": percentile(res["bare_lat"], 99),
                   "spin_p50": percentile(res["spin_lat"], 50),
                   "rate": res["ours_rate"], "bare_rate": res["bare_rate"],
                   "cpu": res["ours_cpu"], "bare_cpu": res["bare_cpu"],
                   "ex_cpu": res["ours_ex_cpu"], "bare_ex_cpu": res["bare_ex_cpu"]}
            row["ratio"] = row["p50"] / row["bare_p50"]
            per_round.append(row)
            say(f"round {r}/{args.rounds} ({order[0]} first): {summarise('ours', res['ours_lat'])}, "
                f"{summarise('bare', res['bare_lat'])}, {summarise('bare + our CPU', res['spin_lat'])}, "
                f"ratio {row['ratio']:.3f}; burst ours "
                f"{row['rate']:,.0f}/s, bare {row['bare_rate']:,.0f}/s (CPU/order: ours {row['cpu']:.0f} us, "
                f"bare {row['bare_cpu']:.0f} us, exchange {row['ex_cpu']:.0f}/{row['bare_ex_cpu']:.0f} us)")
        stages: dict[str, Any] | None = None
        if args.stages:
            runs = {"bare": traced(bare, ids("b", args.orders), pause),
                    "ours": traced(ours, ids("o", args.orders), pause)}
            stages = {"bare": stage_medians(runs["bare"], BARE_STAGES),
                      "ours": stage_medians(runs["ours"], OUR_STAGES), "orders": args.orders,
                      "what": "median us of each stage of one order, a traced latency loop per side after "
                              "the rounds: send = QuickFIX's send; venue = send returned -> the NEW "
                              "report's fromApp; new_report / trade_report = our whole handling of "
                              "each (fromApp in -> out); trade_to_fill = the TRADE's fromApp -> the fill "
                              "applied (what the latency sees); new_to_trade = the NEW's handling done "
                              "-> the TRADE's fromApp (QuickFIX reading, checking and logging the TRADE); "
                              "each order starts once the previous one's handling is over"}
            say(f"stages (median us): bare {stages['bare']}; ours {stages['ours']}")
        layered = None
        if args.layers:  # their sessions open only now: the rounds above ran with bare and ours alone
            bare_b = BareClient(exchange.port, tmp / "fix" / "BAREB", "BAREB", symbol=OUR_SYMBOL)
            bare_b.latency(ids(LAYER_PREFIX["bare_our_symbol"], args.warmup), pause)
            for layer in LAYERS:
                layers[layer] = Layer(cfg, exchange.port, tmp, layer_ids[layer], layer)
                layers[layer].latency(ids(LAYER_PREFIX[layer], args.warmup), pause)
            layered = run_layers({"bare": bare, "bare_our_symbol": bare_b, **layers, "ours": ours}, ids,
                                 args.orders, args.rounds, pause)
        if args.ship:
            ours.router.flush(120)
        time.sleep(0.2)  # the last fill's order row is journaled after its listener fired
        checks = ours.check()
        if args.ship:
            ours.router.flush(120)
            checks["shipped"] = ours.router.shipper.summary()
    finally:
        for client in layers.values():
            try:
                client.close()
            except Exception as exc:  # keep closing the rest: ours, bare, the exchange, the var dir
                say(f"warning: closing the {client.name} layer failed: {exc!r}")
        if ours is not None:
            ours.router.close()
        for client in (bare_b, bare):
            if client is not None:
                client.close()
        stats = exchange.stop()
        if args.ship:
            ship_cleanup(cfg)
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        if pm_qos is not None:
            os.close(pm_qos)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in per_round)

    expected = (args.warmup + min(args.burst, 500) + args.rounds * (args.orders + args.burst)
                + (args.orders if args.stages else 0) + (args.rounds * args.orders if args.layers else 0))
    ok = (checks["by_status"] == {"FILLED": expected} and checks["anomalies"] == 0
          and checks["bad_reports"] == 0)
    result = {
        "orders": args.orders, "p50_ms": round(med("p50"), 4), "p99_ms": round(med("p99"), 4),
        "orders_per_s": round(med("rate")), "bare_p50_ms": round(med("bare_p50"), 4),
        "bare_orders_per_s": round(med("bare_rate")),
        "overhead_ratio": round(med("p50") / med("bare_p50"), 3),
        "bare_p99_ms": round(med("bare_p99"), 4), "burst_orders": args.burst, "rounds": args.rounds,
        "warmup_orders": args.warmup, "pause_ms": args.pause_ms, "path_cpu_us_per_order": micro,
        "bare_plus_our_cpu_p50_ms": round(med("spin_p50"), 4),
        "latency_per_cpu_us": round((med("spin_p50") - med("bare_p50")) * 1000 / micro["total"], 2),
        "round_ratios": [round(r["ratio"], 3) for r in per_round],
        "round_p50_ms": [round(r["p50"], 4) for r in per_round],
        "round_bare_p50_ms": [round(r["bare_p50"], 4) for r in per_round],
        "round_bare_plus_our_cpu_p50_ms": [round(r["spin_p50"], 4) for r in per_round],
        "round_orders_per_s": [round(r["rate"]) for r in per_round],
        "round_bare_orders_per_s": [round(r["bare_rate"]) for r in per_round],
        "burst_cpu_us_per_order": {"ours": round(med("cpu")), "bare": round(med("bare_cpu")),
                                   "exchange_for_ours": round(med("ex_cpu")),
                                   "exchange_for_bare": round(med("bare_ex_cpu")),
                                   "what": "process CPU (all threads) during the burst / orders; "
                                           "this process for ours and bare, the exchange process"},
        "risk": "on (default limits)" if throttle == default_throttle else
                f"on (default limits; max_orders_per_s {default_throttle:g} -> {throttle:g} "
                f"by config override)",
        "journal": "on (write-ahead, one write() per record)",
        "stages_us": stages, "layers": layered, "pm_qos": args.pm_qos,
        "ship": "on (Kafka + ODS, background threads, scratch topics/schema)" if args.ship else "off",
        "all_filled": ok, "oms": checks,
        "exchange": {k: stats.get(k) for k in ("orders", "fills", "rejects")},
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "targets": {"overhead_ratio": 1.15, "orders_per_s": 3000},
    }
    out = ROOT / "benchmarks" / "results" / "fix_routing.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    say(f"summary: ours p50 {result['p50_ms']} ms / p99 {result['p99_ms']} ms vs bare p50 "
        f"{result['bare_p50_ms']} ms -> overhead x{result['overhead_ratio']}; burst ours "
        f"{result['orders_per_s']:,}/s vs bare {result['bare_orders_per_s']:,}/s; all filled: {ok}; "
        f"written to {out.relative_to(ROOT)}")
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
