"""Start the simulated exchange as a real ``tradelake exchange`` process on a free loopback port."""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from order_routing.exchange.acceptor import port_in_use
from support.full_disk import limit_file_size
from tradelake.config import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    """In a child: SIGTERM it when the test process dies, so a crashed run leaves nothing behind."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclasses.dataclass
class ExchangeProcess:
    port: int
    var_dir: Path
    proc: subprocess.Popen
    clients: tuple[str, ...]

    def message_log(self, client: str, comp_id: str = "SIMEX") -> Path:
        """QuickFIX's log of every message on the session with ``client`` (both directions)."""
        return self.var_dir / "fix" / "exchange" / "log" / f"FIX.4.4-{comp_id}-{client}.messages.current.log"

    def fills(self, client: str) -> dict[str, tuple[str, float]]:
        """ExecID -> (symbol, signed quantity) of every fill the exchange reported to ``client``,
        from its FIX message log (a resent report counted once)."""
        out = {}
        for line in self.message_log(client).read_text().splitlines():
            f = fix_fields(line)
            if f.get("35") == "8" and f.get("49") == "SIMEX" and f.get("150") == "F":
                out[f["17"]] = (f["55"], float(f["32"]) * (1 if f["54"] == "1" else -1))
        return out

    def positions(self, client: str) -> dict[str, float]:
        """The non-zero position per symbol the exchange's fills give ``client``."""
        position: dict[str, float] = {}
        for symbol, signed in self.fills(client).values():
            position[symbol] = position.get(symbol, 0.0) + signed
        return {symbol: qty for symbol, qty in position.items() if qty}

    def stop(self) -> dict:
        """SIGTERM; the exit must be clean (0). Returns the exchange's JSON summary."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, (self.var_dir / "exchange.stderr").read_text()[-3000:]
        return json.loads(out.strip().splitlines()[-1])


def start_exchange(var_dir: Path, *, symbols: dict[str, float | None], clients: list[str],
                   extra_env: dict[str, str] | None = None,
                   max_file_bytes: int | None = None) -> ExchangeProcess:
    """``symbols``: listed symbols and their seeded marks (None: no mark). ``max_file_bytes``: the
    exchange may not grow a file past that size, as on a full disk (``support.full_disk``)."""
    port = free_port()
    env = dict(os.environ, TRADELAKE_STACK__VAR_DIR=str(var_dir), **(extra_env or {}))
    cmd = [sys.executable, "-m", "tradelake.cli", "exchange", "--profile", "local", "--port", str(port),
           "--symbols", ",".join(symbols), "--clients", ",".join(clients), "--no-kafka-marks",
           "--status-interval", "0"]
    for symbol, mark in symbols.items():
        if mark is not None:
            cmd += ["--mark", f"{symbol}={mark}"]
    stderr = (var_dir / "exchange.stderr").open("w")
    def preexec() -> None:
        die_with_parent()
        if max_file_bytes is not None:
            limit_file_size(max_file_bytes)

    proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
                            preexec_fn=preexec)
    deadline = time.monotonic() + 30
    while not port_in_use(port):
        assert proc.poll() is None, (var_dir / "exchange.stderr").read_text()
        assert time.monotonic() < deadline, "the exchange did not listen within 30 s"
        time.sleep(0.1)
    return ExchangeProcess(port, var_dir, proc, tuple(clients))


def fix_fields(line: str) -> dict[str, str]:
    """A logged FIX message's fields (the log line is '<time> : <message>', SOH-separated)."""
    message = line.split(" : ", 1)[-1]
    return dict(f.split("=", 1) for f in message.rstrip("\n").split("\x01") if "=" in f)
