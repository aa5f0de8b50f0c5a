"""``tradelake replay``: disaster-recovery replay of the raw zone into Kafka, the ODS or the engine.

The reading and ordering live in ``ingestion/replay.py``; this module is the composition root that
plugs a target in. The ``ods`` and ``engine`` targets belong to layers downstream of ingestion
(``ods/rebuild.py``, ``intelligence/replay_engine.py``) and are imported only when chosen, as the
top-level CLI imports every layer.

Exit codes: 0 done and reconciled; 1 failed (counts do not reconcile, the raw zone cannot be
replayed in order, a store refused a write); 2 usage (bad arguments, a store that already holds
data without ``--wipe``); 3 a service is not reachable; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tradelake.config import load_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_UP = 0, 1, 2, 3


def _ns(text: str) -> int:
    """ISO date or date-time -> UTC ns (a time without an offset is UTC)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or date-time "
                                         "(e.g. 2026-01-05 or 2026-01-05T14:30)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--speed must be a number (times real time) or max, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--speed must be > 0, got {text!r}")
    return value


def _iso(ns: int | None) -> str:
    return "-" if ns is None else datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _not_up(exc: BaseException) -> bool:
    """Whether ``exc`` means a service did not answer (exit 3), not a failure of the replay."""
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    return bool(names & {"NoBrokersAvailable", "OperationalError", "ConnectionError", "TTransportException",
                         "ConnectionRefusedError", "KafkaTimeoutError", "NewConnectionError"})


def _default_topics(cfg, args) -> list[str]:
    t = cfg.ingest.topics
    if args.target == "engine":
        return [t.quotes if args.mode == "quotes" else t.trades]
    return [t.trades, t.quotes]


def cmd_replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ingestion.landing import topic_specs
    from ingestion.replay import Pacer, RawReplay, ReplayError
    from tradelake.lakefs import lake_fs

    cfg = load_config(args.profile)
    if args.end <= args.start:
        _say("error: --to must be after --from")
        return EXIT_USAGE
    topics = [t.strip() for t in args.topics.split(",")] if args.topics else _default_topics(cfg, args)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()] if args.symbols else None
    try:
        specs = [s for s in topic_specs(cfg, topics) if s.zone == cfg.lander.raw_zone]
        target = _build_target(cfg, args, specs)
    except (ValueError, LookupError) as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    except Exception as exc:
        if _not_up(exc):
            _say(f"error: {args.target} is not reachable ({type(exc).__name__}: {exc}); is the stack up?")
            return EXIT_NOT_UP
        if type(exc).__name__ == "RebuildRefused":
            _say(f"error: {exc}")
            return EXIT_USAGE
        raise
    pacer = Pacer(args.speed)
    _say(f"replay {', '.join(s.topic for s in specs)} {_iso(args.start)} .. {_iso(args.end)} from "
         f"{cfg.lake.root}/{cfg.lander.raw_zone} -> {target.describe()} at speed {args.speed or 'max'}")
    bar = tqdm(unit=" events", unit_scale=True, desc=f"replay -> {args.target}", file=sys.stderr,
               disable=args.quiet)
    replay = RawReplay(lake_fs(cfg), specs, args.start, args.end, symbols=symbols,
                       batch_events=args.batch_events, lookback_days=args.lookback_days,
                       max_span_ns=pacer.span_ns(),
                       on_day=lambda dt, st: bar.set_postfix(dt=dt, files=st.files, refresh=False))
    started = time.monotonic()
    try:
        def batches():
            for batch in replay.batches():
                pacer.wait(int(batch.ts[0]))
                yield batch
                bar.update(len(batch))
        target.run(batches())
        result = target.finish(replay.stats)
    except BaseException as exc:
        target.close()
        if isinstance(exc, KeyboardInterrupt):
            _say("interrupted")
            return 130
        if _not_up(exc):
            _say(f"error: a service stopped answering ({type(exc).__name__}: {exc})")
            return EXIT_NOT_UP
        if isinstance(exc, ReplayError) or type(exc).__name__ in ("StoreRuleViolation", "BulkLoadError"):
            _say(f"error: {exc}")
            return EXIT_FAILED
        raise
    finally:
        bar.close()
    seconds = time.monotonic() - started
    stats = replay.stats
    ok = stats.reconciles() and result.pop("reconciled")
    summary = {"target": args.target, **stats.as_dict(), **result, "seconds": round(seconds, 3),
               "events_per_s": round(stats.rows_emitted / seconds) if seconds else None,
               "paced_sleep_s": round(pacer.slept, 3)}
    _say(f"read {stats.rows_read:,} = {target.delivered_words(stats)} + filtered by time "
         f"{stats.filtered_time:,} + filtered by symbol {stats.filtered_symbol:,} "
         f"({'reconciled' if ok else 'NOT RECONCILED'}); {stats.files} files, {stats.days} day(s), "
         f"{_iso(stats.first_ts)} .. {_iso(stats.last_ts)}, {seconds:.2f}s")
    for line in target.report_lines():
        _say("  " + line)
    summary["reconciled"] = ok
    print(json.dumps(summary, default=str))
    return EXIT_OK if ok else EXIT_FAILED


