"""Live market data for the router's engine: the ingestion topics as the engine's events.

``mode="bars"``: trades (``ingest.topics.trades``) become bars of ``interval`` in-process
(``intelligence.bar_builder.TradeBars``, shared with the DR replay so a replay builds the very same
bars), the same OHLCV/VWAP the batch layer computes (open = first and close = last trade by (ts, seq)); a
symbol's bar is complete when a trade of a later interval of that symbol arrives. A time step is
released, in (close time, symbol) order as in a backtest, once EVERY symbol being built has moved
past it, or when the feed has been quiet for ``flush_after_s`` (then everything is released). A
symbol none of whose trades arrived in the last ``symbol_idle_s`` (a halt, an illiquid name)
holds nothing back once the other symbols have been past its bar's close for ``idle_grace_s``:
its bar is completed then and released in its place (``TradeBars``; before, one halted symbol
held every other symbol's bars back until it traded again, however busy the feed).
Nothing is released in the first ``settle_s`` after the first message: a symbol the source has
not seen yet cannot hold a step back, and at the start the partitions deliver unevenly (in the
demo's first run one symbol's partition ran four bars of event time ahead of another's, whose
first 1,000+ trades then came LATE and its first bars were lost).

``mode="quotes"``: every quote (``ingest.topics.quotes``) is an event at once: the tick-to-order
path (benchmarks/tick_to_order.py) does not wait for a bar. Partitions are read as they come,
so a quote older than the last one released cannot be processed in order: it is counted in
``rejected['LATE']`` and logged, like an invalid row, never dropped silently.

No consumer group: the router starts at the live end (or ``from_beginning`` for a replay) and
yields ``None`` heartbeats while nothing arrives (the engine fires due timers on them).

Two Kafka clients read the topic, by ``client`` (``routing.market_data_client``):
``librdkafka`` (confluent-kafka, the default) or ``kafka-python``. librdkafka fetches on its own
C thread, so a message waits for neither the GIL nor a Python fetch loop: on this 2-core host,
with the same producer, the produce -> consume floor was p50 1.5-1.75 ms against 2.2-2.3 ms with
kafka-python's consumer (README, tick-to-order benchmark). Both start at the same place: the end
offsets the broker reports when the source is positioned (``assigned``), or the beginning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from intelligence.bar_builder import QuoteEvents, TradeBars
from intelligence.domain import Bar, Quote, interval_ns
from intelligence.sources import SourceError

log = logging.getLogger(__name__)

KAFKA_CLIENTS = ("librdkafka", "kafka-python")

# kafka-python consumer settings (benchmarks/tick_to_order.py's Kafka floor uses the same). The
# broker answers a waiting fetch as soon as a message arrives, so fetch_max_wait_ms (how long it
# holds an EMPTY fetch) costs no latency; it only sets how often an idle consumer asks again.
# 5 ms (the old value) meant 200 empty fetches/s, and on a busy 2-core host the broker and the
# consumer paid for them on every tick: produce->consume p50 7-9 ms vs 3-4 ms at 500 (Kafka's
# default), measured in the same conditions. Heartbeats are unaffected: ``poll`` still returns
# every ``poll_timeout_ms`` while the fetch waits at the broker.
CONSUMER_SETTINGS: dict[str, int] = {"fetch_max_wait_ms": 500}
# librdkafka's: the same fetch wait (see above), Nagle off (a fetch request is never held back
# behind an unacknowledged one). The client requires a ``group.id``, but the partitions are
# assigned, never subscribed, and no offset is committed: the group is never joined.
LIBRDKAFKA_SETTINGS: dict[str, object] = {"fetch.wait.max.ms": 500, "socket.nagle.disable": True,
                                          "enable.auto.commit": False, "enable.partition.eof": False,
                                          "group.id": "tradelake-router"}

Message = tuple[bytes | None, bytes | None, int, int | None]  # (value, key, offset, Kafka timestamp ms)


def _partitions(lookup: Callable[[float], Iterable[int] | None], topic: str, bootstrap: str,
                wait_s: float) -> list[int]:
    """The topic's partition ids, asking ``lookup(timeout_s)`` until it has some or ``wait_s``
    has passed (a topic created a moment ago may not be in the metadata yet)."""
    deadline = time.monotonic() + wait_s
    while not (partitions := lookup(min(5.0, max(1.0, deadline - time.monotonic())))):
        if time.monotonic() > deadline:
            raise SourceError(f"Kafka topic {topic} does not exist on {bootstrap}")
        time.sleep(0.5)
    return sorted(partitions)


@contextmanager
def _positioning(consumer, errors: type[BaseException] | tuple[type[BaseException], ...],
                 topic: str, bootstrap: str) -> Iterator[None]:
    """Positioning ``consumer``: on any failure it is closed; a client error becomes SourceError."""
    try:
        yield
    except errors as exc:
        consumer.close()
        raise SourceError(f"Kafka {bootstrap}, topic {topic}: {exc}") from exc
    except BaseException:
        consumer.close()
        raise


class _KafkaPythonReader:
    """The topic through kafka-python, positioned at the end (or the beginning)."""

    def __init__(self, bootstrap: str, topic: str, from_beginning: bool, topic_wait_s: float,
                 client_id: str) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        try:
            consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                                     client_id=client_id, **CONSUMER_SETTINGS)
        except KafkaError as exc:
            raise SourceError(f"Kafka {bootstrap}, topic {topic}: {exc}") from exc
        with _positioning(consumer, KafkaError, topic, bootstrap):
            partitions = _partitions(lambda _: consumer.partitions_for_topic(topic), topic, bootstrap,
                                     topic_wait_s)
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            (consumer.seek_to_beginning if from_beginning else consumer.seek_to_end)(*tps)
            for tp in tps:
                consumer.position(tp)  # resolve the lazy seek now
        self._consumer = consumer

    def poll(self, timeout_ms: int) -> list[Message]:
        return [(m.value, m.key, m.offset, m.timestamp)
                for records in self._consumer.poll(timeout_ms=timeout_ms).values() for m in records]

    def close(self) -> None:
        self._consumer.close()


class _LibrdkafkaReader:
    """The topic through librdkafka (confluent-kafka): each partition assigned at the high
    watermark the broker reports now (or at the beginning), so nothing published after the
    constructor returns is missed."""

    def __init__(self, bootstrap: str, topic: str, from_beginning: bool, topic_wait_s: float,
                 client_id: str) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

        consumer = Consumer({"bootstrap.servers": bootstrap, "client.id": client_id, **LIBRDKAFKA_SETTINGS},
                            logger=log)  # librdkafka's own log lines through ours, not raw stderr

        def lookup(timeout_s: float) -> Iterable[int] | None:
            meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
            return meta.partitions if meta is not None and meta.error is None else None

        with _positioning(consumer, KafkaException, topic, bootstrap):
            start = []
            for p in _partitions(lookup, topic, bootstrap, topic_wait_s):
                if from_beginning:
                    start.append(TopicPartition(topic, p, OFFSET_BEGINNING))
                else:
                    _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    start.append(TopicPartition(topic, p, high))
            consumer.assign(start)
        self._consumer, self.topic = consumer, topic
        self._errors: Counter[str] = Counter()

    def poll(self, timeout_ms: int) -> list[Message]:
        # consume(n, timeout) waits for n messages or the whole timeout: a tick would sit in it
        # for up to timeout_ms (p50 29 ms measured). poll() returns with the first message; what
        # else is already here is taken without waiting.
        first = self._consumer.poll(timeout_ms / 1000)
        if first is None:
            return []
        out: list[Message] = []
        for m in (first, *self._consumer.consume(num_messages=10_000, timeout=0)):
            error = m.error()
            if error is not None:
                if error.fatal():  # the source ends: what this batch took is not yielded either
                    raise SourceError(f"Kafka topic {self.topic}: {error}")
                self._errors[error.name()] += 1
                n = self._errors[error.name()]
                if n <= 5 or n % 1000 == 0:
                    log.warning("Kafka topic %s: %s (%d so far; the client retries)", self.topic, error, n)
                continue
            kind, ts = m.timestamp()
            out.append((m.value(), m.key(), m.offset(), ts if kind else None))
        return out

    def close(self) -> None:
        self._consumer.close()


def open_reader(client: str, bootstrap: str, topic: str, *, from_beginning: bool = False,
                topic_wait_s: float = 30.0, client_id: str = "tradelake-router"):
    """A positioned reader of ``topic`` through ``client`` (one of ``KAFKA_CLIENTS``):
    ``poll(timeout_ms)`` -> [(value, key, offset, timestamp ms)], ``close()``. Raises SourceError
    when the topic does not exist or the broker cannot be reached."""
    if client == "librdkafka":
        return _LibrdkafkaReader(bootstrap, topic, from_beginning, topic_wait_s, client_id)
    if client == "kafka-python":
        return _KafkaPythonReader(bootstrap, topic, from_beginning, topic_wait_s, client_id)
    raise ValueError(f"Kafka client must be one of {', '.join(KAFKA_CLIENTS)}, got {client!r}")


class KafkaMarketSource:
    def __init__(self, bootstrap: str, topic: str, *, mode: str = "bars", interval: str = "1m",
                 symbols: Sequence[str] | None = None, from_beginning: bool = False,
                 idle_timeout_s: float | None = None, max_events: int | None = None,
                 flush_after_s: float = 2.0, poll_timeout_ms: int = 50, settle_s: float = 1.0,
                 symbol_idle_s: float = 5.0, idle_grace_s: float = 1.0, topic_wait_s: float = 30.0,
                 client: str = "librdkafka") -> None:
        if mode not in ("bars", "quotes"):
            raise ValueError(f"mode must be bars or quotes, got {mode!r}")
        if client not in KAFKA_CLIENTS:
            raise ValueError(f"client must be one of {', '.join(KAFKA_CLIENTS)}, got {client!r}")
        self.client = client
        self.length = interval_ns(interval)
        self.bootstrap, self.topic, self.mode, self.interval = bootstrap, topic, mode, interval
        self.symbols = set(symbols) if symbols else None
        self.from_beginning, self.idle_timeout_s, self.max_events = from_beginning, idle_timeout_s, max_events
        self.flush_after_s, self.poll_timeout_ms, self.settle_s = flush_after_s, poll_timeout_ms, settle_s
        self.symbol_idle_s, self.idle_grace_s = symbol_idle_s, idle_grace_s
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

    def _trades(self, table, now: float) -> None:
        self.ticks += self.bars.add(table, now)

    def _release(self, everything: bool, now: float) -> Iterator[Bar]:
        bars = self.bars.release(everything, now=now, idle_s=self.symbol_idle_s, grace_s=self.idle_grace_s)
        for bar in bars:
            self.events += 1
            yield bar

    def _quotes(self, table) -> Iterator[Quote]:
        before = self.quotes.ticks
        yield from self.quotes.events(table)
        self.ticks += self.quotes.ticks - before

    def _reader(self):
        reader = open_reader(self.client, self.bootstrap, self.topic, from_beginning=self.from_beginning,
                             topic_wait_s=self.topic_wait_s)
        self.assigned.set()
        return reader

    def __iter__(self) -> Iterator[Bar | Quote | None]:
        from ingestion import wire

        reader = self._reader()
        last_message = time.monotonic()
        settled_at: float | None = None  # when bars may be released: settle_s after the first message
        try:
            while True:
                got = False
                for value, _, offset, timestamp_ms in reader.poll(self.poll_timeout_ms):
                    got = True
                    self.messages += 1
                    self.last_message_ms = timestamp_ms  # producer time: tick -> order latency
                    if not value:
                        self._reject("UNDECODABLE", f"offset {offset}: an empty message (or a tombstone)")
                        continue
                    try:
                        table = wire.decode(value)
                    except wire.WireError as exc:
                        self._reject("UNDECODABLE", f"offset {offset}: {exc}")
                        continue
                    if self.mode == "quotes":
                        for quote in self._quotes(table):
                            self.events += 1
                            yield quote
                    else:
                        self._trades(table, time.monotonic())
                now = time.monotonic()
                if got:
                    last_message = now
                    if settled_at is None:
                        settled_at = now + self.settle_s
                if self.mode == "bars":
                    quiet = not got and now - last_message >= self.flush_after_s
                    if quiet or (settled_at is not None and now >= settled_at):
                        yield from self._release(quiet, now)
                if self.max_events is not None and self.events >= self.max_events:
                    return
                if not got:
                    if self.idle_timeout_s is not None and now - last_message >= self.idle_timeout_s:
                        if self.mode == "bars":
                            yield from self._release(True, now)
                        return
                    yield None
        finally:
            reader.close()
