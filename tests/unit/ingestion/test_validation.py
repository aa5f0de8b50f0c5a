"""Unit tests for ingestion.validation and ingestion.quarantine.

Times are hand-computed UTC epoch values: 2026-01-01 is day 20454 since 1970-01-01, so
2026-03-06 is day 20518 (1_772_755_200 s) and 2026-03-09 is day 20521 (1_773_014_400 s). US DST
started on Sunday 2026-03-08 at 02:00 EST = 07:00 UTC, so the New York open (09:30) is 14:30 UTC
on Friday 2026-03-06 but 13:30 UTC on Monday 2026-03-09.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.quarantine import QUARANTINE_SCHEMA, Counts, QuarantineRow, Reason, quarantine_table
from ingestion.validation import (
    DAY_NS,
    PRIORITY,
    US_EQUITIES,
    RecordError,
    Session,
    SessionCalendar,
    ValidationResult,
    Validator,
    parse_records,
    parse_timestamp,
)
from tradelake.schemas import BAR, QUOTE, TRADE, arrow_schema

pytestmark = pytest.mark.unit

NS = 1_000_000_000
FRI_OPEN = 1_772_807_400 * NS    # 2026-03-06 14:30 UTC = 09:30 EST (Friday)
MON_OPEN = 1_773_063_000 * NS    # 2026-03-09 13:30 UTC = 09:30 EDT (Monday, after DST)
SAT_MIDDAY = 1_772_895_600 * NS  # 2026-03-07 15:00 UTC = 10:00 EST (Saturday)
T0 = FRI_OPEN + 30 * 60 * NS     # 10:00 New York, a plain in-session instant
NOW = 1_773_100_800 * NS         # 2026-03-10 00:00 UTC: the injected clock
SCHEMAS = {"trade": TRADE, "quote": QUOTE, "bar": BAR}
NY_CALENDAR = SessionCalendar({"*": US_EQUITIES})


# -- helpers ------------------------------------------------------------------------------------

_DEFAULTS = {
    "trade": {"ts": T0, "symbol": "AAPL", "price": 100.0, "size": 10.0, "exchange": None,
              "side": None, "conditions": None, "ingest_ts": None},
    "quote": {"ts": T0, "symbol": "AAPL", "bid_price": 99.9, "bid_size": 5.0, "ask_price": 100.1,
              "ask_size": 7.0, "exchange": None, "ingest_ts": None},
    "bar": {"ts": T0, "symbol": "AAPL", "interval": "1m", "open": 10.0, "high": 11.0, "low": 9.0,
            "close": 10.5, "volume": 1000.0, "vwap": None, "trade_count": 12},
}


def typed(kind: str, *rows: dict) -> pa.Table:
    """A typed table of ``kind``: each row is the kind's defaults overridden by ``rows[i]``;
    trades get trade_id t<i> and seq i+1 (quotes: seq i+1) unless given."""
    full = []
    for i, row in enumerate(rows):
        base = dict(_DEFAULTS[kind])
        if kind == "trade":
            base["trade_id"] = f"t{i}"
        if kind != "bar":
            base["seq"] = i + 1
        base.update(row)
        full.append(base)
    return pa.Table.from_pylist(full, schema=arrow_schema(SCHEMAS[kind]))


def validator(**kwargs) -> Validator:
    kwargs.setdefault("source", "feed-test")
    kwargs.setdefault("now_ns", lambda: NOW)
    return Validator(**kwargs)


def reasons(result: ValidationResult) -> list[str]:
    return result.quarantined.column("reason").to_pylist()


def assert_reconciled(result: ValidationResult, received: int) -> None:
    c = result.counts
    assert c.received == received
    assert c.reconciles(), c.summary()
    assert result.quarantined.num_rows == c.quarantined
    assert result.accepted.num_rows == c.accepted
    assert result.quarantined.schema.equals(QUARANTINE_SCHEMA)


@dataclass(frozen=True)
class Raw:
    """A stand-in for ingestion.files.RawRecord (structural typing: RawRecordLike)."""

    kind: str
    source: str
    line_no: int
    payload: bytes
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RawWithDefect(Raw):
    """Like ingestion.files.RawRecord: the loader's structural verdict on the line."""

    defect: str | None = None


def raw(kind: str, line_no: int = 2, source: str = "/data/vendor/trades.csv",
        payload: bytes | None = None, **fields: str | None) -> Raw:
    text = ",".join("" if v is None else v for v in fields.values())
    data = text.encode("utf-8", "surrogateescape") if payload is None else payload
    return Raw(kind, source, line_no, data, fields)


GOOD_TRADE = {"ts": "2026-03-06T15:00:00Z", "symbol": "AAPL", "price": "100.5", "size": "200",
              "trade_id": "X1", "exchange": "XNAS", "seq": "7", "side": "b", "conditions": "@ I",
              "ingest_ts": "1772809200000000000"}
GOOD_QUOTE = {"ts": "2026-03-06T15:00:00Z", "symbol": "AAPL", "bid_price": "100.4",
              "bid_size": "300", "ask_price": "100.6", "ask_size": "100", "exchange": "",
              "seq": "9"}
GOOD_BAR = {"ts": "2024-01-02", "symbol": "SPY", "interval": "1d", "open": "470.0",
            "high": "473.5", "low": "468.2", "close": "472.65", "volume": "123456",
            "adj_close": "470.1"}


# -- Counts and quarantine rows -------------------------------------------------------------------


def test_counts_reconcile_add_and_summary() -> None:
    c = Counts(received=1_000_000, accepted=999_990, quarantined=7, filtered=3,
               by_reason={"duplicate": 4, Reason.NON_FINITE: 3})
    assert c.reconciles()
    assert c.summary() == ("received 1,000,000 = accepted 999,990 + quarantined 7 + filtered 3 "
                           "(reconciled); quarantined by reason: duplicate 4, non_finite 3")
    total = Counts().add(c).add(Counts(received=2, accepted=1, quarantined=1,
                                       by_reason={"duplicate": 1}))
    assert (total.received, total.accepted, total.quarantined, total.filtered) == (
        1_000_002, 999_991, 8, 3)
    assert total.by_reason == {"duplicate": 5, "non_finite": 3}
    assert total.reconciles()
    short = Counts(received=10, accepted=8)
    assert not short.reconciles()
    assert "NOT reconciled: +2 unaccounted" in short.summary()
    assert not Counts(received=1, quarantined=1).reconciles()  # no reason recorded


