"""The classic ingestion path: a Flume agent with a Kafka source and an HDFS sink (at-least-once).

Optional (``tradelake stack up --with flume``). The exactly-once path into the raw zone is the
lake lander (``tradelake land``); Flume is kept for sites that already run it.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from tradelake.stack.base import Service
from tradelake.stack.jvm import hadoop_xml, java_command, process_marker
from tradelake.stack.process import ManagedProcess


class Flume(Service):
    name = "flume"
    depends_on = ("kafka", "hdfs")

    @property
    def conf_dir(self) -> Path:
        return self.paths.conf / "flume"

    def processes(self) -> list[ManagedProcess]:
        return [ManagedProcess("flume", self.paths.run, self.paths.logs,
                               process_marker(self.paths, "flume"))]

    def ports(self) -> list[int]:
        return [self.cfg.flume.monitor_port]

    def agent_properties(self) -> dict[str, str]:
        f, agent = self.cfg.flume, self.cfg.flume.agent_name
        lake = self.cfg.lake.root.rstrip("/")
        checkpoint = self.paths.data("flume") / "channel"
        return {
            f"{agent}.sources": "kafka",
            f"{agent}.channels": "file",
            f"{agent}.sinks": "hdfs",
            f"{agent}.sources.kafka.type": "org.apache.flume.source.kafka.KafkaSource",
            f"{agent}.sources.kafka.kafka.bootstrap.servers": self.cfg.kafka.bootstrap,
            f"{agent}.sources.kafka.kafka.topics": ",".join(f.topics),
            f"{agent}.sources.kafka.kafka.consumer.group.id": f"{agent}-flume",
            f"{agent}.sources.kafka.kafka.consumer.auto.offset.reset": "earliest",
            f"{agent}.sources.kafka.batchSize": "1000",
            f"{agent}.sources.kafka.setTopicHeader": "true",
            f"{agent}.sources.kafka.channels": "file",
            # a file channel survives an agent restart: events are not lost between Kafka and HDFS
            f"{agent}.channels.file.type": "file",
            f"{agent}.channels.file.checkpointDir": str(checkpoint / "checkpoint"),
            f"{agent}.channels.file.dataDirs": str(checkpoint / "data"),
            f"{agent}.sinks.hdfs.type": "hdfs",
            f"{agent}.sinks.hdfs.channel": "file",
            f"{agent}.sinks.hdfs.hdfs.path": f"{lake}/{f.hdfs_subdir}/%{{topic}}/dt=%Y-%m-%d",
            f"{agent}.sinks.hdfs.hdfs.useLocalTimeStamp": "true",
            f"{agent}.sinks.hdfs.hdfs.timeZone": "UTC",
            f"{agent}.sinks.hdfs.hdfs.filePrefix": "events",
            f"{agent}.sinks.hdfs.hdfs.inUsePrefix": "_",
            f"{agent}.sinks.hdfs.hdfs.fileType": "DataStream",
            f"{agent}.sinks.hdfs.hdfs.rollInterval": str(f.roll_interval_s),
            f"{agent}.sinks.hdfs.hdfs.rollSize": str(128 * 1024 * 1024),
            f"{agent}.sinks.hdfs.hdfs.rollCount": "0",
            f"{agent}.sinks.hdfs.hdfs.batchSize": "1000",
        }

    def prepare(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "agent.properties").write_text(
            "".join(f"{k}={v}\n" for k, v in self.agent_properties().items())
        )
        (self.conf_dir / "core-site.xml").write_text(hadoop_xml({"fs.defaultFS": self.cfg.hdfs.uri}))
        (self.conf_dir / "log4j2.xml").write_text(
            '<Configuration status="warn"><Appenders><Console name="c" target="SYSTEM_OUT">'
            '<PatternLayout pattern="%d{ISO8601} %p %c{1}: %m%n"/></Console></Appenders>'
            '<Loggers><Root level="info"><AppenderRef ref="c"/></Root></Loggers></Configuration>\n'
        )

    def launch(self) -> None:
        f = self.cfg.flume
        self.processes()[0].start(java_command(
            self.paths, "flume", "flume", "org.apache.flume.node.Application",
            ["-n", f.agent_name, "-f", str(self.conf_dir / "agent.properties")],
            f.heap_mb, conf_dir=self.conf_dir,
            props={"flume.monitoring.type": "http", "flume.monitoring.port": str(f.monitor_port),
                   "log4j.configurationFile": str(self.conf_dir / "log4j2.xml"),
                   "HADOOP_USER_NAME": self.cfg.hdfs.user},
        ), env={"HADOOP_USER_NAME": self.cfg.hdfs.user})

    def metrics(self) -> dict[str, Any]:
        url = f"http://{self.host}:{self.cfg.flume.monitor_port}/metrics"
        with urllib.request.urlopen(url, timeout=3) as resp:
            return json.load(resp)

    def healthy(self) -> bool:
        """Flume's monitoring server reports the source, channel and sink as started."""
        metrics = self.metrics()
        return {"SOURCE.kafka", "CHANNEL.file", "SINK.hdfs"} <= set(metrics)

    def endpoint(self) -> dict[str, Any]:
        return {"metrics": f"http://{self.host}:{self.cfg.flume.monitor_port}/metrics"}
