"""Interactive Brokers live market data: tick-by-tick trades (and quotes) from TWS or IB Gateway
as typed Arrow tables, the same ``(kind, batch)`` stream ``MarketSimulator.batches()`` yields.

Off unless configured: ``IbMarketDataSource.from_config`` refuses an ``ib`` section whose
``enabled`` is false, so no checkout dials a broker by accident.

Why tick-by-tick ("AllLast" trades, "BidAsk" quotes) rather than ``reqMktData``: a tick-by-tick
message is one trade (or one complete top of book) with the exchange's time stamp, while
``reqMktData`` sends bid, ask and last as separate, untimed, sampled field updates. The price:
IB allows only a few simultaneous tick-by-tick subscriptions (tied to the account's market-data
lines), and ``quotes=True`` uses a second one per symbol.

Mapping to ``arrow_schema(TRADE)`` / ``arrow_schema(QUOTE)``:

* ``ts``: IB's tick time is whole seconds since the epoch (UTC); it becomes ns (x 1e9), so many
  ticks share a ``ts`` and ``seq`` orders them.
* ``seq``: the TWS API has no feed sequence numbers, so each symbol's ticks (trades and quotes
  together, as the simulator numbers them) are counted 1, 2, 3... in arrival order. The count
  restarts with every run, so ``trade_id = f"ib:{symbol}:{seq}"`` is unique within a run only.
* trades: ``exchange`` and ``conditions`` (IB's "special conditions") are null when IB sends
  them empty; ``side`` is null (IB does not report the aggressor); ``ingest_ts`` is null (the
  lake stamps it).
* quotes: ``exchange`` is null (IB's BidAsk is the consolidated SMART book).

Why the wrapper is tapped instead of reading ``Ticker.tickByTicks``: ib_async stamps each
tick-by-tick object with the local arrival time (``Wrapper.lastTime``, by design since
ib_insync) and drops the exchange time, and a ticker's tick lists are cleared on every socket
read, so polling them can lose ticks. The tap sees every decoded wire message, records it,
then hands it on to ib_async unchanged.

Nothing is validated here: a tick with a zero price reaches ``Validator.validate`` like any
other and is quarantined there, so every tick IB sent is accounted for in one place.

Event loop: ib_async runs on asyncio. ``batches()`` owns a private event loop and drives the
async stream one batch at a time, so it is a plain iterator; while the consumer holds a batch
the loop is idle and new ticks wait in the socket buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import pyarrow as pa
from ib_async import IB, Contract, Stock
from ib_async.ib import StartupFetchNONE

from tradelake.config import IbConfig
from tradelake.schemas import QUOTE, TRADE, arrow_schema

__all__ = ["IbMarketDataSource", "IbSourceError"]

log = logging.getLogger(__name__)

TRADE_SCHEMA = arrow_schema(TRADE)
QUOTE_SCHEMA = arrow_schema(QUOTE)
_NS = 1_000_000_000
_MAX_WAIT_S = 1.0  # longest sleep between checks, whatever the deadlines


def _is_warning(code: int) -> bool:
    """IB's informational codes (2100-2199: data farm status and the like; 10167: delayed data)."""
    return 2100 <= code < 2200 or code == 10167


class IbSourceError(RuntimeError):
    """TWS could not be reached, refused a contract or subscription, or went away mid-stream."""


