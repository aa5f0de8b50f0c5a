"""Synthetic OHLCV bars: reproducible input for tests, benchmarks and demos without a market feed.

``synthetic_bars(symbols, days, seed=...)`` returns an Arrow table with the BAR columns
(``tradelake.schemas.BAR``), sorted by (ts, symbol): for each weekday from ``start`` one session
of ``bars_per_day`` bars of ``interval`` from ``session_open_utc``. Per symbol, log returns are
normal with the volatility of ``annual_vol`` plus a drift that switches at random between
trending (up or down) and flat regimes (so trend and range strategies both have something to
do); prices are on a 0.01 tick, so runs of equal closes occur. The same arguments always give the
same table (numpy's PCG64 seeded from ``seed`` and the symbol's name).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pyarrow as pa

from intelligence.domain import interval_ns
from tradelake.config import Config
from tradelake.lakefs import LakeFS, lake_fs
from tradelake.schemas import BAR, arrow_schema

TRADING_DAYS_PER_YEAR = 252


def weekdays(start: date, days: int) -> list[date]:
    out, day = [], start
    while len(out) < days:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


def _rng(seed: int, symbol: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{symbol}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def synthetic_bars(symbols: Sequence[str], days: int, *, seed: int = 7, start: date = date(2026, 1, 5),
                   interval: str = "1m", bars_per_day: int = 390, session_open_utc: time = time(14, 30),
                   annual_vol: float = 0.3, trend_probability: float = 0.002) -> pa.Table:
    """Bars of ``symbols`` over ``days`` weekdays (see the module doc)."""
    step = interval_ns(interval)
    sessions = weekdays(start, days)
    opens = np.array([int(datetime.combine(d, session_open_utc, UTC).timestamp()) * 1_000_000_000
                      for d in sessions], dtype="int64")
    ts = (opens[:, None] + np.arange(bars_per_day, dtype="int64")[None, :] * step).ravel()
    n = ts.size
    sigma = annual_vol / np.sqrt(TRADING_DAYS_PER_YEAR * bars_per_day)
    columns: dict[str, list] = {name: [] for name in arrow_schema(BAR).names}
    for symbol in symbols:
        rng = _rng(seed, symbol)
        start_price = float(rng.uniform(20.0, 500.0))
        # drift regimes: each bar switches with trend_probability to a new drift of -0.05, 0 or
        # +0.05 sigma a bar (over a regime's ~1 / trend_probability bars, about the noise's size)
        switches = rng.random(n) < trend_probability
        levels = rng.choice([-0.05, 0.0, 0.0, 0.05], size=int(switches.sum()) + 1) * sigma
        drift = levels[np.cumsum(switches)]
        log_ret = drift + sigma * rng.standard_normal(n)
        close = np.round(start_price * np.exp(np.cumsum(log_ret)), 2)
        close = np.maximum(close, 0.01)
        open_ = np.concatenate(([round(start_price, 2)], close[:-1]))
        wiggle = np.abs(rng.standard_normal((2, n))) * sigma * 0.5
        high = np.round(np.maximum(open_, close) * np.exp(wiggle[0]), 2)
        low = np.maximum(np.round(np.minimum(open_, close) * np.exp(-wiggle[1]), 2), 0.01)
        volume = np.round(rng.lognormal(7.0, 0.8, n))
        vwap = np.round((open_ + high + low + close) / 4.0, 4)
        columns["ts"].append(ts)
        columns["symbol"].append(np.full(n, symbol, dtype=object))
        columns["interval"].append(np.full(n, interval, dtype=object))
        for name, values in (("open", open_), ("high", high), ("low", low), ("close", close),
                             ("volume", volume), ("vwap", vwap)):
            columns[name].append(values)
        columns["trade_count"].append(np.maximum(volume // 100, 1).astype("int64"))
    schema = arrow_schema(BAR)
    if not symbols:
        return schema.empty_table()
    table = pa.table({f.name: pa.array(np.concatenate(columns[f.name]), f.type) for f in schema},
                     schema=schema)
    return table.sort_by([("ts", "ascending"), ("symbol", "ascending")])


def write_lake_bars(cfg: Config, bars: pa.Table, fs: LakeFS | None = None,
                    register: bool = False) -> list[tuple[str, str]]:
    """Write ``bars`` into ``<warehouse.curated_db>.bars``'s folders the way the batch layer lays
    them out (``interval=<i>/dt=<date>/``, partition columns not in the files), for tests and
    demos without a feed; returns the (interval, dt) partitions written. ``register``: also
    create the table (its DDL) and add the partitions through the Thrift server, so Hive SQL
    sees the bars."""
    import io

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from intelligence.sources import BAR_FILE_COLUMNS, table_location

    fs = fs or lake_fs(cfg)
    base = table_location(cfg, f"{cfg.warehouse.curated_db}.bars")
    days = pc.cast(pc.divide(bars["ts"], 86_400_000_000_000), pa.int32()).cast(pa.date32())
    written = []
    for interval in sorted(set(bars["interval"].to_pylist())):
        for day in sorted(set(days.to_pylist())):
            mask = pc.and_(pc.equal(bars["interval"], interval), pc.equal(days, pa.scalar(day, pa.date32())))
            part = bars.filter(mask).select(list(BAR_FILE_COLUMNS))
            if part.num_rows:
                sink = io.BytesIO()
                pq.write_table(part, sink)
                path = f"{base}/interval={interval}/dt={day.isoformat()}/part-00000.parquet"
                fs.write_bytes(path, sink.getvalue())
                written.append((interval, day.isoformat()))
    if register:
        _register(cfg, written)
    return written


def _register(cfg: Config, partitions: list[tuple[str, str]]) -> None:
    import contextlib

    from hive.warehouse import statements
    from tradelake.hive_client import connect_hive

    table = f"{cfg.warehouse.curated_db}.bars"
    ddl = {s.name: s.sql for s in statements(cfg) if s.kind in ("DATABASE", "TABLE")}
    conn = connect_hive(cfg.hive)
    with contextlib.closing(conn), contextlib.closing(conn.cursor()) as cur:
        cur.execute(ddl[cfg.warehouse.curated_db])
        cur.execute(ddl[table])
        for interval, dt in partitions:
            cur.execute(f"ALTER TABLE {table} ADD IF NOT EXISTS "
                        f"PARTITION (`interval`='{interval}', dt='{dt}')")
        cur.execute(f"REFRESH TABLE {table}")
