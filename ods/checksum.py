"""Per-table checksums of the operational store: does a rebuilt ODS hold what the live one held?

A table's checksum is its row count and the sum, modulo 2**64, of a 64-bit hash of each row's
canonical text. A sum does not depend on row order, so two stores agree exactly when they hold
the same rows (up to hash collisions), however the rows arrived, and PostgreSQL computes it in one
SQL scan while HBase (``hbase.checksum``) and any Arrow/Hive rows (``checksum_rows``) hash the same
canonical text in Python, so the numbers are comparable across stores.

Canonical row text: the spec's columns in order, joined by U+001F, NULL as ``\\N``; integers in
decimal, text as is, exact doubles as the 16 hex digits of their IEEE-754 bits (so a changed last
bit is a different row; no decimal formatting to disagree about). Aggregated doubles (a bar's
volume and ``pv = sum(price * size)``, the rolling volume, position sums) are floating-point sums
whose last bits depend on how the ticks were batched into the store, which a replay cannot
reproduce; their IEEE-754 bits are rounded to the nearest multiple of 2**20 (keeping the sign,
the exponent and 32 of 52 mantissa bits: about 9.6 significant digits). Rounding, not truncating:
such sums are often exact round numbers (118947.0 against 118946.99999999997 one addition order
later), which sit on a truncation boundary but far from a rounding one; a ULP-level difference then
shows only if it straddles a half-way point, about one chance in a million per value. Row hash: the
first 16 hex digits of md5(text) as a signed int64.

Columns a rebuild cannot reproduce by design are left out: ``alerts.id`` (a sequence) and
``alerts.created_at`` (the wall clock). ``alerts`` as a whole depends on arrival order (a rule is
evaluated on a bar as it stands when ticks arrive), so it is checksummed but listed in
``ARRIVAL_DEPENDENT``: a rebuild is compared on the other tables.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

SEP = "\x1f"
NULL = "\\N"
MASK64 = (1 << 64) - 1
SUM_DROP_BITS = 20  # aggregated doubles: their bits rounded to a multiple of 2**20
_SUM_HALF = 1 << (SUM_DROP_BITS - 1)
_F64 = struct.Struct(">d")
_I64 = struct.Struct(">q")

# column kinds: i integer, t text, f exact double, s aggregated double, j jsonb (PostgreSQL only)
KINDS = ("i", "t", "f", "s", "j")


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[tuple[str, str], ...]
    stores: tuple[str, ...] = ("postgres", "hbase")

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for _, kind in self.columns)


def _spec(name: str, columns: str, stores: tuple[str, ...] = ("postgres", "hbase")) -> TableSpec:
    """``columns`` as 'name:kind ...' (one line per table below)."""
    pairs = tuple(tuple(c.split(":")) for c in columns.split())
    assert all(len(p) == 2 and p[1] in KINDS for p in pairs), columns
    return TableSpec(name, pairs, stores)  # type: ignore[arg-type]


_PG = ("postgres",)
TABLES: dict[str, TableSpec] = {s.name: s for s in (
    _spec("trades", "ts:i symbol:t price:f size:f trade_id:t exchange:t seq:i side:t conditions:t "
                    "ingest_ts:i"),
    _spec("quotes", "ts:i symbol:t bid_price:f bid_size:f ask_price:f ask_size:f exchange:t seq:i "
                    "ingest_ts:i"),
    _spec("bars_1m", "symbol:t ts:i open:f high:f low:f close:f volume:s pv:s trade_count:i "
                     "open_ts:i open_seq:i close_ts:i close_seq:i"),
    _spec("last_trades", "symbol:t ts:i seq:i price:f size:f"),
    _spec("latest_quotes", "symbol:t ts:i seq:i bid_price:f bid_size:f ask_price:f ask_size:f exchange:t "
                           "ingest_ts:i"),
    _spec("rolling_volume", "symbol:t as_of_minute:i window_minutes:i volume:s trade_count:i", _PG),
    _spec("signals", "ts:i symbol:t strategy_id:t signal_type:t strength:f target_position:f "
                     "model_version:t"),
    _spec("orders", "cl_ord_id:t ts:i created_ts:i symbol:t side:t order_type:t quantity:f limit_price:f "
                    "time_in_force:t strategy_id:t status:t account:t", _PG),
    _spec("executions", "exec_id:t ts:i symbol:t cl_ord_id:t order_id:t exec_type:t order_status:t side:t "
                        "last_qty:f last_price:f cum_qty:f leaves_qty:f avg_price:f commission:f venue:t "
                        "orig_cl_ord_id:t text:t", _PG),
    _spec("positions", "account:t symbol:t quantity:s buy_qty:s sell_qty:s buy_notional:s sell_notional:s "
                       "commission:s fills:i last_fill_ts:i", _PG),
    _spec("alerts", "ts:i symbol:t account:t rule:t severity:t value:s threshold:s detail:j", _PG),
)}
MARKET_TABLES = ("trades", "quotes", "bars_1m", "last_trades", "latest_quotes", "rolling_volume")
ARRIVAL_DEPENDENT = ("alerts",)


@dataclass(frozen=True)
class Checksum:
    rows: int
    digest: str  # the hash sum modulo 2**64, 16 hex digits

    @classmethod
    def of(cls, rows: int, total: int) -> Checksum:
        return cls(int(rows), f"{int(total) & MASK64:016x}")

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "checksum": self.digest}


# -- the canonical text, in Python --------------------------------------------------------------
def _field(value: Any, kind: str) -> str:
    if value is None:
        return NULL
    if kind == "i":
        return str(int(value))
    if kind == "f":
        return _F64.pack(value).hex()
    if kind == "s":
        return str((_I64.unpack(_F64.pack(value))[0] + _SUM_HALF) >> SUM_DROP_BITS)
    if kind == "t":
        return value
    raise ValueError(f"column kind {kind!r} has no Python form")


def canonical(values: Sequence[Any], kinds: Sequence[str]) -> str:
    return SEP.join(_field(v, k) for v, k in zip(values, kinds, strict=True))


def row_hash(text: str) -> int:
    """md5's first 64 bits as a signed int64 (what PostgreSQL's ``::bit(64)::bigint`` gives)."""
    value = int(hashlib.md5(text.encode("utf-8")).hexdigest()[:16], 16)  # noqa: S324 - not security
    return value - (1 << 64) if value >= 1 << 63 else value


def checksum_rows(rows: Iterable[Sequence[Any]], kinds: Sequence[str]) -> Checksum:
    """The checksum of rows given as value tuples in the spec's column order."""
    count = total = 0
    for row in rows:
        count += 1
        total += row_hash(canonical(row, kinds))
    return Checksum.of(count, total)


