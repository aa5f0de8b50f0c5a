"""Speed-layer benchmark: trades published to Kafka at a fixed rate -> visible in the ODS, per tick.

    .venv/bin/python benchmarks/speed_layer.py [--rate 10000] [--seconds 60] [--modes split,single]
        [--wire-compression none] [--producer librdkafka|kafka-python]

Needs the local stack (started if down). Each mode runs on scratch names of its own (topics
``bench.<run>.<mode>.*``, ODS schema ``bench_<run>_<mode>``, warehouse databases
``bench_<run>_<mode>_curated/_raw``, checkpoint ``checkpoints/bench_<run>_<mode>``), all removed
afterwards; nothing of the real warehouse, ODS or topics is touched.

Per mode: ``spark-submit spark_jobs/speed_layer.py --mode <mode>`` starts (as ``tradelake speed``
would), then this process publishes one tick per symbol and waits until the ODS shows it and the
Hive side has written it (the first micro-batches start Spark's Python workers and Hive client),
then trades of 10 symbols at ``--rate`` ticks/s, one Arrow message per symbol every 10 ms (at
10,000 ticks/s: 1,000 messages/s of 10 ticks; acks=all, idempotent, as
``ingestion.publisher.TickPublisher`` publishes; ``--producer``: librdkafka by default, whose C
threads leave more of the shared cores to the system under test than kafka-python's pure-Python
producer; ``--wire-compression``, default the profile's): first ``--warmup`` seconds (JIT,
caches; not measured), then ``--seconds`` measured. A poller thread asks the store for
``last_trades(SYMBOLS)`` (one query) every 10 ms; a message (and so each of its ticks) is
visible at the first poll that returns ``seq >= `` its last seq (each symbol's seq rises by one
per tick, and ``ts`` rises with it, so the ODS's last trade, the greatest (ts, seq), is the
newest one stored). Latency = that poll's return time - the time the message was handed to the
producer (the two clocks are the same host's). Resolution: the poll period plus one query
(~10-15 ms), on the side of overstating latency. When every tick is visible and the Hive
query has written every tick, the speed layer is stopped (SIGTERM: between micro-batches) and
checked: ``exactly_once`` = the ODS's trade count == the distinct ticks published, and the same
for the real-time Hive table (counted through the Thrift server).

Baseline, measured in the same run with the same publisher and poller on topics and a schema of
its own: a plain kafka-python consumer process that polls, decodes each message with pyarrow
and calls ``store.write_trades`` per poll (no Spark, no validation, no Hive, no checkpoint).
``ratio`` = speed layer p99 / baseline p99.

Prints a line per phase, the JSON last, and writes benchmarks/results/speed_layer.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from spark_jobs.speed_args import DEFAULT_HIVE_TRIGGER_MS  # noqa: E402
from tradelake.config import Config, load_config  # noqa: E402
from tradelake.schemas import TRADE, arrow_schema  # noqa: E402
from tradelake.stack.kafka import delete_topics  # noqa: E402

SYMBOLS = tuple(f"S{i:02d}" for i in range(10))
STEP_S = 0.010  # one message per symbol per step
POLL_S = 0.010
PROGRESS = re.compile(r"speed \[(\w+)\] batch (\d+): received ([\d,]+) = accepted ([\d,]+)")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- scratch names --------------------------------------------------------------------------------
def scratch_env(run: str, name: str) -> dict[str, str]:
    prefix = f"bench_{run}_{name}"
    return {
        "TRADELAKE_INGEST__TOPICS__TRADES": f"bench.{run}.{name}.trades",
        "TRADELAKE_INGEST__TOPICS__QUOTES": f"bench.{run}.{name}.quotes",
        "TRADELAKE_INGEST__TOPICS__QUARANTINE": f"bench.{run}.{name}.quarantine",
        "TRADELAKE_ODS__SCHEMA": prefix,
        "TRADELAKE_WAREHOUSE__CURATED_DB": f"{prefix}_curated",
        "TRADELAKE_WAREHOUSE__RAW_DB": f"{prefix}_raw",
        "TRADELAKE_SPEED__CHECKPOINT_DIR": f"checkpoints/{prefix}",
        "TRADELAKE_SPEED__STARTING_OFFSETS": "earliest",
    }


def create_topics(cfg: Config) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=cfg.kafka.bootstrap)
    for topic in (cfg.ingest.topics.trades, cfg.ingest.topics.quotes):
        producer.partitions_for(topic)  # the broker auto-creates it
    producer.close()


def cleanup(cfg: Config, hive: bool = True) -> None:
    """Drop every scratch thing ``cfg`` names (best effort: a failed run still cleans up)."""

    from ods.store import open_store
    from tradelake.lakefs import lake_fs

    with contextlib.suppress(Exception):
        store = open_store(cfg)
        store.drop()
        store.close()
    delete_topics(cfg.kafka.bootstrap, [cfg.ingest.topics.trades, cfg.ingest.topics.quotes])
    if hive:
        with contextlib.suppress(Exception):
            hive_query(cfg, [f"DROP DATABASE IF EXISTS {db} CASCADE"
                             for db in (cfg.warehouse.curated_db, cfg.warehouse.raw_db)])
    fs = lake_fs(cfg)
    for path in (cfg.warehouse.curated_db, cfg.warehouse.raw_db, cfg.speed.checkpoint_dir,
                 f"{cfg.lander.quarantine_zone}/speed_layer/{cfg.warehouse.raw_db}"):
        with contextlib.suppress(Exception):
            if fs.exists(path):
                fs.delete(path, recursive=True)


def hive_query(cfg: Config, statements: list[str]) -> list[list[tuple]]:
    from tradelake.hive_client import connect_hive

    conn = connect_hive(cfg.hive)
    out = []
    with contextlib.closing(conn), contextlib.closing(conn.cursor()) as cur:
        for sql in statements:
            cur.execute(sql)
            out.append(cur.fetchall() if cur.description else [])
    return out


def ods_count(cfg: Config) -> int:
    import psycopg2
    from psycopg2 import sql

    with contextlib.closing(psycopg2.connect(cfg.postgres.dsn())) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {}.trades").format(sql.Identifier(cfg.ods.schema)))
        return int(cur.fetchone()[0])


# -- the feed and the visibility poller -------------------------------------------------------------
@dataclass
class Sent:
    symbol: list[str] = field(default_factory=list)
    last_seq: list[int] = field(default_factory=list)
    ticks: list[int] = field(default_factory=list)
    at_ns: list[int] = field(default_factory=list)
    measured: list[bool] = field(default_factory=list)


class LibrdkafkaProducer:
    """The feed's producer through librdkafka (confluent-kafka): acks=all and idempotent as
    ``ingestion.publisher.TickPublisher``, 1 ms linger as this benchmark's kafka-python feed. Its
    work runs in C threads: ~0.25 cores for 1,000 messages/s here, against ~0.7 for
    kafka-python's pure-Python producer, on the two cores the speed layer also needs."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        self._producer = Producer({"bootstrap.servers": bootstrap, "client.id": "bench-speed-layer",
                                   "acks": "all", "enable.idempotence": True, "linger.ms": 1})

    def send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self._producer.produce(topic, value=value, key=key, headers=headers,
                               on_delivery=self._delivered)
        self._producer.poll(0)  # serve delivery reports

    @staticmethod
    def _delivered(error: object, _message: object) -> None:
        if error is not None:
            raise RuntimeError(f"feed: a message was not delivered: {error}")

    def flush(self, timeout: float = 60) -> None:
        if left := self._producer.flush(timeout):
            raise RuntimeError(f"feed: {left} messages still undelivered after {timeout:.0f} s")

    def close(self) -> None:
        self.flush()


