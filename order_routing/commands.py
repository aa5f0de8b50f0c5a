"""``tradelake risk kill|release|status``: the kill switch every running router obeys.

(``tradelake route`` and ``tradelake oms ...`` are in ``order_routing/commands_oms.py``;
``tradelake exchange`` in ``order_routing/exchange/commands.py``.)
"""

from __future__ import annotations

import argparse
import json

from tradelake.config import load_config

EXIT_OK, EXIT_FAILED = 0, 1


def cmd_risk(args: argparse.Namespace) -> int:
    import psycopg2

    from order_routing.kill_switch import KillSwitchStore

    cfg = load_config(args.profile)
    try:
        store = KillSwitchStore(cfg)
    except psycopg2.OperationalError as exc:
        print(f"error: PostgreSQL at {cfg.postgres.public_dsn()} is not reachable ({exc}); "
              "is the stack up? (tradelake stack up)")
        return 3
    try:
        if args.action in ("kill", "release"):
            engaged = args.action == "kill"
            store.set(engaged, args.reason or ("engaged from the command line" if engaged else "released"))
        state = store.state()
        history = store.history(args.history) if args.action == "status" else []
    except psycopg2.errors.UndefinedTable:
        print("error: the ODS has no kill_switch table yet; run `tradelake ods migrate`")
        return EXIT_FAILED
    finally:
        store.close()
    if args.json:
        print(json.dumps({**state, "history": history}, default=str))
    else:
        word = "ENGAGED: new orders are refused" if state["engaged"] else "released: orders flow"
        print(f"kill switch {word} ({state['reason']}; by {state['changed_by']} at {state['changed_at']})")
        for h in history:
            print(f"  {h['changed_at']}  {'ENGAGED ' if h['engaged'] else 'released'}  {h['changed_by']}: "
                  f"{h['reason']}")
        if cfg.routing.risk.kill_switch:
            print("note: routing.risk.kill_switch is true in the profile: routers refuse orders regardless")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    risk = sub.add_parser("risk", help="pre-trade risk: the kill switch",
                          description="The kill switch is shared by every running router through the "
                                      "ODS's PostgreSQL: `kill` makes them refuse every new order within "
                                      "~0.25 s (cancels still pass); `release` lets orders flow again.")
    risk_sub = risk.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("kill", "engage the kill switch: refuse every new order"),
                         ("release", "release the kill switch"),
                         ("status", "show the kill switch and its recent changes")):
        p = risk_sub.add_parser(action, help=text, description=text)
        p.add_argument("--json", action="store_true", help="print JSON")
        if action != "status":
            p.add_argument("--reason", help="why (kept in the audit log)")
        else:
            p.add_argument("--history", type=int, default=10, metavar="N", help="changes to show (10)")
        p.set_defaults(func=cmd_risk)
