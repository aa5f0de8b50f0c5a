import pyarrow as pa
import pytest

from ingestion import wire
from ingestion.lake_layout import OffsetRange, covered_until, final_path, landed_ranges, tmp_path
from ingestion.publisher import split_by_symbol
from tradelake.lakefs import LocalLakeFS
from tradelake.schemas import TRADE, arrow_schema

ROWS = [
    {"ts": 3, "symbol": "MSFT", "price": 401.0, "size": 1.0, "trade_id": "m1", "exchange": None,
     "seq": 1, "side": "B", "conditions": None, "ingest_ts": None},
    {"ts": 1, "symbol": "AAPL", "price": 189.0, "size": 5.0, "trade_id": "a1", "exchange": "XNAS",
     "seq": 1, "side": None, "conditions": "@", "ingest_ts": None},
    {"ts": 2, "symbol": "AAPL", "price": 189.1, "size": 7.0, "trade_id": "a2", "exchange": "XNAS",
     "seq": 2, "side": "S", "conditions": None, "ingest_ts": None},
    {"ts": 4, "symbol": "AAPL", "price": 189.2, "size": 9.0, "trade_id": "a3", "exchange": "ARCX",
     "seq": 3, "side": "B", "conditions": None, "ingest_ts": None},
]


def trades():
    return pa.Table.from_pylist(ROWS, schema=arrow_schema(TRADE))


def test_wire_round_trip_keeps_schema_and_values():
    table = trades()
    decoded = wire.decode(wire.encode(table))
    assert decoded.equals(table)
    assert decoded.schema.field("ts").metadata[b"unit"] == b"ns_utc"
    assert dict(wire.headers("trade", 4))["tradelake-kind"] == b"trade"


def test_wire_rejects_garbage_with_a_reason():
    with pytest.raises(wire.WireError, match="not an Arrow IPC stream"):
        wire.decode(b"{\"price\": 1}")


def _same_as_decode(messages, decoded):
    for message, got in zip(messages, decoded, strict=True):
        try:
            want = wire.decode(message)
        except wire.WireError:
            assert isinstance(got, wire.WireError), got
            continue
        assert isinstance(got, pa.Table) and got.equals(want)


def test_decode_all_reads_shared_schemas_once_and_gives_each_message_its_own_result():
    t = trades()
    quotes = pa.table({"ts": pa.array([5], pa.int64()), "bid": [1.5]})
    messages = [wire.encode(t.slice(0, 2)), b"not arrow", wire.encode(quotes), wire.encode(t.slice(2, 1)),
                wire.encode(t.slice(0, 0)), wire.encode(t.slice(3, 1), compression="none"),
                b"\xff\xff\xff\xff" + b"\x00" * 4, wire.encode(t.slice(1, 3), compression="zstd")]
    decoded = wire.decode_all(messages)
    assert len(decoded) == len(messages)
    _same_as_decode(messages, decoded)
    assert decoded[0].column("trade_id").to_pylist() == ["m1", "a1"]  # hand-checked against ROWS
    assert decoded[7].column("trade_id").to_pylist() == ["a1", "a2", "a3"]
    assert decoded[2].column("bid").to_pylist() == [1.5] and decoded[4].num_rows == 0
    assert isinstance(decoded[1], wire.WireError) and "not an Arrow IPC stream" in str(decoded[1])


def test_decode_all_gives_odd_neighbours_exactly_what_decode_gives_them():
    t = trades()
    small = pa.schema([("ts", pa.int64()), ("v", pa.string())])
    dict_schema = pa.schema([("ts", pa.int64()), ("v", pa.dictionary(pa.int32(), pa.string()))])

    def dict_message(values):
        return wire.encode(pa.table({"ts": pa.array(range(len(values)), pa.int64()),
                                     "v": pa.array(values).dictionary_encode()}, schema=dict_schema))

    zero_batches = wire.encode(pa.Table.from_batches([], small))
    two_batches = wire.encode(pa.concat_tables([t.slice(0, 1), t.slice(1, 2)]))  # one message
    two_streams = wire.encode(t.slice(2, 1)) + wire.encode(t.slice(3, 1))  # decode stops at the first
    flipped = bytearray(wire.encode(t.slice(1, 1), compression="none"))
    body_at = len(flipped) - 8 - 16
    assert flipped[body_at] != flipped[body_at] ^ 0x5A
    flipped[body_at] ^= 0x5A  # a byte of the batch body
    truncated = wire.encode(t.slice(2, 1))
    truncated = truncated[: len(truncated) - 24] + truncated[-8:]  # body cut short, end marker kept
    mixes = [
        [two_batches, zero_batches, wire.encode(t.slice(0, 1))],
        [two_batches, two_streams, wire.encode(t.slice(3, 1))],
        [wire.encode(t.slice(0, 1)), bytes(flipped), truncated, wire.encode(t.slice(0, 1))],
        [dict_message(["a", "b"]), dict_message(["c", "c", "d"]), dict_message(["e"])],
    ]
    for messages in mixes:
        decoded = wire.decode_all(messages)
        _same_as_decode(messages, decoded)
    assert isinstance(wire.decode_all([truncated])[0], wire.WireError)
    assert wire.decode_all([two_batches])[0].column("trade_id").to_pylist() == ["m1", "a1", "a2"]
    assert wire.decode_all([two_streams])[0].column("trade_id").to_pylist() == ["a2"]
    assert wire.decode_all([dict_message(["c", "c", "d"])])[0].column("v").to_pylist() == ["c", "c", "d"]


def test_split_by_symbol_keeps_per_symbol_order_and_caps_rows():
    chunks = [(s, t.column("trade_id").to_pylist()) for s, t in split_by_symbol(trades(), 2)]
    assert sorted(chunks) == [("AAPL", ["a1", "a2"]), ("AAPL", ["a3"]), ("MSFT", ["m1"])]


def test_offset_range_names_sort_and_parse():
    rng = OffsetRange(2, 1200, 1399)
    assert rng.file_name == "p0002-o00000000000000001200-o00000000000000001399.parquet"
    assert OffsetRange.parse(rng.file_name) == rng
    assert OffsetRange.parse("part-0000.parquet") is None
    assert final_path("raw", "md.trades", "2026-01-05", rng) == f"raw/md.trades/dt=2026-01-05/{rng.file_name}"
    assert tmp_path("raw", "md.trades", rng, "abc").startswith("raw/md.trades/_tmp/")
    with pytest.raises(ValueError, match="bad offset range"):
        OffsetRange(0, 10, 9)


def test_coverage_is_read_from_final_files_only(tmp_path):
    fs = LocalLakeFS(tmp_path)
    for dt, rng in [("2026-01-05", OffsetRange(0, 0, 99)), ("2026-01-06", OffsetRange(0, 100, 149)),
                    ("2026-01-05", OffsetRange(1, 0, 9))]:
        fs.write_bytes(final_path("raw", "t", dt, rng), b"x")
    fs.write_bytes("raw/t/_tmp/p0000-o00000000000000000150-o00000000000000000199"
                   ".parquet.x.tmp", b"partial")
    landed = landed_ranges(fs, "raw", "t")
    assert covered_until(landed[0]) == 149
    assert covered_until(landed[1]) == 9
    assert covered_until(landed.get(2, [])) is None
