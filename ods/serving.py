"""The serving merge: one bar series from the batch view up to the batch watermark and from the
real-time view after it, so a query never has a gap or counts a minute twice.

- batch view: ``<curated_db>.bars`` in Hive (spark_jobs/bars.py), read through the Thrift server;
- batch watermark: the end (00:00 UTC of the next day) of the latest ``dt`` partition the batch
  layer has written for the interval. The bars job writes whole UTC days, so the batch view is
  complete before the watermark; the real-time view answers from it on;
- real-time view: the operational store's 1-minute bars (``OperationalStore.bars``), rolled up
  to 5m / 1h / 1d on the same UTC clock as the batch job (bars never span the watermark, which
  is a day boundary).

Every row says where it came from in ``source`` (``batch`` or ``realtime``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tradelake.schemas import BAR, arrow_schema

if TYPE_CHECKING:
    from ods.store import OperationalStore
    from tradelake.config import Config

INTERVAL_NS = {"1m": 60_000_000_000, "5m": 300_000_000_000, "1h": 3_600_000_000_000,
               "1d": 86_400_000_000_000}
SERVED_SCHEMA = arrow_schema(BAR).append(pa.field("source", pa.string(), False,
                                                  {"doc": "batch or realtime"}))
_PARTITION = re.compile(r"interval=([^/]+)/dt=(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class Served:
    """The merged bars and where the batch view ended."""

    bars: pa.Table
    watermark_ns: int | None  # None: the batch view has no bars of this interval yet

    @property
    def counts(self) -> dict[str, int]:
        sources = self.bars["source"].to_pylist()
        return {s: sources.count(s) for s in ("batch", "realtime")}


def _ns(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000_000


def batch_watermark(cursor: Any, curated_db: str, interval: str) -> int | None:
    """00:00 UTC after the newest ``dt`` partition of ``interval`` in the batch bars, in ns."""
    cursor.execute(f"SHOW PARTITIONS {curated_db}.bars")
    days = [date.fromisoformat(m[2]) for (part,) in cursor.fetchall()
            if (m := _PARTITION.fullmatch(part)) and m[1] == interval]
    return _ns(max(days) + timedelta(days=1)) if days else None


def batch_bars(cursor: Any, curated_db: str, symbol: str, interval: str, start_ns: int,
               end_ns: int) -> list[dict[str, Any]]:
    """Bars of the batch view opening in [start_ns, end_ns), partition-pruned by dt."""
    if start_ns >= end_ns:
        return []
    first = datetime.fromtimestamp(start_ns // 1_000_000_000, UTC).date()
    last = datetime.fromtimestamp((end_ns - 1) // 1_000_000_000, UTC).date()
    cursor.execute(
        f"SELECT ts, symbol, `interval`, open, high, low, close, volume, vwap, trade_count "
        f"FROM {curated_db}.bars WHERE `interval` = %(interval)s AND symbol = %(symbol)s "
        f"AND dt BETWEEN %(first)s AND %(last)s AND ts >= %(start)d AND ts < %(end)d ORDER BY ts",
        {"interval": interval, "symbol": symbol, "first": first.isoformat(),
         "last": last.isoformat(), "start": start_ns, "end": end_ns})
    names = BAR.names
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def roll_up(minute_bars: list[dict[str, Any]], interval: str) -> list[dict[str, Any]]:
    """1m bars (sorted by ts) to ``interval`` bars on the UTC clock, like spark_jobs/bars.py."""
    if interval == "1m":
        return minute_bars
    width = INTERVAL_NS[interval]
    out: list[dict[str, Any]] = []
    for bar in minute_bars:
        start = bar["ts"] - bar["ts"] % width
        if out and out[-1]["ts"] == start:
            agg = out[-1]
            agg["high"] = max(agg["high"], bar["high"])
            agg["low"] = min(agg["low"], bar["low"])
            agg["close"] = bar["close"]
            agg["_pv"] += (bar["vwap"] or 0.0) * bar["volume"]
            agg["volume"] += bar["volume"]
            agg["trade_count"] += bar["trade_count"]
        else:
            out.append({**bar, "ts": start, "interval": interval,
                        "_pv": (bar["vwap"] or 0.0) * bar["volume"]})
    for agg in out:
        pv = agg.pop("_pv")
        agg["vwap"] = pv / agg["volume"] if agg["volume"] > 0 else None
    return out


def merged_bars(cfg: Config, symbol: str, start_ns: int, end_ns: int, interval: str = "1m", *,
                store: OperationalStore | None = None, hive_cursor: Any = None) -> Served:
    """Bars of ``symbol`` opening in [start_ns, end_ns): batch view before the watermark,
    real-time view from it. ``store`` / ``hive_cursor`` default to the profile's."""
    if interval not in INTERVAL_NS:
        raise ValueError(f"interval must be one of {', '.join(INTERVAL_NS)}, got {interval!r}")
    if start_ns >= end_ns:
        raise ValueError(f"empty range: from {start_ns} is not before to {end_ns}")
    own_cursor = own_store = None
    if hive_cursor is None:
        from tradelake.hive_client import connect_hive

        own_cursor = connect_hive(cfg.hive)
        hive_cursor = own_cursor.cursor()
    if store is None:
        from ods.store import open_store

        store = own_store = open_store(cfg)
    try:
        db = cfg.warehouse.curated_db
        watermark = batch_watermark(hive_cursor, db, interval)
        split = start_ns if watermark is None else min(max(watermark, start_ns), end_ns)
        rows = [{**b, "source": "batch"}
                for b in batch_bars(hive_cursor, db, symbol, interval, start_ns, split)]
        if split < end_ns:
            # Realtime 1m bars over whole intervals, so the first and last rolled bars are full.
            width = INTERVAL_NS[interval]
            lo = split - split % width
            hi = end_ns + (-end_ns % width)
            minute = store.bars(symbol, max(lo, split), hi).to_pylist()
            rows += [{**b, "source": "realtime"} for b in roll_up(minute, interval)
                     if split <= b["ts"] < end_ns]
    finally:
        if own_cursor is not None:
            own_cursor.close()
        if own_store is not None:
            own_store.close()
    return Served(pa.Table.from_pylist(rows, schema=SERVED_SCHEMA), watermark)
