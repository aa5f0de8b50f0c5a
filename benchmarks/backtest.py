"""Backtest benchmark: the event-driven engine's speed, and a 100-combination sweep on Spark.

    .venv/bin/python benchmarks/backtest.py [--symbols 10] [--days 252] [--strategy mean_reversion]
                                            [--repeat 3] [--combos 100] [--no-sweep]

Bars: synthetic 1-minute bars (``intelligence.synthetic``: 390 a day, weekdays) of ``--symbols``
symbols over ``--days`` trading days: 982,800 bars for a year of 10 symbols. Built once (the
load, timed separately: Arrow -> validated ``Bar`` objects).

1. Event-driven: one strategy (the profile's parameters) over all the bars on one core, as
   ``tradelake backtest`` runs it: ``Engine`` + simulated venue (next-bar-open fills, the
   profile's commission and slippage) + the books checked at every step + the trade and decision
   log. Best of ``--repeat`` runs, wall clock (CPU time printed too: the machine is shared).
   Baseline, same run: the same mean reversion hand-written as one plain loop over the bars (the
   same indicator class, fills and costs, no engine, no checks, no logs) -- the price of the
   engine's generality; both must end with the same equity.
2. Sweep: ``--combos`` parameter sets of mean reversion (window x entry_z x exit_z) over the same
   bars, one Spark task each (``intelligence.sweep.run_sweep`` on the profile's master), timed
   from submit to the last result. Baseline: one of those backtests run alone in this process
   (record off, as a task runs it), times the number of combinations: the sequential time.

Prints a line per phase, the JSON last, and writes benchmarks/results/backtest.json:
{"bars", "event_driven_bars_per_s", "sweep_backtests", "sweep_bars", "sweep_seconds", ...}
(``sweep_bars`` = bars per backtest of the sweep; ``sweep_bar_events`` = all of them).
Targets: event_driven_bars_per_s >= 200,000; the sweep completes.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intelligence.backtest import Backtest  # noqa: E402
from intelligence.execution import Commission, Slippage  # noqa: E402
from intelligence.indicators import RollingMoments  # noqa: E402
from intelligence.sources import bars_from_arrow  # noqa: E402
from intelligence.strategies import build_strategy  # noqa: E402
from intelligence.synthetic import synthetic_bars  # noqa: E402
from tradelake.config import load_config  # noqa: E402

TARGET_BARS_PER_S = 200_000
GRID_AXES = {"window": ["10", "20", "30", "40", "60"], "entry_z": ["1.5", "2.0", "2.5", "3.0"],
             "exit_z": ["0.0", "0.25", "0.5", "0.75", "1.0"]}  # 5 x 4 x 5 = 100


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def hand_written_mean_reversion(bars, window: float, entry: float, exit_: float, qty: float,
                                commission: Commission, slippage: Slippage, cash: float) -> float:
    """The baseline: mean reversion as one loop, same rules as the engine's, final equity out."""
    stats: dict[str, RollingMoments] = {}
    direction: dict[str, float] = {}
    position: dict[str, float] = {}
    pending: dict[str, float] = {}
    last: dict[str, float] = {}
    for bar in bars:
        symbol = bar.symbol
        order = pending.pop(symbol, 0.0)
        if order:
            price = slippage("B" if order > 0 else "S", bar.open)
            cash -= order * price + commission(abs(order), price)
            position[symbol] = position.get(symbol, 0.0) + order
        last[symbol] = bar.close
        st = stats.get(symbol)
        if st is None:
            st = stats[symbol] = RollingMoments(window)
        st.update(bar.close)
        sd = st.sd
        if not sd:
            continue
        z = (bar.close - st.mean) / sd
        current = direction.get(symbol, 0.0)
        if z > entry:
            wanted = -1.0
        elif z < -entry:
            wanted = 1.0
        elif (current > 0.0 and z >= -exit_) or (current < 0.0 and z <= exit_):
            wanted = 0.0
        else:
            continue
        if wanted != current:
            direction[symbol] = wanted
            pending[symbol] = wanted * qty - position.get(symbol, 0.0)
    return cash + sum(q * last[s] for s, q in position.items())


def event_driven(cfg, bars, repeat: int) -> dict:
    icfg = cfg.intelligence
    best = None
    for i in range(repeat):
        strategy = build_strategy("mean_reversion", icfg)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = Backtest.from_config(strategy, icfg.backtest).run(bars)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        say(f"  run {i + 1}: {len(bars):,} bars in {wall:.2f}s wall ({len(bars) / wall:,.0f} bars/s), "
            f"{cpu:.2f}s CPU ({len(bars) / cpu:,.0f} bars/s); {result.fill_count:,} fills")
        if best is None or wall < best[0]:
            best = (wall, cpu, result)
    wall, cpu, result = best
    bt, mr = icfg.backtest, icfg.mean_reversion
    commission = Commission(bt.commission_model, bt.commission_rate, bt.commission_min)
    slippage = Slippage(bt.slippage_model, bt.slippage)
    base_wall = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        base_equity = hand_written_mean_reversion(bars, mr.window, mr.entry_z, mr.exit_z, bt.order_qty,
                                                  commission, slippage, bt.initial_cash)
        base_wall = min(base_wall, time.perf_counter() - t0)
    same = math.isclose(base_equity, result.final_equity, rel_tol=1e-9)
    say(f"  baseline (hand-written loop, no engine): {len(bars) / base_wall:,.0f} bars/s; "
        f"final equity {base_equity:,.2f} vs engine {result.final_equity:,.2f}: "
        f"{'same' if same else 'DIFFERENT'}")
    return {"event_driven_bars_per_s": round(len(bars) / wall),
            "event_driven_cpu_bars_per_s": round(len(bars) / cpu),
            "event_driven_seconds": round(wall, 3), "event_driven_fills": result.fill_count,
            "baseline_loop_bars_per_s": round(len(bars) / base_wall),
            "engine_over_baseline": round(base_wall / wall, 3), "same_final_equity": same}


