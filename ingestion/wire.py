"""The Kafka wire encoding of market data: one Arrow IPC stream per message.

A message carries many ticks of ONE symbol (the message key is the symbol, so a symbol's ticks
stay ordered in one partition), like a kdb+ tickerplant publishing lists of records:

- key:     the symbol, UTF-8
- value:   an Arrow IPC *stream* (schema message, one record batch, end-of-stream marker),
           columns exactly ``tradelake.schemas.arrow_schema(<kind>)``: timestamps are int64 UTC
           nanoseconds. Body buffers use the IPC format's own LZ4_FRAME compression by default
           (``ingest.wire_compression``: lz4, zstd or none), which the Arrow C++/Python, Java,
           Rust and Go readers decode transparently; simulator ticks shrink from ~75 to ~34
           bytes each.
- headers: ``content-type: application/vnd.apache.arrow.stream``,
           ``tradelake-kind: trade|quote|bar|quarantine``, ``tradelake-schema-version: 1``,
           ``tradelake-count: <rows>``

Decode with any Kafka client and any Arrow library, e.g. in Python
``pyarrow.ipc.open_stream(msg.value).read_all()``; the same bytes are what the lake lander reads.
"""

from __future__ import annotations

import pyarrow as pa

CONTENT_TYPE = b"application/vnd.apache.arrow.stream"
SCHEMA_VERSION = b"1"


class WireError(ValueError):
    """A Kafka message is not a tradelake Arrow message; the message says why."""


_OPTIONS: dict[str | None, pa.ipc.IpcWriteOptions] = {}


def encode(batch: pa.RecordBatch | pa.Table, compression: str | None = "lz4") -> bytes:
    if compression not in _OPTIONS:
        _OPTIONS[compression] = pa.ipc.IpcWriteOptions(
            compression=None if compression in (None, "none") else compression)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema, options=_OPTIONS[compression]) as writer:
        if isinstance(batch, pa.Table):
            writer.write_table(batch)
        else:
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def headers(kind: str, rows: int) -> list[tuple[str, bytes]]:
    return [
        ("content-type", CONTENT_TYPE),
        ("tradelake-kind", kind.encode()),
        ("tradelake-schema-version", SCHEMA_VERSION),
        ("tradelake-count", str(rows).encode()),
    ]


def decode(value: bytes | memoryview) -> pa.Table:
    try:
        return pa.ipc.open_stream(pa.py_buffer(value)).read_all()
    except (pa.ArrowException, OSError) as exc:  # any Arrow error: a bad message, never a crash
        raise WireError(f"not an Arrow IPC stream ({len(value)} bytes): {exc}") from exc


_CONTINUATION = b"\xff\xff\xff\xff"
_END_OF_STREAM = _CONTINUATION + b"\x00\x00\x00\x00"


def _schema_message(value: bytes) -> bytes | None:
    """The stream's leading schema message (continuation marker, length, flatbuffer), or None
    if ``value`` does not start with one and end with the end-of-stream marker."""
    if len(value) < 16 or value[:4] != _CONTINUATION or value[-8:] != _END_OF_STREAM:
        return None
    end = 8 + int.from_bytes(value[4:8], "little")
    return value[:end] if end < len(value) - 8 else None


def decode_all(values: list[bytes]) -> list[pa.Table | WireError]:
    """``decode`` of each value, as a Table or the WireError it raises, in order.

    Messages of one feed repeat the same schema message, and parsing it costs more than a small
    message's rows (~35 us of a 10-tick message's decode), so it is parsed once per distinct
    schema message. Each message is then read on its own framing: after that schema exactly one
    record batch, ending at the end-of-stream marker, read against the parsed schema. Anything
    else (dictionaries, several batches, a bad body) is decoded by ``decode``, with its own error.
    """
    out: list[pa.Table | WireError] = []
    schemas: dict[bytes, pa.Schema | None] = {}
    for value in values:
        head = _schema_message(value)
        schema = None
        if head is not None:
            if head not in schemas:
                schemas[head] = _plain_schema(head)
            schema = schemas[head]
        if schema is None:
            out.append(_decode_one(value))
            continue
        try:
            reader = pa.BufferReader(pa.py_buffer(value))
            reader.seek(len(head))
            message = pa.ipc.read_message(reader)
            if message.type != "record batch" or reader.tell() != len(value) - len(_END_OF_STREAM):
                raise WireError("not one record batch")
            out.append(pa.Table.from_batches([pa.ipc.read_record_batch(message, schema)]))
        except (pa.ArrowException, OSError, WireError):
            out.append(_decode_one(value))
    return out


def _plain_schema(schema_message: bytes) -> pa.Schema | None:
    """The schema of a schema message, or None when it cannot be read or has dictionary fields
    (their batches need dictionary messages: those streams go through ``decode``)."""
    try:
        schema = pa.ipc.read_schema(pa.py_buffer(schema_message))
    except (pa.ArrowException, OSError):
        return None
    return None if any(pa.types.is_dictionary(f.type) for f in schema) else schema


def _decode_one(value: bytes) -> pa.Table | WireError:
    try:
        return decode(value)
    except WireError as exc:
        return exc


def header_map(raw: list[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in (raw or [])}
