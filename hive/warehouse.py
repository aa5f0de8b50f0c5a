"""Render and apply the warehouse DDL in ``hive/ddl/*.hql``.

The ``.hql`` files are the one definition of every warehouse database, table and view. They use
Hive's own variable syntax, ``${hivevar:name}``, so analysts can run them with beeline
(``--hivevar name=value``); here the values come from the profile (:func:`hive_vars`). The same
statements are executed by ``tradelake hive apply`` (through the Thrift server) and by each Spark
job for the tables it writes (:func:`ensure_tables`), so a job never depends on someone having
run ``hive apply`` first, and both always agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources

from tradelake.config import Config

VAR = re.compile(r"\$\{hivevar:([A-Za-z_][A-Za-z0-9_]*)\}")
CREATE = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:EXTERNAL\s+)?(DATABASE|TABLE|VIEW)\s+"
                    r"(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z0-9_.]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    file: str  # e.g. "20_curated.hql"
    kind: str  # DATABASE, TABLE or VIEW
    name: str  # database, or db.table
    sql: str


def table_name(topic: str) -> str:
    """Hive name of a landed topic's raw table: ``md.trades`` -> ``md_trades``."""
    return re.sub(r"[^a-z0-9_]", "_", topic.lower())


def hive_vars(cfg: Config) -> dict[str, str]:
    """Values for every ``${hivevar:...}`` the DDL uses, from the profile."""
    topics, wh = cfg.ingest.topics, cfg.warehouse
    return {
        "lake_root": cfg.lake.root.rstrip("/"), "raw_zone": cfg.lander.raw_zone,
        "quarantine_zone": cfg.lander.quarantine_zone,
        "raw_db": wh.raw_db, "curated_db": wh.curated_db, "features_db": wh.features_db,
        "trading_db": wh.trading_db,
        "trades_topic": topics.trades, "quotes_topic": topics.quotes, "bars_topic": topics.bars,
        "trades_table": table_name(topics.trades), "quotes_table": table_name(topics.quotes),
        "bars_table": table_name(topics.bars),
        "quarantine_topic": topics.quarantine, "quarantine_table": table_name(topics.quarantine),
        "orders_topic": cfg.routing.topics.orders, "executions_topic": cfg.routing.topics.executions,
        "rt_trades_table": cfg.speed.realtime_trades_table,
        "rt_quotes_table": cfg.speed.realtime_quotes_table,
    }


def render(text: str, variables: dict[str, str], where: str = "DDL") -> str:
    """Substitute ``${hivevar:name}``; an unknown name is an error, never left in the SQL."""
    missing = sorted({m.group(1) for m in VAR.finditer(text)} - set(variables))
    if missing:
        raise KeyError(f"{where}: no value for ${{hivevar:{missing[0]}}} "
                       f"(known: {', '.join(sorted(variables))})")
    return VAR.sub(lambda m: variables[m.group(1)], text)


def split_statements(text: str) -> list[str]:
    """Statements of a script: whole-line ``--`` comments dropped, split at a ``;`` ending a line.

    (A ``;`` inside a COMMENT string never ends a line in our files, which keeps this simple.)
    """
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    statements, current = [], []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().rstrip(";").strip())
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [s for s in statements if s]


def ddl_files() -> list[tuple[str, str]]:
    """(file name, text) of every ``hive/ddl/*.hql``, in name order (databases before views)."""
    folder = resources.files("hive") / "ddl"
    return sorted((f.name, f.read_text()) for f in folder.iterdir() if f.name.endswith(".hql"))


def statements(cfg: Config) -> list[Statement]:
    out = []
    variables = hive_vars(cfg)
    for name, text in ddl_files():
        for sql in split_statements(render(text, variables, f"hive/ddl/{name}")):
            match = CREATE.match(sql)
            if not match:
                raise ValueError(f"hive/ddl/{name}: expected CREATE DATABASE/TABLE/VIEW, got {sql[:60]!r}")
            out.append(Statement(name, match.group(1).upper(), match.group(2), sql))
    return out


def apply(cfg: Config, execute: Callable[[str], object],
          on_statement: Callable[[Statement], None] | None = None) -> list[Statement]:
    """Run every statement in order with ``execute`` (a cursor's or a SparkSession's)."""
    done = []
    for st in statements(cfg):
        execute(st.sql)
        done.append(st)
        if on_statement:
            on_statement(st)
    return done


def ensure_tables(spark, cfg: Config, tables: Iterable[str]) -> None:
    """Create ``tables`` (``db.table``) and their databases with Spark if missing, and (re)create
    the views over them, so a job's output is queryable as analysts expect after its first run."""
    wanted = set(tables)
    sts = statements(cfg)
    unknown = wanted - {s.name for s in sts if s.kind == "TABLE"}
    if unknown:
        raise KeyError(f"no DDL in hive/ddl for {sorted(unknown)}")
    databases = {t.split(".")[0] for t in wanted}
    for st in sts:
        if ((st.kind == "DATABASE" and st.name in databases) or (st.kind == "TABLE" and st.name in wanted)
                or (st.kind == "VIEW" and any(re.search(rf"\b{re.escape(t)}\b", st.sql) for t in wanted))):
            spark.sql(st.sql)
