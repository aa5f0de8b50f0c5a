"""``tradelake exchange``: run the simulated FIX exchange in the foreground.

Exit codes: 0 clean stop (Ctrl-C or SIGTERM), 2 bad usage, 3 the port is taken.
Also runnable without the CLI: ``python -m order_routing.exchange.acceptor [options]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time

from tradelake.config import ConfigError, load_config

EXIT_OK, EXIT_USAGE, EXIT_PORT_TAKEN = 0, 2, 3
log = logging.getLogger("order_routing.exchange")


def _marks(values: list[str]) -> dict[str, float]:
    marks = {}
    for value in values:
        symbol, sep, price = value.partition("=")
        try:
            marks[symbol.strip()] = float(price)
        except ValueError:
            sep = ""
        if not sep or not symbol.strip() or not marks[symbol.strip()] > 0:
            raise ConfigError(f"--mark {value!r}: expected SYMBOL=PRICE with PRICE > 0, e.g. AAPL=190.5")
    return marks


def _status(stats: dict[str, object]) -> str:
    on = stats["logged_on"]
    return (f"exchange: sessions {len(on)}/{stats['sessions']} logged on"
            f"{' (' + ','.join(on) + ')' if on else ''}, orders {stats['orders']}, fills {stats['fills']}, "
            f"rejects {stats['rejects']}, cancels {stats['cancels']}, replaces {stats['replaces']}, "
            f"marks {stats['marked']}")


def cmd_exchange(args: argparse.Namespace) -> int:
    from order_routing.exchange.acceptor import ExchangeError, SimExchange

    cfg = load_config(getattr(args, "profile", None))
    ex_cfg = cfg.routing.exchange
    symbols = tuple(s for s in (args.symbols or "").split(",") if s) or ex_cfg.symbols \
        or cfg.ingest.simulator_symbols
    clients = tuple(c for c in (args.clients or "").split(",") if c) or (cfg.routing.fix.sender_comp_id,)
    marks = _marks(args.mark)
    unknown = sorted(set(marks) - set(symbols))
    if unknown:
        raise ConfigError(f"--mark for unlisted symbol(s) {', '.join(unknown)} "
                          f"(listed: {', '.join(symbols)})")
    exchange = SimExchange(ex_cfg, cfg.var_dir, symbols=symbols, clients=clients, marks=marks,
                           port=args.port)
    try:
        exchange.start()
    except ExchangeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PORT_TAKEN if "in use" in str(exc) else 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # after quickfix is loaded: it resets SIGINT
        signal.signal(sig, lambda *_: stop.set())
    auth = "username/password required" if ex_cfg.username or ex_cfg.password else "no logon auth"
    log.info("exchange %s listening on port %d (all interfaces); clients %s; %d symbols; %s; "
             "store %s", ex_cfg.comp_id, exchange.port, ",".join(clients), len(symbols), auth,
             exchange.store_dir)
    if ex_cfg.marks_from_kafka and not args.no_kafka_marks:
        exchange.follow_kafka_marks(cfg.kafka.bootstrap, cfg.ingest.topics.trades)
    else:
        log.info("marks: %s (no Kafka)", ", ".join(f"{s}={p:g}" for s, p in marks.items()) or "none yet")
    started = time.monotonic()
    while not stop.wait(args.status_interval if args.status_interval > 0 else None):
        print(_status(exchange.stats()), file=sys.stderr, flush=True)
    exchange.stop()
    stats = exchange.stats()
    print(_status(stats), file=sys.stderr)
    print(json.dumps({"uptime_s": round(time.monotonic() - started, 1), **stats}))
    return EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=argparse.SUPPRESS,
                        help="config profile (default: $TRADELAKE_PROFILE or local)")
    parser.add_argument("--port", type=int, help="FIX port to listen on (default: routing.exchange.port)")
    parser.add_argument("--symbols", help="comma-separated listed symbols (default: routing.exchange."
                                          "symbols, else ingest.simulator_symbols); others are rejected")
    parser.add_argument("--clients", help="comma-separated SenderCompIDs allowed to log on, one session "
                                          "each (default: routing.fix.sender_comp_id)")
    parser.add_argument("--mark", action="append", default=[], metavar="SYM=PRICE",
                        help="seed a mark, e.g. --mark AAPL=190.5 (repeatable): the market maker quotes "
                             "around it, so market orders fill without a market-data feed")
    parser.add_argument("--no-kafka-marks", action="store_true",
                        help="do not follow ingest.topics.trades on Kafka for marks (marks then come from "
                             "--mark and trades between clients)")
    parser.add_argument("--status-interval", type=float, default=10.0, metavar="S",
                        help="seconds between status lines on stderr (0: none)")


DESCRIPTION = (
    "A FIX 4.4 acceptor (QuickFIX) with a price-time-priority limit order book per listed symbol: "
    "NewOrderSingle, OrderCancelRequest, OrderCancelReplaceRequest and OrderStatusRequest, answered "
    "with ExecutionReports and OrderCancelRejects. A market maker shows routing.exchange.liquidity_qty "
    "at mark -/+ half_spread_bps; marks come from Kafka trades, --mark and trades between clients. "
    "Limit prices must be on the tick grid and within price_band_pct of the mark. Sequence numbers "
    "and sent messages persist under <var_dir>/routing.exchange.store_dir (a restarted client is "
    "resent what it missed); order state is in memory. With routing.exchange.username/password set "
    "(password: TRADELAKE_ROUTING__EXCHANGE__PASSWORD) logons must carry them. Runs until Ctrl-C or "
    "SIGTERM, then prints a JSON summary on stdout.")
EPILOG = "Exit codes: 0 clean stop, 2 bad usage or configuration, 3 the port is already in use."


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("exchange", help="run the simulated FIX exchange (QuickFIX acceptor)",
                            description=DESCRIPTION, epilog=EPILOG)
    add_arguments(parser)
    parser.set_defaults(func=cmd_exchange)


def main(argv: list[str] | None = None) -> int:
    """``python -m order_routing.exchange.acceptor``: the same command without the CLI."""
    parser = argparse.ArgumentParser(prog="python -m order_routing.exchange.acceptor",
                                     description=DESCRIPTION, epilog=EPILOG)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        return cmd_exchange(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
