"""Starting, finding and stopping the stack's own processes.

Every process the stack starts carries a marker on its command line
(``-Dtradelake.stack=<var dir>``, or the data directory for PostgreSQL) and has a pid file under
``var/run``. ``down`` stops a pid only if its command line still carries the marker, so a
recycled pid or somebody else's service on the same port is never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A service could not be set up, started or reached; the message says which and why."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def group_rss_mb(pgid: int) -> float:
    """RSS in MiB of every process in a process group (a server and its workers)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # field 5 (pgrp) follows the parenthesised command name, which may contain spaces
        if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
            total += rss_mb(int(entry.name))
    return total


def pids_with_marker(marker: str) -> list[int]:
    """Every live process whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and marker in cmdline(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def log_tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


class ManagedProcess:
    """One long-running process of the stack, tracked by a pid file and a command-line marker."""

    def __init__(self, name: str, run_dir: Path, log_dir: Path, marker: str) -> None:
        self.name = name
        self.pid_file = run_dir / f"{name}.pid"
        self.log_file = log_dir / f"{name}.log"
        self.marker = marker
        self._popen: subprocess.Popen | None = None

    def pid(self) -> int | None:
        """The pid if the process is alive and still ours, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if self.marker in cmdline(pid):
            return pid
        return None

    def running(self) -> bool:
        if self._popen is not None and self._popen.pid == self._pid_from_file():
            # started by this object: ask the OS about our own child, no /proc parsing
            return self._popen.poll() is None
        return self.pid() is not None

    def _pid_from_file(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def start(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        **popen: Any,
    ) -> int:
        """Start detached, output appended to the log file; ``popen`` may drop privileges."""
        if self.running():
            return self.pid() or 0
        if self.marker not in " ".join(argv):
            raise StackError(f"{self.name}: refusing to start a process without its marker")
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:
            out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} start {self.name}\n".encode())
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,  # its own process group: `down` stops it and its children
                **popen,
            )
        self.pid_file.write_text(str(proc.pid))
        self._popen = proc
        # Popen returns once the child's exec has begun, but /proc/<pid>/cmdline shows the new
        # command line only a moment later; until then pid() (which checks the marker there)
        # would not recognise the process as ours. Wait for it (or for the child to exit).
        deadline = time.monotonic() + 5.0
        while self.marker not in cmdline(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        log.info("started %s (pid %d), log %s", self.name, proc.pid, self.log_file)
        return proc.pid

    def stop(self, timeout: float = 30.0, signal_name: str = "SIGTERM") -> bool:
        """Signal the process group, then SIGKILL after ``timeout``. True if something stopped."""
        pid = self._pid_from_file() if self.running() else None
        if pid is None and self._popen is not None and self._popen.poll() is None:
            pid = self._popen.pid  # our own child, even if its pid file is gone
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False

        def alive() -> bool:
            if self._popen is not None and self._popen.pid == pid:
                return self._popen.poll() is None
            return self.marker in cmdline(pid)

        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, getattr(signal, signal_name))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            time.sleep(0.2)
        if alive():
            log.warning("%s (pid %d) ignored %s for %.0fs; killing", self.name, pid, signal_name,
                        timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


def wait_until(
    what: str, check: Callable[[], bool], timeout: float, alive: Callable[[], bool], log_file: Path
) -> float:
    """Poll ``check`` until true; fail early if the process died. Returns seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except Exception as exc:  # noqa: BLE001 - any client error just means "not yet"
            log.debug("%s not ready: %s", what, exc)
        if not alive():
            raise StackError(f"{what} exited during start-up. Last log lines ({log_file}):\n"
                             f"{log_tail(log_file)}")
        time.sleep(1.0)
    raise StackError(f"{what} did not answer within {timeout:.0f}s. Last log lines ({log_file}):\n"
                     f"{log_tail(log_file)}")


def run_checked(argv: Sequence[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a one-shot set-up command; on failure raise with its output."""
    result = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise StackError(f"{what} failed (exit {result.returncode}):\n"
                         f"{(result.stdout + result.stderr)[-3000:]}")
    return result
