"""Where the engine's bars come from: the lake (backtests) or Kafka (live), as the same ``Bar``s.

Lake: ``read_lake_bars`` reads ``<warehouse.curated_db>.bars`` straight from its Parquet files
(the table's location comes from its DDL in hive/ddl/, partitions ``interval=<i>/dt=<date>``),
with pyarrow over the lake filesystem: no Spark session, so a backtest starts in a second. Rows
come out sorted by (ts, symbol): the event order of a backtest.

Kafka: ``KafkaBarSource`` consumes ``ingest.topics.bars`` (Arrow IPC batches in the wire format
of ingestion/wire.py, header ``tradelake-kind: bar``) and yields bars in the SAME order as the
lake would: a symbol's bars stay ordered in its partition, and an event-time buffer releases a
time step only once a later step has been seen (plus ``lateness``), sorted by (ts, symbol); a
bounded replay (``until_end``) releases everything in that order at the end offsets. So the same
strategy over the same bars makes the same decisions on either path
(tests/integration/intelligence/test_live_vs_lake.py). While nothing arrives it yields ``None``
heartbeats (the engine fires due timers on them). A message that is not a bar batch, a row that
is not a valid ``Bar`` or a bar older than what was already released is not used: it is counted
in ``rejected`` by reason and logged, never dropped silently.
"""

from __future__ import annotations

import heapq
import io
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hive.warehouse import statements
from intelligence.domain import Bar, DomainError, interval_ns
from tradelake.config import Config
from tradelake.lakefs import LakeFS, lake_fs

log = logging.getLogger(__name__)

BAR_FILE_COLUMNS = ("ts", "symbol", "open", "high", "low", "close", "volume", "vwap", "trade_count")


class SourceError(RuntimeError):
    """Bars could not be read (the message names the table, folder or topic)."""


# -- lake ------------------------------------------------------------------------------------
def table_location(cfg: Config, table: str) -> str:
    """A warehouse table's folder relative to the lake root, from its DDL (one definition)."""
    for st in statements(cfg):
        if st.kind == "TABLE" and st.name == table:
            marker = "LOCATION '"
            location = st.sql[st.sql.index(marker) + len(marker):].split("'", 1)[0]
            root = cfg.lake.root.rstrip("/") + "/"
            if not location.startswith(root):
                raise SourceError(f"{table} is located at {location}, outside the lake root {root}")
            return location[len(root):]
    raise SourceError(f"no DDL for table {table} in hive/ddl")


def read_lake_bars(cfg: Config, date_from: date, date_to: date, symbols: Sequence[str] | None = None,
                   interval: str = "1m", fs: LakeFS | None = None,
                   on_partition: Callable[[str, int], None] | None = None) -> pa.Table:
    """Bars of ``interval`` dated ``date_from..date_to`` (UTC), optionally of ``symbols`` only,
    sorted by (ts, symbol), with the BAR columns (``interval`` included). ``on_partition(dt,
    rows)`` is called after each date folder (progress)."""
    if date_to < date_from:
        raise ValueError(f"date_to {date_to} is before date_from {date_from}")
    interval_ns(interval)
    fs = fs or lake_fs(cfg)
    table = f"{cfg.warehouse.curated_db}.bars"
    base = f"{table_location(cfg, table)}/interval={interval}"
    wanted = pa.array(list(symbols), pa.string()) if symbols else None
    parts = []
    for folder in fs.list(base):
        if not folder.startswith("dt="):
            continue
        try:
            day = date.fromisoformat(folder[3:])
        except ValueError:
            continue
        if not date_from <= day <= date_to:
            continue
        rows = 0
        for name in fs.list(f"{base}/{folder}"):
            if name.startswith(("_", ".")):
                continue  # _SUCCESS, .crc and in-progress files
            part = pq.read_table(io.BytesIO(fs.read_bytes(f"{base}/{folder}/{name}")),
                                 columns=list(BAR_FILE_COLUMNS))
            if wanted is not None:
                part = part.filter(pc.is_in(part["symbol"], value_set=wanted))
            rows += part.num_rows
            parts.append(part.select(list(BAR_FILE_COLUMNS)))
        if on_partition:
            on_partition(folder[3:], rows)
    if not parts:
        return _empty_bars()
    bars = pa.concat_tables(parts, promote_options="permissive")
    bars = bars.append_column("interval", pa.array([interval] * bars.num_rows, pa.string()))
    bars = bars.select(["ts", "symbol", "interval", *BAR_FILE_COLUMNS[2:]])
    return bars.sort_by([("ts", "ascending"), ("symbol", "ascending")])


