"""The PostgreSQL fast path of a from-scratch ODS rebuild: COPY straight into the tick tables.

The store's own write path (``PostgresStore.write_trades``) COPYs into a staging table, then runs
``INSERT ... ON CONFLICT DO NOTHING``, and the statement triggers fold every write into the
continuous views: right for a live store that may see a tick twice and is read while it fills, but
a rebuild pays for both on every row. Measured on this machine (2 cores, loaded), the same 500k
ticks: COPY into a table with no key and no trigger ~330k rows/s, with the primary key ~117k, the
store path 62-69k, COPY with the triggers on and no key 85-110k. So, for a store that
``ods.rebuild.prepare`` made empty and that is fed unique keys (the replay's validator drops
repeated keys), ``PostgresBulkLoad``:

1. drops the primary keys of ``trades`` and ``quotes`` (a btree insert per row is about two
   thirds of a COPY's cost) and disables their continuous-view triggers;
2. COPYs each batch straight into its table in PostgreSQL's binary COPY format (``pgpq`` encodes
   the Arrow columns; the server parses no text: ~35% less time than CSV here), one connection
   per table (trades and quotes load in parallel). The CHECK constraints refuse bad rows as usual
   (``StoreRuleViolation``);
3. at the end, again one connection per table and both at once: puts the primary key back (one
   sort; a repeated key, which the validator rules out, fails here, loudly, instead of being
   skipped), enables the trigger and computes the table's views once from the loaded rows
   (``refresh_trade_views()`` / ``refresh_quote_views()``, migration V007: the triggers'
   aggregates over the whole table; for trades, then the market rules judged on every complete
   bar).

A rebuild that dies between 1 and 3 leaves the store without those keys, triggers or views (step 3
is one transaction per table, so it is done whole or not at all); ``prepare`` then refuses the
store if it holds market data, and ``--wipe`` always starts over from scratch.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from ods.postgres import _RuleErrors, conform
from tradelake.schemas import QUOTE, TRADE

if TYPE_CHECKING:
    import pyarrow as pa

    from tradelake.config import Config

TABLES = {"trades": TRADE, "quotes": QUOTE}
TRIGGERS = {"trades": "trades_continuous_views", "quotes": "quotes_continuous_views"}  # V002
REFRESH = {"trades": "refresh_trade_views", "quotes": "refresh_quote_views"}  # V007


class BulkLoadError(RuntimeError):
    """The tick tables could not be bulk-loaded; the message says why."""


class PostgresBulkLoad:
    def __init__(self, cfg: Config, schema: str) -> None:
        self.schema = schema
        self.conns = {table: psycopg2.connect(cfg.postgres.dsn(), application_name="tradelake-rebuild",
                                              options=f"-c search_path={schema} -c work_mem=64MB")
                      for table in TABLES}
        self.keys: dict[str, tuple[str, str]] = {}  # table -> (constraint name, its definition)

    def begin(self) -> None:
        """Drop the primary keys of the (empty) tick tables, remembering them, and disable their
        continuous-view triggers."""
        conn = self.conns["trades"]
        with conn, conn.cursor() as cur:
            for table in TABLES:
                cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table)))
                if cur.fetchone()[0]:
                    raise BulkLoadError(f"{self.schema}.{table} is not empty: a bulk load needs an empty "
                                        "store")
                cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE conrelid = %s::regclass AND contype = 'p'", (table,))
                row = cur.fetchone()
                if row is None:
                    raise BulkLoadError(f"{self.schema}.{table} has no primary key (an interrupted rebuild? "
                                        "rebuild with --wipe)")
                self.keys[table] = row
                cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}")
                            .format(sql.Identifier(table), sql.Identifier(row[0])))
                cur.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}")
                            .format(sql.Identifier(table), sql.Identifier(TRIGGERS[table])))

    def writer(self, table: str) -> Callable[[pa.Table], int]:
        """A function COPYing a batch into ``table`` on its own connection; returns its rows."""
        from pgpq import ArrowToPostgresBinaryEncoder

        conn, schema = self.conns[table], TABLES[table]
        statement = sql.SQL("COPY {} FROM STDIN WITH (FORMAT binary)").format(sql.Identifier(table))

        def copy(rows: pa.Table) -> int:
            rows = conform(rows, schema)
            encoder = ArrowToPostgresBinaryEncoder(rows.schema)
            buffer = io.BytesIO()
            buffer.write(encoder.write_header())
            for batch in rows.to_batches():
                buffer.write(encoder.write_batch(batch))
            buffer.write(encoder.finish())
            buffer.seek(0)
            with _RuleErrors(), conn, conn.cursor() as cur:
                cur.copy_expert(statement, buffer)
            return rows.num_rows

        return copy

    def end(self) -> None:
        """Per table, on its own connection, both at once: put the primary key back, enable the
        trigger, compute the table's views (module doc, step 3)."""
        with ThreadPoolExecutor(max_workers=len(self.keys) or 1, thread_name_prefix="bulk-end") as pool:
            for future in [pool.submit(self._finish_table, table) for table in self.keys]:
                future.result()  # the first failure is raised
        self.keys.clear()

    def _finish_table(self, table: str) -> None:
        """One transaction: if any step fails, the table stays as loaded (no key, trigger off,
        holding rows), which ``prepare`` refuses and ``--wipe`` clears."""
        conn, (name, definition) = self.conns[table], self.keys[table]
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SET LOCAL maintenance_work_mem = '256MB'")  # the key's sort in memory
                cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                    sql.Identifier(table), sql.Identifier(name)) + sql.SQL(definition))
                cur.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}")
                            .format(sql.Identifier(table), sql.Identifier(TRIGGERS[table])))
                cur.execute(sql.SQL("SELECT {}()").format(sql.Identifier(REFRESH[table])))
        except psycopg2.errors.UniqueViolation as exc:
            raise BulkLoadError(f"{self.schema}.{table}: a key was loaded twice, the rebuild is not "
                                f"valid: {exc.diag.message_detail or exc}") from exc
        except psycopg2.Error as exc:
            raise BulkLoadError(f"{self.schema}.{table}: keys and views could not be built at the end of "
                                f"the load ({exc.pgerror or exc}); rebuild with --wipe") from exc

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()
