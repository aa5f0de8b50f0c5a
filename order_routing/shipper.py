"""Ships the OMS journal to the warehouse (Kafka -> lake lander -> trading.* Hive tables) and to
the operational data store, off the order path, exactly once per record.

Two sinks, each a thread with its own queue, fed by the journal as it writes and, at start, by
the journal file from the sink's own high-water mark:

- ``KafkaSink``: one Arrow message per topic per batch (``routing.topics.orders`` /
  ``.executions``, the ``tradelake.schemas`` ORDER / EXECUTION columns, ``ingestion.wire``
  encoding), keyed by the ACCOUNT, not the symbol: one partition then holds an account's whole
  log in journal order, and its last message tells where shipping stopped. Header
  ``tradelake-journal-seqs`` lists each row's journal seq, so a reader can interleave the two
  topics back into journal order (``tradelake oms recover --source kafka``). The high-water mark
  is read back from the topics' last messages at start: a crash between Kafka's ack and anything
  local can neither duplicate nor skip a record.
- ``OdsSink``: ``record_order`` / ``record_execution`` on the profile's store; the mark is a file
  beside the journal written after each committed batch. A record shipped again after a crash is
  harmless: an execution is keyed by exec_id and an order row equal to the stored status is
  skipped. A row the store refuses (a business rule) is logged with the rule and counted in
  ``refused``, never dropped silently.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from ingestion.wire import encode, headers
from order_routing.journal import Record, journal_path, read_journal
from tradelake.config import Config
from tradelake.schemas import EXECUTION, ORDER, arrow_schema

log = logging.getLogger(__name__)

SEQS_HEADER = "tradelake-journal-seqs"
_STOP = object()


class _Sink:
    """A thread draining a queue of journal records in batches into ``ship``."""

    name = "sink"

    def __init__(self, batch_records: int = 1000, linger_s: float = 0.05) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.batch_records, self.linger_s = batch_records, linger_s
        self.shipped_seq = 0  # everything <= this is in the sink
        self.records = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"shipper-{self.name}", daemon=True)
        self._handoff = threading.Lock()
        self._started = False
        self._early: list[Record] = []  # tailed while the backlog was being read

    def start(self, journal_file: Path) -> None:
        self.shipped_seq = self.high_water_mark()
        backlog = list(read_journal(journal_file, after=self.shipped_seq))
        if backlog:
            log.info("%s: shipping %d journal records after seq %d", self.name, len(backlog),
                     self.shipped_seq)
        with self._handoff:  # backlog first, then what was tailed meanwhile and is not in it
            last = backlog[-1][0] if backlog else self.shipped_seq
            for record in backlog + [r for r in self._early if r[0] > last]:
                self.queue.put(record)
            self._early.clear()
            self._started = True
        self._thread.start()

    def enqueue(self, record: Record) -> None:
        if not self._started:
            with self._handoff:
                if not self._started:
                    self._early.append(record)
                    return
        self.queue.put(record)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[Record] = []
            item = self.queue.get()
            deadline = time.monotonic() + self.linger_s
            while True:
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= self.batch_records:
                    break
                try:
                    item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            if not batch:
                continue
            try:
                self.ship(batch)
            except BaseException as exc:  # noqa: BLE001 - kept for flush() to raise in the owner
                log.exception("%s: shipping %d records failed; stopping this sink", self.name, len(batch))
                self.error = exc
                return
            self.records += len(batch)
            self.shipped_seq = batch[-1][0]
            try:
                self.after_batch()
            except OSError as exc:  # a lost mark only means re-shipping (idempotent) after a restart
                log.warning("%s: could not save its high-water mark at seq %d (%s); shipping on", self.name,
                            self.shipped_seq, exc)

    def flush(self, upto: int, timeout_s: float = 30.0) -> None:
        """Wait until every record up to journal seq ``upto`` is shipped."""
        deadline = time.monotonic() + timeout_s
        while self.shipped_seq < upto:
            if self.error:
                raise RuntimeError(f"{self.name} sink failed: {self.error}") from self.error
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: shipped up to seq {self.shipped_seq}, waited for {upto}")
            time.sleep(0.01)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._thread.is_alive():
            self.queue.put(_STOP)
            self._thread.join(timeout_s)
        self.close()

    # -- per sink ------------------------------------------------------------------------------
    def high_water_mark(self) -> int:
        raise NotImplementedError

    def ship(self, batch: list[Record]) -> None:
        raise NotImplementedError

    def after_batch(self) -> None:
        pass

    def close(self) -> None:
        pass


def _table(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    names = schema.names
    return pa.Table.from_pylist([{name: row.get(name) for name in names} for row in rows], schema=schema)


class KafkaSink(_Sink):
    name = "kafka"

    def __init__(self, cfg: Config, account: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from kafka import KafkaProducer

        self.bootstrap = cfg.kafka.bootstrap.split(",")
        self.topics = {"order": cfg.routing.topics.orders, "execution": cfg.routing.topics.executions}
        self.schemas = {"order": arrow_schema(ORDER), "execution": arrow_schema(EXECUTION)}
        self.key = account.encode()
        self.producer = KafkaProducer(bootstrap_servers=self.bootstrap, client_id="tradelake-oms-journal",
                                      acks="all", enable_idempotence=True, linger_ms=5,
                                      max_request_size=16 * 1024 * 1024)

    def high_water_mark(self) -> int:
        return max((max(seqs) for _, seqs, _ in read_topic_tails(self.bootstrap, self.topics.values())),
                   default=0)

    def ship(self, batch: list[Record]) -> None:
        futures = []
        for kind, topic in self.topics.items():
            records = [r for r in batch if r[1] == kind]
            if not records:
                continue
            table = _table((r[2] for r in records), self.schemas[kind])
            hdrs = [*headers(kind, table.num_rows),
                    (SEQS_HEADER, ",".join(str(r[0]) for r in records).encode())]
            futures.append(self.producer.send(topic, key=self.key, value=encode(table), headers=hdrs))
        for future in futures:
            future.get(timeout=30)  # acked by every in-sync replica before the mark moves

    def close(self) -> None:
        self.producer.close(timeout=10)


def read_topic_tails(bootstrap: list[str], topics: Iterable[str]) -> list[tuple[str, list[int], Any]]:
    """(topic, journal seqs, message) of the last message of every partition of ``topics``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             client_id="tradelake-oms-journal-tail", consumer_timeout_ms=5000)
    try:
        parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        if not parts:
            return []
        ends = consumer.end_offsets(parts)
        live = [tp for tp in parts if ends[tp] > 0]
        consumer.assign(live)
        for tp in live:
            consumer.seek(tp, ends[tp] - 1)
        tails: dict[Any, Any] = {}
        deadline = time.monotonic() + 15
        while len(tails) < len(live) and time.monotonic() < deadline:
            for tp, messages in consumer.poll(timeout_ms=500).items():
                tails[tp] = messages[-1]
        if len(tails) < len(live):
            missing = sorted(map(str, set(live) - set(tails)))
            raise RuntimeError(f"could not read the last message of {missing}")
        out = []
        for tp, message in tails.items():
            seqs = dict(message.headers or []).get(SEQS_HEADER, b"")
            out.append((tp.topic, [int(s) for s in seqs.decode().split(",") if s], message))
        return out
    finally:
        consumer.close()


