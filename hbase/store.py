"""The HBase operational store: ``ods.store.OperationalStore`` over HBase, through the Thrift1
server with happybase (binary protocol, buffered transport). Same contract as the PostgreSQL store
(``ods.postgres``); ``tests/integration/ods/test_store_contract.py`` runs one suite against both.

Tables (``<prefix>_<name>``, prefix ``hbase.table_prefix``) and column families::

    trades      t   trade ticks          VERSIONS=1, TTL 7 days
    quotes      q   quote ticks          VERSIONS=1, TTL 7 days
    bars_1m     b   1-minute bars        VERSIONS=1, no TTL
    latest      t   last trade           VERSIONS=1, IN_MEMORY
                q   latest quote         VERSIONS=1, IN_MEMORY
    orders      o   order document       VERSIONS=64 (older versions = the order's history)
    executions  e   execution document   VERSIONS=1
    positions   p   position document    VERSIONS=1
    signals     s   strategy signals     VERSIONS=1

Row keys. Market data (ticks, bars, latest, signals) is keyed by a *salted symbol* followed by
a *reversed timestamp*::

    salt (1 byte) | symbol (UTF-8) | 0x00 | 2**63-1-ts (8 bytes BE) [| 2**63-1-seq (8 bytes BE)]

The salt is ``crc32(symbol) % SALT_BUCKETS`` (16): a deterministic function of the symbol, so
all rows of one symbol stay contiguous (one short range scan), while the symbols spread over 16
key ranges and the writes of a busy feed do not all land on the region holding "the end" of a
monotonically increasing key. The 0x00 separator ends the symbol, so ``AB`` and ``ABC`` never
share a key range. Subtracting the timestamp (and, for ticks, the feed ``seq``) from 2**63-1
makes a symbol's newest rows sort first: "latest N" is a scan with a limit, and a time range
[start, end) is a row_start/row_stop scan, never a filter. Trades and quotes add the reversed
seq, so the key is exactly the (symbol, ts, seq) primary key; signals add
``strategy_id | 0x00 | signal_type``. ``latest`` is keyed by the symbol prefix alone; orders
and executions by ``salt(id) | id`` (client ids are often sequential); positions by
``salt(account) | account | 0x00 | symbol`` (an account's positions are one range).

Tables are created with a single region (Thrift1 ``createTable`` takes no split keys): the salt
starts spreading load once HBase splits them, or at once if they are pre-split from the HBase
shell on the 16 salt bytes.

Values. Cells are binary and compatible with HBase's ``Bytes.toDouble``/``Bytes.toLong``:
doubles are ``struct.pack('>d')`` (IEEE 754 bits, so every float round-trips exactly, NaN and
-0.0 included), integers and timestamps 8-byte big-endian signed, strings UTF-8. A null is the
one byte ``0xFF``: never a valid 8-byte number nor valid UTF-8. Nulls are written rather than
left out so that replacing a row (latest quote, signal) is a single put: HBase applies a row's
put atomically, but a put plus a column delete are two mutations a reader could see apart.
Key fields are not repeated in the cells (HBase already stores the row key with every cell).

Orders, executions and positions are one JSON cell each (floats as ``repr``, which Python's
``json`` uses, so they round-trip exactly too): Thrift1's ``checkAndPut`` compares one cell and
puts one cell (a single ``Mutation``), and that compare-and-swap is what keeps their rules atomic.

Concurrency. HBase has no multi-row transactions.
- Ticks, bars and ``latest`` assume ONE WRITER PER SYMBOL (the speed layer): newness is decided
  by batched gets before the puts, and bars/latest are read-modify-write. Ticks are written
  first, then bars and latest: a writer dying in between leaves those trades out of the bars
  (a re-delivery sees them stored and skips them) rather than counting them twice; the batch
  layer's bars, the master data, replace them. Ticks expire after the TTL (counted from the
  write, not the event time), so a tick re-delivered more than 7 days later counts again.
- Orders, executions and positions are safe with any number of writers: each change is a
  compare-and-set on its document cell (Thrift1 ``checkAndPut``; happybase does not wrap it, the
  raw client does), retried on contention. Claiming an exec_id and folding its fill into the
  position are two rows: a writer dying between them leaves the fill out of the position.

Rule names. A refused write raises ``StoreRuleViolation`` with the name the PostgreSQL store
reports (its constraint names, ``ods/migrations/``), checked in the same order: NOT NULL first
(``NotNullViolation``), then CHECK constraints by name (PostgreSQL's order), then the rules
that need stored state. A refused tick batch stores nothing: every row is checked first.

Connections. The Thrift1 server drops a connection left idle for a minute
(``hbase.thrift.server.socket.read.timeout``, 60 s by default); the store reopens one idle for more than
``_IDLE_REOPEN_S`` before using it, and retries idempotent calls (gets, scans, puts) once on a
transport error. ``checkAndPut`` is never retried blindly: its outcome is unknown after a
failure.
"""

