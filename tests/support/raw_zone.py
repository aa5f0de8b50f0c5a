"""Hand-made raw-zone files for tests: exactly what the lake lander writes (the event columns,
then ``kafka_partition`` and ``kafka_offset``; one Kafka message = consecutive rows sharing an
offset), named ``p<partition>-o<first>-o<last>.parquet`` under ``<zone>/<topic>/dt=<date>/``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ingestion.lake_layout import OffsetRange, final_path, write_parquet_atomically
from ingestion.lander import KAFKA_COLUMNS, TopicSpec
from tradelake.lakefs import LakeFS
from tradelake.schemas import QUOTE, TRADE, arrow_schema

TRADES = TopicSpec("md.trades", "trade", arrow_schema(TRADE), "raw")
QUOTES = TopicSpec("md.quotes", "quote", arrow_schema(QUOTE), "raw")


def trade(ts: int, symbol: str, seq: int, price: float = 10.0, size: float = 1.0) -> dict:
    return {"ts": ts, "symbol": symbol, "price": price, "size": size, "trade_id": f"{symbol}-{seq}",
            "exchange": "XNAS", "seq": seq, "side": "B", "conditions": None, "ingest_ts": ts + 1000}


def quote(ts: int, symbol: str, seq: int, bid: float = 9.99, ask: float = 10.01) -> dict:
    return {"ts": ts, "symbol": symbol, "bid_price": bid, "bid_size": 100.0, "ask_price": ask,
            "ask_size": 100.0, "exchange": "XNAS", "seq": seq, "ingest_ts": ts + 1000}


def land(fs: LakeFS, spec: TopicSpec, dt: str, partition: int, first_offset: int,
         messages: list[list[dict]]) -> str:
    """One landed file holding ``messages`` (lists of rows) at offsets first_offset, +1, ..."""
    tables, offsets = [], []
    for i, rows in enumerate(messages):
        tables.append(pa.Table.from_pylist(rows, schema=spec.schema))
        offsets += [first_offset + i] * len(rows)
    table = pa.concat_tables(tables)
    table = table.append_column(KAFKA_COLUMNS[0], pa.array(np.full(len(table), partition, np.int32)))
    table = table.append_column(KAFKA_COLUMNS[1], pa.array(np.array(offsets, np.int64)))
    rng = OffsetRange(partition, first_offset, first_offset + len(messages) - 1)
    path = final_path(spec.zone, spec.topic, dt, rng)
    assert write_parquet_atomically(fs, path + ".tmp", path, table, "snappy")
    return path
