"""The ``ods`` target of the DR replay: rebuild the operational store's market data from the raw zone.

Replayed trades and quotes go through the same two steps as in the speed layer
(``spark_jobs/speed_layer.py``), so the rebuilt store holds what the live-built one held:

1. the ingestion layer's ``Validator`` (universe filter, every rule, duplicates by key), whose
   clock is the latest ``ingest_ts`` of the batch (the original broker time the lander kept), not
   the wall clock, as the speed layer judges by Kafka timestamps;
2. the bulk write path, in batches of ``rows_per_write`` rows: for PostgreSQL ``ods.bulk_load``
   (binary COPY straight into the emptied tick tables, trades and quotes on two connections at
   once; keys and continuous views built once at the end, see that module), for HBase the store's
   own ``write_trades`` / ``write_quotes`` (batched puts). ``store_writers`` gives the store's own
   path for any store.

Only the market-data part is rebuilt: trades, quotes and what the store derives from them (1m
bars, last trade, latest quote, rolling volume, market alerts). Orders, executions and positions
come back from the OMS journal (the router's shipper re-ships from its own high-water mark), not
from the raw zone: the journal order between the orders and executions topics travels in a Kafka
header the lander does not keep.

``prepare`` refuses to write into a store that already holds market data, unless told to wipe it;
a wipe, when asked for, is always done (``drop`` + ``ensure_schema``: the whole store, from
scratch), so it also clears what an interrupted bulk load left (no keys, triggers disabled).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.pipeline import session_calendar
from ingestion.quarantine import Counts
from ingestion.validation import Validator

if TYPE_CHECKING:
    from ingestion.lander import TopicSpec
    from ingestion.replay import ReplayBatch
    from ods.store import OperationalStore
    from tradelake.config import Config

KINDS = ("trade", "quote")


class RebuildRefused(RuntimeError):
    """The store already holds market data and no wipe was asked for."""


def has_market_data(store: OperationalStore) -> bool:
    if store.kind == "hbase":
        from hbase.checksum import has_rows

        return has_rows(store, "trades") or has_rows(store, "quotes")
    (found,), = store.query("SELECT EXISTS (SELECT 1 FROM trades) OR EXISTS (SELECT 1 FROM quotes)")
    return bool(found)


def prepare(store: OperationalStore, wipe: bool) -> bool:
    """Make ``store`` an empty, migrated store; True if it was wiped."""
    store.ensure_schema()
    if not wipe:
        if has_market_data(store):
            raise RebuildRefused(f"{store!r} already holds trades or quotes: a rebuild starts from an empty "
                                 "store (pass --wipe to drop it and rebuild it from scratch)")
        return False
    store.drop()
    store.ensure_schema()
    return True


class _Clock:
    """The validator's ``now``: the latest original broker time of the batch being judged."""

    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns


@dataclass
class RebuildStats:
    counts: dict[str, Counts] = field(default_factory=lambda: {k: Counts() for k in KINDS})
    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))  # new rows
    write_seconds: float = 0.0  # in store writes, summed over the connections (they overlap)

    def already(self, kind: str) -> int:
        """Accepted rows the store already held (its key ignored them)."""
        return self.counts[kind].accepted - self.written[kind]

    def as_dict(self) -> dict[str, Any]:
        return {kind: {"received": c.received, "accepted": c.accepted, "written": self.written[kind],
                       "already_present": self.already(kind), "quarantined": c.quarantined,
                       "filtered": c.filtered, "by_reason": dict(c.by_reason), "reconciled": c.reconciles()}
                for kind, c in self.counts.items()} | {"write_seconds": round(self.write_seconds, 3)}


Writer = Callable[[pa.Table], int]  # writes accepted rows of one kind, returns the new rows


def store_writers(store: OperationalStore) -> dict[str, Writer]:
    """The store's own write path (both kinds on one connection: not in parallel)."""
    return {"trade": store.write_trades, "quote": store.write_quotes}


class OdsRebuild:
    """Writes replayed batches into a store (see the module doc): ``write`` per batch, then
    ``finish``. Accepted rows go to ``writers[kind]`` ``rows_per_write`` at a time, on background
    threads, so reading the lake overlaps the writes: one thread per kind if ``parallel`` (each
    kind's writer has its own connection), else one for both."""

    def __init__(self, cfg: Config, specs: Sequence[TopicSpec], writers: dict[str, Writer], *,
                 parallel: bool = False, rows_per_write: int = 100_000) -> None:
        other = [s.topic for s in specs if s.kind not in KINDS]
        if other:
            raise ValueError(f"the ods target rebuilds trades and quotes; {other} cannot go there")
        self.specs = {s.topic: s for s in specs}
        self.clock = _Clock()
        ingest = cfg.ingest
        self.validators = {s.topic: Validator(source=f"replay:{s.topic}", universe=ingest.universe or None,
                                              sessions=session_calendar(ingest.sessions),
                                              max_clock_skew_ns=ingest.max_clock_skew_s * 1_000_000_000,
                                              now_ns=self.clock)
                           for s in specs}
        self.stats = RebuildStats()
        self.rows_per_write = rows_per_write
        self._write_fn = writers
        shared = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ods-rebuild")
        self._pool = {k: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ods-rebuild-{k}")
                      if parallel else shared for k in KINDS}
        self._pools = list({id(p): p for p in self._pool.values()}.values())
        if parallel:
            shared.shutdown()
        self._pending: dict[str, list[pa.Table]] = {k: [] for k in KINDS}
        self._in_flight: deque[tuple[str, Future]] = deque()

    def write(self, batch: ReplayBatch) -> None:
        for topic, table in batch.tables.items():
            spec = self.specs[topic]
            events = table.select(spec.schema.names)
            stamps = pc.max(events.column("ingest_ts")).as_py()
            self.clock.now_ns = stamps if stamps is not None else int(pc.max(events.column("ts")).as_py())
            result = self.validators[topic].validate(spec.kind, events)
            self.stats.counts[spec.kind].add(result.counts)
            if result.accepted.num_rows:
                self._pending[spec.kind].append(result.accepted)
                if sum(t.num_rows for t in self._pending[spec.kind]) >= self.rows_per_write:
                    self._submit(spec.kind)

    def _submit(self, kind: str) -> None:
        tables, self._pending[kind] = self._pending[kind], []
        if tables:
            future = self._pool[kind].submit(self._timed, kind, pa.concat_tables(tables))
            self._in_flight.append((kind, future))
        while len(self._in_flight) > 4:  # bounded memory: wait for the oldest write
            self._collect()

    def _timed(self, kind: str, rows: pa.Table) -> tuple[int, float]:
        started = time.perf_counter()
        return self._write_fn[kind](rows), time.perf_counter() - started

    def _collect(self) -> None:
        kind, future = self._in_flight.popleft()
        written, seconds = future.result()  # a refused batch raises here (StoreRuleViolation)
        self.stats.written[kind] += written
        self.stats.write_seconds += seconds

    def finish(self) -> RebuildStats:
        """Write what is buffered and wait for every write; the first failure is raised."""
        try:
            for kind in KINDS:
                self._submit(kind)
            while self._in_flight:
                self._collect()
        finally:
            for pool in self._pools:
                pool.shutdown(wait=True, cancel_futures=True)
        return self.stats

    def abort(self) -> None:
        """Stop after a failure: nothing more is written, queued writes are dropped."""
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
