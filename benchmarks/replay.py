"""DR replay benchmark: read the raw zone in event-time order, re-publish it to Kafka, rebuild the ODS.

    .venv/bin/python benchmarks/replay.py [--symbols 10] [--days 2] [--trades-per-day 25000]

On the running stack, with scratch names only (topics ``rb.<run>.*``, raw zone
``scratch/rb_<run>/raw``, ODS schemas ``rb_<run>*``; all removed at the end):

1. simulator ticks (1 trade : 3 quotes) are published by the ingestion publisher (timed: the Kafka
   baseline) and landed on HDFS by the real lake lander;
2. the same messages, consumed in arrival order, build the "live" ODS through the store's own
   write path (``ingest_ts`` = broker time, as the speed layer writes it);
3. read: ``RawReplay`` over the whole range, batches consumed and dropped: events/s, against a
   baseline that only reads the same files with pyarrow (no merge, no order);
4. kafka: replay -> ``KafkaTarget`` into new topics, until every message is acknowledged;
5. ods: replay -> ``ods.rebuild`` (validation, then ``ods.bulk_load``: COPY into the emptied
   tick tables, two connections, keys rebuilt at the end) into a fresh schema; baseline: a plain
   COPY of the same rows into tables without key, trigger or index. ``checksums_match``: the
   rebuilt store's per-table checksums equal the live store's.

Prints the JSON last and writes benchmarks/results/replay.json:
{"events", "read_events_per_s", "kafka_events_per_s", "ods_rebuild_rows_per_s", "checksums_match", ...}
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingestion.landing import topic_specs  # noqa: E402
from ingestion.publisher import TickPublisher  # noqa: E402
from ingestion.replay import KafkaTarget, RawReplay, day_start_ns  # noqa: E402
from ingestion.simulator import MarketSimulator, SimulatorConfig  # noqa: E402
from ods.bulk_load import PostgresBulkLoad  # noqa: E402
from ods.checksum import MARKET_TABLES, store_checksums  # noqa: E402
from ods.postgres import PostgresStore  # noqa: E402
from ods.rebuild import OdsRebuild  # noqa: E402
from tests.support.scratch import cleanup, consume_all, land_all, scratch_env  # noqa: E402
from tradelake.config import load_config  # noqa: E402
from tradelake.lakefs import lake_fs  # noqa: E402

SYMBOLS = ("AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "TSLA", "JPM", "XOM", "UNH")
TARGETS = {"read_events_per_s": 2_000_000, "kafka_events_per_s": 500_000, "ods_rebuild_rows_per_s": 200_000}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def simulate(symbols: int, days: int, per_day: int) -> list[tuple[str, pa.RecordBatch]]:
    """The simulator's batches in feed order: day by day, time slice by time slice."""
    sim = MarketSimulator(SimulatorConfig(symbols=SYMBOLS[:symbols], seed=11, start_date=date(2026, 1, 5),
                                          days=days, trades_per_symbol_per_day=per_day))
    return list(sim.batches(by_symbol=True))


def by_kind(feed: list[tuple[str, pa.RecordBatch]]) -> dict[str, pa.Table]:
    parts: dict[str, list] = defaultdict(list)
    for kind, batch in feed:
        parts[kind].append(batch)
    return {kind: pa.Table.from_batches(b) for kind, b in parts.items()}


def publish(cfg, feed: list[tuple[str, pa.RecordBatch]]) -> float:
    """The ingestion publisher on the same events (the Kafka baseline); seconds until all acked.
    Published in feed order, as ``tradelake ingest`` does, so the lander's files are those of a
    feed (one day after the other), not of one symbol's whole range after another's."""
    publisher = TickPublisher(cfg.kafka.bootstrap, cfg.ingest.ticks_per_message,
                              wire_compression=cfg.ingest.wire_compression)
    topics = {"trade": cfg.ingest.topics.trades, "quote": cfg.ingest.topics.quotes}
    started = time.perf_counter()
    for kind, batch in feed:
        publisher.publish(topics[kind], kind, batch)
    publisher.flush()
    seconds = time.perf_counter() - started
    publisher.close()
    return seconds