def _empty_bars() -> pa.Table:
    from tradelake.schemas import BAR, arrow_schema

    return arrow_schema(BAR).empty_table()


BAR_COLUMNS = ("ts", "symbol", "interval", "open", "high", "low", "close", "volume", "vwap", "trade_count")


def _pylist(column: pa.ChunkedArray | pa.Array) -> list:
    """A column as Python values, fast: numbers through numpy (C loops; ``to_pylist`` costs ~1 us a
    value), strings through their dictionary (one str object per distinct symbol, shared)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        encoded = pc.dictionary_encode(column)
        chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
        out: list = []
        for chunk in chunks:
            words = chunk.dictionary.to_pylist()
            if chunk.null_count:
                out += [None if i is None else words[i] for i in chunk.indices.to_pylist()]
            else:
                out += [words[i] for i in chunk.indices.to_numpy().tolist()]
        return out
    if column.null_count:
        return column.to_pylist()
    return column.to_numpy().tolist()


def bars_from_arrow(table: pa.Table | pa.RecordBatch) -> list[Bar]:
    """``Bar`` objects of an Arrow table with the BAR columns, in row order (each validated:
    a bad row raises DomainError naming it)."""
    cols = [_pylist(table.column(name)) for name in BAR_COLUMNS]
    return [Bar(*row) for row in zip(*cols, strict=True)]


def bars_to_arrow(bars: Iterable[Bar]) -> pa.Table:
    """The BAR Arrow table of ``bars`` (schema ``tradelake.schemas.arrow_schema(BAR)``)."""
    from tradelake.schemas import BAR, arrow_schema

    schema = arrow_schema(BAR)
    rows = list(bars)
    return pa.table({f.name: pa.array([getattr(b, f.name) for b in rows], f.type) for f in schema},
                    schema=schema)


# -- Kafka -----------------------------------------------------------------------------------
class EventTimeBuffer:
    """Re-sequences bars arriving in any cross-symbol interleaving into (close time, symbol) order.

    A bar is released once a bar whose close time is more than ``lateness_ns`` later has been seen
    (every symbol's bar of a step has then arrived, if feeds keep up to ``lateness``), or by
    ``flush()``. A bar at or before the last released time is late: ``push`` returns False.
    """

    __slots__ = ("lateness_ns", "_heap", "_seq", "newest", "released")

    def __init__(self, lateness_ns: int = 0) -> None:
        self.lateness_ns = lateness_ns
        self._heap: list[tuple[int, str, int, Bar]] = []
        self._seq = 0
        self.newest = -1
        self.released = -1

    def push(self, bar: Bar) -> bool:
        close = bar.ts + interval_ns(bar.interval)
        if close <= self.released:
            return False
        self._seq += 1
        heapq.heappush(self._heap, (close, bar.symbol, self._seq, bar))
        self.newest = max(self.newest, close)
        return True

    def ready(self) -> Iterator[Bar]:
        horizon = self.newest - self.lateness_ns
        while self._heap and self._heap[0][0] < horizon:
            close, _, _, bar = heapq.heappop(self._heap)
            self.released = close
            yield bar

    def flush(self) -> Iterator[Bar]:
        while self._heap:
            close, _, _, bar = heapq.heappop(self._heap)
            self.released = close
            yield bar


class KafkaBarSource:
    """Bars from a Kafka topic, in event-time order (see the module doc); iterate it once.

    Reads every partition of ``topic`` (assigned, no consumer group: an engine wants all of its
    symbols, and restarts from the live end or replays from the start, never from a committed
    offset). ``from_beginning``: start at the first offset instead of new messages only.
    ``until_end``: a bounded replay: stop at the end offsets the topic had when iteration started,
    holding every bar until then and releasing them all in event-time order, so the partitions'
    uneven fetching cannot reorder anything. Otherwise (live) a time step is released once a
    step more than ``lateness_s`` later has arrived, or after ``flush_after_s`` quiet seconds;
    iteration stops after ``max_bars`` bars or ``idle_timeout_s`` seconds without a message
    (None: never).
    """

    def __init__(self, bootstrap: str, topic: str, *, interval: str = "1m",
                 symbols: Sequence[str] | None = None, from_beginning: bool = False, until_end: bool = False,
                 idle_timeout_s: float | None = None, max_bars: int | None = None,
                 lateness_s: float = 0.0, flush_after_s: float = 1.0, poll_timeout_ms: int = 200,
                 topic_wait_s: float = 30.0) -> None:
        interval_ns(interval)
        self.bootstrap, self.topic, self.interval = bootstrap, topic, interval
        self.symbols = set(symbols) if symbols else None
        self.from_beginning, self.until_end = from_beginning, until_end
        self.idle_timeout_s, self.max_bars = idle_timeout_s, max_bars
        self.flush_after_s, self.poll_timeout_ms = flush_after_s, poll_timeout_ms
        self.topic_wait_s = topic_wait_s
        self.buffer = EventTimeBuffer(2**62 if until_end else int(lateness_s * 1e9))
        self.rejected: Counter[str] = Counter()
        self.messages = self.bars = 0
        self.assigned = threading.Event()  # set once positioned: from then on nothing published is missed

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        log.warning("bars topic %s: %s: %s", self.topic, reason, detail)

    def _decode(self, message) -> list[Bar]:
        from ingestion import wire

        headers = wire.header_map(message.headers)
        where = f"partition {message.partition} offset {message.offset}"
        if headers.get("tradelake-kind") != "bar":
            self._reject("NOT_A_BAR_MESSAGE", f"{where}: kind {headers.get('tradelake-kind')!r}")
            return []
        try:
            table = wire.decode(message.value)
        except wire.WireError as exc:
            self._reject("UNDECODABLE", f"{where}: {exc}")
            return []
        out = []
        for row in zip(*[_pylist(table.column(n)) for n in BAR_COLUMNS], strict=True):
            if row[2] != self.interval or (self.symbols is not None and row[1] not in self.symbols):
                continue
            try:
                out.append(Bar(*row))
            except (DomainError, TypeError) as exc:
                self._reject("INVALID_BAR", f"offset {message.offset}: {exc}")
        return out

    def _assign(self, consumer) -> list:
        from kafka import TopicPartition

        deadline = time.monotonic() + self.topic_wait_s
        while True:
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                break
            if time.monotonic() > deadline:
                raise SourceError(f"Kafka topic {self.topic} does not exist on {self.bootstrap}")
            time.sleep(0.5)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        if self.from_beginning:
            consumer.seek_to_beginning(*tps)
        else:
            consumer.seek_to_end(*tps)
        for tp in tps:
            consumer.position(tp)  # resolve the (lazy) seek now, not at the first poll
        self.assigned.set()
        return tps

    def _emit(self, bars: Iterable[Bar]) -> Iterator[Bar]:
        for bar in bars:
            self.bars += 1
            yield bar

    def __iter__(self) -> Iterator[Bar | None]:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap.split(","), enable_auto_commit=False,
                                 client_id="tradelake-intelligence")
        try:
            tps = self._assign(consumer)
            end = consumer.end_offsets(tps) if self.until_end else None
            last_message = time.monotonic()
            while True:
                if end is not None and all(consumer.position(tp) >= end[tp] for tp in tps):
                    yield from self._emit(self.buffer.flush())
                    return
                batches = consumer.poll(timeout_ms=self.poll_timeout_ms)
                now = time.monotonic()
                got = False
                for records in batches.values():
                    for message in records:
                        got = True
                        self.messages += 1
                        for bar in self._decode(message):
                            if not self.buffer.push(bar):
                                self._reject("LATE", f"{bar.symbol} bar at {bar.ts}: its step was released")
                if got:
                    last_message = now
                    released: Iterable[Bar] = self.buffer.ready()
                elif end is None and now - last_message >= self.flush_after_s:
                    released = self.buffer.flush()
                else:
                    released = ()
                for bar in self._emit(released):
                    yield bar
                    if self.max_bars is not None and self.bars >= self.max_bars:
                        return
                if not got:
                    if self.idle_timeout_s is not None and now - last_message >= self.idle_timeout_s:
                        yield from self._emit(self.buffer.flush())
                        return
                    yield None  # heartbeat: the engine fires due timers
        finally:
            consumer.close()