def test_counts_and_quarantine_rows_refuse_bad_states() -> None:
    with pytest.raises(ValueError):
        Counts(received=-1)
    with pytest.raises(ValueError):
        Counts(quarantined=1, by_reason={"cosmic_rays": 1})
    with pytest.raises(TypeError):
        QuarantineRow(ts=1, event_ts=None, kind="trade", symbol=None, reason="duplicate",
                      detail="d", source="s", line_no=None, payload=b"")
    with pytest.raises(TypeError):
        QuarantineRow(ts=1, event_ts=None, kind="trade", symbol=None, reason=Reason.DUPLICATE,
                      detail="d", source="s", line_no=None, payload="not bytes")
    row = QuarantineRow(ts=5, event_ts=None, kind="bar", symbol="SPY",
                        reason=Reason.HIGH_BELOW_LOW, detail="high 1.0 < low 2.0", source="f.csv",
                        line_no=3, payload=b"\xff raw")
    table = quarantine_table([row])
    assert table.schema.equals(QUARANTINE_SCHEMA)
    assert table.to_pylist() == [{"ts": 5, "event_ts": None, "kind": "bar", "symbol": "SPY",
                                  "reason": "high_below_low", "detail": "high 1.0 < low 2.0",
                                  "source": "f.csv", "line_no": 3, "payload": b"\xff raw"}]


def test_priority_lists_every_reason_once_in_the_documented_order() -> None:
    assert [r.value for r in PRIORITY] == [
        "bad_encoding", "malformed", "missing_field", "bad_type", "bad_value", "non_finite", "out_of_range",
        "non_positive_price", "negative_size", "high_below_low", "high_below_open_close",
        "low_above_open_close", "crossed_quote", "future_timestamp", "outside_session",
        "duplicate"]
    assert set(PRIORITY) == set(Reason)


# -- Validator: one rule at a time -------------------------------------------------------------


def test_valid_trades_pass_through_unchanged() -> None:
    table = typed("trade", {}, {"ts": T0 + 1, "side": "S", "exchange": "XNYS"})
    result = validator().validate("trade", table)
    assert result.accepted.equals(table)
    assert result.accepted.schema.equals(arrow_schema(TRADE), check_metadata=True)
    assert result.quarantined.num_rows == 0 and result.filtered == 0
    assert_reconciled(result, 2)


def test_trade_non_finite_price_or_size() -> None:
    table = typed("trade", {"price": math.nan}, {"size": math.inf}, {"price": -math.inf}, {})
    result = validator().validate("trade", table)
    assert reasons(result) == ["non_finite"] * 3
    assert result.quarantined.column("detail").to_pylist() == [
        "price is nan, not a finite number", "size is inf, not a finite number",
        "price is -inf, not a finite number"]
    assert result.accepted.column("trade_id").to_pylist() == ["t3"]


def test_trade_non_positive_price() -> None:
    result = validator().validate("trade", typed("trade", {"price": 0.0}, {"price": -1.5}, {}))
    assert reasons(result) == ["non_positive_price", "non_positive_price"]
    assert result.accepted.column("trade_id").to_pylist() == ["t2"]


def test_trade_negative_size_is_refused_and_zero_size_accepted() -> None:
    result = validator().validate("trade", typed("trade", {"size": -1.0}, {"size": 0.0}))
    assert reasons(result) == ["negative_size"]
    assert result.accepted.column("size").to_pylist() == [0.0]


def test_out_of_range_magnitudes() -> None:
    table = typed("trade", {"price": 2e9}, {"size": 1e16}, {"ts": -1}, {"price": -2e9}, {})
    result = validator().validate("trade", table)
    assert reasons(result) == ["out_of_range"] * 4
    assert result.quarantined.column("detail").to_pylist()[2] == "ts -1 is before 1970"
    assert result.accepted.column("trade_id").to_pylist() == ["t4"]


def test_side_must_be_b_or_s_or_null() -> None:
    result = validator().validate("trade", typed("trade", {"side": "X"}, {"side": "BS"},
                                                 {"side": ""}, {"side": "B"}, {"side": None}))
    assert reasons(result) == ["bad_value"] * 3
    assert result.accepted.column("trade_id").to_pylist() == ["t3", "t4"]


def test_nulls_and_empties_in_required_columns_are_missing_fields() -> None:
    table = typed("trade", {"price": None}, {"trade_id": ""}, {"symbol": None}, {"symbol": "  "},
                  {"ts": None}, {})
    result = validator().validate("trade", table)
    assert reasons(result) == ["missing_field"] * 5
    assert result.quarantined.column("detail").to_pylist()[:2] == [
        "required field 'price' is null or empty", "required field 'trade_id' is null or empty"]
    assert result.quarantined.column("event_ts").to_pylist() == [T0, T0, T0, T0, None]
    assert result.accepted.num_rows == 1


def test_quote_rules() -> None:
    table = typed("quote",
                  {"bid_price": 100.2, "ask_price": 100.1},  # crossed
                  {"bid_price": 100.0, "ask_price": 100.0},  # locked: fine
                  {"bid_price": 0.0},
                  {"ask_price": math.nan},
                  {"ask_size": -5.0},
                  {"bid_size": 0.0})                         # empty level: fine
    result = validator().validate("quote", table)
    assert reasons(result) == ["crossed_quote", "non_positive_price", "non_finite",
                               "negative_size"]
    assert result.quarantined.column("detail").to_pylist()[0] == "bid 100.2 > ask 100.1"
    assert result.accepted.column("seq").to_pylist() == [2, 6]


def test_bar_rules_and_details() -> None:
    table = typed("bar",
                  {"open": 10.0, "close": 9.5, "high": 9.0, "low": 8.0},
                  {"open": 10.0, "close": 10.5, "high": 11.0, "low": 10.2},
                  {"open": 10.0, "close": 10.0, "high": 9.0, "low": 11.0},
                  {"volume": -1.0},
                  {"trade_count": -3},
                  {"vwap": 0.0},
                  {"interval": "5min"},
                  {"vwap": 10.2, "volume": 0.0, "trade_count": 0})
    result = validator().validate("bar", table)
    assert reasons(result) == ["high_below_open_close", "low_above_open_close", "high_below_low",
                               "negative_size", "negative_size", "non_positive_price",
                               "bad_value"]
    assert result.quarantined.column("detail").to_pylist()[:3] == [
        "high 9.0 < max(open 10.0, close 9.5)", "low 10.2 > min(open 10.0, close 10.5)",
        "high 9.0 < low 11.0"]
    assert result.accepted.column("vwap").to_pylist() == [10.2]


def test_first_reason_in_priority_order_wins() -> None:
    trades = typed("trade",
                   {"price": math.nan, "size": -1.0, "ts": NOW + 3600 * NS},  # non_finite first
                   {"price": -1.0, "size": -1.0},                             # price before size
                   {"size": -1.0, "ts": NOW + 3600 * NS},                     # size before future
                   {"side": "?", "price": None})                              # missing first
    assert reasons(validator().validate("trade", trades)) == [
        "non_finite", "non_positive_price", "negative_size", "missing_field"]
    bars = typed("bar", {"high": 5.0, "low": 9.0, "open": 7.0, "close": 7.0},  # all three
                 {"high": 5.0, "low": 4.0, "open": 7.0, "close": 3.0, "ts": SAT_MIDDAY})
    assert reasons(validator(sessions=NY_CALENDAR).validate("bar", bars)) == [
        "high_below_low", "high_below_open_close"]


