"""Quarantine vocabulary: why a record was refused, where it went, and the books that balance.

Ingestion never drops a record silently. Every record that comes in ends up in exactly one of
three places, and ``Counts`` proves it:

* **accepted** - it passed parsing and every rule and goes on to the lake;
* **quarantined** - it was refused for one ``Reason``; a ``QUARANTINE_SCHEMA`` row keeps the
  reason, a human-readable detail and the raw payload, so it can be inspected, fixed and
  replayed (nothing about the record is lost);
* **filtered** - it is well-formed but deliberately not wanted (its symbol is outside the
  configured universe); only counted, because it is not an error.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa


class Reason(enum.StrEnum):
    """Why a record was quarantined. One record gets exactly one reason: the first that applies
    in ``ingestion.validation.PRIORITY`` order, so quarantine counts add up to records."""

    #: The raw bytes are not valid UTF-8 (or a field holds text that cannot be UTF-8 encoded).
    BAD_ENCODING = "bad_encoding"
    #: The raw record is structurally broken - wrong number of columns, a CSV quoting error - as
    #: reported by the loader (``RawRecord.defect``), so none of its fields can be trusted.
    MALFORMED = "malformed"
    #: A required field is absent, empty or null (for typed batches: a required column too).
    MISSING_FIELD = "missing_field"
    #: A field's text is not a value of its type ("12a" as a price, "2024-13-01" as a
    #: timestamp), a typed column cannot be cast to the schema type, or the record is of
    #: another kind than the one being parsed.
    BAD_TYPE = "bad_type"
    #: A field has the right type but a value outside its closed vocabulary: ``side`` not 'B'
    #: or 'S', a bar ``interval`` that is not ``<n><s|m|h|d|w|mo>``.
    BAD_VALUE = "bad_value"
    #: A number is NaN or +-infinity.
    NON_FINITE = "non_finite"
    #: An absurd magnitude: a price above ``MAX_PRICE``, a quantity above ``MAX_QUANTITY``, a
    #: number that overflows float64/int64, a timestamp before 1970 or after 2262 (int64 ns).
    OUT_OF_RANGE = "out_of_range"
    #: A price (trade price, bid/ask, bar OHLC or vwap) is zero or negative.
    NON_POSITIVE_PRICE = "non_positive_price"
    #: A quantity (trade size, bid/ask size, bar volume or trade_count) is negative.
    NEGATIVE_SIZE = "negative_size"
    #: A bar's high is below its low.
    HIGH_BELOW_LOW = "high_below_low"
    #: A bar's high is below max(open, close).
    HIGH_BELOW_OPEN_CLOSE = "high_below_open_close"
    #: A bar's low is above min(open, close).
    LOW_ABOVE_OPEN_CLOSE = "low_above_open_close"
    #: A quote's bid is above its ask (a locked quote, bid == ask, is accepted).
    CROSSED_QUOTE = "crossed_quote"
    #: The event time is later than the validator's clock plus the allowed clock skew.
    FUTURE_TIMESTAMP = "future_timestamp"
    #: The event time is outside the symbol's trading session (or on a non-trading day).
    OUTSIDE_SESSION = "outside_session"
    #: The record's key (symbol, ts, seq) - (symbol, ts, interval) for bars - was already
    #: accepted, earlier in the same batch or in an earlier batch of the same validator.
    DUPLICATE = "duplicate"


QUARANTINE_SCHEMA = pa.schema([
    pa.field("ts", pa.int64(), False, {"doc": "when the record was rejected, UTC ns",
                                       "unit": "ns_utc"}),
    pa.field("event_ts", pa.int64(), True, {"doc": "the record's own ts, if it could be parsed",
                                            "unit": "ns_utc"}),
    pa.field("kind", pa.string(), False, {"doc": "'trade', 'quote' or 'bar'"}),
    pa.field("symbol", pa.string(), True, {"doc": "the record's symbol, if it had one"}),
    pa.field("reason", pa.string(), False, {"doc": "a Reason value"}),
    pa.field("detail", pa.string(), False, {"doc": "human-readable explanation"}),
    pa.field("source", pa.string(), False, {"doc": "file path, topic or feed name"}),
    pa.field("line_no", pa.int64(), True, {"doc": "line in the source file; null for typed rows"}),
    pa.field("payload", pa.binary(), False,
             {"doc": "raw bytes as received; JSON of the row for typed batches"}),
], metadata={"event": "quarantine",
             "doc": "Records refused by ingestion, one row per record, with the reason."})


@dataclass(frozen=True)
class QuarantineRow:
    """One refused record. Refuses rows that could not be told apart or replayed later."""

    ts: int
    event_ts: int | None
    kind: str
    symbol: str | None
    reason: Reason
    detail: str
    source: str
    line_no: int | None
    payload: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.reason, Reason):
            raise TypeError(f"reason must be a Reason, got {self.reason!r}")
        if not self.kind:
            raise ValueError("kind must be non-empty")
        if not isinstance(self.payload, bytes):
            raise TypeError(f"payload must be bytes, got {type(self.payload).__name__}")
        if not isinstance(self.ts, int) or isinstance(self.ts, bool):
            raise TypeError(f"ts must be an int (UTC ns), got {self.ts!r}")


def quarantine_table(rows: Iterable[QuarantineRow]) -> pa.Table:
    """A ``QUARANTINE_SCHEMA`` table of ``rows`` (possibly empty), in the given order."""
    rows = list(rows)
    return quarantine_from_columns(
        ts=[r.ts for r in rows], event_ts=[r.event_ts for r in rows], kind=[r.kind for r in rows],
        symbol=[r.symbol for r in rows], reason=[str(r.reason) for r in rows],
        detail=[r.detail for r in rows], source=[r.source for r in rows],
        line_no=[r.line_no for r in rows], payload=[r.payload for r in rows])


def quarantine_from_columns(**columns: list) -> pa.Table:
    """Column-wise constructor used by the validators (no per-row dataclass on bulk rejects)."""
    names = QUARANTINE_SCHEMA.names
    if sorted(columns) != sorted(names):
        raise ValueError(f"quarantine columns must be exactly {names}, got {sorted(columns)}")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"quarantine columns have different lengths: {sorted(lengths)}")
    arrays = [pa.array(columns[f.name], f.type) for f in QUARANTINE_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=QUARANTINE_SCHEMA)


def empty_quarantine() -> pa.Table:
    """A zero-row quarantine table (the common case; cheaper than building from lists)."""
    return QUARANTINE_SCHEMA.empty_table()


@dataclass
class Counts:
    """Running totals for one stage or source. ``reconciles()`` is the no-silent-drop check.

    ``by_reason`` counts quarantined records per ``Reason`` value, so it sums to
    ``quarantined``; filtered records are not errors and have no reason.
    """

    received: int = 0
    accepted: int = 0
    quarantined: int = 0
    filtered: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("received", "accepted", "quarantined", "filtered"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        known = {r.value for r in Reason}
        for reason, n in self.by_reason.items():
            if reason not in known:
                raise ValueError(f"unknown reason {reason!r}; known: {', '.join(sorted(known))}")
            if not isinstance(n, int) or n < 0:
                raise ValueError(f"by_reason[{reason!r}] must be a non-negative int, got {n!r}")
        self.by_reason = {str(k): v for k, v in self.by_reason.items()}

    def add(self, other: Counts) -> Counts:
        """Add ``other`` into these totals (in place) and return self, for chaining."""
        self.received += other.received
        self.accepted += other.accepted
        self.quarantined += other.quarantined
        self.filtered += other.filtered
        for reason, n in other.by_reason.items():
            self.by_reason[reason] = self.by_reason.get(reason, 0) + n
        return self

    def reconciles(self) -> bool:
        """True when every received record is accounted for exactly once."""
        return (self.received == self.accepted + self.quarantined + self.filtered
                and sum(self.by_reason.values()) == self.quarantined)

    def summary(self) -> str:
        """One line for logs, e.g. ``received 1,000 = accepted 990 + quarantined 7 + filtered 3
        (reconciled); quarantined by reason: duplicate 4, non_finite 3``."""
        out = self.accepted + self.quarantined + self.filtered
        status = "reconciled" if self.reconciles() else (
            f"NOT reconciled: {self.received - out:+,} unaccounted"
            if out != self.received else "NOT reconciled: reasons do not sum to quarantined")
        line = (f"received {self.received:,} = accepted {self.accepted:,} + quarantined "
                f"{self.quarantined:,} + filtered {self.filtered:,} ({status})")
        if self.by_reason:
            ranked = sorted(self.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
            line += "; quarantined by reason: " + ", ".join(f"{r} {n:,}" for r, n in ranked)
        return line
