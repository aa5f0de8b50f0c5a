import dataclasses
import xml.etree.ElementTree as ET

import pytest

from tradelake.config import load_config
from tradelake.spark import spark_conf
from tradelake.stack.flume import Flume
from tradelake.stack.hbase import HBase
from tradelake.stack.hdfs import HDFS_CLIENT_CONF, Hdfs

pytestmark = pytest.mark.unit


def _properties(path):
    return {p.findtext("name"): p.findtext("value") for p in ET.parse(path).getroot().iter("property")}


def test_every_client_of_the_stacks_hdfs_gets_the_hdfs_client_settings(tmp_path):
    base = load_config("local", env={})
    cfg = dataclasses.replace(base, stack=dataclasses.replace(base.stack, var_dir=str(tmp_path)))
    hdfs, hbase, flume = Hdfs(cfg), HBase(cfg), Flume(cfg)
    hdfs.write_conf()
    hbase.write_conf()
    flume.prepare()
    written = {"the DataNode": _properties(hdfs.conf_dir / "hdfs-site.xml"),
               "HBase": _properties(hbase.conf_dir / "hbase-site.xml"),
               "Flume": _properties(flume.conf_dir / "core-site.xml"),
               "Spark": {k.removeprefix("spark.hadoop."): v for k, v in spark_conf(cfg).items()}}
    for key, value in HDFS_CLIENT_CONF.items():
        assert {client: conf.get(key) for client, conf in written.items()} == dict.fromkeys(written, value)


def test_a_cluster_profile_keeps_its_own_hdfs_client_settings():
    cluster = load_config("cluster", env={})
    assert not cluster.stack.managed
    assert not [key for key in spark_conf(cluster) if "locateFollowingBlock" in key]
