"""Raw text records -> a typed Arrow table, plus a quarantine row for every record that cannot be typed.

Vendor files arrive as text, and a record that cannot even be represented must still be
accounted for: parsing never raises on bad data and never skips a record; it refuses it, as one
``QUARANTINE_SCHEMA`` row with one ``Reason`` (the first in ``PRIORITY`` order; ties between
fields go to the field that comes first in the schema). Everything that does parse goes on to
``Validator`` like any other typed batch, so the market-data rules live in one place only.
This is per-record Python: files are not the hot path.

Decisions:

* Timestamps: ISO-8601 ``YYYY-MM-DD[T ]HH:MM[:SS[.fffffffff]][Z|+HH[:MM]]`` (naive means UTC,
  or ``default_tz`` if given; an ambiguous or non-existent local time resolves with
  ``fold=0``, i.e. the offset in force before the DST change); a bare ``YYYY-MM-DD`` date is
  midnight UTC of that date (always UTC: daily bars are labelled by their trading date, and
  midnight UTC keeps ``ts // DAY_NS`` equal to that date in every time zone); an integer is
  epoch time whose unit follows its magnitude: ``< 1e11`` seconds, ``< 1e14`` milliseconds,
  ``< 1e17`` microseconds, else nanoseconds. The rule is unambiguous for every instant from
  1973-03-03 to 2262; earlier instants written in ms/us/ns would be misread (none occur in
  market data). Before 1970 or after 2262 (int64 ns) is OUT_OF_RANGE.
* Records: invalid UTF-8 (payload or field text) is BAD_ENCODING; a loader ``defect`` (wrong
  column count...) is MALFORMED; a record of another kind than the one parsed is BAD_TYPE.
* Numbers: plain decimal text only (``12``, ``-1.5``, ``.5``, ``1e-3``; integer fields also
  take ``12.0``); thousands separators, underscores, hex or non-ASCII digits are BAD_TYPE;
  ``nan``/``inf``/``infinity`` (any case, any sign) are NON_FINITE; finite text that overflows
  float64 or int64 is OUT_OF_RANGE.
* Empty or all-blank text counts as missing: a required field -> MISSING_FIELD, an optional one
  -> null. Text fields are stripped, except ``conditions`` (kept as sent; spaces are codes).
* Defaults, because vendor files omit them: a trade or quote without ``seq`` gets
  ``seq = line_no`` (so re-ingesting a file reproduces the same keys and is caught as
  DUPLICATE); a trade without ``trade_id`` gets ``f"{basename(source)}:{line_no}"``; a bar
  without ``vwap`` gets null, and without ``trade_count`` gets 0, which means *not supplied*.
* ``side`` accepts B/S/BUY/SELL in any case (stored 'B'/'S'); ``interval`` must match
  ``<n><s|m|h|d|w|mo>`` (lower case), else BAD_VALUE.
* Fields outside the schema (e.g. a vendor's ``adj_close``) are ignored: the lake stores the
  canonical event, and the raw file stays in the raw zone for anyone who needs the extras.
* ``ingest_ts`` is parsed when present and left null otherwise (the lander stamps it).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

import pyarrow as pa

from ingestion._common import (
    _ARROW,
    _EPOCH_ORDINAL,
    _RANK,
    DAY_NS,
    INT64_MAX,
    INT64_MIN,
    NS,
    _schema_for,
)
from ingestion.quarantine import QuarantineRow, Reason, quarantine_table
from tradelake.schemas import FieldSpec

__all__ = ["RawRecordLike", "RecordError", "parse_float", "parse_int", "parse_records", "parse_timestamp"]


class RawRecordLike(Protocol):
    """What ``parse_records`` needs from a raw record (``ingestion.files.RawRecord`` fits).

    An optional ``defect: str | None`` attribute (the loader's verdict on the line's structure,
    e.g. a wrong column count) is honoured too: a record with a defect is MALFORMED.
    """

    @property
    def kind(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def line_no(self) -> int: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def fields(self) -> Mapping[str, str | None]: ...


class RecordError(ValueError):
    """A field cannot be parsed; carries the quarantine ``reason`` and a ``detail``."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------------------------