class KafkaPythonProducer:
    """The feed's producer through ``TickPublisher`` (kafka-python), as the project publishes."""

    def __init__(self, bootstrap: str) -> None:
        from ingestion.publisher import TickPublisher

        self._publisher = TickPublisher(bootstrap, linger_ms=1, client_id="bench-speed-layer")
        self._errors: list[BaseException] = []

    def send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        future = self._publisher.producer.send(topic, key=key, value=value, headers=headers)
        future.add_errback(self._errors.append)

    def flush(self, timeout: float = 60) -> None:
        self._publisher.producer.flush(timeout=timeout)
        if self._errors:
            raise RuntimeError(f"feed: {len(self._errors)} messages not delivered: {self._errors[0]}")

    def close(self) -> None:
        self._publisher.close()


PRODUCERS = {"librdkafka": LibrdkafkaProducer, "kafka-python": KafkaPythonProducer}


class Feed:
    """Trades of ``SYMBOLS``: per symbol, seq 1, 2, 3... and ts rising with it; records each
    message sent (symbol, last seq, ticks, send time)."""

    def __init__(self, cfg: Config, compression: str | None = None, producer: str = "librdkafka") -> None:
        self.topic = cfg.ingest.topics.trades
        self.compression = compression or cfg.ingest.wire_compression
        self.producer = PRODUCERS[producer](cfg.kafka.bootstrap)
        self.schema = arrow_schema(TRADE)
        self.rng = np.random.default_rng(5)
        self.seq = dict.fromkeys(SYMBOLS, 0)
        self.last_ts = dict.fromkeys(SYMBOLS, 0)
        self.price = {s: 100.0 + 10 * i for i, s in enumerate(SYMBOLS)}
        self.sent = Sent()
        self._const: dict[tuple[str, int], dict[str, pa.Array]] = {}

    def step(self, k: int, measured: bool) -> None:
        """One message of ``k`` ticks per symbol."""
        from ingestion import wire

        steps = np.arange(k, dtype=np.int64)
        moves = np.round(np.cumsum(self.rng.normal(0, 0.01, (len(SYMBOLS), k)), axis=1), 2)
        for i, symbol in enumerate(SYMBOLS):
            const = self._constants(symbol, k)
            first_ts = max(time.time_ns(), self.last_ts[symbol] + 1)
            seqs = steps + (self.seq[symbol] + 1)
            prices = np.maximum(0.01, self.price[symbol] + moves[i])
            columns = {"ts": pa.array(steps + first_ts), "price": pa.array(prices), "seq": pa.array(seqs),
                       "trade_id": pa.array([f"{symbol}-{s}" for s in seqs.tolist()]), **const}
            table = pa.Table.from_arrays([columns[f.name] for f in self.schema], schema=self.schema)
            self.price[symbol] = float(prices[-1])
            self.seq[symbol] += k
            self.last_ts[symbol] = first_ts + k - 1
            value = wire.encode(table, self.compression)
            sent_at = time.time_ns()
            self.producer.send(self.topic, key=symbol.encode(), value=value,
                               headers=wire.headers("trade", k))
            for name, item in (("symbol", symbol), ("last_seq", self.seq[symbol]), ("ticks", k),
                               ("at_ns", sent_at), ("measured", measured)):
                getattr(self.sent, name).append(item)

    def _constants(self, symbol: str, k: int) -> dict[str, pa.Array]:
        key = (symbol, k)
        if key not in self._const:
            self._const[key] = {
                "symbol": pa.array([symbol] * k), "size": pa.array(np.full(k, 100.0)),
                "exchange": pa.array(["XNAS"] * k), "side": pa.array(["B"] * k),
                "conditions": pa.nulls(k, pa.string()), "ingest_ts": pa.nulls(k, pa.int64())}
        return self._const[key]

    def run(self, rate: float, warmup_s: float, seconds: float) -> float:
        """``rate`` ticks/s for ``warmup_s`` (not measured) then ``seconds``; returns the time."""
        per_step, carry, step = rate * STEP_S / len(SYMBOLS), 0.0, 0
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < warmup_s + seconds:
            carry += per_step
            k, carry = int(carry), carry - int(carry)
            if k:
                self.step(k, elapsed >= warmup_s)
            step += 1
            delay = started + step * STEP_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self.producer.flush(timeout=60)
        return time.monotonic() - started

    def close(self) -> None:
        self.producer.close()