def test_universe_filters_without_quarantine_whatever_else_is_wrong() -> None:
    table = typed("trade", {"symbol": "AAPL"}, {"symbol": "TSLA"}, {"symbol": "TSLA", "price": -1},
                  {"symbol": "MSFT", "price": -1}, {"symbol": None})
    v = validator(universe=frozenset({"AAPL", "MSFT"}))
    result = v.validate("trade", table)
    assert result.filtered == 2
    assert reasons(result) == ["non_positive_price", "missing_field"]
    assert result.accepted.column("symbol").to_pylist() == ["AAPL"]
    assert_reconciled(result, 5)
    assert v.counts.summary() == ("received 5 = accepted 1 + quarantined 2 + filtered 2 "
                                  "(reconciled); quarantined by reason: missing_field 1, "
                                  "non_positive_price 1")


def test_future_timestamps_against_an_injected_clock() -> None:
    clock = [NOW]
    v = Validator(source="feed", now_ns=lambda: clock[0], max_clock_skew_ns=5 * NS)
    table = typed("trade", {"ts": NOW + 5 * NS}, {"ts": NOW + 5 * NS + 1}, {"ts": NOW - 1})
    result = v.validate("trade", table)
    assert reasons(result) == ["future_timestamp"]
    assert result.quarantined.column("detail").to_pylist() == [
        f"ts {NOW + 5 * NS + 1} is 5.000 s after now {NOW} (allowed skew 5 s)"]
    assert result.quarantined.column("ts").to_pylist() == [NOW]  # rejection time = the clock
    clock[0] = NOW + 10 * NS  # the clock moves on: the same record (new seq) is now fine
    later = v.validate("trade", typed("trade", {"ts": NOW + 5 * NS + 1, "seq": 99}))
    assert later.accepted.num_rows == 1


# -- sessions ----------------------------------------------------------------------------------


def test_session_membership_across_the_march_2026_dst_change() -> None:
    minute = 60 * NS
    cases = {
        FRI_OPEN: True,                          # Fri 09:30 EST = 14:30 UTC
        FRI_OPEN - 1: False,                     # 09:29:59.999999999
        FRI_OPEN + 389 * minute: True,           # 15:59 EST
        FRI_OPEN + 390 * minute: False,          # 16:00 EST: close is exclusive
        SAT_MIDDAY: False,                       # Saturday
        MON_OPEN: True,                          # Mon 09:30 EDT = 13:30 UTC
        MON_OPEN - minute: False,                # 09:29 EDT (was in-session time in EST)
        MON_OPEN + 60 * minute: True,            # 14:30 UTC = 10:30 EDT
        MON_OPEN + 390 * minute: False,          # 20:00 UTC = 16:00 EDT
        MON_OPEN + 389 * minute: True,           # 19:59 UTC = 15:59 EDT
    }
    ts = np.array(list(cases), np.int64)
    assert US_EQUITIES.contains(ts).tolist() == list(cases.values())
    assert NY_CALENDAR.contains(ts, "AAPL").tolist() == list(cases.values())
    table = typed("trade", *({"ts": int(t)} for t in ts))
    result = validator(sessions=NY_CALENDAR).validate("trade", table)
    assert result.accepted.column("ts").to_pylist() == [t for t, ok in cases.items() if ok]
    assert set(reasons(result)) == {"outside_session"}
    assert result.quarantined.column("detail").to_pylist()[0] == (
        f"ts {FRI_OPEN - 1} = 2026-03-06 09:29:59 EST (Fri) is outside 09:30-16:00 "
        "America/New_York Mon-Fri")


def test_offsets_switch_at_the_exact_second_inside_a_utc_day() -> None:
    switch = 1_772_953_200 * NS  # 2026-03-08 07:00 UTC: 02:00 EST becomes 03:00 EDT
    early = Session("America/New_York", time(3, 0), time(4, 0), weekdays=frozenset(range(7)))
    ts = np.array([switch - 1, switch, switch + 3599 * NS, switch + 3600 * NS,
                   switch - 3600 * NS], np.int64)
    # 01:59:59.999 EST (out), 03:00 EDT (in), 03:59:59 EDT (in), 04:00 EDT (out), 01:00 EST (out)
    assert early.contains(ts).tolist() == [False, True, True, False, False]
    back = 1_793_512_800 * NS  # 2026-11-01 06:00 UTC: 02:00 EDT becomes 01:00 EST
    one_am = Session("America/New_York", time(1, 0), time(2, 0), weekdays=frozenset(range(7)))
    ts = np.array([back - 3600 * NS, back - 1, back, back + 3600 * NS - 1, back + 3600 * NS],
                  np.int64)
    # 01:00 EDT, 01:59:59 EDT, 01:00 EST, 01:59:59 EST are all in; 02:00 EST is out
    assert one_am.contains(ts).tolist() == [True, True, True, True, False]


def test_per_symbol_sessions_holidays_and_intraday_bar_overlap() -> None:
    crypto = Session("UTC", time(0), time(0), weekdays=frozenset(range(7)))
    holiday = Session("America/New_York", time(9, 30), time(16, 0),
                      holidays=frozenset({date(2026, 3, 6)}))
    calendar = SessionCalendar({"*": US_EQUITIES, "BTC-USD": crypto, "HOL": holiday})
    ts = np.array([SAT_MIDDAY, SAT_MIDDAY, T0, T0], np.int64)
    assert calendar.contains(ts, ["BTC-USD", "AAPL", "HOL", "AAPL"]).tolist() == [
        True, False, False, True]
    # an hourly bar opening 09:00 overlaps the 09:30 open; a 1m bar opening 09:00 does not
    nine = FRI_OPEN - 30 * 60 * NS
    bars = typed("bar", {"ts": nine, "interval": "1h"}, {"ts": nine, "interval": "1m"},
                 {"ts": 1_772_755_200 * NS, "interval": "1d"},    # Fri 2026-03-06 label
                 {"ts": 1_772_841_600 * NS, "interval": "1d"},    # Sat 2026-03-07 label
                 {"ts": 1_772_841_600 * NS, "interval": "1w"})    # long bars: not checked
    result = validator(sessions=calendar).validate("bar", bars)
    assert result.accepted.column("interval").to_pylist() == ["1h", "1d", "1w"]
    assert reasons(result) == ["outside_session", "outside_session"]
    assert result.quarantined.column("detail").to_pylist()[1] == (
        "2026-03-07 (Sat) is not a trading day of 09:30-16:00 America/New_York Mon-Fri")


