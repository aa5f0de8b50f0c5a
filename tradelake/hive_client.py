"""The one way this project opens a HiveServer2 connection (Spark Thrift Server): pyhive with the
profile's host, port, auth mode, user and (from the environment only) password."""

from __future__ import annotations

from typing import Any

from tradelake.config import HiveConfig


def connect_hive(hive: HiveConfig):
    from pyhive import hive as pyhive

    kwargs: dict[str, Any] = {"host": hive.host, "port": hive.port, "auth": hive.auth,
                              "username": hive.username}
    if hive.password:
        kwargs["password"] = hive.password
    return pyhive.connect(**kwargs)
