"""Ingest benchmark: simulator -> validation -> Kafka -> lander -> raw Parquet on HDFS.

    .venv/bin/python benchmarks/ingest.py [--ticks 5000000]

Runs on the local stack (started if it is not up). The lander runs as its own process
(``tradelake land``) on fresh topics while this process generates, validates and publishes,
as in production. End-to-end time runs from the first tick generated to the commit of the
last landed file. Afterwards every landed row is read back from HDFS and checked: each
symbol's feed sequence 1..n must appear exactly once (duplicates = missing = 0).

Baseline, measured in the same run on the same topics: a bare kafka-python loop that reads
the messages, decodes them and writes one Parquet file to local disk, with no validation,
no exactly-once protocol and no HDFS. ``ratio`` = end-to-end ticks/s / baseline ticks/s.
Prints the JSON last and writes benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingestion import wire  # noqa: E402
from ingestion.pipeline import make_validator, publish_batches  # noqa: E402
from ingestion.publisher import TickPublisher  # noqa: E402
from ingestion.simulator import MarketSimulator, SimulatorConfig  # noqa: E402
from tradelake.config import load_config  # noqa: E402
from tradelake.lakefs import lake_fs  # noqa: E402
from tradelake.stack.kafka import delete_topics  # noqa: E402
from tradelake.stack.manager import Stack  # noqa: E402

SYMBOLS = ("AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "TSLA", "JPM", "XOM", "UNH")


def landed_seq_check(fs, zone: str, topics: list[str], expected: dict[str, int]) -> dict:
    parts = []
    for topic in topics:
        for folder in fs.list(f"{zone}/{topic}"):
            if folder.startswith("dt="):
                for name in fs.list(f"{zone}/{topic}/{folder}"):
                    data = fs.read_bytes(f"{zone}/{topic}/{folder}/{name}")
                    parts.append(pq.read_table(pa.BufferReader(data), columns=["symbol", "seq"]))
    table = pa.concat_tables(parts)
    duplicates = missing = 0
    for symbol, n in expected.items():
        seqs = table.filter(pa.compute.equal(table["symbol"], symbol))["seq"].to_numpy()
        counts = np.bincount(seqs, minlength=n + 1)[1:n + 1]
        duplicates += int((counts[counts > 1] - 1).sum())
        missing += int((counts == 0).sum())
        duplicates += int((seqs > n).sum() + (seqs < 1).sum())
    return {"landed": table.num_rows, "duplicates": duplicates, "missing": missing}


def baseline(cfg, topics: list[str], total: int) -> float:
    """Bare consume + decode + one local Parquet file per schema, same messages."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(*topics, bootstrap_servers=cfg.kafka.bootstrap,
                             group_id=f"bench-baseline-{uuid.uuid4().hex[:6]}",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20)
    rows, tables, started = 0, [], time.monotonic()
    while rows < total and time.monotonic() - started < 300:
        for records in consumer.poll(timeout_ms=500, max_records=2000).values():
            for msg in records:
                table = wire.decode(msg.value)
                tables.append(table)
                rows += table.num_rows
    by_schema: dict[tuple, list[pa.Table]] = {}
    for table in tables:
        by_schema.setdefault(tuple(table.schema.names), []).append(table)
    with tempfile.TemporaryDirectory() as tmp:
        for i, group in enumerate(by_schema.values()):
            pq.write_table(pa.concat_tables(group), f"{tmp}/baseline{i}.parquet", compression="zstd")
    seconds = time.monotonic() - started
    consumer.close()
    return rows / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=5_000_000,
                        help="approximate ticks (long enough to amortise the last file's fixed delay)")
    parser.add_argument("--roll-seconds", type=int, default=1,
                        help="lander time-based roll (bounds the landing delay)")
    args = parser.parse_args()
    cfg = load_config()
    stack = Stack(cfg)
    if not all(e["up"] for e in stack.status().values() if isinstance(e, dict)):
        print("starting the local stack ...", file=sys.stderr)
        stack.up()

    run = uuid.uuid4().hex[:8]
    topics = {"trades": f"bench.{run}.trades", "quotes": f"bench.{run}.quotes",
              "quarantine": f"bench.{run}.quarantine"}
    try:
        return run_benchmark(cfg, args, run, topics)
    finally:
        delete_topics(cfg.kafka.bootstrap, list(topics.values()))


