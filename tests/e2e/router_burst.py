"""Test harness (our real code, not a double): a router process sending a burst of market orders.

    python tests/e2e/router_burst.py --orders 1000 --symbols AAPL=100,MSFT=400 [--seed 1] [--no-ship]
                                     [--disk-full-after N]

The plan (ClOrdID, symbol, side, quantity) is a function of the seed, so a restarted run sends
exactly the orders the killed one had not journaled yet: start-up replays the journal, reconnects
(the venue resends what we missed), asks the venue about every open order, then skips every
ClOrdID the OMS already knows. Prints ``SUBMITTED <n>`` every 25 orders (the crash test kills it
mid-burst on one of those lines) and a JSON summary once no order is open.

``--disk-full-after N``: once N orders are submitted, the process may not grow any file past the
journal's size plus 40 bytes (RLIMIT_FSIZE, a real kernel refusal; the journal is the largest file
the router writes, so it is the one that fills): the journal's disk is full from then on. Prints
``DISK FULL <n>`` then, and its summary once no order is open, and waits to be killed (-9) with
the records it could not write still in memory.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import sys
import time

from intelligence.domain import OrderIntent
from order_routing.router import Router, build_route
from tradelake.config import load_config


def plan(n: int, symbols: list[str], seed: int) -> list[tuple[str, str, str, float]]:
    rng = random.Random(seed)
    return [(f"B{i:05d}", rng.choice(symbols), rng.choice("BS"), float(rng.randint(1, 10))) for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, required=True)
    parser.add_argument("--symbols", required=True, help="SYM=MARK,... (marks for the risk checks)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-ship", action="store_true", help="do not ship the journal (no stack needed)")
    parser.add_argument("--disk-full-after", type=int, default=0, metavar="N",
                        help="fill the journal's disk once N orders are submitted (RLIMIT_FSIZE)")
    args = parser.parse_args()
    marks = {s: float(p) for s, p in (item.split("=") for item in args.symbols.split(","))}
    cfg = load_config()
    router = Router(cfg, build_route(cfg), ship=not args.no_ship)
    router.connect(30)
    reconciled = router.reconcile(30)
    for symbol, price in marks.items():
        router.mark(symbol, price)
    known = set(router.oms.orders)
    print(f"READY recovered={router.recovered_records} repaired={len(router.repaired_orders)} "
          f"known={len(known)} reconcile={json.dumps(reconciled)}",
          flush=True)
    sent = 0
    for i, (cl_ord_id, symbol, side, qty) in enumerate(plan(args.orders, sorted(marks), args.seed), 1):
        if cl_ord_id not in known:
            router.submit(OrderIntent(time.time_ns(), symbol, cl_ord_id, side, qty))
            sent += 1
        if i == args.disk_full_after:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write() instead
            limit = router.journal.path.stat().st_size + 40
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            print(f"DISK FULL {i}", flush=True)
        if i % 25 == 0:
            print(f"SUBMITTED {i}", flush=True)
    deadline = time.monotonic() + 60
    while router.oms.open_orders() and time.monotonic() < deadline:
        time.sleep(0.05)
    summary = router.summary() | {"sent_this_run": sent, "open": len(router.oms.open_orders())}
    if args.disk_full_after:  # records in memory only: say so, then wait for the kill -9
        print(json.dumps(summary, default=str), flush=True)
        time.sleep(600)
        return 2
    router.close()
    print(json.dumps(summary, default=str), flush=True)
    return 0 if summary["open"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
