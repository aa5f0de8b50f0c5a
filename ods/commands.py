"""``tradelake ods migrate|status|listen``: the operational data store's schema and its live
complex events."""

from __future__ import annotations

import argparse
import json
import sys
import time

from tradelake.config import load_config

# Tables `ods status` counts, in the order a reader meets them.
STATUS_TABLES = ("trades", "quotes", "bars_1m", "last_trades", "latest_quotes", "rolling_volume",
                 "orders", "executions", "positions", "signals", "risk_limits", "alerts")


def cmd_migrate(args: argparse.Namespace) -> int:
    from ods.store import open_store

    cfg = load_config(args.profile)
    if cfg.ods.store == "hbase":
        store = open_store(cfg)
        store.ensure_schema()
        store.close()
        print(f"HBase operational store ready (tables {cfg.hbase.table_prefix}_*)")
        return 0
    import psycopg2

    from ods.migrate import applied, migrate

    schema = args.schema or cfg.ods.schema
    started = time.monotonic()
    conn = psycopg2.connect(cfg.postgres.dsn(), application_name="tradelake-ods-migrate")
    try:
        done = migrate(conn, cfg.ods, schema)
        history = applied(conn, schema)
    finally:
        conn.close()
    for m in done:
        print(f"  applied V{m.version:03d}__{m.name}", file=sys.stderr)
    print(f"schema {schema} on {cfg.postgres.public_dsn()}: {len(done)} migration(s) applied, "
          f"{len(history)} in all, now at V{history[-1][0]:03d} "
          f"({time.monotonic() - started:.2f}s; settings and order states synced from conf/)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import psycopg2
    from psycopg2 import sql

    from ods.migrate import applied, migrations

    cfg = load_config(args.profile)
    if cfg.ods.store == "hbase":
        return _hbase_status(cfg)
    schema = args.schema or cfg.ods.schema
    conn = psycopg2.connect(cfg.postgres.dsn(), application_name="tradelake-ods-status")
    try:
        history = applied(conn, schema)
        pending = [m for m in migrations() if m.version not in {v for v, _, _ in history}]
        print(f"schema {schema}: {len(history)} migration(s) applied, {len(pending)} pending"
              + (" (run `tradelake ods migrate`)" if pending else ""))
        if not history:
            return 1
        with conn, conn.cursor() as cur:
            for table in STATUS_TABLES:
                cur.execute(sql.SQL("SELECT count(*) FROM {}.{}")
                            .format(sql.Identifier(schema), sql.Identifier(table)))
                print(f"  {table:<15} {cur.fetchone()[0]:>12,} rows")
    finally:
        conn.close()
    return 0 if not pending else 1


def _hbase_status(cfg) -> int:
    import happybase

    from hbase.store import TABLES

    conn = happybase.Connection(cfg.hbase.thrift_host, cfg.hbase.thrift_port)
    try:
        present = {t.decode() for t in conn.tables()}
    finally:
        conn.close()
    wanted = [f"{cfg.hbase.table_prefix}_{name}" for name in TABLES]
    missing = [t for t in wanted if t not in present]
    print(f"HBase operational store at {cfg.hbase.thrift_host}:{cfg.hbase.thrift_port}: "
          f"{len(wanted) - len(missing)} of {len(wanted)} tables present"
          + (f"; missing {', '.join(missing)} (run `tradelake ods migrate`)" if missing else ""))
    return 1 if missing else 0


def cmd_listen(args: argparse.Namespace) -> int:
    from ods.alerts import format_alert, listen

    cfg = load_config(args.profile)
    print(f"listening on {cfg.ods.alerts_channel} at {cfg.postgres.public_dsn()} "
          "(Ctrl-C to stop)", file=sys.stderr, flush=True)
    count = 0
    for alert in listen(cfg, timeout_s=args.timeout, max_alerts=args.count):
        count += 1
        print(format_alert(alert) if args.format == "text" else json.dumps(alert),
              flush=True)
    print(f"{count} alert(s)", file=sys.stderr)
    return 0


def cmd_checksum(args: argparse.Namespace) -> int:
    """Per-table order-independent checksums (ods/checksum.py): compare a rebuilt store with the
    live one, or two stores."""
    from ods.checksum import ARRIVAL_DEPENDENT, TABLES, store_checksums
    from ods.store import open_store

    cfg = load_config(args.profile)
    tables = [t.strip() for t in args.tables.split(",")] if args.tables else None
    if tables and (unknown := sorted(set(tables) - set(TABLES))):
        print(f"error: no checksum for {unknown}; tables: {', '.join(TABLES)}", file=sys.stderr)
        return 2
    try:
        store = open_store(cfg)
    except Exception as exc:  # noqa: BLE001 - psycopg2 / thrift: the store did not answer
        print(f"error: the {cfg.ods.store} store is not reachable ({exc}); is the stack up?", file=sys.stderr)
        return 3
    started = time.monotonic()
    try:
        sums = store_checksums(store, tables)
    except Exception as exc:  # noqa: BLE001 - e.g. a schema that was never migrated
        print(f"error: {repr(store)}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        print(json.dumps({"store": repr(store), **{t: c.as_dict() for t, c in sums.items()}}))
        return 0
    print(f"{repr(store)} ({time.monotonic() - started:.2f}s)")
    for table, c in sums.items():
        note = "  (depends on arrival order)" if table in ARRIVAL_DEPENDENT else ""
        print(f"  {table:<15} {c.rows:>12,} rows  checksum {c.digest}{note}")
    return 0


def utc_ns(text: str) -> int:
    """ISO date or date-time to UTC ns; a time without an offset is UTC."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or date-time (e.g. 2026-01-05 or 2026-01-05T14:30)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def cmd_bars(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from ods.serving import merged_bars
    from tradelake.text_table import format_table

    cfg = load_config(args.profile)
    if args.start >= args.end:
        print("error: --from must be before --to", file=sys.stderr)
        return 2
    started = time.monotonic()
    served = merged_bars(cfg, args.symbol, args.start, args.end, args.interval)
    rows = served.bars.to_pylist()
    columns = served.bars.column_names
    if args.format == "json":
        for row in rows:
            print(json.dumps(row))
    elif args.format == "csv":
        print(",".join(columns))
        for row in rows:
            print(",".join("" if row[c] is None else str(row[c]) for c in columns))
    else:
        shown = [["" if r[c] is None else (datetime.fromtimestamp(r[c] / 1e9, UTC)
                  .strftime("%Y-%m-%d %H:%M") if c == "ts" else r[c]) for c in columns]
                 for r in rows]
        print(format_table(columns, shown))
    mark = ("none yet" if served.watermark_ns is None else
            datetime.fromtimestamp(served.watermark_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M UTC"))
    counts = served.counts
    print(f"{len(rows)} {args.interval} bar(s) of {args.symbol}: {counts['batch']} from the batch "
          f"view, {counts['realtime']} from the real-time view (batch watermark {mark}; "
          f"{time.monotonic() - started:.2f}s)", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    bars = sub.add_parser(
        "bars", help="bars of a symbol: batch view up to the watermark, real-time view after it",
        description="Answers from the Hive batch view (curated.bars) before the batch watermark "
                    "(the end of the newest day the batch layer has written) and from the "
                    "operational store's real-time bars from it on: no gap, no double count. "
                    "Times are ISO dates or date-times, UTC unless they carry an offset. "
                    "Example: tradelake bars AAPL --from 2026-01-09T20:50 --to 2026-01-10 "
                    "--interval 1m")
    bars.add_argument("symbol")
    bars.add_argument("--from", dest="start", type=utc_ns, required=True,
                      help="first bar open time included")
    bars.add_argument("--to", dest="end", type=utc_ns, required=True,
                      help="bars opening before this time")
    bars.add_argument("--interval", choices=["1m", "5m", "1h", "1d"], default="1m")
    bars.add_argument("--format", choices=["table", "csv", "json"], default="table")
    bars.set_defaults(func=cmd_bars)

    ods = sub.add_parser("ods", help="the operational data store (PostgreSQL or HBase)",
                         description="Schema migrations, status and live complex events of the "
                                     "operational data store selected by ods.store.")
    ods_sub = ods.add_subparsers(dest="ods_command", required=True, metavar="COMMAND")
    migrate = ods_sub.add_parser(
        "migrate", help="apply pending schema migrations (idempotent)",
        description="Applies ods/migrations/V*.sql in order, each once, in one transaction, then "
                    "syncs settings (ods.rules) and the order state graph. With ods.store=hbase "
                    "it creates the HBase tables instead.")
    migrate.add_argument("--schema", help="PostgreSQL schema (default: ods.schema)")
    migrate.set_defaults(func=cmd_migrate)
    status = ods_sub.add_parser("status", help="migrations applied and row counts",
                                description="Exit 0 if the schema is fully migrated, 1 if not.")
    status.add_argument("--schema", help="PostgreSQL schema (default: ods.schema)")
    status.set_defaults(func=cmd_status)
    checksum = ods_sub.add_parser(
        "checksum", help="per-table order-independent checksums of the store",
        description="Row count and the sum mod 2^64 of a 64-bit hash of each row's canonical text, per "
                    "table (ods/checksum.py): equal checksums mean equal rows whatever order they "
                    "arrived in, and PostgreSQL and HBase stores of the same ticks agree. Aggregated "
                    "doubles (bar volume, pv) are compared to ~9.6 significant digits, as their last "
                    "bits depend on how ticks were batched. Exit 3 if the store is not reachable.")
    checksum.add_argument("--tables", help="comma-separated (default: every table of the store kind)")
    checksum.add_argument("--json", action="store_true", help="one JSON object")
    checksum.set_defaults(func=cmd_checksum)
    listen = ods_sub.add_parser(
        "listen", help="print complex events (alerts) live as they are raised",
        description="LISTENs on ods.alerts_channel: price moves beyond k sigma, volume surges, "
                    "VWAP crosses and position-limit breaches, one line each.")
    listen.add_argument("--count", type=int, help="stop after this many alerts")
    listen.add_argument("--timeout", type=float, help="stop after this many seconds")
    listen.add_argument("--format", choices=["text", "json"], default="text",
                        help="one line of text (default) or one JSON object per alert")
    listen.set_defaults(func=cmd_listen)
