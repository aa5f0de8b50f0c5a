"""Canonical event schemas: each event type is defined once, here, as plain data.

Every other representation (Spark ``StructType``, Arrow schema, PostgreSQL and Hive DDL) is
derived from these definitions, so the speed, batch and serving layers cannot drift apart.

Time convention: a ``timestamp_ns`` value is an int64 count of nanoseconds since the Unix epoch
in UTC. Spark and SQL store it as a plain 64-bit integer (Spark's own timestamps are only
microsecond-precise), and so does Arrow: see ``arrow_schema``.

Following kdb+tick, every event leads with ``ts`` then ``symbol``; the primary ``key`` leads
with them too, so time-partitioned stores (Hive ``dt`` partitions, TimescaleDB hypertables,
which require the time column in every unique index) can enforce it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import StructType

LOGICAL_TYPES = ("timestamp_ns", "int64", "int32", "float64", "string", "bool", "date")

# Logical type -> SQL column type, per dialect. Hive DDL cannot say NOT NULL.
_SQL_TYPES: dict[str, dict[str, str]] = {
    "postgres": {"timestamp_ns": "BIGINT", "int64": "BIGINT", "int32": "INTEGER",
                 "float64": "DOUBLE PRECISION", "string": "TEXT", "bool": "BOOLEAN",
                 "date": "DATE"},
    "hive": {"timestamp_ns": "BIGINT", "int64": "BIGINT", "int32": "INT", "float64": "DOUBLE",
             "string": "STRING", "bool": "BOOLEAN", "date": "DATE"},
}


@dataclass(frozen=True)
class FieldSpec:
    """One column: a name, a logical type from ``LOGICAL_TYPES``, nullability and its meaning."""

    name: str
    type: str
    nullable: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"field name {self.name!r} must be a lower-case identifier")
        if self.type not in LOGICAL_TYPES:
            raise ValueError(f"field {self.name!r}: unknown type {self.type!r}; "
                             f"expected one of {', '.join(LOGICAL_TYPES)}")


@dataclass(frozen=True)
class EventSchema:
    """An event type: ordered fields, the primary key (a tuple of field names) and a doc."""

    name: str
    fields: tuple[FieldSpec, ...]
    key: tuple[str, ...]
    doc: str = ""

    def __post_init__(self) -> None:
        lead = [(f.name, f.type) for f in self.fields[:2]]
        if lead != [("ts", "timestamp_ns"), ("symbol", "string")]:
            raise ValueError(f"schema {self.name!r} must lead with ts (timestamp_ns) then "
                             f"symbol (string), got {lead}")
        if len(set(self.names)) != len(self.fields):
            raise ValueError(f"schema {self.name!r} has duplicate field names")
        required = {f.name for f in self.fields if not f.nullable}
        if bad := [k for k in self.key if k not in required]:
            raise ValueError(f"schema {self.name!r}: key columns {bad} must be non-nullable fields")

    @property
    def names(self) -> tuple[str, ...]:
        """Field names in order."""
        return tuple(f.name for f in self.fields)


def _f(name: str, type_: str, doc: str, nullable: bool = False) -> FieldSpec:
    """Shorthand that keeps the definitions below one line per field."""
    return FieldSpec(name, type_, nullable, doc)


_TS = _f("ts", "timestamp_ns", "event time, UTC ns since epoch")
_SYMBOL = _f("symbol", "string", "instrument symbol")
_SIDE = _f("side", "string", "'B' buy or 'S' sell")
_INGEST = _f("ingest_ts", "timestamp_ns", "when the lake received it, UTC ns", nullable=True)
_SEQ = _f("seq", "int64", "feed sequence number, orders events sharing a ts")

TRADE = EventSchema("trade", (
    _TS, _SYMBOL,
    _f("price", "float64", "trade price"),
    _f("size", "float64", "traded quantity"),
    _f("trade_id", "string", "venue-assigned trade id"),
    _f("exchange", "string", "executing venue; null if the feed omits it", nullable=True),
    _SEQ,
    _f("side", "string", "aggressor: 'B' buyer or 'S' seller; null if unknown", nullable=True),
    _f("conditions", "string", "sale condition codes as sent by the feed", nullable=True),
    _INGEST,
), key=("ts", "symbol", "seq"), doc="A trade print (tick).")

QUOTE = EventSchema("quote", (
    _TS, _SYMBOL,
    _f("bid_price", "float64", "best bid price"),
    _f("bid_size", "float64", "quantity at the best bid"),
    _f("ask_price", "float64", "best ask price"),
    _f("ask_size", "float64", "quantity at the best ask"),
    _f("exchange", "string", "quoting venue; null for consolidated quotes", nullable=True),
    _SEQ, _INGEST,
), key=("ts", "symbol", "seq"), doc="A top-of-book quote update.")

BAR = EventSchema("bar", (
    _f("ts", "timestamp_ns", "bar open time, UTC ns since epoch"), _SYMBOL,
    _f("interval", "string", "bar length, e.g. '1m', '1h', '1d'"),
    _f("open", "float64", "first trade price"),
    _f("high", "float64", "highest trade price"),
    _f("low", "float64", "lowest trade price"),
    _f("close", "float64", "last trade price"),
    _f("volume", "float64", "total traded quantity"),
    _f("vwap", "float64", "volume-weighted average price; null if not supplied", nullable=True),
    _f("trade_count", "int64", "number of trades in the bar"),
), key=("ts", "symbol", "interval"), doc="An OHLCV bar aggregated from trades.")

ORDER = EventSchema("order", (
    _TS, _SYMBOL,
    _f("cl_ord_id", "string", "client order id (FIX ClOrdID), unique per order"),
    _SIDE,
    _f("order_type", "string", "'MKT', 'LMT', 'STP' or 'STP_LMT'"),
    _f("quantity", "float64", "order quantity"),
    _f("limit_price", "float64", "limit price; null for market orders", nullable=True),
    _f("time_in_force", "string", "'DAY', 'GTC', 'IOC' or 'FOK'"),
    _f("strategy_id", "string", "originating strategy; null for manual orders", nullable=True),
    _f("status", "string", "order state after this event, e.g. 'PENDING_NEW', 'NEW'"),
    _f("account", "string", "trading account; null means the default", nullable=True),
), key=("ts", "symbol", "cl_ord_id"), doc="An order instruction or state change from the OMS.")

EXECUTION = EventSchema("execution", (
    _TS, _SYMBOL,
    _f("exec_id", "string", "execution id (FIX ExecID), unique per report"),
    _f("cl_ord_id", "string", "client order id this report is about"),
    _f("order_id", "string", "broker/venue order id; null before acknowledgement", nullable=True),
    _f("exec_type", "string", "FIX ExecType name, e.g. 'NEW', 'TRADE', 'CANCELED'"),
    _f("order_status", "string", "FIX OrdStatus name after this report"),
    _SIDE,
    _f("last_qty", "float64", "quantity filled by this report; 0 if not a fill"),
    _f("last_price", "float64", "price of this fill; 0 if not a fill"),
    _f("cum_qty", "float64", "total quantity filled so far"),
    _f("leaves_qty", "float64", "quantity still open"),
    _f("avg_price", "float64", "average fill price so far; 0 if nothing filled"),
    _f("commission", "float64", "commission charged; null if not reported", nullable=True),
    _f("venue", "string", "broker or venue that sent the report"),
    _f("orig_cl_ord_id", "string", "order a cancel/replace acted on (FIX OrigClOrdID)", nullable=True),
    _f("text", "string", "free text, e.g. a reject reason (FIX Text)", nullable=True),
), key=("ts", "symbol", "exec_id"), doc="An execution report (FIX 35=8) from a broker.")

SIGNAL = EventSchema("signal", (
    _TS, _SYMBOL,
    _f("strategy_id", "string", "strategy that produced the signal"),
    _f("signal_type", "string", "kind of signal, e.g. 'entry', 'exit', 'alpha'"),
    _f("strength", "float64", "conviction; sign gives direction, conventionally in [-1, 1]"),
    _f("target_position", "float64", "desired position; null if advisory", nullable=True),
    _f("model_version", "string", "model that produced it; null for rules", nullable=True),
), key=("ts", "symbol", "strategy_id", "signal_type"), doc="A strategy signal.")

POSITION = EventSchema("position", (
    _TS, _SYMBOL,
    _f("account", "string", "trading account"),
    _f("quantity", "float64", "signed position; negative is short"),
    _f("avg_price", "float64", "average cost of the open position"),
    _f("realized_pnl", "float64", "realized profit and loss to date"),
    _f("unrealized_pnl", "float64", "mark-to-market P&L; null if no mark", nullable=True),
), key=("ts", "symbol", "account"), doc="A position snapshot per account and symbol.")

SCHEMAS: dict[str, EventSchema] = {
    s.name: s for s in (TRADE, QUOTE, BAR, ORDER, EXECUTION, SIGNAL, POSITION)
}


def get_schema(name: str) -> EventSchema:
    """Look up an event schema by name; the KeyError lists the known names."""
    if name not in SCHEMAS:
        raise KeyError(f"unknown event schema {name!r}; known: {', '.join(SCHEMAS)}")
    return SCHEMAS[name]


def spark_schema(schema: EventSchema) -> StructType:
    """Spark ``StructType``; ``timestamp_ns`` stays a LongType so no nanoseconds are lost."""
    from pyspark.sql import types as T

    spark_types = {"timestamp_ns": T.LongType, "int64": T.LongType, "int32": T.IntegerType,
                   "float64": T.DoubleType, "string": T.StringType, "bool": T.BooleanType,
                   "date": T.DateType}
    return T.StructType([T.StructField(f.name, spark_types[f.type](), f.nullable,
                                       {"comment": f.doc}) for f in schema.fields])


def arrow_schema(schema: EventSchema) -> pa.Schema:
    """Arrow schema; ``timestamp_ns`` is a plain int64 (field metadata ``unit: ns_utc``).

    Not Arrow's ``timestamp[ns]``: the same Arrow batches go on the Kafka wire, into Parquet in
    the raw zone and into Spark, and Spark silently truncates ``timestamp[ns]`` to microseconds
    (and cannot read Parquet TIMESTAMP(NANOS) at all). One int64 representation everywhere.
    """
    import pyarrow as pa

    arrow_types = {"timestamp_ns": pa.int64(), "int64": pa.int64(),
                   "int32": pa.int32(), "float64": pa.float64(), "string": pa.string(),
                   "bool": pa.bool_(), "date": pa.date32()}
    fields = [pa.field(f.name, arrow_types[f.type], f.nullable,
                       {"doc": f.doc, **({"unit": "ns_utc"} if f.type == "timestamp_ns" else {})})
              for f in schema.fields]
    return pa.schema(fields, metadata={"event": schema.name, "doc": schema.doc})


def _quote(ident: str, dialect: str) -> str:
    """Quote every identifier: ``order``, ``interval`` and ``open`` are SQL keywords."""
    q = '"' if dialect == "postgres" else "`"
    return ".".join(f"{q}{part}{q}" for part in ident.split("."))


def sql_ddl(schema: EventSchema, dialect: str, table: str | None = None, *,
            partitioned_by: Sequence[str] = (), location: str | None = None,
            if_not_exists: bool = False, external: bool = False,
            extra_fields: Sequence[FieldSpec] = ()) -> str:
    """CREATE TABLE statement for ``dialect`` 'postgres' or 'hive'.

    ``table`` defaults to the schema name and may be qualified (``lake.trade``). Postgres gets
    NOT NULL and the PRIMARY KEY; Hive gets column comments, ``partitioned_by`` column
    definitions taken verbatim (e.g. ``"dt DATE"``), ``STORED AS PARQUET``, ``location`` and
    ``external``. ``extra_fields`` are appended after the schema's own (e.g. Kafka provenance).
    """
    if dialect not in _SQL_TYPES:
        known = ", ".join(_SQL_TYPES)
        raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {known}")
    if dialect == "postgres" and (partitioned_by or location):
        raise ValueError("partitioned_by and location apply to the 'hive' dialect only")
    types = _SQL_TYPES[dialect]
    cols = []
    if external and dialect != "hive":
        raise ValueError("external applies to the 'hive' dialect only")
    for f in (*schema.fields, *extra_fields):
        col = f"{_quote(f.name, dialect)} {types[f.type]}"
        if dialect == "postgres" and not f.nullable:
            col += " NOT NULL"
        elif dialect == "hive":
            col += f" COMMENT '{_hive_str(f.doc)}'"
        cols.append(col)
    if dialect == "postgres" and schema.key:
        cols.append(f"PRIMARY KEY ({', '.join(_quote(k, dialect) for k in schema.key)})")
    exists = "IF NOT EXISTS " if if_not_exists else ""
    kind = "EXTERNAL TABLE" if external else "TABLE"
    lines = [f"CREATE {kind} {exists}{_quote(table or schema.name, dialect)} (",
             ",\n".join(f"    {c}" for c in cols), ")"]
    if dialect == "hive":
        lines.append(f"COMMENT '{_hive_str(schema.doc)}'")
        if partitioned_by:
            lines.append(f"PARTITIONED BY ({', '.join(partitioned_by)})")
        lines.append("STORED AS PARQUET")
        if location:
            lines.append(f"LOCATION '{_hive_str(location)}'")
    return "\n".join(lines)


def _hive_str(text: str) -> str:
    """Escape text for a single-quoted Hive string literal."""
    return text.replace("\\", "\\\\").replace("'", "\\'")
