import dataclasses
import xml.etree.ElementTree as ET

import pytest

from tradelake.config import load_config
from tradelake.spark import spark_conf
from tradelake.stack.hdfs import HDFS_CLIENT_CONF, Hdfs

pytestmark = pytest.mark.unit

def test_every_spark_process_and_the_datanode_get_the_hdfs_client_settings(tmp_path):
    base = load_config("local", env={})
    cfg = dataclasses.replace(base, stack=dataclasses.replace(base.stack, var_dir=str(tmp_path)))
    hdfs = Hdfs(cfg)
    hdfs.write_conf()
    site = ET.parse(hdfs.conf_dir / "hdfs-site.xml").getroot()
    written = {p.findtext("name"): p.findtext("value") for p in site.iter("property")}
    conf = spark_conf(cfg)
    for key, value in HDFS_CLIENT_CONF.items():
        assert written[key] == value
        assert conf[f"spark.hadoop.{key}"] == value


def test_a_cluster_profile_keeps_its_own_hdfs_client_settings():
    cluster = load_config("cluster", env={})
    assert not cluster.stack.managed
    assert not [key for key in spark_conf(cluster) if "locateFollowingBlock" in key]