class IbMarketDataSource:
    """Streams IB tick-by-tick data for US stocks as ``("trade" | "quote", pa.Table)`` batches.

    A batch is flushed once a kind has ``batch_rows`` ticks buffered, or once its oldest
    buffered tick is ``flush_interval_s`` old. The stream ends cleanly after ``max_ticks``
    ticks (trades and quotes together) or ``duration_s`` seconds of subscription, whichever
    comes first; with neither it runs until TWS goes away, which, like any loss of the
    connection before a limit is reached, raises ``IbSourceError`` (after yielding the ticks
    that did arrive).
    """

    def __init__(self, host: str, port: int, client_id: int, symbols: Iterable[str], *,
                 quotes: bool = False, batch_rows: int = 2000, flush_interval_s: float = 1.0,
                 max_ticks: int | None = None, duration_s: float | None = None,
                 connect_timeout_s: float = 10.0) -> None:
        self.host, self.port, self.client_id = host, int(port), int(client_id)
        self.symbols = tuple(symbols)
        if not self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols must be distinct and not empty, got {self.symbols!r}")
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, got {batch_rows!r}")
        if max_ticks is not None and max_ticks < 1:
            raise ValueError(f"max_ticks must be >= 1 or None, got {max_ticks!r}")
        for name, value in (("flush_interval_s", flush_interval_s), ("duration_s", duration_s),
                            ("connect_timeout_s", connect_timeout_s)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self.quotes = quotes
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.max_ticks = max_ticks
        self.duration_s = duration_s
        self.connect_timeout_s = connect_timeout_s

    @classmethod
    def from_config(cls, cfg: IbConfig, **options: Any) -> IbMarketDataSource:
        """The source the ``ib`` config section describes; ``options`` as for the constructor."""
        if not cfg.enabled:
            raise IbSourceError("the IB source is disabled: set ib.enabled: true in the profile "
                                "(or TRADELAKE_IB__ENABLED=true) to connect to TWS / IB Gateway")
        return cls(cfg.host, cfg.port, cfg.client_id, cfg.symbols, quotes=cfg.quotes, **options)

    @property
    def endpoint(self) -> str:
        return f"TWS/IB Gateway at {self.host}:{self.port} (client id {self.client_id})"

    def batches(self) -> Iterator[tuple[str, pa.Table]]:
        """Connect, subscribe and yield batches until a limit is reached (see the class doc).

        For synchronous callers (the pipeline): it runs its own event loop, so it cannot be
        called from inside a running one. Stopping early (``break``, ``close()``) still
        unsubscribes and disconnects.
        """
        loop = asyncio.new_event_loop()
        stream = self._stream()
        try:
            while True:
                try:
                    item = loop.run_until_complete(stream.__anext__())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            loop.run_until_complete(stream.aclose())  # unsubscribes and disconnects
            loop.close()

    # -- the async side ------------------------------------------------------------------------

    async def _stream(self) -> AsyncIterator[tuple[str, pa.Table]]:
        ib = IB()
        feed = _Feed(self.batch_rows, self.max_ticks)
        subscriptions: list[tuple[Contract, str]] = []
        try:
            await self._connect(ib)
            feed.attach(ib)
            streams = [("AllLast", "trade")] + ([("BidAsk", "quote")] if self.quotes else [])
            for contract in await self._qualify(ib, feed):
                for tick_type, kind in streams:
                    ticker = ib.reqTickByTickData(contract, tick_type)
                    feed.route(ib.wrapper.ticker2ReqId[tick_type][ticker], kind, contract.symbol)
                    subscriptions.append((contract, tick_type))
            deadline = None if self.duration_s is None else time.monotonic() + self.duration_s
            while True:
                done = feed.full or (deadline is not None and time.monotonic() >= deadline)
                connected = ib.isConnected()
                for batch in feed.take(self.flush_interval_s, force=done or not connected):
                    yield batch
                if feed.error:
                    raise IbSourceError(f"{self.endpoint}: {feed.error}")
                if done:
                    return
                if not connected:
                    raise IbSourceError(
                        f"lost the connection to {self.endpoint} after {feed.count} ticks, before "
                        f"the stream's limit (max_ticks={self.max_ticks}, "
                        f"duration_s={self.duration_s}); the ticks received were yielded")
                await feed.wait(feed.next_due(self.flush_interval_s, deadline))
        finally:
            if ib.isConnected():
                for contract, tick_type in subscriptions:
                    ib.cancelTickByTickData(contract, tick_type)
                conn = ib.client.conn
                ib.disconnect()
                # the transport writes the cancels out, then closes; its connection_lost clears
                # conn.transport. Wait for that (bounded): if the loop stops first, a loaded
                # machine can drop the cancels unsent
                for _ in range(200):
                    if not conn.isConnected():
                        break
                    await asyncio.sleep(0.01)

    async def _connect(self, ib: IB) -> None:
        """API handshake; readonly and no account/order sync: market data needs neither."""
        try:
            await ib.connectAsync(self.host, self.port, self.client_id, readonly=True,
                                  timeout=self.connect_timeout_s, fetchFields=StartupFetchNONE)
        except OSError as exc:  # refused, timed out, or "socket broken while connecting"
            raise IbSourceError(f"cannot connect to {self.endpoint}: {exc!r}; is TWS running with "
                                f"API connections enabled, and is the client id free?") from exc

    async def _qualify(self, ib: IB, feed: _Feed) -> list[Contract]:
        """Resolve each symbol to IB's unique contract (ib_async subscribes by conId)."""
        contracts = [Stock(symbol, "SMART", "USD") for symbol in self.symbols]
        try:
            await asyncio.wait_for(ib.qualifyContractsAsync(*contracts), self.connect_timeout_s)
        except TimeoutError as exc:
            raise IbSourceError(f"{self.endpoint} did not answer contract details for "
                                f"{list(self.symbols)} within {self.connect_timeout_s} s") from exc
        if unknown := [c.symbol for c in contracts if not c.conId]:
            said = "; ".join(feed.errors_about(unknown)) or "no unique contract"
            raise IbSourceError(f"{self.endpoint} does not know {unknown} as SMART-routed USD "
                                f"stocks: {said}")
        return contracts


class _Feed:
    """Receives decoded ticks from ib_async, numbers them per symbol and buffers them per kind."""

    def __init__(self, batch_rows: int, max_ticks: int | None) -> None:
        self.batch_rows = batch_rows
        self.max_ticks = max_ticks
        self.count = 0
        self.error: str | None = None
        self._said: dict[str, str] = {}  # symbol -> IB's last error about it, for diagnostics
        self._routes: dict[int, tuple[str, str]] = {}  # reqId -> (kind, symbol)
        self._seq: dict[str, int] = {}
        self._rows: dict[str, list[tuple[Any, ...]]] = {"trade": [], "quote": []}
        self._since: dict[str, float] = {}  # kind -> monotonic time its oldest buffered tick came
        self._wake = asyncio.Event()

    @property
    def full(self) -> bool:
        return self.max_ticks is not None and self.count >= self.max_ticks

    def attach(self, ib: IB) -> None:
        """Tap the wrapper's tick-by-tick callbacks (see the module doc) and listen for errors."""
        wrapper = ib.wrapper
        on_last, on_bid_ask = wrapper.tickByTickAllLast, wrapper.tickByTickBidAsk

        def all_last(req_id: int, tick_type: int, t: int, price: float, size: float, attrib: Any,
                     exchange: str, conditions: str) -> None:
            self._add(req_id, "trade", t, price, size, exchange or None, conditions or None)
            on_last(req_id, tick_type, t, price, size, attrib, exchange, conditions)

        def bid_ask(req_id: int, t: int, bid: float, ask: float, bid_size: float, ask_size: float,
                    attrib: Any) -> None:
            self._add(req_id, "quote", t, bid, bid_size, ask, ask_size)
            on_bid_ask(req_id, t, bid, ask, bid_size, ask_size, attrib)

        wrapper.tickByTickAllLast, wrapper.tickByTickBidAsk = all_last, bid_ask
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._wake.set

    def route(self, req_id: int, kind: str, symbol: str) -> None:
        self._routes[req_id] = (kind, symbol)

    def errors_about(self, symbols: list[str]) -> list[str]:
        return [self._said[symbol] for symbol in symbols if symbol in self._said]

    def _add(self, req_id: int, kind: str, t: int, *values: Any) -> None:
        route = self._routes.get(req_id)
        if route is None or route[0] != kind or self.full:
            return  # not ours, or past max_ticks: the stream is ending
        symbol = route[1]
        seq = self._seq[symbol] = self._seq.get(symbol, 0) + 1
        if kind == "trade":
            price, size, exchange, conditions = values
            row = (t * _NS, symbol, price, size, f"ib:{symbol}:{seq}", exchange, seq, None,
                   conditions, None)
        else:
            row = (t * _NS, symbol, *values, None, seq, None)
        rows = self._rows[kind]
        if not rows:
            self._since[kind] = time.monotonic()
        rows.append(row)
        self.count += 1
        self._wake.set()

    def _on_error(self, req_id: int, code: int, message: str, contract: Contract | None) -> None:
        text = f"IB error {code}: {message}"
        if contract is not None:
            self._said[contract.symbol] = text
        route = self._routes.get(req_id)
        if route is not None and not _is_warning(code):
            self.error = self.error or f"{route[0]} subscription for {route[1]} refused: {text}"
            self._wake.set()
        else:  # e.g. 2104 "data farm connection is OK" (info), 1100 "connectivity lost" (warning)
            log.log(logging.INFO if _is_warning(code) else logging.WARNING, "TWS: %s", text)

    def take(self, flush_interval_s: float, force: bool) -> Iterator[tuple[str, pa.Table]]:
        """Full batches, then remainders that are due (or all remainders when ``force``)."""
        now = time.monotonic()
        for kind, schema in (("trade", TRADE_SCHEMA), ("quote", QUOTE_SCHEMA)):
            rows = self._rows[kind]
            due = force or (rows and now - self._since[kind] >= flush_interval_s)
            cut = len(rows) if due else len(rows) - len(rows) % self.batch_rows
            for start in range(0, cut, self.batch_rows):
                yield kind, _table(schema, rows[start:min(start + self.batch_rows, cut)])
            del rows[:cut]  # a remainder keeps the older start time: flushed early, never late

    def next_due(self, flush_interval_s: float, deadline: float | None) -> float:
        """Seconds until something must be flushed or the stream's deadline passes."""
        now = time.monotonic()
        dues = [self._since[k] + flush_interval_s for k, rows in self._rows.items() if rows]
        if deadline is not None:
            dues.append(deadline)
        return max(0.0, min([now + _MAX_WAIT_S, *dues]) - now)

    async def wait(self, timeout: float) -> None:
        """Sleep until a tick, an error or a disconnect arrives, or ``timeout`` passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()


def _table(schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.Table:
    columns = zip(*rows, strict=True)
    return pa.Table.from_arrays([pa.array(col, f.type) for col, f in zip(columns, schema, strict=True)],
                                schema=schema)
