import dataclasses
import socket

import pytest

from tradelake.config import load_config
from tradelake.stack.kafka import Kafka
from tradelake.stack.manager import Stack
from tradelake.stack.process import StackError


def test_a_taken_port_gives_a_clear_error(tmp_path):
    base = load_config("local", env={})
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cfg = dataclasses.replace(
            base,
            stack=dataclasses.replace(base.stack, var_dir=str(tmp_path)),
            kafka=dataclasses.replace(base.kafka, bootstrap=f"127.0.0.1:{port}"),
        )
        with pytest.raises(StackError, match=f"kafka: port 127.0.0.1:{port} is already in use"):
            Kafka(cfg).check_ports()


def test_unknown_service_in_config_is_refused(tmp_path):
    base = load_config("local", env={})
    cfg = dataclasses.replace(base, stack=dataclasses.replace(
        base.stack, var_dir=str(tmp_path), services=("postgres", "cassandra")))
    with pytest.raises(StackError, match=r"unknown service\(s\) \['cassandra'\]"):
        Stack(cfg).services()
