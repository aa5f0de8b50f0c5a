"""The simulated exchange: a QuickFIX FIX 4.4 acceptor in front of the ``Venue`` (one limit order
book per symbol; what each request does is in ``venue.py``).

Order state is in memory (a simulation); sequence numbers and every sent message are in a
FileStore under ``<var_dir>/<routing.exchange.store_dir>`` (FIX logs in ``log/``), so a client that
restarts is resent what it missed: QuickFIX answers ResendRequests from the store, and reports
for a logged-off client are stored and sent that way.

Marks (the market maker quotes around them): seeded (``marks=``, ``--mark``), from trades between
clients on the exchange, and with ``follow_kafka_marks`` from the market-data trades topic (the
latest price by ts of each Arrow message; key = symbol).

Logon auth: with ``routing.exchange.username``/``password`` set, a Logon must carry them (553/554).
The quickfix-ssl 1.15.1 bindings abort the process when ``fromAdmin`` raises ``RejectLogon`` (see
``order_routing.fix_route``), so a refusal is done by hand: the Logon reply is rewritten into a
Logout with the reason in Text (58), the connection dropped, and the incoming sequence number
restored.
QuickFIX 1.15 has no SocketAcceptHost: the acceptor listens on every interface.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from order_routing.exchange.venue import Venue
from order_routing.fix_common import (
    BEGIN_STRING,
    common_settings,
    fields,
    load_quickfix,
    scrub_passwords,
    send_fix,
    write_settings,
)

if TYPE_CHECKING:
    from tradelake.config import ExchangeConfig

log = logging.getLogger(__name__)


class ExchangeError(RuntimeError):
    """The exchange cannot start (port in use, bad settings)."""


def port_in_use(port: int) -> bool:
    """True if something listens on ``port`` (QuickFIX 1.15 binds every interface)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


