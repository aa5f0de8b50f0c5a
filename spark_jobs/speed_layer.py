"""Speed layer: Kafka trades and quotes -> validated ticks -> the operational store (ODS) and the
real-time Hive tables, with Spark Structured Streaming, exactly once in effect.

    source .venv/bin/activate
    spark-submit spark_jobs/speed_layer.py [--duration SECONDS | --available-now] [--mode split|single]

(more: ``--trigger-ms``, ``--hive-trigger-ms``, ``--max-offsets``; ``tradelake speed`` runs this
with the same options, a progress line per micro-batch and the summary.) Prints one progress line
per micro-batch (``speed [ods] batch 12: ...``: rows, outcome counts, time per step, publish ->
visible latency) and, at the end, one JSON summary line prefixed ``SPEED_RESULT``. Exit 0 when
the run ended as asked and every batch reconciled, 1 when a query failed, 2 for bad usage or a
checkpoint that does not belong to the real-time tables (see Restarts).

Source (every name from the profile): Spark's own Kafka source subscribed to
``ingest.topics.trades`` and ``ingest.topics.quotes``; ``speed.starting_offsets`` for a new
checkpoint, at most ``speed.max_offsets_per_trigger`` messages per micro-batch (scaled up for the
Hive query of ``split`` mode by its interval / the ODS query's, so both can take in as much per
second).

Each micro-batch (``foreachBatch``):
1. decode + validate, collected to the driver once as Arrow (one Spark job):
   ``decode_and_validate`` decodes every Kafka message whole with pyarrow (ingestion/wire.py: an
   Arrow IPC stream of one symbol's ticks) and runs the ingestion layer's ``Validator`` over all
   the messages of a topic in an Arrow batch at once (vectorised; no per-row Python). The Hive
   query runs it in the executors (``transform``: ``mapInArrow``, one task, so the ODS query
   always has a core; its Python worker at nice ``LAKE_DECODE_NICENESS``); the ODS query
   collects the raw messages and runs it on the driver, which needs the rows for the ODS write
   anyway: that skips the Python-worker round trip (~200 ms of a ~600 ms batch of 2,000
   messages, measured). ``ingest_ts`` left null by the feed is set to
   the message's Kafka timestamp, as the lander does. The validator's clock (for
   ``future_timestamp``) is the latest Kafka timestamp among the rows it judges, not the wall
   clock, so a replayed batch is judged exactly as the first time. A message that is not an
   Arrow stream of its topic's schema becomes one ``malformed`` quarantine row carrying its
   bytes (as the lander does). Every record ends up accepted, quarantined (a
   ``QUARANTINE_SCHEMA`` row with its reason) or filtered (symbol outside ``ingest.universe``);
   the driver checks received = accepted + quarantined + filtered for every batch and fails the
   batch (and the query) if a row went missing.
2. ODS first: ``store.write_trades`` / ``store.write_quotes`` (ods/store.py, ``ods.store``): ticks
   keyed by (symbol, ts, seq), a re-delivered row is ignored, so a replayed batch changes nothing.
3. Hive: the accepted ticks go to ``<warehouse.curated_db>.<speed.realtime_trades_table>`` and
   ``.<speed.realtime_quotes_table>`` and the rejects to ``<warehouse.raw_db>.speed_quarantine``
   (hive/ddl: external Parquet, ``PARTITIONED BY (dt DATE, batch_id BIGINT)``), with
   ``insertInto(overwrite=True)`` under dynamic partition overwrite, so partitions are registered
   in the metastore and a replayed batch id rewrites exactly its own partitions. Before that, a
   tick whose key the real-time table already holds is quarantined as ``duplicate`` (a producer
   re-sending, a feed replayed): see ``HiveSink``. (The ODS needs no such check: its key does it.)

Queries (``--mode``):
- ``split`` (default): two streaming queries in one application, each with its own checkpoint:
  the ODS query every ``--trigger-ms`` (default ``speed.trigger_ms``) and the Hive query every
  ``--hive-trigger-ms`` (default 30 s), each in a fair-scheduler pool of its own. A Hive insert
  (commit protocol, metastore calls) costs 1-2 s per table and batch whatever its size, which in
  ``single`` mode sits in every tick's path to the ODS; a long Hive interval also pays it rarely.
  Both queries read the same topics; the Hive query, the lake writer, writes the quarantine table.
- ``single``: one query that writes the ODS, then Hive, per micro-batch (simpler, slower).
Measured with benchmarks/speed_layer.py: see the README (speed layer).

Checkpoints: ``<lake.root>/<speed.checkpoint_dir>/<ods|hive|single>``. Restarting from them is
exactly once in effect: Spark writes a batch's offset range before running it and commits it
after ``foreachBatch`` returns, so a killed batch is run again with the same id and the same
offsets; its decode and validation are pure functions of those messages, the ODS ignores rows it
already holds, and the Hive writes replace the batch's own partitions. The Hive query keeps the
per-symbol high-water mark (greatest (ts, seq)) of what it wrote after each batch in
``<checkpoint>/tradelake_hwm/<batch>.json``; a replay reads the mark of the batch before it,
so its duplicate check sees exactly what the first attempt saw.

Restarts: a new checkpoint numbers its batches from 0 again, so it would overwrite the
partitions of an earlier run; the job refuses to start a new Hive checkpoint while the
real-time tables hold rows (exit 2): drop them (the batch layer supersedes them) or point
``speed.checkpoint_dir`` at the old checkpoint. Switching ``--mode`` means another checkpoint,
hence the same.
"""  # noqa: E501 (the spark-submit line)

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion import wire
from ingestion.pipeline import session_calendar
from ingestion.quarantine import QUARANTINE_SCHEMA, Counts, Reason, quarantine_from_columns
from ingestion.validation import Validator
from spark_jobs.speed_args import DEFAULT_HIVE_TRIGGER_MS, add_speed_arguments, speed_argument_error
from tradelake.config import Config, IngestConfig, load_config
from tradelake.schemas import QUOTE, TRADE, EventSchema, arrow_schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from ods.store import OperationalStore
    from tradelake.lakefs import LakeFS

