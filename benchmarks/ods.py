"""ODS benchmark: bulk-load trade ticks with the continuous views on vs off, in the same run.

    .venv/bin/python benchmarks/ods.py [--rows 1000000] [--batch 50000] [--rounds 2]

Runs on the local stack (started if it is not up). Three scratch schemas get the same
migrations: "plain" with the statement trigger that maintains the views (1m OHLCV + VWAP, last
trade, rolling volume) disabled; "with_views" with it on and the market rules (price move,
volume surge, VWAP cross) switched off; "with_views_and_rules" with everything on, as deployed.
The same simulator trades (ten symbols, one session) go into each through the store's own write
path (COPY into staging, INSERT ... ON CONFLICT DO NOTHING), ``--batch`` rows per statement, in
rounds alternating the modes so drift on the machine hits all. Rates are the best round of each;
``ratio`` = with_views / plain, ``with_rules_ratio`` = with_views_and_rules / plain.
``views_match``: afterwards every 1m bar of both view schemas equals an independent GROUP BY
recomputation from the stored trades.

Prints the JSON last and writes benchmarks/results/ods.json:
{"rows", "plain_rows_per_s", "with_views_rows_per_s", "ratio", "views_match", ...}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingestion.simulator import MarketSimulator, SimulatorConfig  # noqa: E402
from ods.postgres import PostgresStore  # noqa: E402
from tradelake.config import load_config  # noqa: E402
from tradelake.stack.manager import Stack  # noqa: E402

SYMBOLS = ("AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "TSLA", "JPM", "XOM", "UNH")
VIEW_TRIGGERS = ("trades_continuous_views",)


def simulated_trades(rows: int, batch: int) -> list[pa.Table]:
    per_symbol = -(-rows // len(SYMBOLS))
    sim = MarketSimulator(SimulatorConfig(symbols=SYMBOLS, seed=3, start_date=date(2026, 1, 5),
                                          trades_per_symbol_per_day=per_symbol))
    trades = pa.Table.from_batches([b for kind, b in sim.batches(max_rows=batch)
                                    if kind == "trade"]).slice(0, rows)
    return [trades.slice(i, batch) for i in range(0, trades.num_rows, batch)]


def load(store: PostgresStore, batches: list[pa.Table]) -> float:
    started = time.perf_counter()
    for b in batches:
        store.write_trades(b)
    return time.perf_counter() - started


def reset(store: PostgresStore) -> None:
    """Empty tables, and a checkpoint so no load pays for writing out the previous one's pages."""
    with store._conn, store._conn.cursor() as cur:
        cur.execute("TRUNCATE trades, bars_1m, last_trades, rolling_volume, alerts")
    store._conn.autocommit = True
    try:
        with store._conn.cursor() as cur:
            cur.execute("CHECKPOINT")  # needs a superuser (the local stack's role is one)
    finally:
        store._conn.autocommit = False


def views_match(store: PostgresStore) -> bool:
    stored = store.query("SELECT symbol, ts, open, high, low, close, trade_count, volume "
                          "FROM bars_1m ORDER BY 1, 2", ())
    recomputed = store.query("""
        SELECT symbol, ts - ts % 60000000000,
               (array_agg(price ORDER BY ts, seq))[1], max(price), min(price),
               (array_agg(price ORDER BY ts DESC, seq DESC))[1], count(*), sum(size)
        FROM trades GROUP BY 1, 2 ORDER BY 1, 2""", ())
    return len(stored) == len(recomputed) and all(
        a[:7] == b[:7] and abs(a[7] - b[7]) <= 1e-9 * max(1.0, abs(b[7]))
        for a, b in zip(stored, recomputed, strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="trade ticks per round")
    parser.add_argument("--batch", type=int, default=50_000, help="rows per write (statement)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds; each loads plain, then with views, then with rules")
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()

    cfg = load_config(args.profile)
    Stack(cfg).up()  # a no-op for services already running
    tag = uuid.uuid4().hex[:8]
    quiet = dataclasses.replace(cfg, ods=dataclasses.replace(cfg.ods, alerts_channel=f"bench_{tag}"))
    no_rules = dataclasses.replace(quiet, ods=dataclasses.replace(quiet.ods, rules=dataclasses.replace(
        quiet.ods.rules, price_move=False, volume_surge=False, vwap_cross=False)))
    stores = {"plain": PostgresStore(quiet, schema=f"bench_plain_{tag}"),
              "with_views": PostgresStore(no_rules, schema=f"bench_views_{tag}"),
              "with_views_and_rules": PostgresStore(quiet, schema=f"bench_rules_{tag}")}
    print(f"generating {args.rows:,} simulator trades ...", file=sys.stderr, flush=True)
    batches = simulated_trades(args.rows, args.batch)
    rows = sum(b.num_rows for b in batches)
    best: dict[str, float] = {}
    ratios: dict[str, list[float]] = {"with_views": [], "with_views_and_rules": []}
    try:
        for store in stores.values():
            store.ensure_schema()
        with stores["plain"]._conn, stores["plain"]._conn.cursor() as cur:
            for trigger in VIEW_TRIGGERS:
                cur.execute(f"ALTER TABLE trades DISABLE TRIGGER {trigger}")
        for round_no in range(1, args.rounds + 1):
            for mode, store in stores.items():
                reset(store)
                seconds = load(store, batches)
                rate = rows / seconds
                best[mode] = max(best.get(mode, 0.0), rate)
                if mode == "plain":
                    plain_rate = rate
                else:
                    ratios[mode].append(rate / plain_rate)
                print(f"  round {round_no} {mode:<20} {rows:,} rows in {seconds:6.2f}s "
                      f"= {rate:,.0f} rows/s", file=sys.stderr, flush=True)
        match = views_match(stores["with_views"]) and views_match(stores["with_views_and_rules"])
        bars = stores["with_views"].query("SELECT count(*) FROM bars_1m", ())[0][0]
        alerts = stores["with_views_and_rules"].query("SELECT count(*) FROM alerts", ())[0][0]
    finally:
        for store in stores.values():
            store.drop()
            store.close()
    result = {"rows": rows, "plain_rows_per_s": round(best["plain"]),
              "with_views_rows_per_s": round(best["with_views"]),
              "ratio": round(statistics.median(ratios["with_views"]), 3), "views_match": match,
              "with_views_and_rules_rows_per_s": round(best["with_views_and_rules"]),
              "with_rules_ratio": round(statistics.median(ratios["with_views_and_rules"]), 3),
              "round_ratios": {k: [round(r, 3) for r in v] for k, v in ratios.items()},
              "batch_rows": args.batch, "rounds": args.rounds, "bars_1m": bars,
              "alerts_raised": alerts, "target_ratio": 0.8}
    out = ROOT / "benchmarks" / "results" / "ods.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"summary: views cost {100 * (1 - result['ratio']):.1f}% of the plain load rate; "
          f"{bars:,} bars match a recomputation: {match}; written to {out.relative_to(ROOT)}",
          file=sys.stderr)
    print(json.dumps(result))
    return 0 if match else 1


if __name__ == "__main__":
    sys.exit(main())