def test_sessions_refuse_bad_states() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Session("Mars/Olympus", time(9), time(16))
    with pytest.raises(ValueError, match="overnight"):
        Session("UTC", time(18), time(17))
    with pytest.raises(ValueError, match="weekdays"):
        Session("UTC", time(9), time(16), weekdays=frozenset({7}))
    with pytest.raises(ValueError, match='"\\*"'):
        SessionCalendar({"AAPL": US_EQUITIES})
    assert Session("UTC", time(9), time(16), weekdays=[0, 1]).weekdays == frozenset({0, 1})
    assert US_EQUITIES.describe() == "09:30-16:00 America/New_York Mon-Fri"


# -- duplicates --------------------------------------------------------------------------------


def test_duplicates_within_a_batch() -> None:
    table = typed("trade",
                  {"ts": T0, "seq": 1},
                  {"ts": T0, "seq": 2},                    # same ts, new seq: fine
                  {"ts": T0, "seq": 1},                    # repeat of row 0
                  {"ts": T0, "seq": 1, "symbol": "MSFT"},  # other symbol: fine
                  {"ts": T0, "seq": 1})                    # repeat again
    result = validator().validate("trade", table)
    assert reasons(result) == ["duplicate", "duplicate"]
    assert result.quarantined.column("detail").to_pylist()[0] == (
        f"key (symbol, ts, seq) = ('AAPL', {T0}, 1) repeats an earlier row of this batch")
    assert result.accepted.column("trade_id").to_pylist() == ["t0", "t1", "t3"]
    payload = json.loads(result.quarantined.column("payload")[0].as_py())
    assert payload == table.slice(2, 1).to_pylist()[0]  # the whole row, as JSON


def test_duplicates_across_batches_and_late_but_new_records() -> None:
    v = validator()
    first = v.validate("trade", typed("trade", *({"ts": T0 + i * NS, "seq": i} for i in range(10))))
    assert first.accepted.num_rows == 10
    second = v.validate("trade", typed(
        "trade",
        {"ts": T0 + 3 * NS, "seq": 3},      # replay of an accepted record
        {"ts": T0 + 3 * NS + 1, "seq": 3},  # late but new (below the high-water mark)
        {"ts": T0 + 20 * NS, "seq": 20},    # new, above the mark
        {"ts": T0 + 9 * NS, "seq": 9}))     # replay of the mark itself
    assert reasons(second) == ["duplicate", "duplicate"]
    assert second.quarantined.column("detail").to_pylist()[0] == (
        f"key (symbol, ts, seq) = ('AAPL', {T0 + 3 * NS}, 3) repeats a record accepted in an "
        "earlier batch")
    assert second.accepted.column("ts").to_pylist() == [T0 + 3 * NS + 1, T0 + 20 * NS]
    third = v.validate("trade", typed("trade", {"ts": T0 + 3 * NS + 1, "seq": 3}))
    assert reasons(third) == ["duplicate"]  # the late record is remembered too
    assert v.counts.summary() == ("received 15 = accepted 12 + quarantined 3 + filtered 0 "
                                  "(reconciled); quarantined by reason: duplicate 3")


def test_a_quarantined_record_does_not_claim_its_key() -> None:
    v = validator()
    bad = v.validate("trade", typed("trade", {"ts": T0, "seq": 1, "price": -1.0}))
    assert reasons(bad) == ["non_positive_price"]
    fixed = v.validate("trade", typed("trade", {"ts": T0, "seq": 1, "price": 101.0}))
    assert fixed.accepted.num_rows == 1


def test_window_limit_accepts_old_repeats_but_catches_recent_ones() -> None:
    v = validator(dedup_window=4)
    for i in range(8):
        v.validate("trade", typed("trade", {"ts": T0 + i * NS, "seq": i}))
    replay = v.validate("trade", typed("trade", {"ts": T0, "seq": 0},          # older than window
                                       {"ts": T0 + 7 * NS, "seq": 7}))        # recent
    assert reasons(replay) == ["duplicate"]
    assert replay.accepted.column("seq").to_pylist() == [0]


def test_bar_duplicates_key_on_symbol_ts_interval() -> None:
    v = validator()
    bars = typed("bar", {"interval": "1m"}, {"interval": "5m"}, {"interval": "1m"},
                 {"interval": "1m", "symbol": "MSFT"})
    result = v.validate("bar", bars)
    assert reasons(result) == ["duplicate"]
    assert result.quarantined.column("detail").to_pylist() == [
        f"key (symbol, ts, interval) = ('AAPL', {T0}, '1m') repeats an earlier row of this batch"]
    again = v.validate("bar", typed("bar", {"interval": "5m"}, {"interval": "5m", "ts": T0 + 1}))
    assert reasons(again) == ["duplicate"]


def test_trade_and_quote_keys_are_separate() -> None:
    v = validator()
    assert v.validate("trade", typed("trade", {"seq": 1})).accepted.num_rows == 1
    assert v.validate("quote", typed("quote", {"seq": 1})).accepted.num_rows == 1


# -- batch shapes ------------------------------------------------------------------------------


def test_batch_columns_are_conformed_or_the_whole_batch_is_quarantined() -> None:
    base = typed("trade", {}, {"price": 101.0})
    batch = base.drop_columns(["conditions"]).append_column("extra", pa.array([1, 2]))
    result = validator().validate("trade", batch.to_batches()[0])  # a RecordBatch
    assert result.accepted.schema.equals(arrow_schema(TRADE))
    assert result.accepted.column("conditions").to_pylist() == [None, None]

    as_dict = base.set_column(1, "symbol", base.column("symbol").dictionary_encode())
    assert validator().validate("trade", as_dict).accepted.equals(base)

    micros = base.set_column(0, "ts", base.column("ts").cast(pa.int64())
                             .cast(pa.timestamp("ns")).cast(pa.timestamp("us")))
    assert validator().validate("trade", micros).accepted.column("ts").to_pylist() == [T0, T0]

    missing = validator().validate("trade", base.drop_columns(["price"]))
    assert reasons(missing) == ["missing_field", "missing_field"]
    assert missing.quarantined.column("detail")[0].as_py() == (
        "column 'price' is absent from the batch")
    assert_reconciled(missing, 2)

    text_price = base.set_column(2, "price", pa.array(["1.5", "abc"]))
    uncastable = validator().validate("trade", text_price)
    assert reasons(uncastable) == ["bad_type", "bad_type"]
    assert json.loads(uncastable.quarantined.column("payload")[1].as_py())["price"] == "abc"

    empty = validator().validate("trade", base.slice(0, 0))
    assert empty.counts == Counts()
    with pytest.raises(ValueError, match="cannot validate kind"):
        validator().validate("order", base)


def test_validation_result_refuses_counts_that_do_not_add_up() -> None:
    table = typed("trade", {})
    with pytest.raises(AssertionError):
        ValidationResult(table, quarantine_table([]), 0, Counts(received=2, accepted=1))
    with pytest.raises(AssertionError):
        ValidationResult(table, quarantine_table([]), 0, Counts(received=2, accepted=2))


