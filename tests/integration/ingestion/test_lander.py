"""The lake lander against the real broker: exactly-once files, recognition, quarantine, Hive."""

import dataclasses
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kafka import KafkaProducer

from ingestion.lake_layout import landed_ranges
from ingestion.landing import build_lander
from ingestion.publisher import TickPublisher
from tradelake.lakefs import LocalLakeFS, lake_fs
from tradelake.schemas import TRADE, arrow_schema


def with_topic(cfg, topic):
    topics = dataclasses.replace(cfg.ingest.topics, trades=topic)
    return dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, topics=topics))


def trade_table(n, symbols=("AAPL", "MSFT", "XOM")):
    base = 1_767_625_800_000_000_000  # 2026-01-05 15:10:00 UTC
    rows = [{"ts": base + i, "symbol": symbols[i % len(symbols)], "price": 100.0 + i % 7,
             "size": float(1 + i % 5), "trade_id": f"T{i}", "exchange": None, "seq": i,
             "side": None, "conditions": None, "ingest_ts": None} for i in range(n)]
    return pa.Table.from_pylist(rows, schema=arrow_schema(TRADE))


def publish(cfg, topic, table, per_message=50):
    pub = TickPublisher(cfg.kafka.bootstrap, ticks_per_message=per_message)
    pub.publish(topic, "trade", table)
    stats = pub.flush()
    pub.close()
    return stats


def landed_rows(fs, zone, topic):
    tables = []
    for folder in fs.list(f"{zone}/{topic}"):
        if folder.startswith("dt="):
            for name in fs.list(f"{zone}/{topic}/{folder}"):
                tables.append(pq.read_table(pa.BufferReader(fs.read_bytes(f"{zone}/{topic}/{folder}/{name}"))))
    return pa.concat_tables(tables) if tables else None


def test_lands_every_message_once_with_contiguous_offset_ranges(stack, cfg, tmp_path):
    topic = f"it-land-{uuid.uuid4().hex[:8]}"
    tcfg = with_topic(cfg, topic)
    sent = trade_table(1000)
    stats = publish(tcfg, topic, sent)
    assert stats.ticks == 1000
    fs = LocalLakeFS(tmp_path / "lake")
    lander = build_lander(tcfg, topics=[topic], fs=fs, group_id=f"g-{topic}", register=False)
    result = lander.run(idle_exit_s=3, max_seconds=120)
    lander.consumer.close()
    assert result.rows == 1000 and result.undecodable == 0

    landed = landed_rows(fs, "raw", topic)
    assert sorted(landed.column("trade_id").to_pylist()) == sorted(f"T{i}" for i in range(1000))
    assert landed.column("ingest_ts").null_count == 0
    for partition, ranges in landed_ranges(fs, "raw", topic).items():
        # contiguous from offset 0: nothing skipped, nothing twice
        assert ranges[0].first == 0
        assert all(a.last + 1 == b.first for a, b in zip(ranges, ranges[1:], strict=False))
        offsets = set(pa.compute.filter(landed.column("kafka_offset"),
                                        pa.compute.equal(landed.column("kafka_partition"),
                                                         partition)).to_pylist())
        assert offsets == set(range(ranges[0].first, ranges[-1].last + 1))


def test_restart_recognises_landed_ranges_even_if_offsets_were_not_committed(stack, cfg, tmp_path):
    topic = f"it-recognise-{uuid.uuid4().hex[:8]}"
    tcfg = with_topic(cfg, topic)
    publish(tcfg, topic, trade_table(300))
    fs = LocalLakeFS(tmp_path / "lake")
    first = build_lander(tcfg, topics=[topic], fs=fs, group_id=f"a-{topic}", register=False)
    # 10 s, not 3: on a loaded machine the first fetch after assignment took longer than 3 s
    # once (a fresh-clone run landed 0 rows); idle_exit only ends the run, it is not asserted
    landed = first.run(idle_exit_s=10, max_seconds=60)
    first.consumer.close()
    assert landed.rows == 300
    files_before = sorted(r.file_name for rs in landed_ranges(fs, "raw", topic).values() for r in rs)
    # A new group has no committed offsets at all: the files alone must stop a second landing.
    second = build_lander(tcfg, topics=[topic], fs=fs, group_id=f"b-{topic}", register=False)
    again = second.run(idle_exit_s=3, max_seconds=60)
    second.consumer.close()
    assert again.rows == 0 and again.files == 0
    files_after = sorted(r.file_name for rs in landed_ranges(fs, "raw", topic).values() for r in rs)
    assert files_after == files_before