from __future__ import annotations

import contextlib
import json
import math
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import happybase
import Hbase_thrift  # the Thrift1 IDL module; happybase registers it when imported
from thriftpy2.transport import TTransportException

from ods.store import INITIAL_ORDER_STATES, NS_PER_MINUTE, ORDER_TRANSITIONS, StoreRuleViolation
from tradelake.schemas import BAR, EXECUTION, ORDER, QUOTE, SIGNAL, TRADE, EventSchema, arrow_schema

if TYPE_CHECKING:
    import pyarrow as pa

    from tradelake.config import Config

__all__ = ["SALT_BUCKETS", "TABLES", "TICK_TTL_SECONDS", "HBaseStore", "bar_key", "symbol_prefix",
           "tick_key"]

SALT_BUCKETS = 16
TICK_TTL_SECONDS = 7 * 24 * 3600  # the lake is the master dataset; the ODS keeps a week of ticks
ORDER_HISTORY_VERSIONS = 64  # versions of an order's document kept (its state history)

_MAX_I64 = 2**63 - 1
_MAX_U64 = 2**64 - 1
_SEP = b"\x00"
_NULL = b"\xff"
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_CHUNK = 1000  # rows per multi-get / mutateRows call
_CAS_ATTEMPTS = 32
_IDLE_REOPEN_S = 30.0  # well under the Thrift server's 60 s idle timeout
_TIMEOUT_MS = 60_000
_NOT_NULL = "NotNullViolation"  # what the PostgreSQL store reports (PG 15 NOT NULLs are unnamed)

_T = TypeVar("_T")
_Fields = Sequence[tuple[str, str]]  # (name, logical type) of the cells of a family


def _cells(schema: EventSchema, *, without: Iterable[str] = ()) -> tuple[tuple[str, str], ...]:
    skip = set(without)
    return tuple((f.name, f.type) for f in schema.fields if f.name not in skip)


# happybase's defaults are the Thrift IDL's: block cache OFF, no bloom filter, 3 versions. Every
# family here states its options; the row bloom filter serves the batched existence gets.
_CACHED = {"block_cache_enabled": True, "bloom_filter_type": "ROW"}
_TICK_CF = {**_CACHED, "max_versions": 1, "time_to_live": TICK_TTL_SECONDS}
_KEEP_CF = {**_CACHED, "max_versions": 1}
TABLES: dict[str, dict[str, dict[str, Any]]] = {
    "trades": {"t": _TICK_CF},
    "quotes": {"q": _TICK_CF},
    "bars_1m": {"b": _KEEP_CF},
    "latest": {"t": {**_KEEP_CF, "in_memory": True}, "q": {**_KEEP_CF, "in_memory": True}},
    "orders": {"o": {**_CACHED, "max_versions": ORDER_HISTORY_VERSIONS}},
    "executions": {"e": _KEEP_CF},
    "positions": {"p": _KEEP_CF},
    "signals": {"s": _KEEP_CF},
}

_TRADE_CELLS = _cells(TRADE, without=TRADE.key)
_QUOTE_CELLS = _cells(QUOTE, without=QUOTE.key)
_SIGNAL_CELLS = _cells(SIGNAL, without=SIGNAL.key)
_LAST_TRADE_CELLS = (("ts", "timestamp_ns"), ("seq", "int64"), ("price", "float64"),
                     ("size", "float64"))
_LATEST_QUOTE_CELLS = _cells(QUOTE, without=("symbol",))
_BAR_CELLS = (("open", "float64"), ("high", "float64"), ("low", "float64"), ("close", "float64"),
              ("volume", "float64"), ("pv", "float64"), ("trade_count", "int64"),
              ("open_ts", "timestamp_ns"), ("open_seq", "int64"),
              ("close_ts", "timestamp_ns"), ("close_seq", "int64"))

_SIDES = ("B", "S")
_ORDER_TYPES = ("MKT", "LMT", "STP", "STP_LMT")
_TIME_IN_FORCE = ("DAY", "GTC", "IOC", "FOK")
_POSITION_SUMS = ("quantity", "buy_qty", "sell_qty", "buy_notional", "sell_notional",
                  "commission")


