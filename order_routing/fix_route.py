"""Our FIX 4.4 route to a venue: a QuickFIX initiator implementing ``events.Route``.

Sequence numbers and sent messages live in a FileStore under ``<var_dir>/<routing.fix.store_dir>``
(message and event logs beside it, in ``log/``), so a restart logs on where it left off and the
venue resends what we missed (PossDupFlag 43=Y). Resent reports are passed on like any other: the
OMS is idempotent by ExecID, so nothing is lost and nothing is counted twice.

Fast path: outgoing messages are built as one raw FIX string and parsed by QuickFIX in a single
call (each SWIG ``setField`` costs ~2 us, the whole string ~8 us); incoming ones are read with one
``toString`` and a split rather than a ``getField`` per tag. Nothing is logged per message above
DEBUG (QuickFIX's own message log is the audit trail).

Quirks of the quickfix-ssl 1.15.1 bindings this module works around (see also the exchange):
- importing ``quickfix`` resets SIGINT to SIG_DFL (no more KeyboardInterrupt): ``load_quickfix``
  restores the handler;
- a Python exception escaping an Application callback ends the process (``Py_Exit`` or
  ``std::terminate``), even ``RejectLogon``/``DoNotSend``: every callback here catches everything;
- any C++ exception from a wrapped call (a bad setting, a port in use) aborts the process, so
  settings are generated, never user-written, and ports are checked before QuickFIX binds them;
- there is no NonStopSession: sessions are weekly (Sunday 00:00 to Saturday 23:59:59 UTC), the
  only time QuickFIX resets sequence numbers by itself.
"""

from __future__ import annotations

import calendar
import logging
import signal
import sys
import sysconfig
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
)

if TYPE_CHECKING:
    from tradelake.config import FixSessionConfig

log = logging.getLogger(__name__)

BEGIN_STRING = "FIX.4.4"
SOH = "\x01"
RECONNECT_S = 2


class FixRouteError(RuntimeError):
    """The FIX session could not be used: not logged on, logon timed out, bad settings."""


class LogonRefused(FixRouteError):
    """The venue answered our Logon with a Logout; the message carries its Text (58)."""


def load_quickfix() -> ModuleType:
    """Import quickfix, keeping the SIGINT handler its module init resets to SIG_DFL."""
    if "quickfix" in sys.modules:
        return sys.modules["quickfix"]
    previous = signal.getsignal(signal.SIGINT)
    import quickfix

    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, previous)
    return quickfix


def data_dictionary() -> Path:
    """The FIX44.xml the quickfix wheel installs under ``<venv>/share/quickfix/``."""
    for root in (sysconfig.get_paths()["data"], sys.prefix, sys.base_prefix):
        path = Path(root) / "share" / "quickfix" / "FIX44.xml"
        if path.is_file():
            return path
    raise FixRouteError("FIX44.xml not found under <prefix>/share/quickfix/ (is quickfix-ssl installed?)")


def write_settings(path: Path, defaults: dict[str, object], sessions: list[dict[str, object]]):
    """Write a QuickFIX settings file (kept for inspection) and load it."""
    lines = ["[DEFAULT]"] + [f"{k}={v}" for k, v in defaults.items()]
    for session in sessions:
        lines += ["", "[SESSION]"] + [f"{k}={v}" for k, v in session.items()]
    text = "\n".join(lines) + "\n"
    if any(ch in str(v) for v in (*defaults.values(), *(x for s in sessions for x in s.values()))
           for ch in "\n\r"):
        raise FixRouteError(f"{path}: a setting contains a line break")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return load_quickfix().SessionSettings(str(path))


def common_settings(store: Path, heartbeat_s: int) -> dict[str, object]:
    """Settings both ends share: FileStore + FileLog, weekly session, FIX44 dictionary."""
    return {"FileStorePath": store, "FileLogPath": store / "log", "StartDay": "sunday",
            "StartTime": "00:00:00", "EndDay": "saturday", "EndTime": "23:59:59",
            "HeartBtInt": heartbeat_s, "UseDataDictionary": "Y", "DataDictionary": data_dictionary(),
            "ValidateUserDefinedFields": "N", "AllowUnknownMsgFields": "Y", "SocketNodelay": "Y",
            "PersistMessages": "Y", "ResetOnLogout": "N", "ResetOnDisconnect": "N"}


