"""``tradelake stack up|down|status``: the single-node stack as one unit.

``up`` is idempotent (running services are left alone), starts services in dependency order
while letting independent JVMs boot side by side, and returns only when every service answers
its own protocol. ``down`` stops exactly the processes this checkout's stack started and keeps
their data unless asked to purge.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tradelake.config import Config
from tradelake.stack.base import Service, StackPaths
from tradelake.stack.flume import Flume
from tradelake.stack.hbase import HBase
from tradelake.stack.hdfs import Hdfs
from tradelake.stack.hive import HiveThriftServer
from tradelake.stack.kafka import Kafka
from tradelake.stack.postgres import Postgres
from tradelake.stack.process import StackError, cmdline, pids_with_marker, wait_until

log = logging.getLogger(__name__)

SERVICE_CLASSES: dict[str, type[Service]] = {
    "postgres": Postgres,
    "hdfs": Hdfs,
    "kafka": Kafka,
    "hbase": HBase,
    "hive": HiveThriftServer,
    "flume": Flume,
}
OPTIONAL_SERVICES = ("flume",)
STATUS_KEYS = ("postgres", "hdfs", "kafka", "hbase", "hive")


@dataclass
class UpReport:
    seconds_to_healthy: dict[str, float] = field(default_factory=dict)
    already_running: list[str] = field(default_factory=list)
    total_seconds: float = 0.0


class Stack:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.paths = StackPaths(cfg.var_dir)

    def services(self, extra: tuple[str, ...] = ()) -> list[Service]:
        names = list(self.cfg.stack.services) + [n for n in extra if n not in self.cfg.stack.services]
        unknown = [n for n in names if n not in SERVICE_CLASSES]
        if unknown:
            raise StackError(f"unknown service(s) {unknown}; known: {sorted(SERVICE_CLASSES)}")
        return [SERVICE_CLASSES[n](self.cfg) for n in SERVICE_CLASSES if n in names]

    def all_services(self) -> list[Service]:
        return [cls(self.cfg) for cls in SERVICE_CLASSES.values()]

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One `up`/`down` at a time per checkout (tests and a user may race)."""
        self.paths.run.mkdir(parents=True, exist_ok=True)
        with open(self.paths.run / "stack.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _require_managed(self) -> None:
        if not self.cfg.stack.managed:
            raise StackError(
                f"profile '{self.cfg.profile}' points at external services "
                f"(stack.managed: false in {self.cfg.source}); there is nothing to start or stop"
            )

    def up(
        self, extra: tuple[str, ...] = (), on_event: Callable[[str, str], None] | None = None
    ) -> UpReport:
        self._require_managed()
        emit = on_event or (lambda service, message: log.info("%s: %s", service, message))
        report = UpReport()
        started = time.monotonic()
        with self._lock():
            services = self.services(extra)
            for svc in services:
                svc.check_ports()
            launched_at: dict[str, float] = {}
            ready: set[str] = set()
            for svc in services:
                for dep in svc.depends_on:
                    dep_svc = next((s for s in services if s.name == dep), None)
                    if dep_svc and dep not in ready:
                        self._await(dep_svc, launched_at, report, emit)
                        ready.add(dep)
                if svc.running():
                    report.already_running.append(svc.name)
                    emit(svc.name, "already running")
                    launched_at[svc.name] = time.monotonic()
                    continue
                emit(svc.name, "preparing")
                svc.prepare()
                svc.launch()
                launched_at[svc.name] = time.monotonic()
                emit(svc.name, "launched")
                if svc.name == "postgres":  # the metastore schema must exist before Spark starts
                    self._await(svc, launched_at, report, emit)
                    ready.add(svc.name)
            for svc in services:
                if svc.name not in ready:
                    self._await(svc, launched_at, report, emit)
                    ready.add(svc.name)
        report.total_seconds = round(time.monotonic() - started, 1)
        return report

    def _await(self, svc: Service, launched_at: dict[str, float], report: UpReport,
               emit: Callable[[str, str], None]) -> None:
        log_file = svc.processes()[-1].log_file
        wait_until(svc.name, svc.healthy, self.cfg.stack.start_timeout_s, svc.running, log_file)
        svc.after_healthy()
        seconds = round(time.monotonic() - launched_at.get(svc.name, time.monotonic()), 1)
        report.seconds_to_healthy[svc.name] = seconds
        emit(svc.name, f"up ({seconds:.1f}s after launch)")

    def down(self, purge: bool = False, on_event: Callable[[str, str], None] | None = None) -> list[str]:
        """Stop every stack process (optional services too); return the names stopped."""
        self._require_managed()
        emit = on_event or (lambda service, message: log.info("%s: %s", service, message))
        stopped: list[str] = []
        with self._lock():
            for svc in reversed(self.all_services()):
                names = svc.stop()
                for name in names:
                    emit(svc.name, f"stopped {name}")
                stopped += names
            # Anything else still carrying this stack's marker (e.g. a process whose pid file was
            # lost) was started by this stack too.
            for pid in pids_with_marker(self.paths.marker) + pids_with_marker(
                f"-D {self.paths.data('postgres')}/"
            ):
                emit("stack", f"stopping stray pid {pid}: {cmdline(pid)[:80]}")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                stopped.append(f"stray:{pid}")
            if purge:
                for sub in ("data", "conf", "log", "run", "tmp"):
                    shutil.rmtree(self.paths.var / sub, ignore_errors=True)
                emit("stack", f"purged data, logs and config under {self.paths.var} (kept jvm/)")
        return stopped

    def status(self, extra: tuple[str, ...] = ()) -> dict[str, Any]:
        """Health of every service, as ``stack status --json`` prints it."""
        out: dict[str, Any] = {}
        selected = {s.name for s in self.services(extra)}
        for svc in self.all_services():
            if svc.name in OPTIONAL_SERVICES and svc.name not in selected and not svc.running():
                continue
            entry = dict(svc.endpoint())
            try:
                entry["up"] = bool(svc.healthy())
            except Exception as exc:  # noqa: BLE001 - any client failure means "not up"
                entry["up"] = False
                entry["error"] = f"{type(exc).__name__}: {exc}"[:200]
            if self.cfg.stack.managed:
                entry["rss_mb"] = svc.memory()
            out[svc.name] = entry
        out["lake_root"] = self.cfg.lake.root
        out["profile"] = self.cfg.profile
        return out