# Text -> value parsers (shared by parse_records and usable on their own)
# --------------------------------------------------------------------------------------------

_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INT_RE = re.compile(r"[+-]?\d+(?:\.0*)?", re.ASCII)
_NON_FINITE = frozenset(s + w for s in ("", "+", "-") for w in ("nan", "inf", "infinity"))
_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.ASCII)
_INTERVAL_RE = re.compile(r"([1-9]\d{0,5})(s|m|h|d|w|mo)", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_SIDES = {"B": "B", "S": "S", "BUY": "B", "SELL": "S"}


def _show(text: str, limit: int = 40) -> str:
    """A quoted, escaped, length-capped rendering of hostile text for quarantine details."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_float(name: str, text: str) -> float:
    """Decimal text -> float; NaN/inf spellings -> NON_FINITE, overflow -> OUT_OF_RANGE."""
    t = text.strip()
    if _FLOAT_RE.fullmatch(t):
        value = float(t)
        if math.isinf(value):
            raise RecordError(Reason.OUT_OF_RANGE, f"{name} {_show(t)} overflows float64")
        return value
    if t.lower() in _NON_FINITE:
        raise RecordError(Reason.NON_FINITE, f"{name} is {_show(t)}, not a finite number")
    raise RecordError(Reason.BAD_TYPE, f"{name} {_show(t)} is not a number")


def parse_int(name: str, text: str) -> int:
    """Integer text (``12`` or ``12.0``) -> int within int64; else BAD_TYPE / OUT_OF_RANGE."""
    t = text.strip()
    if not _INT_RE.fullmatch(t):
        if t.lower() in _NON_FINITE:
            raise RecordError(Reason.NON_FINITE, f"{name} is {_show(t)}, not a finite number")
        raise RecordError(Reason.BAD_TYPE, f"{name} {_show(t)} is not an integer")
    digits = t.split(".")[0]
    if len(digits.lstrip("+-")) > 19:  # also keeps int() away from Python's 4300-digit limit
        raise RecordError(Reason.OUT_OF_RANGE, f"{name} {_show(t)} does not fit in int64")
    value = int(digits)
    if not INT64_MIN <= value <= INT64_MAX:
        raise RecordError(Reason.OUT_OF_RANGE, f"{name} {_show(t)} does not fit in int64")
    return value


def _ts_in_range(ns: int, text: str) -> int:
    """Refuse instants int64 UTC nanoseconds cannot hold (before 1970 counts as absurd too)."""
    if ns < 0:
        raise RecordError(Reason.OUT_OF_RANGE, f"ts {_show(text)} is before 1970")
    if ns > INT64_MAX:
        raise RecordError(Reason.OUT_OF_RANGE, f"ts {_show(text)} is after 2262 (int64 ns)")
    return ns


def parse_timestamp(text: str, default_tz: str | None = None) -> int:
    """Timestamp text -> int64 UTC ns. Formats and the epoch-unit rule: see the module doc."""
    t = text.strip()
    if _INT_RE.fullmatch(t) and "." not in t:
        if len(t.lstrip("+-")) > 19:
            raise RecordError(Reason.OUT_OF_RANGE, f"ts {_show(t)} does not fit in int64")
        v = int(t)
        mag = abs(v)
        scale = NS if mag < 10**11 else 10**6 if mag < 10**14 else 10**3 if mag < 10**17 else 1
        return _ts_in_range(v * scale, t)
    m = _ISO_RE.fullmatch(t)
    if not m:
        raise RecordError(Reason.BAD_TYPE, f"ts {_show(t)} is not an ISO-8601 time, date or "
                                           "epoch integer")
    year, month, day, hour, minute, second, frac, offset = m.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        raise RecordError(Reason.BAD_TYPE, f"ts {_show(t)} is not a valid date") from None
    if hour is None:
        return _ts_in_range(days * DAY_NS, t)
    h, mi, s = int(hour), int(minute), int(second or 0)
    if h > 23 or mi > 59 or s > 59:
        raise RecordError(Reason.BAD_TYPE, f"ts {_show(t)} is not a valid time of day")
    if offset in ("Z", "z"):
        off_s = 0
    elif offset:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        oh, om = int(digits[:2]), int(digits[2:] or 0)
        if oh > 23 or om > 59:
            raise RecordError(Reason.BAD_TYPE, f"ts {_show(t)} has an invalid UTC offset")
        off_s = sign * (oh * 3600 + om * 60)
    elif default_tz:
        moment = datetime(int(year), int(month), int(day), h, mi, s, tzinfo=ZoneInfo(default_tz))
        off_s = int(moment.utcoffset().total_seconds())
    else:
        off_s = 0
    ns = days * DAY_NS + (h * 3600 + mi * 60 + s - off_s) * NS + int((frac or "").ljust(9, "0"))
    return _ts_in_range(ns, t)


def _parse_side(name: str, text: str) -> str:
    side = _SIDES.get(text.strip().upper())
    if side is None:
        raise RecordError(Reason.BAD_VALUE, f"{name} {_show(text)} is not B, S, BUY or SELL")
    return side


def _interval_class(text: str) -> tuple[str, int] | None:
    """('intraday', seconds) | ('daily', 86400) | ('long', 0) for a valid interval, else None.

    Only ``1d`` is *daily*; other multi-day or calendar intervals are *long* and are not
    session-checked (their ``ts`` conventions vary by vendor).
    """
    m = _INTERVAL_RE.fullmatch(text)
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2)
    if text == "1d":
        return "daily", 86_400
    seconds = n * _UNIT_SECONDS.get(unit, 0)
    if unit in ("s", "m", "h") and seconds < 86_400:
        return "intraday", seconds
    return "long", 0


def _parse_interval(name: str, text: str) -> str:
    t = text.strip()
    if _interval_class(t) is None:
        raise RecordError(Reason.BAD_VALUE, f"{name} {_show(t)} is not <n><s|m|h|d|w|mo>")
    return t


# --------------------------------------------------------------------------------------------
# parse_records: raw text records -> typed table + quarantine
# --------------------------------------------------------------------------------------------


def _utf8_ok(text: str) -> bool:
    """Arrow strings must be valid UTF-8; Python str may hold lone surrogates (surrogateescape)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _safe_text(text: str) -> str:
    """``text`` made storable in an Arrow string column (undecodable parts backslash-escaped)."""
    return text if _utf8_ok(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _basename(source: str) -> str:
    return source.rstrip("/").rsplit("/", 1)[-1] or source


_Parser = Callable[[str, str], Any]


def _field_parser(f: FieldSpec, default_tz: str | None) -> _Parser:
    """How one schema field's text becomes a value."""
    if f.name == "side":
        return _parse_side
    if f.name == "interval":
        return _parse_interval
    if f.type == "timestamp_ns":
        return lambda _name, text: parse_timestamp(text, default_tz)
    if f.type == "float64":
        return parse_float
    if f.type == "int64":
        return parse_int
    if f.name == "conditions":
        return lambda _name, text: text
    return lambda _name, text: text.strip()


def _defaults(kind: str, source: str, line_no: int | None) -> dict[str, Any]:
    """Values for required fields that vendor files may omit (documented in the module doc)."""
    if kind != "bar" and line_no is None:
        return {}  # nothing to derive seq/trade_id from: they are simply missing
    if kind == "trade":
        return {"seq": line_no, "trade_id": f"{_safe_text(_basename(source))}:{line_no}"}
    if kind == "quote":
        return {"seq": line_no}
    return {"trade_count": 0}


def _blank(text: str | None) -> bool:
    return text is None or (isinstance(text, str) and not text.strip())


def parse_records(kind: str, records: Iterable[RawRecordLike], *, source: str, now_ns: int,
                  default_tz: str | None = None) -> tuple[pa.Table, pa.Table]:
    """Raw text records -> (table conforming to ``arrow_schema`` of ``kind``, quarantine table).

    Each record lands in exactly one of the two tables. A record's ``source`` (file path) is
    used for quarantine rows and derived trade ids; ``source`` here is the fallback when a
    record has none. ``now_ns`` stamps quarantine rows. Decisions: see the module doc.
    """
    schema = _schema_for(kind)
    if default_tz is not None:
        ZoneInfo(default_tz)  # unknown zone: fail loudly now, not once per record
    parsers = [(f, _field_parser(f, default_tz)) for f in schema.fields]
    columns: list[list[Any]] = [[] for _ in schema.fields]
    rejected: list[QuarantineRow] = []
    for record in records:
        row_source = record.source if isinstance(record.source, str) and record.source else source
        outcome = _parse_one(kind, record, row_source, parsers)
        if isinstance(outcome, _Refusal):
            rejected.append(QuarantineRow(
                ts=now_ns, event_ts=outcome.event_ts, kind=kind, symbol=outcome.symbol,
                reason=outcome.reason, detail=outcome.detail, source=_safe_text(row_source),
                line_no=_line_no(record), payload=_payload_bytes(record.payload)))
            continue
        for column, value in zip(columns, outcome, strict=True):
            column.append(value)
    target = _ARROW[kind]
    arrays = [pa.array(col, f.type) for col, f in zip(columns, target, strict=True)]
    return pa.Table.from_arrays(arrays, schema=target), quarantine_table(rejected)


def _line_no(record: RawRecordLike) -> int | None:
    n = record.line_no
    return n if isinstance(n, int) and not isinstance(n, bool) and INT64_MIN <= n <= INT64_MAX else None


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    return _safe_text(str(payload)).encode("utf-8")  # not per the protocol; keep what we can


class _Refusal(NamedTuple):
    """Why one raw record cannot be typed, plus what could still be read for the quarantine."""

    reason: Reason
    detail: str
    event_ts: int | None
    symbol: str | None


def _parse_one(kind: str, record: RawRecordLike, source: str,
               parsers: list[tuple[FieldSpec, _Parser]]) -> list[Any] | _Refusal:
    """One record -> its row values in schema order, or the first refusal in PRIORITY order."""
    fields = record.fields if isinstance(record.fields, Mapping) else {}
    raw_symbol = fields.get("symbol")
    symbol = raw_symbol.strip() if isinstance(raw_symbol, str) and _utf8_ok(raw_symbol) else None
    symbol = symbol or None
    event_ts = None
    if isinstance(fields.get("ts"), str):
        with contextlib.suppress(RecordError):
            event_ts = parsers[0][1]("ts", fields["ts"])  # schemas lead with ts

    def refuse(reason: Reason, detail: str) -> _Refusal:
        return _Refusal(reason, detail, event_ts, symbol)

    payload = record.payload
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            return refuse(Reason.BAD_ENCODING, f"payload is not UTF-8: {exc.reason} at byte "
                                               f"{exc.start}")
    for name, text in fields.items():
        if isinstance(text, str) and not _utf8_ok(text):
            return refuse(Reason.BAD_ENCODING, f"field {_show(str(name))} holds text that is not "
                                               "valid UTF-8")
    defect = getattr(record, "defect", None)
    if defect:
        return refuse(Reason.MALFORMED, _safe_text(str(defect))[:300])
    if record.kind != kind:
        return refuse(Reason.BAD_TYPE, f"record kind {_show(str(record.kind))} where {kind!r} "
                                       "was expected")
    defaults = _defaults(kind, source, _line_no(record))
    for f, _ in parsers:
        if not f.nullable and f.name not in defaults and _blank(fields.get(f.name)):
            return refuse(Reason.MISSING_FIELD, f"required field {f.name!r} is missing or empty")
    values: list[Any] = []
    errors: list[tuple[int, int, RecordError]] = []
    for position, (f, parse) in enumerate(parsers):
        text = fields.get(f.name)
        if _blank(text) and (f.name != "conditions" or not text):
            values.append(defaults.get(f.name))
            continue
        if not isinstance(text, str):
            errors.append((_RANK[Reason.BAD_TYPE], position, RecordError(
                Reason.BAD_TYPE, f"{f.name} holds a {type(text).__name__}, not text")))
            continue
        try:
            values.append(parse(f.name, text))
        except RecordError as exc:
            errors.append((_RANK[exc.reason], position, exc))
    if errors:
        first = min(errors, key=lambda e: (e[0], e[1]))[2]
        return refuse(first.reason, first.detail)
    return values
