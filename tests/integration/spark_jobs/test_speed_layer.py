"""The speed layer on the real stack: simulator ticks (plus re-sent copies, one undecodable message
and one bad trade) on scratch topics -> ``spark-submit spark_jobs/speed_layer.py`` killed with
SIGKILL in the middle of a micro-batch -> restarted from its checkpoint -> every distinct tick
exactly once in the ODS (a scratch PostgreSQL schema) and in the real-time Hive tables (a scratch
warehouse, read through the Thrift server as an analyst would), every reject exactly once in the
quarantine table, and the ODS's 1-minute bars equal to a plain-Python recomputation; a new
checkpoint over the tables that now hold batches is refused (exit 2).

The feed is small (about 50 Kafka messages, 15 per micro-batch: four batches, one committed before
the kill, one in flight, and more after it), since every micro-batch costs seconds of Hive writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from datetime import date
from fractions import Fraction

import pyarrow as pa
import pytest

from ingestion.publisher import TickPublisher
from ingestion.simulator import MarketSimulator, SimulatorConfig
from tradelake.config import PROJECT_ROOT, Config, load_config
from tradelake.lakefs import lake_fs
from tradelake.spark import spark_submit_command

SYMBOLS = ("AAPL", "MSFT", "NVDA", "XOM")
MINUTE = 60 * 10**9
JOB = PROJECT_ROOT / "spark_jobs" / "speed_layer.py"


@pytest.fixture
def speed_env(scratch_warehouse, spark_submit_env):
    """A profile of the test's own: topics, ODS schema, warehouse, checkpoint; all removed after."""
    from kafka.admin import KafkaAdminClient

    from ods.store import open_store

    scratch, env = scratch_warehouse
    run = uuid.uuid4().hex[:8]
    env = {**env, "TRADELAKE_INGEST__TOPICS__TRADES": f"it.{run}.trades",
           "TRADELAKE_INGEST__TOPICS__QUOTES": f"it.{run}.quotes",
           "TRADELAKE_INGEST__TOPICS__QUARANTINE": f"it.{run}.quarantine",
           "TRADELAKE_ODS__SCHEMA": f"it_{run}",
           "TRADELAKE_SPEED__CHECKPOINT_DIR": f"checkpoints/it_{run}",
           "TRADELAKE_SPEED__STARTING_OFFSETS": "earliest"}
    cfg = load_config("local", env={**os.environ, **env})
    yield cfg, {**env, **spark_submit_env}
    with contextlib.suppress(Exception):
        store = open_store(cfg)
        store.drop()
        store.close()
    with contextlib.suppress(Exception):
        admin = KafkaAdminClient(bootstrap_servers=cfg.kafka.bootstrap)
        admin.delete_topics([cfg.ingest.topics.trades, cfg.ingest.topics.quotes])
        admin.close()
    fs = lake_fs(cfg)
    quarantine = f"{cfg.lander.quarantine_zone}/speed_layer/{cfg.warehouse.raw_db}"
    for path in (cfg.speed.checkpoint_dir, quarantine):
        if fs.exists(path):
            fs.delete(path, recursive=True)


def publish(cfg: Config) -> dict:
    """Simulator ticks in small messages, then re-sent copies and two bad records.

    Returns the distinct published ticks per kind (as Arrow tables) and the expected rejects."""
    sim = MarketSimulator(SimulatorConfig(symbols=SYMBOLS, seed=21, start_date=date(2026, 1, 5),
                                          trades_per_symbol_per_day=600, quotes_per_trade=2.0))
    publisher = TickPublisher(cfg.kafka.bootstrap, ticks_per_message=150)
    topics = {"trade": cfg.ingest.topics.trades, "quote": cfg.ingest.topics.quotes}
    published: dict[str, list[pa.RecordBatch]] = {"trade": [], "quote": []}
    for kind, batch in sim.batches(by_symbol=True):
        publisher.publish(topics[kind], kind, batch)
        published[kind].append(batch)
    trades = pa.Table.from_batches(published["trade"])
    quotes = pa.Table.from_batches(published["quote"])
    # re-sent copies: 40 trades of the first message again, much later (another micro-batch), and
    # 30 quotes twice in a row (likely the same micro-batch as each other)
    publisher.publish(topics["trade"], "trade", trades.slice(0, 40))
    publisher.publish(topics["quote"], "quote", quotes.slice(1000, 30))
    publisher.publish(topics["quote"], "quote", quotes.slice(1000, 30))
    # a trade with a negative price, and a message that is not Arrow at all
    bad = trades.slice(0, 1).to_pylist()[0] | {"seq": 10**9, "price": -1.0}
    publisher.publish(topics["trade"], "trade", pa.Table.from_pylist([bad], schema=trades.schema))
    publisher.producer.send(topics["trade"], key=b"JUNK", value=b"definitely not an Arrow stream")
    publisher.flush()
    publisher.close()
    return {"trade": trades, "quote": quotes,
            "rejects": {"duplicate": 40 + 30 + 30, "non_positive_price": 1, "malformed": 1}}


