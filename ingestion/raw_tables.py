"""Hive tables over the landed zones, so analysts query raw data through the Thrift server.

The tables are defined once, in ``hive/ddl/10_raw.hql``: one external, ``dt``-partitioned Parquet
table per landed topic (``raw.md_trades`` over ``<lake>/raw/md.trades/``, the event's columns
plus Kafka provenance) and one per kind of historical file (``raw.files_trade`` over
``<lake>/raw/files.trade/``). The OMS journal's topics land in the raw zone too, but their tables
are the warehouse's ``trading.orders`` and ``trading.executions`` (``hive/ddl/40_trading.hql``).
Partitions are added as the lander creates ``dt=`` folders;
``ALTER TABLE ... ADD IF NOT EXISTS`` makes that idempotent.
"""

from __future__ import annotations

import contextlib
import logging

from hive.warehouse import statements, table_name
from tradelake.config import Config
from tradelake.hive_client import connect_hive

log = logging.getLogger(__name__)


class HiveRegistrar:
    """Creates the raw tables (from the warehouse DDL) and registers their partitions."""

    def __init__(self, cfg: Config) -> None:
        self.hive = cfg.hive
        self.database = cfg.warehouse.raw_db
        ddl = statements(cfg)
        self._database_sql = {s.name: s.sql for s in ddl if s.kind == "DATABASE"}
        self._table_sql = {s.name: s.sql for s in ddl if s.kind == "TABLE"}
        trading = cfg.warehouse.trading_db
        self._tables = {cfg.routing.topics.orders: f"{trading}.orders",
                        cfg.routing.topics.executions: f"{trading}.executions"}
        self._conn = None
        self._created: set[str] = set()
        self._known: set[tuple[str, str]] = set()

    def table(self, topic: str) -> str:
        """``md.trades`` -> ``raw.md_trades`` (the journal's topics: ``trading.*``); a topic
        without DDL is an error."""
        name = self._tables.get(topic) or f"{self.database}.{table_name(topic)}"
        if name not in self._table_sql:
            raise KeyError(f"no table for topic {topic!r} in hive/ddl/*.hql ({name})")
        return name

    def _cursor(self):
        if self._conn is None:
            self._conn = connect_hive(self.hive)
        return contextlib.closing(self._conn.cursor())

    def ensure_table(self, topic: str) -> str:
        table = self.table(topic)
        if table not in self._created:
            with self._cursor() as cur:
                cur.execute(self._database_sql[table.split(".")[0]])
                cur.execute(self._table_sql[table])
            self._created.add(table)
        return table

    def add_partition(self, topic: str, dt: str) -> None:
        if (topic, dt) in self._known:
            return
        with self._cursor() as cur:
            cur.execute(f"ALTER TABLE {self.table(topic)} ADD IF NOT EXISTS PARTITION (dt='{dt}')")
        self._known.add((topic, dt))
        log.info("registered partition %s dt=%s", self.table(topic), dt)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
