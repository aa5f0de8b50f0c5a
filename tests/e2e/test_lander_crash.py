"""Crash test: kill -9 the lander at random points while it lands, restart it, and find every tick
exactly once."""

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.lake_layout import TMP_DIR, landed_ranges
from ingestion.pipeline import make_validator, publish_batches
from ingestion.publisher import TickPublisher
from ingestion.simulator import MarketSimulator, SimulatorConfig
from tradelake.config import load_config
from tradelake.lakefs import lake_fs

SYMBOLS = ("AAPL", "MSFT", "XOM", "JPM")


def read_keys(fs, topics):
    parts = []
    for topic in topics:
        for folder in fs.list(f"raw/{topic}"):
            if folder.startswith("dt="):
                for name in fs.list(f"raw/{topic}/{folder}"):
                    parts.append(pq.read_table(pa.BufferReader(fs.read_bytes(f"raw/{topic}/{folder}/{name}")),
                                               columns=["symbol", "seq"]))
    return pa.concat_tables(parts) if parts else None


def landed_files(fs, topics) -> int:
    return sum(len(r) for t in topics for r in landed_ranges(fs, "raw", t).values())


def test_kill_9_at_random_points_then_every_tick_exactly_once(stack, cfg):
    run = uuid.uuid4().hex[:8]
    topics = [f"crash.{run}.trades", f"crash.{run}.quotes"]
    env = {**os.environ, "TRADELAKE_INGEST__TOPICS__TRADES": topics[0],
           "TRADELAKE_INGEST__TOPICS__QUOTES": topics[1],
           "TRADELAKE_INGEST__TOPICS__QUARANTINE": f"crash.{run}.quarantine",
           "TRADELAKE_LANDER__GROUP_ID": f"crash-{run}",
           "TRADELAKE_LANDER__ROLL_BYTES": str(256 * 1024),  # many small files: many commit points
           "TRADELAKE_LANDER__ROLL_SECONDS": "1",
           "TRADELAKE_LANDER__REGISTER_PARTITIONS": "false"}
    tcfg = load_config(env=env)
    sim = MarketSimulator(SimulatorConfig(symbols=SYMBOLS, seed=5, start_date=date(2026, 1, 6),
                                          days=2, trades_per_symbol_per_day=6000))
    batches = list(sim.batches(max_rows=8192))
    per_symbol = sim.total_ticks() // len(SYMBOLS)
    publisher = TickPublisher(cfg.kafka.bootstrap, ticks_per_message=200)
    validator = make_validator(tcfg.ingest, "crash-test")
    rng = random.Random(20261121)
    chunks = np.array_split(np.arange(len(batches)), 6)
    fs = lake_fs(cfg)
    kills, files_seen = 0, []
    try:
        for i, chunk in enumerate(chunks):
            # more data arrives while the lander is down or starting
            publish_batches(tcfg, [batches[j] for j in chunk], validator, publisher)
            if i == len(chunks) - 1:
                break
            before = landed_files(fs, topics)
            lander = subprocess.Popen([sys.executable, "-m", "tradelake.cli", "land", "-q",
                                       "--topics", ",".join(topics)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # past its start-up once it has landed a file of this run; the backlog of a chunk
            # takes it a few seconds more, so a random moment after that is mid-landing
            deadline = time.monotonic() + 120
            while (landed_files(fs, topics) == before and lander.poll() is None
                   and time.monotonic() < deadline):
                time.sleep(0.1)
            time.sleep(rng.uniform(0.0, 1.5))
            assert lander.poll() is None, "the lander ended on its own"
            os.kill(lander.pid, signal.SIGKILL)
            lander.wait()
            kills += 1
            files_seen.append(landed_files(fs, topics))
        publisher.close()
        assert validator.counts.reconciles() and validator.counts.accepted == sim.total_ticks()

        final = subprocess.run([sys.executable, "-m", "tradelake.cli", "land", "-q", "--idle-exit", "4",
                                "--max-seconds", "240", "--topics", ",".join(topics)],
                               env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr[-2000:]

        assert kills >= 5
        assert files_seen[0] > 0 and files_seen[-1] > files_seen[0]  # killed while making progress
        keys = read_keys(fs, topics)
        assert keys.num_rows == sim.total_ticks()
        for symbol in SYMBOLS:
            seqs = np.sort(keys.filter(pa.compute.equal(keys["symbol"], symbol))["seq"].to_numpy())
            np.testing.assert_array_equal(seqs, np.arange(1, per_symbol + 1))  # once each, none missing
        for topic in topics:  # unfinished temp files of killed runs were cleaned up
            assert fs.list(f"raw/{topic}/{TMP_DIR}") == []
    finally:
        for topic in topics:
            fs.delete(f"raw/{topic}", recursive=True)
