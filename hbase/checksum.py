"""Checksums of the HBase operational store: scan each table, rebuild the rows PostgreSQL would
hold (``ods.checksum.TABLES`` columns, key fields decoded from the row keys) and hash the same
canonical text, so an HBase ODS and a PostgreSQL ODS of the same ticks have equal checksums.

Covered: trades, quotes, bars_1m, last_trades and latest_quotes (the ``latest`` table's ``t`` and
``q`` families), signals. Not covered: orders, executions and positions (JSON documents whose
history and sums follow the order of the fills, rebuilt from the OMS journal, not from a replay).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from hbase.store import (
    _BAR_CELLS,
    _LAST_TRADE_CELLS,
    _LATEST_QUOTE_CELLS,
    _MAX_I64,
    _QUOTE_CELLS,
    _SIGNAL_CELLS,
    _TRADE_CELLS,
    _U64,
    HBaseStore,
    _unpack,
)
from ods.checksum import TABLES, Checksum, checksum_rows

_SCAN_BATCH = 5000
# ODS table -> (HBase table, family, cells)
_SOURCES = {
    "trades": ("trades", b"t", _TRADE_CELLS),
    "quotes": ("quotes", b"q", _QUOTE_CELLS),
    "bars_1m": ("bars_1m", b"b", _BAR_CELLS),
    "last_trades": ("latest", b"t", _LAST_TRADE_CELLS),
    "latest_quotes": ("latest", b"q", _LATEST_QUOTE_CELLS),
    "signals": ("signals", b"s", _SIGNAL_CELLS),
}


def _rev(raw: bytes) -> int:
    return _MAX_I64 - _U64.unpack(raw)[0]


def _key_fields(table: str, key: bytes) -> dict[str, Any]:
    """The fields a row key holds: salt | symbol | 0x00 | rev(ts) [| rev(seq) | ...]."""
    end = key.index(0, 1)
    fields: dict[str, Any] = {"symbol": key[1:end].decode("utf-8")}
    rest = key[end + 1:]
    if table in ("trades", "quotes"):
        fields["ts"], fields["seq"] = _rev(rest[:8]), _rev(rest[8:16])
    elif table == "bars_1m":
        fields["ts"] = _rev(rest[:8])
    elif table == "signals":
        fields["ts"] = _rev(rest[:8])
        strategy, _, signal_type = rest[8:].partition(b"\x00")
        fields["strategy_id"], fields["signal_type"] = strategy.decode(), signal_type.decode()
    return fields


def _rows(store: HBaseStore, name: str) -> Iterator[tuple[Any, ...]]:
    hbase_table, family, cells = _SOURCES[name]
    columns = [c for c, _ in TABLES[name].columns]
    probe = family + b":" + cells[0][0].encode()
    scanned = store._rpc(lambda c: list(c.table(hbase_table).scan(columns=[family], batch_size=_SCAN_BATCH)))
    for key, data in scanned:
        if probe not in data:  # a ``latest`` row with only the other family
            continue
        row = {**_unpack(family, cells, data), **_key_fields(hbase_table, key)}
        yield tuple(row[c] for c in columns)


def hbase_checksums(store: HBaseStore, tables: Sequence[str]) -> dict[str, Checksum]:
    out = {}
    for name in tables:
        if name not in _SOURCES:
            raise ValueError(f"no HBase checksum for {name}; covered: {', '.join(_SOURCES)}")
        out[name] = checksum_rows(_rows(store, name), TABLES[name].kinds)
    return out


def has_rows(store: HBaseStore, table: str) -> bool:
    """Whether the store's ``table`` holds any row (a one-row scan)."""
    return bool(store._rpc(lambda c: list(c.table(table).scan(limit=1))))
