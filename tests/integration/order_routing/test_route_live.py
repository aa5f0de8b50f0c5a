"""The live path end to end: trades on Kafka -> `tradelake route` (bars -> strategy -> risk -> FIX
route -> OMS) -> the simulated exchange; and the kill switch reaching a running router.

One kernel for backtest and live: the route's orders must be exactly the orders a backtest of the
same strategy makes on the same bars (bars computed here by hand from the published trades), and
every one of them must be filled by the exchange.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
import uuid

import pyarrow as pa
import pytest
from support.exchange_process import start_exchange

from ingestion.publisher import TickPublisher
from intelligence.backtest import Backtest
from intelligence.domain import Bar, OrderIntent
from intelligence.strategies import MeanReversion
from order_routing.journal import read_journal
from tradelake.config import PROJECT_ROOT, load_config
from tradelake.schemas import TRADE, arrow_schema

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BASE = 1_767_945_600_000_000_000  # 2026-01-09 08:00:00 UTC
MINUTE = 60_000_000_000
SYMBOLS = {"AAPL": 100.0, "MSFT": 400.0}


def synthetic_trades(minutes: int = 40, per_minute: int = 4, seed: int = 3) -> list[dict]:
    """A seeded oscillating walk per symbol: enough swings for a 5-bar z-score to trade."""
    rng, rows, seq = random.Random(seed), [], 0
    for m in range(minutes):
        for k in range(per_minute):
            for symbol, base in SYMBOLS.items():
                seq += 1
                price = round(base * (1 + 0.01 * math.sin(m / 3.0) + rng.gauss(0, 0.002)), 2)
                rows.append({"ts": BASE + m * MINUTE + k * (MINUTE // per_minute), "symbol": symbol,
                             "price": price, "size": float(rng.randint(1, 9) * 10), "trade_id": f"T{seq}",
                             "exchange": None, "seq": seq, "side": None, "conditions": None,
                             "ingest_ts": None})
    return rows


def bars_by_hand(rows: list[dict]) -> list[Bar]:
    """1m OHLCV + VWAP per symbol, independently of the code under test; (ts, symbol) order."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["ts"] - r["ts"] % MINUTE, r["symbol"]), []).append(r)
    bars = []
    for (start, symbol), trades in sorted(groups.items()):
        trades.sort(key=lambda t: (t["ts"], t["seq"]))
        prices = [t["price"] for t in trades]
        volume = sum(t["size"] for t in trades)
        bars.append(Bar(start, symbol, "1m", prices[0], max(prices), min(prices), prices[-1], volume,
                        sum(t["price"] * t["size"] for t in trades) / volume, len(trades)))
    return bars


@pytest.fixture
def live(cfg, stack, tmp_path):
    tag = f"it_{uuid.uuid4().hex[:8]}"
    exchange_dir = tmp_path / "exchange"
    exchange_dir.mkdir()
    exchange = start_exchange(exchange_dir, symbols=SYMBOLS, clients=[cfg.routing.fix.sender_comp_id])
    env = dict(os.environ, TRADELAKE_STACK__VAR_DIR=str(tmp_path / "router"),
               TRADELAKE_ROUTING__FIX__PORT=str(exchange.port),
               TRADELAKE_INGEST__TOPICS__TRADES=f"{tag}.trades",
               TRADELAKE_INTELLIGENCE__MEAN_REVERSION__WINDOW="5",
               TRADELAKE_INTELLIGENCE__MEAN_REVERSION__ENTRY_Z="1.0",
               TRADELAKE_INTELLIGENCE__MEAN_REVERSION__EXIT_Z="0.2")
    yield exchange, env, f"{tag}.trades", tmp_path
    exchange.stop()


