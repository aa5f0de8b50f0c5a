"""Apache Kafka in KRaft mode: one JVM acting as broker and controller, listeners on loopback."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tradelake.stack.base import Service
from tradelake.stack.jvm import java_command, process_marker
from tradelake.stack.process import ManagedProcess, run_checked

log = logging.getLogger(__name__)

LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} %p %c{1}: %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.kafka.name = kafka
logger.kafka.level = info
logger.controller.name = org.apache.kafka.controller
logger.controller.level = info
logger.state.name = state.change.logger
logger.state.level = warn
"""



def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka's own ``Uuid.randomUuid`` makes them: URL-safe base64 of 16
    random bytes that does not start with '-', which the storage tool's argument parser would
    take for an option (one id in 64 did: "argument --cluster-id/-t: expected one argument")."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id

class Kafka(Service):
    name = "kafka"

    @property
    def conf_dir(self) -> Path:
        return self.paths.conf / "kafka"

    @property
    def log_dir(self) -> Path:
        return self.paths.data("kafka") / "log"

    @property
    def broker_port(self) -> int:
        return int(self.cfg.kafka.bootstrap.split(",")[0].rsplit(":", 1)[1])

    def _processes(self) -> list[ManagedProcess]:
        return [ManagedProcess("kafka", self.paths.run, self.paths.logs,
                               process_marker(self.paths, "kafka"))]

    def ports(self) -> list[int]:
        return [self.broker_port, self.cfg.kafka.controller_port]

    def write_conf(self) -> None:
        k, host = self.cfg.kafka, self.host
        props = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@{host}:{k.controller_port}",
            "listeners": f"PLAINTEXT://{host}:{self.broker_port},CONTROLLER://{host}:{k.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{host}:{self.broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self.log_dir,
            "num.partitions": k.num_partitions,
            "default.replication.factor": 1,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 8,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": "true",
            "message.max.bytes": 16 * 1024 * 1024,
            "log.retention.hours": 24 * 30,
        }
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "server.properties").write_text(
            "".join(f"{key}={value}\n" for key, value in props.items())
        )
        (self.conf_dir / "log4j2.properties").write_text(LOG4J2)

    def _java(self, process: str, main_class: str, args: list[str], heap_mb: int) -> list[str]:
        return java_command(self.paths, "kafka", process, main_class, args, heap_mb, props={
            "log4j2.configurationFile": str(self.conf_dir / "log4j2.properties"),
            "kafka.logs.dir": str(self.paths.logs),
        })

    def prepare(self) -> None:
        self.write_conf()
        if (self.log_dir / "meta.properties").exists():
            return
        run_checked(
            self._java("kafka-format", "kafka.tools.StorageTool",
                       ["format", "-t", new_cluster_id(), "-c", str(self.conf_dir / "server.properties")],
                       256),
            "kafka: formatting KRaft storage",
        )

    def launch(self) -> None:
        self.processes()[0].start(self._java(
            "kafka", "kafka.Kafka", [str(self.conf_dir / "server.properties")], self.cfg.kafka.heap_mb
        ))

    def healthy(self) -> bool:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.cfg.kafka.bootstrap,
                                 request_timeout_ms=3000, client_id="tradelake-health")
        try:
            cluster = admin.describe_cluster()
            return len(cluster.get("brokers", [])) >= 1
        finally:
            admin.close()

    def endpoint(self) -> dict[str, Any]:
        return {"bootstrap": self.cfg.kafka.bootstrap}


def list_topics(bootstrap: str) -> list[str]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return admin.list_topics()
    finally:
        admin.close()


def delete_topics(bootstrap: str, topics: Iterable[str]) -> None:
    """Best effort, for scratch topics of tests and benchmarks: a failure is logged, never raised
    (clean-up must not hide the outcome it follows). Stale scratch topics are worth deleting:
    hundreds of their partitions slowed the broker's controller down for every later user."""
    from kafka.admin import KafkaAdminClient

    topics = list(topics)
    if not topics:
        return
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.delete_topics(topics)
        finally:
            admin.close()
    except Exception as exc:  # noqa: BLE001 (best effort, see above)
        log.warning("could not delete Kafka topics %s: %s", topics, exc)
