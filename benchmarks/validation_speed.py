"""Throughput of ``Validator.validate`` on trade ticks, against a per-row Python baseline.

Feed: ``--rows`` trades (default 1M) over ``--symbols`` symbols (default 50), timestamps
increasing per symbol inside the New York session of a few trading days, cut into batches of
``--batch`` rows (default 65,536) as a Kafka consumer or the simulator would deliver them. The
validator runs with everything switched on: a universe, a session calendar, the future check
and duplicate detection. A small fraction of rows is corrupted (NaN price, negative size,
replayed rows) so the quarantine path is exercised too.

Second figure, when ``ingestion.simulator`` is importable: the same validator over the market
simulator's trade batches (1M trades: 50 symbols x 20,000 trades, one day; U-shaped activity,
ties broken by nanoseconds), generated before the clock starts.

Baseline, measured in the same run: the obvious per-row Python loop applying the same basic
checks (finite/positive price, size, future, set-based duplicate key) to the first 100k rows.

Usage: ``.venv/bin/python benchmarks/validation_speed.py [--out results/validation_speed.json]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingestion.validation import US_EQUITIES, SessionCalendar, Validator  # noqa: E402
from tradelake.schemas import TRADE, arrow_schema  # noqa: E402

NS = 1_000_000_000
# 2026-03-02 (Mon) 14:30 UTC = 09:30 New York (EST)
FIRST_OPEN_NS = 1_772_461_800 * NS
SESSION_NS = 390 * 60 * NS
DAY_NS = 86_400 * NS


def synthetic_trades(rows: int, symbols: int, seed: int = 7) -> pa.Table:
    """Trades ordered by ts, strictly increasing per symbol, within session hours."""
    rng = np.random.default_rng(seed)
    days = 3
    per_day = math.ceil(rows / days)
    day = np.repeat(np.arange(days), per_day)[:rows]
    offset = np.sort(rng.integers(0, SESSION_NS, rows))
    offset = np.concatenate([np.sort(offset[day == d]) for d in range(days)])
    ts = FIRST_OPEN_NS + day * DAY_NS + offset
    ts = ts + np.arange(rows)  # no exact ties anywhere
    sym_idx = rng.integers(0, symbols, rows)
    names = np.array([f"S{i:03d}" for i in range(symbols)], object)
    seq = np.zeros(rows, np.int64)
    for s in range(symbols):
        mask = sym_idx == s
        seq[mask] = np.arange(1, mask.sum() + 1)
    price = np.round(100 + rng.normal(0, 1, rows).cumsum() * 0.01, 2)
    size = rng.integers(1, 10, rows) * 100.0
    bad = rng.random(rows)
    price[bad < 0.0005] = np.nan
    size[(bad >= 0.0005) & (bad < 0.001)] = -100.0
    cols = {
        "ts": pa.array(ts, pa.int64()), "symbol": pa.array(names[sym_idx], pa.string()),
        "price": pa.array(price), "size": pa.array(size),
        "trade_id": pa.array([f"T{i}" for i in range(rows)], pa.string()),
        "exchange": pa.array(np.where(bad < 0.5, "XNAS", "XNYS").astype(object), pa.string()),
        "seq": pa.array(seq), "side": pa.array(np.where(bad < 0.5, "B", "S").astype(object)),
        "conditions": pa.nulls(rows, pa.string()), "ingest_ts": pa.nulls(rows, pa.int64()),
    }
    table = pa.Table.from_pydict(cols, schema=arrow_schema(TRADE))
    replay = table.slice(rows // 2, 200)  # a replayed burst: duplicates of accepted rows
    return pa.concat_tables([table.slice(0, rows // 2 + 1000), replay,
                             table.slice(rows // 2 + 1000)])


def run_validator(table: pa.Table, batch: int, symbols: int) -> tuple[float, Validator]:
    universe = frozenset(f"S{i:03d}" for i in range(symbols))
    now = FIRST_OPEN_NS + 10 * DAY_NS
    validator = Validator(source="bench", universe=universe,
                          sessions=SessionCalendar({"*": US_EQUITIES}), now_ns=lambda: now)
    batches = table.to_batches(max_chunksize=batch)
    start = time.perf_counter()
    for b in batches:
        validator.validate("trade", b)
    return time.perf_counter() - start, validator


def simulator_batches(symbols: int, batch: int) -> list[pa.RecordBatch] | None:
    """1M realistic trades from the market simulator, or None if it cannot be imported."""
    try:
        from datetime import date

        from ingestion.simulator import MarketSimulator, SimulatorConfig
    except ImportError:
        return None
    cfg = SimulatorConfig(symbols=tuple(f"S{i:03d}" for i in range(symbols)), seed=7,
                          start_date=date(2026, 3, 2), trades_per_symbol_per_day=20_000,
                          quotes_per_trade=0.0)
    return [b for kind, b in MarketSimulator(cfg).batches(max_rows=batch) if kind == "trade"]


def naive_baseline(table: pa.Table, now: int) -> float:
    """The obvious per-row loop (fewer checks than the validator: no sessions, no universe),
    timed from the Arrow table it would receive, like the validator."""
    seen: set[tuple] = set()
    accepted = 0
    start = time.perf_counter()
    for r in table.to_pylist():
        p, s = r["price"], r["size"]
        if not (math.isfinite(p) and p > 0 and math.isfinite(s) and s >= 0 and r["ts"] <= now):
            continue
        key = (r["symbol"], r["ts"], r["seq"])
        if key in seen:
            continue
        seen.add(key)
        accepted += 1
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--batch", type=int, default=65_536)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "validation_speed.json")
    args = parser.parse_args(argv)

    table = synthetic_trades(args.rows, args.symbols)
    runs = [run_validator(table, args.batch, args.symbols) for _ in range(args.repeat)]
    best, validator = min(runs, key=lambda r: r[0])
    rate = table.num_rows / best
    base_rows = min(100_000, table.num_rows)
    base_s = naive_baseline(table.slice(0, base_rows), FIRST_OPEN_NS + 10 * DAY_NS)
    base_rate = base_rows / base_s
    result = {
        "rows": table.num_rows, "symbols": args.symbols, "batch_rows": args.batch,
        "validate_seconds": round(best, 4), "ticks_per_second": round(rate),
        "baseline_python_loop_ticks_per_second": round(base_rate),
        "speedup_vs_baseline": round(rate / base_rate, 1),
        "counts": validator.counts.summary(),
    }
    print(f"validate(): {table.num_rows:,} trades in {best:.3f} s = {rate:,.0f} ticks/s "
          f"(batches of {args.batch:,}, {args.symbols} symbols, best of {args.repeat})")
    print(f"baseline per-row Python loop: {base_rate:,.0f} ticks/s -> "
          f"{rate / base_rate:.1f}x")
    print(validator.counts.summary())
    sim = simulator_batches(args.symbols, args.batch)
    if sim is not None:
        sim_table = pa.Table.from_batches(sim)
        sim_best, sim_validator = min((run_validator(sim_table, args.batch, args.symbols)
                                       for _ in range(args.repeat)), key=lambda r: r[0])
        result["simulator_ticks_per_second"] = round(sim_table.num_rows / sim_best)
        result["simulator_counts"] = sim_validator.counts.summary()
        print(f"validate() on simulator trades: {sim_table.num_rows:,} in {sim_best:.3f} s = "
              f"{sim_table.num_rows / sim_best:,.0f} ticks/s; {sim_validator.counts.summary()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
