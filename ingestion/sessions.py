"""Trading sessions: is an instant, or a bar, inside a market's regular hours?

Exchanges publish their hours in local time, and daylight saving moves local time against UTC
twice a year, so sessions are kept in the market's own time zone and converted per instant
(via zoneinfo, so every DST rule in tzdata is honoured); fixed UTC offsets would misplace an
hour of data around every change. The check runs on the validator's hot path, so it is
vectorised: zoneinfo is consulted once per distinct UTC day in a batch (and cached across
batches), and the per-row work is numpy.

Daily bars are labelled by their trading date, with ``ts`` at midnight UTC of that date (see
``ingestion.parsing``), which keeps ``ts // DAY_NS`` equal to the date in every time zone; so a
``1d`` bar is checked against the trading-day calendar only, with no time-of-day check.

A ``SessionCalendar`` maps symbols to sessions with a ``"*"`` default, so one feed can mix
markets while each distinct session is still evaluated once per batch, not once per symbol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion._common import _EPOCH_ORDINAL, DAY_NS, INT64_MAX, NS

__all__ = ["US_EQUITIES", "Session", "SessionCalendar"]

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
