"""order_routing/fix_common.py and the FIX route's TransactTime cache: the hot-path parsers and
formatters, against values worked out with the standard library's datetime."""

from __future__ import annotations

import datetime

import pytest

from order_routing.fix_common import SOH, SentMessages, fields, parse_timestamp, utc_timestamp
from order_routing.fix_route import _transact_ns

UTC = datetime.UTC


def ns_of(*args: int, ns: int = 0) -> int:
    """UTC ns of a wall-clock time: whole seconds from datetime, plus ``ns`` nanoseconds."""
    return int(datetime.datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000_000 + ns


@pytest.mark.parametrize(("text", "expected"), [
    ("20261123-05:56:00", ns_of(2026, 11, 23, 5, 56, 0)),
    ("20261123-05:56:00.013", ns_of(2026, 11, 23, 5, 56, 0, ns=13_000_000)),
    ("20261123-05:56:00.013250", ns_of(2026, 11, 23, 5, 56, 0, ns=13_250_000)),
    ("20261123-05:56:00.013250777", ns_of(2026, 11, 23, 5, 56, 0, ns=13_250_777)),
    ("20240229-23:59:59.999", ns_of(2024, 2, 29, 23, 59, 59, ns=999_000_000)),  # a leap day
    ("19700101-00:00:00", 0),
])
def test_a_utc_timestamp_is_read_to_the_nanosecond_as_an_int(text: str, expected: int) -> None:
    for parse in (parse_timestamp, _transact_ns):
        value = parse(text)
        assert value == expected and type(value) is int, parse.__name__


def test_the_transact_time_cache_never_serves_another_second() -> None:
    texts = ["20261123-05:56:00.001", "20261123-05:56:00.999", "20261123-05:56:01.000",
             "20261124-05:56:01.000", "20261123-05:56:00.500"]
    assert [_transact_ns(t) for t in texts] == [
        ns_of(2026, 11, 23, 5, 56, 0, ns=1_000_000), ns_of(2026, 11, 23, 5, 56, 0, ns=999_000_000),
        ns_of(2026, 11, 23, 5, 56, 1), ns_of(2026, 11, 24, 5, 56, 1),
        ns_of(2026, 11, 23, 5, 56, 0, ns=500_000_000)]


def test_a_bad_timestamp_is_an_error_not_a_time() -> None:
    for bad in ("2026112305:56:00", "20261123-05:5x:00", "20261123-05:56:00.01a"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)
        with pytest.raises(ValueError):
            _transact_ns(bad)


def test_utc_timestamp_writes_milliseconds_and_moves_with_the_second() -> None:
    first = ns_of(2026, 11, 23, 5, 56, 0, ns=13_999_999)
    assert utc_timestamp(first) == "20261123-05:56:00.013"
    assert utc_timestamp(first + 1_000_000_000) == "20261123-05:56:01.013"
    assert utc_timestamp(ns_of(2026, 12, 31, 23, 59, 59, ns=7_000_000)) == "20261231-23:59:59.007"


def test_fields_keeps_an_equals_sign_inside_a_value() -> None:
    raw = f"8=FIX.4.4{SOH}35=8{SOH}58=limit=10.5 refused{SOH}10=000{SOH}"
    assert fields(raw) == {"8": "FIX.4.4", "35": "8", "58": "limit=10.5 refused", "10": "000"}


def test_sent_messages_reads_the_last_entry_of_a_number_skips_torn_ones_and_follows_the_file(tmp_path):
    # QuickFIX's FileStore: '<seq>,<offset>,<size> ' entries in .header, the messages in .body; a
    # message refused by a full disk can leave an entry whose number is stored again later
    def msg(seq: int, text: str) -> bytes:
        return f"8=FIX.4.4{SOH}34={seq}{SOH}58={text}{SOH}".encode()

    first, second, seven = msg(5, "first"), msg(5, "second"), msg(7, "seven")
    body = first + b"junk" + second + seven
    (tmp_path / "S.body").write_bytes(body)
    header = tmp_path / "S.header"
    header.write_text(f"5,0,{len(first)} 5,{len(first) + 4},{len(second)} 7,{len(body) - len(seven)},")
    sent = SentMessages(tmp_path / "S")
    assert sent.get(5) == second.decode()
    assert sent.get(7) is None  # its entry is not complete yet
    with header.open("a") as f:  # QuickFIX finishes it, then stores 8 with a torn entry for 9
        f.write(f"{len(seven)} 8,0,{len(first)} 9,4")
    assert sent.get(7) == seven.decode()
    assert sent.get(8) is None  # the entry points at message 5: not message 8
    assert sent.get(9) is None and sent.get(6) is None
    header.unlink()  # the store reset (a new week): a new file, indexed from its start
    header.write_text(f"1,{len(first) + 4},{len(second)} ")
    assert sent.get(5) is None and sent.get(1) is None  # the bytes there are message 5's
    # reset again, the new header on the same inode (ext4 reuses them) and longer than what was
    # indexed before the next lookup: a miss reads it all again
    one = msg(1, "new week")
    (tmp_path / "S.body").write_bytes(one + b"x" * 200)
    header.write_text(f"1,0,{len(one)} " + "".join(f"{n},{len(one)},1 " for n in range(2, 20)))
    assert sent.get(1) == one.decode()
    assert SentMessages(tmp_path / "missing").get(5) is None
