"""The operational store interface: what the speed layer, the serving merge and the trading
engine need from an operational data store, whatever holds it (PostgreSQL: ``ods.postgres``,
HBase: ``hbase.store``). ``open_store(cfg)`` returns the one ``ods.store`` selects.

Batches travel as Arrow tables whose columns are ``tradelake.schemas`` event fields (extra
columns are ignored, missing nullable ones are null). Single records (orders, executions) are
plain dicts keyed by the same field names.

Semantics every store keeps (tests/integration/ods/test_store_contract.py runs the same suite
against both):
- ticks are keyed by (symbol, ts, seq): a re-delivered tick is ignored, so writing a batch twice
  is harmless, and the write methods return how many rows were new;
- 1-minute bars are exactly the aggregate of the stored trades whatever order they arrived in:
  open/close are the first/last trade by (ts, seq), vwap = sum(price*size)/sum(size);
- the latest quote and last trade are the greatest (ts, seq) seen, not the last written;
- an order moves only along ``ORDER_TRANSITIONS``; an execution must name a known order and is
  keyed by exec_id; a position is the sum of its fills and cannot be written directly;
- a refused write raises ``StoreRuleViolation`` naming the rule, and stores nothing of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa

    from tradelake.config import Config

NS_PER_MINUTE = 60_000_000_000

# FIX OrdStatus names. A status may repeat itself (another partial fill) where listed.
ORDER_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "PENDING_NEW": ("NEW", "REJECTED", "PARTIALLY_FILLED", "FILLED", "CANCELED"),
    "NEW": ("PARTIALLY_FILLED", "FILLED", "PENDING_CANCEL", "PENDING_REPLACE", "CANCELED",
            "EXPIRED", "REJECTED", "DONE_FOR_DAY"),
    "PARTIALLY_FILLED": ("PARTIALLY_FILLED", "FILLED", "PENDING_CANCEL", "PENDING_REPLACE",
                         "CANCELED", "EXPIRED", "DONE_FOR_DAY"),
    "PENDING_CANCEL": ("CANCELED", "PARTIALLY_FILLED", "FILLED", "NEW"),
    "PENDING_REPLACE": ("NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REPLACED"),
    "DONE_FOR_DAY": ("CANCELED", "EXPIRED"),
    "FILLED": (), "CANCELED": (), "REJECTED": (), "EXPIRED": (), "REPLACED": (),
}
INITIAL_ORDER_STATES = ("PENDING_NEW", "NEW", "REJECTED")

# What ``position()`` returns, besides account and symbol. cash = sell_notional - buy_notional
# - commission; pnl = cash + quantity * last_price (the mark), None without a last trade.
POSITION_FIELDS = ("quantity", "buy_qty", "sell_qty", "buy_notional", "sell_notional",
                   "commission", "fills", "cash", "last_price", "pnl")


class StoreRuleViolation(ValueError):
    """A write broke a business rule of the store; ``rule`` names it (e.g. ``order_transition``)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule


class OperationalStore(Protocol):
    """One interface, two stores. All times are UTC nanoseconds since the epoch."""

    kind: str  # "postgres" or "hbase"

    def ensure_schema(self) -> None:
        """Create (or migrate) what the store needs; idempotent."""

    def write_trades(self, trades: pa.Table) -> int:
        """Store trade ticks and fold them into the 1m bars / last trade; returns new rows."""

    def write_quotes(self, quotes: pa.Table) -> int:
        """Store quote ticks and fold them into the latest quotes; returns new rows."""

    def bars(self, symbol: str, start_ns: int, end_ns: int) -> pa.Table:
        """1-minute bars of ``symbol`` opening in [start_ns, end_ns), by ts; BAR schema."""

    def latest_quote(self, symbol: str) -> dict[str, Any] | None:
        """The QUOTE fields of the greatest (ts, seq) quote of ``symbol``, or None."""

    def last_trade(self, symbol: str) -> dict[str, Any] | None:
        """ts, symbol, seq, price and size of the greatest (ts, seq) trade, or None."""

    def last_trades(self, symbols: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``last_trade`` of each of ``symbols`` that has traded, by symbol, in one query
        (HBase: one batched get per 1,000 symbols): a watchlist, or a poller, asks for many."""

    def record_order(self, order: dict[str, Any]) -> None:
        """Insert a new order (ORDER fields) or move an existing cl_ord_id to ``status``."""

    def order_status(self, cl_ord_id: str) -> str | None:
        """The order's current status, or None if unknown."""

    def record_execution(self, execution: dict[str, Any]) -> bool:
        """Store an EXECUTION report of a known order, fold a fill into its position;
        False if this exec_id was already stored (nothing changes)."""

    def position(self, account: str, symbol: str) -> dict[str, Any] | None:
        """account, symbol and ``POSITION_FIELDS``; None if the pair has no fills."""

    def write_signals(self, signals: pa.Table) -> int:
        """Store SIGNAL rows, a repeated key replacing the earlier row; returns rows written."""

    def drop(self) -> None:
        """Remove everything ensure_schema created (scratch stores of tests and benchmarks)."""

    def close(self) -> None:
        """Release connections."""


def open_store(cfg: Config, kind: str | None = None) -> OperationalStore:
    """The operational store the profile selects (``ods.store``), or ``kind`` if given."""
    kind = kind or cfg.ods.store
    if kind == "postgres":
        from ods.postgres import PostgresStore

        return PostgresStore(cfg)
    if kind == "hbase":
        from hbase.store import HBaseStore

        return HBaseStore(cfg)
    raise ValueError(f"unknown operational store {kind!r}; expected postgres or hbase")