# -- keys -------------------------------------------------------------------------------------------
def _ident(text: str, what: str) -> bytes:
    """A key component: UTF-8 without NUL (0x00 separates components; PostgreSQL refuses it too)."""
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string, got {text!r}")
    if "\x00" in text:
        raise ValueError(f"{what} {text!r} contains a NUL character")
    return text.encode("utf-8")


def _salted(text: str, what: str) -> bytes:
    """salt | text: the salt byte is crc32 of the text, so it is stable across processes."""
    raw = _ident(text, what)
    return bytes((zlib.crc32(raw) % SALT_BUCKETS,)) + raw


def _rev(value: int) -> bytes:
    """2**63-1 - value as 8 unsigned big-endian bytes: the whole int64 range, larger sorts first."""
    return _U64.pack(_MAX_I64 - value)


def symbol_prefix(symbol: str) -> bytes:
    """salt | symbol | 0x00: every market-data row of ``symbol`` starts with it."""
    return _salted(symbol, "symbol") + _SEP


def tick_key(symbol: str, ts: int, seq: int) -> bytes:
    """Trade/quote key: the (symbol, ts, seq) primary key, newest first."""
    return symbol_prefix(symbol) + _rev(ts) + _rev(seq)


def bar_key(symbol: str, minute_ts: int) -> bytes:
    """1-minute bar key: symbol prefix and the reversed minute open."""
    return symbol_prefix(symbol) + _rev(minute_ts)


def _signal_key(rec: Mapping[str, Any]) -> bytes:
    return (symbol_prefix(rec["symbol"]) + _rev(rec["ts"]) + _ident(rec["strategy_id"], "strategy_id")
            + _SEP + _ident(rec["signal_type"], "signal_type"))


def _position_key(account: str, symbol: str) -> bytes:
    return _salted(account, "account") + _SEP + _ident(symbol, "symbol")


def _ts_range(prefix: bytes, start_ns: int, end_ns: int) -> tuple[bytes, bytes] | None:
    """row_start/row_stop of the keys ``prefix | rev(ts)`` with start_ns <= ts < end_ns."""
    low = max(_MAX_I64 - (end_ns - 1), 0)  # smallest reversed value inside: ts = end - 1
    high = min(_MAX_I64 - start_ns, _MAX_U64)  # largest: ts = start
    if low > high:
        return None
    stop = prefix + _U64.pack(high + 1) if high < _MAX_U64 else prefix[:-1] + b"\x01"
    return prefix + _U64.pack(low), stop


# -- values -----------------------------------------------------------------------------------------
def _encode(kind: str, value: Any) -> bytes:
    if value is None:
        return _NULL
    if kind == "float64":
        return _F64.pack(value)
    if kind == "string":
        return value.encode("utf-8")
    return _I64.pack(value)  # int64, int32, timestamp_ns


def _decode(kind: str, raw: bytes | None) -> Any:
    if raw is None or raw == _NULL:
        return None
    if kind == "float64":
        return _F64.unpack(raw)[0]
    if kind == "string":
        return raw.decode("utf-8")
    return _I64.unpack(raw)[0]


def _pack(family: bytes, cells: _Fields, rec: Mapping[str, Any]) -> dict[bytes, bytes]:
    return {family + b":" + name.encode(): _encode(kind, rec[name]) for name, kind in cells}


def _unpack(family: bytes, cells: _Fields, row: Mapping[bytes, bytes]) -> dict[str, Any]:
    return {name: _decode(kind, row.get(family + b":" + name.encode())) for name, kind in cells}


def _last_trade(symbol: str, row: Mapping[bytes, bytes]) -> dict[str, Any] | None:
    """The ``last_trade`` dict of a ``latest`` row (None if the symbol never traded)."""
    if b"t:ts" not in row:
        return None
    trade = _unpack(b"t", _LAST_TRADE_CELLS, row)
    return {"ts": trade["ts"], "symbol": symbol, "seq": trade["seq"], "price": trade["price"],
            "size": trade["size"]}


def _normalise(kind: str, value: Any, name: str) -> Any:
    """A Python value of the field's logical type (ints for counts, floats for prices)."""
    if value is None:
        return None
    if kind == "float64":
        return float(value)
    if kind in ("int64", "int32", "timestamp_ns"):
        if isinstance(value, bool) or int(value) != value or not -(2**63) <= int(value) <= _MAX_I64:
            raise ValueError(f"{name}: {value!r} is not a 64-bit integer")
        return int(value)
    return value