def test_a_backlog_is_not_split_into_a_file_per_fetch(stack, cfg, tmp_path):
    """Reading a backlog, a partition waits between fetches; the idle flush (here after 0 s)
    must not land each fetch as its own file while the broker holds more of the partition."""
    from kafka import ConsumerRebalanceListener, KafkaConsumer

    from ingestion.lander import Lander
    from ingestion.landing import topic_specs

    topic = f"it-backlog-{uuid.uuid4().hex[:8]}"
    tcfg = with_topic(cfg, topic)
    pub = TickPublisher(cfg.kafka.bootstrap, ticks_per_message=50)
    for i in range(12):  # one record batch per message: flushed one by one
        pub.publish(topic, "trade", trade_table(50, symbols=("AAPL",)).slice(0, 50 - i))
        pub.flush()
    pub.close()
    fs = LocalLakeFS(tmp_path / "lake")
    consumer = KafkaConsumer(bootstrap_servers=cfg.kafka.bootstrap, group_id=f"g-{topic}",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             max_partition_fetch_bytes=1)  # one record batch per fetch
    lander = Lander(fs, topic_specs(tcfg, [topic]), consumer, roll_seconds=600, idle_flush_s=0)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            lander.on_revoked(revoked)

        def on_partitions_assigned(self, assigned):
            lander.on_assigned(assigned)

    consumer.subscribe(topics=[topic], listener=Listener())
    try:
        result = lander.run(idle_exit_s=3, max_seconds=60)
    finally:
        consumer.close()
    assert result.messages == 12 and result.rows == sum(50 - i for i in range(12))
    ranges = [r for rs in landed_ranges(fs, "raw", topic).values() for r in rs]
    assert [(r.first, r.last) for r in ranges] == [(0, 11)]


@pytest.fixture
def slow_group_joins(monkeypatch):
    """A loaded broker, simulated: every group join's result is held back 250 ms on the Kafka
    client's IO loop (fault injection into kafka-python, not into our code), longer than the
    lander's 200 ms poll."""
    from kafka.coordinator.base import BaseCoordinator

    join = BaseCoordinator._do_join_and_sync_async

    async def slow_join(self):
        result = await join(self)
        await self._manager._net.sleep(0.25)
        return result

    monkeypatch.setattr(BaseCoordinator, "_do_join_and_sync_async", slow_join)


def test_a_slow_group_join_still_gets_the_partitions(stack, cfg, tmp_path, slow_group_joins):
    """kafka-python 3.0.x lost a rebalance cut short by the lander's poll timeout; at start-up
    the lander now knows its topics' partitions before joining (ingestion/landing.py), so the
    first assignment is whole. Without that, this failed 4 times in 4."""
    topic = f"it-slowjoin-{uuid.uuid4().hex[:8]}"
    tcfg = with_topic(cfg, topic)
    publish(tcfg, topic, trade_table(300))
    fs = LocalLakeFS(tmp_path / "lake")
    lander = build_lander(tcfg, topics=[topic], fs=fs, group_id=f"g-{topic}", register=False)
    lander.assign_timeout_s = 30  # fail in 30 s, not 120, if the join is lost
    try:
        result = lander.run(idle_exit_s=3, max_seconds=60)
    finally:
        lander.consumer.close()
    assert result.rows == 300


