"""Crash test of the order path: kill -9 the router in the middle of a 1,000-order burst, restart,
recover; then every order is in exactly one final state, no fill is counted twice, our positions
equal the exchange's, and the warehouse log (Kafka -> lake lander -> trading.* through the Thrift
server) and the ODS hold every order event and execution exactly once.

Real parts only: a ``tradelake exchange`` process (QuickFIX acceptor), the router harness
(tests/e2e/router_burst.py: Router + FixRoute + OMS + risk + journal + shipper), the stack's
Kafka, PostgreSQL (a scratch ODS schema), HDFS and the Thrift server (a scratch warehouse).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections import Counter, defaultdict

import pytest
from support.exchange_process import die_with_parent, start_exchange

from ingestion.landing import build_lander
from ods.postgres import PostgresStore
from order_routing.journal import read_journal
from order_routing.oms import OrderManager
from tradelake.config import PROJECT_ROOT, load_config
from tradelake.lakefs import lake_fs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

MARKS = {"AAPL": 100.0, "MSFT": 400.0, "IBM": 150.0, "XOM": 110.0, "JPM": 250.0}
ORDERS = 1000


def _harness(env: dict[str, str]) -> subprocess.Popen:
    marks = ",".join(f"{s}={p}" for s, p in MARKS.items())
    return subprocess.Popen([sys.executable, str(PROJECT_ROOT / "tests/e2e/router_burst.py"), "--orders",
                             str(ORDERS), "--symbols", marks], env=env, cwd=PROJECT_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=die_with_parent)


@pytest.fixture
def scratch(cfg, stack, scratch_warehouse, tmp_path):
    """Env and profile for this test: its own var dir, ODS schema, journal topics, warehouse."""
    wcfg, wenv = scratch_warehouse
    tag = f"it_{uuid.uuid4().hex[:8]}"
    env = {**wenv, "TRADELAKE_STACK__VAR_DIR": str(tmp_path / "router"), "TRADELAKE_ODS__SCHEMA": tag,
           "TRADELAKE_ROUTING__TOPICS__ORDERS": f"{tag}.orders",
           "TRADELAKE_ROUTING__TOPICS__EXECUTIONS": f"{tag}.executions"}
    env_before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        scfg = load_config("local")
        store = PostgresStore(scfg)
        store.ensure_schema()
        yield scfg, dict(os.environ), store
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        store.drop()
        store.close()
        fs = lake_fs(cfg)
        for topic in (f"{tag}.orders", f"{tag}.executions"):
            with contextlib.suppress(Exception):
                fs.delete(f"{cfg.lander.raw_zone}/{topic}", recursive=True)


def test_kill_9_mid_burst_then_recover_leaves_every_order_final_once_everywhere(scratch, tmp_path,
                                                                                 thrift_query):
    cfg, env, store = scratch
    exchange_dir = tmp_path / "exchange"
    exchange_dir.mkdir()
    exchange = start_exchange(exchange_dir, symbols=MARKS, clients=[cfg.routing.fix.sender_comp_id])
    env["TRADELAKE_ROUTING__FIX__PORT"] = str(exchange.port)
    try:
        # 1. the burst, killed once it has submitted at least 400 orders
        first = _harness(env)
        killed_at = None
        for line in first.stdout:
            if line.startswith("SUBMITTED") and int(line.split()[1]) >= 400:
                first.kill()  # SIGKILL: no flush, no logout, no goodbye
                killed_at = int(line.split()[1])
                break
        first.wait(30)
        assert killed_at is not None and killed_at < ORDERS, first.stderr.read()[-3000:]

        # 2. restart: the harness recovers (journal, resend, status requests) and sends the rest
        second = _harness(env)
        out, err = second.communicate(timeout=240)
        assert second.returncode == 0, err[-3000:]
        ready = next(line for line in out.splitlines() if line.startswith("READY"))
        assert "recovered=0" not in ready  # it did start from the killed run's journal

        # 3. `tradelake oms recover`: nothing left open, nothing anomalous; ships the rest
        recover = subprocess.run([sys.executable, "-m", "tradelake.cli", "oms", "recover", "--json"], env=env,
                                 cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180)
        assert recover.returncode == 0, recover.stdout + recover.stderr[-3000:]
        summary = json.loads(recover.stdout.strip().splitlines()[-1])
        assert summary["reconcile"] == {"asked": 0, "unanswered": []} and summary["anomalies"] == 0
    finally:
        exchange_summary = exchange.stop()

    # every intended order exactly once, in a final state; fills unique and adding up
    journal = list(read_journal(tmp_path / "router" / cfg.routing.journal_dir / "journal.jsonl"))
    oms = OrderManager.replay([(kind, row) for _, kind, row in journal])
    assert sorted(oms.orders) == [f"B{i:05d}" for i in range(ORDERS)]
    states = Counter(o.status for o in oms.orders.values())
    assert set(states) <= {"FILLED", "REJECTED"}, states
    fills = [row for _, kind, row in journal if kind == "execution" and row["exec_type"] == "TRADE"]
    assert len({f["exec_id"] for f in fills}) == len(fills)  # no fill journaled twice
    filled_qty = defaultdict(float)
    for f in fills:
        filled_qty[f["cl_ord_id"]] += f["last_qty"]
    for order in oms.orders.values():
        assert filled_qty[order.cl_ord_id] == order.cum_qty
        assert order.cum_qty == (order.quantity if order.status == "FILLED" else 0.0)
    rejected = [o for o in oms.orders.values() if o.status == "REJECTED"]
    print(f"killed at {killed_at}; {ready}; states {dict(states)}; fills {len(fills)}; "
          f"journal records {len(journal)}")
    assert len(rejected) < 50, [(o.cl_ord_id, o.status) for o in rejected]  # only orders caught mid-send

    # positions equal the exchange's own record of what it filled (its FIX log, resends deduplicated)
    venue_fills = exchange.fills(cfg.routing.fix.sender_comp_id)
    ours = {s: p.quantity for s, p in oms.positions().items() if p.quantity}
    assert ours == exchange.positions(cfg.routing.fix.sender_comp_id)
    assert set(venue_fills) == {f["exec_id"] for f in fills}
    assert exchange_summary["fills"] >= len(venue_fills)

    # the ODS holds each order once, in its final state, and each execution once
    orders = dict(store.query("SELECT cl_ord_id, status FROM orders"))
    assert orders == {cid: o.status for cid, o in oms.orders.items()}
    executions = [r[0] for r in store.query("SELECT exec_id FROM executions")]
    journal_execs = [row["exec_id"] for _, kind, row in journal if kind == "execution"]
    assert sorted(executions) == sorted(journal_execs)
    ods_positions = dict(store.query("SELECT symbol, quantity FROM positions WHERE quantity <> 0"))
    assert ods_positions == ours

    # Kafka holds every journal record exactly once; landed, trading.* answers through Thrift
    lander = build_lander(cfg, topics=[cfg.routing.topics.orders, cfg.routing.topics.executions],
                          group_id=f"g-{cfg.routing.topics.orders}")
    landed = lander.run(idle_exit_s=5, max_seconds=120)
    lander.consumer.close()
    order_rows = sum(1 for _, kind, _ in journal if kind == "order")
    assert landed.rows == len(journal) and landed.undecodable == 0
    trading = cfg.warehouse.trading_db
    assert thrift_query(f"SELECT count(*) FROM {trading}.orders")[0][0] == order_rows
    assert thrift_query(f"SELECT count(DISTINCT exec_id), count(*) FROM {trading}.executions")[0] == \
        (len(journal_execs), len(journal_execs))
    final = thrift_query(f"SELECT status, count(*) FROM (SELECT cl_ord_id, max_by(status, ts) AS status "
                         f"FROM {trading}.orders GROUP BY cl_ord_id) GROUP BY status")
    assert dict(final) == dict(states)