def checksum_arrow(table, spec: TableSpec) -> Checksum:
    """The checksum of an Arrow table holding (at least) the spec's columns."""
    columns = [table.column(name).to_pylist() for name, _ in spec.columns]
    return checksum_rows(zip(*columns, strict=True), spec.kinds)


# -- PostgreSQL: the same text in SQL -------------------------------------------------------------
def _sql_field(column: str, kind: str) -> str:
    col = f'"{column}"'
    expr = {"i": f"{col}::text", "t": col, "j": f"{col}::text",
            "f": f"encode(float8send({col}), 'hex')",
            "s": f"((('x' || encode(float8send({col}), 'hex'))::bit(64)::bigint + {_SUM_HALF}) "
                 f">> {SUM_DROP_BITS})::text",
            }[kind]
    return f"coalesce({expr}, '{NULL}')"


def postgres_sql(spec: TableSpec) -> str:
    """count and hash sum of ``spec``'s table in the session's schema (search_path)."""
    text = " || chr(31) || ".join(_sql_field(c, k) for c, k in spec.columns)
    return (f"SELECT count(*), coalesce(sum(h), 0) FROM (SELECT ('x' || substr(md5({text}), 1, 16))"
            f"::bit(64)::bigint AS h FROM \"{spec.name}\") AS hashed")


def store_checksums(store: Any, tables: Sequence[str] | None = None) -> dict[str, Checksum]:
    """Checksums of ``tables`` (default: every table the store kind has) of an open store."""
    names = [n for n in (tables or TABLES) if store.kind in TABLES[n].stores]
    unknown = set(tables or ()) - set(TABLES)
    if unknown:
        raise ValueError(f"no checksum spec for table(s) {sorted(unknown)}; known: {', '.join(TABLES)}")
    if store.kind == "hbase":
        from hbase.checksum import hbase_checksums

        return hbase_checksums(store, names)
    out = {}
    for name in names:
        (count, total), = store.query(postgres_sql(TABLES[name]))
        out[name] = Checksum.of(count, total)
    return out


def differences(a: dict[str, Checksum], b: dict[str, Checksum],
                tables: Iterable[str] | None = None) -> list[str]:
    """Tables (of ``tables``, default: both sides' common tables minus ``ARRIVAL_DEPENDENT``)
    whose checksums differ."""
    names = tables if tables is not None else [t for t in a if t in b and t not in ARRIVAL_DEPENDENT]
    return [t for t in names if a.get(t) != b.get(t)]