NS_PER_MS = 1_000_000
NS_PER_DAY = 86_400 * 1_000_000_000
EPOCH = date(1970, 1, 1)
KINDS: dict[str, EventSchema] = {"trade": TRADE, "quote": QUOTE}
PARTITION_COLUMNS = ("dt", "batch_id")
QUARANTINE_TABLE = "speed_quarantine"  # in warehouse.raw_db (hive/ddl/10_raw.hql)
HWM_DIR = "tradelake_hwm"
HWM_KEEP = 20  # high-water-mark files kept per checkpoint (a replay needs only the last one)
FETCH_MAX_WAIT_MS = 10
# nice value of the Python workers that decode for the Hive query (split mode): on a small
# machine its 30-second batch (seconds of decoding) would otherwise slow the ODS query's batches
LAKE_DECODE_NICENESS = 10
SPARK_CONF = {
    # jobs of each query in a fair-scheduler pool of its own (pools are created on first use)
    "spark.scheduler.mode": "FAIR",
    # a Hive insert writes its batch's few (dt, batch_id) partitions through concurrent writers
    # instead of sorting every row by partition first (the sort was ~20% of the insert's CPU)
    "spark.sql.maxConcurrentOutputFileWriters": "8",
    # progress reports kept per query (default 100): the summary's step medians cover a whole run
    "spark.sql.streaming.numRecentProgressUpdates": "2000",
}
MODES = {"split": ("ods", "hive"), "single": ("single",)}  # mode -> its queries
log = logging.getLogger("tradelake.speed_layer")


class SpeedLayerError(RuntimeError):
    """The job cannot run as configured (exit 2); the message says why and what to do."""


class ReconciliationError(RuntimeError):
    """A micro-batch's outcome does not add up to what it received: fails the batch."""


# -- the decoded row layout ----------------------------------------------------------------------
def _union_fields() -> list[pa.Field]:
    """The trade and quote fields, each once, in schema order, all nullable."""
    seen: dict[str, pa.Field] = {}
    for schema in KINDS.values():
        for f in arrow_schema(schema):
            seen.setdefault(f.name, pa.field(f.name, f.type, True))
    return list(seen.values())


# One row of ``transform``'s output is an accepted tick (``row_type`` 'accepted': the kind's
# columns), a rejected record ('rejected': ``ts``/``symbol`` are the record's own, plus the
# quarantine columns) or a tally ('tally': rows ``received`` and ``filtered`` by one validation
# call), so that one collect brings everything the driver needs to reconcile the batch.
DECODED_ARROW = pa.schema([
    pa.field("row_type", pa.string(), False), pa.field("kind", pa.string(), False),
    *_union_fields(),
    pa.field("reason", pa.string()), pa.field("detail", pa.string()),
    pa.field("rejected_ts", pa.int64()), pa.field("source", pa.string()),
    pa.field("payload", pa.binary()),
    pa.field("received", pa.int64()), pa.field("filtered", pa.int64()),
])
_QUARANTINE_TO_DECODED = {"ts": "rejected_ts", "event_ts": "ts", "kind": "kind", "symbol": "symbol",
                          "reason": "reason", "detail": "detail", "source": "source",
                          "payload": "payload"}


@functools.cache
def decoded_spark_schema():
    """``DECODED_ARROW`` as a Spark ``StructType`` (the ``mapInArrow`` output schema)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(DECODED_ARROW)


def _decoded(kind: str, row_type: str, columns: dict[str, pa.Array], n: int) -> pa.RecordBatch:
    arrays = []
    for f in DECODED_ARROW:
        if f.name == "row_type":
            arrays.append(pa.array([row_type] * n, pa.string()))
        elif f.name == "kind":
            arrays.append(pa.array([kind] * n, pa.string()))
        elif f.name in columns:
            arrays.append(columns[f.name])
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=DECODED_ARROW)


def _single(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def accepted_rows(kind: str, table: pa.Table) -> pa.RecordBatch:
    return _decoded(kind, "accepted", {name: _single(table.column(name)) for name in table.column_names},
                    table.num_rows)


def rejected_rows(quarantine: pa.Table) -> Iterator[pa.RecordBatch]:
    """QUARANTINE_SCHEMA rows -> decoded 'rejected' rows (one batch per kind)."""
    for kind in pc.unique(quarantine.column("kind")).to_pylist():
        part = quarantine.filter(pc.equal(quarantine.column("kind"), kind))
        cols = {dst: _single(part.column(src)) for src, dst in _QUARANTINE_TO_DECODED.items()
                if dst != "kind"}
        yield _decoded(kind, "rejected", cols, part.num_rows)


def tally_row(kind: str, received: int, filtered: int) -> pa.RecordBatch:
    return _decoded(kind, "tally", {"received": pa.array([received], pa.int64()),
                                    "filtered": pa.array([filtered], pa.int64())}, 1)


# -- transform: decode + validate (runs in the executors) ----------------------------------------
class _KafkaClock:
    """The validator's ``now``: the latest Kafka timestamp of the rows being judged."""

    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns


def _validator(ingest: IngestConfig, topic: str, clock: _KafkaClock) -> Validator:
    """The ingestion layer's validator (as ``ingestion.pipeline.make_validator``), on ``clock``."""
    return Validator(source=f"kafka:{topic}", universe=ingest.universe or None,
                     sessions=session_calendar(ingest.sessions),
                     max_clock_skew_ns=ingest.max_clock_skew_s * 1_000_000_000, now_ns=clock)