class Poller(threading.Thread):
    """Polls ``last_trades`` of every symbol every ``POLL_S``; records (seq, time) rises."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(daemon=True)
        from ods.store import open_store

        self.store = open_store(cfg)
        self.seen = dict.fromkeys(SYMBOLS, 0)
        self.rises: dict[str, list[tuple[int, int]]] = {s: [] for s in SYMBOLS}
        self.halt = threading.Event()
        self.rounds = 0

    def run(self) -> None:
        while not self.halt.is_set():
            began = time.monotonic()
            # one query for all symbols: the poller shares the cores with what it measures
            rows = self.store.last_trades(SYMBOLS)
            seen_at = time.time_ns()
            for symbol, row in rows.items():
                if row["seq"] > self.seen[symbol]:
                    self.seen[symbol] = row["seq"]
                    self.rises[symbol].append((row["seq"], seen_at))
            self.rounds += 1
            time.sleep(max(0.0, POLL_S - (time.monotonic() - began)))
        self.store.close()


def latencies(sent: Sent, poller: Poller) -> tuple[np.ndarray, np.ndarray, int]:
    """(latency ms per measured message, its ticks, messages never seen)."""
    lat, weights, unseen = [], [], 0
    rises = {s: (np.array([r[0] for r in v], np.int64), np.array([r[1] for r in v], np.int64))
             for s, v in poller.rises.items()}
    for symbol, last_seq, ticks, at_ns, measured in zip(sent.symbol, sent.last_seq, sent.ticks, sent.at_ns,
                                                        sent.measured, strict=True):
        if not measured:
            continue
        seqs, times = rises[symbol]
        i = int(np.searchsorted(seqs, last_seq))  # first rise with seq >= last_seq
        if i == len(seqs):
            unseen += 1
            continue
        lat.append((times[i] - at_ns) / 1e6)
        weights.append(ticks)
    return np.array(lat), np.array(weights, np.int64), unseen


def weighted_pct(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    if not values.size:
        return None
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, q / 100 * cum[-1])])


# -- the system under test and the baseline ---------------------------------------------------------
class Process:
    """A child process in a session of its own; its stdout lines are parsed and logged."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     start_new_session=True, cwd=ROOT)
        self.ready = threading.Event()
        self.driver_pid: int | None = None
        self.summary: dict | None = None
        self.accepted: dict[str, int] = {}
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()
            if line.startswith("SPEED_STARTED ") or line.startswith("BASELINE_STARTED "):
                self.driver_pid = json.loads(line.split(" ", 1)[1])["pid"]
            elif line.startswith("speed: started") or line.startswith("BASELINE_READY"):
                self.ready.set()
            elif line.startswith("SPEED_RESULT "):
                self.summary = json.loads(line.split(" ", 1)[1])
            elif m := PROGRESS.match(line):
                self.accepted[m[1]] = self.accepted.get(m[1], 0) + int(m[4].replace(",", ""))
                self.lines.append(line.rstrip())

    def stop(self, timeout: float = 180.0) -> int:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.driver_pid or self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self.reader.join(10)
        self.log.close()
        return self.proc.returncode


