"""The analysts' HiveServer2 endpoint: Spark Thrift Server on the PostgreSQL-backed metastore.

It is started with the same Spark settings as every job (tradelake.spark.spark_conf), so tables
that spark-submit jobs create are visible to pyhive, beeline and any JDBC/ODBC client.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tradelake.hive_client import connect_hive
from tradelake.spark import spark_conf, spark_env, spark_home, write_spark_defaults
from tradelake.stack.base import Service
from tradelake.stack.jvm import process_marker
from tradelake.stack.process import ManagedProcess, port_answers

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"


class HiveThriftServer(Service):
    name = "hive"
    depends_on = ("postgres", "hdfs")

    def _processes(self) -> list[ManagedProcess]:
        return [ManagedProcess("hive-thriftserver", self.paths.run, self.paths.logs,
                               process_marker(self.paths, "hive-thriftserver"))]

    def ports(self) -> list[int]:
        return [self.cfg.hive.port]

    def prepare(self) -> None:
        (self.paths.tmp / "spark").mkdir(parents=True, exist_ok=True)
        write_spark_defaults(self.cfg)  # so plain `spark-submit spark_jobs/...` shares the metastore

    def command(self) -> list[str]:
        conf = spark_conf(self.cfg)
        marker = process_marker(self.paths, "hive-thriftserver")
        conf["spark.driver.extraJavaOptions"] = f"{marker} {conf['spark.driver.extraJavaOptions']}"
        conf["spark.app.name"] = "tradelake-thriftserver"
        argv = [str(spark_home() / "bin" / "spark-submit"), "--class", THRIFT_SERVER_CLASS]
        for key, value in conf.items():
            argv += ["--conf", f"{key}={value}"]
        argv.append("spark-internal")
        hive = self.cfg.hive
        for key, value in {
            "hive.server2.thrift.bind.host": hive.host,
            "hive.server2.thrift.port": hive.port,
            "hive.server2.authentication": hive.auth,
            "hive.server2.enable.doAs": "false",
        }.items():
            argv += ["--hiveconf", f"{key}={value}"]
        return argv

    def launch(self) -> None:
        env = {**spark_env(), "SPARK_CONF_DIR": str(self.paths.conf / "spark")}
        self.processes()[0].start(self.command(), env=env, cwd=self.paths.tmp / "spark")

    def connect(self):
        return connect_hive(self.cfg.hive)

    def healthy(self) -> bool:
        if not port_answers(self.cfg.hive.host, self.cfg.hive.port):
            return False  # not listening yet: skip pyhive, which logs every refused attempt
        with contextlib.closing(self.connect()) as conn, contextlib.closing(conn.cursor()) as cur:
            cur.execute("SHOW DATABASES")
            return any(row[0] == "default" for row in cur.fetchall())

    def endpoint(self) -> dict[str, Any]:
        return {"host": self.cfg.hive.host, "port": self.cfg.hive.port}