_DAY_NS: dict[str, int] = {}
_now_sec = -1
_now_prefix = ""


def utc_timestamp(ns: int | None = None) -> str:
    """FIX UTCTimestamp with milliseconds (FIX 4.4), from ns or now; the date part is cached."""
    global _now_sec, _now_prefix
    ns = time.time_ns() if ns is None else ns
    sec = ns // 1_000_000_000
    if sec != _now_sec:
        _now_sec, _now_prefix = sec, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(sec))
    return f"{_now_prefix}.{ns // 1_000_000 % 1000:03d}"


def parse_timestamp(value: str) -> int:
    """FIX UTCTimestamp ('YYYYMMDD-HH:MM:SS[.fff...]') -> UTC ns."""
    day = _DAY_NS.get(value[:8])
    if day is None:
        day = _DAY_NS[value[:8]] = calendar.timegm(
            (int(value[:4]), int(value[4:6]), int(value[6:8]), 0, 0, 0)) * 1_000_000_000
    ns = day + (int(value[9:11]) * 3600 + int(value[12:14]) * 60 + int(value[15:17])) * 1_000_000_000
    frac = value[18:]
    return ns + int(frac) * 10 ** (9 - len(frac)) if frac else ns


def fields(raw: str) -> dict[str, str]:
    """tag -> value of a FIX message string (tags as strings: no int conversion on the hot path)."""
    return dict(item.split("=", 1) for item in raw[:-1].split(SOH))


def num(value: float) -> str:
    text = repr(value)
    return text if "e" not in text else format(value, "f")