class SimExchange:
    """The acceptor and its books. ``clients``: the SenderCompIDs accepted (one session each)."""

    def __init__(self, cfg: ExchangeConfig, var_dir: Path, *, symbols: Sequence[str],
                 clients: Sequence[str], marks: Mapping[str, float] | None = None,
                 port: int | None = None) -> None:
        if not symbols or not clients:
            raise ExchangeError("the exchange needs at least one symbol and one client comp id")
        self.cfg, self.port = cfg, port or cfg.port
        self.store_dir = Path(var_dir) / cfg.store_dir
        self.clients = tuple(clients)
        self._fix = load_quickfix()
        self.venue = Venue(cfg, symbols, self._send)
        self.books = self.venue.books
        self._stopping = threading.Event()
        self._sessions: dict[str, object] = {}  # client comp id -> quickfix.Session
        self.logged_on: set[str] = set()
        self._refused: dict[str, tuple[str, int]] = {}  # comp id -> (why, expected incoming seq)
        self._relogon: set[str] = set()  # clients logged out after a store failure, to enable again
        self.logons_refused = 0
        # client -> [its message log, offset to scrub passwords from]
        self._logs = {c: [self.store_dir / "log" / f"{BEGIN_STRING}-{cfg.comp_id}-{c}.messages.current.log",
                          0] for c in self.clients}
        self._mark_ts: dict[str, int] = {}  # symbol -> ts of the trade its mark came from
        self._acceptor = None
        self._app = _application_class(self._fix)(self)
        for symbol, price in (marks or {}).items():
            self.set_mark(symbol, price)

    # ----- lifecycle
    def start(self, timeout_s: float = 5.0) -> None:
        if port_in_use(self.port):
            raise ExchangeError(f"port {self.port} is already in use (another exchange? pick --port)")
        fix = self._fix
        defaults = common_settings(self.store_dir, 30) | {
            "ConnectionType": "acceptor", "SocketAcceptPort": self.port, "SocketReuseAddress": "Y",
            "ResetOnLogon": "N", "RefreshOnLogon": "Y"}  # a store a full disk left in error, reopened
        sessions = [{"BeginString": BEGIN_STRING, "SenderCompID": self.cfg.comp_id, "TargetCompID": c}
                    for c in self.clients]
        settings = write_settings(self.store_dir / "acceptor.cfg", defaults, sessions)
        for entry in self._logs.values():
            entry[1] = entry[0].stat().st_size if entry[0].exists() else 0
        self._acceptor = fix.SocketAcceptor(self._app, fix.FileStoreFactory(settings), settings,
                                            fix.FileLogFactory(settings))
        self._acceptor.start()
        deadline = time.monotonic() + timeout_s
        while not port_in_use(self.port):
            if time.monotonic() > deadline:
                raise ExchangeError(f"the acceptor did not listen on port {self.port} within {timeout_s:g}s")
            time.sleep(0.02)

    def stop(self) -> None:
        self._stopping.set()
        with self.venue.lock:  # no send to a session the acceptor is about to free
            self._sessions.clear()
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.stop()
            del acceptor  # unregisters the sessions now, not at some later collection

    def stats(self) -> dict[str, object]:
        with self.venue.lock:
            marks = sum(1 for b in self.books.values() if b.mark)
            return {"sessions": len(self.clients), "logged_on": sorted(self.logged_on),
                    "logons_refused": self.logons_refused, "marked": f"{marks}/{len(self.books)}",
                    **self.venue.counts}

    def _send(self, key: str, message: str) -> None:
        # Sent even while the client is logged off: QuickFIX stores it and resends it on request.
        # Called under the venue lock; no session left means the exchange is stopping.
        session = self._sessions.get(key)
        if session is not None and not send_fix(self._fix, session, message):
            self.venue.counts["reports_lost"] += 1
            log.error("FIX %s: QuickFIX's store cannot be written (disk full?): report not sent, not "
                      "stored for resend (logging the client out: its next logon reopens the store): %s",
                      key, message.replace("\x01", "|"))
            if key in self.logged_on:
                self._relogon.add(key)  # onLogout enables the session again
                session.logout("message store failure")

    # ----- marks
    def set_mark(self, symbol: str, price: float) -> None:
        """New mark for ``symbol`` (unknown symbols ignored)."""
        self.venue.set_mark(symbol, price)

    def follow_kafka_marks(self, bootstrap: str, topic: str) -> threading.Thread:
        """Follow the trades topic (Arrow IPC per message, key = symbol): mark = latest price by ts."""
        thread = threading.Thread(target=self._follow, args=(bootstrap, topic), name="exchange-marks",
                                  daemon=True)
        thread.start()
        return thread

    def _follow(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        warned = False
        log.info("marks: connecting to Kafka %s for %s (the market maker waits for marks)", bootstrap, topic)
        while not self._stopping.is_set():
            try:
                consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                         auto_offset_reset="latest", enable_auto_commit=False,
                                         client_id="tradelake-exchange-marks")
            except KafkaError as exc:
                if not warned:
                    log.warning("marks: Kafka %s unreachable (%s); retrying every 10 s", bootstrap, exc)
                    warned = True
                self._stopping.wait(10)
                continue
            log.info("marks: following %s on %s", topic, bootstrap)
            try:
                while not self._stopping.is_set():
                    for records in consumer.poll(timeout_ms=500).values():
                        for rec in records:
                            self.mark_from_message(rec.key, rec.value)
            except KafkaError as exc:
                log.warning("marks: kafka error (%s); reconnecting", exc)
            finally:
                consumer.close()

    def mark_from_message(self, key: bytes | None, value: bytes) -> bool:
        """Apply one trades message (ingestion.wire: Arrow IPC, key = symbol): the mark becomes the
        price of its latest trade by ts, unless a later one was seen. True if the mark moved."""
        import pyarrow.compute as pc

        from ingestion.wire import WireError, decode

        try:
            table = decode(value)
        except WireError as exc:
            log.warning("marks: skipping a message: %s", exc)
            return False
        if table.num_rows == 0 or "price" not in table.column_names:
            return False
        symbol = key.decode() if key else table.column("symbol")[0].as_py()
        ts = table.column("ts")
        i = pc.index(ts, pc.max(ts)).as_py()
        last = ts[i].as_py()
        if symbol not in self.books or last < self._mark_ts.get(symbol, last):
            return False
        self._mark_ts[symbol] = last
        self.set_mark(symbol, table.column("price")[i].as_py())
        return True

    # ----- session level (QuickFIX thread)
    def check_logon(self, key: str, user: str | None, password: str | None) -> str | None:
        """Why a Logon is refused, or None when it is accepted."""
        cfg = self.cfg
        ok_user = not cfg.username or hmac.compare_digest(user or "", cfg.username)
        ok_pass = not cfg.password or hmac.compare_digest(password or "", cfg.password)
        return None if ok_user and ok_pass else "bad username or password"


