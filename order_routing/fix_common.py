"""QuickFIX plumbing shared by our FIX route (``order_routing.fix_route``) and the simulated
exchange (``order_routing.exchange``): settings, the FIX 4.4 dictionary, message strings.

Quirks of the quickfix-ssl 1.15.1 bindings both sides work around:
- importing ``quickfix`` resets SIGINT to SIG_DFL (no more KeyboardInterrupt): ``load_quickfix``
  restores the handler;
- a Python exception escaping an Application callback ends the process (``Py_Exit`` or
  ``std::terminate``), even ``RejectLogon``/``DoNotSend``: every callback catches everything;
- any C++ exception from a wrapped call (a bad setting, a port in use) aborts the process, so
  settings are generated, never user-written, and ports are checked before QuickFIX binds them;
- one global session registry per process: two live initiators for one session ID corrupt it;
- there is no NonStopSession: sessions are weekly (Sunday 00:00 to Saturday 23:59:59 UTC), the
  only time QuickFIX resets sequence numbers by itself;
- QuickFIX stores and logs the Logon with its Password (554) in clear: ``scrub_passwords``;
- ``Session.send`` returns False, and sends nothing, when its FileStore cannot write the message
  (a full disk), and every later send fails too, even once the disk has room (stdio's error flag
  stays set), until the store is reopened; ``Session.refresh`` reopens it but ends the process
  when it throws (a file it cannot open or rewrite): ``send_fix``. The FileLog has no such return:
  QuickFIX's message and event logs stop at their first failed write until the process restarts.

Fast path: a message is built as one FIX string and parsed by QuickFIX in one call (a SWIG
``setField`` costs ~2 us each, the whole string ~8 us); one is read with one ``toString`` and
``fields`` rather than a ``getField`` (~2 us) per tag.
"""

from __future__ import annotations

import calendar
import re
import signal
import sys
import sysconfig
import threading
import time
from pathlib import Path
from types import ModuleType

BEGIN_STRING = "FIX.4.4"
SOH = "\x01"


class FixSetupError(RuntimeError):
    """QuickFIX cannot be set up (no FIX44.xml, a setting with a line break)."""


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
    raise FixSetupError("FIX44.xml not found under <prefix>/share/quickfix/ (is quickfix-ssl installed?)")


def write_settings(path: Path, defaults: dict[str, object], sessions: list[dict[str, object]]):
    """Write a QuickFIX settings file (kept for inspection) and load it."""
    lines = ["[DEFAULT]"] + [f"{k}={v}" for k, v in defaults.items()]
    for session in sessions:
        lines += ["", "[SESSION]"] + [f"{k}={v}" for k, v in session.items()]
    text = "\n".join(lines) + "\n"
    if any(ch in str(v) for v in (*defaults.values(), *(x for s in sessions for x in s.values()))
           for ch in "\n\r"):
        raise FixSetupError(f"{path}: a setting contains a line break")
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


_PASSWORD = re.compile(rb"\x01554=([^\x01]*)")
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


def send_fix(fix: ModuleType, session, message: str) -> bool:
    """Send one FIX string on a QuickFIX session; False if QuickFIX refused it: its FileStore could
    not write it (a full disk). QuickFIX writes a message to the store before the socket, so a
    refused message never went out.

    The store is then in error, and may be half-written (the message stored, its sequence number
    not), so the caller must end the session with ``session.logout(reason)``. That only sets
    state: QuickFIX's own thread sends what Logout it can and disconnects (a disconnect from any
    other thread is unsafe in QuickFIX 1.15). The caller's ``onLogout`` then calls
    ``session.logon()``, since ``logout`` disabled the session. QuickFIX reopens the store at that
    next logon (``RefreshOnLogon=Y``; a failure there is caught and the logon tried again later)
    and reads the sequence numbers back from disk, so the refused message's number is used again
    and the message is never resent."""
    return session.send(fix.Message(message, False))


class SentMessages:
    """Our messages in a QuickFIX FileStore, by sequence number: the ``.header``'s
    ``seq,offset,size`` entries indexed as they are appended (each lookup reads only what is new;
    a store reset starts over), the ``.body`` read on demand. ``store_prefix``: the store's files
    without their suffix (``<FileStorePath>/<BeginString>-<Sender>-<Target>``)."""

    def __init__(self, store_prefix: Path) -> None:
        self.header, self.body = Path(f"{store_prefix}.header"), Path(f"{store_prefix}.body")
        self._offsets: dict[int, tuple[int, int]] = {}
        self._file: tuple[int, int] = (0, 0)  # (inode, bytes indexed) of the .header
        self._tail = ""  # an entry not yet complete at the end of what was read

    def get(self, seq: int) -> str | None:
        """The message stored last under ``seq``, or None (not stored, or unreadable). A miss reads
        the whole header again once: a store reset (a new week) can reuse the file's inode and
        outgrow what was indexed before the next lookup."""
        try:
            return self._get(seq) or self._get(seq, again=True)
        except OSError:
            return None

    def _get(self, seq: int, again: bool = False) -> str | None:
        if again:
            self._offsets.clear()
            self._file, self._tail = (0, 0), ""
        self._index()
        found = self._offsets.get(seq)
        if found is None:
            return None
        with self.body.open("rb") as body:
            body.seek(found[0])
            data = body.read(found[1])
        message = data.decode("utf-8", "replace")
        # a torn entry (a full disk) can point at something else: only the message itself will do
        return message if len(data) == found[1] and f"{SOH}34={seq}{SOH}" in message else None

    def _index(self) -> None:
        stat = self.header.stat()
        inode, done = self._file
        if stat.st_ino != inode or stat.st_size < done:  # a new file: the store was reset
            self._offsets.clear()
            self._tail, done = "", 0
        if stat.st_size > done:
            with self.header.open("rb") as header:
                header.seek(done)
                chunk = header.read()
            done += len(chunk)
            entries = (self._tail + chunk.decode("ascii", "replace")).split(" ")
            self._tail = entries.pop()
            for entry in entries:
                parts = entry.split(",")
                if len(parts) == 3 and all(part.isdigit() for part in parts):
                    self._offsets[int(parts[0])] = (int(parts[1]), int(parts[2]))  # the last one wins
        self._file = (stat.st_ino, done)


def fields(raw: str) -> dict[str, str]:
    """tag -> value of a FIX message string (tags as strings: no int conversion on the hot path)."""
    return {tag: value for tag, _, value in (item.partition("=") for item in raw[:-1].split(SOH))}


def scrub_passwords(path: Path, start: int = 0) -> int:
    """Overwrite every Password (554) value after byte ``start`` of a QuickFIX store or log file
    with '*'s. QuickFIX writes the Logon, password included, to both; same-length overwrites keep
    its offsets valid. Returns the size scanned to (where to start next time)."""
    try:
        with path.open("r+b") as f:
            f.seek(start)
            data = f.read()
            for match in _PASSWORD.finditer(data):
                f.seek(start + match.start(1))
                f.write(b"*" * len(match.group(1)))
    except FileNotFoundError:
        return start
    return start + len(data)


def num(value: float) -> str:
    text = repr(value)
    return text if "e" not in text else format(value, "f")
