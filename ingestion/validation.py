"""Record validation for ingestion: nothing bad reaches the lake, nothing is dropped silently.

Two entry points, one per shape of input:

* ``parse_records(kind, records, source=..., now_ns=...)`` turns raw text records (vendor files,
  anything matching ``RawRecordLike``) into a typed Arrow table plus a quarantine table for the
  records that cannot be represented at all. Per-record Python: files are not the hot path.
* ``Validator.validate(kind, batch)`` checks typed Arrow batches (from ``parse_records``, the
  simulator or Kafka) against the market-data rules. This is the hot path: vectorised numpy and
  pyarrow.compute; per-row Python runs only for rejected rows (to write their detail and
  payload).

Every input record ends up **accepted**, **quarantined** (one ``QUARANTINE_SCHEMA`` row with one
``Reason``) or **filtered** (symbol outside the universe; counted only), and ``Counts`` proves the
three add up to what was received.

Priority. A record that breaks several rules is quarantined once, for the first reason in
``PRIORITY`` (ties between fields go to the field that comes first in the schema, except that
a typed batch checks ``symbol`` before anything else)::

    BAD_ENCODING > MALFORMED > MISSING_FIELD > BAD_TYPE > BAD_VALUE > NON_FINITE > OUT_OF_RANGE
    > NON_POSITIVE_PRICE > NEGATIVE_SIZE > HIGH_BELOW_LOW > HIGH_BELOW_OPEN_CLOSE
    > LOW_ABOVE_OPEN_CLOSE > CROSSED_QUOTE > FUTURE_TIMESTAMP > OUTSIDE_SESSION > DUPLICATE

The order runs from "cannot be read" through "cannot be true" to "true but unwanted here", so the
reason names the most basic defect. DUPLICATE is last on purpose: only a record that would
otherwise be accepted claims its key, so a quarantined record never blocks its own corrected
resend. The universe filter runs before the rules (after a missing-symbol check, since
membership needs a symbol): a record for a symbol we do not trade is filtered whatever else is
wrong with it.

Parse-stage decisions (``parse_records``):

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

Validate-stage decisions (``Validator``): see ``Validator`` and ``Session``.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time as _time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.quarantine import (
    Counts,
    QuarantineRow,
    Reason,
    empty_quarantine,
    quarantine_from_columns,
    quarantine_table,
)
from tradelake.schemas import BAR, QUOTE, TRADE, EventSchema, FieldSpec, arrow_schema

__all__ = [
    "DAY_NS", "MAX_PRICE", "MAX_QUANTITY", "PRIORITY", "US_EQUITIES", "RawRecordLike",
    "RecordError", "Session", "SessionCalendar", "ValidationResult", "Validator",
    "parse_records", "parse_timestamp",
]

NS = 1_000_000_000
DAY_NS = 86_400 * NS
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
#: Prices above this are OUT_OF_RANGE (no listed instrument trades near a billion per unit).
MAX_PRICE = 1e9
#: Sizes, volumes and trade counts above this are OUT_OF_RANGE (room for crypto base units).
MAX_QUANTITY = 1e15

PRIORITY: tuple[Reason, ...] = (
    Reason.BAD_ENCODING, Reason.MALFORMED, Reason.MISSING_FIELD, Reason.BAD_TYPE,
    Reason.BAD_VALUE,
    Reason.NON_FINITE, Reason.OUT_OF_RANGE, Reason.NON_POSITIVE_PRICE, Reason.NEGATIVE_SIZE,
    Reason.HIGH_BELOW_LOW, Reason.HIGH_BELOW_OPEN_CLOSE, Reason.LOW_ABOVE_OPEN_CLOSE,
    Reason.CROSSED_QUOTE, Reason.FUTURE_TIMESTAMP, Reason.OUTSIDE_SESSION, Reason.DUPLICATE,
)
_RANK = {reason: i for i, reason in enumerate(PRIORITY)}
assert set(_RANK) == set(Reason), "PRIORITY must list every Reason exactly once"

_SCHEMAS: dict[str, EventSchema] = {"trade": TRADE, "quote": QUOTE, "bar": BAR}
_ARROW: dict[str, pa.Schema] = {kind: arrow_schema(s) for kind, s in _SCHEMAS.items()}


def _schema_for(kind: str) -> EventSchema:
    """The event schema validated for ``kind``; a clear error for anything else."""
    if kind not in _SCHEMAS:
        raise ValueError(f"cannot validate kind {kind!r}; expected one of {', '.join(_SCHEMAS)}")
    return _SCHEMAS[kind]


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
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
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
# Trading sessions
# --------------------------------------------------------------------------------------------

_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0, as datetime.weekday)
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_OFFSET_TABLE_MAX_SPAN = 4096  # days; beyond this, offsets are looked up per distinct day


@lru_cache(maxsize=1 << 16)
def _day_offsets(tz_name: str, day: int) -> tuple[int, int, int]:
    """UTC offsets (ns) in force during UTC day ``day``: (offset at its first second, offset at
    its last second, first ns at which the second one applies; INT64_MAX if no change).

    Found by bisection over seconds, so a DST change at any second is exact; assumes at most
    one change per UTC day (true of every zone in tzdata since 1970).
    """
    tz = ZoneInfo(tz_name)

    def offset(second: int) -> int:
        return int(datetime.fromtimestamp(second, tz).utcoffset().total_seconds())

    lo, hi = day * 86_400, day * 86_400 + 86_399
    first, last = offset(lo), offset(hi)
    if first == last:
        return first * NS, first * NS, INT64_MAX
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offset(mid) == first:
            lo = mid
        else:
            hi = mid
    return first * NS, last * NS, hi * NS


def _utc_offsets(tz_name: str, ts: np.ndarray) -> np.ndarray:
    """Per-row UTC offset (ns) of ``tz_name`` at each instant of ``ts``: Python zoneinfo runs
    once per distinct UTC day present (cached across calls), everything else is numpy."""
    days = ts // DAY_NS
    lo, hi = int(days.min()), int(days.max())
    if hi - lo < _OFFSET_TABLE_MAX_SPAN:
        table_days, index = range(lo, hi + 1), days - lo
    else:
        table_days, index = np.unique(days, return_inverse=True)
    rows = np.array([_day_offsets(tz_name, int(d)) for d in table_days], np.int64).reshape(-1, 3)
    first, last, switch = rows[index, 0], rows[index, 1], rows[index, 2]
    return np.where(ts >= switch, last, first)


@dataclass(frozen=True)
class Session:
    """A market's regular trading hours, in its own time zone (DST-correct via zoneinfo).

    ``open`` is inclusive and ``close`` exclusive (``[open, close)``, so a 1-minute bar opening
    at the close is outside); ``close=time(0)`` means midnight at the end of the day, so a 24h
    market is ``Session("UTC", time(0), time(0), weekdays=frozenset(range(7)))``. Sessions that
    cross midnight are refused (not supported). ``weekdays`` uses Monday = 0; ``holidays`` are
    local dates on which the market is closed. To keep closing-auction prints, set ``close`` a
    few minutes after the official close.
    """

    timezone: str
    open: time
    close: time
    weekdays: frozenset[int] = frozenset(range(5))
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        for name in ("open", "close"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(f"{name} must be a naive datetime.time, got {value!r}")
        weekdays = frozenset(self.weekdays)
        if not weekdays or not all(isinstance(d, int) and 0 <= d <= 6 for d in weekdays):
            raise ValueError(f"weekdays must be a non-empty set of 0..6 (Mon=0), got {weekdays}")
        holidays = frozenset(self.holidays)
        if not all(type(d) is date for d in holidays):
            raise ValueError("holidays must be datetime.date values")
        open_ns = _time_ns(self.open)
        close_ns = DAY_NS if self.close == time(0) else _time_ns(self.close)
        if close_ns <= open_ns:
            raise ValueError(f"session {self.open}-{self.close} crosses midnight or is empty; "
                             "overnight sessions are not supported")
        object.__setattr__(self, "weekdays", weekdays)
        object.__setattr__(self, "holidays", holidays)
        # derived, not fields: excluded from eq/hash/repr
        object.__setattr__(self, "_open_ns", open_ns)
        object.__setattr__(self, "_close_ns", close_ns)
        object.__setattr__(self, "_weekday_ok", np.array([d in weekdays for d in range(7)]))
        object.__setattr__(self, "_holiday_days", np.array(
            sorted(d.toordinal() - _EPOCH_ORDINAL for d in holidays), np.int64))

    def describe(self) -> str:
        """E.g. ``09:30-16:00 America/New_York Mon-Fri``."""
        days = sorted(self.weekdays)
        span = (f"{_DAY_NAMES[days[0]]}-{_DAY_NAMES[days[-1]]}"
                if days == list(range(days[0], days[-1] + 1))
                else ",".join(_DAY_NAMES[d] for d in days))
        return f"{self.open:%H:%M}-{self.close:%H:%M} {self.timezone} {span}"

    def _trading(self, day_numbers: np.ndarray) -> np.ndarray:
        """True where a day number (days since 1970-01-01) is a weekday and not a holiday."""
        ok = self._weekday_ok[(day_numbers + _EPOCH_WEEKDAY) % 7]
        if self._holiday_days.size:
            ok &= ~np.isin(day_numbers, self._holiday_days)
        return ok

    def contains(self, ts_ns: np.ndarray | Sequence[int],
                 duration_ns: int | np.ndarray = 0) -> np.ndarray:
        """Vectorised: is each instant (or each ``[ts, ts + duration)`` interval, for intraday
        bars) inside the session on a trading day of the session's local calendar?"""
        ts = np.asarray(ts_ns, np.int64)
        if ts.size == 0:
            return np.zeros(0, bool)
        local = ts + _utc_offsets(self.timezone, ts)
        local_day = local // DAY_NS
        tod = local - local_day * DAY_NS
        length = np.maximum(np.asarray(duration_ns, np.int64), 1)
        return self._trading(local_day) & (tod < self._close_ns) & (tod + length > self._open_ns)

    def is_trading_day(self, ts_ns: np.ndarray | Sequence[int]) -> np.ndarray:
        """Vectorised check for daily bars: is the UTC date of each ``ts`` (the bar's trading
        date label, see the module doc) a trading day? No time-of-day check."""
        ts = np.asarray(ts_ns, np.int64)
        return self._trading(ts // DAY_NS) if ts.size else np.zeros(0, bool)


def _time_ns(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * NS + t.microsecond * 1000


#: NYSE/Nasdaq regular hours (no holiday list: supply ``holidays`` for the years you ingest).
US_EQUITIES = Session("America/New_York", time(9, 30), time(16, 0))


@dataclass(frozen=True)
class SessionCalendar:
    """Symbol -> ``Session``, with the ``"*"`` entry as the default for every other symbol.

    Pass ``None`` instead of a calendar to a ``Validator`` to skip session checks entirely.
    """

    sessions: Mapping[str, Session]

    def __post_init__(self) -> None:
        sessions = dict(self.sessions)
        if "*" not in sessions:
            raise ValueError('a SessionCalendar needs a "*" default session')
        for symbol, session in sessions.items():
            if not isinstance(symbol, str) or not isinstance(session, Session):
                raise ValueError(f"entries must be str -> Session, got {symbol!r} -> {session!r}")
        object.__setattr__(self, "sessions", MappingProxyType(sessions))
        # derived lookup tables: distinct sessions (default first) and override symbols
        distinct: dict[Session, int] = {sessions["*"]: 0}
        overrides = [(sym, distinct.setdefault(sess, len(distinct)))
                     for sym, sess in sessions.items() if sym != "*"]
        object.__setattr__(self, "_distinct", list(distinct))
        object.__setattr__(self, "_override_symbols", pa.array([o[0] for o in overrides],
                                                               pa.string()))
        object.__setattr__(self, "_override_ids", np.array([o[1] for o in overrides], np.int64))

    def session_for(self, symbol: str) -> Session:
        """The symbol's session, or the default."""
        return self.sessions.get(symbol, self.sessions["*"])

    def contains(self, ts_ns: np.ndarray | Sequence[int], symbols: str | Sequence[str] | pa.Array,
                 duration_ns: int | np.ndarray = 0) -> np.ndarray:
        """Vectorised session membership for rows of one symbol (``symbols`` a str) or of many
        (one symbol per row). Each distinct session is evaluated once over its rows."""
        if isinstance(symbols, str):
            return self.session_for(symbols).contains(ts_ns, duration_ns)
        encoded = pc.dictionary_encode(pa.array(symbols, pa.string()))
        codes = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
        return self._contains_coded(np.asarray(ts_ns, np.int64), codes, encoded.dictionary,
                                    duration_ns)

    def _contains_coded(self, ts: np.ndarray, codes: np.ndarray, dictionary: pa.Array,
                        duration_ns: int | np.ndarray = 0, daily: bool = False) -> np.ndarray:
        """Membership given dictionary codes per row (the validator already has them). The
        symbol -> session mapping is one ``pc.index_in`` over the distinct symbols."""
        check = ((lambda s, t, _d: s.is_trading_day(t)) if daily
                 else (lambda s, t, d: s.contains(t, d)))
        if len(self._distinct) == 1:
            return check(self._distinct[0], ts, duration_ns)
        found = pc.index_in(dictionary, value_set=self._override_symbols)
        index = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        lut = np.append(np.where(index >= 0, self._override_ids[index], 0), 0)  # + null code
        which = lut[codes]
        dur = np.broadcast_to(np.asarray(duration_ns, np.int64), ts.shape)
        out = np.zeros(len(ts), bool)
        for k, session in enumerate(self._distinct):
            rows = which == k
            if rows.any():
                out[rows] = check(session, ts[rows], dur[rows])
        return out


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


# --------------------------------------------------------------------------------------------
# Duplicate detection
# --------------------------------------------------------------------------------------------

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0x165667B19E3779F9)
_M4 = np.uint64(0xBF58476D1CE4E5B9)
_M5 = np.uint64(0x94D049BB133111EB)


def _key_hash(stream: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """64-bit mix of (stream, ts, seq) (splitmix64 finaliser); only used to *find* candidates,
    membership is always confirmed on the exact key."""
    h = ts.astype(np.uint64) * _M1
    h ^= seq.astype(np.uint64) * _M2
    h ^= stream.astype(np.uint64) * _M3
    h ^= h >> np.uint64(30)
    h *= _M4
    h ^= h >> np.uint64(27)
    h *= _M5
    h ^= h >> np.uint64(31)
    return h


class _KeyChunk:
    """Exact keys of accepted rows; sorted by hash lazily, on the first lookup that needs it."""

    __slots__ = ("stream", "ts", "seq", "_hash")

    def __init__(self, stream: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> None:
        self.stream, self.ts, self.seq = stream, ts, seq
        self._hash: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ts)

    @staticmethod
    def merge(chunks: list[_KeyChunk]) -> _KeyChunk:
        if len(chunks) == 1:
            return chunks[0]
        return _KeyChunk(*(np.concatenate([getattr(c, a) for c in chunks])
                           for a in ("stream", "ts", "seq")))

    def contains(self, stream: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """Exact membership of each query key."""
        if self._hash is None:
            h = _key_hash(self.stream, self.ts, self.seq)
            order = np.argsort(h)
            self._hash = h[order]
            self.stream, self.ts, self.seq = self.stream[order], self.ts[order], self.seq[order]
        q = _key_hash(stream, ts, seq)
        pos = np.searchsorted(self._hash, q)
        found = np.zeros(len(q), bool)
        active = np.arange(len(q))
        while active.size:  # walks runs of equal hashes; one pass unless hashes collide
            p = pos[active]
            live = p < len(self._hash)
            active, p = active[live], p[live]
            live = self._hash[p] == q[active]
            active, p = active[live], p[live]
            exact = ((self.ts[p] == ts[active]) & (self.seq[p] == seq[active])
                     & (self.stream[p] == stream[active]))
            found[active[exact]] = True
            active = active[~exact]
            pos[active] += 1
        return found


class _KeyWindow:
    """The most recently accepted keys: always at least the last ``capacity`` of them.

    New keys go to an open list of chunks, sealed into one chunk per ``capacity // 16`` keys;
    whole sealed chunks are evicted oldest first while the rest still hold ``capacity`` keys.
    Memory is about 24 bytes x (capacity + one chunk + the largest batch).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._chunk_size = max(1, capacity // 16)
        self._sealed: deque[_KeyChunk] = deque()
        self._open: list[_KeyChunk] = []
        self._open_size = 0
        self.size = 0

    def add(self, stream: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> None:
        if not len(ts):
            return
        self._open.append(_KeyChunk(stream, ts, seq))
        self._open_size += len(ts)
        self.size += len(ts)
        if self._open_size >= self._chunk_size:
            self._sealed.append(_KeyChunk.merge(self._open))
            self._open, self._open_size = [], 0
        while self._sealed and self.size - len(self._sealed[0]) >= self.capacity:
            self.size -= len(self._sealed.popleft())

    def contains(self, stream: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> np.ndarray:
        if len(self._open) > 1:
            self._open = [_KeyChunk.merge(self._open)]
        found = np.zeros(len(ts), bool)
        for chunk in (*self._sealed, *self._open):
            todo = np.flatnonzero(~found)
            if not todo.size:
                break
            found[todo] = chunk.contains(stream[todo], ts[todo], seq[todo])
        return found


class _Deduplicator:
    """Duplicate detection for one kind; a *stream* is a symbol (trades, quotes) or a
    (symbol, interval) pair (bars, keyed as symbol + U+001F + interval), and a key is
    (stream, ts, seq) (seq = 0 for bars). Streams get dense int ids via ``pc.index_in``
    against the streams seen so far, so no per-row or per-symbol Python runs per batch.

    Per stream it keeps a high-water mark, the largest (ts, seq) accepted so far. A key above
    its stream's mark is new (no lookup). A key at or below the mark is *late*: it is a
    duplicate if the exact key is in the window of recently accepted keys, and otherwise it is
    accepted as a genuine late record. Within a batch, exact equal keys are duplicates of the
    first occurrence. See ``Validator`` for the guarantee this gives.
    """

    def __init__(self, window: int) -> None:
        self._known = pa.array([], pa.string())  # stream keys; position = stream id
        self._hwm_ts = np.full(1024, INT64_MIN, np.int64)
        self._hwm_seq = np.full(1024, INT64_MIN, np.int64)
        self._window = _KeyWindow(window)

    def _stream_ids(self, keys: pa.Array) -> np.ndarray:
        """Persistent id per (distinct) stream key; unseen keys get the next ids."""
        found = pc.index_in(keys, value_set=self._known)
        lut = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        new = lut < 0
        if new.any():
            lut[new] = np.arange(len(self._known), len(self._known) + int(new.sum()))
            self._known = pa.concat_arrays([self._known, keys.filter(pa.array(new))])
        if len(self._known) > len(self._hwm_ts):
            grow = max(len(self._known), 2 * len(self._hwm_ts)) - len(self._hwm_ts)
            self._hwm_ts = np.concatenate([self._hwm_ts, np.full(grow, INT64_MIN, np.int64)])
            self._hwm_seq = np.concatenate([self._hwm_seq, np.full(grow, INT64_MIN, np.int64)])
        return lut

    def check(self, local: np.ndarray, keys: pa.Array, ts: np.ndarray,
              seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classify rows (``local`` indexes ``keys``, the batch's distinct stream keys) and
        remember the accepted ones. Returns (duplicate within the batch, duplicate of an
        earlier batch)."""
        m = len(ts)
        dup_batch, dup_earlier = np.zeros(m, bool), np.zeros(m, bool)
        if not m:
            return dup_batch, dup_earlier
        # Common case first: group rows by stream with an O(n) radix sort (stable keeps row
        # order); if every stream's keys strictly increase in row order there are no repeats.
        small = local.astype(np.uint16) if len(keys) <= 65_535 else local
        order = np.argsort(small, kind="stable")
        ls, t, s = local[order], ts[order], seq[order]
        same = ls[1:] == ls[:-1]
        later = (t[1:] > t[:-1]) | ((t[1:] == t[:-1]) & (s[1:] > s[:-1]))
        if not np.all(later | ~same):
            order = np.lexsort((seq, ts, local))  # stable: first occurrence stays first
            ls, t, s = local[order], ts[order], seq[order]
            same = ls[1:] == ls[:-1]
            repeat = same & (t[1:] == t[:-1]) & (s[1:] == s[:-1])
            dup_batch[order[1:][repeat]] = True
        lut = self._stream_ids(keys)
        stream = lut[local]
        hwm_t, hwm_s = self._hwm_ts[stream], self._hwm_seq[stream]
        late = ~((ts > hwm_t) | ((ts == hwm_t) & (seq > hwm_s))) & ~dup_batch
        if late.any():
            rows = np.flatnonzero(late)
            dup_earlier[rows] = self._window.contains(stream[rows], ts[rows], seq[rows])
        keep = ~(dup_batch | dup_earlier)
        self._window.add(stream[keep], ts[keep], seq[keep])
        # last row of each stream group in sort order = that stream's largest key in the batch
        ends = np.flatnonzero(np.append(ls[1:] != ls[:-1], True))
        g, gt, gs = lut[ls[ends]], t[ends], s[ends]
        old_t, old_s = self._hwm_ts[g], self._hwm_seq[g]
        newer = (gt > old_t) | ((gt == old_t) & (gs > old_s))
        self._hwm_ts[g[newer]] = gt[newer]
        self._hwm_seq[g[newer]] = gs[newer]
        return dup_batch, dup_earlier


# --------------------------------------------------------------------------------------------
# Validator: vectorised rules on typed batches
# --------------------------------------------------------------------------------------------

_FILTERED = 255
_Detail = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class _KindRules:
    """Which fields are prices and quantities for a kind (drives the generic rules)."""

    prices: tuple[str, ...]
    quantities: tuple[str, ...]


_KIND_RULES = {
    "trade": _KindRules(("price",), ("size",)),
    "quote": _KindRules(("bid_price", "ask_price"), ("bid_size", "ask_size")),
    "bar": _KindRules(("open", "high", "low", "close", "vwap"), ("volume", "trade_count")),
}


class _Verdicts:
    """First failing rule per row: 0 = none (so far), k = rules[k - 1], 255 = filtered."""

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, np.uint8)
        self.rules: list[tuple[Reason, _Detail]] = []

    def fail(self, reason: Reason, bad: np.ndarray | None, detail: _Detail) -> None:
        """Record ``reason`` for rows in ``bad`` that have no verdict yet. Rules must arrive
        in ``PRIORITY`` order: that is what makes the first reason the documented one."""
        if self.rules and _RANK[reason] < _RANK[self.rules[-1][0]]:
            raise AssertionError(f"rule {reason} applied after {self.rules[-1][0]}")
        self.rules.append((reason, detail))
        if len(self.rules) >= _FILTERED:
            raise AssertionError("too many rules for a uint8 verdict")
        if bad is not None and bad.any():
            self.code[bad & (self.code == 0)] = len(self.rules)

    def pending(self) -> np.ndarray:
        return self.code == 0


@dataclass
class _Columns:
    """One conformed batch as numpy: symbol codes, numeric values with null masks, intervals."""

    sym_dict: pa.Array             # the batch's distinct symbols
    sym_codes: np.ndarray          # index into sym_dict; len(sym_dict) for a null symbol
    blank_symbol: np.ndarray
    values: dict[str, np.ndarray]  # numeric columns; nulls filled (0 / NaN)
    nulls: dict[str, np.ndarray | None]
    interval: _Intervals | None

    @property
    def ts(self) -> np.ndarray:
        return self.values["ts"]

    @classmethod
    def read(cls, kind: str, t: pa.Table) -> _Columns:
        symbols = _single_chunk(t.column("symbol")).dictionary_encode()
        sym_dict = symbols.dictionary
        sym_codes = symbols.indices.fill_null(len(sym_dict)).to_numpy(zero_copy_only=False)
        trimmed = pc.utf8_length(pc.utf8_trim_whitespace(sym_dict))
        blank = np.append(pc.equal(trimmed, 0).to_numpy(zero_copy_only=False), True)
        numeric = {f.name: _numeric(_single_chunk(t.column(f.name)))
                   for f in _ARROW[kind] if f.type in (pa.int64(), pa.float64())}
        interval = _Intervals(_single_chunk(t.column("interval"))) if kind == "bar" else None
        return cls(sym_dict, sym_codes, blank[sym_codes],
                   {k: vals for k, (vals, _) in numeric.items()},
                   {k: nulls for k, (_, nulls) in numeric.items()}, interval)


def _presence_rules(kind: str, t: pa.Table, cols: _Columns, v: _Verdicts) -> None:
    """MISSING_FIELD for nulls/empties in required columns, then BAD_VALUE vocabularies."""
    for f in _ARROW[kind]:
        if f.nullable or f.name == "symbol":
            continue
        missing = (cols.nulls[f.name] if f.name in cols.values
                   else _empty_or_null(_single_chunk(t.column(f.name))))
        v.fail(Reason.MISSING_FIELD, missing, _missing(f.name))
    if kind == "trade":
        side = _single_chunk(t.column("side"))
        bad = None if side.null_count == len(side) else ~_one_of_bytes(side, b"BS")
        v.fail(Reason.BAD_VALUE, bad, lambda r: f"side {r['side']!r} is not 'B' or 'S'")
    elif cols.interval is not None:
        v.fail(Reason.BAD_VALUE, ~cols.interval.valid,
               lambda r: f"interval {r['interval']!r} is not <n><s|m|h|d|w|mo>")


def _value_rules(kind: str, cols: _Columns, v: _Verdicts) -> None:
    """NON_FINITE .. CROSSED_QUOTE: each number on its own, then the kind's consistency."""
    rules, values = _KIND_RULES[kind], cols.values
    for name in (*rules.prices, *rules.quantities):
        if values[name].dtype == np.float64:
            nulls = cols.nulls[name]
            bad = ~np.isfinite(values[name])
            v.fail(Reason.NON_FINITE, bad if nulls is None else bad & ~nulls, _non_finite(name))
    v.fail(Reason.OUT_OF_RANGE, cols.ts < 0, lambda r: f"ts {r['ts']} is before 1970")
    for name in rules.prices:
        v.fail(Reason.OUT_OF_RANGE, _beyond(values[name], MAX_PRICE), _too_big(name, MAX_PRICE))
    for name in rules.quantities:
        v.fail(Reason.OUT_OF_RANGE, _beyond(values[name], MAX_QUANTITY),
               _too_big(name, MAX_QUANTITY))
    for name in rules.prices:  # NaN (a null vwap) compares false: never flagged here
        v.fail(Reason.NON_POSITIVE_PRICE, values[name] <= 0,
               lambda r, n=name: f"{n} {r[n]!r} is not > 0")
    for name in rules.quantities:
        v.fail(Reason.NEGATIVE_SIZE, values[name] < 0,
               lambda r, n=name: f"{n} {r[n]!r} is negative")
    if kind == "bar":
        o, h, lo, c = values["open"], values["high"], values["low"], values["close"]
        v.fail(Reason.HIGH_BELOW_LOW, h < lo, lambda r: f"high {r['high']!r} < low {r['low']!r}")
        v.fail(Reason.HIGH_BELOW_OPEN_CLOSE, h < np.maximum(o, c),
               lambda r: f"high {r['high']!r} < max(open {r['open']!r}, close {r['close']!r})")
        v.fail(Reason.LOW_ABOVE_OPEN_CLOSE, lo > np.minimum(o, c),
               lambda r: f"low {r['low']!r} > min(open {r['open']!r}, close {r['close']!r})")
    elif kind == "quote":
        v.fail(Reason.CROSSED_QUOTE, values["bid_price"] > values["ask_price"],
               lambda r: f"bid {r['bid_price']!r} > ask {r['ask_price']!r}")


@dataclass(frozen=True)
class ValidationResult:
    """One batch's outcome. Refuses to exist unless its parts reconcile."""

    accepted: pa.Table
    quarantined: pa.Table
    filtered: int
    counts: Counts

    def __post_init__(self) -> None:
        c = self.counts
        if not c.reconciles():
            raise AssertionError(f"counts do not reconcile: {c.summary()}")
        if (self.accepted.num_rows, self.quarantined.num_rows, self.filtered) != (
                c.accepted, c.quarantined, c.filtered):
            raise AssertionError(
                f"tables ({self.accepted.num_rows} accepted, {self.quarantined.num_rows} "
                f"quarantined, {self.filtered} filtered) disagree with {c.summary()}")
        if not self.quarantined.schema.equals(empty_quarantine().schema):
            raise AssertionError("quarantined table does not have QUARANTINE_SCHEMA")


class Validator:
    """Checks typed batches of one feed and keeps running ``counts``.

    Rules per kind (in ``PRIORITY`` order; nulls in non-nullable columns are MISSING_FIELD):

    * trade: ``side`` is null/'B'/'S'; price finite, <= ``MAX_PRICE`` and > 0; size finite,
      <= ``MAX_QUANTITY`` and >= 0 (a zero size is accepted: some venues print zero-size
      trades and they add no volume); ts >= 0, not in the future, inside the session.
    * quote: bid/ask prices finite and > 0, sizes finite and >= 0 (0 = empty level);
      bid <= ask (a locked quote is accepted, a crossed one is CROSSED_QUOTE).
    * bar: interval well-formed; OHLC (and vwap when present) finite and > 0; volume and
      trade_count >= 0; high >= low, high >= max(open, close), low <= min(open, close).
      Session: an intraday bar must overlap the session (``[ts, ts + interval)`` meets
      ``[open, close)``), a ``1d`` bar's date (UTC date of ts) must be a trading day (weekday,
      not a holiday), longer bars are not checked.

    Future means ``ts > now_ns() + max_clock_skew_ns``, with ``now_ns`` read once per batch.
    ``universe=None`` accepts every symbol; otherwise other symbols are *filtered* (counted,
    not quarantined). ``sessions=None`` skips session checks.

    Duplicates: the key is (symbol, ts, seq) for trades and quotes, (symbol, ts, interval) for
    bars. Guarantee: (1) a record is never quarantined as DUPLICATE unless a record with the
    exact same key was accepted before it (earlier in the batch or in an earlier batch of this
    validator) - hashes only locate candidates, the exact key decides; (2) a repeat is always
    caught when the earlier copy is among the last ``dedup_window`` keys of that kind
    accepted by this validator; (3) an older repeat whose key is at or below its stream's
    high-water mark is accepted (a late-but-new record looks the same, and losing a genuine
    record is worse than a duplicate that the lake's keyed writes absorb); a key above the
    mark is new by construction. Memory: ~24 bytes per window key plus 16 bytes and a dict
    entry per stream ever accepted.
    """

    def __init__(self, *, source: str, universe: Iterable[str] | None = None,
                 sessions: SessionCalendar | None = None, max_clock_skew_ns: int = 5 * NS,
                 now_ns: Callable[[], int] = _time.time_ns, dedup_window: int = 1_000_000) -> None:
        if not isinstance(source, str) or not source:
            raise ValueError("source must be a non-empty name (file, topic or feed)")
        if universe is not None:
            universe = frozenset(universe)
            if not all(isinstance(s, str) for s in universe):
                raise ValueError("universe must contain symbol strings")
        if sessions is not None and not isinstance(sessions, SessionCalendar):
            raise ValueError(f"sessions must be a SessionCalendar or None, got {sessions!r}")
        if not isinstance(max_clock_skew_ns, int) or max_clock_skew_ns < 0:
            raise ValueError(f"max_clock_skew_ns must be an int >= 0, got {max_clock_skew_ns!r}")
        if not isinstance(dedup_window, int) or dedup_window < 1:
            raise ValueError(f"dedup_window must be an int >= 1, got {dedup_window!r}")
        self.source = _safe_text(source)
        self.universe = universe
        self.sessions = sessions
        self.max_clock_skew_ns = max_clock_skew_ns
        self.dedup_window = dedup_window
        self._now_ns = now_ns
        self._universe_array = None if universe is None else pa.array(sorted(universe), pa.string())
        self._dedup: dict[str, _Deduplicator] = {}
        self.counts = Counts()

    def validate(self, kind: str, batch: pa.RecordBatch | pa.Table) -> ValidationResult:
        """Split ``batch`` into accepted rows (``arrow_schema`` of ``kind``, input order),
        quarantined rows (``QUARANTINE_SCHEMA``) and a filtered count; add to ``counts``.

        A batch whose columns cannot be read as the schema at all (a required column absent,
        a column that does not cast) has every row quarantined as MISSING_FIELD / BAD_TYPE.
        Columns outside the schema are dropped.
        """
        _schema_for(kind)
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        now = int(self._now_ns())
        if table.num_rows == 0:
            return self._result(0, _ARROW[kind].empty_table(), empty_quarantine(), 0, {})
        conformed, problem = _conform(table, _ARROW[kind])
        if problem is not None:
            return self._refuse_all(kind, table, now, *problem)
        conformed = conformed.combine_chunks()
        verdicts = _Verdicts(conformed.num_rows)
        self._apply_rules(kind, conformed, verdicts, now)
        return self._finish(kind, conformed, verdicts, now)

    # -- rules ---------------------------------------------------------------------------------

    def _apply_rules(self, kind: str, t: pa.Table, v: _Verdicts, now: int) -> None:
        """All rules, in PRIORITY order: presence, then values, then time and identity."""
        cols = _Columns.read(kind, t)
        v.fail(Reason.MISSING_FIELD, cols.blank_symbol, _missing("symbol"))
        if self._universe_array is not None:
            wanted = np.append(pc.is_in(cols.sym_dict, value_set=self._universe_array)
                               .to_numpy(zero_copy_only=False), True)
            v.code[~wanted[cols.sym_codes] & v.pending()] = _FILTERED
        _presence_rules(kind, t, cols, v)
        _value_rules(kind, cols, v)
        limit = now + self.max_clock_skew_ns
        if limit < INT64_MAX:
            v.fail(Reason.FUTURE_TIMESTAMP, cols.ts > limit, lambda r: (
                f"ts {r['ts']} is {(r['ts'] - now) / NS:.3f} s after now {now} (allowed skew "
                f"{self.max_clock_skew_ns / NS:g} s)"))
        if self.sessions is not None:
            self._session_rule(v, cols)
        self._duplicate_rule(kind, v, cols)

    def _session_rule(self, v: _Verdicts, cols: _Columns) -> None:
        """OUTSIDE_SESSION, evaluated only on rows still pending (cheaper, and only sane ts)."""
        calendar = self.sessions
        ts, codes, names, interval = cols.ts, cols.sym_codes, cols.sym_dict, cols.interval
        rows = np.flatnonzero(v.pending())
        outside = np.zeros(len(ts), bool)
        if interval is None:
            outside[rows] = ~calendar._contains_coded(ts[rows], codes[rows], names)
        else:
            for cls, daily in ((0, False), (1, True)):  # intraday, daily; long: unchecked
                sub = rows[interval.cls[rows] == cls]
                if sub.size:
                    outside[sub] = ~calendar._contains_coded(
                        ts[sub], codes[sub], names, interval.seconds[sub] * NS, daily)
        v.fail(Reason.OUTSIDE_SESSION, outside, lambda r: _outside_detail(calendar, r))

    def _duplicate_rule(self, kind: str, v: _Verdicts, cols: _Columns) -> None:
        """DUPLICATE, last: only rows that would otherwise be accepted claim their keys."""
        rows = np.flatnonzero(v.pending())
        dedup = self._dedup.setdefault(kind, _Deduplicator(self.dedup_window))
        sym_codes, sym_dict, interval = cols.sym_codes, cols.sym_dict, cols.interval
        if interval is None:  # trades, quotes: stream = symbol, order = (ts, seq)
            # only symbols with rows still pending get a stream (not filtered or rejected ones)
            present = np.bincount(sym_codes[rows], minlength=len(sym_dict)) > 0
            local = (np.cumsum(present) - 1)[sym_codes[rows]]
            keys = sym_dict.filter(pa.array(present))
            seq = cols.values["seq"][rows]
        else:  # bars: stream = (symbol, interval), order = ts
            width = len(interval.dictionary) + 1
            combined = sym_codes[rows].astype(np.int64) * width + interval.codes[rows]
            uniq, local = np.unique(combined, return_inverse=True)
            names = sym_dict.to_pylist()
            keys = pa.array([f"{names[u // width]}\x1f{interval.dictionary[u % width]}"
                             for u in uniq.tolist()], pa.string())
            seq = np.zeros(len(rows), np.int64)
        dup_batch, dup_earlier = dedup.check(local.astype(np.int64, copy=False), keys,
                                             cols.ts[rows], seq)
        third = "interval" if kind == "bar" else "seq"
        for mask, where in ((dup_batch, "an earlier row of this batch"),
                            (dup_earlier, "a record accepted in an earlier batch")):
            bad = np.zeros(len(cols.ts), bool)
            bad[rows[mask]] = True
            v.fail(Reason.DUPLICATE, bad, lambda r, w=where: (
                f"key (symbol, ts, {third}) = ({r['symbol']!r}, {r['ts']}, {r[third]!r}) "
                f"repeats {w}"))

    # -- results -------------------------------------------------------------------------------

    def _finish(self, kind: str, t: pa.Table, v: _Verdicts, now: int) -> ValidationResult:
        code = v.code
        accepted_mask = code == 0
        filtered = int((code == _FILTERED).sum())
        rejected = np.flatnonzero(~accepted_mask & (code != _FILTERED))
        accepted = t if accepted_mask.all() else t.filter(pa.array(accepted_mask))
        if not rejected.size:
            return self._result(t.num_rows, accepted, empty_quarantine(), filtered, {})
        rows = _rows(t.take(pa.array(rejected)))
        codes = code[rejected].tolist()
        names = [reason.value for reason, _ in v.rules]
        details = [v.rules[c - 1][1](row) for c, row in zip(codes, rows, strict=True)]
        quarantined = self._quarantine(kind, now, rows, [names[c - 1] for c in codes], details)
        by_reason: dict[str, int] = {}
        for c, n in enumerate(np.bincount(codes, minlength=len(v.rules) + 1).tolist()):
            if n and c:
                by_reason[names[c - 1]] = by_reason.get(names[c - 1], 0) + n
        return self._result(t.num_rows, accepted, quarantined, filtered, by_reason)

    def _refuse_all(self, kind: str, table: pa.Table, now: int, reason: Reason,
                    detail: str) -> ValidationResult:
        rows = table.to_pylist()
        quarantined = self._quarantine(kind, now, rows, [reason.value] * len(rows),
                                       [detail] * len(rows))
        return self._result(table.num_rows, _ARROW[kind].empty_table(), quarantined, 0,
                            {reason.value: len(rows)})

    def _quarantine(self, kind: str, now: int, rows: list[dict[str, Any]], reasons: list[str],
                    details: list[str]) -> pa.Table:
        n = len(rows)
        return quarantine_from_columns(
            ts=[now] * n, event_ts=[_int_or_none(r.get("ts")) for r in rows], kind=[kind] * n,
            symbol=[s if isinstance(s := r.get("symbol"), str) else None for r in rows],
            reason=reasons, detail=details, source=[self.source] * n,
            line_no=[None] * n, payload=[_row_json(r) for r in rows])

    def _result(self, received: int, accepted: pa.Table, quarantined: pa.Table, filtered: int,
                by_reason: dict[str, int]) -> ValidationResult:
        """Counts taken from the outputs themselves against ``received``, the input row count:
        ``ValidationResult`` refuses to exist if a row went missing."""
        counts = Counts(received=received, accepted=accepted.num_rows,
                        quarantined=quarantined.num_rows, filtered=filtered, by_reason=by_reason)
        result = ValidationResult(accepted, quarantined, filtered, counts)
        self.counts.add(counts)
        return result


# --------------------------------------------------------------------------------------------
# Column helpers
# --------------------------------------------------------------------------------------------


def _conform(table: pa.Table, target: pa.Schema) -> tuple[pa.Table | None, tuple[Reason, str] | None]:
    """``table`` re-expressed with exactly the ``target`` schema, or the column-level problem."""
    names = table.column_names
    columns = []
    for f in target:
        count = names.count(f.name)
        if count == 0:
            if f.nullable:
                columns.append(pa.nulls(table.num_rows, f.type))
                continue
            return None, (Reason.MISSING_FIELD, f"column {f.name!r} is absent from the batch")
        if count > 1:
            return None, (Reason.BAD_TYPE, f"column {f.name!r} appears {count} times")
        column = table.column(f.name)
        if column.type != f.type:
            try:
                if pa.types.is_timestamp(column.type) and f.metadata.get(b"unit") == b"ns_utc":
                    column = column.cast(pa.timestamp("ns", column.type.tz))
                column = column.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                return None, (Reason.BAD_TYPE, f"column {f.name!r} of type {column.type} cannot "
                                               f"be read as {f.type}: {str(exc)[:200]}")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=target), None


def _single_chunk(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else pa.concat_arrays(column.chunks)


def _nulls(arr: pa.Array) -> np.ndarray:
    if not arr.null_count:
        return np.zeros(len(arr), bool)
    return arr.is_null().to_numpy(zero_copy_only=False)


def _numeric(arr: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """numpy values (nulls filled: 0 for ints, NaN for floats) and the null mask (or None)."""
    if not arr.null_count:
        return arr.to_numpy(zero_copy_only=False), None
    nulls = _nulls(arr)
    fill = 0 if pa.types.is_integer(arr.type) else math.nan
    return arr.fill_null(fill).to_numpy(zero_copy_only=False), nulls


def _offsets(arr: pa.Array) -> np.ndarray:
    """A string array's int32 offsets as numpy (zero-copy), honouring slice offsets."""
    return np.frombuffer(arr.buffers()[1], np.int32, count=len(arr) + 1, offset=arr.offset * 4)


def _empty_or_null(arr: pa.Array) -> np.ndarray:
    """True where a string is null or empty, read straight off the offsets buffer."""
    offsets = _offsets(arr)
    empty = offsets[1:] == offsets[:-1]
    return empty | _nulls(arr) if arr.null_count else empty


def _one_of_bytes(arr: pa.Array, allowed: bytes) -> np.ndarray:
    """True where a string is null or exactly one of the single ASCII characters in
    ``allowed``; reads the buffers directly (several times faster than ``pc.is_in``)."""
    offsets = _offsets(arr)
    data_buf = arr.buffers()[2]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None and data_buf.size else None
    if data is None:
        return _nulls(arr)
    starts = offsets[:-1]
    first = data[np.minimum(starts, len(data) - 1)]
    ok = ((offsets[1:] - starts) == 1) & np.isin(first, np.frombuffer(allowed, np.uint8))
    return ok | _nulls(arr) if arr.null_count else ok


def _beyond(values: np.ndarray, limit: float) -> np.ndarray:
    """|values| > limit, without np.abs (which leaves int64 minimum negative)."""
    return (values > limit) | (values < -limit)


_INTERVAL_CLASSES = ("intraday", "daily", "long")


class _Intervals:
    """Bar intervals, classified once per distinct value (a batch has very few)."""

    def __init__(self, arr: pa.Array) -> None:
        encoded = arr.dictionary_encode()
        self.dictionary: list[str] = encoded.dictionary.to_pylist()
        classes = [_interval_class(s) for s in self.dictionary] + [None]
        self.codes = encoded.indices.fill_null(len(self.dictionary)).to_numpy(
            zero_copy_only=False).astype(np.int64)
        self.valid = np.array([c is not None for c in classes], bool)[self.codes]
        self.cls = np.array([_INTERVAL_CLASSES.index(c[0]) if c else -1 for c in classes],
                            np.int8)[self.codes]
        self.seconds = np.array([c[1] if c else 0 for c in classes], np.int64)[self.codes]


def _missing(name: str) -> _Detail:
    return lambda _r: f"required field {name!r} is null or empty"


def _non_finite(name: str) -> _Detail:
    return lambda r: f"{name} is {r[name]!r}, not a finite number"


def _too_big(name: str, limit: float) -> _Detail:
    return lambda r: f"{name} {r[name]!r} exceeds {limit:g} in magnitude"


def _outside_detail(calendar: SessionCalendar, row: dict[str, Any]) -> str:
    session = calendar.session_for(row["symbol"])
    ts = row["ts"]
    if row.get("interval") == "1d":
        day = date.fromordinal(ts // DAY_NS + _EPOCH_ORDINAL)
        return f"{day} ({_DAY_NAMES[day.weekday()]}) is not a trading day of {session.describe()}"
    local = datetime.fromtimestamp(ts // NS, ZoneInfo(session.timezone))
    what = f"bar [{row['interval']}] opening" if "interval" in row else "ts"
    return (f"{what} {ts} = {local:%Y-%m-%d %H:%M:%S %Z} ({_DAY_NAMES[local.weekday()]}) is "
            f"outside {session.describe()}")


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and (
        INT64_MIN <= value <= INT64_MAX) else None


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def _row_json(row: dict[str, Any]) -> bytes:
    """A typed row's payload: compact JSON; NaN/Infinity kept as Python's json writes them
    (replacing them with null would lose the very value that got the row rejected)."""
    return _JSON.encode(row).encode("utf-8", "backslashreplace")


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()``, several times faster: null-free numeric columns go through
    numpy's ``tolist`` and strings through numpy object arrays (nulls become None)."""
    columns = []
    for column in table.columns:
        arr = _single_chunk(column) if column.num_chunks else pa.array([], column.type)
        if not arr.null_count and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
            columns.append(arr.to_numpy().tolist())
        elif pa.types.is_string(arr.type):
            columns.append(arr.to_numpy(zero_copy_only=False).tolist())
        else:
            columns.append(arr.to_pylist())
    names = table.column_names
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