class FixRoute:
    """A FIX 4.4 initiator session toward the venue (``events.Route``). Reports reach
    ``on_report`` on QuickFIX's thread, in the venue's order, resends included."""

    def __init__(self, cfg: FixSessionConfig, var_dir: Path, *, account: str = "",
                 venue: str = "SIMEX") -> None:
        self.cfg, self.venue, self.account = cfg, venue, account
        self.store_dir = Path(var_dir) / cfg.store_dir
        self._fix = load_quickfix()
        self._sid = self._fix.SessionID(BEGIN_STRING, cfg.sender_comp_id, cfg.target_comp_id)
        self._app = _application_class(self._fix)(self)
        self._initiator = None
        self._session = None
        self._on_report: ReportHandler | None = None
        self._logged_on = threading.Event()
        self._ended = threading.Event()  # logon refused (or closed) while connecting
        self._logout_text: str | None = None
        self._connecting = False
        self._connected_once = False
        self._head = {t: f"8={BEGIN_STRING}{SOH}9=0{SOH}35={t}{SOH}" for t in "DFGH"}
        self._acct = f"1={account}{SOH}" if account else ""
        self.counts = {"sent": 0, "reports": 0, "resent_reports": 0, "bad_reports": 0}

    # ----- Route
    def connect(self, on_report: ReportHandler, timeout_s: float = 30.0) -> None:
        """Start the session and block until logged on. Raises LogonRefused with the venue's
        reason, or FixRouteError when there is no logon within ``timeout_s``."""
        if self._initiator is not None:
            raise FixRouteError("already connected")
        fix = self._fix
        self._on_report, self._logout_text = on_report, None
        self._logged_on.clear()
        self._ended.clear()
        self._connecting = True
        cfg = self.cfg
        defaults = common_settings(self.store_dir, cfg.heartbeat_s) | {
            "ConnectionType": "initiator", "ReconnectInterval": RECONNECT_S, "LogonTimeout": 10,
            "ResetOnLogon": "Y" if cfg.reset_on_logon else "N"}
        session = {"BeginString": BEGIN_STRING, "SenderCompID": cfg.sender_comp_id,
                   "TargetCompID": cfg.target_comp_id, "SocketConnectHost": cfg.host,
                   "SocketConnectPort": cfg.port}
        settings = write_settings(self.store_dir / "initiator.cfg", defaults, [session])
        self._initiator = fix.SocketInitiator(self._app, fix.FileStoreFactory(settings), settings,
                                              fix.FileLogFactory(settings))
        self._initiator.start()
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

    def expected_seq_nums(self) -> tuple[int, int]:
        """(next sequence number we send, next we expect) while the session exists."""
        if self._session is None:
            raise FixRouteError("no session")
        return self._session.getExpectedSenderNum(), self._session.getExpectedTargetNum()

    # ----- internals
    def _send(self, msg_type: str, body: str) -> None:
        # Refuse rather than store while logged off: QuickFIX would resend the order (PossDup)
        # at the next logon, possibly long after the strategy wanted it.
        session = self._session
        if session is None or not self._logged_on.is_set():
            raise FixRouteError(f"FIX session {self._sid.toString()} is not logged on")
        session.send(self._fix.Message(f"{self._head[msg_type]}{body}10=000{SOH}", False))
        self.counts["sent"] += 1

    def _stop(self) -> None:
        initiator, self._initiator = self._initiator, None
        if initiator is not None:
            initiator.stop()
            # Drop it now: a stopped initiator's destructor unregisters the session ID, which
            # must not happen after a new route for the same session has registered it.
            del initiator
        self._session = None
        self._logged_on.clear()

    def _last_event(self) -> str:
        path = self.store_dir / "log" / f"{self._sid.toString().replace(':', '-').replace('->', '-')}" \
            ".event.current.log"
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
            else:
                log.warning("FIX %s: ignoring message type %s", self._sid.toString(), msg_type)
                return
        except (KeyError, ValueError, OrderError) as exc:
            self.counts["bad_reports"] += 1
            log.error("FIX %s: unusable report (%s): %s", self._sid.toString(), exc, raw.replace(SOH, "|"))
            return
        self.counts["reports"] += 1
        if resent:
            self.counts["resent_reports"] += 1
        self._on_report(report)

    def _exec_report(self, d: dict[str, str]) -> ExecReport:
        transact = d.get("60")
        return ExecReport(
            ts=parse_timestamp(transact) if transact else time.time_ns(), symbol=d["55"], exec_id=d["17"],
            cl_ord_id=d["11"], exec_type=EXEC_TYPE_BY_FIX[d["150"]], order_status=ORD_STATUS_BY_FIX[d["39"]],
            side=SIDE_BY_FIX[d["54"]], last_qty=float(d.get("32", 0.0)), last_price=float(d.get("31", 0.0)),
            cum_qty=float(d["14"]), leaves_qty=float(d["151"]), avg_price=float(d["6"]), order_id=d.get("37"),
            commission=float(d["12"]) if "12" in d else None, venue=self.venue,
            orig_cl_ord_id=d.get("41"), text=d.get("58"))


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
                route._session = fix.Session.lookupSession(sid)
                route._logged_on.set()
                log.info("FIX %s logged on (%s)", sid.toString(),
                         "reconnected" if route._connected_once else "connected")
            except Exception:
                log.exception("FIX onLogon")

        def onLogout(self, sid) -> None:  # noqa: N802
            route = self.route
            try:
                was_on = route._logged_on.is_set()
                route._logged_on.clear()
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
                if cfg.username and message.getHeader().getField(35) == "A":
                    message.setField(553, cfg.username)
                    if cfg.password:
                        message.setField(554, cfg.password)
            except Exception:
                log.exception("FIX toAdmin")

        def fromAdmin(self, message, sid) -> None:  # noqa: N802
            try:
                if message.getHeader().getField(35) in ("5", "3"):
                    text = message.getField(58) if message.isSetField(58) else ""
                    if message.getHeader().getField(35) == "5":
                        self.route._logout_text = text
                    else:
                        log.warning("FIX %s: session-level reject: %s", sid.toString(), text)
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
