"""Feed -> validation -> Kafka, with a reconciled count of every record.

Accepted ticks go to their kind's topic, rejects to the quarantine topic (the lander lands it
into the lake's ``quarantine/`` zone), records outside the universe are counted as filtered.
``received = accepted + quarantined + filtered`` is checked at the end of every run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import time as dtime
from pathlib import Path

import pyarrow as pa

from ingestion.publisher import TickPublisher
from ingestion.quarantine import Counts
from ingestion.validation import Session, SessionCalendar, Validator, parse_records
from tradelake.config import Config, IngestConfig

KIND_TOPIC = {"trade": "trades", "quote": "quotes", "bar": "bars"}


def session_calendar(spec: dict[str, str]) -> SessionCalendar | None:
    """``{"*": "09:30-16:00 America/New_York", "BTCUSD": "00:00-23:59 UTC"}`` -> calendar."""
    if not spec:
        return None
    sessions = {}
    for symbol, text in spec.items():
        try:
            hours, tz = text.split()
            start, end = (dtime.fromisoformat(part) for part in hours.split("-"))
        except ValueError as exc:
            raise ValueError(f"ingest.sessions[{symbol!r}] = {text!r}: expected "
                             f"'HH:MM-HH:MM Area/City'") from exc
        sessions[symbol] = Session(timezone=tz, open=start, close=end)
    if "*" not in sessions:
        raise ValueError('ingest.sessions needs a "*" entry: the session of every other symbol')
    return SessionCalendar(sessions)


def make_validator(ingest: IngestConfig, source: str) -> Validator:
    return Validator(source=source, universe=ingest.universe or None,
                     sessions=session_calendar(ingest.sessions),
                     max_clock_skew_ns=ingest.max_clock_skew_s * 1_000_000_000)


@dataclass
class IngestReport:
    source: str
    counts: Counts = field(default_factory=Counts)
    messages: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        c = self.counts
        return {"source": self.source, "received": c.received, "accepted": c.accepted,
                "quarantined": c.quarantined, "filtered": c.filtered, "by_reason": c.by_reason,
                "reconciled": c.reconciles(), "kafka_messages": self.messages,
                "kafka_bytes": self.bytes, "seconds": round(self.seconds, 2),
                "ticks_per_s": round(c.received / self.seconds) if self.seconds else None}


def publish_batches(cfg: Config, batches: Iterable[tuple[str, pa.RecordBatch | pa.Table]],
                    validator: Validator, publisher: TickPublisher,
                    on_progress: Callable[[int], None] | None = None,
                    extra_counts: Counts | None = None) -> IngestReport:
    """Validate and publish typed batches; the report's counts include ``extra_counts``
    (records already refused before typing, e.g. unparseable file lines)."""
    topics = cfg.ingest.topics
    report = IngestReport(source=validator.source)
    started = time.monotonic()
    for kind, batch in batches:
        if kind == "quarantine":  # refused before typing (unparseable lines), counted already
            publisher.publish(topics.quarantine, "quarantine", batch)
            continue
        result = validator.validate(kind, batch)
        if result.accepted.num_rows:
            publisher.publish(getattr(topics, KIND_TOPIC[kind]), kind, result.accepted)
        if result.quarantined.num_rows:
            publisher.publish(topics.quarantine, "quarantine", result.quarantined)
        if on_progress:
            on_progress(batch.num_rows)
    stats = publisher.flush()
    report.seconds = time.monotonic() - started
    report.counts = Counts().add(validator.counts)
    if extra_counts:
        report.counts.add(extra_counts)
    report.messages, report.bytes = stats.messages, stats.bytes
    return report


def file_batches(paths: list[Path], symbol: str | None, interval: str | None,
                 parse_counts: Counts, chunk: int = 50_000) -> Iterator[tuple[str, pa.Table]]:
    """Typed batches from vendor files, and ("quarantine", rows) for lines that do not parse
    (counted into ``parse_counts``)."""
    from ingestion.files import read_records

    for path in paths:
        pending: list = []
        kind = None
        for record in read_records(path, symbol=symbol, interval=interval):
            kind = record.kind
            pending.append(record)
            if len(pending) >= chunk:
                yield from _parse_chunk(kind, pending, str(path), parse_counts)
                pending = []
        if pending and kind:
            yield from _parse_chunk(kind, pending, str(path), parse_counts)


def _parse_chunk(kind: str, records: list, source: str,
                 counts: Counts) -> Iterator[tuple[str, pa.Table]]:
    table, rejected = parse_records(kind, records, source=source, now_ns=time.time_ns())
    counts.received += rejected.num_rows
    counts.quarantined += rejected.num_rows
    for reason in rejected.column("reason").to_pylist():
        counts.by_reason[reason] = counts.by_reason.get(reason, 0) + 1
    if rejected.num_rows:
        yield "quarantine", rejected
    if table.num_rows:
        yield kind, table
