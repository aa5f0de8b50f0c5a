"""The stack as a user drives it: the CLI's status, down and up, and their exit codes."""

import json
import subprocess
import sys

from tradelake.stack.process import pids_with_marker, port_is_free

CLI = [sys.executable, "-m", "tradelake.cli"]


def run(*words, timeout=400):
    return subprocess.run([*CLI, *words], capture_output=True, text=True, timeout=timeout)


def stack_ports(cfg):
    return [cfg.postgres.port, cfg.hdfs.rpc_port, cfg.hdfs.http_port, cfg.hive.port,
            int(cfg.kafka.bootstrap.rsplit(":", 1)[1]), cfg.hbase.thrift_port,
            cfg.hbase.zookeeper_port]


def test_status_down_up_cycle(stack, cfg):
    status = run("stack", "status", "--json")
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert all(body[s]["up"] for s in ("postgres", "hdfs", "kafka", "hbase", "hive"))

    down = run("stack", "down")
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    marker = f"-Dtradelake.stack={cfg.var_dir}"
    assert pids_with_marker(marker) == []
    assert pids_with_marker(f"-D {cfg.var_dir}/data/postgres/") == []
    assert all(port_is_free("127.0.0.1", port) for port in stack_ports(cfg))

    after = run("stack", "status", "--json")
    assert after.returncode == 3  # some service is not up
    assert not any(json.loads(after.stdout)[s]["up"] for s in ("postgres", "kafka", "hive"))

    up = run("stack", "up")
    assert up.returncode == 0, up.stderr[-3000:]
    assert "stack up in" in up.stderr and "GiB RSS" in up.stdout
    final = json.loads(run("stack", "status", "--json").stdout)
    assert all(final[s]["up"] for s in ("postgres", "hdfs", "kafka", "hbase", "hive"))
