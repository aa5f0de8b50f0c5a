"""Disaster-recovery drill on the real stack, with scratch names throughout.

1. Live pipeline: simulator ticks (plus re-sent copies and one negative price) -> Kafka -> the lake
   lander (raw zone on HDFS) and, at the same time, the speed layer (spark-submit, ODS in
   PostgreSQL + real-time Hive tables); the HBase ODS is built live from the same topics through
   its own write path, validated as the speed layer validates.
2. Checksums of everything derived: both ODS (``ods.checksum``), the real-time Hive tables and
   the speed layer's quarantine (rows read through the Thrift server, hashed the same way).
3. Disaster: the PostgreSQL schema, the HBase tables, the derived Hive tables (their metastore
   entries and their lake folders) and the speed layer's checkpoint are wiped.
4. Recovery from the raw zone alone: ``tradelake replay --target ods`` for each store, and
   ``tradelake replay --target kafka`` into new topics that a fresh speed layer turns back into
   the Hive tables.
5. Every checksum equals its live value.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections import Counter, defaultdict
from datetime import date

import pyarrow as pa

from ingestion.publisher import TickPublisher
from ingestion.simulator import MarketSimulator, SimulatorConfig
from ods.checksum import MARKET_TABLES, TABLES, checksum_rows, store_checksums
from tests.support.scratch import consume_all, land_all, scratch_profile
from tradelake.cli import main
from tradelake.config import PROJECT_ROOT, Config, load_config
from tradelake.lakefs import lake_fs
from tradelake.spark import spark_submit_command

SYMBOLS = ("AAPL", "MSFT", "NVDA")
SPEED_JOB = PROJECT_ROOT / "spark_jobs" / "speed_layer.py"


def publish_live(cfg: Config) -> dict[str, int]:
    sim = MarketSimulator(SimulatorConfig(symbols=SYMBOLS, seed=31, start_date=date(2026, 1, 5),
                                          trades_per_symbol_per_day=1000, quotes_per_trade=2.0))
    publisher = TickPublisher(cfg.kafka.bootstrap, ticks_per_message=100)
    topics = {"trade": cfg.ingest.topics.trades, "quote": cfg.ingest.topics.quotes}
    sent: dict[str, list] = defaultdict(list)
    for kind, batch in sim.batches(by_symbol=True):
        publisher.publish(topics[kind], kind, batch)
        sent[kind].append(batch)
    trades = pa.Table.from_batches(sent["trade"])
    publisher.publish(topics["trade"], "trade", trades.slice(500, 30))  # a producer re-sending
    bad = trades.slice(0, 1).to_pylist()[0] | {"seq": 10**9, "price": -1.0}
    publisher.publish(topics["trade"], "trade", pa.Table.from_pylist([bad], schema=trades.schema))
    publisher.flush()
    publisher.close()
    return {"trade": trades.num_rows, "quote": sum(b.num_rows for b in sent["quote"])}


def run_speed_layer(cfg: Config, env: dict[str, str]) -> dict:
    """spark-submit the speed layer over everything in its topics (--available-now); its summary."""
    argv, full_env = spark_submit_command(cfg, SPEED_JOB, ["--mode", "single", "--available-now",
                                                           "--max-offsets", "60"],
                                          {**env, "TRADELAKE_PROFILE": "local"})
    proc = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=600)
    lines = proc.stdout.splitlines()
    result = next((json.loads(ln.split(" ", 1)[1]) for ln in lines if ln.startswith("SPEED_RESULT ")),
                  None)
    assert proc.returncode == 0 and result, "\n".join(lines[-20:] + proc.stderr.splitlines()[-30:])
    return result


def hbase_live_build(cfg: Config) -> None:
    """The HBase ODS fed live: each Kafka message as it arrived, through the ingestion validator
    (clock = broker time, ``ingest_ts`` = broker time, as the speed layer does), then the store."""
    from hbase.store import HBaseStore
    from ingestion.pipeline import session_calendar
    from ingestion.validation import Validator

    store = HBaseStore(cfg)
    store.ensure_schema()
    try:
        for kind, topic in (("trade", cfg.ingest.topics.trades), ("quote", cfg.ingest.topics.quotes)):
            now = [0]
            validator = Validator(source=topic, sessions=session_calendar(cfg.ingest.sessions),
                                  max_clock_skew_ns=cfg.ingest.max_clock_skew_s * 10**9,
                                  now_ns=lambda n=now: n[0])
            for _, table, _, stamp in consume_all(cfg, topic):
                now[0] = stamp * 1_000_000
                table = table.set_column(table.schema.get_field_index("ingest_ts"), "ingest_ts",
                                         pa.array([now[0]] * table.num_rows, pa.int64()))
                accepted = validator.validate(kind, table).accepted
                (store.write_trades if kind == "trade" else store.write_quotes)(accepted)
    finally:
        store.close()


def derived_checksums(cfg: Config, thrift_query) -> dict:
    """Checksums of both ODS and of the speed layer's Hive tables (data columns, not partitions)."""
    from hbase.store import HBaseStore
    from ods.postgres import PostgresStore

    out = {}
    for name, store in (("postgres", PostgresStore(cfg)), ("hbase", HBaseStore(cfg))):
        try:
            out[name] = store_checksums(store, MARKET_TABLES)
        finally:
            store.close()
    db = cfg.warehouse.curated_db
    for ods_table, rt in (("trades", cfg.speed.realtime_trades_table),
                          ("quotes", cfg.speed.realtime_quotes_table)):
        spec = TABLES[ods_table]
        rows = thrift_query(f"SELECT {', '.join(c for c, _ in spec.columns)} FROM {db}.{rt}")
        out[f"hive.{rt}"] = checksum_rows(rows, spec.kinds)
    out["hive.speed_quarantine"] = Counter(dict(thrift_query(
        f"SELECT reason, count(*) FROM {cfg.warehouse.raw_db}.speed_quarantine GROUP BY reason")))
    return out