def test_validator_refuses_bad_configuration() -> None:
    with pytest.raises(ValueError):
        Validator(source="")
    with pytest.raises(ValueError):
        Validator(source="f", max_clock_skew_ns=-1)
    with pytest.raises(ValueError):
        Validator(source="f", dedup_window=0)
    with pytest.raises(ValueError):
        Validator(source="f", sessions={"*": US_EQUITIES})


# -- parse_records -----------------------------------------------------------------------------


def test_parse_good_trade_with_defaults_and_normalisation() -> None:
    rec = raw("trade", **GOOD_TRADE)
    bare = raw("trade", line_no=41, ts="1772809200", symbol=" MSFT ", price="10", size="0")
    table, quarantine = parse_records("trade", [rec, bare], source="fallback", now_ns=NOW)
    assert quarantine.num_rows == 0
    assert table.schema.equals(arrow_schema(TRADE))
    assert table.to_pylist() == [
        {"ts": 1_772_809_200 * NS, "symbol": "AAPL", "price": 100.5, "size": 200.0,
         "trade_id": "X1", "exchange": "XNAS", "seq": 7, "side": "B", "conditions": "@ I",
         "ingest_ts": 1_772_809_200 * NS},
        {"ts": 1_772_809_200 * NS, "symbol": "MSFT", "price": 10.0, "size": 0.0,
         "trade_id": "trades.csv:41", "exchange": None, "seq": 41, "side": None,
         "conditions": None, "ingest_ts": None}]


def test_parse_good_quote_and_bar() -> None:
    quotes, q1 = parse_records("quote", [raw("quote", **GOOD_QUOTE)], source="s", now_ns=NOW)
    assert q1.num_rows == 0
    assert quotes.to_pylist() == [{"ts": 1_772_809_200 * NS, "symbol": "AAPL",
                                   "bid_price": 100.4, "bid_size": 300.0, "ask_price": 100.6,
                                   "ask_size": 100.0, "exchange": None, "seq": 9,
                                   "ingest_ts": None}]
    bars, q2 = parse_records("bar", [raw("bar", **GOOD_BAR),
                                     raw("bar", **{**GOOD_BAR, "vwap": "471", "trade_count": "812.0"})],
                             source="s", now_ns=NOW)
    assert q2.num_rows == 0
    assert bars.schema.equals(arrow_schema(BAR))
    day = 1_704_153_600 * NS  # 2024-01-02 00:00 UTC
    assert bars.to_pylist() == [
        {"ts": day, "symbol": "SPY", "interval": "1d", "open": 470.0, "high": 473.5, "low": 468.2,
         "close": 472.65, "volume": 123456.0, "vwap": None, "trade_count": 0},
        {"ts": day, "symbol": "SPY", "interval": "1d", "open": 470.0, "high": 473.5, "low": 468.2,
         "close": 472.65, "volume": 123456.0, "vwap": 471.0, "trade_count": 812}]
    assert "adj_close" not in bars.column_names


@pytest.mark.parametrize(("record", "reason", "detail"), [
    (raw("trade", payload=b"AAPL,\xff\xfe,1", **GOOD_TRADE), "bad_encoding",
     "payload is not UTF-8: invalid start byte at byte 5"),
    (raw("trade", payload=b"AAPL", **{**GOOD_TRADE, "symbol": "AA\udcffPL"}), "bad_encoding",
     "field 'symbol' holds text that is not valid UTF-8"),
    (raw("trade", **{**GOOD_TRADE, "price": "  "}), "missing_field",
     "required field 'price' is missing or empty"),
    (raw("trade", **{k: v for k, v in GOOD_TRADE.items() if k != "size"}), "missing_field",
     "required field 'size' is missing or empty"),
    (raw("trade", **{**GOOD_TRADE, "price": "12a"}), "bad_type", "price '12a' is not a number"),
    (raw("trade", **{**GOOD_TRADE, "price": "1,000"}), "bad_type",
     "price '1,000' is not a number"),
    (raw("trade", **{**GOOD_TRADE, "ts": "yesterday"}), "bad_type",
     "ts 'yesterday' is not an ISO-8601 time, date or epoch integer"),
    (raw("trade", **{**GOOD_TRADE, "ts": "2024-02-30"}), "bad_type",
     "ts '2024-02-30' is not a valid date"),
    (raw("trade", **{**GOOD_TRADE, "seq": "7.5"}), "bad_type", "seq '7.5' is not an integer"),
    (raw("quote", **GOOD_QUOTE), "bad_type", "record kind 'quote' where 'trade' was expected"),
    (raw("trade", **{**GOOD_TRADE, "side": "X"}), "bad_value",
     "side 'X' is not B, S, BUY or SELL"),
    (raw("trade", **{**GOOD_TRADE, "price": "NaN"}), "non_finite",
     "price is 'NaN', not a finite number"),
    (raw("trade", **{**GOOD_TRADE, "size": "-Infinity"}), "non_finite",
     "size is '-Infinity', not a finite number"),
    (raw("trade", **{**GOOD_TRADE, "price": "1e400"}), "out_of_range",
     "price '1e400' overflows float64"),
    (raw("trade", **{**GOOD_TRADE, "seq": "9223372036854775808"}), "out_of_range",
     "seq '9223372036854775808' does not fit in int64"),
    (raw("trade", **{**GOOD_TRADE, "ts": "-5"}), "out_of_range", "ts '-5' is before 1970"),
    (raw("trade", **{**GOOD_TRADE, "ts": "2263-01-01"}), "out_of_range",
     "ts '2263-01-01' is after 2262 (int64 ns)"),
    # priority: a missing field beats a bad number; a bad type beats a non-finite number
    (raw("trade", **{**GOOD_TRADE, "price": "abc", "size": ""}), "missing_field",
     "required field 'size' is missing or empty"),
    (raw("trade", **{**GOOD_TRADE, "price": "nan", "size": "abc"}), "bad_type",
     "size 'abc' is not a number"),
])
def test_parse_failures_are_quarantined_with_reason_and_raw_payload(
        record: Raw, reason: str, detail: str) -> None:
    table, quarantine = parse_records("trade", [record], source="fallback", now_ns=NOW)
    assert table.num_rows == 0
    (row,) = quarantine.to_pylist()
    assert (row["reason"], row["detail"]) == (reason, detail)
    assert row["payload"] == record.payload
    assert (row["ts"], row["kind"], row["source"], row["line_no"]) == (
        NOW, "trade", "/data/vendor/trades.csv", 2)


def test_parse_honours_the_loaders_defect() -> None:
    sound = RawWithDefect("trade", "/f.csv", 3, b"ok", dict(GOOD_TRADE), None)
    long_row = RawWithDefect("trade", "/f.csv", 4, b"a,b,c,d,e,f,g", dict(GOOD_TRADE),
                             "expected 6 columns, got 7")
    bad_bytes = RawWithDefect("trade", "/f.csv", 5, b"\xff", dict(GOOD_TRADE),
                              "not valid UTF-8 (invalid start byte at byte 0)")
    table, quarantine = parse_records("trade", [sound, long_row, bad_bytes], source="s",
                                      now_ns=NOW)
    assert table.num_rows == 1
    assert quarantine.column("reason").to_pylist() == ["malformed", "bad_encoding"]
    assert quarantine.column("detail").to_pylist()[0] == "expected 6 columns, got 7"
    assert quarantine.column("line_no").to_pylist() == [4, 5]


