"""``tradelake hive apply`` and ``tradelake sql``: the warehouse DDL and analysts' queries,
through the Spark Thrift Server (the HiveServer2 protocol, as beeline and pyhive use it)."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import time
from pathlib import Path

from tradelake.config import load_config
from tradelake.text_table import format_table


def cmd_hive_apply(args: argparse.Namespace) -> int:
    from hive.warehouse import apply, statements
    from tradelake.hive_client import connect_hive

    cfg = load_config(args.profile)
    if args.dry_run:
        for st in statements(cfg):
            print(f"-- {st.file}: {st.kind} {st.name}\n{st.sql};\n")
        return 0
    started = time.monotonic()
    counts: dict[str, int] = {}

    def said(st) -> None:
        counts[st.kind] = counts.get(st.kind, 0) + 1
        print(f"  {st.file:<16} {st.kind:<8} {st.name}", file=sys.stderr, flush=True)

    print(f"tradelake hive apply: hive/ddl/*.hql -> {cfg.hive.host}:{cfg.hive.port} "
          f"(lake root {cfg.lake.root})", file=sys.stderr)
    conn = connect_hive(cfg.hive)
    try:
        with contextlib.closing(conn.cursor()) as cur:
            apply(cfg, cur.execute, on_statement=said)
    finally:
        conn.close()
    print(f"applied {sum(counts.values())} statements in {time.monotonic() - started:.1f}s: "
          + ", ".join(f"{n} {k.lower()}{'s' if n != 1 else ''}" for k, n in sorted(counts.items()))
          + " (idempotent: re-running changes nothing)", file=sys.stderr)
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from tradelake.hive_client import connect_hive

    if bool(args.query) == bool(args.file):
        print("error: give either a query or --file", file=sys.stderr)
        return 2
    query = Path(args.file).read_text() if args.file else args.query
    query = "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("--"))
    query = query.strip().rstrip(";").strip()
    if not query:
        print("error: the query is empty", file=sys.stderr)
        return 2
    cfg = load_config(args.profile)
    started = time.monotonic()
    conn = connect_hive(cfg.hive)
    try:
        with contextlib.closing(conn.cursor()) as cur:
            cur.execute(query)
            columns = [d[0].split(".")[-1] for d in cur.description or []]
            rows = cur.fetchall() if columns else []
    finally:
        conn.close()
    elapsed_ms = (time.monotonic() - started) * 1000
    if args.format == "json":
        for row in rows:
            print(json.dumps(dict(zip(columns, row, strict=True)), default=str))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif columns:
        print(format_table(columns, rows))
    print(f"{len(rows)} row{'s' if len(rows) != 1 else ''} in {elapsed_ms:.0f} ms "
          f"({cfg.hive.host}:{cfg.hive.port})", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    hive = sub.add_parser("hive", help="the warehouse DDL (hive/ddl/*.hql)",
                          description="Databases raw, curated, features and trading: external, "
                                      "partitioned Parquet tables over the lake, plus analysts' views.")
    hive_sub = hive.add_subparsers(dest="hive_command", required=True, metavar="COMMAND")
    apply = hive_sub.add_parser(
        "apply", help="create every database, table and view (idempotent)",
        description="Renders hive/ddl/*.hql with the profile's ${hivevar:...} values and runs each "
                    "statement through the Thrift server. Tables are CREATE ... IF NOT EXISTS and "
                    "views CREATE OR REPLACE, so re-running changes nothing.")
    apply.add_argument("--dry-run", action="store_true", help="print the rendered statements only")
    apply.set_defaults(func=cmd_hive_apply)

    sql = sub.add_parser("sql", help="run a Hive SQL query through the Thrift server, print a table",
                         description="Example: tradelake sql \"SELECT * FROM curated.daily_vwap "
                                     "LIMIT 5\"   or   tradelake sql --file hive/queries/daily_vwap.sql")
    sql.add_argument("query", nargs="?", help="the SQL text")
    sql.add_argument("--file", help="read the query from a file (e.g. hive/queries/*.sql)")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table",
                     help="table (default), csv, or one JSON object per row")
    sql.set_defaults(func=cmd_sql)
