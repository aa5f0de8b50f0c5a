from pathlib import Path

import pytest

from tradelake.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


def test_local_profile_is_default_and_all_on_loopback():
    cfg = load_config(env={})
    assert cfg.profile == "local"
    assert cfg.postgres.host == cfg.hdfs.namenode_host == cfg.hive.host == "127.0.0.1"
    assert cfg.kafka.bootstrap.startswith("127.0.0.1:")
    assert cfg.lake.root.startswith("hdfs://127.0.0.1:")


def test_profile_from_environment_and_cluster_example_loads():
    cfg = load_config(env={"TRADELAKE_PROFILE": "cluster"})
    assert cfg.profile == "cluster"
    assert cfg.spark.master == "yarn"
    assert cfg.stack.managed is False
    assert cfg.hive.metastore_uri.startswith("thrift://")
    assert cfg.spark.extra_conf["spark.executor.instances"] == "8"


def test_environment_overrides_any_key_with_type_conversion():
    cfg = load_config("local", env={"TRADELAKE_KAFKA__NUM_PARTITIONS": "9",
                                    "TRADELAKE_STACK__MANAGED": "false",
                                    "TRADELAKE_STACK__SERVICES": "postgres,kafka"})
    assert cfg.kafka.num_partitions == 9
    assert cfg.stack.managed is False
    assert cfg.stack.services == ("postgres", "kafka")


def test_bad_override_names_the_variable():
    with pytest.raises(ConfigError, match="TRADELAKE_POSTGRES__PORT.*'postgres.port' must be int"):
        load_config("local", env={"TRADELAKE_POSTGRES__PORT": "fifteen"})


def test_wrong_type_names_key_and_file(tmp_path):
    base = Path(load_config(env={}).source).read_text()
    path = write(tmp_path, base.replace("port: 15432", "port: [1, 2]"))
    with pytest.raises(ConfigError) as err:
        load_config(path=path, env={})
    assert str(path) in str(err.value) and "'postgres.port' must be int" in str(err.value)


def test_missing_required_key_names_key_and_file(tmp_path):
    base = Path(load_config(env={}).source).read_text()
    path = write(tmp_path, base.replace("  bootstrap: 127.0.0.1:19092\n", ""))
    with pytest.raises(ConfigError, match=r"p\.yaml: required key 'kafka\.bootstrap' is missing"):
        load_config(path=path, env={})


def test_unknown_key_is_refused(tmp_path):
    base = Path(load_config(env={}).source).read_text()
    path = write(tmp_path, base.replace("  num_partitions: 3", "  num_partitons: 3"))
    with pytest.raises(ConfigError, match="unknown key 'kafka.num_partitons'"):
        load_config(path=path, env={})


def test_secrets_only_from_environment_and_hidden_in_repr(tmp_path):
    cfg = load_config("local", env={"TRADELAKE_POSTGRES__PASSWORD": "hunter2"})
    assert cfg.postgres.password == "hunter2"
    assert "hunter2" not in repr(cfg)
    assert "hunter2" not in cfg.postgres.public_dsn()
    base = Path(cfg.source).read_text()
    path = write(tmp_path, base.replace("  user: tradelake\n", "  user: tradelake\n  password: x\n", 1))
    with pytest.raises(ConfigError, match="secret; set it in the environment as "
                                          "TRADELAKE_POSTGRES__PASSWORD"):
        load_config(path=path, env={})


def test_unknown_profile_lists_available():
    with pytest.raises(ConfigError, match="available: cluster, local"):
        load_config("nope", env={})


def test_config_is_frozen():
    cfg = load_config(env={})
    with pytest.raises(AttributeError):
        cfg.kafka.bootstrap = "elsewhere:9092"  # type: ignore[misc]


def test_the_routers_market_data_client_is_checked_at_load():
    assert load_config("local", env={}).routing.market_data_client == "librdkafka"
    assert load_config("local", env={"TRADELAKE_ROUTING__MARKET_DATA_CLIENT": "kafka-python"}
                       ).routing.market_data_client == "kafka-python"
    with pytest.raises(ConfigError, match="market_data_client must be librdkafka or kafka-python"):
        load_config("local", env={"TRADELAKE_ROUTING__MARKET_DATA_CLIENT": "rdkafka"})
