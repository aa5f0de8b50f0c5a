"""The PostgreSQL operational store (the default): ``ods.store.OperationalStore`` over the schema
that ``ods/migrations/`` builds. The continuous views, the order state graph, the position rules
and the complex-event rules all live in the database; this class only moves rows in and out.

Tick batches go in by COPY (CSV written by Arrow) into a session-temporary staging table, then
one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: that statement's transition table holds
exactly the new rows, which is what the statement-level view triggers fold in.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import psycopg2
import psycopg2.errors
import psycopg2.extras
from psycopg2 import sql

from ods.migrate import migrate
from ods.store import StoreRuleViolation
from tradelake.schemas import BAR, QUOTE, SIGNAL, TRADE, EventSchema, arrow_schema

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa

    from tradelake.config import Config

_TICK_TABLES = {"trades": TRADE, "quotes": QUOTE}
_RULE_ERRORS = (psycopg2.errors.CheckViolation, psycopg2.errors.ForeignKeyViolation,
                psycopg2.errors.NotNullViolation)
_ORDER_FIELDS = ("cl_ord_id", "ts", "symbol", "side", "order_type", "quantity", "limit_price",
                 "time_in_force", "strategy_id", "status", "account")
_EXECUTION_FIELDS = ("exec_id", "ts", "symbol", "cl_ord_id", "order_id", "exec_type",
                     "order_status", "side", "last_qty", "last_price", "cum_qty", "leaves_qty",
                     "avg_price", "commission", "venue", "orig_cl_ord_id", "text")


def conform(table: pa.Table, schema: EventSchema) -> pa.Table:
    """The schema's columns in its order and types; missing nullable columns become nulls."""
    import pyarrow as pa

    target = arrow_schema(schema)
    columns = []
    for field in target:
        if field.name in table.column_names:
            columns.append(table[field.name].cast(field.type))
        elif field.nullable:
            columns.append(pa.nulls(table.num_rows, field.type))
        else:
            raise ValueError(f"{schema.name} batch has no column {field.name!r}")
    return pa.Table.from_arrays(columns, schema=target)