class Job:
    """``spark-submit spark_jobs/speed_layer.py`` in a process group of its own."""

    def __init__(self, cfg: Config, env: dict[str, str], args: list[str]) -> None:
        argv, full_env = spark_submit_command(cfg, JOB, args, {**env, "TRADELAKE_PROFILE": "local"})
        self.proc = subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                        for stream, into in ((self.proc.stdout, self.lines), (self.proc.stderr, self.stderr))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def batches(self, query: str) -> int:
        return sum(line.startswith(f"speed [{query}] batch ") for line in list(self.lines))

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(60)

    def wait(self, timeout: float) -> tuple[int, dict | None]:
        self.proc.wait(timeout)
        for reader in self.readers:
            reader.join(30)
        summary = next((json.loads(line.split(" ", 1)[1]) for line in self.lines
                        if line.startswith("SPEED_RESULT ")), None)
        return self.proc.returncode, summary

    def tail(self) -> str:
        errors = [ln for ln in self.stderr if "Error" in ln or "Exception" in ln]
        return "\n".join(self.lines[-20:] + errors[-20:])


def batch_ids(fs, path: str) -> list[int]:
    return sorted(int(name) for name in fs.list(path) if name.isdigit())


def ods_counts(cfg: Config) -> dict[str, int]:
    import psycopg2
    from psycopg2 import sql

    with contextlib.closing(psycopg2.connect(cfg.postgres.dsn())) as conn, conn.cursor() as cur:
        out = {}
        for table in ("trades", "quotes"):
            cur.execute(sql.SQL("SELECT count(*), count(DISTINCT (symbol, ts, seq)) FROM {}.{}")
                        .format(sql.Identifier(cfg.ods.schema), sql.Identifier(table)))
            out[table], distinct = cur.fetchone()
            assert distinct == out[table]
        return out


def expected_bars(trades: pa.Table) -> dict[str, list[tuple]]:
    """1-minute bars by hand: open/close the first/last trade by (ts, seq), vwap exact."""
    by_minute: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in trades.to_pylist():
        by_minute[(row["symbol"], row["ts"] - row["ts"] % MINUTE)].append(row)
    bars: dict[str, list[tuple]] = defaultdict(list)
    for (symbol, start), rows in sorted(by_minute.items()):
        rows.sort(key=lambda r: (r["ts"], r["seq"]))
        volume = sum(Fraction(r["size"]) for r in rows)
        vwap = sum(Fraction(r["price"]) * Fraction(r["size"]) for r in rows) / volume if volume else None
        bars[symbol].append((start, rows[0]["price"], max(r["price"] for r in rows),
                             min(r["price"] for r in rows), rows[-1]["price"], float(volume),
                             None if vwap is None else float(vwap), len(rows)))
    return bars