def sweep(cfg, table, bars, combos: int) -> dict:
    from tqdm import tqdm

    from intelligence.sweep import run_one, run_sweep
    from tradelake.spark import get_spark

    grid = [dict(zip(GRID_AXES, values, strict=True)) for values in itertools.product(*GRID_AXES.values())]
    grid = grid[:combos]
    one = math.inf
    for _ in range(2):  # best of two: the machine is shared
        t0 = time.perf_counter()
        run_one("mean_reversion", cfg, grid[0], bars)
        one = min(one, time.perf_counter() - t0)
    say(f"  baseline: one backtest alone in this process {one:.2f}s -> {len(grid)} sequentially "
        f"~{one * len(grid):.0f}s")
    say(f"  starting Spark ({cfg.spark.master}) ...")
    spark = get_spark("tradelake-backtest-benchmark", cfg)
    try:
        with tqdm(total=len(grid), desc="  sweep", unit=" runs", file=sys.stderr, mininterval=5) as bar:
            t0 = time.perf_counter()
            summaries = run_sweep(spark, cfg, "mean_reversion", table, grid,
                                  lambda done, total: done != bar.n and bar.update(done - bar.n))
            seconds = time.perf_counter() - t0
    finally:
        spark.stop()
    best = max(summaries, key=lambda s: s["sharpe"] if s["sharpe"] is not None else -math.inf)
    say(f"  {len(grid)} backtests x {table.num_rows:,} bars in {seconds:.1f}s "
        f"({len(grid) * table.num_rows / seconds:,.0f} bar-events/s); "
        f"best Sharpe {best['sharpe']:.2f} at {best['params']}")
    return {"sweep_backtests": len(summaries), "sweep_bars": table.num_rows,
            "sweep_bar_events": len(summaries) * table.num_rows, "sweep_seconds": round(seconds, 1),
            "sweep_sequential_estimate_seconds": round(one * len(grid), 1),
            "sweep_speedup": round(one * len(grid) / seconds, 2), "spark_master": cfg.spark.master,
            "sweep_best": {"params": best["params"], "sharpe": best["sharpe"]}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--days", type=int, default=252, help="trading days of 390 1m bars")
    parser.add_argument("--repeat", type=int, default=3, help="event-driven runs (best kept)")
    parser.add_argument("--combos", type=int, default=100, help="sweep size (at most 100)")
    parser.add_argument("--no-sweep", action="store_true", help="event-driven part only")
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    cfg = load_config(args.profile)
    cfg = dataclasses.replace(cfg, intelligence=cfg.intelligence)
    symbols = [f"S{i:02d}" for i in range(args.symbols)]
    say(f"generating {args.days} days of 1m bars for {args.symbols} symbols ...")
    table = synthetic_bars(symbols, args.days, seed=42)
    t0 = time.perf_counter()
    bars = bars_from_arrow(table)
    load = time.perf_counter() - t0
    say(f"  {len(bars):,} bars; Arrow -> validated Bar objects in {load:.1f}s "
        f"({len(bars) / load:,.0f} bars/s)")
    say("event-driven backtest, mean_reversion (profile parameters), one core:")
    result = {"bars": len(bars), **event_driven(cfg, bars, args.repeat),
              "load_bars_per_s": round(len(bars) / load), "target_bars_per_s": TARGET_BARS_PER_S}
    if not args.no_sweep:
        say(f"parameter sweep: {args.combos} combinations of mean_reversion, one Spark task each:")
        result.update(sweep(cfg, table, bars, args.combos))
    out = ROOT / "benchmarks" / "results" / "backtest.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    met = result["event_driven_bars_per_s"] >= TARGET_BARS_PER_S
    say(f"summary: {result['event_driven_bars_per_s']:,} bars/s event-driven (target {TARGET_BARS_PER_S:,}: "
        f"{'met' if met else 'NOT met'}), {result['engine_over_baseline']:.2f}x the hand-written loop's speed"
        + ("" if args.no_sweep else f"; sweep of {result['sweep_backtests']} in {result['sweep_seconds']}s")
        + f"; written to {out.relative_to(ROOT)}")
    print(json.dumps(result))
    return 0 if result["same_final_equity"] else 1


if __name__ == "__main__":
    sys.exit(main())