class PostgresStore:
    """The ODS in PostgreSQL; ``schema`` defaults to ``ods.schema`` (tests pass a scratch one)."""

    kind = "postgres"

    def __init__(self, cfg: Config, schema: str | None = None) -> None:
        self.cfg = cfg
        self.schema = schema or cfg.ods.schema
        self._conn = psycopg2.connect(cfg.postgres.dsn(),
                                      application_name="tradelake-ods",
                                      # work_mem: a batch's transition table stays in memory
                                      options=f"-c search_path={self.schema} -c work_mem=64MB")
        self._staged: set[str] = set()

    def __repr__(self) -> str:
        return f"PostgresStore({self.cfg.postgres.public_dsn()}, schema={self.schema})"

    # -- schema ---------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        migrate(self._conn, self.cfg.ods, self.schema)

    def drop(self) -> None:
        with self._conn, self._conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                        .format(sql.Identifier(self.schema)))
        self._staged.clear()

    def close(self) -> None:
        self._conn.close()

    # -- market data ----------------------------------------------------------------------------
    def write_trades(self, trades: pa.Table) -> int:
        return self._write_ticks("trades", trades)

    def write_quotes(self, quotes: pa.Table) -> int:
        return self._write_ticks("quotes", quotes)

    def _write_ticks(self, table: str, batch: pa.Table) -> int:
        import pyarrow.csv as pacsv

        if batch.num_rows == 0:
            return 0
        rows = conform(batch, _TICK_TABLES[table])
        buffer = io.BytesIO()
        pacsv.write_csv(rows, buffer, pacsv.WriteOptions(include_header=False))
        buffer.seek(0)
        staging = sql.Identifier(f"_staged_{table}")
        if table not in self._staged:
            # Committed on its own: a refused batch later must not roll the staging table away.
            # No constraints on it: the INSERT into the real table checks them.
            with self._conn, self._conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} "
                                    "(LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
                            .format(staging, sql.Identifier(table)))
            self._staged.add(table)
        with self._rules(), self._conn, self._conn.cursor() as cur:
            cur.copy_expert(sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv)").format(staging),
                            buffer)
            cur.execute(sql.SQL("INSERT INTO {} SELECT * FROM {} ON CONFLICT DO NOTHING")
                        .format(sql.Identifier(table), staging))
            return cur.rowcount

    def bars(self, symbol: str, start_ns: int, end_ns: int) -> pa.Table:
        import pyarrow as pa

        rows = self.query("SELECT ts, symbol, '1m', open, high, low, close, volume, vwap, "
                           "trade_count FROM bars_1m_vwap WHERE symbol = %s AND ts >= %s "
                           "AND ts < %s ORDER BY ts", (symbol, start_ns, end_ns))
        schema = arrow_schema(BAR)
        return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows],
                                    schema=schema)

    def latest_quote(self, symbol: str) -> dict[str, Any] | None:
        return self._one("SELECT ts, symbol, bid_price, bid_size, ask_price, ask_size, exchange, "
                         "seq, ingest_ts FROM latest_quotes WHERE symbol = %s", (symbol,))

    def last_trade(self, symbol: str) -> dict[str, Any] | None:
        return self._one("SELECT ts, symbol, seq, price, size FROM last_trades "
                         "WHERE symbol = %s", (symbol,))

    def last_trades(self, symbols: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._conn, self._conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SELECT ts, symbol, seq, price, size FROM last_trades "
                        "WHERE symbol = ANY(%s)", (list(symbols),))
            return {row["symbol"]: dict(row) for row in cur.fetchall()}

    # -- orders, executions, positions ----------------------------------------------------------
    def record_order(self, order: dict[str, Any]) -> None:
        values = {name: order.get(name) for name in _ORDER_FIELDS}
        values["given_account"] = values["account"]
        values["account"] = values["account"] or "default"
        with self._rules(), self._conn, self._conn.cursor() as cur:
            # UPDATE first: an INSERT ... ON CONFLICT would run the new-order check on a status
            # change. The row trigger refuses moves off the state graph and immutable fields.
            cur.execute("UPDATE orders SET ts = %(ts)s, status = %(status)s, "
                        "limit_price = coalesce(%(limit_price)s, limit_price), "
                        "symbol = coalesce(%(symbol)s, symbol), side = coalesce(%(side)s, side), "
                        "order_type = coalesce(%(order_type)s, order_type), "
                        "quantity = coalesce(%(quantity)s, quantity), "
                        "account = coalesce(%(given_account)s, account) "
                        "WHERE cl_ord_id = %(cl_ord_id)s", values)
            if cur.rowcount == 0:
                cur.execute(f"INSERT INTO orders ({', '.join(_ORDER_FIELDS)}, created_ts) "
                            f"VALUES ({', '.join(f'%({n})s' for n in _ORDER_FIELDS)}, %(ts)s)",
                            values)

    def order_status(self, cl_ord_id: str) -> str | None:
        row = self._one("SELECT status FROM orders WHERE cl_ord_id = %s", (cl_ord_id,))
        return row["status"] if row else None

    def record_execution(self, execution: dict[str, Any]) -> bool:
        values = {name: execution.get(name) for name in _EXECUTION_FIELDS}
        with self._rules(), self._conn, self._conn.cursor() as cur:
            cur.execute(f"INSERT INTO executions ({', '.join(_EXECUTION_FIELDS)}) "
                        f"VALUES ({', '.join(f'%({n})s' for n in _EXECUTION_FIELDS)}) "
                        "ON CONFLICT (exec_id) DO NOTHING", values)
            return cur.rowcount == 1

    def position(self, account: str, symbol: str) -> dict[str, Any] | None:
        return self._one("SELECT account, symbol, quantity, buy_qty, sell_qty, buy_notional, "
                         "sell_notional, commission, fills, cash, last_price, pnl "
                         "FROM position_pnl WHERE account = %s AND symbol = %s",
                         (account, symbol))

    def set_risk_limit(self, account: str, symbol: str, max_position: float) -> None:
        """Set the position limit the ``position_limit`` rule checks ('*': every symbol)."""
        with self._rules(), self._conn, self._conn.cursor() as cur:
            cur.execute("INSERT INTO risk_limits (account, symbol, max_position) "
                        "VALUES (%s, %s, %s) ON CONFLICT (account, symbol) "
                        "DO UPDATE SET max_position = EXCLUDED.max_position",
                        (account, symbol, max_position))

    def write_signals(self, signals: pa.Table) -> int:
        names = SIGNAL.names
        # one statement may not update a row twice: a repeated key keeps its last row
        latest = {tuple(r[k] for k in SIGNAL.key): r for r in conform(signals, SIGNAL).to_pylist()}
        rows = list(latest.values())
        if not rows:
            return 0
        with self._rules(), self._conn, self._conn.cursor() as cur:
            psycopg2.extras.execute_values(
                cur, f"INSERT INTO signals ({', '.join(names)}) VALUES %s "
                     "ON CONFLICT (ts, symbol, strategy_id, signal_type) DO UPDATE SET "
                     "strength = EXCLUDED.strength, target_position = EXCLUDED.target_position, "
                     "model_version = EXCLUDED.model_version",
                [tuple(r[n] for n in names) for r in rows])
        return signals.num_rows

    # -- helpers --------------------------------------------------------------------------------
    def query(self, query: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only SQL statement in the store's schema (inspection, tests, benchmarks)."""
        with self._conn, self._conn.cursor() as cur:
            cur.execute(query, params or None)  # no params: a literal % stays a %
            return cur.fetchall()

    def _one(self, query: str, params: tuple) -> dict[str, Any] | None:
        with self._conn, self._conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(query, params)
            row = cur.fetchone()
        return dict(row) if row else None

    def _rules(self) -> _RuleErrors:
        return _RuleErrors()


class _RuleErrors:
    """Turns the database's refusals into ``StoreRuleViolation`` named after the rule."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None and isinstance(exc, _RULE_ERRORS):
            rule = exc.diag.constraint_name or type(exc).__name__
            raise StoreRuleViolation(rule, (exc.diag.message_primary or str(exc)).strip()) from exc
        return False