def test_parse_quarantine_keeps_event_ts_and_symbol_when_readable() -> None:
    records = [raw("trade", **{**GOOD_TRADE, "price": "x"}),
               raw("trade", **{**GOOD_TRADE, "ts": "nope", "symbol": ""})]
    _, quarantine = parse_records("trade", records, source="s", now_ns=NOW)
    assert quarantine.column("event_ts").to_pylist() == [1_772_809_200 * NS, None]
    assert quarantine.column("symbol").to_pylist() == ["AAPL", None]


def test_parse_bar_failures() -> None:
    records = [raw("bar", **{**GOOD_BAR, "interval": "5min"}),
               raw("bar", **{k: v for k, v in GOOD_BAR.items() if k != "interval"}),
               raw("bar", **{**GOOD_BAR, "trade_count": "many"})]
    table, quarantine = parse_records("bar", records, source="s", now_ns=NOW)
    assert table.num_rows == 0
    assert quarantine.column("reason").to_pylist() == ["bad_value", "missing_field", "bad_type"]


@pytest.mark.parametrize(("text", "default_tz", "expected"), [
    ("2024-01-02", None, 1_704_153_600 * NS),                      # date -> midnight UTC
    ("2024-01-02", "America/New_York", 1_704_153_600 * NS),        # ... even with a default tz
    ("2024-01-02 09:31:00", None, 1_704_187_860 * NS),             # naive = UTC
    ("2024-01-02T09:31", None, 1_704_187_860 * NS),
    ("2024-01-02T09:31:00Z", None, 1_704_187_860 * NS),
    ("2024-01-02T09:31:00-05:00", None, 1_704_205_860 * NS),       # 14:31 UTC
    ("2024-01-02T09:31:00+0530", None, 1_704_168_060 * NS),        # 04:01 UTC
    ("2024-01-02T09:31:00.123456789Z", None, 1_704_187_860 * NS + 123_456_789),
    ("2024-01-02T09:31:00,5", None, 1_704_187_860 * NS + 500_000_000),
    ("2024-01-02 09:31:00", "America/New_York", 1_704_205_860 * NS),  # EST, -5h
    ("2024-07-02 09:31:00", "America/New_York", 1_719_927_060 * NS),  # EDT, -4h
    ("2024-01-02T09:31:00Z", "America/New_York", 1_704_187_860 * NS),  # explicit offset wins
    ("0", None, 0),
    ("1704187860", None, 1_704_187_860 * NS),                      # < 1e11: seconds
    ("1704187860123", None, 1_704_187_860_123_000_000),            # < 1e14: milliseconds
    ("1704187860123456", None, 1_704_187_860_123_456_000),         # < 1e17: microseconds
    ("1704187860123456789", None, 1_704_187_860_123_456_789),      # else nanoseconds
    ("100000000000", None, 100_000_000_000 * 1_000_000),           # 1e11 is already ms
])
def test_parse_timestamp_formats(text: str, default_tz: str | None, expected: int) -> None:
    assert parse_timestamp(text, default_tz) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("99999999999", "out_of_range"),  # 1e11 - 1 seconds is past 2262
    ("2024-01-02T24:00:00", "bad_type"), ("2024-01-02T09:31:00+25:00", "bad_type"),
    ("2024-1-2", "bad_type"), ("", "bad_type"), ("9" * 5000, "out_of_range"),
])
def test_parse_timestamp_refusals(text: str, reason: str) -> None:
    with pytest.raises(RecordError) as info:
        parse_timestamp(text)
    assert info.value.reason == reason


def test_parse_then_validate_a_daily_bar_file() -> None:
    records = [raw("bar", line_no=i + 2, source="/vendor/spy.csv",
                   **{**GOOD_BAR, "ts": day}) for i, day in enumerate(
                       ["2026-03-05", "2026-03-06", "2026-03-07", "2026-03-06"])]
    table, q1 = parse_records("bar", records, source="s", now_ns=NOW)
    result = validator(sessions=NY_CALENDAR).validate("bar", table)
    assert q1.num_rows == 0
    assert reasons(result) == ["outside_session", "duplicate"]  # Saturday; repeated day
    assert result.accepted.column("ts").to_pylist() == [20_517 * DAY_NS, 20_518 * DAY_NS]


# -- properties --------------------------------------------------------------------------------