def wipe(cfg: Config, thrift_query) -> None:
    from hbase.store import HBaseStore
    from intelligence.sources import table_location
    from ods.postgres import PostgresStore

    for store in (PostgresStore(cfg), HBaseStore(cfg)):
        store.drop()
        store.close()
    fs = lake_fs(cfg)
    for table in (f"{cfg.warehouse.curated_db}.{cfg.speed.realtime_trades_table}",
                  f"{cfg.warehouse.curated_db}.{cfg.speed.realtime_quotes_table}",
                  f"{cfg.warehouse.raw_db}.speed_quarantine"):
        folder = table_location(cfg, table)
        thrift_query(f"DROP TABLE IF EXISTS {table}")
        assert "it_" in folder, f"{folder} is not a scratch folder"  # never a shared path
        if fs.exists(folder):
            fs.delete(folder, recursive=True)
    fs.delete(cfg.speed.checkpoint_dir, recursive=True)


@contextlib.contextmanager
def environ(env: dict[str, str]):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def replay_cli(env: dict[str, str], *args: str) -> int:
    with environ(env):
        return main(["replay", "--from", "2026-01-05", "--to", "2026-01-06", "-q", *args])


def test_wipe_everything_derived_and_rebuild_it_from_the_raw_zone(stack, scratch_warehouse, thrift_query,
                                                                   capsys):
    started = time.monotonic()
    _, warehouse_env = scratch_warehouse
    with scratch_profile(warehouse_env) as (cfg, env, run):
        env |= {"TRADELAKE_SPEED__CHECKPOINT_DIR": f"scratch/it_{run}/checkpoints/speed",
                "TRADELAKE_SPEED__STARTING_OFFSETS": "earliest"}
        cfg = load_config("local", env={**os.environ, **env})
        sent = publish_live(cfg)

        # 1. the live pipeline: the speed layer (a spark-submit) while the lander lands the topics
        speed: dict = {}
        job = threading.Thread(target=lambda: speed.update(run_speed_layer(cfg, env)))
        job.start()
        landed = land_all(cfg, [cfg.ingest.topics.trades, cfg.ingest.topics.quotes])
        hbase_live_build(cfg)
        job.join(600)
        assert speed["reconciled"], speed
        assert landed["rows"] == sent["trade"] + sent["quote"] + 31
        live = derived_checksums(cfg, thrift_query)
        assert live["postgres"]["trades"].rows == sent["trade"] == live["hive.rt_trades"].rows
        assert live["hive.speed_quarantine"] == {"duplicate": 30, "non_positive_price": 1}
        phases = {"live": time.monotonic() - started}

        # 2. the disaster
        wipe(cfg, thrift_query)
        assert thrift_query(f"SHOW TABLES IN {cfg.warehouse.curated_db}") == []

        # 3. recovery from the raw zone on HDFS alone: Kafka first, so the speed layer rebuilding the
        # Hive tables runs while the two stores are rebuilt
        assert replay_cli(env, "--target", "kafka", "--kafka-topic", f"it.{run}.dr.{{topic}}") == 0
        replayed = env | {"TRADELAKE_INGEST__TOPICS__TRADES": f"it.{run}.dr.{cfg.ingest.topics.trades}",
                          "TRADELAKE_INGEST__TOPICS__QUOTES": f"it.{run}.dr.{cfg.ingest.topics.quotes}",
                          "TRADELAKE_ODS__SCHEMA": f"it_{run}_spill"}  # the ODS is the replay's to rebuild
        again: dict = {}
        job = threading.Thread(target=lambda: again.update(run_speed_layer(cfg, replayed)))
        job.start()
        assert replay_cli(env, "--target", "ods") == 0
        assert replay_cli(env | {"TRADELAKE_ODS__STORE": "hbase"}, "--target", "ods") == 0
        phases["replays"] = time.monotonic() - started
        job.join(600)
        assert again["reconciled"], again
        capsys.readouterr()

        # 4. everything derived is back, identical
        rebuilt = derived_checksums(cfg, thrift_query)
        assert rebuilt == live
        phases["all"] = time.monotonic() - started
        print(f"\ndrill: {landed['rows']} rows landed; "
              + ", ".join(f"{k} at {v:.0f}s" for k, v in phases.items())
              + "; identical: " + ", ".join(f"{k} {v}" for k, v in sorted(rebuilt.items())))
