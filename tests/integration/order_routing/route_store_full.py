"""Test harness (our real code, not a double): the OMS and our FixRoute while QuickFIX's own store
cannot grow, as on a full disk.

    PYTHONPATH=tests python tests/integration/order_routing/route_store_full.py --port P --var-dir D

Run as a process of its own because the file size limit (RLIMIT_FSIZE, a real kernel refusal) is
per process. Against a ``tradelake exchange`` listing AAPL (marked 100) with client STOREFULL:

1. a resting limit order L and a filled market order M1, with room on the disk;
2. QuickFIX's store may grow 60 bytes more, less than a message: the market order M2 (refused:
   the route drops the connection), then a cancel of L while logged off;
3. still full for 3 s: the route must not log on (its Logon cannot be stored either); M3;
4. room again: the route logs on by itself; the market order M4 and a cancel of L are sent.

Prints one JSON object: each step's outcome, the route's counts, the orders' final states.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from support.full_disk import limit_file_size
from support.oms_listeners import RejectTexts

from intelligence.domain import BUY, LIMIT, MARKET, OrderIntent
from order_routing.events import OrderError
from order_routing.fix_route import FixRoute
from order_routing.oms import OrderManager
from tradelake.config import FixSessionConfig

SENDER = "STOREFULL"


def wait_for(condition, timeout_s: float, what: str) -> float:
    """Seconds waited until ``condition()``; raises after ``timeout_s``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"no {what} within {timeout_s:g}s")
        time.sleep(0.02)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--var-dir", type=Path, required=True)
    args = parser.parse_args()
    cfg = FixSessionConfig(port=args.port, sender_comp_id=SENDER, store_dir="fix/route")
    route = FixRoute(cfg, args.var_dir)
    oms = OrderManager(route, account="STOREFULL")
    rejects = RejectTexts()
    oms.subscribe(rejects)
    route.connect(oms.apply, 30)
    out: dict = {}

    def status(cid: str) -> str:
        return oms.order(cid).status

    def market(cid: str) -> str:
        order = oms.submit(OrderIntent(time.time_ns(), "AAPL", cid, BUY, 1.0, MARKET))
        if order.status != "REJECTED":
            wait_for(lambda: status(cid) == "FILLED", 10, f"fill of {cid}")
        return order.status

    def cancel(cid: str, request_id: str) -> str | None:
        try:
            oms.cancel(cid, request_id=request_id)
        except OrderError as exc:
            return str(exc)
        return None

    # 1. room on the disk
    oms.submit(OrderIntent(time.time_ns(), "AAPL", "L", BUY, 1.0, LIMIT, 90.0))
    wait_for(lambda: status("L") == "NEW", 10, "ack of L")
    out["m1"] = market("M1")
    # 2. the store's next message does not fit
    body = args.var_dir / "fix/route" / f"FIX.4.4-{SENDER}-SIMEX.body"
    limit_file_size(body.stat().st_size + 60)
    out["m2"] = market("M2")
    out["m2_text"] = rejects.texts.get("M2")
    out["logged_on_after_m2"] = route.logged_on
    out["cancel_during"] = cancel("L", "L-c1")
    out["l_after_cancel_during"] = status("L")
    # 3. still full: no logon (a Logon cannot be stored either)
    deadline, logged_on = time.monotonic() + 3, False
    while time.monotonic() < deadline:
        logged_on = logged_on or route.logged_on
        time.sleep(0.02)
    out["logged_on_while_full"] = logged_on
    out["m3"] = market("M3")
    out["m3_text"] = rejects.texts.get("M3")
    # 4. room again
    limit_file_size(None)
    out["logged_on_again_after_s"] = round(wait_for(lambda: route.logged_on, 40, "logon"), 1)
    out["m4"] = market("M4")
    out["cancel_after"] = cancel("L", "L-c2")
    wait_for(lambda: status("L") == "CANCELED", 10, "cancel of L")
    out["counts"] = dict(route.counts)
    out["statuses"] = {cid: order.status for cid, order in sorted(oms.orders.items())}
    route.close()
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
