"""``tradelake backtest``: one strategy over the lake's bars (or a Spark-distributed parameter sweep).

Reads ``<warehouse.curated_db>.bars`` of ``--from..--to`` (``intelligence.sources``), runs the
event-driven backtester with the profile's ``intelligence:`` settings (overridden by ``--param``),
prints a report, writes the run, its trade log and equity curve to the warehouse
(``<trading_db>.backtest_runs|trades|equity``) and an equity/drawdown PNG under
``<stack.var_dir>/<intelligence.backtest.report_dir>/``. With ``--sweep`` it backtests every
combination on Spark, one task each, and prints them ranked by Sharpe.

Exit codes: 0 done; 1 no bars, a missing model, a failed run; 2 bad arguments (strategy,
parameter or grid); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from spark_jobs.window_args import add_window_arguments

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
REPORT_METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "turnover", "hit_rate",
                  "exposure")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1e6 else f"{value:,.2f}"
    return str(value)


def _params(args: argparse.Namespace) -> dict[str, str]:
    out = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {item!r}: expected name=value")
        out[key.strip()] = value.strip()
    return out


def _load_bars(cfg, args, symbols):
    from tqdm import tqdm

    from intelligence.sources import read_lake_bars

    table = f"{cfg.warehouse.curated_db}.bars"
    _say(f"reading {table} interval={args.interval} {args.date_from}..{args.date_to}"
         + (f" symbols={','.join(symbols)}" if symbols else ""))
    with tqdm(desc="  dates", unit=" dt", file=sys.stderr, leave=False) as bar:
        arrow = read_lake_bars(cfg, args.date_from, args.date_to, symbols, args.interval,
                               on_partition=lambda dt, rows: bar.update(1))
    return arrow


class _NoModel:
    """Stands in for the model while parameters are checked (the model is loaded afterwards)."""

    feature_names: tuple[str, ...] = ()

    def predict(self, features) -> float:
        return 0.0


def _predictor(cfg, icfg):
    from intelligence.models import load_predictor

    c = icfg.ml_signal
    return lambda: load_predictor(cfg, c.model, c.model_version or None)


def cmd_backtest(args: argparse.Namespace) -> int:
    import dataclasses

    from intelligence.strategies import STRATEGIES, with_overrides
    from tradelake.config import load_config

    cfg = load_config(args.profile)
    if args.date_to < args.date_from:
        _say("error: --to is before --from")
        return EXIT_USAGE
    try:
        icfg = with_overrides(cfg.intelligence, args.strategy, _params(args))
        from intelligence.strategies import build_strategy
        from intelligence.sweep import parse_grid

        grid = parse_grid(args.sweep) if args.sweep else None
        for params in grid or [{}]:  # every parameter set builds, before any bar is read
            build_strategy(args.strategy, with_overrides(icfg, args.strategy, params), predictor=_NoModel())
    except ValueError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    if args.strategy not in STRATEGIES:  # argparse's choices already refuse it; kept for callers
        return EXIT_USAGE
    if icfg.backtest.fill_on != "next_open":
        _say("error: tradelake backtest reads bars only, so it needs intelligence.backtest.fill_on: "
             "next_open (quote fills: intelligence.engine.merge bars and quotes through the library)")
        return EXIT_USAGE
    cfg = dataclasses.replace(cfg, intelligence=icfg)
    args.interval = args.interval or icfg.backtest.interval
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if args.strategy == "pairs" and not symbols:
        symbols = list(icfg.pairs.legs)
    bars = _load_bars(cfg, args, symbols)
    if bars.num_rows == 0:
        _say(f"error: no {args.interval} bars in {cfg.warehouse.curated_db}.bars for {args.date_from}.."
             f"{args.date_to}{' of ' + ','.join(symbols) if symbols else ''}; run `tradelake batch` first")
        return EXIT_FAILED
    found = sorted(set(bars.column("symbol").to_pylist()))
    _say(f"  {bars.num_rows:,} bars of {len(found)} symbol(s): {', '.join(found[:12])}"
         + (" ..." if len(found) > 12 else ""))
    if grid:
        return _sweep(cfg, args, bars, grid, found)
    return _single(cfg, args, bars, found)


def _single(cfg, args, arrow, symbols) -> int:
    from tqdm import tqdm

    from intelligence.backtest import Backtest
    from intelligence.portfolio import AccountingError
    from intelligence.results import ResultWriter, new_run_id, run_row, save_chart
    from intelligence.sources import bars_from_arrow
    from intelligence.strategies import build_strategy

    icfg = cfg.intelligence
    try:
        strategy = build_strategy(args.strategy, icfg, predictor=_predictor(cfg, icfg))
    except (LookupError, ValueError, OSError) as exc:
        _say(f"error: cannot build {args.strategy}: {exc}")
        return EXIT_FAILED
    bars = bars_from_arrow(arrow)
    run_id = new_run_id(args.strategy)
    with tqdm(total=len(bars), desc="  backtest", unit=" bars", unit_scale=True, file=sys.stderr,
              leave=False) as bar:
        last = [0]

        def progress(n: int) -> None:
            bar.update(n - last[0])
            last[0] = n

        try:
            result = Backtest.from_config(strategy, icfg.backtest).run(bars, progress, progress_every=50_000)
        except AccountingError as exc:
            _say(f"error: the books do not balance, the run is invalid: {exc}")
            return EXIT_FAILED
    params = {"strategy": _section(icfg, args.strategy), "backtest": _section(icfg, "backtest")}
    row = run_row(result, run_id=run_id, params=params, symbols=symbols, interval=args.interval,
                  date_from=args.date_from, date_to=args.date_to)
    _report(run_id, args, result, row)
    if not args.no_save:
        writer = ResultWriter(cfg)
        written = writer.write_run(row, result)
        chart = save_chart(result, cfg.var_dir / icfg.backtest.report_dir / f"{run_id}.png",
                           f"{args.strategy} {args.date_from}..{args.date_to} ({run_id})")
        for table in written:
            _say(f"  wrote {table} (run_id={run_id})")
        _say(f"  chart {chart}")
    print(json.dumps({"run_id": run_id, **{k: row[k] for k in ("strategy", "bars", "fills", "round_trips",
                                                                "final_equity", *REPORT_METRICS)}},
                     default=str))
    return EXIT_OK


def _section(icfg, name: str) -> dict:
    import dataclasses

    if name == "selector":
        c = icfg.selector
        return {**dataclasses.asdict(c), c.trend_strategy: _section(icfg, c.trend_strategy),
                c.range_strategy: _section(icfg, c.range_strategy)}
    return dataclasses.asdict(getattr(icfg, name))


def _report(run_id, args, result, row) -> None:
    from tradelake.text_table import format_table

    print(f"backtest {run_id}: {args.strategy} over {row['symbols']} {args.interval} bars, "
          f"{args.date_from}..{args.date_to}")
    facts = [("bars", result.bars), ("fills", result.fill_count), ("round trips", result.round_trips),
             ("initial equity", result.initial_cash), ("final equity", result.final_equity),
             ("commissions", result.commissions), ("rejected orders", len(result.rejections)),
             *((m, result.metrics.get(m)) for m in REPORT_METRICS), ("seconds", round(result.seconds, 2))]
    print(format_table(["metric", "value"], [(k, _fmt(v)) for k, v in facts]))


def _sweep(cfg, args, arrow, grid, symbols) -> int:
    from tqdm import tqdm

    from intelligence.results import ResultWriter, run_row
    from intelligence.sweep import run_sweep, sweep_id
    from tradelake.spark import get_spark
    from tradelake.text_table import format_table

    sid = sweep_id(args.strategy)
    _say(f"sweep {sid}: {len(grid)} backtests of {args.strategy} on Spark ({cfg.spark.master}), one per task")
    started = time.monotonic()
    from pyspark.sql import SparkSession

    owned = SparkSession.getActiveSession() is None  # in-process callers (tests) keep theirs
    spark = get_spark("tradelake-backtest-sweep", cfg)
    try:
        with tqdm(total=len(grid), desc="  sweep", unit=" runs", file=sys.stderr, leave=False,
                  mininterval=2) as bar:
            def progress(done: int, total: int) -> None:
                if done != bar.n:
                    bar.update(done - bar.n)
            summaries = run_sweep(spark, cfg, args.strategy, arrow, grid, progress)
    finally:
        if owned:
            spark.stop()
    seconds = time.monotonic() - started
    keys = list(grid[0])
    ranked = sorted(enumerate(summaries), key=lambda s: -(s[1].get("sharpe") if s[1].get("sharpe")
                                                          is not None else float("-inf")))
    rows = [(i, *[s["params"][k] for k in keys], s["fills"], s["total_return"], s["sharpe"],
             s["max_drawdown"], s["hit_rate"]) for i, s in ranked]
    print(f"sweep {sid}: {args.strategy}, {len(grid)} runs over {arrow.num_rows:,} bars in {seconds:.1f}s")
    print(format_table(["#", *keys, "fills", "total_return", "sharpe", "max_drawdown", "hit_rate"],
                       [tuple(_cell(v) for v in r) for r in rows]))
    if not args.no_save:
        from intelligence.strategies import with_overrides

        now = time.time_ns()
        run_rows = []
        for i, summary in enumerate(summaries):
            icfg = with_overrides(cfg.intelligence, args.strategy, summary["params"])
            result = _SummaryResult(summary)
            run_rows.append(run_row(result, run_id=f"{sid}-{i:03d}", sweep_id=sid,
                                    params={"strategy": _section(icfg, args.strategy),
                                            "backtest": _section(icfg, "backtest"),
                                            "grid": summary["params"]},
                                    symbols=symbols, interval=args.interval, date_from=args.date_from,
                                    date_to=args.date_to, finished_ns=now))
        ResultWriter(cfg).write_sweep(sid, run_rows)
        _say(f"  wrote {cfg.warehouse.trading_db}.backtest_runs: {len(run_rows)} rows (sweep_id={sid})")
    best = ranked[0][1] if ranked else {}
    print(json.dumps({"sweep_id": sid, "runs": len(grid), "bars": arrow.num_rows,
                      "seconds": round(seconds, 1),
                      "best": {"params": best.get("params"), "sharpe": best.get("sharpe"),
                               "total_return": best.get("total_return")}}, default=str))
    return EXIT_OK


def _cell(value):
    return round(value, 6) if isinstance(value, float) else value


class _SummaryResult:
    """A sweep task's summary with the attributes ``run_row`` reads from a full result."""

    def __init__(self, summary: dict) -> None:
        from intelligence.metrics import METRIC_NAMES

        self.strategy, self.bars = summary["strategy"], summary["bars"]
        self.fill_count, self.round_trips = summary["fills"], summary["round_trips"]
        self.initial_cash, self.final_equity = summary["initial_cash"], summary["final_equity"]
        self.commissions, self.seconds = summary["commissions"], summary["seconds"]
        self.metrics = {m: summary.get(m) for m in METRIC_NAMES}


