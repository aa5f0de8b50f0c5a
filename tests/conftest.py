"""Shared fixtures. Markers follow the folder: tests/unit -> unit, tests/integration ->
integration, tests/e2e -> e2e. The real local stack is started once per session (or reused if
it is already up, in which case it is left running) and stopped at the end."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest

from tradelake.config import Config, load_config
from tradelake.stack.kafka import delete_topics, list_topics

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts[0]
        if kind in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def cfg() -> Config:
    return load_config("local")


TEST_TOPICS = ("it-", "it.", "it_")  # prefixes of the tests' scratch topics


@pytest.fixture(scope="session")
def stack(cfg: Config):
    """The running single-node stack; yields its ``status`` dict."""
    from tradelake.stack.manager import Stack

    manager = Stack(cfg)
    already_up = all(
        entry["up"] for entry in manager.status().values() if isinstance(entry, dict)
    )
    if not already_up:
        manager.up()
    before = set(list_topics(cfg.kafka.bootstrap))
    try:
        yield manager
    finally:
        # the tests' scratch topics (it-..., it.<run>...) created during the session (one test
        # session per stack at a time: a second one's topics would go too)
        with contextlib.suppress(Exception):
            delete_topics(cfg.kafka.bootstrap, [t for t in set(list_topics(cfg.kafka.bootstrap)) - before
                                                if t.startswith(TEST_TOPICS)])
        if not already_up:
            manager.down()


@pytest.fixture(scope="session")
def spark_submit_env() -> dict[str, str]:
    """Environment for the ``spark-submit`` processes a test starts (directly or through the CLI).

    Those JVMs live from seconds to a couple of minutes on tiny inputs, so most of their CPU goes
    to start-up and JIT compilation; C1-only compilation (``-XX:TieredStopAtLevel=1``) measured
    ~40% less CPU for the smoke job and ~16% less for ``tradelake train`` than the default
    tiered C2, with the same results. Only for those processes: never the stack's own JVMs
    (so never a ``tradelake stack up``) and not this session's long-lived SparkSession."""
    opts = f"{os.environ.get('SPARK_SUBMIT_OPTS', '')} -XX:TieredStopAtLevel=1".strip()
    return {"SPARK_SUBMIT_OPTS": opts}


@pytest.fixture(scope="session")
def spark(cfg: Config, stack):
    """One Hive-enabled SparkSession on the stack's metastore for the whole session."""
    from pyspark.sql import SparkSession

    from tradelake.spark import get_spark

    active = SparkSession.getActiveSession()
    if active is not None and active.conf.get("spark.sql.catalogImplementation", "") != "hive":
        active.stop()  # a plain local_spark from unit tests cannot be turned into a Hive one
    session = get_spark("tradelake-tests", cfg)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def local_spark():
    """A plain local session for unit tests: no Hive, no stack. If a session is already active
    (the Hive one of an integration run) it is reused and left running."""
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()
    session = (SparkSession.builder.master("local[1]")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "1")
               .getOrCreate())
    yield session
    if existing is None:
        session.stop()


@pytest.fixture(scope="session")
def thrift_query(cfg: Config, stack):
    """Run one SQL statement through the Thrift server (as an analyst would) and fetch its rows."""
    import contextlib

    from tradelake.hive_client import connect_hive

    def query(sql: str) -> list[tuple]:
        conn = connect_hive(cfg.hive)
        with contextlib.closing(conn), contextlib.closing(conn.cursor()) as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []

    return query


@pytest.fixture
def scratch_warehouse(cfg: Config, stack):
    """Warehouse databases of this test's own (``it_<hex>_curated`` ...), with their lake folders.

    Yields ``(cfg, env)``: the profile pointing at them, and the same as TRADELAKE_* variables for
    a spark-submit. Dropped (and the folders deleted) afterwards.
    """
    import contextlib
    import dataclasses
    import uuid

    from tradelake.hive_client import connect_hive
    from tradelake.lakefs import lake_fs

    prefix = f"it_{uuid.uuid4().hex[:8]}"
    names = {k: f"{prefix}_{k[:-3]}" for k in ("raw_db", "curated_db", "features_db", "trading_db")}
    scratch = dataclasses.replace(cfg, warehouse=dataclasses.replace(cfg.warehouse, **names))
    env = {f"TRADELAKE_WAREHOUSE__{k.upper()}": v for k, v in names.items()}
    yield scratch, env
    conn = connect_hive(cfg.hive)
    with contextlib.closing(conn), contextlib.closing(conn.cursor()) as cur:
        for db in names.values():
            cur.execute(f"DROP DATABASE IF EXISTS {db} CASCADE")
    fs = lake_fs(cfg)
    for db in names.values():
        if fs.exists(db):
            fs.delete(db, recursive=True)
