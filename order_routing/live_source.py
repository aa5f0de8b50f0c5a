"""Live market data for the router's engine: the ingestion topics as the engine's events.

``mode="bars"``: trades (``ingest.topics.trades``) become bars of ``interval`` in-process, the
same OHLCV/VWAP the batch layer computes (open = first and close = last trade by (ts, seq)); a
symbol's bar is complete when a trade of a later interval of that symbol arrives. A time step is
released, in (close time, symbol) order as in a backtest, once EVERY symbol being built has moved
past it, or when the feed has been quiet for ``flush_after_s`` (then everything is released).

``mode="quotes"``: every quote (``ingest.topics.quotes``) is an event at once: the tick-to-order
path (benchmarks/tick_to_order.py) does not wait for a bar. Partitions are read as they come,
so a quote older than the last one released cannot be processed in order: it is counted in
``rejected['LATE']`` and logged, like an invalid row, never dropped silently.

No consumer group: the router starts at the live end (or ``from_beginning`` for a replay) and
yields ``None`` heartbeats while nothing arrives (the engine fires due timers on them).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence

from intelligence.domain import Bar, DomainError, Quote, interval_ns
from intelligence.sources import SourceError

log = logging.getLogger(__name__)


class _BarBuilder:
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


class KafkaMarketSource:
    def __init__(self, bootstrap: str, topic: str, *, mode: str = "bars", interval: str = "1m",
                 symbols: Sequence[str] | None = None, from_beginning: bool = False,
                 idle_timeout_s: float | None = None, max_events: int | None = None,
                 flush_after_s: float = 2.0, poll_timeout_ms: int = 50,
                 topic_wait_s: float = 30.0) -> None:
        if mode not in ("bars", "quotes"):
            raise ValueError(f"mode must be bars or quotes, got {mode!r}")
        self.length = interval_ns(interval)
        self.bootstrap, self.topic, self.mode, self.interval = bootstrap, topic, mode, interval
        self.symbols = set(symbols) if symbols else None
        self.from_beginning, self.idle_timeout_s, self.max_events = from_beginning, idle_timeout_s, max_events
        self.flush_after_s, self.poll_timeout_ms = flush_after_s, poll_timeout_ms
        self.topic_wait_s = topic_wait_s
        self.complete: list[tuple[int, str, Bar]] = []  # heap of (close, symbol, bar)
        self.released = -1  # close time of the last released step
        self.building: dict[str, _BarBuilder] = {}
        self.rejected: Counter[str] = Counter()
        self.messages = self.ticks = self.events = 0
        self.last_quote_ts = -1
        self.assigned = threading.Event()  # set once positioned: nothing published later is missed

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        if self.rejected[reason] <= 5 or self.rejected[reason] % 1000 == 0:
            log.warning("%s: %s (%d so far): %s", self.topic, reason, self.rejected[reason], detail)

    def _trades(self, table) -> None:
        cols = [table.column(n).to_pylist() for n in ("ts", "symbol", "price", "size", "seq")]
        for ts, symbol, price, size, seq in zip(*cols, strict=True):
            if self.symbols is not None and symbol not in self.symbols:
                continue
            self.ticks += 1
            if not (price > 0 and size >= 0):
                self._reject("INVALID_TRADE", f"{symbol} at {ts}: price {price}, size {size}")
                continue
            start = ts - ts % self.length
            builder = self.building.get(symbol)
            if builder is None or start > builder.start:
                if builder is not None:
                    self._complete(symbol, builder)
                if start + self.length <= self.released:
                    self._reject("LATE", f"{symbol} trade at {ts}: its step was released")
                    self.building.pop(symbol, None)
                    continue
                self.building[symbol] = _BarBuilder(start, price, size, (ts, seq))
            elif start == builder.start:
                builder.add(price, size, (ts, seq))
            else:
                self._reject("LATE", f"{symbol} trade at {ts} after its bar closed")

    def _complete(self, symbol: str, builder: _BarBuilder) -> None:
        bar = builder.bar(symbol, self.interval)
        heapq.heappush(self.complete, (builder.start + self.length, symbol, bar))

    def _release(self, everything: bool = False) -> Iterator[Bar]:
        """Complete bars of the steps no symbol can still add to (or all of them)."""
        if everything:
            for symbol, builder in self.building.items():
                self._complete(symbol, builder)
            self.building.clear()
        horizon = min((b.start for b in self.building.values()), default=None)
        heap = self.complete
        while heap and (everything or horizon is None or heap[0][0] <= horizon):
            close, _, bar = heapq.heappop(heap)
            self.released = close
            self.events += 1
            yield bar

    def _quotes(self, table) -> Iterator[Quote]:
        names = ("ts", "symbol", "bid_price", "bid_size", "ask_price", "ask_size")
        for row in zip(*[table.column(n).to_pylist() for n in names], strict=True):
            if self.symbols is not None and row[1] not in self.symbols:
                continue
            self.ticks += 1
            if row[0] < self.last_quote_ts:
                self._reject("LATE", f"{row[1]} quote at {row[0]} after {self.last_quote_ts}")
                continue
            try:
                quote = Quote(*row)
            except (DomainError, TypeError) as exc:
                self._reject("INVALID_QUOTE", str(exc))
                continue
            self.last_quote_ts = row[0]
            yield quote

    def _consumer(self):
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap.split(","), enable_auto_commit=False,
                                 client_id="tradelake-router", fetch_max_wait_ms=5)
        deadline = time.monotonic() + self.topic_wait_s
        while not (partitions := consumer.partitions_for_topic(self.topic)):
            if time.monotonic() > deadline:
                consumer.close()
                raise SourceError(f"Kafka topic {self.topic} does not exist on {self.bootstrap}")
            time.sleep(0.5)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        (consumer.seek_to_beginning if self.from_beginning else consumer.seek_to_end)(*tps)
        for tp in tps:
            consumer.position(tp)  # resolve the lazy seek now
        self.assigned.set()
        return consumer

    def __iter__(self) -> Iterator[Bar | Quote | None]:
        from ingestion import wire

        consumer = self._consumer()
        last_message = time.monotonic()
        try:
            while True:
                got = False
                for records in consumer.poll(timeout_ms=self.poll_timeout_ms).values():
                    for message in records:
                        got = True
                        self.messages += 1
                        try:
                            table = wire.decode(message.value)
                        except wire.WireError as exc:
                            self._reject("UNDECODABLE", f"offset {message.offset}: {exc}")
                            continue
                        if self.mode == "quotes":
                            for quote in self._quotes(table):
                                self.events += 1
                                yield quote
                        else:
                            self._trades(table)
                now = time.monotonic()
                if got:
                    last_message = now
                if self.mode == "bars":
                    quiet = not got and now - last_message >= self.flush_after_s
                    yield from self._release(everything=quiet)
                if self.max_events is not None and self.events >= self.max_events:
                    return
                if not got:
                    if self.idle_timeout_s is not None and now - last_message >= self.idle_timeout_s:
                        if self.mode == "bars":
                            yield from self._release(everything=True)
                        return
                    yield None
        finally:
            consumer.close()
