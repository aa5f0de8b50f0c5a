"""The classic ingestion path: Flume's Kafka source -> HDFS sink lands every event."""

import dataclasses
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

from hdfs import InsecureClient
from kafka import KafkaProducer

from tradelake.stack.flume import Flume
from tradelake.stack.process import wait_until


def test_flume_lands_kafka_events_on_hdfs(stack, cfg, spark):
    topic = f"it-flume-{uuid.uuid4().hex[:8]}"
    test_cfg = dataclasses.replace(
        cfg, flume=dataclasses.replace(cfg.flume, topics=(topic,), roll_interval_s=2)
    )
    flume = Flume(test_cfg)
    flume.stop()  # a Flume agent from `stack up --with flume` has other topics: replace it
    flume.check_ports()  # a stray agent on the metrics port would answer for this one
    flume.prepare()
    flume.launch()
    try:
        wait_until("flume", flume.healthy, 120, flume.running, flume.processes()[0].log_file)
        events = [f"event-{i}" for i in range(200)]
        producer = KafkaProducer(bootstrap_servers=cfg.kafka.bootstrap, acks="all")
        for i, event in enumerate(events):
            producer.send(topic, key=f"K{i % 4}".encode(), value=event.encode())
        producer.flush()
        producer.close()

        # SequenceFiles of (timestamp, body); in-use files start with "_" and Hadoop skips them
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        files = f"{cfg.lake.root}/{cfg.flume.hdfs_subdir}/{topic}/dt={day}/events*.seq"
        client = InsecureClient(cfg.hdfs.webhdfs, user=cfg.hdfs.user)
        folder = urlsplit(files).path.rsplit("/", 1)[0]
        landed: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            closed = [f for f in client.list(folder) if not f.startswith("_")] \
                if client.status(folder, strict=False) else []
            if closed:
                landed = [bytes(v).decode() for _, v in spark.sparkContext.sequenceFile(files).collect()]
                if len(landed) >= len(events):
                    break
            time.sleep(2)
        # at-least-once: every event arrives; with a clean run, exactly once
        assert sorted(set(landed)) == sorted(events)
        assert flume.metrics()["SINK.hdfs"]["EventDrainSuccessCount"] == str(len(landed))
    finally:
        flume.stop()