def start_speed_layer(cfg: Config, env: dict[str, str], mode: str, log_path: Path,
                      args: argparse.Namespace) -> Process:
    from tradelake.spark import spark_submit_command

    job_args = ["--mode", mode]
    if args.trigger_ms:
        job_args += ["--trigger-ms", str(args.trigger_ms)]
    if args.hive_trigger_ms:
        job_args += ["--hive-trigger-ms", str(args.hive_trigger_ms)]
    argv, full_env = spark_submit_command(cfg, ROOT / "spark_jobs" / "speed_layer.py", job_args,
                                          {**env, "TRADELAKE_PROFILE": cfg.profile})
    return Process(argv, full_env, log_path)


def baseline_consumer() -> int:
    """``--baseline-consumer``: kafka-python poll -> pyarrow decode -> store.write_trades."""
    from kafka import KafkaConsumer

    from ingestion import wire
    from ods.store import open_store

    cfg = load_config()
    store = open_store(cfg)
    store.ensure_schema()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("BASELINE_STARTED " + json.dumps({"pid": os.getpid()}), flush=True)
    consumer = KafkaConsumer(cfg.ingest.topics.trades, bootstrap_servers=cfg.kafka.bootstrap,
                             group_id=f"bench-baseline-{uuid.uuid4().hex[:6]}",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             fetch_max_wait_ms=100, max_partition_fetch_bytes=16 << 20)
    while not consumer.assignment() and not stop.is_set():
        consumer.poll(timeout_ms=100)
    print("BASELINE_READY", flush=True)
    rows = 0
    while not stop.is_set():
        tables = [wire.decode(m.value) for recs in consumer.poll(timeout_ms=50).values() for m in recs]
        if tables:
            rows += store.write_trades(pa.concat_tables(tables))
    consumer.close()
    store.close()
    print("BASELINE_RESULT " + json.dumps({"rows": rows}), flush=True)
    return 0


def start_baseline(cfg: Config, env: dict[str, str], log_path: Path) -> Process:
    full_env = {**os.environ, **env, "TRADELAKE_PROFILE": cfg.profile}
    return Process([sys.executable, str(Path(__file__).resolve()), "--baseline-consumer"], full_env, log_path)