def run_benchmark(cfg, args: argparse.Namespace, run: str, topics: dict[str, str]) -> int:
    env = {**os.environ, "TRADELAKE_INGEST__TOPICS__TRADES": topics["trades"],
           "TRADELAKE_INGEST__TOPICS__QUOTES": topics["quotes"],
           "TRADELAKE_INGEST__TOPICS__QUARANTINE": topics["quarantine"],
           "TRADELAKE_LANDER__GROUP_ID": f"bench-{run}",
           "TRADELAKE_LANDER__REGISTER_PARTITIONS": "false",
           "TRADELAKE_LANDER__ROLL_SECONDS": str(args.roll_seconds)}
    bench_cfg = load_config(env=env)
    per_day = max(1, args.ticks // (len(SYMBOLS) * 4))  # 1 trade : 3 quotes
    sim = MarketSimulator(SimulatorConfig(symbols=SYMBOLS, seed=11, start_date=date(2026, 1, 5),
                                          days=1, trades_per_symbol_per_day=per_day))
    total = sim.total_ticks()
    # create the topics before the lander subscribes, so it is assigned at once
    publisher = TickPublisher(cfg.kafka.bootstrap, cfg.ingest.ticks_per_message,
                              wire_compression=cfg.ingest.wire_compression)
    for name in topics.values():
        publisher.producer.partitions_for(name)
    lander_log = ROOT / "var" / "log" / "bench-lander.log"
    with open(lander_log, "w") as log_handle:
        lander = subprocess.Popen(
            [sys.executable, "-m", "tradelake.cli", "land", "-q", "--idle-exit", "6",
             "--max-seconds", "900", "--topics", ",".join(topics.values())],
            env=env, stdout=subprocess.PIPE, stderr=log_handle, text=True)
        time.sleep(4)  # the lander joins its group before the clock starts

        started_wall = time.time()
        report = publish_batches(bench_cfg, sim.batches(by_symbol=True),
                                 make_validator(bench_cfg.ingest, "bench"), publisher)
        publisher.close()
        out, _ = lander.communicate(timeout=960)
    if lander.returncode != 0:
        print(f"lander failed (exit {lander.returncode}); see {lander_log}", file=sys.stderr)
        return 1
    landed_summary = json.loads(out.strip().splitlines()[-1])
    seconds = landed_summary["last_landed_at"] - started_wall

    check = landed_seq_check(lake_fs(cfg), cfg.lander.raw_zone,
                             [topics["trades"], topics["quotes"]],
                             {s: sim.cfg.events_per_symbol_per_day for s in SYMBOLS})
    base = baseline(cfg, [topics["trades"], topics["quotes"]], total)
    e2e = total / seconds
    result = {
        "ticks": total, "seconds": round(seconds, 3), "ticks_per_s": round(e2e),
        "landed": check["landed"], "duplicates": check["duplicates"], "missing": check["missing"],
        "p50_land_delay_ms": round(landed_summary["p50_land_delay_ms"], 1),
        "p99_land_delay_ms": round(landed_summary["p99_land_delay_ms"], 1),
        "publish_ticks_per_s": round(total / report.seconds),
        "timeline_s": {"first_message_landing": round(landed_summary["first_message_at"] - started_wall,
                                                      3),
                       "publish_done": round(report.seconds, 3),
                       "last_file_landed": round(seconds, 3)},
        "files": landed_summary["files"], "reconciled": report.counts.reconciles(),
        "baseline": "bare kafka-python consume + Arrow decode + local Parquet, same topics",
        "baseline_ticks_per_s": round(base), "ratio": round(e2e / base, 3),
    }
    lake = lake_fs(cfg)
    for name in topics.values():
        lake.delete(f"{cfg.lander.raw_zone}/{name}", recursive=True)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0 if check["duplicates"] == check["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
