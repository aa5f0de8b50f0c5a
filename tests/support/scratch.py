"""A scratch profile on the shared stack for replay tests: topics, raw zone, lander group, ODS
schema and HBase prefix of the test's own, all named ``it.<run>.*`` / ``it_<run>*`` /
``scratch/it_<run>/``, and removed afterwards (never a shared name)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pyarrow as pa

from tradelake.config import Config, load_config
from tradelake.lakefs import lake_fs
from tradelake.stack.kafka import delete_topics, list_topics


def scratch_env(run: str, prefix: str = "it") -> dict[str, str]:
    """TRADELAKE_* overrides naming everything ``<prefix>.<run>.*`` / ``<prefix>_<run>*``."""
    p = prefix
    return {"TRADELAKE_INGEST__TOPICS__TRADES": f"{p}.{run}.trades",
            "TRADELAKE_INGEST__TOPICS__QUOTES": f"{p}.{run}.quotes",
            "TRADELAKE_INGEST__TOPICS__BARS": f"{p}.{run}.bars",
            "TRADELAKE_INGEST__TOPICS__QUARANTINE": f"{p}.{run}.quarantine",
            "TRADELAKE_LANDER__RAW_ZONE": f"scratch/{p}_{run}/raw",
            "TRADELAKE_LANDER__QUARANTINE_ZONE": f"scratch/{p}_{run}/quarantine",
            "TRADELAKE_LANDER__GROUP_ID": f"{p}-{run}-lander",
            "TRADELAKE_LANDER__INSTANCE_ID": f"{p}-{run}-lander",
            "TRADELAKE_LANDER__REGISTER_PARTITIONS": "false",
            "TRADELAKE_LANDER__ROLL_SECONDS": "2",
            "TRADELAKE_ODS__SCHEMA": f"{p}_{run}",
            "TRADELAKE_HBASE__TABLE_PREFIX": f"{p}_{run}"}


@contextlib.contextmanager
def scratch_profile(extra: dict[str, str] | None = None) -> Iterator[tuple[Config, dict[str, str], str]]:
    """(profile, its TRADELAKE_* variables, run id); everything named after the run is removed
    at the end: Kafka topics ``it.<run>.*``, PostgreSQL schemas and HBase tables ``it_<run>*``,
    the lake folder ``scratch/it_<run>``."""
    run = uuid.uuid4().hex[:8]
    env = scratch_env(run) | (extra or {})
    cfg = load_config("local", env={**os.environ, **env})
    try:
        yield cfg, env, run
    finally:
        cleanup(cfg, run)


def cleanup(cfg: Config, run: str, prefix: str = "it") -> None:
    """Removes every topic, schema, HBase table and lake folder named after ``run``."""
    import happybase
    import psycopg2

    with contextlib.suppress(Exception):
        delete_topics(cfg.kafka.bootstrap, [t for t in list_topics(cfg.kafka.bootstrap)
                                            if t.startswith(f"{prefix}.{run}.")])
    with contextlib.suppress(Exception):
        conn = psycopg2.connect(cfg.postgres.dsn())
        with conn, conn.cursor() as cur:
            cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{prefix}\\_{run}%",))
            for (schema,) in cur.fetchall():
                cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()
    with contextlib.suppress(Exception):
        conn = happybase.Connection(cfg.hbase.thrift_host, cfg.hbase.thrift_port)
        for table in conn.tables():
            if table.decode().startswith(f"{prefix}_{run}"):
                conn.delete_table(table, disable=True)
        conn.close()
    with contextlib.suppress(Exception):
        fs = lake_fs(cfg)
        if fs.exists(f"scratch/{prefix}_{run}"):
            fs.delete(f"scratch/{prefix}_{run}", recursive=True)


def land_all(cfg: Config, topics: list[str], idle_exit_s: float = 4.0) -> dict:
    """The real lake lander over ``topics`` until they go quiet; returns its summary."""
    from ingestion.lander import summary
    from ingestion.landing import build_lander

    lander = build_lander(cfg, topics=topics)
    try:
        stats = lander.run(idle_exit_s=idle_exit_s, max_seconds=300)
    finally:
        lander.consumer.close()
    return summary(stats)


def consume_all(cfg: Config, topic: str, timeout_s: float = 60.0) -> list[tuple[bytes, pa.Table, int, int]]:
    """Every message of ``topic`` from its first offset to its end: (key, decoded rows, partition,
    broker timestamp in ms)."""
    import time

    from kafka import KafkaConsumer, TopicPartition

    from ingestion import wire

    consumer = KafkaConsumer(bootstrap_servers=cfg.kafka.bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout_s
        while not (parts := consumer.partitions_for_topic(topic)):
            assert time.monotonic() < deadline, f"topic {topic} never appeared"
            time.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, f"{topic}: not read to its end in {timeout_s}s"
            for tp, records in consumer.poll(timeout_ms=500).items():
                out += [(m.key, wire.decode(m.value), tp.partition, m.timestamp) for m in records]
        return out
    finally:
        consumer.close()
