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

This module is the front door: it holds ``Validator`` and re-exports the public names of the
modules it is built from, so callers import from ``ingestion.validation`` alone. Each part
lives on its own so it can be read, and reasoned about, separately:

* ``ingestion.parsing``: ``parse_records`` and the parse-stage decisions (timestamp formats,
  epoch units, number syntax, defaults for fields vendor files omit);
* ``ingestion.rules``: the stateless per-kind rules and the first-failing-rule bookkeeping;
* ``ingestion.sessions``: ``Session`` / ``SessionCalendar``, DST-correct trading hours;
* ``ingestion.dedup``: duplicate keys across batches in bounded memory;
* ``ingestion._common`` and ``ingestion._arrow_util``: shared constants and array helpers.

Validate-stage decisions (``Validator``): see ``Validator`` and ``Session``.
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion._arrow_util import _rows
from ingestion._common import (
    _ARROW,
    _EPOCH_ORDINAL,
    DAY_NS,
    INT64_MAX,
    INT64_MIN,
    NS,
    PRIORITY,
    _schema_for,
)
from ingestion.dedup import _Deduplicator
from ingestion.parsing import (
    RawRecordLike,
    RecordError,
    _safe_text,
    parse_records,
    parse_timestamp,
)
from ingestion.parsing import parse_float as parse_float
from ingestion.parsing import parse_int as parse_int
from ingestion.quarantine import Counts, Reason, empty_quarantine, quarantine_from_columns
from ingestion.rules import (
    _FILTERED,
    MAX_PRICE,
    MAX_QUANTITY,
    _Columns,
    _missing,
    _presence_rules,
    _value_rules,
    _Verdicts,
)
from ingestion.sessions import _DAY_NAMES, US_EQUITIES, Session, SessionCalendar

__all__ = [
    "DAY_NS", "MAX_PRICE", "MAX_QUANTITY", "PRIORITY", "US_EQUITIES", "RawRecordLike",
    "RecordError", "Session", "SessionCalendar", "ValidationResult", "Validator",
    "parse_records", "parse_timestamp",
]


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