@pytest.mark.parametrize("mode", ["split", "single"])
def test_killed_mid_batch_and_restarted_every_tick_lands_exactly_once(speed_env, thrift_query, mode):
    from ods.store import open_store

    cfg, env = speed_env
    sent = publish(cfg)
    n_trades, n_quotes = sent["trade"].num_rows, sent["quote"].num_rows
    fs = lake_fs(cfg)
    lake_query = "hive" if mode == "split" else "single"  # the query that writes Hive
    hive_ckpt = f"{cfg.speed.checkpoint_dir}/{lake_query}"
    args = ["--mode", mode, "--available-now", "--max-offsets", "15"]

    first = Job(cfg, env, args)
    try:
        # wait until the Hive query has committed a batch and started another (offsets written,
        # commit not yet): then kill the whole process group, Spark JVM and Python alike
        deadline = time.monotonic() + 600
        planned = committed = []
        while time.monotonic() < deadline and first.proc.poll() is None:
            if first.batches(lake_query) >= 1:
                planned = batch_ids(fs, f"{hive_ckpt}/offsets")
                committed = batch_ids(fs, f"{hive_ckpt}/commits")
                if committed and planned and planned[-1] > committed[-1]:
                    break
            time.sleep(0.05)
        assert first.proc.poll() is None, f"the job ended before it could be killed:\n{first.tail()}"
        first.kill()
    finally:
        if first.proc.poll() is None:
            first.kill()
    assert committed and planned[-1] > committed[-1], (planned, committed)
    in_flight = planned[-1]
    before = ods_counts(cfg)
    assert 0 < before["trades"] + before["quotes"] <= n_trades + n_quotes
    rt_trades = f"{cfg.warehouse.curated_db}.{cfg.speed.realtime_trades_table}"
    hive_before = thrift_query(f"SELECT count(*) FROM {rt_trades}")
    assert 0 < hive_before[0][0] < n_trades  # some batches written, more pending

    second = Job(cfg, env, args)
    code, summary = second.wait(900)
    assert code == 0, second.tail()
    # the batch the kill interrupted ran again, under its own id, before any new one
    assert any(line.startswith(f"speed [{lake_query}] batch {in_flight}: ") for line in second.lines), \
        second.tail()
    assert summary["ended"] == "available-now" and summary["reconciled"], summary

    # the ODS: each distinct tick once
    assert ods_counts(cfg) == {"trades": n_trades, "quotes": n_quotes}
    # the real-time Hive tables, through the Thrift server: each distinct tick once, partitions registered
    tables = summary["tables"]
    for kind, n in (("trade", n_trades), ("quote", n_quotes)):
        rows = thrift_query(f"SELECT count(*), count(DISTINCT symbol, ts, seq) FROM {tables[kind]}")
        assert rows == [(n, n)], (kind, rows)
    partitions = [p[0] for p in thrift_query(f"SHOW PARTITIONS {tables['trade']}")]
    assert partitions and all(p.startswith("dt=2026-01-05/batch_id=") for p in partitions)
    # every reject exactly once, with its reason (duplicates of ticks written earlier included)
    rejects = dict(thrift_query(f"SELECT reason, count(*) FROM {tables['quarantine']} GROUP BY reason"))
    assert rejects == sent["rejects"]

    # the ODS's 1-minute bars are exactly the bars of the distinct published trades
    store = open_store(cfg)
    try:
        want = expected_bars(sent["trade"])
        for symbol in SYMBOLS:
            got = store.bars(symbol, 0, 2**62).to_pylist()
            assert len(got) == len(want[symbol]), symbol
            for bar, (start, o, h, lo, c, volume, vwap, count) in zip(got, want[symbol], strict=True):
                have = (bar["ts"], bar["open"], bar["high"], bar["low"], bar["close"], bar["trade_count"])
                assert have == (start, o, h, lo, c, count)
                assert bar["volume"] == pytest.approx(volume, rel=1e-12)
                assert bar["vwap"] == pytest.approx(vwap, rel=1e-9)
    finally:
        store.close()

    # a new checkpoint over tables that hold batches would renumber from 0 and overwrite: refused
    fs.delete(cfg.speed.checkpoint_dir, recursive=True)
    third = Job(cfg, env, args)
    code, _ = third.wait(600)
    assert code == 2, third.tail()
    assert any("already holds micro-batches" in line for line in third.lines), third.tail()
    assert not fs.exists(f"{cfg.speed.checkpoint_dir}/{lake_query}/offsets")  # it ran nothing
