"""Our FIX 4.4 route to a venue: a QuickFIX initiator implementing ``events.Route``.

Sequence numbers and sent messages live in a FileStore under ``<var_dir>/<routing.fix.store_dir>``
(message and event logs beside it, in ``log/``), so a restart logs on where it left off and the
venue resends what we missed (PossDupFlag 43=Y). Resent reports are passed on like any other: the
OMS is idempotent by ExecID, so nothing is lost and nothing is counted twice. A message QuickFIX
cannot store (a full disk) is not sent: the send raises, and the session logs out and on again so
that QuickFIX reopens its store (``fix_common.send_fix``).

Fast path: messages are built and read as FIX strings (see ``fix_common``); nothing is logged
per message. QuickFIX's message log has them all until a write to it fails (it then stays silent
until the process restarts); the OMS's journal is the record. The password (554) is scrubbed from
QuickFIX's store and log after each logon. The quickfix binding quirks worked around here are
listed in ``order_routing.fix_common``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from order_routing.events import (
    EXEC_TYPE_BY_FIX,
    FIX_ORD_TYPE,
    FIX_SIDE,
    FIX_TIME_IN_FORCE,
    LIMIT,
    ORD_STATUS_BY_FIX,
    SIDE_BY_FIX,
    CancelReject,
    CancelRequest,
    ExecReport,
    OrderError,
    OrderIntent,
    ReplaceRequest,
    ReportHandler,
    RequestReject,
)
from order_routing.fix_common import (
    BEGIN_STRING,
    SOH,
    SentMessages,
    common_settings,
    fields,
    load_quickfix,
    num,
    parse_timestamp,
    scrub_passwords,
    send_fix,
    utc_timestamp,
    write_settings,
)

if TYPE_CHECKING:
    from tradelake.config import FixSessionConfig

log = logging.getLogger(__name__)

RECONNECT_S = 2
# Session IDs with a live initiator in this process. QuickFIX keeps one global registry by ID: a
# second initiator for the same ID, once destroyed, leaves the first one's session dangling
# (a segfault at its next stop), so connect() refuses it.
_ACTIVE: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


class FixRouteError(RuntimeError):
    """The FIX session could not be used: not logged on, logon timed out, bad settings."""


class LogonRefused(FixRouteError):
    """The venue answered our Logon with a Logout; the message carries its Text (58)."""


class FixRoute:
    """A FIX 4.4 initiator session toward the venue (``events.Route``). Reports reach
    ``on_report`` on QuickFIX's thread, in the venue's order, resends included."""

    def __init__(self, cfg: FixSessionConfig, var_dir: Path, *, account: str = "",
                 venue: str = "SIMEX") -> None:
        self.cfg, self.venue, self.account = cfg, venue, account
        self.store_dir = Path(var_dir) / cfg.store_dir
        self._fix = load_quickfix()
        self._sid = self._fix.SessionID(BEGIN_STRING, cfg.sender_comp_id, cfg.target_comp_id)
        self._key = self._sid.toString()
        self._app = _application_class(self._fix)(self)
        self._initiator = None
        self._session = None
        self._on_report: ReportHandler | None = None
        self._send_lock = threading.Lock()
        self._logged_on = threading.Event()
        self._ended = threading.Event()  # logon refused (or closed) while connecting
        self._logout_text: str | None = None
        self._connecting = False
        self._connected_once = False
        self._store_failed = False  # logged out after a store failure: log on again
        self._head = {t: f"8={BEGIN_STRING}{SOH}9=0{SOH}35={t}{SOH}" for t in "DFGH"}
        self._name = self._key.replace("->", "-").replace(":", "-")  # QuickFIX's file names
        # QuickFIX files that get our Logon, password included -> offset to scrub from
        self._secret_files = {self.store_dir / f"{self._name}.body": 0,
                              self.store_dir / "log" / f"{self._name}.messages.current.log": 0}
        self._acct = f"1={account}{SOH}" if account else ""
        self._sent = SentMessages(self.store_dir / self._name)  # to find what a venue's reject refers to
        self.counts = {"sent": 0, "reports": 0, "resent_reports": 0, "bad_reports": 0, "handler_errors": 0,
                       "store_refused": 0}

    # ----- Route
    def connect(self, on_report: ReportHandler, timeout_s: float = 30.0) -> None:
        """Start the session and block until logged on. Raises LogonRefused with the venue's
        reason, or FixRouteError when there is no logon within ``timeout_s``."""
        if self._initiator is not None:
            raise FixRouteError("already connected")
        with _ACTIVE_LOCK:
            if self._key in _ACTIVE:
                raise FixRouteError(f"FIX session {self._key} is already open in this process")
            _ACTIVE.add(self._key)
        fix = self._fix
        self._on_report, self._logout_text = on_report, None
        self._logged_on.clear()
        self._ended.clear()
        self._connecting = True
        for path in self._secret_files:  # earlier runs scrubbed theirs at their logon
            self._secret_files[path] = path.stat().st_size if path.exists() else 0
        cfg = self.cfg
        session = {"BeginString": BEGIN_STRING, "SenderCompID": cfg.sender_comp_id,
                   "TargetCompID": cfg.target_comp_id, "SocketConnectHost": cfg.host,
                   "SocketConnectPort": cfg.port}
        try:
            defaults = common_settings(self.store_dir, cfg.heartbeat_s) | {
                "ConnectionType": "initiator", "ReconnectInterval": RECONNECT_S, "LogonTimeout": 10,
                "ResetOnLogon": "Y" if cfg.reset_on_logon else "N",
                # reopen the store at each logon: one left in error by a full disk logs on again
                "RefreshOnLogon": "Y"}
            settings = write_settings(self.store_dir / "initiator.cfg", defaults, [session])
            self._initiator = fix.SocketInitiator(self._app, fix.FileStoreFactory(settings), settings,
                                                  fix.FileLogFactory(settings))
            self._initiator.start()
        except BaseException:
            self._connecting = False
            self._stop()
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self._key)
            raise
        deadline = time.monotonic() + timeout_s
        while not self._logged_on.is_set():
            if self._ended.is_set() or time.monotonic() > deadline:
                reason, self._connecting = self._logout_text, False
                self._stop()
                where = f"{cfg.target_comp_id} at {cfg.host}:{cfg.port} as {cfg.sender_comp_id}"
                if reason is not None:
                    raise LogonRefused(f"logon to {where} refused: {reason}")
                raise FixRouteError(f"no logon to {where} within {timeout_s:g}s "
                                    f"(last session event: {self._last_event()})")
            self._logged_on.wait(0.05)
        self._connecting = False
        self._connected_once = True

    def send_new(self, order: OrderIntent) -> None:
        body = (f"11={order.cl_ord_id}{SOH}{self._acct}55={order.symbol}{SOH}54={FIX_SIDE[order.side]}{SOH}"
                f"60={utc_timestamp()}{SOH}38={num(order.quantity)}{SOH}40={FIX_ORD_TYPE[order.order_type]}{SOH}"
                f"59={FIX_TIME_IN_FORCE[order.time_in_force]}{SOH}")
        if order.order_type == LIMIT:
            body += f"44={num(order.limit_price)}{SOH}"
        self._send("D", body)

    def send_cancel(self, request: CancelRequest) -> None:
        self._send("F", f"41={request.orig_cl_ord_id}{SOH}11={request.cl_ord_id}{SOH}{self._acct}"
                        f"55={request.symbol}{SOH}54={FIX_SIDE[request.side]}{SOH}"
                        f"60={utc_timestamp()}{SOH}38={num(request.quantity)}{SOH}")

    def send_replace(self, request: ReplaceRequest) -> None:
        body = (f"41={request.orig_cl_ord_id}{SOH}11={request.cl_ord_id}{SOH}{self._acct}"
                f"55={request.symbol}{SOH}54={FIX_SIDE[request.side]}{SOH}60={utc_timestamp()}{SOH}"
                f"38={num(request.quantity)}{SOH}40={FIX_ORD_TYPE[request.order_type]}{SOH}")
        if request.order_type == LIMIT:
            body += f"44={num(request.limit_price)}{SOH}"
        self._send("G", body)

    def request_status(self, cl_ord_id: str, symbol: str, side: str) -> None:
        self._send("H", f"11={cl_ord_id}{SOH}55={symbol}{SOH}54={FIX_SIDE[side]}{SOH}")

    def close(self) -> None:
        """Log out and stop; the store keeps sequence numbers for the next connect."""
        self._stop()

    # ----- state
    @property
    def logged_on(self) -> bool:
        return self._logged_on.is_set()

    # ----- internals
    def _send(self, msg_type: str, body: str) -> None:
        # Refuse rather than store while logged off: QuickFIX would resend the order (PossDup)
        # at the next logon, possibly long after the strategy wanted it.
        with self._send_lock:  # close() cannot free the session under a send
            session = self._session
            if session is None or not self._logged_on.is_set():
                raise FixRouteError(f"FIX session {self._key} is not logged on")
            if not send_fix(self._fix, session, f"{self._head[msg_type]}{body}10=000{SOH}"):
                self.counts["store_refused"] += 1
                self._logged_on.clear()  # nothing more goes out until the store is reopened at logon
                self._store_failed = True  # onLogout enables the session again
                session.logout("message store failure")
                if not session.isLoggedOn():  # the connection was gone already: no onLogout to come
                    session.logon()
                log.error("FIX %s: QuickFIX's store under %s cannot be written (disk full?): logging out, "
                          "to log on again with the store reopened", self._key, self.store_dir)
                raise FixRouteError(f"QuickFIX did not send the message on {self._key}: its store under "
                                    f"{self.store_dir} cannot be written (disk full?); nothing went out")
            self.counts["sent"] += 1

    def _stop(self) -> None:
        with self._send_lock:
            initiator, self._initiator = self._initiator, None
            self._session = None
        if initiator is not None:
            initiator.stop()
            # Drop it now: its destructor unregisters the session ID, which must happen before
            # another route for the same session registers it.
            del initiator
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self._key)
        self._logged_on.clear()

    def _scrub(self) -> None:
        if self.cfg.password:
            for path, start in self._secret_files.items():
                self._secret_files[path] = scrub_passwords(path, start)

    def _last_event(self) -> str:
        path = self.store_dir / "log" / f"{self._name}.event.current.log"
        try:
            lines = path.read_text().strip().splitlines()
        except OSError:
            return "none"
        return lines[-1].split(" : ", 1)[-1] if lines else "none"

    def _on_app(self, raw: str) -> None:
        d = fields(raw)
        msg_type = d.get("35")
        resent = d.get("43") == "Y"
        try:
            if msg_type == "8":
                report = self._exec_report(d)
            elif msg_type == "9":
                ts = d.get("60") or d["52"]
                report = CancelReject(parse_timestamp(ts), d["11"], d["41"], ORD_STATUS_BY_FIX[d["39"]],
                                      "CANCEL" if d.get("434") == "1" else "REPLACE", d.get("58"), self.venue)
            elif msg_type in ("3", "j"):
                report = self._request_reject(d, raw)
                if report is None:
                    return
            else:
                log.warning("FIX %s: ignoring message type %s", self._key, msg_type)
                return
        except (KeyError, ValueError, OrderError) as exc:
            self.counts["bad_reports"] += 1
            log.error("FIX %s: unusable report (%s): %s", self._key, exc, raw.replace(SOH, "|"))
            return
        self.counts["reports"] += 1
        if resent:
            self.counts["resent_reports"] += 1
        try:
            self._on_report(report)
        except Exception:  # QuickFIX counts the message as received: keep it in the log at least
            self.counts["handler_errors"] += 1
            log.exception("FIX %s: report handler failed on %s", self._key, raw.replace(SOH, "|"))

    def _request_reject(self, d: dict[str, str], raw: str) -> RequestReject | None:
        """A session Reject (35=3) or BusinessMessageReject (35=j) of one of our orders, cancels or
        replaces, as the OMS's ``RequestReject``; None (logged) when it refers to another message.
        The refused message is the one our store holds under RefSeqNum (45); a business reject of
        a message no longer stored names it by BusinessRejectRefID (379) and RefMsgType (372)."""
        session_level = d["35"] == "3"
        ref_seq = d.get("45", "")
        stored = self._sent.get(int(ref_seq)) if ref_seq.isdigit() else None
        ref = fields(stored) if stored else {}
        ref_type, cid, orig = ref.get("35"), ref.get("11"), ref.get("41")
        if cid is None and not session_level:
            ref_type, cid = d.get("372"), d.get("379")
        what = "session-level reject" if session_level else "business reject"
        log.warning("FIX %s: %s of our message %s (%s %s): %s", self._key, what, ref_seq or "?",
                    ref_type, cid, raw.replace(SOH, "|"))
        if ref_type not in ("D", "F", "G") or not cid:
            return None
        tag = f"tag {d['371']}, " if "371" in d else ""
        reason = f"{tag}reason {d.get('373' if session_level else '380')}"
        kind = "SESSION_REJECT" if session_level else "BUSINESS_REJECT"
        ts = parse_timestamp(d["52"]) if "52" in d else time.time_ns()
        return RequestReject(ts, cid, f"{kind}: {d.get('58') or 'no text'} ({reason})", self.venue, orig)

    def _exec_report(self, d: dict[str, str]) -> ExecReport:
        get = d.get
        transact, commission = get("60"), get("12")
        return ExecReport(  # positional, in field order: the hot path (two reports per order)
            _transact_ns(transact) if transact else time.time_ns(), d["55"], d["17"], d["11"],
            EXEC_TYPE_BY_FIX[d["150"]], ORD_STATUS_BY_FIX[d["39"]], SIDE_BY_FIX[d["54"]],
            float(get("32", 0.0)), float(get("31", 0.0)), float(d["14"]), float(d["151"]), float(d["6"]),
            get("37"), None if commission is None else float(commission), self.venue, get("41"), get("58"))


_second: tuple[str, int] = ("", 0)  # the last TransactTime's 'YYYYMMDD-HH:MM:SS' and its UTC ns


def _transact_ns(value: str) -> int:
    """``parse_timestamp`` with the whole seconds of the last value cached (reports come in bursts
    within one second): the same result and the same errors."""
    global _second
    head, base = _second
    if value[:17] != head:
        head = value[:17]
        base = parse_timestamp(head)
        _second = (head, base)
    frac = value[18:]
    return base + int(frac) * 10 ** (9 - len(frac)) if frac else base


_APP_CLASS: type | None = None


def _application_class(fix: ModuleType) -> type:
    """The route's quickfix.Application subclass, defined at first use (the module imports without
    loading quickfix). Every callback catches everything: an escaping exception ends the process."""
    global _APP_CLASS
    if _APP_CLASS is not None:
        return _APP_CLASS

    class RouteApplication(fix.Application):
        def __init__(self, route: FixRoute) -> None:
            super().__init__()
            self.route = route

        def onCreate(self, sid) -> None:  # noqa: N802 - QuickFIX's names
            pass

        def onLogon(self, sid) -> None:  # noqa: N802
            route = self.route
            try:
                route._scrub()
                route._session = fix.Session.lookupSession(sid)
                route._logged_on.set()
                log.info("FIX %s logged on (%s)", sid.toString(),
                         "reconnected" if route._connected_once else "connected")
            except Exception:
                log.exception("FIX onLogon")

        def onLogout(self, sid) -> None:  # noqa: N802
            route = self.route
            try:
                route._scrub()
                was_on = route._logged_on.is_set() or route._store_failed
                route._logged_on.clear()
                if route._store_failed:  # our logout() disabled the session: let it log on again
                    route._store_failed = False
                    session = route._session
                    if session is not None:
                        session.logon()
                if route._connecting and route._logout_text is not None:
                    route._ended.set()  # refused while connecting: connect() raises
                elif was_on and route._initiator is not None:
                    log.warning("FIX %s logged out%s; QuickFIX reconnects every %ss", sid.toString(),
                                f" ({route._logout_text})" if route._logout_text else "", RECONNECT_S)
            except Exception:
                log.exception("FIX onLogout")

        def toAdmin(self, message, sid) -> None:  # noqa: N802
            try:
                cfg = self.route.cfg
                if (cfg.username or cfg.password) and message.getHeader().getField(35) == "A":
                    if cfg.username:
                        message.setField(553, cfg.username)
                    if cfg.password:  # scrubbed from QuickFIX's store and log at logon (_scrub)
                        message.setField(554, cfg.password)
            except Exception:
                log.exception("FIX toAdmin")

        def fromAdmin(self, message, sid) -> None:  # noqa: N802
            try:
                msg_type = message.getHeader().getField(35)
                if msg_type == "5":
                    self.route._logout_text = message.getField(58) if message.isSetField(58) else ""
                elif msg_type == "3":  # refused at the session level: maybe one of our orders
                    self.route._on_app(message.toString())
            except Exception:
                log.exception("FIX fromAdmin")

        def toApp(self, message, sid) -> None:  # noqa: N802
            pass

        def fromApp(self, message, sid) -> None:  # noqa: N802
            try:
                self.route._on_app(message.toString())
            except Exception:
                log.exception("FIX report handler failed")

    _APP_CLASS = RouteApplication
    return RouteApplication
