import socket
import sys

import pytest

from tradelake.stack.process import (
    ManagedProcess,
    StackError,
    pids_with_marker,
    port_is_free,
    wait_until,
)


def sleeper(marker: str) -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(60)", marker]


def test_start_finds_and_stops_only_its_own_process(tmp_path):
    marker = f"-Dtradelake.test={tmp_path}"
    proc = ManagedProcess("sleeper", tmp_path / "run", tmp_path / "log", marker)
    pid = proc.start(sleeper(marker))
    assert proc.running() and proc.pid() == pid
    assert pids_with_marker(marker) == [pid]
    assert proc.start(sleeper(marker)) == pid  # idempotent: no second copy
    assert proc.stop(timeout=5)
    assert not proc.running() and pids_with_marker(marker) == []
    assert not proc.pid_file.exists()
    assert proc.stop() is False  # nothing left to stop


def test_a_recycled_pid_without_our_marker_is_not_ours(tmp_path):
    proc = ManagedProcess("other", tmp_path / "run", tmp_path / "log", "-Dnot.this.one")
    proc.pid_file.parent.mkdir(parents=True)
    proc.pid_file.write_text("1")  # pid 1 exists but does not carry the marker
    assert proc.pid() is None
    assert proc.stop() is False


def test_refuses_to_start_without_marker(tmp_path):
    proc = ManagedProcess("x", tmp_path, tmp_path, "-Dmarker=1")
    with pytest.raises(StackError, match="without its marker"):
        proc.start([sys.executable, "-c", "pass"])


def test_port_is_free_sees_a_listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
    assert port_is_free("127.0.0.1", port)


def test_wait_until_reports_a_dead_process_with_its_log(tmp_path):
    log = tmp_path / "svc.log"
    log.write_text("line 1\nFATAL: could not bind\n")
    with pytest.raises(StackError, match="(?s)svc exited during start-up.*FATAL: could not bind"):
        wait_until("svc", lambda: False, timeout=5, alive=lambda: False, log_file=log)


def test_wait_until_times_out_with_log_tail(tmp_path):
    log = tmp_path / "svc.log"
    log.write_text("still starting\n")
    with pytest.raises(StackError, match="(?s)did not answer within 1s.*still starting"):
        wait_until("svc", lambda: False, timeout=1, alive=lambda: True, log_file=log)