_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**25, 10**25).map(str),
    st.sampled_from(["nan", "-inf", "Infinity", "1e400", "-0", "0", "1_000", "0x10", "1,5",
                     "١٢", " 7 ", "1e-400", "9" * 5000, "12.0", "."]),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
)
_TIMES = st.one_of(
    st.integers(T0 - 3 * DAY_NS, NOW + DAY_NS).map(str),
    st.integers(-10**20, 10**20).map(str),
    st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2300, 1, 1)).map(str),
    st.datetimes(min_value=datetime(2026, 3, 5), max_value=datetime(2026, 3, 11),
                 timezones=st.sampled_from([None, ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata")])
                 ).map(lambda d: d.isoformat()),
    st.dates(min_value=date(1960, 1, 1), max_value=date(2300, 1, 1)).map(str),
    st.sampled_from(["2026-03-06T15:00:00Z", "2026-03-06 10:00:00-05:00", "2026-02-30",
                     "2026-03-07", "1772809200", "x" * 10_000]),
)
_TEXT = st.one_of(
    st.text(max_size=12), st.sampled_from(["", " ", "AAPL", "MSFT", "B", "S", "1m", "1d", "5min",
                                           "\udcff", "\x00", "é" * 3000]),
)


def _plausible_text(draw: st.DrawFn, kind: str) -> dict[str, str]:
    """A record that should mostly parse and often validate: hostility is added on top."""
    ts = draw(st.one_of(st.integers(FRI_OPEN - 1800 * NS, FRI_OPEN + 7 * 3600 * NS),
                        st.integers(MON_OPEN, MON_OPEN + 6 * 3600 * NS)))
    ts_text = draw(st.sampled_from([str(ts), str(ts // 1000), str(ts // NS),
                                    datetime.fromtimestamp(ts // NS, ZoneInfo("UTC")).isoformat()]))
    common = {"ts": ts_text, "symbol": draw(st.sampled_from(["AAPL", "MSFT", "ZZZ"]))}
    money = st.floats(1, 500).map(lambda x: f"{x:.2f}")
    if kind == "trade":
        return {**common, "price": draw(money), "size": str(draw(st.integers(0, 900))),
                "trade_id": draw(st.sampled_from(["", "T1", "T2"])),
                "seq": draw(st.sampled_from(["", "1", "2", "3"])),
                "side": draw(st.sampled_from(["", "B", "s", "SELL"])), "exchange": "XNAS"}
    if kind == "quote":
        bid = draw(st.floats(1, 500))
        return {**common, "bid_price": f"{bid:.2f}", "ask_price": f"{bid + draw(st.floats(0, 1)):.2f}",
                "bid_size": "100", "ask_size": str(draw(st.integers(0, 900))),
                "seq": draw(st.sampled_from(["", "1", "2"]))}
    o, c = draw(money), draw(money)
    return {**common, "interval": draw(st.sampled_from(["1m", "5m", "1d"])), "open": o,
            "close": c, "high": str(max(float(o), float(c)) + draw(st.floats(0, 2))),
            "low": str(min(float(o), float(c)) - draw(st.floats(0, 0.5))), "volume": "1000",
            "trade_count": draw(st.sampled_from(["", "3"])), "adj_close": "x"}


@st.composite
def hostile_records(draw: st.DrawFn, kind: str) -> RawWithDefect:
    """Plausible records with 0-3 corruptions each: hostile values, deleted fields, bad bytes,
    the wrong kind, loader defects, odd sources and line numbers."""
    fields: dict[str, str | None] = dict(_plausible_text(draw, kind))
    names = list(SCHEMAS[kind].names) + ["junk"]
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        name = draw(st.sampled_from(names))
        choice = draw(st.integers(0, 4))
        if choice == 0:
            fields.pop(name, None)
        elif name in ("ts", "ingest_ts"):
            fields[name] = draw(st.one_of(_TIMES, _TEXT, st.none()))
        elif choice == 1:
            fields[name] = draw(_TEXT)
        else:
            fields[name] = draw(st.one_of(_NUMBERS, st.none()))
    line = ",".join(v or "" for v in fields.values()).encode("utf-8", "surrogateescape")
    payload = draw(st.one_of(st.just(line), st.just(line), st.just(line), st.binary(max_size=64)))
    line_no = draw(st.one_of(st.integers(1, 40), st.integers(-5, 10**12)))
    source = draw(st.sampled_from(["/data/f.csv", "/data/f.csv", "", "kafka://trades",
                                   "/\udcffbad/name.csv"]))
    record_kind = draw(st.sampled_from([kind] * 9 + ["quote", "order"]))
    defect = draw(st.sampled_from([None] * 9 + ["expected 6 columns, got 7"]))
    return RawWithDefect(record_kind, source, line_no, payload, fields, defect)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["trade", "quote", "bar"]).flatmap(
    lambda k: st.tuples(st.just(k), st.lists(hostile_records(k), max_size=25))), st.booleans())
def test_property_hostile_raw_records_always_reconcile(case: tuple[str, list[Raw]],
                                                       restrict: bool) -> None:
    kind, records = case
    parsed, parse_q = parse_records(kind, records, source="prop", now_ns=NOW)
    assert parsed.num_rows + parse_q.num_rows == len(records)
    assert parsed.schema.equals(arrow_schema(SCHEMAS[kind]))
    assert parse_q.schema.equals(QUARANTINE_SCHEMA)
    v = validator(universe=frozenset({"AAPL", "MSFT"}) if restrict else None,
                  sessions=NY_CALENDAR)
    result = v.validate(kind, parsed)
    again = v.validate(kind, parsed)  # a replay: same counts, now mostly duplicates
    for res in (result, again):
        assert_reconciled(res, parsed.num_rows)
        assert res.accepted.schema.equals(arrow_schema(SCHEMAS[kind]))
    assert again.accepted.num_rows == 0  # everything accepted once is now a duplicate
    assert again.filtered == result.filtered
    assert again.counts.by_reason.get("duplicate", 0) == (
        result.accepted.num_rows + result.counts.by_reason.get("duplicate", 0))
    total = parse_q.num_rows + result.counts.quarantined + result.counts.accepted
    assert total + result.filtered == len(records)
    assert v.counts.reconciles()


def _reference_reason(kind: str, row: dict, seen: set, calendar: SessionCalendar | None,
                      universe: frozenset | None) -> str | None:
    """Slow, obvious per-row model of the Validator (Python datetimes for sessions)."""
    if row["symbol"] is None or not row["symbol"].strip():
        return "missing_field"
    if universe is not None and row["symbol"] not in universe:
        return "filtered"
    spec = SCHEMAS[kind]
    for f in spec.fields:
        if not f.nullable and (row[f.name] is None or row[f.name] == ""):
            return "missing_field"
    prices = {"trade": ["price"], "quote": ["bid_price", "ask_price"],
              "bar": ["open", "high", "low", "close", "vwap"]}[kind]
    sizes = {"trade": ["size"], "quote": ["bid_size", "ask_size"],
             "bar": ["volume", "trade_count"]}[kind]
    if kind == "trade" and row["side"] not in (None, "B", "S"):
        return "bad_value"
    if kind == "bar" and row["interval"] not in ("1m", "5m", "1d"):
        return "bad_value"
    if any(row[n] is not None and not math.isfinite(row[n]) for n in prices + sizes):
        return "non_finite"
    if (row["ts"] < 0 or any(row[n] is not None and abs(row[n]) > 1e9 for n in prices)
            or any(abs(row[n]) > 1e15 for n in sizes)):
        return "out_of_range"
    if any(row[n] is not None and row[n] <= 0 for n in prices):
        return "non_positive_price"
    if any(row[n] < 0 for n in sizes):
        return "negative_size"
    if kind == "bar":
        if row["high"] < row["low"]:
            return "high_below_low"
        if row["high"] < max(row["open"], row["close"]):
            return "high_below_open_close"
        if row["low"] > min(row["open"], row["close"]):
            return "low_above_open_close"
    if kind == "quote" and row["bid_price"] > row["ask_price"]:
        return "crossed_quote"
    if row["ts"] > NOW + 5 * NS:
        return "future_timestamp"
    if calendar is not None:
        s = calendar.session_for(row["symbol"])
        local = datetime.fromtimestamp(row["ts"] // NS, ZoneInfo(s.timezone))
        tod = (local.hour * 3600 + local.minute * 60 + local.second) * NS + row["ts"] % NS
        close = 86_400 * NS if s.close == time(0) else (s.close.hour * 60 + s.close.minute) * 60 * NS
        open_ = (s.open.hour * 60 + s.open.minute) * 60 * NS
        trading = local.weekday() in s.weekdays and local.date() not in s.holidays
        if kind == "bar" and row["interval"] == "1d":
            utc_day = date(1970, 1, 1).toordinal() + row["ts"] // DAY_NS
            inside = date.fromordinal(utc_day).weekday() in s.weekdays
        elif kind == "bar":
            length = {"1m": 60, "5m": 300}[row["interval"]] * NS
            inside = trading and tod < close and tod + length > open_
        else:
            inside = trading and open_ <= tod < close
        if not inside:
            return "outside_session"
    key = (row["symbol"], row["ts"], row["interval"] if kind == "bar" else row["seq"])
    if key in seen:
        return "duplicate"
    seen.add(key)
    return None


_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(-5, 200), st.sampled_from([0.0, -0.0, 1e9, 1e9 + 1, 1e16, 100.0]))
_TS = st.one_of(st.integers(FRI_OPEN - 3600 * NS, FRI_OPEN + 8 * 3600 * NS),
                st.integers(MON_OPEN - 3600 * NS, NOW + 10 * NS),
                st.sampled_from([-1, 0, FRI_OPEN, MON_OPEN, NOW + 5 * NS, 2**63 - 1]),
                st.integers(-(2**63), 2**63 - 1))


@st.composite
def typed_rows(draw: st.DrawFn, kind: str) -> dict:
    """A plausible in-session row with 0-2 fields replaced by hostile values."""
    row = dict(_DEFAULTS[kind])
    row["ts"] = draw(st.one_of(st.sampled_from([T0, T0 + 1, MON_OPEN]),
                               st.integers(FRI_OPEN - 1800 * NS, FRI_OPEN + 7 * 3600 * NS)))
    row["symbol"] = draw(st.sampled_from(["AAPL", "MSFT", "BTC-USD"]))
    if kind == "trade":
        row["trade_id"] = "t"
    if kind != "bar":
        row["seq"] = draw(st.integers(0, 3))
    else:
        row["interval"] = draw(st.sampled_from(["1m", "5m", "1d"]))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        f = draw(st.sampled_from(SCHEMAS[kind].fields))
        if f.type == "float64":
            row[f.name] = draw(st.one_of(_FLOATS, st.none()) if f.nullable else _FLOATS)
        elif f.name in ("ts",):
            row[f.name] = draw(_TS)
        elif f.name in ("seq", "trade_count"):
            row[f.name] = draw(st.one_of(st.integers(-3, 5), st.integers(-(2**63), 2**63 - 1)))
        elif f.name == "symbol":
            row[f.name] = draw(st.sampled_from(["", " ", None, "ZZZ", "AAPL"]))
        elif f.name == "side":
            row[f.name] = draw(st.sampled_from([None, "B", "S", "X", "", "BB"]))
        elif f.name == "interval":
            row[f.name] = draw(st.sampled_from(["1m", "5m", "1d", "", "7x"]))
        elif f.name == "trade_id":
            row[f.name] = draw(st.sampled_from(["", "t2"]))
    return row


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["trade", "quote", "bar"]).flatmap(
    lambda k: st.tuples(st.just(k), st.lists(st.lists(typed_rows(k), max_size=30), min_size=1,
                                            max_size=3))),
       st.booleans(), st.booleans())
def test_property_typed_batches_match_a_per_row_reference(
        case: tuple[str, list[list[dict]]], restrict: bool, with_sessions: bool) -> None:
    kind, batches = case
    crypto = Session("UTC", time(0), time(0), weekdays=frozenset(range(7)))
    calendar = SessionCalendar({"*": US_EQUITIES, "BTC-USD": crypto}) if with_sessions else None
    universe = frozenset({"AAPL", "BTC-USD"}) if restrict else None
    v = validator(universe=universe, sessions=calendar)
    seen: set = set()
    for rows in batches:
        table = pa.Table.from_pylist(rows, schema=arrow_schema(SCHEMAS[kind]))
        result = v.validate(kind, table)
        assert_reconciled(result, len(rows))
        expected = [_reference_reason(kind, row, seen, calendar, universe) for row in rows]
        assert result.filtered == expected.count("filtered")
        assert reasons(result) == [e for e in expected if e not in (None, "filtered")]
        assert result.accepted.to_pylist() == [r for r, e in zip(rows, expected, strict=True)
                                               if e is None]
        for payload in result.quarantined.column("payload").to_pylist():
            json.loads(payload)  # every typed payload is JSON (NaN/Infinity tokens allowed)
    assert v.counts.reconciles()
    assert v.counts.received == sum(len(b) for b in batches)


_ZONES = ["America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(_ZONES), st.integers(0, 23), st.integers(1, 23 * 60),
       st.lists(st.one_of(st.integers(0, 4_102_444_800 * NS),                    # 1970..2100
                          st.integers(1_772_900_000 * NS, 1_773_000_000 * NS)),  # around DST
                min_size=1, max_size=60))
def test_property_session_membership_matches_per_row_zoneinfo(
        zone: str, open_hour: int, minutes: int, stamps: list[int]) -> None:
    """Vectorised membership (per-day offsets, bisection for the switch) == datetime per row,
    including Lord Howe's 30-minute DST and batches spanning decades (the np.unique path)."""
    open_min = open_hour * 60
    close_min = min(open_min + minutes, 24 * 60 - 1)
    session = Session(zone, time(open_hour), time(close_min // 60, close_min % 60),
                      weekdays=frozenset({0, 2, 3, 4, 6}))
    expected = []
    for ts in stamps:
        local = datetime.fromtimestamp(ts // NS, ZoneInfo(zone))
        tod_ns = (local.hour * 3600 + local.minute * 60 + local.second) * NS + ts % NS
        expected.append(local.weekday() in session.weekdays
                        and open_min * 60 * NS <= tod_ns < close_min * 60 * NS)
    assert session.contains(np.array(stamps, np.int64)).tolist() == expected


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 8), st.lists(st.lists(st.tuples(st.sampled_from(["A", "B"]),
                                                      st.integers(0, 12), st.integers(0, 2)),
                                            max_size=12), max_size=8))
def test_property_duplicates_never_false_and_always_caught_within_the_window(
        window: int, batches: list[list[tuple[str, int, int]]]) -> None:
    """(1) a DUPLICATE always repeats an accepted key; (2) a repeat of one of the last
    ``window`` keys accepted before the batch, or of a key accepted earlier in the same batch,
    is always a DUPLICATE; (3) anything else is accepted."""
    v = validator(dedup_window=window)
    history: list[tuple] = []  # accepted keys, in acceptance order
    for batch in batches:
        if not batch:
            continue
        result = v.validate("trade", typed("trade", *({"symbol": s, "ts": T0 + t * NS, "seq": q}
                                                      for s, t, q in batch)))
        assert set(reasons(result)) <= {"duplicate"}
        accepted_ids = set(result.accepted.column("trade_id").to_pylist())
        recent, ever = set(history[-window:]), set(history)
        in_batch: set[tuple] = set()
        for i, (s, t, q) in enumerate(batch):
            key = (s, T0 + t * NS, q)
            accepted = f"t{i}" in accepted_ids
            if key in in_batch or key in recent:
                assert not accepted, f"repeat of a recent key {key} was accepted"
            elif key not in ever:
                assert accepted, f"new key {key} was quarantined"
            # else: older than the window - either outcome is within the guarantee
            if accepted:
                in_batch.add(key)
                history.append(key)
