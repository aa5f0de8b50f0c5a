"""Ticks -> the engine's market events, defined once for the live router and the DR replay.

The live router (``order_routing.live_source.KafkaMarketSource``) and the raw-zone replay
(``intelligence.replay_engine``) must hand the engine exactly the same bars for the same trades,
or a replay could not reproduce a live run's decisions. Both therefore use ``TradeBars`` (trades
-> bars of one interval) and ``QuoteEvents`` (quotes -> ``Quote`` events) from here.

``TradeBars``: the same OHLCV/VWAP the batch layer computes: open = first and close = last trade
by (ts, seq), vwap = notional / volume (None when the volume is 0). A symbol's bar is complete
when a trade of a later interval of that symbol arrives; complete bars are released in
(close time, symbol) order once EVERY symbol being built has moved past their close (or all of
them, on ``release(everything=True)``: a quiet feed, the end of a replay). Live, a symbol with no
trade for a while (a halt, an illiquid name) must not hold every other symbol's bars back until
it trades again: given each batch's arrival time (``add(..., now=)``) and ``release(now=)``, a
symbol none of whose trades arrived in the last ``idle_s`` holds nothing back once the others
have been past its bar's close for ``grace_s``: its bar is completed then and released in its
place in the order. The grace lets a trade of its that another partition delivers a little late
still land in its bar; a partition silent for longer than ``idle_s`` loses what it then delivers
for the bars already released (``LATE``, counted): the price of not freezing every symbol. The
replay passes no arrival times: its bars and their order are as they always were. A trade for a step
already released, or arriving after its bar closed, is counted as ``LATE``; a trade with a
non-positive price or negative size as ``INVALID_TRADE``. Nothing is dropped silently: every
rejection goes to ``reject(reason, detail)``.

``QuoteEvents``: each quote is an event at once; a quote older than the last one released cannot
be processed in order (``LATE``), an invalid one (``INVALID_QUOTE``) is refused by ``Quote``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa

from intelligence.domain import Bar, DomainError, Quote, interval_ns

Reject = Callable[[str, str], None]


class BarBuilder:
    """One symbol's bar in progress."""

    __slots__ = ("start", "open", "high", "low", "close", "volume", "notional", "count", "last")

    def __init__(self, start: int, price: float, size: float, key: tuple[int, int]) -> None:
        self.start, self.open = start, price
        self.high = self.low = self.close = price
        self.volume, self.notional, self.count, self.last = size, price * size, 1, key

    def add(self, price: float, size: float, key: tuple[int, int]) -> None:
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        if key >= self.last:
            self.close, self.last = price, key
        self.volume += size
        self.notional += price * size
        self.count += 1

    def bar(self, symbol: str, interval: str) -> Bar:
        vwap = self.notional / self.volume if self.volume > 0 else None
        return Bar(self.start, symbol, interval, self.open, self.high, self.low, self.close,
                   self.volume, vwap, self.count)


