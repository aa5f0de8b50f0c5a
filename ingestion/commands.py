"""``tradelake ingest``, ``tradelake land`` and ``tradelake land-files``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from tqdm import tqdm

from tradelake.config import load_config


def _simulator(cfg, args):
    from ingestion.simulator import MarketSimulator, SimulatorConfig

    ing = cfg.ingest
    sim_cfg = SimulatorConfig(
        symbols=tuple(args.symbols.split(",")) if args.symbols else ing.simulator_symbols,
        seed=ing.simulator_seed if args.seed is None else args.seed,
        start_date=date.fromisoformat(args.start_date or ing.simulator_start_date),
        days=args.days or ing.simulator_days,
        trades_per_symbol_per_day=args.trades_per_day or ing.simulator_trades_per_symbol_per_day,
    )
    return MarketSimulator(sim_cfg)


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingestion.pipeline import file_batches, make_validator, publish_batches
    from ingestion.publisher import TickPublisher
    from ingestion.quarantine import Counts

    cfg = load_config(args.profile)
    extra = Counts()
    if args.source == "simulator":
        sim = _simulator(cfg, args)
        batches, total, unit, name = (sim.batches(by_symbol=not args.pace), sim.total_ticks(), "ticks",
                                       "simulator")
        if args.pace:
            from ingestion.pacing import paced

            batches = paced(batches, args.pace)
    elif args.source == "ib":
        from ingestion.ib_source import IbMarketDataSource, IbSourceError

        try:
            source = IbMarketDataSource.from_config(cfg.ib, max_ticks=args.max_ticks,
                                                    duration_s=args.duration)
        except IbSourceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"ingest: live ticks from {source.endpoint}", file=sys.stderr)
        batches, total, unit, name = source.batches(), args.max_ticks, "ticks", "ib"
    else:
        if not args.paths:
            print("error: --source file needs at least one PATH", file=sys.stderr)
            return 2
        paths = [Path(p) for p in args.paths]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
            return 2
        batches = file_batches(paths, args.symbol, args.interval, extra)
        total, unit, name = None, "records", "file:" + ",".join(p.name for p in paths)
    validator = make_validator(cfg.ingest, name)
    publisher = TickPublisher(cfg.kafka.bootstrap, cfg.ingest.ticks_per_message,
                              wire_compression=cfg.ingest.wire_compression)
    with tqdm(total=total, unit=unit, unit_scale=True, desc=f"ingest {args.source}",
              file=sys.stderr, disable=args.quiet) as bar:
        report = publish_batches(cfg, batches, validator, publisher, on_progress=bar.update,
                                 extra_counts=extra)
    publisher.close()
    print(report.counts.summary(), file=sys.stderr)
    print(json.dumps(report.as_dict()))
    return 0 if report.counts.reconciles() else 1


def cmd_land(args: argparse.Namespace) -> int:
    from ingestion.lander import LanderError, summary
    from ingestion.landing import build_lander

    cfg = load_config(args.profile)
    topics = args.topics.split(",") if args.topics else None
    lander = build_lander(cfg, topics=topics, group_id=args.group_id)
    print(f"landing {', '.join(lander.specs)} into {cfg.lake.root} "
          f"(stop with Ctrl-C or SIGTERM: buffers are landed first)", file=sys.stderr)
    bar = tqdm(unit="rows", unit_scale=True, desc="land", file=sys.stderr, disable=args.quiet)

    def progress(stats) -> None:
        bar.update(stats.rows - bar.n)
        bar.set_postfix(files=stats.files, msgs=stats.messages, refresh=False)

    try:
        stats = lander.run(idle_exit_s=args.idle_exit, max_seconds=args.max_seconds,
                           on_progress=progress)
    except LanderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        lander.flush_all()
        stats = lander.stats
    finally:
        bar.close()
        lander.consumer.close()
    print(json.dumps(summary(stats)))
    return 0


def cmd_land_files(args: argparse.Namespace) -> int:
    from ingestion.file_landing import land_files

    cfg = load_config(args.profile)
    result = land_files(cfg, [Path(p) for p in args.paths], symbol=args.symbol,
                        interval=args.interval, register=not args.no_register)
    print(result["counts_summary"], file=sys.stderr)
    print(json.dumps(result))
    return 0 if result["reconciled"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    ingest = sub.add_parser(
        "ingest", help="run a market-data source through validation into Kafka",
        description="Validates every record (quarantine topic for rejects, universe filter) and "
                    "publishes accepted ticks keyed by symbol; ends with a reconciled summary "
                    "(received = accepted + quarantined + filtered). Exit 1 if it does not reconcile.")
    ingest.add_argument("--source", choices=["simulator", "file", "ib"], required=True,
                        help="simulator (conf: ingest.simulator_*), vendor CSV files, or live "
                             "Interactive Brokers ticks (conf: ib; off unless ib.enabled)")
    ingest.add_argument("paths", nargs="*", help="CSV files (with --source file)")
    ingest.add_argument("--symbols", help="simulator: comma-separated symbols (default: conf)")
    ingest.add_argument("--days", type=int, help="simulator: trading days (default: conf)")
    ingest.add_argument("--seed", type=int, help="simulator: random seed (default: conf)")
    ingest.add_argument("--start-date", help="simulator: first day, YYYY-MM-DD (default: conf)")
    ingest.add_argument("--trades-per-day", type=int, help="simulator: trades per symbol per day")
    ingest.add_argument("--symbol", help="file: symbol for files without a symbol column")
    ingest.add_argument("--interval", help="file: bar length, e.g. 1d or 1m (default: by layout)")
    ingest.add_argument("--max-ticks", type=int, help="ib: stop after this many ticks")
    ingest.add_argument("--duration", type=float, help="ib: stop after this many seconds")
    ingest.add_argument("--pace", type=float, metavar="N",
                        help="simulator: play the ticks at N times real time, symbols merged by event "
                             "time (a live-like feed for the router and the exchange); default: as fast "
                             "as possible")
    ingest.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(func=cmd_ingest)

    land = sub.add_parser(
        "land", help="land Kafka topics into the lake's raw zone, exactly once",
        description="Consumer-group service: immutable Parquet files under "
                    "raw/<topic>/dt=YYYY-MM-DD/ named by Kafka partition and offset range; "
                    "offsets are committed only after a file is renamed into place.")
    land.add_argument("--topics", help="comma-separated (default: every topic in ingest.topics)")
    land.add_argument("--group-id", help="consumer group (default: lander.group_id)")
    land.add_argument("--idle-exit", type=float, help="exit after this many seconds without data")
    land.add_argument("--max-seconds", type=float, help="exit after this long")
    land.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    land.set_defaults(func=cmd_land)

    files = sub.add_parser(
        "land-files", help="bring end-of-day vendor files into the raw zone through validation",
        description="Each file lands once (its content hash is in the file name), validated like "
                    "any feed: accepted rows to raw/files.<kind>/dt=.../, rejects to "
                    "quarantine/files/.")
    files.add_argument("paths", nargs="+", help="CSV files")
    files.add_argument("--symbol", help="symbol for files without a symbol column")
    files.add_argument("--interval", help="bar length, e.g. 1d (default: by layout)")
    files.add_argument("--no-register", action="store_true", help="do not add Hive partitions")
    files.set_defaults(func=cmd_land_files)
