"""Single-node HDFS: one NameNode and one DataNode JVM, replication 1, WebHDFS on.

Configured like Hadoop's pseudo-distributed set-up, with every address on the bind host (the
machine's host name does not resolve to loopback here) and the DataNode registering as that
address, so WebHDFS redirects for reads and writes land on 127.0.0.1.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tradelake.stack.base import Service
from tradelake.stack.jvm import hadoop_xml, java_command, process_marker
from tradelake.stack.process import ManagedProcess, run_checked

LOG4J = """\
log4j.rootLogger=INFO, console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
"""

# Closing a file asks the NameNode to complete it. Until the DataNode has reported the file's last
# block the NameNode says no, and the client sleeps and asks again: first after 400 ms (Hadoop's
# default), then twice as long each time. Here the first ask lost that race about every other
# time, so a small file took ~415 ms to write instead of 12-45 ms: every streaming checkpoint file
# (measured in the speed layer's walCommit and commitOffsets). Ask again after 20 ms, up to 10
# times (~20 s in all before a close fails). Set for every client of the stack's HDFS: the Spark
# processes (tradelake/spark.py), the DataNode's own (WebHDFS writes), Flume and HBase.
HDFS_CLIENT_CONF = {
    "dfs.client.block.write.locateFollowingBlock.initial.delay.ms": "20",
    "dfs.client.block.write.locateFollowingBlock.retries": "10",
}


class Hdfs(Service):
    name = "hdfs"

    @property
    def conf_dir(self) -> Path:
        return self.paths.conf / "hadoop"

    @property
    def name_dir(self) -> Path:
        return self.paths.data("hdfs") / "name"

    def _processes(self) -> list[ManagedProcess]:
        return [
            ManagedProcess(p, self.paths.run, self.paths.logs, process_marker(self.paths, p))
            for p in ("hdfs-namenode", "hdfs-datanode")
        ]

    def ports(self) -> list[int]:
        h = self.cfg.hdfs
        return [h.rpc_port, h.http_port, h.datanode_port, h.datanode_http_port, h.datanode_ipc_port]

    def write_conf(self) -> None:
        h, host = self.cfg.hdfs, self.host
        data = self.paths.data("hdfs")
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "core-site.xml").write_text(hadoop_xml({
            "fs.defaultFS": h.uri,
            "hadoop.tmp.dir": data / "tmp",
            "hadoop.http.staticuser.user": h.user,
        }))
        (self.conf_dir / "hdfs-site.xml").write_text(hadoop_xml({
            "dfs.replication": 1,
            "dfs.namenode.name.dir": f"file://{self.name_dir}",
            "dfs.datanode.data.dir": f"file://{data / 'data'}",
            "dfs.namenode.rpc-address": f"{host}:{h.rpc_port}",
            "dfs.namenode.http-address": f"{host}:{h.http_port}",
            "dfs.namenode.secondary.http-address": f"{host}:0",
            "dfs.datanode.address": f"{host}:{h.datanode_port}",
            "dfs.datanode.http.address": f"{host}:{h.datanode_http_port}",
            "dfs.datanode.ipc.address": f"{host}:{h.datanode_ipc_port}",
            "dfs.datanode.hostname": host,
            "dfs.namenode.datanode.registration.ip-hostname-check": "false",
            "dfs.webhdfs.enabled": "true",
            # Single-user development stack: HDFS permissions off (a cluster keeps them on).
            "dfs.permissions.enabled": "false",
            "dfs.namenode.safemode.extension": 0,
            "dfs.namenode.safemode.min.datanodes": 1,
            "dfs.blocksize": 64 * 1024 * 1024,
            "dfs.datanode.du.reserved": 0,
            **HDFS_CLIENT_CONF,  # for the DataNode's own client: WebHDFS writes
        }))
        (self.conf_dir / "log4j.properties").write_text(LOG4J)

    def _java(self, process: str, main_class: str, args: list[str], heap_mb: int) -> list[str]:
        return java_command(
            self.paths, "hdfs", process, main_class, args, heap_mb, conf_dir=self.conf_dir,
            props={"hadoop.log.dir": str(self.paths.logs), "hadoop.home.dir": str(self.conf_dir),
                   "log4j.configuration": f"file:{self.conf_dir / 'log4j.properties'}"},
        )

    def prepare(self) -> None:
        self.write_conf()
        if (self.name_dir / "current" / "VERSION").exists():
            return
        run_checked(
            self._java("hdfs-format", "org.apache.hadoop.hdfs.server.namenode.NameNode",
                       ["-format", "-nonInteractive", "-clusterId", "tradelake"], 256),
            "hdfs: formatting the NameNode",
        )

    def launch(self) -> None:
        heap = self.cfg.hdfs.heap_mb
        namenode, datanode = self.processes()
        namenode.start(self._java(namenode.name, "org.apache.hadoop.hdfs.server.namenode.NameNode",
                                  [], heap))
        datanode.start(self._java(datanode.name, "org.apache.hadoop.hdfs.server.datanode.DataNode",
                                  [], max(256, heap // 2)))

    def _jmx(self, query: str) -> dict[str, Any]:
        url = f"{self.cfg.hdfs.webhdfs}/jmx?qry={query}"
        with urllib.request.urlopen(url, timeout=3) as resp:
            beans = json.load(resp)["beans"]
        return beans[0] if beans else {}

    def healthy(self) -> bool:
        """NameNode out of safe mode with a live DataNode: reads and writes will succeed."""
        state = self._jmx("Hadoop:service=NameNode,name=FSNamesystemState")
        info = self._jmx("Hadoop:service=NameNode,name=NameNodeInfo")
        return state.get("NumLiveDataNodes", 0) >= 1 and info.get("Safemode", "x") == ""

    def after_healthy(self) -> None:
        from hdfs import InsecureClient

        lake = urlsplit(self.cfg.lake.root)
        if lake.scheme == "hdfs":
            client = InsecureClient(self.cfg.hdfs.webhdfs, user=self.cfg.hdfs.user)
            client.makedirs(lake.path or "/")
            client.makedirs(urlsplit(self.cfg.warehouse_dir).path)

    def endpoint(self) -> dict[str, Any]:
        return {"uri": self.cfg.hdfs.uri, "webhdfs": self.cfg.hdfs.webhdfs}