def test_partitions_added_while_landing_are_landed_after_a_slow_rejoin(stack, cfg, tmp_path,
                                                                         slow_group_joins):
    """New partitions make the leader rejoin by itself; with joins slower than a poll, the
    unpatched kafka-python 3.0.12 never finished that rejoin and the new partition was never
    landed (landing.py's ``_finish_cut_short_joins``)."""
    import threading
    import time

    from kafka.admin import KafkaAdminClient, NewPartitions, NewTopic

    from ingestion import wire

    topic = f"it-rejoin-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=cfg.kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        tcfg = with_topic(cfg, topic)
        publish(tcfg, topic, trade_table(100, symbols=("AAPL",)))
        fs = LocalLakeFS(tmp_path / "lake")
        lander = build_lander(tcfg, topics=[topic], fs=fs, group_id=f"g-{topic}", register=False)
        added = threading.Event()

        def add_a_partition_once_landed() -> None:  # the lander runs on this test's thread
            deadline = time.monotonic() + 30
            while lander.stats.rows < 100 and time.monotonic() < deadline:
                time.sleep(0.2)
            admin.create_partitions({topic: NewPartitions(total_count=2)})
            late = trade_table(150, symbols=("MSFT",)).slice(100)
            producer = KafkaProducer(bootstrap_servers=cfg.kafka.bootstrap, acks="all")
            producer.send(topic, key=b"MSFT", value=wire.encode(late), partition=1,
                          headers=wire.headers("trade", late.num_rows))
            producer.flush()
            producer.close()
            added.set()

        adder = threading.Thread(target=add_a_partition_once_landed)
        adder.start()
        try:
            stats = lander.run(idle_exit_s=15, max_seconds=90)
        finally:
            adder.join(timeout=60)
            lander.consumer.close()
    finally:
        admin.close()
    assert added.is_set()
    assert stats.rows == 150
    assert set(landed_ranges(fs, "raw", topic)) == {0, 1}


def test_undecodable_message_is_quarantined_not_dropped(stack, cfg, tmp_path):
    topic = f"it-bad-{uuid.uuid4().hex[:8]}"
    tcfg = with_topic(cfg, topic)
    producer = KafkaProducer(bootstrap_servers=cfg.kafka.bootstrap, acks="all")
    producer.send(topic, key=b"AAPL", value=b"price=1;size=2", partition=0)
    producer.flush()
    producer.close()
    publish(tcfg, topic, trade_table(10, symbols=("AAPL",)))
    fs = LocalLakeFS(tmp_path / "lake")
    lander = build_lander(tcfg, topics=[topic], fs=fs, group_id=f"g-{topic}", register=False)
    result = lander.run(idle_exit_s=3, max_seconds=60)
    lander.consumer.close()
    assert result.undecodable == 1 and result.rows == 10
    bad = landed_rows(fs, "quarantine/undecodable", topic)
    assert bad.column("payload").to_pylist() == [b"price=1;size=2"]
    assert bad.column("reason").to_pylist() == ["malformed"]
    assert bad.column("detail")[0].as_py().startswith("undecodable Kafka message")
    assert bad.column("source").to_pylist() == [f"kafka:{topic}/0@0"]
    # the raw file covering that offset exists, so a restart will not re-read it
    assert any(r.first == 0 for r in landed_ranges(fs, "raw", topic)[0])


def test_simulator_to_broker_to_lander_to_hive_raw_table(stack, cfg, thrift_query):
    from datetime import date

    from ingestion.pipeline import make_validator, publish_batches
    from ingestion.simulator import MarketSimulator, SimulatorConfig

    run = uuid.uuid4().hex[:8]
    topics = dataclasses.replace(cfg.ingest.topics, trades=f"it.sim.{run}.t", quotes=f"it.sim.{run}.q",
                                 quarantine=f"it.sim.{run}.x")
    tcfg = dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, topics=topics))
    sim = MarketSimulator(SimulatorConfig(symbols=("AAPL", "MSFT", "XOM"), seed=3,
                                          start_date=date(2026, 1, 7), trades_per_symbol_per_day=800))
    publisher = TickPublisher(cfg.kafka.bootstrap, 500)
    report = publish_batches(tcfg, sim.batches(), make_validator(tcfg.ingest, "it"), publisher)
    publisher.close()
    assert report.counts.accepted == sim.total_ticks() and report.counts.reconciles()
    lander = build_lander(tcfg, topics=[topics.trades, topics.quotes], group_id=f"g-{run}", register=True)
    lander.run(idle_exit_s=3, max_seconds=90)
    lander.consumer.close()
    counts = {}
    for topic in (topics.trades, topics.quotes):
        table = "raw." + topic.replace(".", "_")
        counts[topic] = thrift_query(f"SELECT dt, count(*), count(DISTINCT symbol, seq) FROM {table} "
                                     "GROUP BY dt")
        thrift_query(f"DROP TABLE {table}")
    trades = 3 * 800
    quotes = sim.total_ticks() - trades
    assert counts == {topics.trades: [("2026-01-07", trades, trades)],
                      topics.quotes: [("2026-01-07", quotes, quotes)]}
    for topic in (topics.trades, topics.quotes):
        lake_fs(cfg).delete(f"raw/{topic}", recursive=True)