def _build_target(cfg, args, specs):
    if args.target == "kafka":
        from ingestion.replay_targets import KafkaReplay

        return KafkaReplay(cfg, specs, args.kafka_topic)
    if args.target == "ods":
        from ingestion.replay_targets import OdsReplay

        return OdsReplay(cfg, specs, args.wipe)
    from ingestion.replay_targets import EngineReplay

    return EngineReplay(cfg, specs, args.strategy, args.mode, args.interval,
                        [s.strip() for s in args.symbols.split(",")] if args.symbols else None,
                        Path(args.decisions) if args.decisions else None)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay", help="disaster-recovery replay of the raw zone into Kafka, the ODS or the engine",
        description="Reads the lake's raw zone (every landed file of the topics, partitions and days "
                    "in range) in event-time order, deterministically: ties broken by topic kind, "
                    "symbol, seq, then Kafka partition and offset. --target kafka re-publishes to a "
                    "topic of your naming; ods rebuilds the operational store's market data from "
                    "scratch on its bulk write path; engine runs a strategy over the replayed ticks "
                    "exactly as the live router builds them. Ends with a reconciled summary "
                    "(read = delivered + filtered by time + filtered by symbol). Times are ISO dates "
                    "or date-times, UTC unless they carry an offset; the range is [--from, --to). "
                    "Exit 0 ok, 1 failed, 2 usage, 3 a service is not up.")
    p.add_argument("--from", dest="start", type=_ns, required=True, help="first event time included")
    p.add_argument("--to", dest="end", type=_ns, required=True, help="events before this time")
    p.add_argument("--target", choices=["kafka", "ods", "engine"], required=True)
    p.add_argument("--symbols", help="comma-separated symbols (default: all)")
    p.add_argument("--topics", help="comma-separated landed topics (default: ingest.topics trades and "
                                    "quotes; engine: the one its --mode reads)")
    p.add_argument("--speed", type=_speed, default=None,
                   help="N: pace by event time at N x real time (gaps over an hour are skipped); "
                        "max: unpaced (default)")
    p.add_argument("--kafka-topic", default="replay.{topic}",
                   help="kafka: topic to publish to; {topic} is replaced by the source topic "
                        "(default replay.{topic}; required in the name when several topics replay)")
    p.add_argument("--wipe", action="store_true",
                   help="ods: drop the store (ods.store, ods.schema / hbase.table_prefix) first if it "
                        "holds market data (without it such a store is refused, exit 2)")
    p.add_argument("--strategy", default="mean_reversion",
                   help="engine: strategy (conf: intelligence.*), as for tradelake route")
    p.add_argument("--mode", choices=["bars", "quotes"], default="bars",
                   help="engine: bars built from trades (default) or quotes as events")
    p.add_argument("--interval", default="1m", help="engine: bar interval (default 1m)")
    p.add_argument("--decisions", help="engine: write the decision log (signals and orders) as JSON lines")
    p.add_argument("--batch-events", type=int, default=65_536, help="events per batch (default 65536)")
    p.add_argument("--lookback-days", type=int, default=1,
                   help="also read this many dt folders before --from (messages landed under the "
                        "date of their first row; default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_replay)