class OdsSink(_Sink):
    name = "ods"

    def __init__(self, cfg: Config, journal_dir: Path, store: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from ods.store import INITIAL_ORDER_STATES, open_store

        self.store = store or open_store(cfg)
        self.initial = INITIAL_ORDER_STATES
        self.mark_file = journal_dir / "ods.shipped"
        self.refused: list[tuple[int, str]] = []  # (seq, reason)

    def high_water_mark(self) -> int:
        return int(self.mark_file.read_text()) if self.mark_file.exists() else 0

    def ship(self, batch: list[Record]) -> None:
        from ods.store import StoreRuleViolation

        for seq, kind, row in batch:
            try:
                if kind == "execution":
                    self.store.record_execution(row)
                    continue
                current = self.store.order_status(row["cl_ord_id"])
                if current == row["status"]:
                    continue  # shipped before a crash
                if current is None and row["status"] not in self.initial:
                    # a replacement order starts life carrying its predecessor's fills: the store
                    # sees it created NEW, then moved to its state
                    self.store.record_order({**row, "status": "NEW"})
                self.store.record_order(row)
            except StoreRuleViolation as exc:
                log.error("ODS refused journal record %d (%s %s): %s", seq, kind, row.get("cl_ord_id"), exc)
                self.refused.append((seq, str(exc)))

    def after_batch(self) -> None:
        tmp = self.mark_file.with_suffix(".tmp")
        tmp.write_text(str(self.shipped_seq))
        tmp.replace(self.mark_file)

    def close(self) -> None:
        self.store.close()


class JournalShipper:
    """Both sinks, started on a journal: ``shipper = JournalShipper.start(cfg, journal, account)``."""

    def __init__(self, sinks: list[_Sink], journal_file: Path) -> None:
        self.sinks, self.journal_file = sinks, journal_file

    @classmethod
    def start(cls, cfg: Config, journal: Any, account: str, *, kafka: bool = True, ods: bool = True,
              store: Any = None) -> JournalShipper:
        sinks: list[_Sink] = []
        if kafka:
            sinks.append(KafkaSink(cfg, account))
        if ods:
            sinks.append(OdsSink(cfg, journal.path.parent, store=store))
        shipper = cls(sinks, journal_path(journal.path.parent))
        for sink in sinks:
            journal.add_tail(sink.enqueue)  # before start(): nothing written meanwhile is missed
            sink.start(shipper.journal_file)
        return shipper

    def flush(self, upto: int, timeout_s: float = 60.0) -> None:
        for sink in self.sinks:
            sink.flush(upto, timeout_s)

    def stop(self) -> None:
        for sink in self.sinks:
            sink.stop()

    def summary(self) -> dict[str, Any]:
        return {sink.name: {"records": sink.records, "shipped_seq": sink.shipped_seq,
                            **({"refused": len(sink.refused)} if isinstance(sink, OdsSink) else {})}
                for sink in self.sinks}

