"""What every service of the local stack provides, and the paths they share under ``var/``."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradelake.config import Config
from tradelake.stack.process import ManagedProcess, StackError, group_rss_mb, port_is_free


@dataclass(frozen=True)
class StackPaths:
    var: Path

    @property
    def run(self) -> Path:
        return self.var / "run"

    @property
    def logs(self) -> Path:
        return self.var / "log"

    @property
    def conf(self) -> Path:
        return self.var / "conf"

    @property
    def tmp(self) -> Path:
        return self.var / "tmp"

    @property
    def jvm(self) -> Path:
        return self.var / "jvm"

    def data(self, service: str) -> Path:
        return self.var / "data" / service

    @property
    def marker(self) -> str:
        """Put on every JVM command line we start: identifies this checkout's stack."""
        return f"-Dtradelake.stack={self.var}"


class Service(ABC):
    """A service of the single-node stack: prepared once, started, health-checked, stopped."""

    name: str
    depends_on: tuple[str, ...] = ()

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.paths = StackPaths(cfg.var_dir)
        self.host = cfg.stack.bind_host
        self._procs: list[ManagedProcess] | None = None

    # -- what each service defines -------------------------------------------------------
    def processes(self) -> list[ManagedProcess]:
        """The processes this service runs, in start order; the same objects on every call, so
        a process started through them is watched through its own child handle."""
        if self._procs is None:
            self._procs = self._processes()
        return self._procs

    @abstractmethod
    def _processes(self) -> list[ManagedProcess]:
        """Build the service's process handles (called once)."""

    @abstractmethod
    def ports(self) -> list[int]:
        """Ports this service binds on ``bind_host``."""

    @abstractmethod
    def prepare(self) -> None:
        """One-time, idempotent set-up: config files, formatting, schemas."""

    @abstractmethod
    def launch(self) -> None:
        """Start the processes (without waiting for them to answer)."""

    @abstractmethod
    def healthy(self) -> bool:
        """True if the service answers its clients' protocol."""

    @abstractmethod
    def endpoint(self) -> dict[str, Any]:
        """Where clients connect, for ``stack status``."""

    def after_healthy(self) -> None:  # noqa: B027 - optional hook, most services need none
        """Post-start work that needs the service answering (create databases, dirs)."""

    # -- shared behaviour ---------------------------------------------------------------
    def running(self) -> bool:
        return all(p.running() for p in self.processes())

    def check_ports(self) -> None:
        """Fail clearly if a port we need is held by a process that is not ours."""
        if any(p.running() for p in self.processes()):
            return
        for port in self.ports():
            if not port_is_free(self.host, port):
                raise StackError(
                    f"{self.name}: port {self.host}:{port} is already in use by another process. "
                    f"Stop it, or move {self.name} to a free port in conf/ "
                    f"(or with a TRADELAKE_{self.name.upper()}__... environment override)."
                )

    def stop(self) -> list[str]:
        stopped = []
        for proc in reversed(self.processes()):
            if proc.stop():
                stopped.append(proc.name)
        return stopped

    def memory(self) -> dict[str, float]:
        """RSS in MiB per process of this service (including children: the whole group)."""
        out = {}
        for proc in self.processes():
            pid = proc.pid()
            if pid:
                out[proc.name] = round(group_rss_mb(pid), 1)
        return out

    def purge(self) -> None:
        shutil.rmtree(self.paths.data(self.name), ignore_errors=True)
        shutil.rmtree(self.paths.conf / self.name, ignore_errors=True)
