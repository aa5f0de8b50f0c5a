"""``tradelake route`` (the live path: market data -> engine -> risk -> route -> OMS) and
``tradelake oms status|recover`` (the OMS's state from its journal; recovery after a crash).

Exit codes: 0 done, 1 failed (or recovery left orders unanswered / anomalies), 2 usage,
3 a service is not reachable (the venue, Kafka), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from tradelake.config import load_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_UP, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, default=str))
        return
    print(
        f"orders {summary['orders']:,}: " + ", ".join(f"{k} {v:,}" for k, v in summary["by_status"].items())
    )
    if "reports" in summary:
        print(
            "reports this run: " + (", ".join(f"{k} {v:,}" for k, v in summary["reports"].items()) or "none")
        )
    for symbol, p in sorted(summary["positions"].items()):
        print(
            f"  {symbol:<8} qty {p['quantity']:>12,.2f}  avg {p['avg_price']:>10,.4f}  "
            f"realized {p['realized_pnl']:>12,.2f}"
        )
    pnl = summary["pnl"]
    print(
        f"pnl: realized {pnl['realized']:,.2f}, unrealized {pnl['unrealized']:,.2f}, "
        f"commission {pnl['commission']:,.2f}, total {pnl['total']:,.2f}; anomalies {summary['anomalies']}"
    )


def cmd_oms_status(args: argparse.Namespace) -> int:
    from order_routing.journal import journal_path, read_journal
    from order_routing.oms import OrderManager
    from order_routing.router import journal_dir

    cfg = load_config(args.profile)
    path = journal_path(journal_dir(cfg))
    records = [(kind, row) for _, kind, row in read_journal(path)]
    oms = OrderManager.replay(records, account=cfg.routing.account)
    by_status: dict[str, int] = {}
    for order in oms.orders.values():
        by_status[order.status] = by_status.get(order.status, 0) + 1
    positions = {
        s: {"quantity": p.quantity, "avg_price": p.avg_price, "realized_pnl": p.realized_pnl}
        for s, p in oms.positions().items()
        if p.quantity or p.realized_pnl
    }
    ods_mark = path.parent / "ods.shipped"
    summary = {
        "journal": str(path),
        "records": len(records),
        "orders": len(oms.orders),
        "by_status": dict(sorted(by_status.items())),
        "open": len(oms.open_orders()),
        "positions": positions,
        "pnl": oms.pnl(),
        "anomalies": len(oms.anomalies),
        "ods_shipped_seq": int(ods_mark.read_text()) if ods_mark.exists() else 0,
    }
    if not args.json:
        print(
            f"journal {path}: {len(records):,} records, {summary['open']} open order(s), "
            f"ODS shipped up to seq {summary['ods_shipped_seq']:,}"
        )
    _print_summary(summary, args.json)
    return EXIT_OK


def _open_router(cfg, args):
    from order_routing.router import Router, build_route

    route = build_route(cfg, getattr(args, "route", None))
    router = Router(cfg, route, ship=not args.no_ship)
    try:
        router.connect(args.connect_timeout)
    except Exception as exc:  # noqa: BLE001 - reported with its cause, the router closed
        router.close()
        _say(f"error: cannot reach the venue through the {route.venue} route: {exc}")
        return None
    return router


def cmd_oms_recover(args: argparse.Namespace) -> int:
    cfg = load_config(args.profile)
    started = time.monotonic()
    router = _open_router(cfg, args)
    if router is None:
        return EXIT_NOT_UP
    try:
        _say(
            f"replayed {router.recovered_records:,} journal records; asking the venue about "
            f"{len(router.oms.open_orders())} open order(s)"
        )
        result = router.reconcile(args.timeout)
        time.sleep(args.settle)  # resent reports still in flight after the status answers
        summary = router.summary() | {"reconcile": result, "seconds": round(time.monotonic() - started, 2)}
    finally:
        router.close()
    summary["journal_lost"] = lost = router.journal.unwritten  # after close: never reached the disk
    _print_summary(summary, args.json)
    ok = not result["unanswered"] and summary["anomalies"] == 0 and not lost
    if not args.json:
        _say(
            f"recovery {'complete' if ok else 'INCOMPLETE'}: {result['asked']} asked, "
            f"{len(result['unanswered'])} unanswered, {summary['anomalies']} anomalies, "
            f"{lost} journal record(s) not written ({summary['seconds']} s)"
        )
    return EXIT_OK if ok else EXIT_FAILED


def cmd_route(args: argparse.Namespace) -> int:
    import dataclasses

    from intelligence.engine import Engine, LiveClock
    from intelligence.strategies import build_strategy
    from order_routing.engine_bridge import OmsExecution
    from order_routing.live_source import KafkaMarketSource

    cfg = load_config(args.profile)
    icfg = cfg.intelligence
    if args.order_qty:
        icfg = dataclasses.replace(
            icfg, backtest=dataclasses.replace(icfg.backtest, order_qty=args.order_qty)
        )
    symbols = [s.strip() for s in (args.symbols or "").split(",") if s.strip()] or None
    predictor = None
    if args.strategy in ("ml_signal", "selector"):
        from intelligence.commands import _predictor

        predictor = _predictor(cfg, icfg)  # model_version 0: the registry's latest
    try:
        strategy = build_strategy(args.strategy, icfg, symbols=symbols, predictor=predictor)
    except (LookupError, ValueError, OSError) as exc:
        _say(f"error: cannot build {args.strategy}: {exc}")
        return EXIT_USAGE
    router = _open_router(cfg, args)
    if router is None:
        return EXIT_NOT_UP
    topic = cfg.ingest.topics.quotes if args.mode == "quotes" else cfg.ingest.topics.trades
    source = KafkaMarketSource(
        cfg.kafka.bootstrap,
        topic,
        mode=args.mode,
        interval=args.interval,
        symbols=symbols,
        from_beginning=args.from_beginning,
        idle_timeout_s=args.idle_exit,
        max_events=args.max_events,
        client=cfg.routing.market_data_client,
    )
    execution = OmsExecution(router)
    engine = Engine(LiveClock(), execution=execution)
    engine.add_strategy(strategy)
    curve = _EquityCurve(router, args.strategy, icfg.backtest.initial_cash)
    engine.subscribe_steps(curve.on_step)
    started, status = time.monotonic(), _StatusLine(router, execution, source)
    code = EXIT_OK
    try:
        engine.run(_with_status(execution.events(source), status))
        engine.finish()
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    finally:
        status.final()
        router.close()
    chart = None
    if curve.result.ts and not args.no_chart:
        name = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        chart = curve.save(cfg.var_dir / "reports" / "route" / f"{args.strategy}-{name}.png")
        _say(f"equity curve: {chart}")
    run_orders = [o for o in router.oms.orders.values() if o.cl_ord_id.startswith(execution.prefix)]
    run_status: dict[str, int] = {}
    for order in run_orders:
        run_status[order.status] = run_status.get(order.status, 0) + 1
    summary = router.summary() | {
        "run": {
            "prefix": execution.prefix,
            "orders": len(run_orders),
            "by_status": dict(sorted(run_status.items())),
        },
        "tick_to_order_ms": execution.latency_summary(),
        "chart": str(chart) if chart else None,
        "events": source.events,
        "ticks": source.ticks,
        "rejected_market_data": dict(source.rejected),
        "engine_rejections": len(engine.rejections),
        "seconds": round(time.monotonic() - started, 2),
        "journal_lost": router.journal.unwritten,  # after close: records that never reached the disk
    }
    _print_summary(summary, args.json)
    if summary["journal_lost"]:
        _say(f"error: {summary['journal_lost']:,} journal record(s) never reached the disk (see the log); "
             f"the next start asks the venue about the orders the journal leaves open")
        code = EXIT_FAILED if code == EXIT_OK else code
    return code


class _EquityCurve:
    """Account equity (initial cash + the OMS's realized and marked P&L) at each engine step."""

    def __init__(self, router, strategy: str, initial_cash: float) -> None:
        from intelligence.backtest import BacktestResult

        self.router, self.initial_cash = router, initial_cash
        self.result = BacktestResult(strategy, 0, initial_cash)

    def on_step(self, ts: int) -> None:
        self.result.ts.append(ts)
        self.result.equity.append(self.initial_cash + self.router.oms.pnl()["total"])

    def save(self, path):
        from intelligence.results import save_chart

        title = f"tradelake route: {self.result.strategy} (live, marked to bars)"
        return save_chart(self.result, path, title)


class _StatusLine:
    """One line on stderr, rewritten about once a second while the route runs."""

    def __init__(self, router, execution, source) -> None:
        self.router, self.execution, self.source = router, execution, source
        self.next_at = time.monotonic() + 1.0
        self.tty = sys.stderr.isatty()

    def text(self) -> str:
        oms, pnl, ex = self.router.oms, self.router.oms.pnl(), self.execution
        kill = "KILLED" if self.router.kill_switch.engaged else "ok"
        unwritten = self.router.journal.unwritten
        journal = f" | JOURNAL FAILING: {unwritten:,} record(s) not on disk" if unwritten else ""
        return (
            f"route: events {self.source.events:,} | orders {ex.submitted:,} "
            f"(risk-rejected {ex.risk_rejected:,}, not sent {ex.not_sent:,}) | "
            f"fills {ex.fills:,} | "
            f"open {len(oms.open_orders())} | pnl {pnl['total']:,.2f} | kill switch {kill}{journal}"
        )

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self.next_at:
            self.next_at = now + (1.0 if self.tty else 10.0)
            if self.router.journal.unwritten:  # the disk may be back with no new record to say so
                self.router.journal.flush_unwritten()
            print(
                ("\r" if self.tty else "") + self.text(),
                end="" if self.tty else "\n",
                file=sys.stderr,
                flush=True,
            )

    def final(self) -> None:
        print(("\r" if self.tty else "") + self.text(), file=sys.stderr, flush=True)


def _with_status(events, status: _StatusLine):
    for event in events:
        yield event
        status.tick()


def register(sub: argparse._SubParsersAction) -> None:
    from intelligence.strategies import STRATEGIES

    route = sub.add_parser(
        "route",
        help="live trading: market data -> strategy -> risk -> route -> OMS",
        description="Runs a strategy on live market data from Kafka and routes its "
        "orders through pre-trade risk to the profile's route (FIX or IB), "
        "journaling every order and fill (Kafka -> trading.*, and the ODS). "
        "A live status line on stderr; a summary at the end.",
    )
    route.add_argument("--strategy", required=True, choices=STRATEGIES)
    route.add_argument("--symbols", help="comma-separated symbols (default: all on the feed)")
    route.add_argument(
        "--mode",
        choices=("bars", "quotes"),
        default="bars",
        help="bars: bars built from trades (default); quotes: every quote is an event",
    )
    route.add_argument("--interval", default="1m", help="bar interval in bars mode (1m)")
    route.add_argument(
        "--order-qty", type=float, help="units per full position (intelligence.backtest.order_qty)"
    )
    route.add_argument("--from-beginning", action="store_true", help="replay the topic from its start")
    route.add_argument(
        "--idle-exit", type=float, metavar="S", help="stop after S seconds without market data"
    )
    route.add_argument("--max-events", type=int, metavar="N", help="stop after N events")
    route.add_argument("--no-chart", action="store_true", help="no equity-curve PNG (var/reports/route/)")
    _router_arguments(route)
    route.set_defaults(func=cmd_route)

    oms = sub.add_parser("oms", help="the order management system: status, crash recovery")
    oms_sub = oms.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = oms_sub.add_parser("status", help="orders and positions from the journal (no venue contact)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_oms_status)
    recover = oms_sub.add_parser(
        "recover",
        help="rebuild the OMS from its journal and reconcile with the venue",
        description="Replays the journal, reconnects (the venue resends what was "
        "missed), asks the venue for the status of every open order, "
        "ships the journal to Kafka and the ODS, prints the result.",
    )
    recover.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for status answers (30)"
    )
    recover.add_argument("--settle", type=float, default=0.5, help="seconds to let late reports arrive (0.5)")
    _router_arguments(recover)
    recover.set_defaults(func=cmd_oms_recover)


def _router_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--route", choices=("fix", "ib"), help="override routing.route")
    parser.add_argument(
        "--connect-timeout", type=float, default=30.0, help="seconds to wait for the logon (30)"
    )
    parser.add_argument("--no-ship", action="store_true", help="do not ship the journal to Kafka and the ODS")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
