"""Disaster-recovery replay: the lake's raw zone read back in event-time order.

The raw zone is the master dataset (``raw/<topic>/dt=YYYY-MM-DD/p<partition>-o<first>-o<last>
.parquet``, written by the lander: exactly what arrived, with Kafka partition and offset on every
row). ``RawReplay`` turns any time range of it into batches of events in one deterministic order,
which a target consumes: Kafka (``KafkaTarget`` below: re-publish), the operational store
(``ods.rebuild``: rebuild it on the bulk path) or the trading engine (``intelligence.replay_engine``).

Order. Events are ordered by the key

    (ts, topic rank, symbol, seq, kafka_partition, kafka_offset, row in file)

where the topic rank follows ``KIND_ORDER`` (trades before quotes before bars ... at equal ts;
then topic name), symbols compare as UTF-8 bytes, a topic without ``seq`` counts it as 0, and the
last three name one landed row uniquely. Every file is a sorted run in (partition, offset) order;
the k-way merge of all the runs of a day (every topic, every partition, every file) is done as one
stable sort by ts (numpy, in C) followed by ordering only the rows that share a ts by the rest of
the key: a merge of sorted runs written as a sort, ~0.1-0.3 s per million events, instead of an
event-by-event Python heap. The key is total, so the same files
always give the same order, whatever order they were listed or read in.

Memory is bounded by two days: the ``dt`` folders are read in date order, each day's events are
sorted and handed out in batches while the next day's files are being read (prefetch). The
lander files a Kafka message whole under the date of its first row, so a folder may hold rows of
later days (a message spanning midnight): those are
carried into the next day's sort, and ``lookback_days`` earlier folders are read for the same
reason at the start of a range. A row dated before what was already emitted (which only a message
whose rows are out of time order could cause) stops the replay with ``ReplayError`` instead of
being emitted out of order.

Counts reconcile: ``read = emitted + filtered by time + filtered by symbol`` (``ReplayStats``).
``Pacer`` paces batches by event time at N x real time (``--speed``); unpaced is ``max``.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingestion.lake_layout import OffsetRange, partition_dates
from ingestion.lander import TopicSpec
from tradelake.lakefs import LakeFS

log = logging.getLogger(__name__)

KIND_ORDER = ("trade", "quote", "bar", "order", "execution")
NS_PER_DAY = 86_400 * 1_000_000_000
_ROW = "__row"  # a file's row number: the last tie-break (rows of one Kafka message)


class ReplayError(RuntimeError):
    """The raw zone cannot be replayed as asked; the message says why."""


def day_start_ns(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000_000


def utc_day(ns: int) -> date:
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).date()


@dataclass
class ReplayStats:
    """What a replay read and handed out; ``reconciles()`` is the no-silent-drop check."""

    files: int = 0
    days: int = 0
    bytes: int = 0
    read: dict[str, int] = field(default_factory=dict)  # rows read per topic
    emitted: dict[str, int] = field(default_factory=dict)  # rows handed to the target per topic
    filtered_time: int = 0
    filtered_symbol: int = 0
    first_ts: int | None = None
    last_ts: int | None = None

    @property
    def rows_read(self) -> int:
        return sum(self.read.values())

    @property
    def rows_emitted(self) -> int:
        return sum(self.emitted.values())

    def reconciles(self) -> bool:
        return self.rows_read == self.rows_emitted + self.filtered_time + self.filtered_symbol

    def as_dict(self) -> dict:
        return {"files": self.files, "days": self.days, "bytes": self.bytes, "read": self.rows_read,
                "emitted": self.rows_emitted, "filtered_time": self.filtered_time,
                "filtered_symbol": self.filtered_symbol, "read_by_topic": dict(self.read),
                "emitted_by_topic": dict(self.emitted), "first_ts": self.first_ts, "last_ts": self.last_ts,
                "reconciled": self.reconciles()}


@dataclass(frozen=True)
class ReplayBatch:
    """Consecutive events of the replay order. ``ts`` and ``source`` give, per event, its time
    and its topic's index in ``topics``; ``tables[topic]`` holds that topic's rows of the batch
    in replay order (the file columns: the event schema plus Kafka partition and offset)."""

    topics: tuple[str, ...]
    ts: np.ndarray
    source: np.ndarray
    tables: dict[str, pa.Table]

    def __len__(self) -> int:
        return len(self.ts)

    def events(self) -> Iterator[tuple[str, int]]:
        """(topic, row in ``tables[topic]``) of every event, in replay order."""
        seen = [0] * len(self.topics)
        for k in self.source.tolist():
            yield self.topics[k], seen[k]
            seen[k] += 1


def ordered_specs(specs: Sequence[TopicSpec]) -> list[TopicSpec]:
    """Topics in tie-break order: by ``KIND_ORDER``, then by name."""
    def rank(spec: TopicSpec) -> tuple[int, str]:
        kind = KIND_ORDER.index(spec.kind) if spec.kind in KIND_ORDER else len(KIND_ORDER)
        return kind, spec.topic
    return sorted(specs, key=rank)


class RawReplay:
    """The raw zone's events of ``specs`` with ``start_ns <= ts < end_ns`` (and, if given, of
    ``symbols`` only), in replay order (module doc), ``batch_events`` at a time; a batch never
    spans more than ``max_span_ns`` of event time (pacing) nor two days' sorts."""

    def __init__(self, fs: LakeFS, specs: Sequence[TopicSpec], start_ns: int, end_ns: int, *,
                 symbols: Sequence[str] | None = None, batch_events: int = 65_536, lookback_days: int = 1,
                 max_span_ns: int | None = None, read_threads: int = 8,
                 on_day: Callable[[str, ReplayStats], None] | None = None) -> None:
        if end_ns <= start_ns:
            raise ValueError(f"the range is empty: --to ({end_ns}) must be after --from ({start_ns})")
        if batch_events < 1 or lookback_days < 0:
            raise ValueError("batch_events must be >= 1 and lookback_days >= 0")
        if not specs:
            raise ValueError("no topics to replay")
        self.fs, self.specs = fs, ordered_specs(specs)
        self.topics = tuple(s.topic for s in self.specs)
        self.start_ns, self.end_ns = start_ns, end_ns
        self.symbols = pa.array(sorted(set(symbols)), pa.string()) if symbols else None
        self.batch_events, self.lookback_days = batch_events, lookback_days
        self.max_span_ns, self.read_threads, self.on_day = max_span_ns, read_threads, on_day
        self.stats = ReplayStats(read={t: 0 for t in self.topics}, emitted={t: 0 for t in self.topics})

    # -- planning -------------------------------------------------------------------------------
    def plan(self) -> list[tuple[date, list[tuple[int, str]]]]:
        """Per ``dt`` folder in date order: (topic index, file path) of every landed file."""
        first = utc_day(self.start_ns) - timedelta(days=self.lookback_days)
        last = utc_day(self.end_ns - 1)
        days: dict[date, list[tuple[int, str]]] = {}
        for k, spec in enumerate(self.specs):
            for dt in partition_dates(self.fs, spec.zone, spec.topic):
                try:
                    day = date.fromisoformat(dt)
                except ValueError:
                    continue
                if not first <= day <= last:
                    continue
                folder = f"{spec.zone}/{spec.topic}/dt={dt}"
                for name in self.fs.list(folder):
                    if OffsetRange.parse(name) is None:
                        if not name.startswith(("_", ".")):
                            log.warning("%s/%s is not a landed file name: not replayed", folder, name)
                        continue
                    days.setdefault(day, []).append((k, f"{folder}/{name}"))
        return [(day, sorted(files)) for day, files in sorted(days.items())]

    # -- reading --------------------------------------------------------------------------------
    def _read(self, k: int, path: str) -> tuple[pa.Table, int]:
        """A landed file's rows (its schema checked) with their row numbers, and its size."""
        spec = self.specs[k]
        data = self.fs.read_bytes(path)
        table = pq.read_table(io.BytesIO(data))
        wanted = spec.file_schema
        missing = [n for n in wanted.names if n not in table.column_names]
        if missing:
            raise ReplayError(f"{path}: not a landed {spec.kind} file (no column(s) {missing})")
        table = table.select(wanted.names)
        if table.schema != wanted:
            table = table.cast(wanted)
        table = table.append_column(_ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
        return table, len(data)

    def _keep(self, table: pa.Table) -> tuple[pa.Table, int, int]:
        """The rows inside the range and of the symbols; how many were outside each (the common
        case, a file wholly inside, is checked on min/max and copies nothing)."""
        n = table.num_rows
        ts = table.column("ts")
        bounds = pc.min_max(ts).as_py() if n else {"min": self.start_ns, "max": self.start_ns}
        if not (bounds["min"] >= self.start_ns and bounds["max"] < self.end_ns):
            table = table.filter(pc.and_(pc.greater_equal(ts, self.start_ns), pc.less(ts, self.end_ns)))
        timed = table.num_rows
        if self.symbols is not None:
            table = table.filter(pc.is_in(table.column("symbol"), value_set=self.symbols))
        return table, n - timed, timed - table.num_rows

    def _load(self, k: int, path: str) -> tuple[int, pa.Table, int, int, int, int]:
        """Runs on a reader thread (Parquet decoding and Arrow filters release the GIL)."""
        table, size = self._read(k, path)
        kept, off_time, off_symbol = self._keep(table)
        return k, kept, table.num_rows, off_time, off_symbol, size

    def _read_day(self, files: list[tuple[int, str]]) -> list[list[pa.Table]]:
        out: list[list[pa.Table]] = [[] for _ in self.specs]
        stats = self.stats
        with ThreadPoolExecutor(max_workers=max(1, self.read_threads)) as pool:
            # results in plan order: the concatenation order (and so nothing else) is fixed
            for k, kept, n, off_time, off_symbol, size in pool.map(lambda f: self._load(*f), files):
                stats.files += 1
                stats.bytes += size
                stats.read[self.topics[k]] += n
                stats.filtered_time += off_time
                stats.filtered_symbol += off_symbol
                out[k].append(kept)
        return out

    # -- ordering -------------------------------------------------------------------------------
    def _sort(self, tables: list[pa.Table]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ts, topic index, row in its topic's table) of every event, in replay order.

        One stable numpy sort by ts, then only the rows sharing a ts with another (rare with ns
        timestamps) are ordered by the rest of the key: the same total order as a sort on all
        seven columns, without turning every symbol into a sort code."""
        n = [t.num_rows for t in tables]

        def column(name: str, dtype: type) -> np.ndarray:
            parts = [np.asarray(t.column(name).to_numpy(), dtype) if name in t.column_names
                     else np.zeros(len(t), dtype) for t in tables]
            return np.concatenate(parts) if parts else np.empty(0, dtype)

        ts = column("ts", np.int64)
        source = np.repeat(np.arange(len(tables), dtype=np.int8), n)
        local = np.concatenate([np.arange(m, dtype=np.int64) for m in n]) if n else np.empty(0, np.int64)
        order = np.argsort(ts, kind="stable")
        ordered = ts[order]
        same = ordered[1:] == ordered[:-1]
        if same.any():
            tied = np.zeros(len(ordered), bool)
            tied[1:] |= same
            tied[:-1] |= same
            pos = np.flatnonzero(tied)
            group = np.cumsum(np.concatenate(([True], ~same))[pos])  # one id per run of equal ts
            idx = order[pos]
            symbols = pa.chunked_array([c for t in tables for c in t.column("symbol").chunks],
                                       pa.string()).take(pa.array(idx))
            dictionary = pc.unique(symbols)
            dictionary = dictionary.take(pc.sort_indices(dictionary))  # code order = byte order
            codes = pc.index_in(symbols, value_set=dictionary).to_numpy(zero_copy_only=False)
            rest = (column(_ROW, np.int64)[idx], column("kafka_offset", np.int64)[idx],
                    column("kafka_partition", np.int32)[idx], column("seq", np.int64)[idx], codes,
                    source[idx], group)
            order[pos] = idx[np.lexsort(rest)]  # lexsort: the last key is the primary one
        return ordered, source[order], local[order]

    # -- the stream -----------------------------------------------------------------------------
    def batches(self) -> Iterator[ReplayBatch]:
        plan = self.plan()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-prefetch") as ahead:
            yield from self._days(plan, ahead)

    def _days(self, plan: list[tuple[date, list[tuple[int, str]]]], ahead: ThreadPoolExecutor
              ) -> Iterator[ReplayBatch]:
        """Day by day; the next day's files are read (fetched, decoded, filtered) on ``ahead``
        while this day is sorted and handed out."""
        carried: list[pa.Table | None] = [None] * len(self.specs)
        emitted_until = self.start_ns
        pending = ahead.submit(self._read_day, plan[0][1]) if plan else None
        for i, (day, _) in enumerate(plan):
            fresh = pending.result()
            pending = ahead.submit(self._read_day, plan[i + 1][1]) if i + 1 < len(plan) else None
            tables = []
            for k, spec in enumerate(self.specs):
                parts = ([carried[k]] if carried[k] is not None else []) + fresh[k]
                tables.append(pa.concat_tables(parts) if parts else
                              spec.file_schema.empty_table().append_column(_ROW, pa.array([], pa.int64())))
            ts, source, local = self._sort(tables)
            if len(ts) and ts[0] < emitted_until:
                raise ReplayError(
                    f"dt={day}: an event at ts {int(ts[0])} is older than events already replayed "
                    f"(up to {emitted_until}); a landed message has rows out of time order")
            # everything before the next folder's date is final; the rest waits for that folder
            until = day_start_ns(plan[i + 1][0]) if i + 1 < len(plan) else self.end_ns
            cut = int(np.searchsorted(ts, until, side="left"))
            ordered, carried = self._gather(tables, source, local, cut)
            self.stats.days += 1
            yield from self._slices(ts[:cut], source[:cut], ordered)
            emitted_until = until
            if self.on_day:
                self.on_day(day.isoformat(), self.stats)
        leftover = sum(t.num_rows for t in carried if t is not None)
        if leftover:  # impossible by construction: the last cut is at end_ns, past every kept row
            raise ReplayError(f"{leftover} events were left unreplayed")

    def _gather(self, tables: list[pa.Table], source: np.ndarray, local: np.ndarray,
                cut: int) -> tuple[list[pa.Table], list[pa.Table]]:
        """Each topic's rows in replay order: those before ``cut`` (emitted now, without the row
        numbers) and the rest (carried to the next day). Topics are gathered in parallel."""
        def gather(k: int) -> tuple[pa.Table, pa.Table]:
            now = tables[k].take(pa.array(local[:cut][source[:cut] == k])).drop_columns([_ROW])
            return now, tables[k].take(pa.array(local[cut:][source[cut:] == k]))

        with ThreadPoolExecutor(max_workers=max(1, min(self.read_threads, len(tables)))) as pool:
            parts = list(pool.map(gather, range(len(tables))))
        return [p[0] for p in parts], [p[1] for p in parts]

    def _slices(self, ts: np.ndarray, source: np.ndarray, tables: list[pa.Table]) -> Iterator[ReplayBatch]:
        bounds = list(range(0, len(ts), self.batch_events)) + [len(ts)]
        if self.max_span_ns and len(ts):
            edges = np.arange(int(ts[0]) + self.max_span_ns, int(ts[-1]) + 1, self.max_span_ns)
            cuts = np.searchsorted(ts, edges, side="left") if len(edges) < 10_000_000 else []
            bounds = sorted(set(bounds) | {int(c) for c in cuts})
        offsets = [0] * len(tables)
        for a, b in zip(bounds, bounds[1:], strict=False):
            if b <= a:
                continue
            counts = np.bincount(source[a:b], minlength=len(tables)).tolist()
            parts = {}
            for k, count in enumerate(counts):
                if count:
                    parts[self.topics[k]] = tables[k].slice(offsets[k], count)
                    offsets[k] += count
                    self.stats.emitted[self.topics[k]] += count
            stats = self.stats
            stats.first_ts = int(ts[a]) if stats.first_ts is None else stats.first_ts
            stats.last_ts = int(ts[b - 1])
            yield ReplayBatch(self.topics, ts[a:b], source[a:b], parts)


class Pacer:
    """Sleeps so that event time advances ``speed`` times faster than the wall clock; ``None``
    is unpaced (``--speed max``). A gap of more than ``max_gap_s`` of event time (a night, a
    weekend) is skipped, not slept through: the clock restarts after it."""

    def __init__(self, speed: float | None, *, max_gap_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 (times real time) or max, got {speed!r}")
        self.speed, self.max_gap_ns = speed, int(max_gap_s * 1e9)
        self.clock, self.sleep = clock, sleep
        self.anchor: tuple[float, int] | None = None  # (wall seconds, event ns) of the clock's start
        self.last_ns: int | None = None
        self.slept = 0.0

    def span_ns(self, step_s: float = 0.25) -> int | None:
        """Event time one step of ``step_s`` wall seconds covers (batches are cut at it)."""
        return None if self.speed is None else max(1, int(self.speed * step_s * 1e9))

    def wait(self, event_ns: int) -> None:
        if self.speed is None:
            return
        now = self.clock()
        if self.anchor is None or (self.last_ns is not None and event_ns - self.last_ns > self.max_gap_ns):
            self.anchor = (now, event_ns)
        self.last_ns = event_ns
        due = self.anchor[0] + (event_ns - self.anchor[1]) / 1e9 / self.speed
        if due > now:
            self.sleep(due - now)
            self.slept += due - now


class KafkaTarget:
    """Re-publishes replayed events with the ingestion publisher (Arrow messages of one symbol,
    keyed by symbol; ``ingestion/wire.py``) to ``topic_map[source topic]``. The rows keep every
    event column as landed (``ingest_ts`` included: the original broker time), not the Kafka
    provenance columns, which describe the first delivery."""

    def __init__(self, bootstrap: str, specs: Sequence[TopicSpec], topic_map: dict[str, str], *,
                 ticks_per_message: int = 10000, wire_compression: str = "lz4") -> None:
        from ingestion.publisher import TickPublisher

        self.specs = {s.topic: s for s in specs}
        self.topic_map = topic_map
        self.publisher = TickPublisher(bootstrap, ticks_per_message, client_id="tradelake-replay",
                                       wire_compression=wire_compression)
        self.queued = 0

    def write(self, batch: ReplayBatch) -> None:
        for topic, table in batch.tables.items():
            spec = self.specs[topic]
            self.publisher.publish(self.topic_map[topic], spec.kind, table.select(spec.schema.names))
            self.queued += table.num_rows

    def close(self) -> int:
        """Wait for every acknowledgement; returns the events Kafka acknowledged."""
        try:
            return self.publisher.flush().ticks
        finally:
            self.publisher.close()