def _doc(value: Mapping[str, Any]) -> bytes:
    """A JSON document cell; json writes floats with repr, which round-trips exactly."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


# PostgreSQL comparisons, so NaN refuses (or passes) the same checks: NaN is above everything.
def _pg_gt(x: float, bound: float) -> bool:
    return math.isnan(x) or x > bound


def _pg_ge(x: float, bound: float) -> bool:
    return math.isnan(x) or x >= bound


def _finite_gt(x: float, bound: float) -> bool:
    """``x > bound AND x < 'Infinity'``: NaN fails the second half."""
    return _pg_gt(x, bound) and x < math.inf


def _finite_ge(x: float, bound: float) -> bool:
    return _pg_ge(x, bound) and x < math.inf


def _rows(batch: pa.Table, schema: EventSchema) -> list[dict[str, Any]]:
    """The batch's rows as dicts of the schema's fields (missing nullable columns are null)."""
    columns = {}
    for f in schema.fields:
        if f.name in batch.column_names:
            columns[f.name] = [_normalise(f.type, v, f.name) for v in batch[f.name].to_pylist()]
        elif f.nullable:
            columns[f.name] = [None] * batch.num_rows
        else:
            raise ValueError(f"{schema.name} batch has no column {f.name!r}")
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _require(rows: Iterable[Mapping[str, Any]], schema: EventSchema) -> None:
    """NOT NULL of the schema's required fields, for every row before any other rule."""
    required = [f.name for f in schema.fields if not f.nullable]
    for rec in rows:
        if missing := [n for n in required if rec.get(n) is None]:
            raise StoreRuleViolation(_NOT_NULL, f"{schema.name}: null value in {missing[0]!r}")


def _check(checks: Sequence[tuple[str, Callable[[Mapping[str, Any]], bool]]],
           rows: Iterable[Mapping[str, Any]], what: str) -> None:
    """Per row, the CHECK constraints in name order (PostgreSQL's): the first failing is raised."""
    for rec in rows:
        for rule, ok in checks:
            if not ok(rec):
                raise StoreRuleViolation(rule, f"{what} violates {rule}: {dict(rec)}")


_TRADE_CHECKS = (
    ("trade_price_positive", lambda r: _finite_gt(r["price"], 0.0)),
    ("trade_size_non_negative", lambda r: _finite_ge(r["size"], 0.0)),
    ("trades_side_check", lambda r: r["side"] is None or r["side"] in _SIDES),
)
_QUOTE_CHECKS = (
    ("quote_ask_positive", lambda r: _finite_gt(r["ask_price"], 0.0)),
    ("quote_bid_positive", lambda r: _finite_gt(r["bid_price"], 0.0)),
    ("quotes_ask_size_check", lambda r: _finite_ge(r["ask_size"], 0.0)),
    ("quotes_bid_size_check", lambda r: _finite_ge(r["bid_size"], 0.0)),
)
_SIGNAL_CHECKS = (
    ("signals_strength_check", lambda r: math.isfinite(r["strength"])),
    ("signals_target_position_check",
     lambda r: r["target_position"] is None or math.isfinite(r["target_position"])),
)
_ORDER_CHECKS = (
    ("order_values", lambda r: _finite_gt(r["quantity"], 0.0)
     and (r["limit_price"] is None or _finite_gt(r["limit_price"], 0.0))),
    ("orders_order_type_check", lambda r: r["order_type"] in _ORDER_TYPES),
    ("orders_side_check", lambda r: r["side"] in _SIDES),
    ("orders_time_in_force_check", lambda r: r["time_in_force"] in _TIME_IN_FORCE),
)
_EXECUTION_CHECKS = (
    ("execution_values", lambda r: r["last_qty"] == 0 or _pg_gt(r["last_price"], 0.0)),
    ("executions_avg_price_check", lambda r: _pg_ge(r["avg_price"], 0.0)),
    ("executions_commission_check",
     lambda r: r["commission"] is None or _finite_ge(r["commission"], 0.0)),
    ("executions_cum_qty_check", lambda r: _pg_ge(r["cum_qty"], 0.0)),
    ("executions_last_price_check", lambda r: _finite_ge(r["last_price"], 0.0)),
    ("executions_last_qty_check", lambda r: _finite_ge(r["last_qty"], 0.0)),
    ("executions_leaves_qty_check", lambda r: _pg_ge(r["leaves_qty"], 0.0)),
    ("executions_side_check", lambda r: r["side"] in _SIDES),
)


