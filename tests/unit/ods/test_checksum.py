"""The ODS checksum's canonical text and hash, worked by hand, and the properties a DR comparison
relies on: order independence, exact doubles, aggregated doubles to ~9.6 digits."""

from __future__ import annotations

import hashlib
import struct

from ods.checksum import TABLES, Checksum, canonical, checksum_rows, differences, postgres_sql, row_hash


def md5_int64(text: str) -> int:
    value = int(hashlib.md5(text.encode()).hexdigest()[:16], 16)
    return value - 2**64 if value >= 2**63 else value


def test_canonical_text_by_hand():
    # 1.5 = 0x3FF8000000000000; 2.0 = 0x4000000000000000 = 2**62; (2**62 + 2**19) >> 20 = 2**42
    text = canonical(("AAPL", 7, 1.5, 2.0, None), ("t", "i", "f", "s", "t"))
    assert text == "AAPL\x1f7\x1f3ff8000000000000\x1f4398046511104\x1f\\N"
    assert row_hash(text) == md5_int64(text)


def test_checksum_is_the_count_and_the_hash_sum_mod_2_64_whatever_the_order():
    kinds = ("t", "i")
    rows = [("A", 1), ("B", 2), ("C", 3)]
    total = sum(md5_int64(canonical(r, kinds)) for r in rows)
    expected = Checksum(3, f"{total % 2**64:016x}")
    assert checksum_rows(rows, kinds) == expected
    assert checksum_rows(reversed(rows), kinds) == expected
    assert checksum_rows(rows[:2], kinds) != expected
    assert checksum_rows([("A", 1), ("B", 2), ("C", 4)], kinds).rows == 3


def test_exact_doubles_see_the_last_bit_aggregated_ones_do_not():
    x = 0.1 + 0.2  # 0.30000000000000004
    bits = struct.unpack(">q", struct.pack(">d", x))[0]
    y = struct.unpack(">d", struct.pack(">q", bits + 1))[0]  # one ulp up
    assert canonical((x,), ("f",)) != canonical((y,), ("f",))
    assert canonical((x,), ("s",)) == canonical((y,), ("s",))
    assert canonical((x,), ("s",)) != canonical((x * (1 + 1e-6),), ("s",))  # a real difference shows
    # a bar's pv summed in two orders (seen in the HBase store): an exact round number and one ulp
    # below it; truncating would split them, rounding does not
    assert canonical((118947.0,), ("s",)) == canonical((118946.99999999997,), ("s",))
    assert canonical((-118947.0,), ("s",)) == canonical((-118946.99999999997,), ("s",))


def test_differences_skip_arrival_dependent_tables_unless_named():
    a = {"trades": Checksum(1, "01"), "alerts": Checksum(1, "02")}
    b = {"trades": Checksum(1, "01"), "alerts": Checksum(2, "03")}
    assert differences(a, b) == []
    assert differences(a, b, ["alerts"]) == ["alerts"]


def test_postgres_sql_hashes_the_same_text():
    sql = postgres_sql(TABLES["last_trades"])
    assert sql.startswith("SELECT count(*), coalesce(sum(h), 0) FROM (SELECT ('x' || substr(md5(")
    assert "encode(float8send(\"price\"), 'hex')" in sql and "\"symbol\"" in sql
    assert 'FROM "last_trades"' in sql
