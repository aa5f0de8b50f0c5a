"""The Kafka wire encoding of market data: one Arrow IPC stream per message.

A message carries many ticks of ONE symbol (the message key is the symbol, so a symbol's ticks
stay ordered in one partition), like a kdb+ tickerplant publishing lists of records:

- key:     the symbol, UTF-8
- value:   an Arrow IPC *stream* (schema message, one record batch, end-of-stream marker),
           columns exactly ``tradelake.schemas.arrow_schema(<kind>)``: timestamps are int64 UTC
           nanoseconds. Buffers are uncompressed, so any Arrow implementation reads it.
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


def encode(batch: pa.RecordBatch | pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
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
    except (pa.ArrowInvalid, OSError) as exc:
        raise WireError(f"not an Arrow IPC stream ({len(value)} bytes): {exc}") from exc


def header_map(raw: list[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in (raw or [])}