_APP_CLASS: type | None = None


def _application_class(fix) -> type:
    """The exchange's quickfix.Application (defined at first use; every callback catches all)."""
    global _APP_CLASS
    if _APP_CLASS is not None:
        return _APP_CLASS

    class ExchangeApplication(fix.Application):
        def __init__(self, exchange: SimExchange) -> None:
            super().__init__()
            self.ex = exchange

        def onCreate(self, sid) -> None:  # noqa: N802 - QuickFIX's names
            try:
                self.ex._sessions[sid.getTargetCompID().getValue()] = fix.Session.lookupSession(sid)
            except Exception:
                log.exception("onCreate")

        def onLogon(self, sid) -> None:  # noqa: N802
            ex, key = self.ex, sid.getTargetCompID().getValue()
            try:
                refused = ex._refused.pop(key, None)
                if refused is None:
                    with ex.venue.lock:
                        ex.logged_on.add(key)
                    log.info("session %s logged on", key)
                    return
                session = ex._sessions[key]
                session.disconnect()  # the Logout with the reason is already on its way
                # The refused Logon must not use up the client's sequence number (the real client
                # would then be "too low"); our Logout keeps its number: the caller saw it.
                session.setNextTargetMsgSeqNum(refused[1])
            except Exception:
                log.exception("onLogon")

        def onLogout(self, sid) -> None:  # noqa: N802
            try:
                key = sid.getTargetCompID().getValue()
                with self.ex.venue.lock:
                    was_on = key in self.ex.logged_on
                    self.ex.logged_on.discard(key)
                    session = self.ex._sessions.get(key)  # none left: the exchange is stopping
                    if key in self.ex._relogon and session is not None:  # logged out after a store
                        self.ex._relogon.discard(key)  # failure: take logons again
                        session.logon()
                if was_on:
                    log.info("session %s logged out", key)
            except Exception:
                log.exception("onLogout")

        def fromAdmin(self, message, sid) -> None:  # noqa: N802
            ex = self.ex
            try:
                if message.getHeader().getField(35) != "A":
                    return
                d = fields(message.toString())
                key = d["49"]
                log_file = ex._logs[key]  # QuickFIX logged the Logon, password included
                log_file[1] = scrub_passwords(log_file[0], log_file[1])
                why = ex.check_logon(key, d.get("553"), d.get("554"))
                ex._refused.pop(key, None)
                if why is not None:
                    session = ex._sessions[key]
                    ex._refused[key] = (why, session.getExpectedTargetNum())
                    ex.logons_refused += 1
                    log.warning("session %s: logon refused (%s)", key, why)
            except Exception:
                log.exception("fromAdmin")

        def toAdmin(self, message, sid) -> None:  # noqa: N802
            try:
                refused = self.ex._refused.get(sid.getTargetCompID().getValue())
                if refused is not None and message.getHeader().getField(35) == "A":
                    message.getHeader().setField(35, "5")  # our Logon reply becomes the refusal
                    for tag in (98, 108, 141, 789):
                        message.removeField(tag)
                    message.setField(58, f"Logon refused: {refused[0]}")
            except Exception:
                log.exception("toAdmin")

        def toApp(self, message, sid) -> None:  # noqa: N802
            pass

        def fromApp(self, message, sid) -> None:  # noqa: N802
            try:
                self.ex.venue.on_message(message.toString())
            except Exception:
                log.exception("exchange: message handler failed")

    _APP_CLASS = ExchangeApplication
    return ExchangeApplication


if __name__ == "__main__":
    import sys

    from order_routing.exchange.commands import main

    sys.exit(main())