def live_ods(cfg, schema: str) -> dict:
    """The live-built ODS: each topic's messages in arrival order, a few per write (a poll)."""
    store = PostgresStore(cfg, schema=schema)
    store.ensure_schema()
    started = time.perf_counter()
    for kind, topic in (("trade", cfg.ingest.topics.trades), ("quote", cfg.ingest.topics.quotes)):
        messages = [t.set_column(t.schema.get_field_index("ingest_ts"), "ingest_ts",
                                 pa.array([stamp * 1_000_000] * t.num_rows, pa.int64()))
                    for _, t, _, stamp in consume_all(cfg, topic, timeout_s=600)]
        for i in range(0, len(messages), 25):
            write = store.write_trades if kind == "trade" else store.write_quotes
            write(pa.concat_tables(messages[i:i + 25]))
    seconds = time.perf_counter() - started
    sums = store_checksums(store, MARKET_TABLES)
    store.close()
    return {"seconds": seconds, "checksums": sums}


def replay_reader(cfg, specs, start: int, end: int) -> RawReplay:
    return RawReplay(lake_fs(cfg), specs, start, end, batch_events=65_536)


def baseline_read(cfg, specs, start: int, end: int) -> tuple[int, float]:
    """Plain pyarrow: every landed file of the range read through the same LakeFS, no order."""
    fs = lake_fs(cfg)
    plan = replay_reader(cfg, specs, start, end).plan()
    started = time.perf_counter()
    rows = 0
    for _, files in plan:
        for _, path in files:
            rows += pq.read_table(io.BytesIO(fs.read_bytes(path))).num_rows
    return rows, time.perf_counter() - started