class TradeBars:
    """Bars of ``interval`` from trades, released in (close time, symbol) order (module doc)."""

    def __init__(self, interval: str, reject: Reject, symbols: Sequence[str] | None = None) -> None:
        self.length = interval_ns(interval)
        self.interval = interval
        self.reject = reject
        self.symbols = set(symbols) if symbols else None
        self.complete: list[tuple[int, str, Bar]] = []  # heap of (close, symbol, bar)
        self.released = -1  # close time of the last released step
        self.building: dict[str, BarBuilder] = {}
        self.arrived: dict[str, float] = {}  # symbol -> when its last trade arrived (``add(now=)``)
        self._overdue: dict[str, float] = {}  # idle symbol -> since when the others are past its bar

    def add(self, table: pa.Table | pa.RecordBatch, now: float | None = None) -> int:
        """Fold a batch of trades (columns ts, symbol, price, size, seq) in, in row order;
        returns how many were of the wanted symbols (the ticks considered). ``now``: when the
        batch arrived (any clock ``release``'s ``idle_before`` uses)."""
        cols = [table.column(n).to_pylist() for n in ("ts", "symbol", "price", "size", "seq")]
        wanted = self.symbols
        if now is not None:
            for symbol in set(cols[1]) if wanted is None else set(cols[1]) & wanted:
                self.arrived[symbol] = now
                self._overdue.pop(symbol, None)
        wanted, length, building = self.symbols, self.length, self.building
        ticks = 0
        for ts, symbol, price, size, seq in zip(*cols, strict=True):
            if wanted is not None and symbol not in wanted:
                continue
            ticks += 1
            if not (price > 0 and size >= 0):
                self.reject("INVALID_TRADE", f"{symbol} at {ts}: price {price}, size {size}")
                continue
            start = ts - ts % length
            builder = building.get(symbol)
            if builder is None or start > builder.start:
                if builder is not None:
                    self._complete(symbol, builder)
                if start + length <= self.released:
                    self.reject("LATE", f"{symbol} trade at {ts}: its step was released")
                    building.pop(symbol, None)
                    continue
                building[symbol] = BarBuilder(start, price, size, (ts, seq))
            elif start == builder.start:
                builder.add(price, size, (ts, seq))
            else:
                self.reject("LATE", f"{symbol} trade at {ts} after its bar closed")
        return ticks

    def _complete(self, symbol: str, builder: BarBuilder) -> None:
        bar = builder.bar(symbol, self.interval)
        heapq.heappush(self.complete, (builder.start + self.length, symbol, bar))

    def release(self, everything: bool = False, *, now: float | None = None, idle_s: float = 5.0,
                grace_s: float = 1.0) -> Iterator[Bar]:
        """Complete bars of the steps no symbol can still add to (or all of them). With ``now``
        (live), idle symbols hold nothing back once past their grace (module doc)."""
        building, heap = self.building, self.complete
        if everything:
            for symbol, builder in building.items():
                self._complete(symbol, builder)
            building.clear()
            self._overdue.clear()
        if now is None:
            horizon = min((b.start for b in building.values()), default=None)
        else:
            horizon = self._live_horizon(now, idle_s, grace_s)
        while heap and (everything or horizon is None or heap[0][0] <= horizon):
            close, _, bar = heapq.heappop(heap)
            self.released = close
            yield bar


    def _live_horizon(self, now: float, idle_s: float, grace_s: float) -> int | None:
        """The first step start still open: the active symbols' and those of the idle symbols
        still in their grace; an idle symbol past its grace is completed here."""
        building, arrived, overdue = self.building, self.arrived, self._overdue
        idle = [s for s in building if arrived.get(s, now) < now - idle_s]
        horizon = min((b.start for s, b in building.items() if s not in idle), default=None)
        # how far a release could go: up to the active symbols, or every complete bar
        top = horizon if horizon is not None else max((close for close, _, _ in self.complete), default=None)
        for symbol in idle:
            start = building[symbol].start
            if top is None or start + self.length > top:
                continue  # the others have not moved past its close
            if now - overdue.setdefault(symbol, now) >= grace_s:
                del overdue[symbol]
                self._complete(symbol, building.pop(symbol))
            elif horizon is None or start < horizon:
                horizon = start  # in its grace: it still holds its step
        return horizon


class QuoteEvents:
    """``Quote`` events from quote rows, in arrival order (module doc)."""

    def __init__(self, reject: Reject, symbols: Sequence[str] | None = None) -> None:
        self.reject = reject
        self.symbols = set(symbols) if symbols else None
        self.last_ts = -1
        self.ticks = 0

    def events(self, table: pa.Table | pa.RecordBatch) -> Iterator[Quote]:
        names = ("ts", "symbol", "bid_price", "bid_size", "ask_price", "ask_size")
        for row in zip(*[table.column(n).to_pylist() for n in names], strict=True):
            if self.symbols is not None and row[1] not in self.symbols:
                continue
            self.ticks += 1
            if row[0] < self.last_ts:
                self.reject("LATE", f"{row[1]} quote at {row[0]} after {self.last_ts}")
                continue
            try:
                quote = Quote(*row)
            except (DomainError, TypeError) as exc:
                self.reject("INVALID_QUOTE", str(exc))
                continue
            self.last_ts = row[0]
            yield quote