# -- one phase ------------------------------------------------------------------------------------
def run_phase(name: str, run: str, args: argparse.Namespace) -> dict:
    env = scratch_env(run, name)
    cfg = load_config(env={**os.environ, **env})
    log_path = ROOT / "var" / "log" / f"bench-speed-{name}.log"
    is_baseline = name == "baseline"
    cleanup(cfg, hive=not is_baseline)
    create_topics(cfg)
    if not is_baseline:  # the speed layer creates the schema itself; the poller needs it first
        from ods.store import open_store

        store = open_store(cfg)
        store.ensure_schema()
        store.close()
    say(f"{name}: starting ({log_path.relative_to(ROOT)})")
    proc = (start_baseline(cfg, env, log_path) if is_baseline
            else start_speed_layer(cfg, env, name, log_path, args))
    result: dict = {"name": name}
    load_before = os.getloadavg()[0]
    try:
        if not proc.ready.wait(300) or proc.proc.poll() is not None:
            raise RuntimeError(f"{name} did not start; see {log_path}")
        if is_baseline:
            from ods.store import open_store

            store = open_store(cfg)
            store.ensure_schema()
            store.close()
        poller = Poller(cfg)
        poller.start()
        feed = Feed(cfg, args.wire_compression, args.producer)
        # one tick per symbol first, and wait for it: the first micro-batch starts Spark's Python
        # workers and Kafka consumers (~10-20 s) and would otherwise start the run with a backlog
        feed.step(1, measured=False)
        feed.producer.flush()
        deadline = time.monotonic() + 300
        lake_query = "hive" if name == "split" else "single"
        while time.monotonic() < deadline and (min(poller.seen.values()) < 1 or (
                not is_baseline and proc.accepted.get(lake_query, 0) < len(SYMBOLS))):
            time.sleep(0.05)  # (and the Hive side's first write, which initialises its Hive client)
        say(f"{name}: first ticks visible; publishing {args.rate:,.0f} ticks/s: {args.warmup:.0f} s "
            f"warm-up, {args.seconds:.0f} s measured")
        publish_s = feed.run(args.rate, args.warmup, args.seconds)
        feed.close()
        sent = feed.sent
        total = int(sum(sent.ticks))
        expected = dict.fromkeys(SYMBOLS, 0)
        for symbol, last in zip(sent.symbol, sent.last_seq, strict=True):
            expected[symbol] = max(expected[symbol], last)
        deadline = time.monotonic() + 120
        while any(poller.seen[s] < n for s, n in expected.items()) and time.monotonic() < deadline:
            time.sleep(0.1)
        poller.halt.set()
        poller.join(10)
        lat, weights, unseen = latencies(sent, poller)
        measured = int(weights.sum())
        p50, p99 = weighted_pct(lat, weights, 50), weighted_pct(lat, weights, 99)
        say(f"{name}: published {total:,} ticks in {publish_s:.1f} s; {measured:,} measured, "
            f"p50 {p50 or 0:.0f} ms, p99 {p99 or 0:.0f} ms")
        if not is_baseline:  # let the Hive query write everything before stopping
            deadline = time.monotonic() + 180
            while (proc.accepted.get("hive", proc.accepted.get("single", 0)) < total
                   and time.monotonic() < deadline and proc.proc.poll() is None):
                time.sleep(0.5)
        code = proc.stop()
        stored = ods_count(cfg)
        result.update({
            "rows": measured, "published": total, "publish_seconds": round(publish_s, 1),
            "rate_per_s": round(total / publish_s), "target_rate_per_s": args.rate,
            "p50_ms": _r(p50), "p90_ms": _r(weighted_pct(lat, weights, 90)), "p99_ms": _r(p99),
            "max_ms": _r(float(lat.max()) if lat.size else None),
            "unseen_messages": unseen, "ods_rows": stored, "poll_rounds": poller.rounds,
            "exit_code": code,
            # the machine's 1-minute load average before and after (other users' work included)
            "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
        if is_baseline:
            result["exactly_once"] = stored == total
        else:
            tables = (proc.summary or {}).get("tables") or {}
            hive_rows = None
            if tables:
                hive_rows = int(hive_query(cfg, [f"SELECT count(*) FROM {tables['trade']}"])[0][0][0])
            result.update({"hive_rows": hive_rows, "exactly_once": stored == total == hive_rows,
                           "speed_layer": _speed_figures(proc.summary)})
        say(f"{name}: {json.dumps({k: v for k, v in result.items() if k != 'speed_layer'})}")
    finally:
        if proc.proc.poll() is None:
            proc.stop()
        if not args.keep:
            cleanup(cfg, hive=not is_baseline)
    return result


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _speed_figures(summary: dict | None) -> dict | None:
    """What the speed layer itself reported (Kafka timestamp -> its write returned)."""
    if not summary:
        return None
    keep = ("ended", "received", "accepted", "quarantined", "reconciled", "publish_to_ods_ms",
            "publish_to_hive_ms")
    out = {k: summary.get(k) for k in keep}
    out["batches"] = {name: q.get("batches") for name, q in summary.get("queries", {}).items()}
    out["batch_ms"] = {name: q.get("batch_ms") for name, q in summary.get("queries", {}).items()}
    for key in ("step_ms_p50", "spark_step_ms_p50"):
        out[key] = {name: q.get(key) for name, q in summary.get("queries", {}).items()}
    return out


def main() -> int:
    if "--baseline-consumer" in sys.argv:
        return baseline_consumer()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000, help="ticks per second (default 10,000)")
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds per run (default 60)")
    parser.add_argument("--warmup", type=float, default=30, help="unmeasured seconds first (default 30)")
    parser.add_argument("--modes", default="split,single",
                        help="speed-layer modes to measure, the first is the headline (default split,single)")
    parser.add_argument("--trigger-ms", type=int, default=None,
                        help="the speed layer's ODS trigger (default: its own, speed.trigger_ms)")
    parser.add_argument("--hive-trigger-ms", type=int, default=None,
                        help="the speed layer's Hive trigger in split mode (default: its own)")
    parser.add_argument("--wire-compression", choices=["lz4", "zstd", "none"], default=None,
                        help="Arrow IPC body compression of the feed's messages (default: the profile's "
                             "ingest.wire_compression); for 10-tick messages LZ4 costs ~0.4 ms per message "
                             "to encode, which the shared cores pay")
    parser.add_argument("--producer", choices=sorted(PRODUCERS), default="librdkafka",
                        help="the feed's Kafka producer (default librdkafka: it takes a third of the CPU "
                             "kafka-python's takes for the same messages, on the cores the speed layer "
                             "needs too)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline consumer")
    parser.add_argument("--keep", action="store_true", help="keep the scratch topics, schemas and tables")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"split", "single"}:
        parser.error("--modes: split and/or single")
    from tradelake.stack.manager import Stack

    cfg = load_config()
    stack = Stack(cfg)
    if not all(e["up"] for e in stack.status().values() if isinstance(e, dict)):
        say("starting the local stack ...")
        stack.up()
    run = uuid.uuid4().hex[:6]
    phases = {mode: run_phase(mode, run, args) for mode in modes}
    head = phases[modes[0]]
    result = {"rows": head["rows"], "rate_per_s": head["rate_per_s"], "p50_ms": head["p50_ms"],
              "p99_ms": head["p99_ms"], "exactly_once": head["exactly_once"], "mode": modes[0],
              "target_p99_ms": 2000,
              "settings": {"wire_compression": args.wire_compression or cfg.ingest.wire_compression,
                           "producer": args.producer,
                           "ticks_per_message": round(args.rate * STEP_S / len(SYMBOLS)),
                           "messages_per_s": round(len(SYMBOLS) / STEP_S),
                           "trigger_ms": args.trigger_ms or cfg.speed.trigger_ms,
                           "hive_trigger_ms": args.hive_trigger_ms or DEFAULT_HIVE_TRIGGER_MS,
                           "max_offsets_per_trigger": cfg.speed.max_offsets_per_trigger,
                           "warmup_s": args.warmup, "seconds": args.seconds, "cpus": os.cpu_count()},
              "modes": phases}
    if not args.no_baseline:
        base = run_phase("baseline", run, args)
        result.update({"baseline": "kafka-python consumer -> pyarrow decode -> store.write_trades per poll "
                                   "(no Spark, no validation, no Hive, no checkpoint), same feed and poller",
                       "baseline_p50_ms": base["p50_ms"], "baseline_p99_ms": base["p99_ms"],
                       "baseline_detail": base,
                       "ratio": (round(head["p99_ms"] / base["p99_ms"], 2)
                                 if head["p99_ms"] and base["p99_ms"] else None)})
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "speed_layer.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0 if all(p["exactly_once"] for p in phases.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
