"""Crash test of the journal's disk: it fills up in the middle of a burst, the router carries on
with records it can only hold in memory, and is killed -9 with them; the restart must still end
with every order final once and our positions equal to the exchange's.

Real parts only: a ``tradelake exchange`` process and the router harness
(tests/e2e/router_burst.py: Router + FixRoute + OMS + risk + journal, not shipping). The full
disk is a real kernel refusal: RLIMIT_FSIZE in the router process, set to 40 bytes past the
journal's size (the largest file the router writes), so the next record gets at most a short
write and every later one none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter

import pytest
from support.exchange_process import die_with_parent, fix_fields, start_exchange
from support.full_disk import limit_file_size

from order_routing.journal import read_journal
from order_routing.oms import OrderManager
from tradelake.config import PROJECT_ROOT, load_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MARKS = {"AAPL": 100.0, "MSFT": 400.0}
ORDERS, FULL_AFTER = 400, 150


def _harness(env: dict[str, str], *extra: str) -> subprocess.Popen:
    marks = ",".join(f"{s}={p}" for s, p in MARKS.items())
    return subprocess.Popen([sys.executable, str(PROJECT_ROOT / "tests/e2e/router_burst.py"), "--orders",
                             str(ORDERS), "--symbols", marks, "--no-ship", *extra], env=env, cwd=PROJECT_ROOT,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=die_with_parent)


def test_a_full_journal_disk_then_kill_9_loses_no_fill(tmp_path):
    env = {**os.environ, "TRADELAKE_STACK__VAR_DIR": str(tmp_path / "router")}
    cfg = load_config("local", env=env)
    sender = cfg.routing.fix.sender_comp_id
    exchange_dir = tmp_path / "exchange"
    exchange_dir.mkdir()
    exchange = start_exchange(exchange_dir, symbols=MARKS, clients=[sender])
    env["TRADELAKE_ROUTING__FIX__PORT"] = str(exchange.port)
    journal_file = tmp_path / "router" / cfg.routing.journal_dir / "journal.jsonl"
    try:
        # 1. the burst; the disk fills after FULL_AFTER orders; once no order is open the harness
        #    prints its summary and waits, and is killed without closing
        first = _harness(env, "--disk-full-after", str(FULL_AFTER))
        errors: list[str] = []  # drained as it runs: a full pipe would block the router
        drain = threading.Thread(target=lambda: errors.extend(first.stderr), daemon=True)
        drain.start()
        first_summary = None
        lines = []
        for line in first.stdout:
            lines.append(line)
            if line.startswith("{"):  # no order open; the unwritten records are in memory only
                first_summary = json.loads(line)
                first.kill()  # SIGKILL: no close, no logout, and those records are gone
                break
        first.wait(30)
        drain.join(10)
        assert first_summary is not None, "".join(lines) + "".join(errors)[-3000:]
        assert f"DISK FULL {FULL_AFTER}\n" in lines
        assert any("cannot write record" in line for line in errors)
        assert not any("closing with records" in line for line in errors)  # killed, not closed
        # the orders after the disk filled were rejected and never reached the venue
        assert first_summary["journal_unwritten"] > 0
        assert first_summary["by_status"].get("REJECTED", 0) >= ORDERS - FULL_AFTER
        logged = [fix_fields(line) for line in exchange.message_log(sender).read_text().splitlines()]
        at_venue = {f["11"] for f in logged if f.get("35") == "D"}
        assert at_venue == {f"B{i:05d}" for i in range(FULL_AFTER)}
        on_disk = list(read_journal(journal_file))  # whole records only: nothing torn inside
        assert on_disk[-1][0] == first_summary["journal_seq"]

        # 2. `tradelake oms recover` on a disk still full: the venue's answers cannot be journaled,
        #    so it must not say "complete"
        size = journal_file.stat().st_size

        def full_disk() -> None:
            die_with_parent()
            limit_file_size(size)

        cmd = [sys.executable, "-m", "tradelake.cli", "oms", "recover", "--no-ship", "--json"]
        recover = subprocess.run(cmd, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                                 preexec_fn=full_disk)
        assert recover.returncode == 1, recover.stdout + recover.stderr[-3000:]
        answer = json.loads(recover.stdout.strip().splitlines()[-1])
        assert answer["journal_lost"] > 0 and answer["reconcile"]["unanswered"] == []
        assert list(read_journal(journal_file)) == on_disk  # nothing written, nothing torn

        # 3. restart with the disk back: recovery asks the venue about the journal's open orders
        #    and sends the planned orders the journal does not know
        second = _harness(env)
        out, err = second.communicate(timeout=180)
        assert second.returncode == 0, err[-3000:]
        ready = next(line for line in out.splitlines() if line.startswith("READY"))
        asked = json.loads(ready.split("reconcile=", 1)[1])["asked"]
        assert asked > 0, ready  # orders open in the journal: their fills were in memory only
    finally:
        exchange.stop()

    journal = list(read_journal(journal_file))
    oms = OrderManager.replay([(kind, row) for _, kind, row in journal])
    assert sorted(oms.orders) == [f"B{i:05d}" for i in range(ORDERS)]
    states = Counter(o.status for o in oms.orders.values())
    assert set(states) <= {"FILLED", "REJECTED"}, states
    rejected = [o for o in oms.orders.values() if o.status == "REJECTED"]
    assert len(rejected) < 10, [(o.cl_ord_id, o.status) for o in rejected]
    ours = {s: p.quantity for s, p in oms.positions().items() if p.quantity}
    print(f"first run {first_summary}; {ready}; states {dict(states)}; records {len(journal)}")
    assert ours == exchange.positions(sender)
