"""The one SparkSession factory used by every job and test.

Hive support on the shared metastore (PostgreSQL over JDBC, or a metastore URI on clusters),
the warehouse under the lake root, loopback settings for the single-node stack, and the Kafka
connector jars fetched by ``make setup``. The same settings start the Spark Thrift Server
(tradelake/stack/hive.py), so jobs and analysts see the same tables.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tradelake.config import Config, load_config
from tradelake.stack.hdfs import HDFS_CLIENT_CONF

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

POSTGRES_JDBC_JAR = Path("/usr/share/java/postgresql.jar")
log = logging.getLogger(__name__)


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def spark_env() -> dict[str, str]:
    """Environment every Spark process needs here (see DESIGN.md: loopback, venv python)."""
    return {
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def kafka_connector_jars(cfg: Config) -> list[str]:
    lib = cfg.var_dir / "jvm" / "spark-kafka" / "lib"
    return sorted(str(p) for p in lib.glob("*.jar"))


def spark_conf(cfg: Config) -> dict[str, str]:
    """Spark settings shared by jobs, tests and the Thrift server."""
    pg = cfg.postgres
    tmp = cfg.var_dir / "tmp" / "spark"
    conf = {
        "spark.master": cfg.spark.master,
        "spark.driver.memory": cfg.spark.driver_memory,
        "spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": cfg.warehouse_dir,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.hive.convertMetastoreParquet": "true",
        # The metastore's direct-SQL pruning casts every table's first partition value to the
        # filter's type before PostgreSQL narrows the join to the queried table, so a filter on
        # a DATE `dt` fails as soon as another table has a non-date first key (curated.bars'
        # interval='1m'). Fall back to pruning in Spark from the partition names instead.
        "spark.sql.hive.metastorePartitionPruningFallbackOnException": "true",
        "spark.sql.hive.metastorePartitionPruningFastFallback": "true",
        # lets adaptive execution broadcast a join side whose size, measured at run time, is
        # under this (e.g. spark_jobs/bars.py's per-minute instants) instead of sorting both
        # sides; a larger side still shuffles, so this cannot exhaust the driver
        "spark.sql.adaptive.autoBroadcastJoinThreshold": "64MB",
        "spark.local.dir": str(tmp),
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        "spark.driver.extraJavaOptions": f"-Djava.io.tmpdir={tmp}",
        "spark.hadoop.hive.exec.local.scratchdir": str(tmp / "hive-scratch"),
        "spark.hadoop.hive.downloaded.resources.dir": str(tmp / "hive-resources"),
        "spark.hadoop.hive.async.log.enabled": "false",
        "spark.hadoop.hive.metastore.schema.verification": "false",
        "spark.hadoop.datanucleus.schema.autoCreateAll": "false",
    }
    if cfg.stack.managed and "hdfs" in cfg.stack.services:
        # the stack's own HDFS: ask the NameNode again after 20 ms, not 400, when closing a file
        # (see the constant); a cluster keeps its own hdfs-site.xml
        conf.update({f"spark.hadoop.{key}": value for key, value in HDFS_CLIENT_CONF.items()})
    if cfg.lake.root.startswith("hdfs://"):
        # so that unqualified paths (Hive's scratch dir, table locations) resolve to the lake's HDFS
        lake = urlsplit(cfg.lake.root)
        conf["spark.hadoop.fs.defaultFS"] = f"{lake.scheme}://{lake.netloc}"
    if cfg.hive.metastore_uri:
        conf["spark.hadoop.hive.metastore.uris"] = cfg.hive.metastore_uri
    else:
        conf.update({
            "spark.hadoop.javax.jdo.option.ConnectionURL": pg.jdbc_url(pg.metastore_database),
            "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
            "spark.hadoop.javax.jdo.option.ConnectionUserName": pg.user,
            "spark.driver.extraClassPath": str(POSTGRES_JDBC_JAR),
        })
        if pg.password:
            conf["spark.hadoop.javax.jdo.option.ConnectionPassword"] = pg.password
    jars = kafka_connector_jars(cfg)
    if jars:
        conf["spark.jars"] = ",".join(jars)
    conf.update(cfg.spark.extra_conf)
    return conf


def write_spark_defaults(cfg: Config) -> Path:
    """Write spark-defaults.conf and spark-env.sh so a plain ``spark-submit`` uses the stack.

    Written to ``var/conf/spark`` and to the venv's own ``pyspark/conf`` (``$SPARK_HOME/conf``),
    which spark-submit reads before the JVM starts: settings such as the metastore's JDBC driver
    on the driver class path cannot be applied later from Python.
    """
    conf = spark_conf(cfg)
    defaults = "".join(f"{key} {value}\n" for key, value in sorted(conf.items()))
    env = "".join(f'export {key}="${{{key}:-{value}}}"\n' for key, value in spark_env().items()
                  if key != "SPARK_HOME")
    header = f"# written by tradelake from {cfg.source} (profile {cfg.profile}); do not edit\n"
    own, venv_conf = cfg.var_dir / "conf" / "spark", spark_home() / "conf"
    for target in (own, venv_conf):
        try:
            target.mkdir(parents=True, exist_ok=True)
            (target / "spark-defaults.conf").write_text(header + defaults)
            (target / "spark-env.sh").write_text("#!/usr/bin/env bash\n" + header + env)
        except PermissionError:
            # e.g. a shared, read-only venv: the var/ copy still works through SPARK_CONF_DIR
            log.warning("cannot write %s; run spark-submit with SPARK_CONF_DIR=%s", target, own)
    return own


def spark_submit_command(cfg: Config, script: Path, args: list[str],
                         env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of ``spark-submit script args`` with the stack's spark-defaults, for
    callers that run it themselves (a long-running streaming job: ``subprocess.Popen``)."""
    conf_dir = write_spark_defaults(cfg)
    argv = [str(spark_home() / "bin" / "spark-submit"), str(script), *args]
    return argv, {**os.environ, **spark_env(), "SPARK_CONF_DIR": str(conf_dir), **(env or {})}


def spark_submit(cfg: Config, script: Path, args: list[str], env: dict[str, str] | None = None,
                 timeout: float | None = None):
    """Run ``spark-submit script args`` as a user would, with the stack's spark-defaults.

    Returns the ``subprocess.CompletedProcess`` (text output captured)."""
    import subprocess

    argv, full_env = spark_submit_command(cfg, script, args, env)
    return subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout)


def get_spark(app_name: str, cfg: Config | None = None,
              extra_conf: dict[str, str] | None = None) -> SparkSession:
    """Get (or create) the process's SparkSession for ``app_name`` with the project settings
    (plus a job's own ``extra_conf``, e.g. the speed layer's fair scheduler)."""
    cfg = cfg or load_config()
    for key, value in spark_env().items():
        os.environ.setdefault(key, value)
    (cfg.var_dir / "tmp" / "spark").mkdir(parents=True, exist_ok=True)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    for key, value in {**spark_conf(cfg), **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    return builder.enableHiveSupport().getOrCreate()
