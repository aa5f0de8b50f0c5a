"""The lake lander: Kafka topics -> immutable Parquet files in the lake, exactly once.

    tradelake land [--topics md.trades,md.quotes] [--idle-exit SECONDS]

Per Kafka partition the lander buffers whole messages, then, for each file:
  1. writes the Parquet file under ``<zone>/<topic>/_tmp/`` (a temporary name),
  2. renames it to ``<zone>/<topic>/dt=YYYY-MM-DD/p<partition>-o<first>-o<last>.parquet``
     (atomic in HDFS; refuses to overwrite), which is the commit point,
  3. only then commits offset ``last + 1`` to Kafka.
A crash before (2) leaves a temp file that is deleted on restart, and the messages are read
again; a crash between (2) and (3) is recognised on restart from the file names (the committed
offset is behind the last landed offset, so the lander seeks past it). Nothing is landed twice
and nothing is skipped. Files roll by size, by age and when the event date changes (a message
goes whole into the ``dt`` of its first row, so a file never splits a message).

A message that is not a tradelake Arrow message of the topic's schema is never dropped: it is
written to ``<quarantine zone>/undecodable/<topic>/`` with the reason and its raw bytes, in a
file named for the same offset range, before the range's raw file is committed.
"""

from __future__ import annotations

import json
import logging
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion import wire
from ingestion.lake_layout import (
    TMP_DIR,
    OffsetRange,
    covered_until,
    final_path,
    landed_ranges,
    tmp_path,
    write_parquet_atomically,
)
from ingestion.quarantine import Reason
from tradelake.lakefs import LakeFS

log = logging.getLogger(__name__)

class LanderError(RuntimeError):
    """The lander cannot make progress; the message says why."""


KAFKA_COLUMNS = [
    pa.field("kafka_partition", pa.int32(), False, {"doc": "Kafka partition of the message"}),
    pa.field("kafka_offset", pa.int64(), False, {"doc": "Kafka offset of the message"}),
]


@dataclass(frozen=True)
class TopicSpec:
    """A topic to land: its expected Arrow schema and the lake zone it lands in."""

    topic: str
    kind: str
    schema: pa.Schema
    zone: str

    @property
    def file_schema(self) -> pa.Schema:
        return pa.schema([*self.schema, *KAFKA_COLUMNS], metadata=self.schema.metadata)


@dataclass
class Buffer:
    dt: str
    first_offset: int
    last_offset: int = -1
    tables: list[pa.Table] = field(default_factory=list)
    bad: list[dict] = field(default_factory=list)
    bytes: int = 0
    opened_at: float = field(default_factory=time.monotonic)
    last_added_at: float = field(default_factory=time.monotonic)
    kafka_ts_ms: list[int] = field(default_factory=list)  # every message's broker timestamp
    rows: list[int] = field(default_factory=list)  # per decoded message: its row count,
    offsets: list[int] = field(default_factory=list)  # its offset
    good_ts_ms: list[int] = field(default_factory=list)  # and its broker timestamp


@dataclass
class LanderStats:
    messages: int = 0
    rows: int = 0
    files: int = 0
    undecodable: int = 0
    skipped_already_landed: int = 0
    first_message_at: float | None = None  # wall clock (time.time()) of the first message
    last_landed_at: float | None = None  # wall clock (time.time()) of the last file's commit
    land_delays_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.land_delays_ms, q)) if self.land_delays_ms else None


def _utc_date(ns: int) -> str:
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%d")  # exact, no float


def _dt_of(table: pa.Table, fallback_ms: int) -> str:
    """UTC date of the message's first row (its Kafka timestamp if it has no rows)."""
    return _utc_date(table.column("ts")[0].as_py() if table.num_rows else fallback_ms * 1_000_000)


