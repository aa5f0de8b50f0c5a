"""Hive tables over the landed zones, so analysts query raw data through the Thrift server.

One external, ``dt``-partitioned Parquet table per landed topic: ``raw.md_trades`` over
``<lake>/raw/md.trades/``. Columns are the landed files' Arrow schema (the event's canonical
columns plus Kafka provenance), translated once here. Partitions are added as the lander
creates ``dt=`` folders; ``ALTER TABLE ... ADD IF NOT EXISTS`` makes that idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import re

import pyarrow as pa

from tradelake.config import HiveConfig
from tradelake.hive_client import connect_hive

log = logging.getLogger(__name__)

_HIVE_TYPES = {
    pa.int64(): "BIGINT", pa.int32(): "INT", pa.float64(): "DOUBLE", pa.string(): "STRING",
    pa.binary(): "BINARY", pa.bool_(): "BOOLEAN", pa.date32(): "DATE",
}


def table_name(database: str, topic: str) -> str:
    """``md.trades`` -> ``raw.md_trades`` (Hive names allow letters, digits, underscores)."""
    return f"{database}.{re.sub(r'[^a-z0-9_]', '_', topic.lower())}"


def create_table_sql(table: str, schema: pa.Schema, location: str, comment: str) -> str:
    cols = []
    for f in schema:
        if f.type not in _HIVE_TYPES:
            raise ValueError(f"{table}: no Hive type for column {f.name} ({f.type})")
        doc = (f.metadata or {}).get(b"doc", b"").decode().replace("'", "\\'")
        cols.append(f"  `{f.name}` {_HIVE_TYPES[f.type]} COMMENT '{doc}'")
    return (f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n" + ",\n".join(cols) + "\n)\n"
            f"COMMENT '{comment}'\nPARTITIONED BY (dt DATE)\nSTORED AS PARQUET\n"
            f"LOCATION '{location}'")


class HiveRegistrar:
    """Creates the raw tables and registers their partitions through HiveServer2."""

    def __init__(self, hive: HiveConfig, database: str) -> None:
        self.hive = hive
        self.database = database
        self._conn = None
        self._known: set[tuple[str, str]] = set()

    def _cursor(self):
        if self._conn is None:
            self._conn = connect_hive(self.hive)
        return contextlib.closing(self._conn.cursor())

    def ensure_table(self, topic: str, schema: pa.Schema, location: str) -> str:
        table = table_name(self.database, topic)
        with self._cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
            cur.execute(create_table_sql(table, schema, location, f"landed from Kafka topic {topic}"))
        return table

    def add_partition(self, topic: str, dt: str) -> None:
        if (topic, dt) in self._known:
            return
        with self._cursor() as cur:
            cur.execute(f"ALTER TABLE {table_name(self.database, topic)} "
                        f"ADD IF NOT EXISTS PARTITION (dt='{dt}')")
        self._known.add((topic, dt))
        log.info("registered partition %s dt=%s", table_name(self.database, topic), dt)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