def copy_baseline(cfg, schema: str, ticks: dict[str, pa.Table]) -> float:
    """COPY of the same rows (CSV written by Arrow, as the store does) into key-less tables."""
    import psycopg2
    import pyarrow.csv as pacsv

    conn = psycopg2.connect(cfg.postgres.dsn(), options=f"-c search_path={schema}")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{schema}"')
            cur.execute("CREATE TABLE trades (ts BIGINT, symbol TEXT, price DOUBLE PRECISION, "
                        "size DOUBLE PRECISION, trade_id TEXT, exchange TEXT, seq BIGINT, side TEXT, "
                        "conditions TEXT, ingest_ts BIGINT)")
            cur.execute("CREATE TABLE quotes (ts BIGINT, symbol TEXT, bid_price DOUBLE PRECISION, "
                        "bid_size DOUBLE PRECISION, ask_price DOUBLE PRECISION, ask_size DOUBLE PRECISION, "
                        "exchange TEXT, seq BIGINT, ingest_ts BIGINT)")
        started = time.perf_counter()
        for kind, table in (("trades", ticks["trade"]), ("quotes", ticks["quote"])):
            for i in range(0, table.num_rows, 65_536):
                buffer = io.BytesIO()
                pacsv.write_csv(table.slice(i, 65_536), buffer, pacsv.WriteOptions(include_header=False))
                buffer.seek(0)
                with conn, conn.cursor() as cur:
                    cur.copy_expert(f"COPY {kind} FROM STDIN WITH (FORMAT csv)", buffer)
        return time.perf_counter() - started
    finally:
        with conn, conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--trades-per-day", type=int, default=25_000,
                        help="per symbol (x4 events with quotes)")
    args = parser.parse_args()
    run = os.urandom(4).hex()
    env = scratch_env(run, prefix="rb")
    # land with the profile's roll (lander.roll_seconds), as production fills the raw zone, not
    # with the tests' 2-second roll, which splits the same events into several times more files
    del env["TRADELAKE_LANDER__ROLL_SECONDS"]
    cfg = load_config("local", env={**os.environ, **env})
    load = os.getloadavg()
    try:
        feed = simulate(args.symbols, args.days, args.trades_per_day)
        ticks = by_kind(feed)
        events = sum(t.num_rows for t in ticks.values())
        publish_s = publish(cfg, feed)
        say(f"published {events:,} events with the ingestion publisher in {publish_s:.2f}s "
            f"({events / publish_s:,.0f}/s)")
        landed = land_all(cfg, [cfg.ingest.topics.trades, cfg.ingest.topics.quotes])
        say(f"landed {landed['rows']:,} rows in {landed['files']} files")
        live = live_ods(cfg, f"rb_{run}_live")
        say(f"live-built ODS: {events:,} rows through write_trades/write_quotes in {live['seconds']:.1f}s")

        specs = [s for s in topic_specs(cfg, [cfg.ingest.topics.trades, cfg.ingest.topics.quotes])]
        start = day_start_ns(date(2026, 1, 5))
        end = start + args.days * 86_400 * 10**9 + 7 * 86_400 * 10**9  # covers weekends
        base_rows, base_s = baseline_read(cfg, specs, start, end)
        reader = replay_reader(cfg, specs, start, end)
        started = time.perf_counter()
        read = sum(len(b) for b in reader.batches())
        read_s = time.perf_counter() - started
        say(f"read: {read:,} events in event-time order in {read_s:.2f}s ({read / read_s:,.0f}/s); "
            f"baseline plain pyarrow read of the {reader.stats.files} files: {base_rows / base_s:,.0f}/s")

        topic_map = {s.topic: f"rb.{run}.re.{s.topic}" for s in specs}
        target = KafkaTarget(cfg.kafka.bootstrap, specs, topic_map,
                             ticks_per_message=cfg.ingest.ticks_per_message,
                             wire_compression=cfg.ingest.wire_compression)
        reader = replay_reader(cfg, specs, start, end)
        started = time.perf_counter()
        for batch in reader.batches():
            target.write(batch)
        published = target.close()
        kafka_s = time.perf_counter() - started
        say(f"kafka: {published:,} events re-published and acknowledged in {kafka_s:.2f}s "
            f"({published / kafka_s:,.0f}/s); ingestion publisher baseline {events / publish_s:,.0f}/s")

        store = PostgresStore(cfg, schema=f"rb_{run}_rebuilt")
        store.ensure_schema()
        bulk = PostgresBulkLoad(cfg, store.schema)  # what `tradelake replay --target ods` does
        bulk.begin()
        rebuild = OdsRebuild(cfg, specs, {"trade": bulk.writer("trades"), "quote": bulk.writer("quotes")},
                             parallel=True)
        reader = replay_reader(cfg, specs, start, end)
        started = time.perf_counter()
        for batch in reader.batches():
            rebuild.write(batch)
        streamed = time.perf_counter()
        rebuild.finish()
        finished = time.perf_counter()
        bulk.end()
        ods_s = time.perf_counter() - started
        phases = {"read_validate_s": round(streamed - started, 3),
                  "drain_writes_s": round(finished - streamed, 3),
                  "keys_and_views_s": round(ods_s - (finished - started), 3)}
        bulk.close()
        written = sum(rebuild.stats.written.values())
        rebuilt = store_checksums(store, MARKET_TABLES)
        store.close()
        copy_s = copy_baseline(cfg, f"rb_{run}_copy", ticks)
        match = rebuilt == live["checksums"]
        say(f"ods: {written:,} rows rebuilt in {ods_s:.2f}s ({written / ods_s:,.0f}/s; writes "
            f"{rebuild.stats.write_seconds:.2f}s; phases {phases}); "
            f"plain COPY baseline {events / copy_s:,.0f}/s; "
            f"checksums match the live-built ODS: {match}")
        result = {
            "events": events, "files": reader.stats.files, "bytes": reader.stats.bytes,
            "read_events_per_s": round(read / read_s), "kafka_events_per_s": round(published / kafka_s),
            "ods_rebuild_rows_per_s": round(written / ods_s), "checksums_match": match,
            "baseline_pyarrow_read_events_per_s": round(base_rows / base_s),
            "read_over_baseline": round(base_s / read_s * read / base_rows, 3),
            "baseline_ingest_publisher_events_per_s": round(events / publish_s),
            "kafka_over_baseline": round(publish_s / kafka_s * published / events, 3),
            "baseline_copy_rows_per_s": round(events / copy_s),
            "ods_over_baseline": round(copy_s / ods_s * written / events, 3),
            "live_ods_rows_per_s": round(events / live["seconds"]),
            "read_seconds": round(read_s, 3), "kafka_seconds": round(kafka_s, 3),
            "ods_seconds": round(ods_s, 3),
            "ods_write_seconds": round(rebuild.stats.write_seconds, 3), "ods_phases": phases,
            "targets": TARGETS, "load_average_at_start": [round(x, 2) for x in load],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "checksums": {t: c.as_dict() for t, c in rebuilt.items()},
        }
    finally:
        cleanup(cfg, run, prefix="rb")
    out = ROOT / "benchmarks" / "results" / "replay.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0 if match else 1


if __name__ == "__main__":
    sys.exit(main())
