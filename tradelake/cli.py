"""``tradelake``: one command, a subcommand per job. Every subcommand has ``--help``.

Exit codes: 0 success; 1 a job or service failed (the message says which and why);
2 bad usage or configuration; 3 ``stack status``: some service is not up; 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence

from tradelake.config import ConfigError, load_config, masked_dict

# Layers add their subcommands here (tradelake/ itself imports no layer at module level).
LAYER_COMMANDS = ("ingestion.commands", "hive.commands", "spark_jobs.commands", "ods.commands",
                  "intelligence.commands_models", "intelligence.commands", "order_routing.commands",
                  "order_routing.commands_oms", "order_routing.exchange.commands",
                  "ingestion.replay_commands")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_UP, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

log = logging.getLogger("tradelake")


def _say(service: str, message: str) -> None:
    print(f"  {service:<10} {message}", file=sys.stderr, flush=True)


def _fmt_mb(rss: dict[str, float]) -> str:
    return ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()) or "-"


def cmd_stack_up(args: argparse.Namespace) -> int:
    from tradelake.stack.manager import Stack

    cfg = load_config(args.profile)
    stack = Stack(cfg)
    print(f"tradelake stack up (profile {cfg.profile}, state in {cfg.var_dir})", file=sys.stderr)
    report = stack.up(tuple(args.with_services), on_event=_say)
    status = stack.status(tuple(args.with_services))
    print(f"\nstack up in {report.total_seconds:.1f}s", file=sys.stderr)
    total_mb = 0.0
    for name, entry in status.items():
        if not isinstance(entry, dict):
            continue
        total_mb += sum(entry.get("rss_mb", {}).values())
        where = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("up", "rss_mb", "error"))
        state = "up" if entry["up"] else "DOWN"
        print(f"  {name:<9} {state:<5} {where}   [{_fmt_mb(entry.get('rss_mb', {}))}]")
    print(f"  lake root {status['lake_root']}")
    print(f"  memory    {total_mb / 1024:.2f} GiB RSS in all")
    print("stop with: tradelake stack down   (add --purge to delete data)")
    return EXIT_OK if all(e["up"] for e in status.values() if isinstance(e, dict)) else EXIT_FAILED


def cmd_stack_down(args: argparse.Namespace) -> int:
    from tradelake.stack.manager import Stack

    stopped = Stack(load_config(args.profile)).down(purge=args.purge, on_event=_say)
    print(f"stopped {len(stopped)} process(es)" + (": " + ", ".join(stopped) if stopped else ""))
    return EXIT_OK


def cmd_stack_status(args: argparse.Namespace) -> int:
    from tradelake.stack.manager import Stack

    status = Stack(load_config(args.profile)).status(tuple(args.with_services))
    services = {k: v for k, v in status.items() if isinstance(v, dict)}
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        for name, entry in services.items():
            where = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("up", "rss_mb"))
            print(f"{name:<9} {'up' if entry['up'] else 'DOWN':<5} {where}")
        print(f"lake_root {status['lake_root']}")
    return EXIT_OK if all(e["up"] for e in services.values()) else EXIT_NOT_UP


def cmd_config_show(args: argparse.Namespace) -> int:
    cfg = load_config(args.profile)
    if args.json:
        print(json.dumps(masked_dict(cfg), indent=2, default=str))
    else:
        print(cfg)  # secrets are excluded from repr
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from tradelake.demo import run_demo

    return run_demo(load_config(args.profile), args.profile, args.strategy)


def cmd_smoke(args: argparse.Namespace) -> int:
    from tradelake.smoke import run_smoke

    result = run_smoke(load_config(args.profile), table=args.table, rows=args.rows)
    print(json.dumps(result, indent=2))
    return EXIT_OK if result["ok"] else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradelake",
        description="tradelake: a lambda-architecture data lake for algorithmic trading.",
        epilog="Profiles live in conf/<profile>.yaml; override keys with TRADELAKE_<SECTION>__<KEY>.",
    )
    parser.add_argument("--profile", help="config profile (default: $TRADELAKE_PROFILE or local)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = sub.add_parser("stack", help="the local single-node service stack",
                           description="Manage the single-node stack under var/.")
    stack_sub = stack.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = stack_sub.add_parser("up", help="start every service and wait until each answers",
                              description="Idempotent: services already running are left alone.")
    up.add_argument("--with", dest="with_services", action="append", default=[],
                    choices=["flume"], help="also start an optional service (repeatable)")
    up.set_defaults(func=cmd_stack_up)
    down = stack_sub.add_parser("down", help="stop exactly the processes the stack started",
                                description="Keeps data unless --purge is given.")
    down.add_argument("--purge", action="store_true",
                      help="also delete data, logs and generated config (keeps fetched jars)")
    down.set_defaults(func=cmd_stack_down)
    status = stack_sub.add_parser("status", help="health of each service",
                                  description="Exit 0 if every service is up, 3 otherwise.")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--with", dest="with_services", action="append", default=[],
                        choices=["flume"], help="also report an optional service")
    status.set_defaults(func=cmd_stack_status)

    config = sub.add_parser("config", help="inspect the resolved configuration")
    config_sub = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = config_sub.add_parser("show", help="print the profile after environment overrides",
                                 description="Secrets are masked.")
    show.add_argument("--json", action="store_true", help="as JSON")
    show.set_defaults(func=cmd_config_show)

    smoke = sub.add_parser(
        "smoke", help="spark-submit the smoke job, then read its table through the Thrift server",
        description="Proves jobs and analysts share one metastore: spark-submit creates a Hive "
                    "table on HDFS, pyhive reads it back through the Spark Thrift Server.")
    smoke.add_argument("--table", default="default.tradelake_smoke", help="table to (re)create")
    smoke.add_argument("--rows", type=int, default=1000, help="rows to write")
    smoke.set_defaults(func=cmd_smoke)
    demo = sub.add_parser(
        "demo", help="the whole system end to end on the local stack, then a reconciled report",
        description="stack up -> a simulated market (10 symbols) -> Kafka -> the raw zone -> batch ETL, "
                    "bars, features -> model training -> a live day: exchange + router (FIX) + the speed "
                    "layer -> the order journal into the warehouse -> a report (counts reconciled per "
                    "stage, tick->order latency, P&L and equity PNG, an analyst query). `make demo` runs it.")
    demo.add_argument("--strategy", default="ml_signal",
                      help="the live day's strategy (default ml_signal: the model trained in the demo)")
    demo.set_defaults(func=cmd_demo)
    for module in LAYER_COMMANDS:  # each layer registers its own subcommands
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kafka", "py4j", "thrift", "pyhive", "urllib3", "hdfs"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        from intelligence.sources import SourceError
        from tradelake.stack.process import StackError

        if isinstance(exc, StackError | SourceError):  # says what is missing: no traceback
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
