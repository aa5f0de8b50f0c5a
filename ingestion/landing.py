"""Wires the lake lander to a profile: which topics, their schemas, zones, Kafka and Hive."""

from __future__ import annotations

import logging

from ingestion.lander import Lander, TopicSpec
from ingestion.raw_tables import HiveRegistrar
from tradelake.config import Config
from tradelake.lakefs import LakeFS, lake_fs
from tradelake.schemas import BAR, EXECUTION, ORDER, QUOTE, TRADE, arrow_schema

log = logging.getLogger(__name__)


def topic_specs(cfg: Config, only: list[str] | None = None) -> list[TopicSpec]:
    """The landed topics of a profile: market data and the OMS journal (orders, executions) to
    the raw zone, rejects to quarantine."""
    from ingestion.quarantine import QUARANTINE_SCHEMA

    t, zones = cfg.ingest.topics, cfg.lander
    specs = [
        TopicSpec(t.trades, "trade", arrow_schema(TRADE), zones.raw_zone),
        TopicSpec(t.quotes, "quote", arrow_schema(QUOTE), zones.raw_zone),
        TopicSpec(t.bars, "bar", arrow_schema(BAR), zones.raw_zone),
        TopicSpec(t.quarantine, "quarantine", QUARANTINE_SCHEMA, zones.quarantine_zone),
        TopicSpec(cfg.routing.topics.orders, "order", arrow_schema(ORDER), zones.raw_zone),
        TopicSpec(cfg.routing.topics.executions, "execution", arrow_schema(EXECUTION), zones.raw_zone),
    ]
    if only:
        unknown = set(only) - {s.topic for s in specs}
        if unknown:
            raise ValueError(f"unknown topic(s) {sorted(unknown)}; landed topics are "
                             f"{[s.topic for s in specs]} (conf: ingest.topics)")
        specs = [s for s in specs if s.topic in only]
    return specs


def _finish_cut_short_joins(consumer) -> None:
    """Work around a kafka-python 3.0.x bug. When ``poll(timeout_ms)`` runs out while a rebalance
    that this member (the leader) started for a metadata change sits between JoinGroup and
    SyncGroup, the join task is left in flight for the next poll, but the leader's own
    assignment has already made ``need_rejoin()`` False, so no later poll awaits it: no
    partitions, heartbeats off, and the broker drops the member after ``session_timeout_s``
    (the lander then fails with "no partitions assigned"). Rejoin while that task is pending.
    Touches the client's internals, hence the kafka-python pin in pyproject.toml; skipped if
    they are not there."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or not hasattr(coordinator, "_join_task"):
        log.warning("kafka-python internals changed: the cut-short join workaround is off")
        return
    need_rejoin = coordinator.need_rejoin
    coordinator.need_rejoin = lambda: coordinator._join_task is not None or need_rejoin()


def make_consumer(cfg: Config, group_id: str | None = None):
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=cfg.kafka.bootstrap.split(","),
        group_id=group_id or cfg.lander.group_id,
        group_instance_id=cfg.lander.instance_id or None,
        session_timeout_ms=cfg.lander.session_timeout_s * 1000,
        heartbeat_interval_ms=max(1000, cfg.lander.session_timeout_s * 1000 // 3),
        client_id="tradelake-lander",
        enable_auto_commit=False,  # offsets are committed only after a file is landed
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        max_poll_records=2000,
        # fewer, fuller fetches while producers trickle data in: less per-request overhead
        fetch_min_bytes=1024 * 1024,
        fetch_max_wait_ms=100,
        # a topic created just before (or after) we subscribe is seen within seconds, not after
        # kafka-python's default 5 minutes: until then the group assigns us nothing for it
        metadata_max_age_ms=5000,
    )
    _finish_cut_short_joins(consumer)
    return consumer


def build_lander(cfg: Config, topics: list[str] | None = None, fs: LakeFS | None = None,
                 group_id: str | None = None, register: bool | None = None) -> Lander:
    from kafka import ConsumerRebalanceListener

    fs = fs or lake_fs(cfg)
    specs = topic_specs(cfg, topics)
    registrar = None
    if cfg.lander.register_partitions if register is None else register:
        registrar = HiveRegistrar(cfg)
        for spec in specs:
            fs.makedirs(f"{spec.zone}/{spec.topic}")
            registrar.ensure_table(spec.topic)

    def on_new_partition(spec: TopicSpec, dt: str) -> None:
        if registrar:
            registrar.add_partition(spec.topic, dt)

    consumer = make_consumer(cfg, group_id)
    lander = Lander(fs, specs, consumer, quarantine_zone=cfg.lander.quarantine_zone,
                    roll_bytes=cfg.lander.roll_bytes, roll_seconds=cfg.lander.roll_seconds,
                    compression=cfg.lander.compression, on_new_partition=on_new_partition)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            lander.on_revoked(revoked)

        def on_partitions_assigned(self, assigned):
            lander.on_assigned(assigned)

    consumer.subscribe(topics=[s.topic for s in specs], listener=Listener())
    # learn the topics' partitions before the first poll joins the group: otherwise the first
    # assignment can be empty, and their metadata, arriving just after, forces a second
    # rebalance (the one the workaround above is for)
    for spec in specs:
        consumer.partitions_for_topic(spec.topic)
    if registrar:  # partitions landed by an earlier run (or before a crash) are registered too
        from ingestion.lake_layout import partition_dates

        for spec in specs:
            for dt in partition_dates(fs, spec.zone, spec.topic):
                registrar.add_partition(spec.topic, dt)
    return lander
