"""The classic ingestion path: a Flume agent with a Kafka source and an HDFS sink (at-least-once).

Optional (``tradelake stack up --with flume``). The exactly-once path into the raw zone is the
lake lander (``tradelake land``); Flume is kept for sites that already run it.
"""

from __future__ import annotations

import json
import string
import urllib.request
from pathlib import Path
from typing import Any

from tradelake.config import CONF_DIR
from tradelake.stack.base import Service
from tradelake.stack.hdfs import HDFS_CLIENT_CONF
from tradelake.stack.jvm import hadoop_xml, java_command, process_marker
from tradelake.stack.process import ManagedProcess


class Flume(Service):
    name = "flume"
    depends_on = ("kafka", "hdfs")

    @property
    def conf_dir(self) -> Path:
        return self.paths.conf / "flume"

    def _processes(self) -> list[ManagedProcess]:
        return [ManagedProcess("flume", self.paths.run, self.paths.logs,
                               process_marker(self.paths, "flume"))]

    def ports(self) -> list[int]:
        return [self.cfg.flume.monitor_port]

    def agent_properties(self) -> str:
        """conf/flume/agent.properties.template filled in from the profile."""
        f = self.cfg.flume
        template = string.Template((CONF_DIR / "flume" / "agent.properties.template").read_text())
        return template.substitute(
            agent=f.agent_name, bootstrap=self.cfg.kafka.bootstrap, topics=",".join(f.topics),
            channel_dir=self.paths.data("flume") / "channel", lake_root=self.cfg.lake.root.rstrip("/"),
            subdir=f.hdfs_subdir, roll_interval_s=f.roll_interval_s,
        )

    def prepare(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "agent.properties").write_text(self.agent_properties())
        (self.conf_dir / "core-site.xml").write_text(hadoop_xml({"fs.defaultFS": self.cfg.hdfs.uri,
                                                                 **HDFS_CLIENT_CONF}))
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
