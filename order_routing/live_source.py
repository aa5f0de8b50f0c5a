"""Live market data for the router's engine: the ingestion topics as the engine's events.

``mode="bars"``: trades (``ingest.topics.trades``) become bars of ``interval`` in-process
(``intelligence.bar_builder.TradeBars``, shared with the DR replay so a replay builds the very same
bars), the same OHLCV/VWAP the batch layer computes (open = first and close = last trade by (ts, seq)); a
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

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence

from intelligence.bar_builder import QuoteEvents, TradeBars
from intelligence.domain import Bar, Quote, interval_ns
from intelligence.sources import SourceError

log = logging.getLogger(__name__)

# kafka-python consumer settings (benchmarks/tick_to_order.py's Kafka floor uses the same). The
# broker answers a waiting fetch as soon as a message arrives, so fetch_max_wait_ms (how long it
# holds an EMPTY fetch) costs no latency; it only sets how often an idle consumer asks again.
# 5 ms (the old value) meant 200 empty fetches/s, and on a busy 2-core host the broker and the
# consumer paid for them on every tick: produce->consume p50 7-9 ms vs 3-4 ms at 500 (Kafka's
# default), measured in the same conditions. Heartbeats are unaffected: ``poll`` still returns
# every ``poll_timeout_ms`` while the fetch waits at the broker.
CONSUMER_SETTINGS: dict[str, int] = {"fetch_max_wait_ms": 500}


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
        self.rejected: Counter[str] = Counter()
        self.bars = TradeBars(interval, self._reject, symbols)
        self.quotes = QuoteEvents(self._reject, symbols)
        self.messages = self.ticks = self.events = 0
        self.last_message_ms: int | None = None  # Kafka timestamp of the latest message read
        self.assigned = threading.Event()  # set once positioned: nothing published later is missed

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        if self.rejected[reason] <= 5 or self.rejected[reason] % 1000 == 0:
            log.warning("%s: %s (%d so far): %s", self.topic, reason, self.rejected[reason], detail)

    def _trades(self, table) -> None:
        self.ticks += self.bars.add(table)

    def _release(self, everything: bool = False) -> Iterator[Bar]:
        for bar in self.bars.release(everything):
            self.events += 1
            yield bar

    def _quotes(self, table) -> Iterator[Quote]:
        before = self.quotes.ticks
        yield from self.quotes.events(table)
        self.ticks += self.quotes.ticks - before

    def _consumer(self):
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap.split(","), enable_auto_commit=False,
                                 client_id="tradelake-router", **CONSUMER_SETTINGS)
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
                        self.last_message_ms = message.timestamp  # producer time: tick -> order latency
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