class Lander:
    def __init__(
        self,
        fs: LakeFS,
        topics: list[TopicSpec],
        consumer,
        quarantine_zone: str = "quarantine",
        roll_bytes: int = 64 * 1024 * 1024,
        roll_seconds: float = 30.0,
        compression: str = "zstd",
        on_new_partition: Callable[[TopicSpec, str], None] | None = None,
        writer_threads: int = 2,
        idle_flush_s: float = 0.5,
        assign_timeout_s: float = 120.0,
    ) -> None:
        self.fs = fs
        self.specs = {t.topic: t for t in topics}
        self.consumer = consumer
        self.quarantine_zone = quarantine_zone
        self.roll_bytes = roll_bytes
        self.roll_seconds = roll_seconds
        self.idle_flush_s = idle_flush_s
        self.assign_timeout_s = assign_timeout_s
        self.compression = compression
        self.on_new_partition = on_new_partition
        self.buffers: dict[tuple[str, int], Buffer] = {}
        self.landed_until: dict[tuple[str, int], int] = {}  # last offset in the lake, per partition
        self.handed_until: dict[tuple[str, int], int] = {}  # last offset given to a writer
        self.stats = LanderStats()
        self._stop = False
        self._seen_dates: set[tuple[str, str]] = set()
        self._writers = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lander-writer-{i}")
                         for i in range(writer_threads)]
        self._inflight: deque = deque()
        self.max_inflight = 4 * writer_threads

    # -- consumer group callbacks ----------------------------------------------------------
    def on_assigned(self, partitions) -> None:
        """Seek each assigned partition past what the lake already holds.

        Runs on kafka-python's IO thread, where blocking consumer calls (such as reading the
        committed offset) are not allowed, so the lake's file names alone decide: they are the
        commit point, and Kafka's committed offset can only be behind them, never ahead.
        """
        by_topic: dict[str, list] = {}
        for tp in partitions:
            by_topic.setdefault(tp.topic, []).append(tp)
        for topic, tps in by_topic.items():
            spec = self.specs[topic]
            self._clean_tmp(spec, {tp.partition for tp in tps})
            landed = landed_ranges(self.fs, spec.zone, topic)
            for tp in tps:
                key = (topic, tp.partition)
                last = covered_until(landed.get(tp.partition, []))
                # files still being written by this process (a rebalance while they were in
                # flight) count as landed: their write either finishes or fails the lander
                last = max(-1 if last is None else last, self.handed_until.get(key, -1))
                self.landed_until[key] = last
                if last >= 0:
                    log.info("%s[%d]: lake holds offsets up to %d; resuming at %d",
                             topic, tp.partition, last, last + 1)
                    self.consumer.seek(tp, last + 1)

    def on_revoked(self, partitions) -> None:
        # Unflushed messages were never committed: the next owner reads them again.
        for tp in partitions:
            self.buffers.pop((tp.topic, tp.partition), None)

    def _clean_tmp(self, spec: TopicSpec, partitions: set[int]) -> None:
        for name in self.fs.list(f"{spec.zone}/{spec.topic}/{TMP_DIR}"):
            rng = OffsetRange.parse(name.split(".parquet")[0] + ".parquet")
            if rng and rng.partition in partitions:
                self.fs.delete(f"{spec.zone}/{spec.topic}/{TMP_DIR}/{name}")
                log.info("deleted unfinished %s/%s/%s/%s", spec.zone, spec.topic, TMP_DIR, name)

    # -- the loop ----------------------------------------------------------------------------
    def add(self, msg) -> None:
        """Buffer one Kafka message (rolling the partition's file first if needed)."""
        spec = self.specs[msg.topic]
        key = (msg.topic, msg.partition)
        if msg.offset <= self.landed_until.get(key, -1):  # fetched before the seek took effect
            self.stats.skipped_already_landed += 1
            return
        table, bad = self._decode(spec, msg)
        dt = _dt_of(table, msg.timestamp) if table is not None else None
        buf = self.buffers.get(key)
        if buf is not None and dt is not None and dt != buf.dt and buf.tables:
            self.flush(key)
            buf = None
        if buf is None:
            buf = self.buffers[key] = Buffer(dt=dt or _utc_date(msg.timestamp * 1_000_000),
                                             first_offset=msg.offset)
        buf.last_offset = msg.offset
        buf.last_added_at = time.monotonic()
        buf.kafka_ts_ms.append(msg.timestamp)
        if table is not None:
            buf.tables.append(table)
            buf.rows.append(table.num_rows)
            buf.offsets.append(msg.offset)
            buf.good_ts_ms.append(msg.timestamp)
            buf.bytes += table.nbytes
        else:
            buf.bad.append(bad)
        self.stats.messages += 1
        if self.stats.first_message_at is None:
            self.stats.first_message_at = time.time()
        if buf.bytes >= self.roll_bytes:
            self.flush(key)

    def _decode(self, spec: TopicSpec, msg) -> tuple[pa.Table | None, dict | None]:
        try:
            table = wire.decode(msg.value)
            if table.schema.names != spec.schema.names or table.schema.types != spec.schema.types:
                raise wire.WireError(f"schema {table.schema.names} is not the {spec.kind} schema")
        except wire.WireError as exc:
            return None, {"reason": Reason.MALFORMED.value,
                          "detail": f"undecodable Kafka message: {exc}", "offset": msg.offset,
                          "kafka_ts_ms": msg.timestamp, "payload": bytes(msg.value or b""),
                          "key": msg.key}
        return table, None

    @staticmethod
    def _with_provenance(spec: TopicSpec, buf: Buffer, partition: int) -> pa.Table:
        """The file's rows: the messages' rows plus Kafka partition and offset, and ``ingest_ts``
        set to the broker's timestamp where the feed left it empty (done once per file)."""
        if not buf.tables:
            return spec.file_schema.empty_table()
        table = pa.concat_tables(buf.tables)
        rows = np.array(buf.rows, dtype=np.int64)
        if "ingest_ts" in table.schema.names:
            idx = table.schema.get_field_index("ingest_ts")
            broker_ns = pa.array(np.repeat(np.array(buf.good_ts_ms, np.int64) * 1_000_000, rows))
            filled = pc.coalesce(table.column(idx), broker_ns)
            table = table.set_column(idx, spec.schema.field("ingest_ts"), filled)
        table = table.append_column(KAFKA_COLUMNS[0], pa.array(np.full(len(table), partition, np.int32)))
        table = table.append_column(KAFKA_COLUMNS[1],
                                    pa.array(np.repeat(np.array(buf.offsets, np.int64), rows)))
        return table.replace_schema_metadata(spec.schema.metadata)

    def flush(self, key: tuple[str, int]) -> None:
        """Hand one partition's buffer to the writer thread; its commit follows in ``complete``.

        Writing (Parquet encode, upload, rename) runs on background threads so consuming goes
        on meanwhile; the Kafka commit stays on this thread (the consumer is not
        thread-safe) and happens only after the file's rename, in FIFO order.
        """
        buf = self.buffers.pop(key, None)
        if buf is None:
            return
        spec = self.specs[key[0]]
        rng = OffsetRange(key[1], buf.first_offset, buf.last_offset)
        table = self._with_provenance(spec, buf, key[1])
        # one writer per partition slot: a partition's files are renamed in offset order (the
        # restart logic trusts the highest landed offset), different partitions in parallel
        writer = self._writers[hash(key) % len(self._writers)]
        future = writer.submit(self._land, spec, buf, rng, table)
        self.handed_until[key] = buf.last_offset
        self._inflight.append((key, buf, table.num_rows, future))
        while len(self._inflight) > self.max_inflight:
            self.complete(block=True, limit=1)

    def _land(self, spec: TopicSpec, buf: Buffer, rng: OffsetRange, table: pa.Table) -> None:
        if buf.bad:
            self._write_undecodable(spec, buf, rng)
        self._write_atomically(spec.zone, spec.topic, buf.dt, rng, table)

    def complete(self, block: bool = False, limit: int | None = None) -> None:
        """Commit offsets for files whose rename has finished (all of them if ``block``)."""
        from kafka.structs import OffsetAndMetadata, TopicPartition

        done = 0
        while self._inflight and (block or self._inflight[0][3].done()):
            if limit is not None and done >= limit:
                return
            key, buf, rows, future = self._inflight.popleft()
            future.result()  # a failed write raises here: nothing after it is committed
            topic, partition = key
            self.landed_until[key] = max(self.landed_until.get(key, -1), buf.last_offset)
            tp = TopicPartition(topic, partition)
            if tp in self.consumer.assignment():  # revoked meanwhile: the file names suffice
                self.consumer.commit({tp: OffsetAndMetadata(buf.last_offset + 1, "", -1)})
            self.stats.last_landed_at = time.time()
            now_ms = self.stats.last_landed_at * 1000
            self.stats.land_delays_ms.extend(now_ms - ts for ts in buf.kafka_ts_ms)
            self.stats.rows += rows
            self.stats.files += 1
            done += 1
            if (topic, buf.dt) not in self._seen_dates:
                self._seen_dates.add((topic, buf.dt))
                if self.on_new_partition:
                    self.on_new_partition(self.specs[topic], buf.dt)

    def _write_atomically(self, zone: str, topic: str, dt: str, rng: OffsetRange,
                          table: pa.Table) -> None:
        final = final_path(zone, topic, dt, rng)
        temp = tmp_path(zone, topic, rng, uuid.uuid4().hex[:12])
        if not write_parquet_atomically(self.fs, temp, final, table, self.compression):
            # Only possible if this exact range was landed by an earlier attempt that died
            # before committing and was not recognised (e.g. a concurrent owner): keep the first.
            log.warning("%s already landed; kept the existing file", final)
            self.stats.skipped_already_landed += 1

    def _write_undecodable(self, spec: TopicSpec, buf: Buffer, rng: OffsetRange) -> None:
        now_ns = time.time_ns()
        rows = [{"ts": now_ns, "event_ts": None, "kind": spec.kind,
                 "symbol": (b["key"] or b"").decode(errors="replace") or None,
                 "reason": b["reason"], "detail": b["detail"],
                 "source": f"kafka:{spec.topic}/{rng.partition}@{b['offset']}",
                 "line_no": None, "payload": b["payload"]} for b in buf.bad]
        from ingestion.quarantine import QUARANTINE_SCHEMA

        table = pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)
        self.stats.undecodable += len(rows)
        log.warning("%d undecodable message(s) in %s[%d] %d..%d quarantined", len(rows),
                    spec.topic, rng.partition, rng.first, rng.last)
        self._write_atomically(f"{self.quarantine_zone}/undecodable", spec.topic, buf.dt, rng, table)

    def flush_due(self) -> None:
        """Roll files by age, and land a partition at once when its stream goes quiet (no
        message for ``idle_flush_s`` and nothing more on the broker) instead of holding its
        tail until the age limit."""
        now = time.monotonic()
        for key in [k for k, b in self.buffers.items()
                    if now - b.opened_at >= self.roll_seconds
                    or (now - b.last_added_at >= self.idle_flush_s and self._caught_up(k, b))]:
            self.flush(key)

    def _caught_up(self, key: tuple[str, int], buf: Buffer) -> bool:
        """False while the broker is known to hold more of the partition: reading a backlog,
        a partition often waits its turn for longer than ``idle_flush_s``, and flushing it then
        would split the backlog into many small files."""
        from kafka.errors import IllegalStateError
        from kafka.structs import TopicPartition

        try:
            high = self.consumer.highwater(TopicPartition(*key))
        except IllegalStateError:  # revoked meanwhile
            return True
        return high is None or buf.last_offset + 1 >= high

    def flush_all(self) -> None:
        for key in list(self.buffers):
            self.flush(key)
        self.complete(block=True)

    def stop(self, *_args) -> None:
        self._stop = True

    def run(self, idle_exit_s: float | None = None, max_seconds: float | None = None,
            on_progress: Callable[[LanderStats], None] | None = None) -> LanderStats:
        """Consume until stopped (SIGTERM/SIGINT), idle for ``idle_exit_s``, or ``max_seconds``."""
        signal.signal(signal.SIGTERM, self.stop)
        started = last_data = time.monotonic()
        while not self._stop:
            if not self.consumer.assignment() and time.monotonic() - started > self.assign_timeout_s:
                raise LanderError(
                    f"no partitions of {sorted(self.specs)} assigned after {self.assign_timeout_s:.0f}s: "
                    "is the broker up, do the topics exist, is another lander using this "
                    "lander.instance_id in the same group?")
            polled = self.consumer.poll(timeout_ms=200, max_records=2000)
            for records in polled.values():
                for msg in records:
                    self.add(msg)
            now = time.monotonic()
            if polled or not self.consumer.assignment():  # idle only counts once assigned
                last_data = now
            self.flush_due()
            self.complete()
            if on_progress:
                on_progress(self.stats)
            if idle_exit_s is not None and now - last_data >= idle_exit_s:
                break
            if max_seconds is not None and now - started >= max_seconds:
                break
        self.flush_all()
        return self.stats


def summary(stats: LanderStats) -> dict:
    return {"messages": stats.messages, "rows": stats.rows, "files": stats.files,
            "undecodable_messages": stats.undecodable,
            "skipped_already_landed": stats.skipped_already_landed,
            "first_message_at": stats.first_message_at,
            "last_landed_at": stats.last_landed_at,
            "p50_land_delay_ms": stats.percentile(50), "p99_land_delay_ms": stats.percentile(99)}


def summary_json(stats: LanderStats) -> str:
    return json.dumps(summary(stats))