def decode_and_validate(batches: Iterable[pa.RecordBatch], topics: dict[str, str],
                        ingest: IngestConfig) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: Kafka rows (topic, partition, offset, kafka_ts_ms, key, value) ->
    ``DECODED_ARROW`` rows. ``topics`` maps each topic to its kind ('trade' or 'quote').

    One validator per topic for the whole task (a Spark partition), so a key repeated within the
    task is quarantined as ``duplicate``; one validation call per topic per Arrow batch.
    """
    clock = _KafkaClock()
    validators = {topic: _validator(ingest, topic, clock) for topic in topics}
    expected = {kind: arrow_schema(schema) for kind, schema in KINDS.items()}
    for batch in batches:
        cols = {name: batch.column(name).to_pylist()
                for name in ("topic", "partition", "offset", "kafka_ts_ms", "key", "value")}
        decoded: dict[str, tuple[list[pa.Table], list[int], list[int]]] = {}
        undecodable: dict[str, list[dict[str, Any]]] = {}
        messages = wire.decode_all([value or b"" for value in cols["value"]])
        for topic, partition, offset, ts_ms, key, value, table in zip(*cols.values(), messages,
                                                                      strict=True):
            kind = topics[topic]
            schema = expected[kind]
            try:
                if isinstance(table, wire.WireError):
                    raise table
                if not table.schema.equals(schema):  # metadata aside: the publisher's own schema
                    if table.schema.names != schema.names or table.schema.types != schema.types:
                        raise wire.WireError(f"schema {table.schema.names} is not the {kind} schema")
                    table = pa.Table.from_arrays(table.columns, schema=schema)  # other nullability
            except wire.WireError as exc:
                undecodable.setdefault(topic, []).append({
                    "ts": ts_ms * NS_PER_MS, "event_ts": None, "kind": kind,
                    "symbol": (key or b"").decode(errors="replace") or None,
                    "reason": Reason.MALFORMED.value, "detail": f"undecodable Kafka message: {exc}"[:1000],
                    "source": f"kafka:{topic}/{partition}@{offset}", "line_no": None,
                    "payload": bytes(value or b"")})
                continue
            if table.num_rows:
                tables, rows, stamps = decoded.setdefault(topic, ([], [], []))
                tables.append(table)
                rows.append(table.num_rows)
                stamps.append(ts_ms)
        for topic in sorted(set(decoded) | set(undecodable)):
            kind = topics[topic]
            received = filtered = 0
            if topic in decoded:
                tables, rows, stamps = decoded[topic]
                table = pa.concat_tables(tables).combine_chunks()  # one chunk per message otherwise
                idx = table.schema.get_field_index("ingest_ts")
                broker_ns = pa.array(np.repeat(np.array(stamps, np.int64) * NS_PER_MS, rows))
                table = table.set_column(idx, table.schema.field(idx),
                                         pc.coalesce(table.column(idx), broker_ns))
                clock.now_ns = max(stamps) * NS_PER_MS
                result = validators[topic].validate(kind, table)
                received, filtered = table.num_rows, result.filtered
                if result.accepted.num_rows:
                    yield accepted_rows(kind, result.accepted)
                if result.quarantined.num_rows:
                    yield from rejected_rows(result.quarantined)
            if topic in undecodable:
                bad = undecodable[topic]
                received += len(bad)
                yield from rejected_rows(pa.Table.from_pylist(bad, schema=QUARANTINE_SCHEMA))
            yield tally_row(kind, received, filtered)


def kafka_rows(kafka: DataFrame) -> DataFrame:
    """The Kafka source columns ``decode_and_validate`` reads."""
    from pyspark.sql import functions as F

    return kafka.select("topic", "partition", "offset",
                        F.unix_millis("timestamp").alias("kafka_ts_ms"), "key", "value")


def lower_priority(niceness: int) -> None:
    """Raise the calling thread's nice value to ``niceness`` (on Linux ``os.nice`` is per
    thread: in a Python worker, its main thread, which runs the task); never lowers it."""
    current = os.nice(0)
    if niceness > current:
        os.nice(niceness - current)


def transform(kafka: DataFrame, topics: dict[str, str], ingest: IngestConfig,
              tasks: int | None = None, niceness: int | None = None) -> DataFrame:
    """Kafka source rows -> decoded and validated rows (``DECODED_ARROW``), vectorised, in the
    executors (``mapInArrow``).

    ``tasks``: coalesce to this many Spark tasks first (no shuffle: a Kafka partition, hence a
    symbol, stays in one task), so a micro-batch runs as one wave on a small machine.
    ``niceness``: the Python worker decodes at this nice value (``lower_priority``), and keeps
    it for its lifetime (Spark reuses workers): pass it only where every task of the worker's
    Spark application may run at that priority (the speed layer's Hive query).
    """
    rows = kafka_rows(kafka)
    if tasks:
        rows = rows.coalesce(tasks)

    def decode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        if niceness is not None:
            lower_priority(niceness)
        return decode_and_validate(batches, topics, ingest)

    return rows.mapInArrow(decode, decoded_spark_schema())


def collect_decoded(kafka: DataFrame, topics: dict[str, str], ingest: IngestConfig,
                    on_driver: bool, tasks: int | None = None,
                    steps: dict[str, float] | None = None, niceness: int | None = None) -> pa.Table:
    """One micro-batch's decoded rows on the driver, collected once as Arrow.

    ``on_driver``: collect the raw messages and run ``decode_and_validate`` here instead of in
    the executors. The rows are needed on the driver anyway (the ODS write), and for the small
    batches of the ODS query this skips the Python-worker round trip of ``mapInArrow`` and the
    conversion of its output back to rows (measured: ~200 ms of a ~600 ms batch of 2,000
    messages). Same function, so the same verdicts; it validates the whole batch at once.
    ``steps`` (on the driver): gets the seconds of the Spark job that fetches the messages
    (``fetch``) and of the decode + validation (``validate``). ``niceness``: see ``transform``.
    """
    if not on_driver:
        return transform(kafka, topics, ingest, tasks, niceness).toArrow()
    began = time.monotonic()
    raw = kafka_rows(kafka).toArrow()
    fetched = time.monotonic()
    decoded = pa.Table.from_batches(list(decode_and_validate(raw.to_batches(), topics, ingest)),
                                    schema=DECODED_ARROW)
    if steps is not None:
        steps.update(fetch=fetched - began, validate=time.monotonic() - fetched)
    return decoded


# -- on the driver: split one collected batch ----------------------------------------------------
@dataclass
class BatchOutcome:
    """One micro-batch, on the driver: accepted ticks per kind, quarantine rows, and tallies."""

    trades: pa.Table  # arrow_schema(TRADE)
    quotes: pa.Table  # arrow_schema(QUOTE)
    quarantine: pa.Table  # QUARANTINE_SCHEMA
    received: int
    filtered: int

    @property
    def accepted(self) -> int:
        return self.trades.num_rows + self.quotes.num_rows

    def table(self, kind: str) -> pa.Table:
        return self.trades if kind == "trade" else self.quotes

    def counts(self) -> Counts:
        reasons = self.quarantine.column("reason").to_pylist()
        by_reason = {r: reasons.count(r) for r in sorted(set(reasons))}
        return Counts(received=self.received, accepted=self.accepted,
                      quarantined=self.quarantine.num_rows, filtered=self.filtered,
                      by_reason=by_reason)

    def check(self) -> Counts:
        """The batch's counts; raises ``ReconciliationError`` if they do not add up."""
        counts = self.counts()
        if not counts.reconciles():
            raise ReconciliationError(f"micro-batch does not reconcile: {counts.summary()}")
        return counts


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([_single(table.column(f.name)) for f in schema], schema=schema)


def split_outcome(decoded: pa.Table) -> BatchOutcome:
    """``transform``'s collected rows -> ``BatchOutcome`` (raises if they do not reconcile)."""
    row_type, kind = decoded.column("row_type"), decoded.column("kind")
    accepted = pc.equal(row_type, "accepted")
    tables = {k: _conform(decoded.filter(pc.and_(accepted, pc.equal(kind, k))), arrow_schema(s))
              for k, s in KINDS.items()}
    rejected = decoded.filter(pc.equal(row_type, "rejected"))
    quarantine = pa.Table.from_arrays(
        [_single(rejected.column(_QUARANTINE_TO_DECODED[f.name])) if f.name in _QUARANTINE_TO_DECODED
         else pa.nulls(rejected.num_rows, f.type) for f in QUARANTINE_SCHEMA], schema=QUARANTINE_SCHEMA)
    tally = decoded.filter(pc.equal(row_type, "tally"))
    outcome = BatchOutcome(tables["trade"], tables["quote"], quarantine,
                           received=int(pc.sum(tally.column("received")).as_py() or 0),
                           filtered=int(pc.sum(tally.column("filtered")).as_py() or 0))
    outcome.check()
    return outcome


def utc_dates(ts_ns: pa.Array | pa.ChunkedArray) -> pa.Array:
    """UTC calendar dates (date32) of int64 ns timestamps."""
    ts = np.asarray(_single(ts_ns).to_numpy(zero_copy_only=False), np.int64)
    return pa.array((ts // NS_PER_DAY).astype(np.int32), pa.date32())


def latencies_ms(ingest_ts: pa.ChunkedArray | pa.Array, now_ns: int) -> np.ndarray:
    """Milliseconds from each tick's ``ingest_ts`` (its Kafka timestamp: when it was published)
    to ``now_ns``."""
    ts = _single(ingest_ts).to_numpy(zero_copy_only=False).astype(np.int64)
    return (now_ns - ts) / NS_PER_MS


# -- load: the ODS --------------------------------------------------------------------------------
class OdsSink:
    """Writes a batch's accepted ticks to the operational store (idempotent by key)."""

    def __init__(self, store: OperationalStore) -> None:
        self.store = store

    def write(self, outcome: BatchOutcome) -> dict[str, int]:
        new = {"trade": 0, "quote": 0}
        if outcome.trades.num_rows:
            new["trade"] = int(self.store.write_trades(outcome.trades))
        if outcome.quotes.num_rows:
            new["quote"] = int(self.store.write_quotes(outcome.quotes))
        return new


# -- load: Hive ------------------------------------------------------------------------------------
def realtime_tables(cfg: Config) -> dict[str, str]:
    """kind -> ``db.table`` of the real-time tables, plus 'quarantine'."""
    names = {"trade": cfg.speed.realtime_trades_table, "quote": cfg.speed.realtime_quotes_table}
    for name in names.values():
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise SpeedLayerError(f"speed: real-time table name {name!r}: use lower-case letters, "
                                  "digits and _")
    db = cfg.warehouse.curated_db
    return {**{k: f"{db}.{v}" for k, v in names.items()},
            "quarantine": f"{cfg.warehouse.raw_db}.{QUARANTINE_TABLE}"}


def table_columns(kind: str) -> list[str]:
    schema = QUARANTINE_SCHEMA if kind == "quarantine" else arrow_schema(KINDS[kind])
    return [*schema.names, *PARTITION_COLUMNS]


def with_partitions(table: pa.Table, dt_from: str, batch_id: int) -> pa.Table:
    """``table`` plus ``dt`` (UTC date of column ``dt_from``) and ``batch_id``: a real-time row."""
    return (table.append_column("dt", utc_dates(table.column(dt_from)))
            .append_column("batch_id", pa.array(np.full(table.num_rows, batch_id, np.int64))))


HighWater = dict[str, dict[str, tuple[int, int]]]  # kind -> symbol -> greatest (ts, seq) written


def _row_payload(row: dict[str, Any]) -> bytes:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=str).encode()


class HiveSink:
    """Writes a batch to the real-time tables and the quarantine table, replacing the batch's
    own (dt, batch_id) partitions; quarantines keys the tables already hold.

    Duplicate check (replay-deterministic): a tick is a duplicate if its key repeats an earlier
    row of the batch, or if it is at or below its symbol's high-water mark (the greatest
    (ts, seq) written by earlier batches) AND the table holds its key in a partition of an
    earlier batch (one small partition-pruned lookup, only when such rows exist; a late but new
    tick below the mark is accepted). The mark after each batch is saved beside the checkpoint.
    """

    def __init__(self, spark: SparkSession, cfg: Config, checkpoint: str, fs: LakeFS) -> None:
        self.spark = spark
        self.tables = realtime_tables(cfg)
        self.fs = fs
        self.state_dir = f"{checkpoint}/{HWM_DIR}"  # relative to the lake root
        self._hwm: HighWater = {}
        self._hwm_batch = -2  # the batch self._hwm follows
        self.steps_ms: dict[str, float] = {}

    # the high-water marks
    def _state_path(self, batch_id: int) -> str:
        return f"{self.state_dir}/{batch_id}.json"

    def high_water_before(self, batch_id: int) -> HighWater:
        """The marks after batch ``batch_id - 1`` (what every batch before it wrote)."""
        if self._hwm_batch == batch_id - 1:
            return self._hwm
        saved = [int(n[:-5]) for n in self.fs.list(self.state_dir)
                 if n.endswith(".json") and n[:-5].isdigit()]
        base = max((b for b in saved if b < batch_id), default=-1)
        hwm: HighWater = {}
        if base >= 0:
            raw = json.loads(self.fs.read_bytes(self._state_path(base)))
            hwm = {k: {s: (int(v[0]), int(v[1])) for s, v in d.items()} for k, d in raw["hwm"].items()}
        if base < batch_id - 1:  # marks missing (older checkpoint): rebuild from the tables
            log.warning("high-water marks for batches %d..%d missing; reading them from the tables",
                        base + 1, batch_id - 1)
            for kind in KINDS:
                self._merge(hwm, kind, self._table_marks(kind, base, batch_id))
        return hwm

    def _table_marks(self, kind: str, after: int, before: int) -> pa.Table:
        from pyspark.sql import functions as F

        rows = (self.spark.table(self.tables[kind])
                .where((F.col("batch_id") > after) & (F.col("batch_id") < before))
                .groupBy("symbol").agg(F.max(F.struct("ts", "seq")).alias("m"))
                .select("symbol", F.col("m.ts").alias("ts"), F.col("m.seq").alias("seq")))
        return rows.toArrow()

    @staticmethod
    def _merge(hwm: HighWater, kind: str, marks: pa.Table) -> None:
        """Raise ``hwm[kind]`` to the greatest (ts, seq) per symbol of ``marks``' rows."""
        if not marks.num_rows:
            return
        symbols = _single(marks.column("symbol")).dictionary_encode()
        codes = symbols.indices.to_numpy(zero_copy_only=False)
        ts = _single(marks.column("ts")).to_numpy(zero_copy_only=False)
        seq = _single(marks.column("seq")).to_numpy(zero_copy_only=False)
        order = np.lexsort((seq, ts, codes))
        last = order[np.append(np.flatnonzero(np.diff(codes[order])), len(order) - 1)]
        own = hwm.setdefault(kind, {})
        for name, i in zip(symbols.dictionary.to_pylist(), last.tolist(), strict=True):
            mark = (int(ts[i]), int(seq[i]))
            own[name] = max(own.get(name, mark), mark)

    def _save(self, batch_id: int, hwm: HighWater) -> None:
        body = {"batch_id": batch_id, "hwm": {k: {s: list(v) for s, v in d.items()} for k, d in hwm.items()}}
        self.fs.write_bytes(self._state_path(batch_id), json.dumps(body).encode())
        if batch_id >= HWM_KEEP:
            self.fs.delete(self._state_path(batch_id - HWM_KEEP))  # False if already gone
        self._hwm, self._hwm_batch = hwm, batch_id

    # the duplicate check
    def _already_written(self, kind: str, rows: pa.Table, batch_id: int) -> np.ndarray:
        """For each of ``rows``: is its key in the table, in a partition of an earlier batch?"""
        from pyspark.sql import functions as F

        ts = _single(rows.column("ts")).to_numpy(zero_copy_only=False)
        days = sorted({EPOCH + timedelta(days=int(d)) for d in ts // NS_PER_DAY})
        symbols = sorted(set(rows.column("symbol").to_pylist()))
        found = (self.spark.table(self.tables[kind])
                 .where(F.col("dt").isin(days) & (F.col("batch_id") < batch_id)
                        & F.col("symbol").isin(symbols)
                        & F.col("ts").between(int(ts.min()), int(ts.max())))
                 .select("symbol", "ts", "seq").toArrow())
        have = set(zip(*(found.column(c).to_pylist() for c in ("symbol", "ts", "seq")), strict=True))
        keys = zip(*(rows.column(c).to_pylist() for c in ("symbol", "ts", "seq")), strict=True)
        return np.array([k in have for k in keys], bool)

    def dedup(self, kind: str, table: pa.Table, batch_id: int,
              hwm: HighWater) -> tuple[pa.Table, pa.Table]:
        """(rows to write, ``duplicate`` quarantine rows) of one kind's accepted ticks."""
        n = table.num_rows
        if not n:
            return table, QUARANTINE_SCHEMA.empty_table()
        detail: dict[int, str] = {}
        keyed = table.select(["symbol", "ts", "seq"]).append_column("_i", pa.array(np.arange(n)))
        first = keyed.group_by(["symbol", "ts", "seq"], use_threads=False).aggregate([("_i", "min")])
        dup = np.zeros(n, bool)
        if first.num_rows < n:
            keep = np.zeros(n, bool)
            keep[first.column("_i_min").to_numpy()] = True
            dup = ~keep
            for i in np.flatnonzero(dup).tolist():
                detail[i] = f"repeats an earlier row of micro-batch {batch_id}"
        marks = hwm.get(kind)
        if marks:
            symbols = _single(table.column("symbol")).dictionary_encode()
            codes = symbols.indices.to_numpy(zero_copy_only=False)
            names = symbols.dictionary.to_pylist()
            mark_ts = np.array([marks.get(s, (-1, -1))[0] for s in names], np.int64)[codes]
            mark_seq = np.array([marks.get(s, (-1, -1))[1] for s in names], np.int64)[codes]
            ts = _single(table.column("ts")).to_numpy(zero_copy_only=False)
            seq = _single(table.column("seq")).to_numpy(zero_copy_only=False)
            suspect = ~dup & ((ts < mark_ts) | ((ts == mark_ts) & (seq <= mark_seq)))
            if suspect.any():
                where = np.flatnonzero(suspect)
                hits = where[self._already_written(kind, table.take(pa.array(where)), batch_id)]
                dup[hits] = True
                for i in hits.tolist():
                    detail[i] = f"was written to {self.tables[kind]} by an earlier micro-batch"
        if not dup.any():
            return table, QUARANTINE_SCHEMA.empty_table()
        rejected = table.filter(pa.array(dup))
        # the rejection time is data, not the wall clock: the batch's latest ingest_ts
        judged = int(pc.max(table.column("ingest_ts")).as_py() or 0)
        rows = rejected.to_pylist()
        quarantine = quarantine_from_columns(
            ts=[judged] * len(rows), event_ts=[r["ts"] for r in rows], kind=[kind] * len(rows),
            symbol=[r["symbol"] for r in rows], reason=[Reason.DUPLICATE.value] * len(rows),
            detail=[f"key (symbol, ts, seq) = ({r['symbol']!r}, {r['ts']}, {r['seq']}) {detail[i]}"
                    for r, i in zip(rows, np.flatnonzero(dup).tolist(), strict=True)],
            source=[f"speed_layer:{self.tables[kind]}"] * len(rows), line_no=[None] * len(rows),
            payload=[_row_payload(r) for r in rows])
        return table.filter(pa.array(~dup)), quarantine

    def _insert(self, kind: str, table: pa.Table, dt_from: str, batch_id: int) -> None:
        rows = with_partitions(table, dt_from, batch_id)
        # one task: one file per partition, and one core left to the ODS query
        df = self.spark.createDataFrame(rows).coalesce(1)
        df.write.insertInto(self.tables[kind], overwrite=True)

    def write(self, outcome: BatchOutcome, batch_id: int) -> BatchOutcome:
        """Write one batch; returns the outcome as written (duplicates moved to quarantine).
        ``self.steps_ms`` has the time of each step (dedup, one insert per table, the marks)."""
        started = time.monotonic()
        steps: dict[str, float] = {}
        hwm = {k: dict(v) for k, v in self.high_water_before(batch_id).items()}
        kept, quarantine = {}, [outcome.quarantine]
        for kind in KINDS:
            kept[kind], dups = self.dedup(kind, outcome.table(kind), batch_id, hwm)
            if dups.num_rows:
                quarantine.append(dups)
        written = BatchOutcome(kept["trade"], kept["quote"], pa.concat_tables(quarantine),
                               outcome.received, outcome.filtered)
        written.check()
        steps["dedup"], t = (time.monotonic() - started) * 1000, time.monotonic()
        for kind in KINDS:
            if written.table(kind).num_rows:
                self._insert(kind, written.table(kind), "ts", batch_id)
                self._merge(hwm, kind, written.table(kind))
                steps[kind + "s"], t = (time.monotonic() - t) * 1000, time.monotonic()
        if written.quarantine.num_rows:
            self._insert("quarantine", written.quarantine, "ts", batch_id)
            steps["quarantine"], t = (time.monotonic() - t) * 1000, time.monotonic()
        self._save(batch_id, hwm)
        steps["marks"] = (time.monotonic() - t) * 1000
        self.steps_ms = steps
        return written


def check_tables_match_checkpoint(spark: SparkSession, fs: LakeFS, checkpoint: str,
                                  tables: Iterable[str]) -> None:
    """Refuse a new checkpoint over real-time tables that already hold batches (see Restarts)."""
    if fs.list(f"{checkpoint}/offsets"):
        return
    for table in tables:
        if spark.sql(f"SHOW PARTITIONS {table}").take(1):
            raise SpeedLayerError(
                f"the checkpoint {checkpoint} is new, but {table} already holds micro-batches of "
                "an earlier run: batch ids restart at 0 and would overwrite them. Drop the "
                "real-time tables (the batch layer supersedes them) or set speed.checkpoint_dir "
                "to the checkpoint that wrote them.")


# -- the micro-batch handler and the queries --------------------------------------------------------
class Histogram:
    """Latencies in whole milliseconds (1 ms buckets up to 10 minutes; later ones in the last)."""

    LIMIT = 600_000

    def __init__(self) -> None:
        self.counts = np.zeros(self.LIMIT + 1, np.int64)

    def add(self, ms: np.ndarray) -> None:
        if ms.size:
            values, n = np.unique(np.clip(np.rint(ms), 0, self.LIMIT).astype(np.int64), return_counts=True)
            self.counts[values] += n

    def quantile(self, q: float) -> int | None:
        total = int(self.counts.sum())
        if not total:
            return None
        return int(np.searchsorted(np.cumsum(self.counts), max(1, int(np.ceil(q * total)))))

    def summary(self) -> dict[str, int | None]:
        nonzero = np.flatnonzero(self.counts)
        return {"p50": self.quantile(0.5), "p99": self.quantile(0.99),
                "max": int(nonzero[-1]) if nonzero.size else None, "n": int(self.counts.sum())}


@dataclass
class QueryStats:
    name: str
    batches: int = 0
    counts: Counts = field(default_factory=Counts)
    ods_new: dict[str, int] = field(default_factory=lambda: {"trade": 0, "quote": 0})
    hive_rows: dict[str, int] = field(default_factory=lambda: {"trade": 0, "quote": 0, "quarantine": 0})
    to_ods: Histogram = field(default_factory=Histogram)
    to_hive: Histogram = field(default_factory=Histogram)
    batch_ms: list[float] = field(default_factory=list)
    step_ms: dict[str, list[float]] = field(default_factory=dict)  # our own steps, per batch
    last_batch_id: int | None = None
    progress_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        c = self.counts
        ms = np.array(self.batch_ms) if self.batch_ms else np.zeros(1)
        out: dict[str, Any] = {
            "batches": self.batches, "last_batch_id": self.last_batch_id, "received": c.received,
            "accepted": c.accepted, "quarantined": c.quarantined, "filtered": c.filtered,
            "by_reason": c.by_reason, "reconciled": c.reconciles(),
            "batch_ms": {"p50": round(float(np.percentile(ms, 50)), 1),
                         "max": round(float(ms.max()), 1)},
            "step_ms_p50": {step: round(float(np.median(v)), 1) for step, v in self.step_ms.items()},
            "spark_step_ms_p50": self.progress_ms}
        if self.to_ods.counts.any():
            out["ods_new"] = self.ods_new
            out["publish_to_ods_ms"] = self.to_ods.summary()
        if self.to_hive.counts.any() or any(self.hive_rows.values()):
            out["hive_rows"] = self.hive_rows
            out["publish_to_hive_ms"] = self.to_hive.summary()
        return out


def _pct(ms: np.ndarray) -> str:
    if not ms.size:
        return "-"
    return f"p50 {np.percentile(ms, 50):.0f} ms, max {ms.max():.0f} ms"


class MicroBatch:
    """The ``foreachBatch`` function of one query: decode + validate, then the ODS and/or Hive."""

    def __init__(self, name: str, topics: dict[str, str], ingest: IngestConfig, tasks: int,
                 ods: OdsSink | None, hive: HiveSink | None,
                 progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
                 ) -> None:
        self.name, self.topics, self.ingest, self.tasks = name, topics, ingest, tasks
        self.decode_on_driver = ods is not None  # latency first where the ODS is written
        # the lake writer decodes in the executors, yielding the cores to the ODS query's batches
        self.decode_niceness = None if self.decode_on_driver else LAKE_DECODE_NICENESS
        self.ods, self.hive, self.progress = ods, hive, progress
        self.stats = QueryStats(name)

    def __call__(self, df: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        # this query's jobs run in its own fair-scheduler pool: a long Hive job never queues the
        # ODS query's jobs behind it (spark.scheduler.mode=FAIR, see SPARK_CONF)
        df.sparkSession.sparkContext.setLocalProperty("spark.scheduler.pool", self.name)
        steps: dict[str, float] = {}
        outcome = split_outcome(collect_decoded(df, self.topics, self.ingest, self.decode_on_driver,
                                                self.tasks, steps, self.decode_niceness))
        steps["decode"] = time.monotonic() - started
        ods_line = hive_line = ""
        if self.ods is not None:
            t = time.monotonic()
            new = self.ods.write(outcome)
            now = time.time_ns()
            lat = np.concatenate([latencies_ms(outcome.table(k).column("ingest_ts"), now) for k in KINDS])
            self.stats.to_ods.add(lat)
            for k, n in new.items():
                self.stats.ods_new[k] += n
            steps["ods"] = time.monotonic() - t
            ods_line = (f"; ods +{new['trade']:,} trades +{new['quote']:,} quotes new, "
                        f"publish->ods {_pct(lat)}")
        written = outcome
        if self.hive is not None:
            t = time.monotonic()
            written = self.hive.write(outcome, batch_id)
            now = time.time_ns()
            lat = np.concatenate([latencies_ms(written.table(k).column("ingest_ts"), now) for k in KINDS])
            self.stats.to_hive.add(lat)
            for k in KINDS:
                self.stats.hive_rows[k] += written.table(k).num_rows
            self.stats.hive_rows["quarantine"] += written.quarantine.num_rows
            steps["hive"] = time.monotonic() - t
            parts = ", ".join(f"{k} {v:.0f}" for k, v in self.hive.steps_ms.items())
            hive_line = f"; hive steps ms: {parts}; publish->hive {_pct(lat)}"
        counts = written.check()
        total = time.monotonic() - started
        self.stats.counts.add(counts)
        self.stats.batches += 1
        self.stats.last_batch_id = batch_id
        self.stats.batch_ms.append(total * 1000)
        for step, seconds in steps.items():
            self.stats.step_ms.setdefault(step, []).append(seconds * 1000)
        times = ", ".join(f"{k} {v * 1000:.0f}" for k, v in steps.items())
        self.progress(f"speed [{self.name}] batch {batch_id}: {counts.summary()}; "
                      f"{total * 1000:.0f} ms ({times}){ods_line}{hive_line}")


def kafka_topics(cfg: Config) -> dict[str, str]:
    topics = {cfg.ingest.topics.trades: "trade", cfg.ingest.topics.quotes: "quote"}
    if len(topics) != 2:
        raise SpeedLayerError("ingest.topics.trades and ingest.topics.quotes must differ")
    return topics


def ensure_topics(cfg: Config, timeout_s: float = 15.0) -> None:
    """Make sure both topics exist before the queries start (a topic created while the Kafka
    source plans a batch fails the query): asking for their partitions makes a broker that allows
    it create them, as the publisher's first message would."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    producer = KafkaProducer(bootstrap_servers=cfg.kafka.bootstrap.split(","),
                             client_id="tradelake-speed-layer", max_block_ms=int(timeout_s * 1000))
    try:
        for topic in kafka_topics(cfg):
            producer.partitions_for(topic)
    except KafkaError as exc:
        raise SpeedLayerError(f"Kafka topic(s) {sorted(kafka_topics(cfg))} at {cfg.kafka.bootstrap}: "
                              f"{exc}; create them (or enable auto-creation)") from exc
    finally:
        producer.close(timeout=5)


def checkpoint_path(cfg: Config, query: str) -> str:
    """The query's checkpoint, relative to the lake root."""
    return f"{cfg.speed.checkpoint_dir.strip('/')}/{query}"


def extract(spark: SparkSession, cfg: Config, max_offsets: int) -> DataFrame:
    """The Kafka stream of both topics (Spark's own Kafka source)."""
    return (spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", cfg.kafka.bootstrap)
            .option("subscribe", ",".join(kafka_topics(cfg)))
            .option("startingOffsets", cfg.speed.starting_offsets)
            .option("maxOffsetsPerTrigger", str(max_offsets))
            # the consumer only asks for offsets known to exist; the default 500 ms wait for more
            # data cost ~0.5 s per partition and micro-batch here
            .option("kafka.fetch.max.wait.ms", str(FETCH_MAX_WAIT_MS))
            .load())


@dataclass(frozen=True)
class RunOptions:
    mode: str = "split"
    duration_s: float | None = None
    available_now: bool = False
    trigger_ms: int = 250
    hive_trigger_ms: int = DEFAULT_HIVE_TRIGGER_MS
    max_offsets: int = 2000


def start_queries(spark: SparkSession, cfg: Config, opts: RunOptions, store: OperationalStore,
                  fs: LakeFS) -> list[tuple[StreamingQuery, MicroBatch]]:
    from hive.warehouse import ensure_tables

    tables = realtime_tables(cfg)
    ensure_tables(spark, cfg, tables.values())
    for kind, table in tables.items():  # insertInto is positional: refuse a table that drifted
        have = [f.name for f in spark.table(table).schema.fields]
        if have != table_columns(kind):
            raise SpeedLayerError(f"{table} has columns {have}; the speed layer writes {table_columns(kind)}")
    topics = kafka_topics(cfg)
    ensure_topics(cfg)
    cores = max(1, spark.sparkContext.defaultParallelism)
    for name in MODES[opts.mode]:  # every check before any query starts
        if name != "ods":
            check_tables_match_checkpoint(spark, fs, checkpoint_path(cfg, name), tables.values())
    started = []
    for name in MODES[opts.mode]:
        checkpoint = checkpoint_path(cfg, name)
        hive = HiveSink(spark, cfg, checkpoint, fs) if name != "ods" else None
        # the Hive query decodes in one task, so the ODS query always finds a free core
        tasks = 1 if name == "hive" else cores
        handler = MicroBatch(name, topics, cfg.ingest, tasks, OdsSink(store) if name != "hive" else None,
                             hive)
        trigger_ms = opts.hive_trigger_ms if name == "hive" else opts.trigger_ms
        max_offsets = opts.max_offsets
        if name == "hive" and not opts.available_now:  # the same intake per second as the ODS query
            max_offsets *= max(1, -(-opts.hive_trigger_ms // opts.trigger_ms))
        writer = (extract(spark, cfg, max_offsets).writeStream
                  .queryName(f"tradelake_speed_{name}")
                  .option("checkpointLocation", fs.uri(checkpoint))
                  .foreachBatch(handler))
        writer = (writer.trigger(availableNow=True) if opts.available_now
                  else writer.trigger(processingTime=f"{trigger_ms} milliseconds"))
        started.append((writer.start(), handler))
    return started


def progress_durations(query: StreamingQuery) -> dict[str, float]:
    """Median of each step of Spark's own micro-batch timing (``durationMs``: latestOffset,
    walCommit, queryPlanning, addBatch (= our foreachBatch), commitOffsets, triggerExecution)
    over the query's recent batches that had data (the last ``numRecentProgressUpdates``, see
    ``SPARK_CONF``), of ``unnamed``: each batch's triggerExecution less its named steps, and of
    ``betweenTriggers``: from the end of one such trigger to the start of the next (progress
    reporting, the trigger's wait)."""
    steps: dict[str, list[float]] = {}
    recent = list(query.recentProgress)  # empty for a query stopped before its first trigger
    for progress, following in zip(recent, [*recent[1:], None][:len(recent)], strict=True):
        # (Spark reports a trigger without data only every 10 s: such a gap spans several)
        if (following is not None and progress.get("numInputRows") and following.get("numInputRows")
                and "triggerExecution" in (progress.get("durationMs") or {})):
            ended = (datetime.fromisoformat(progress["timestamp"]).timestamp() * 1000
                     + progress["durationMs"]["triggerExecution"])
            steps.setdefault("betweenTriggers", []).append(
                datetime.fromisoformat(following["timestamp"]).timestamp() * 1000 - ended)
        if progress.get("numInputRows"):
            durations = {step: float(ms) for step, ms in (progress.get("durationMs") or {}).items()}
            for step, ms in durations.items():
                steps.setdefault(step, []).append(ms)
            if "triggerExecution" in durations:  # per batch: the medians of the parts do not add up
                steps.setdefault("unnamed", []).append(
                    durations["triggerExecution"] - sum(ms for step, ms in durations.items()
                                                        if step != "triggerExecution"))
    return {step: float(np.median(v)) for step, v in sorted(steps.items())}


def stop_between_batches(query: StreamingQuery, wait_s: float = 120.0) -> None:
    """Stop ``query``, waiting (up to ``wait_s``) for a running micro-batch to finish first; a
    batch that starts in between is interrupted, and run again by the next start."""
    deadline = time.monotonic() + wait_s
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.01)
    query.stop()


def run(spark: SparkSession, cfg: Config, opts: RunOptions, store: OperationalStore, fs: LakeFS,
        stop: threading.Event | None = None) -> dict[str, Any]:
    """Run the queries until the duration passes, ``--available-now`` is done, ``stop`` is set
    or a query fails; returns the ``SPEED_RESULT`` summary."""
    stop = stop or threading.Event()
    began = time.monotonic()
    queries = start_queries(spark, cfg, opts, store, fs)
    how = "available-now" if opts.available_now else f"trigger {opts.trigger_ms} ms"
    if opts.mode == "split" and not opts.available_now:
        how += f", hive trigger {opts.hive_trigger_ms} ms"
    print(f"speed: started {', '.join(h.name for _, h in queries)} ({how}) on "
          f"{', '.join(kafka_topics(cfg))}; checkpoints under "
          f"{fs.uri(cfg.speed.checkpoint_dir.strip('/'))}", file=sys.stderr, flush=True)
    deadline = began + opts.duration_s if opts.duration_s else None
    ended, errors = "available-now" if opts.available_now else "duration", []
    while True:
        errors = [f"{h.name}: {q.exception()}" for q, h in queries if not q.isActive and q.exception()]
        if errors:
            ended = "failed"
            break
        if not any(q.isActive for q, _ in queries):
            break
        if stop.is_set() or (deadline and time.monotonic() >= deadline):
            ended = "signal" if stop.is_set() else "duration"
            break
        time.sleep(0.1)
    for query, handler in queries:
        handler.stats.progress_ms = progress_durations(query)
        if query.isActive:
            stop_between_batches(query)
    per_query = {h.name: h.stats for _, h in queries}
    lake = per_query.get("hive") or per_query.get("single")
    ods = per_query.get("ods") or per_query.get("single")
    c = lake.counts
    summary = {
        "mode": opts.mode, "ended": ended, "errors": errors,
        "seconds": round(time.monotonic() - began, 1),
        "checkpoint": fs.uri(cfg.speed.checkpoint_dir.strip("/")),
        "tables": realtime_tables(cfg),
        "received": c.received, "accepted": c.accepted, "quarantined": c.quarantined,
        "filtered": c.filtered, "by_reason": c.by_reason,
        "reconciled": all(s.counts.reconciles() for s in per_query.values()),
        "ods_new": ods.ods_new,
        "publish_to_ods_ms": ods.to_ods.summary(), "publish_to_hive_ms": lake.to_hive.summary(),
        "queries": {name: s.as_dict() for name, s in per_query.items()},
    }
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="See the module docstring (spark_jobs/speed_layer.py) for the rules.")
    add_speed_arguments(parser)
    args = parser.parse_args(argv)
    if error := speed_argument_error(args):
        parser.error(error)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = load_config()
    opts = RunOptions(mode=args.mode, duration_s=args.duration, available_now=args.available_now,
                      trigger_ms=args.trigger_ms or cfg.speed.trigger_ms,
                      hive_trigger_ms=args.hive_trigger_ms,
                      max_offsets=args.max_offsets or cfg.speed.max_offsets_per_trigger)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        print(f"speed: {signal.Signals(signum).name}: stopping between micro-batches", file=sys.stderr,
              flush=True)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("SPEED_STARTED " + json.dumps({"pid": os.getpid(), "mode": opts.mode}), flush=True)

    from ods.store import open_store
    from tradelake.lakefs import lake_fs
    from tradelake.spark import get_spark

    store = open_store(cfg)
    store.ensure_schema()
    spark = get_spark("tradelake-speed-layer", cfg, SPARK_CONF)
    spark.sparkContext.setLogLevel("WARN")
    try:
        summary = run(spark, cfg, opts, store, lake_fs(cfg), stop)
    except SpeedLayerError as exc:
        print(f"speed: error: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        store.close()
        spark.stop()
    print("SPEED_RESULT " + json.dumps(summary), flush=True)
    return 0 if summary["ended"] != "failed" and summary["reconciled"] else 1


if __name__ == "__main__":
    sys.exit(main())