def test_route_sends_the_backtests_orders_and_every_one_is_filled(cfg, live):
    exchange, env, topic, tmp_path = live
    rows = synthetic_trades()
    publisher = TickPublisher(cfg.kafka.bootstrap, ticks_per_message=50)
    publisher.publish(topic, "trade", pa.Table.from_pylist(rows, schema=arrow_schema(TRADE)))
    publisher.flush()
    publisher.close()

    run = subprocess.run([sys.executable, "-m", "tradelake.cli", "route", "--strategy", "mean_reversion",
                          "--mode", "bars", "--from-beginning", "--idle-exit", "4", "--order-qty", "10",
                          "--no-ship", "--json"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert "route: events" in run.stderr  # the live status line
    assert summary["chart"].endswith(".png") and os.path.getsize(summary["chart"]) > 10_000  # equity curve

    expected_bars = bars_by_hand(rows)
    assert summary["events"] == len(expected_bars) and summary["rejected_market_data"] == {}
    backtest = Backtest(MeanReversion(5, 1.0, 0.2, qty=10.0)).run(expected_bars)
    want = [(i.cl_ord_id, i.symbol, i.side, i.quantity) for i in backtest.intents]
    assert len(want) >= 4, want  # the walk does make the strategy trade

    journal = tmp_path / "router" / cfg.routing.journal_dir / "journal.jsonl"
    new_orders = [row for _, kind, row in read_journal(journal)
                  if kind == "order" and row["status"] == "PENDING_NEW"]
    got = [(row["cl_ord_id"].split("-", 1)[1], row["symbol"], row["side"], row["quantity"])
           for row in new_orders]
    assert got == want
    assert summary["by_status"] == {"FILLED": len(want)} and summary["anomalies"] == 0
    net = {}
    for _, symbol, side, qty in want:
        net[symbol] = net.get(symbol, 0.0) + (qty if side == "B" else -qty)
    assert {s: p["quantity"] for s, p in summary["positions"].items()} == {s: q for s, q in net.items() if q}


def test_the_kill_switch_stops_a_running_router_within_a_second(cfg, stack, tmp_path):
    """`tradelake risk kill` (the shared row) -> the router's watcher -> risk refuses new orders."""
    from ods.postgres import PostgresStore
    from order_routing.router import Router

    schema = f"it_{uuid.uuid4().hex[:8]}"
    os.environ["TRADELAKE_ODS__SCHEMA"] = schema
    try:
        scfg = load_config("local")
        store = PostgresStore(scfg)
        store.ensure_schema()

        class NoVenue:  # the order must not get that far; anything sent is recorded and fails the test
            venue, sent = "NONE", []

            def send_new(self, order):
                self.sent.append(order)

        route = NoVenue()
        router = Router(scfg, route, ship=False, directory=tmp_path / "oms")
        router.mark("AAPL", 100.0)
        env = dict(os.environ)
        kill = subprocess.run([sys.executable, "-m", "tradelake.cli", "risk", "kill", "--reason", "it test"],
                              env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
        assert kill.returncode == 0 and "ENGAGED" in kill.stdout, kill.stdout + kill.stderr
        deadline = time.monotonic() + 5
        while not router.kill_switch.engaged and time.monotonic() < deadline:
            time.sleep(0.05)
        order = router.submit(OrderIntent(time.time_ns(), "AAPL", "K-1", "B", 1.0))
        assert order.status == "REJECTED" and route.sent == []
        journal = tmp_path / "oms" / "journal.jsonl"
        reject = [row for _, kind, row in read_journal(journal) if kind == "execution"]
        assert reject[-1]["text"].startswith("KILL_SWITCH: it test") and reject[-1]["venue"] == "RISK"

        release = subprocess.run([sys.executable, "-m", "tradelake.cli", "risk", "status", "--json"], env=env,
                                 cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
        status = json.loads(release.stdout)
        assert status["engaged"] is True and status["history"][0]["reason"] == "it test"
        subprocess.run([sys.executable, "-m", "tradelake.cli", "risk", "release"], env=env, cwd=PROJECT_ROOT,
                       check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 5
        while router.kill_switch.engaged and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not router.kill_switch.engaged
        router.journal.close()
    finally:
        os.environ.pop("TRADELAKE_ODS__SCHEMA", None)
        store.drop()
        store.close()
