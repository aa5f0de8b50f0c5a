"""Row keys and cell values of the HBase store (``hbase.store``), without HBase: newest-first
order over the whole int64 range, symbol isolation, exact [start, end) scan bounds, and values
that round-trip bit for bit."""

from __future__ import annotations

import itertools
import math
import struct

import pytest

from hbase.store import _decode, _encode, _ts_range, bar_key, symbol_prefix, tick_key

EDGES = [-(2**63), -(2**63) + 1, -1, 0, 1, 59_999_999_999, 60_000_000_000, 2**63 - 2, 2**63 - 1]


def test_salt_is_a_fixed_function_of_the_symbol():
    # pinned: changing the salt would orphan every stored row
    assert symbol_prefix("AAPL") == b"\x0cAAPL\x00"
    assert symbol_prefix("MSFT") == b"\x0bMSFT\x00"
    assert symbol_prefix("ES") == b"\x01ES\x00"


def test_keys_sort_newest_first_over_the_whole_int64_range():
    keys = [bar_key("AAPL", ts) for ts in EDGES]
    assert sorted(keys) == keys[::-1]
    ticks = [tick_key("AAPL", ts, seq) for ts, seq in itertools.product([-1, 0, 7], [-5, 0, 3])]
    assert sorted(ticks) == ticks[::-1]  # by ts, then seq, both descending


def test_a_symbol_never_shares_keys_with_one_it_prefixes():
    for short, long in [("AB", "ABC"), ("ES", "ES1"), ("A", "A\x01")]:
        assert not tick_key(long, 0, 0).startswith(symbol_prefix(short))
        assert not tick_key(short, 0, 0).startswith(symbol_prefix(long))


def test_a_symbol_with_nul_is_refused():
    with pytest.raises(ValueError, match="NUL"):
        symbol_prefix("A\x00B")


@pytest.mark.parametrize(("start", "end"), [
    *itertools.product(EDGES, EDGES), (-(2**70), 2**70), (5, 5), (6, 5)])
def test_ts_range_selects_exactly_start_inclusive_end_exclusive(start, end):
    prefix = symbol_prefix("AAPL")
    bounds = _ts_range(prefix, start, end)
    inside = [ts for ts in EDGES if start <= ts < end]
    if bounds is None:
        assert inside == []
        return
    row_start, row_stop = bounds
    scanned = [ts for ts in EDGES if row_start <= bar_key("AAPL", ts) < row_stop]
    assert scanned == inside
    assert bar_key("AAPK", 0) < row_start or bar_key("AAPK", 0) >= row_stop
    assert not row_start <= bar_key("AAPL1", 0) < row_stop


@pytest.mark.parametrize("value", [0.1 + 0.2, -0.0, 0.0, math.inf, -math.inf, 5e-324,
                                   1.7976931348623157e308])
def test_doubles_round_trip_bit_for_bit(value):
    raw = _encode("float64", value)
    assert raw == struct.pack(">d", value)  # HBase Bytes.toBytes(double)
    assert struct.pack(">d", _decode("float64", raw)) == raw


def test_nan_round_trips():
    assert math.isnan(_decode("float64", _encode("float64", math.nan)))


def test_ints_strings_and_nulls():
    assert _encode("int64", -2) == b"\xff" * 7 + b"\xfe"  # Bytes.toBytes(long)
    assert _decode("int64", _encode("int64", -(2**63))) == -(2**63)
    assert _decode("timestamp_ns", _encode("timestamp_ns", 2**63 - 1)) == 2**63 - 1
    assert _decode("string", _encode("string", "")) == ""
    assert _decode("string", _encode("string", "ÿ")) == "ÿ"
    for kind in ("float64", "int64", "string", "timestamp_ns"):
        assert _encode(kind, None) == b"\xff"
        assert _decode(kind, _encode(kind, None)) is None
        assert _decode(kind, None) is None  # a cell that is not there
