"""HBase in standalone mode (master, region server and ZooKeeper in one JVM) plus its Thrift1
server for happybase (binary protocol, buffered transport: happybase's defaults).

The root directory is on the local filesystem under var/ by default (``hbase.root_dir`` may point
it at ``hdfs://``); standalone HBase on a local filesystem needs stream-capability enforcement
off, as HBase's own quick-start says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tradelake.stack.base import Service
from tradelake.stack.hdfs import HDFS_CLIENT_CONF
from tradelake.stack.jvm import hadoop_xml, java_command, process_marker
from tradelake.stack.process import ManagedProcess

LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} %p [%t] %c{2}: %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = warn
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = warn
logger.hbase.name = org.apache.hadoop.hbase
logger.hbase.level = info
"""


class HBase(Service):
    name = "hbase"
    # the Thrift server needs the master's ZooKeeper; it retries, so both start together

    @property
    def conf_dir(self) -> Path:
        return self.paths.conf / "hbase"

    @property
    def root_dir(self) -> str:
        return self.cfg.hbase.root_dir or f"file://{self.paths.data('hbase') / 'root'}"

    def _processes(self) -> list[ManagedProcess]:
        return [
            ManagedProcess(p, self.paths.run, self.paths.logs, process_marker(self.paths, p))
            for p in ("hbase-master", "hbase-thrift")
        ]

    def ports(self) -> list[int]:
        h = self.cfg.hbase
        return [h.zookeeper_port, h.master_port, h.master_info_port, h.regionserver_port,
                h.regionserver_info_port, h.thrift_port, h.thrift_info_port]

    def write_conf(self) -> None:
        h, host = self.cfg.hbase, self.host
        data = self.paths.data("hbase")
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "hbase-site.xml").write_text(hadoop_xml({
            "hbase.cluster.distributed": "false",
            "hbase.rootdir": self.root_dir,
            "hbase.tmp.dir": data / "tmp",
            "hbase.zookeeper.quorum": host,
            "hbase.zookeeper.property.clientPort": h.zookeeper_port,
            "hbase.zookeeper.property.dataDir": data / "zookeeper",
            # Standalone HBase gives its region server a 10 s ZooKeeper session
            # (zookeeper.session.timeout.localHBaseCluster). While the whole stack starts on two
            # busy cores a JVM can stall longer than that: a fresh-clone test run saw the session
            # expire during `stack up`, the region server abort, and HBase never come up. Since
            # master, region server and ZooKeeper share one JVM, a longer session costs nothing.
            "zookeeper.session.timeout.localHBaseCluster": 90_000,
            "zookeeper.session.timeout": 90_000,
            "hbase.zookeeper.property.maxSessionTimeout": 90_000,
            "hbase.master.hostname": host,
            "hbase.unsafe.regionserver.hostname": host,
            "hbase.master.ipc.address": host,
            "hbase.regionserver.ipc.address": host,
            "hbase.master.port": h.master_port,
            "hbase.master.info.port": h.master_info_port,
            "hbase.master.info.bindAddress": host,
            "hbase.regionserver.port": h.regionserver_port,
            "hbase.regionserver.info.port": h.regionserver_info_port,
            "hbase.regionserver.info.bindAddress": host,
            "hbase.regionserver.thrift.port": h.thrift_port,
            "hbase.thrift.info.port": h.thrift_info_port,
            "hbase.thrift.info.bindAddress": host,
            "hbase.unsafe.stream.capability.enforce": "false",
            "hbase.wal.provider": "filesystem",
            "hbase.regionserver.thrift.framed": "false",
            "hbase.regionserver.thrift.compact": "false",
            "hbase.table.sanity.checks": "true",
            **HDFS_CLIENT_CONF,  # when hbase.root_dir is on the stack's HDFS
        }))
        (self.conf_dir / "log4j2.properties").write_text(LOG4J2)

    def _java(self, process: str, main_class: str, args: list[str], heap_mb: int) -> list[str]:
        return java_command(self.paths, "hbase", process, main_class, args, heap_mb,
                            conf_dir=self.conf_dir, props={
                                "log4j2.configurationFile": str(self.conf_dir / "log4j2.properties"),
                                "hbase.log.dir": str(self.paths.logs),
                                "zookeeper.4lw.commands.whitelist": "ruok,srvr",
                            })

    def prepare(self) -> None:
        self.write_conf()
        (self.paths.data("hbase") / "tmp").mkdir(parents=True, exist_ok=True)

    def launch(self) -> None:
        master, thrift = self.processes()
        h = self.cfg.hbase
        master.start(self._java(master.name, "org.apache.hadoop.hbase.master.HMaster", ["start"],
                                h.heap_mb))
        thrift.start(self._java(thrift.name, "org.apache.hadoop.hbase.thrift.ThriftServer",
                                ["-b", self.host, "-p", str(h.thrift_port),
                                 "--infoport", str(h.thrift_info_port), "-threadpool", "start"],
                                256))

    def healthy(self) -> bool:
        """The Thrift server answers and the master has meta online (listing tables works)."""
        import happybase

        conn = happybase.Connection(self.cfg.hbase.thrift_host, self.cfg.hbase.thrift_port,
                                    timeout=5000, autoconnect=True)
        try:
            conn.tables()
            return True
        finally:
            conn.close()

    def endpoint(self) -> dict[str, Any]:
        return {"thrift_host": self.cfg.hbase.thrift_host, "thrift_port": self.cfg.hbase.thrift_port}