@dataclass(frozen=True)
class _Bar:
    """A 1-minute bar's mergeable state. ``merge`` is commutative and associative (up to float
    addition order): open/close follow the smallest/largest (ts, seq) whatever the arrival order,
    and pv = sum(price * size) keeps the VWAP exact across merges."""

    open: float
    high: float
    low: float
    close: float
    volume: float
    pv: float
    trade_count: int
    open_ts: int
    open_seq: int
    close_ts: int
    close_seq: int

    @classmethod
    def of_trade(cls, rec: Mapping[str, Any]) -> _Bar:
        price, size, ts, seq = rec["price"], rec["size"], rec["ts"], rec["seq"]
        return cls(price, price, price, price, size, price * size, 1, ts, seq, ts, seq)

    def merge(self, new: _Bar) -> _Bar:
        first = (new.open_ts, new.open_seq) < (self.open_ts, self.open_seq)
        last = (new.close_ts, new.close_seq) > (self.close_ts, self.close_seq)
        return _Bar(
            open=new.open if first else self.open,
            high=max(self.high, new.high),
            low=min(self.low, new.low),
            close=new.close if last else self.close,
            volume=self.volume + new.volume,
            pv=self.pv + new.pv,
            trade_count=self.trade_count + new.trade_count,
            open_ts=new.open_ts if first else self.open_ts,
            open_seq=new.open_seq if first else self.open_seq,
            close_ts=new.close_ts if last else self.close_ts,
            close_seq=new.close_seq if last else self.close_seq,
        )

    @property
    def vwap(self) -> float | None:
        return self.pv / self.volume if self.volume > 0 else None


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class HBaseStore:
    """The ODS in HBase. ``table_prefix`` defaults to ``hbase.table_prefix`` (tests pass a
    scratch one); tables are ``<prefix>_<name>``. Safe to share between threads (calls are
    serialised on one Thrift connection), with the single-writer-per-symbol rule for ticks."""

    kind = "hbase"

    def __init__(self, cfg: Config, table_prefix: str | None = None) -> None:
        self.cfg = cfg
        self.table_prefix = table_prefix or cfg.hbase.table_prefix
        self._lock = threading.Lock()
        self._conn: happybase.Connection | None = None
        self._last_used = 0.0
        self._connection()  # fail now, not at the first write, if the server is unreachable

    def __repr__(self) -> str:
        h = self.cfg.hbase
        return f"HBaseStore({h.thrift_host}:{h.thrift_port}, prefix={self.table_prefix})"

    def __enter__(self) -> HBaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection ---------------------------------------------------------------------------------
    def _connection(self) -> happybase.Connection:
        """The open connection, reopened if the server may have dropped it while idle."""
        if self._conn is not None and time.monotonic() - self._last_used > _IDLE_REOPEN_S:
            self._drop_connection()
        if self._conn is None:
            h = self.cfg.hbase
            self._conn = happybase.Connection(h.thrift_host, h.thrift_port, timeout=_TIMEOUT_MS,
                                              autoconnect=True, table_prefix=self.table_prefix,
                                              table_prefix_separator="_")
        self._last_used = time.monotonic()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(TTransportException, OSError):  # already broken
                self._conn.close()
            self._conn = None

    def _rpc(self, call: Callable[[happybase.Connection], _T], *, retry: bool = True) -> _T:
        """Run ``call`` on the connection; once more on a fresh one after a transport error
        if ``retry`` (only for idempotent calls)."""
        with self._lock:
            try:
                result = call(self._connection())
            except (TTransportException, OSError):
                self._drop_connection()
                if not retry:
                    raise
                result = call(self._connection())
            self._last_used = time.monotonic()
            return result

    def _get(self, table: str, keys: Sequence[bytes],
             columns: Sequence[bytes] | None = None) -> dict[bytes, dict[bytes, bytes]]:
        """Batched gets: the rows among ``keys`` that exist."""
        found: dict[bytes, dict[bytes, bytes]] = {}
        for chunk in _chunks(list(dict.fromkeys(keys))):
            found.update(self._rpc(lambda c, chunk=chunk: dict(
                c.table(table).rows(list(chunk), columns=list(columns) if columns else None))))
        return found

    def _get_one(self, table: str, key: bytes) -> dict[bytes, bytes]:
        return self._rpc(lambda c: c.table(table).row(key))

    def _put(self, table: str, rows: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Batched puts (mutateRows); each row's put is atomic, the batch is not."""
        for chunk in _chunks(rows):
            def send(c: happybase.Connection, chunk: Sequence = chunk) -> None:
                with c.table(table).batch() as batch:
                    for key, data in chunk:
                        batch.put(key, data)
            self._rpc(send)

    def _cas(self, table: str, key: bytes, column: bytes, expected: bytes | None,
             value: bytes) -> bool:
        """Put ``value`` in ``column`` if it still holds ``expected`` (None: if it is absent)."""
        def call(c: happybase.Connection) -> bool:
            return c.client.checkAndPut(c.table(table).name, key, column, expected,
                                        Hbase_thrift.Mutation(column=column, value=value), {})
        return self._rpc(call, retry=False)

    # -- schema -------------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create the missing tables. Existing ones are left as they are: Thrift1 cannot alter a
        table, so a change of family options needs the HBase shell."""
        existing = set(self._rpc(lambda c: c.tables()))
        for name, families in TABLES.items():
            if name.encode() in existing:
                continue
            with contextlib.suppress(Hbase_thrift.AlreadyExists):  # created meanwhile elsewhere
                self._rpc(lambda c, n=name, f=families: c.create_table(n, f))

    def drop(self) -> None:
        """Disable and delete this store's tables."""
        existing = set(self._rpc(lambda c: c.tables()))
        for name in TABLES:
            if name.encode() in existing:
                self._rpc(lambda c, n=name: c.delete_table(n, disable=True))

    def close(self) -> None:
        with self._lock:
            self._drop_connection()

    # -- market data --------------------------------------------------------------------------------
    def write_trades(self, trades: pa.Table) -> int:
        """Store new trade ticks, then fold them into the 1m bars and the last trade."""
        fresh = self._write_ticks("trades", trades, TRADE, _TRADE_CHECKS, b"t", _TRADE_CELLS)
        if fresh:
            self._merge_bars(fresh)
            self._advance_latest(b"t", _LAST_TRADE_CELLS, fresh)
        return len(fresh)

    def write_quotes(self, quotes: pa.Table) -> int:
        """Store new quote ticks, then advance the latest quotes."""
        fresh = self._write_ticks("quotes", quotes, QUOTE, _QUOTE_CHECKS, b"q", _QUOTE_CELLS)
        if fresh:
            self._advance_latest(b"q", _LATEST_QUOTE_CELLS, fresh)
        return len(fresh)

    def _write_ticks(self, table: str, batch: pa.Table, schema: EventSchema,
                     checks: Sequence, family: bytes, cells: _Fields) -> list[dict[str, Any]]:
        """Check the whole batch, then put the ticks whose key is not stored yet (the first of
        repeated keys within the batch); returns those new ticks."""
        if batch.num_rows == 0:
            return []
        rows = _rows(batch, schema)
        _require(rows, schema)
        _check(checks, rows, schema.name)
        by_key: dict[bytes, dict[str, Any]] = {}
        for rec in rows:
            by_key.setdefault(tick_key(rec["symbol"], rec["ts"], rec["seq"]), rec)
        probe = family + b":" + cells[0][0].encode()  # a cell every tick has
        stored = self._get(table, list(by_key), [probe])
        fresh = [(key, rec) for key, rec in by_key.items() if key not in stored]
        self._put(table, [(key, _pack(family, cells, rec)) for key, rec in fresh])
        return [rec for _, rec in fresh]

    def _merge_bars(self, trades: list[dict[str, Any]]) -> None:
        """Aggregate the new trades per (symbol, minute) in (ts, seq) order and merge each into
        the stored bar: one multi-get, one multi-put (single writer per symbol)."""
        batch_bars: dict[bytes, _Bar] = {}
        for rec in sorted(trades, key=lambda r: (r["symbol"], r["ts"], r["seq"])):
            key = bar_key(rec["symbol"], rec["ts"] - rec["ts"] % NS_PER_MINUTE)
            bar = _Bar.of_trade(rec)
            batch_bars[key] = batch_bars[key].merge(bar) if key in batch_bars else bar
        stored = self._get("bars_1m", list(batch_bars))
        merged = []
        for key, bar in batch_bars.items():
            if key in stored:
                bar = _Bar(**_unpack(b"b", _BAR_CELLS, stored[key])).merge(bar)
            merged.append((key, _pack(b"b", _BAR_CELLS, vars(bar))))
        self._put("bars_1m", merged)

    def _advance_latest(self, family: bytes, cells: _Fields, ticks: list[dict[str, Any]]) -> None:
        """Per symbol, replace the stored latest tick if the batch has a greater (ts, seq)."""
        best: dict[str, dict[str, Any]] = {}
        for rec in ticks:
            cur = best.get(rec["symbol"])
            if cur is None or (rec["ts"], rec["seq"]) > (cur["ts"], cur["seq"]):
                best[rec["symbol"]] = rec
        keys = {symbol_prefix(s): rec for s, rec in best.items()}
        ts_col, seq_col = family + b":ts", family + b":seq"
        stored = self._get("latest", list(keys), [ts_col, seq_col])
        puts = []
        for key, rec in keys.items():
            old = stored.get(key)
            if old and ts_col in old:
                old_order = (_decode("timestamp_ns", old[ts_col]), _decode("int64", old[seq_col]))
                if (rec["ts"], rec["seq"]) <= old_order:
                    continue
            puts.append((key, _pack(family, cells, rec)))
        self._put("latest", puts)

    def bars(self, symbol: str, start_ns: int, end_ns: int) -> pa.Table:
        """Bars opening in [start_ns, end_ns): one row-key range scan, newest first, reversed."""
        import pyarrow as pa

        schema = arrow_schema(BAR)
        bounds = _ts_range(symbol_prefix(symbol), start_ns, end_ns)
        scanned = [] if bounds is None else self._rpc(lambda c: list(c.table("bars_1m").scan(
            row_start=bounds[0], row_stop=bounds[1], batch_size=_CHUNK)))
        rows = []
        for key, data in reversed(scanned):
            bar = _Bar(**_unpack(b"b", _BAR_CELLS, data))
            rows.append({"ts": _MAX_I64 - _U64.unpack(key[-8:])[0], "symbol": symbol,
                         "interval": "1m", "open": bar.open, "high": bar.high, "low": bar.low,
                         "close": bar.close, "volume": bar.volume, "vwap": bar.vwap,
                         "trade_count": bar.trade_count})
        return pa.Table.from_pylist(rows, schema=schema)

    def latest_quote(self, symbol: str) -> dict[str, Any] | None:
        row = self._get_one("latest", symbol_prefix(symbol))
        if b"q:ts" not in row:
            return None
        quote = _unpack(b"q", _LATEST_QUOTE_CELLS, row)
        return {name: symbol if name == "symbol" else quote[name] for name in QUOTE.names}

    def last_trade(self, symbol: str) -> dict[str, Any] | None:
        return _last_trade(symbol, self._get_one("latest", symbol_prefix(symbol)))

    def last_trades(self, symbols: Sequence[str]) -> dict[str, dict[str, Any]]:
        by_key = {symbol_prefix(s): s for s in symbols}
        found = {by_key[key]: _last_trade(by_key[key], row)
                 for key, row in self._get("latest", list(by_key)).items()}
        return {symbol: trade for symbol, trade in found.items() if trade is not None}

    # -- orders, executions, positions --------------------------------------------------------------
    def _order_doc(self, cl_ord_id: str) -> tuple[bytes | None, dict[str, Any] | None]:
        raw = self._get_one("orders", _salted(cl_ord_id, "cl_ord_id")).get(b"o:doc")
        return raw, (json.loads(raw) if raw is not None else None)

    def record_order(self, order: dict[str, Any]) -> None:
        """Create an order or move it along ``ORDER_TRANSITIONS``, as a compare-and-set of its
        document. As in the PostgreSQL store, a null in an update keeps the stored value of
        limit_price / symbol / side / order_type / quantity / account; time_in_force and
        strategy_id keep the values the order was created with."""
        rec = {f.name: _normalise(f.type, order.get(f.name), f.name) for f in ORDER.fields}
        if rec["cl_ord_id"] is None:
            raise StoreRuleViolation(_NOT_NULL, "order: null value in 'cl_ord_id'")
        key = _salted(rec["cl_ord_id"], "cl_ord_id")
        for _ in range(_CAS_ATTEMPTS):
            raw, old = self._order_doc(rec["cl_ord_id"])
            if old is None:
                if rec["status"] not in INITIAL_ORDER_STATES:
                    raise StoreRuleViolation("order_transition", f"order {rec['cl_ord_id']} "
                                             f"cannot start in state {rec['status']}")
                new = {**rec, "account": rec["account"] or "default", "created_ts": rec["ts"]}
            else:
                new = {**old, "ts": rec["ts"], "status": rec["status"]}
                for name in ("limit_price", "symbol", "side", "order_type", "quantity", "account"):
                    if rec[name] is not None:
                        new[name] = rec[name]
                fixed = ("symbol", "side", "order_type", "quantity", "account")
                if any(new[n] != old[n] for n in fixed):
                    raise StoreRuleViolation("order_immutable", f"order {rec['cl_ord_id']}: "
                                             "symbol, side, type, quantity and account cannot "
                                             "change")
                if rec["status"] not in ORDER_TRANSITIONS.get(old["status"], ()):
                    raise StoreRuleViolation("order_transition", f"order {rec['cl_ord_id']} "
                                             f"cannot move from {old['status']} to {rec['status']}")
            _require([new], ORDER)
            _check(_ORDER_CHECKS, [new], "order")
            if self._cas("orders", key, b"o:doc", raw, _doc(new)):
                return
        raise RuntimeError(f"order {rec['cl_ord_id']}: still contended after {_CAS_ATTEMPTS} tries")

    def order_status(self, cl_ord_id: str) -> str | None:
        _, doc = self._order_doc(cl_ord_id)
        return doc["status"] if doc else None

    def record_execution(self, execution: dict[str, Any]) -> bool:
        """Store an execution of a known order and fold a fill into its position. The exec_id is
        claimed with a put-if-absent, then the position moves by compare-and-set."""
        rec = {f.name: _normalise(f.type, execution.get(f.name), f.name)
               for f in EXECUTION.fields}
        _require([rec], EXECUTION)
        _check(_EXECUTION_CHECKS, [rec], "execution")
        key = _salted(rec["exec_id"], "exec_id")
        if self._get_one("executions", key):
            return False
        _, order = self._order_doc(rec["cl_ord_id"])
        if order is None:
            raise StoreRuleViolation("execution_order", f"execution {rec['exec_id']}: unknown "
                                     f"order {rec['cl_ord_id']}")
        if rec["order_status"] not in ORDER_TRANSITIONS:
            raise StoreRuleViolation("executions_order_status_fkey", f"execution "
                                     f"{rec['exec_id']}: unknown order status "
                                     f"{rec['order_status']}")
        if (rec["symbol"], rec["side"]) != (order["symbol"], order["side"]):
            raise StoreRuleViolation("execution_order", f"execution {rec['exec_id']} is "
                                     f"{rec['side']} {rec['symbol']}, its order is "
                                     f"{order['side']} {order['symbol']}")
        account = order["account"] or "default"
        if not self._cas("executions", key, b"e:doc", None, _doc({**rec, "account": account})):
            return False  # another writer stored it meanwhile
        if rec["last_qty"] > 0:
            self._apply_fill(account, rec)
        return True

    def _apply_fill(self, account: str, fill: Mapping[str, Any]) -> None:
        key = _position_key(account, fill["symbol"])
        qty, notional = fill["last_qty"], fill["last_qty"] * fill["last_price"]
        buy = fill["side"] == "B"
        for _ in range(_CAS_ATTEMPTS):
            raw = self._get_one("positions", key).get(b"p:doc")
            if raw is None:
                pos = {"account": account, "symbol": fill["symbol"], "fills": 0,
                       "last_fill_ts": fill["ts"], **dict.fromkeys(_POSITION_SUMS, 0.0)}
                # PostgreSQL starts from the fill itself, not 0.0 + fill: same result except
                # for -0.0, which a fill (last_qty > 0) cannot produce.
            else:
                pos = json.loads(raw)
            pos["quantity"] += qty if buy else -qty
            pos["buy_qty" if buy else "sell_qty"] += qty
            pos["buy_notional" if buy else "sell_notional"] += notional
            pos["commission"] += fill["commission"] or 0.0
            pos["fills"] += 1
            pos["last_fill_ts"] = max(pos["last_fill_ts"], fill["ts"])
            if self._cas("positions", key, b"p:doc", raw, _doc(pos)):
                return
        raise RuntimeError(f"position {account}/{fill['symbol']}: still contended after "
                           f"{_CAS_ATTEMPTS} tries")

    def position(self, account: str, symbol: str) -> dict[str, Any] | None:
        raw = self._get_one("positions", _position_key(account, symbol)).get(b"p:doc")
        if raw is None:
            return None
        pos = json.loads(raw)
        trade = self.last_trade(symbol)
        last_price = trade["price"] if trade else None
        cash = pos["sell_notional"] - pos["buy_notional"] - pos["commission"]
        return {"account": account, "symbol": symbol,
                **{name: pos[name] for name in _POSITION_SUMS}, "fills": pos["fills"],
                "cash": cash, "last_price": last_price,
                "pnl": None if last_price is None else cash + pos["quantity"] * last_price}

    # -- signals ------------------------------------------------------------------------------------
    def write_signals(self, signals: pa.Table) -> int:
        """Put every row (a repeated key replaces the stored row; within a batch the last one
        wins); returns the number of rows written."""
        if signals.num_rows == 0:
            return 0
        rows = _rows(signals, SIGNAL)
        _require(rows, SIGNAL)
        _check(_SIGNAL_CHECKS, rows, "signal")
        self._put("signals", [(_signal_key(r), _pack(b"s", _SIGNAL_CELLS, r)) for r in rows])
        return len(rows)

