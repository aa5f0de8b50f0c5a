"""Shared fixtures. Markers follow the folder: tests/unit -> unit, tests/integration ->
integration, tests/e2e -> e2e. The real local stack is started once per session (or reused if
it is already up, in which case it is left running) and stopped at the end."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tradelake.config import Config, load_config

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
    yield manager
    if not already_up:
        manager.down()


@pytest.fixture(scope="session")
def spark(cfg: Config, stack):
    """One Hive-enabled SparkSession on the stack's metastore for the whole session."""
    from tradelake.spark import get_spark

    session = get_spark("tradelake-tests", cfg)
    yield session
    session.stop()