def register(sub: argparse._SubParsersAction) -> None:
    from intelligence.strategies import STRATEGIES

    backtest = sub.add_parser(
        "backtest", help="backtest a strategy over the lake's bars (or sweep its parameters on Spark)",
        description="Event-driven backtest of one strategy over <curated_db>.bars (market orders fill at "
                    "the next bar's open, commission and slippage from conf/), with a report, the run, "
                    "trade log and equity curve written to <trading_db>.backtest_* and a PNG chart. "
                    "--sweep runs every combination as one Spark task each. Exit 0 done, 1 failed "
                    "(no bars, missing model), 2 bad arguments.",
        epilog="Parameters are the keys of the profile's intelligence: section, e.g. --param window=30 "
               "--param backtest.slippage=2 --sweep entry_z=1.5,2,2.5 --sweep window=20,40.")
    backtest.add_argument("--strategy", required=True, choices=STRATEGIES, help="strategy to run")
    add_window_arguments(backtest)
    backtest.add_argument("--interval", default="",
                          help="bar interval (default: intelligence.backtest.interval)")
    backtest.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                          help="override a parameter (repeatable): field of the strategy's section or "
                               "section.field")
    backtest.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...",
                          help="sweep a parameter over values (repeatable: the grid is their product)")
    backtest.add_argument("--no-save", action="store_true", help="do not write Hive tables or the chart")
    backtest.set_defaults(func=cmd_backtest)
