"""The OMS write-ahead journal: every order state change and every applied report, in order.

Like a kdb+ tickerplant's log, the journal holds exactly the messages the OMS publishes, and
recovery is replay: ``OrderManager`` calls its listeners before it sends anything to a venue, so
an order is on disk before it can exist at a venue. A record is one JSON line::

    {"seq": 41, "kind": "order", "row": {<canonical ORDER row>}}
    {"seq": 42, "kind": "execution", "row": {<canonical EXECUTION row>}}

``seq`` counts from 1 with no gaps. Each record is written with one ``write`` (a system call,
no fsync): a killed process (kill -9) loses nothing the OS already has; a power cut can lose the
last records, which recovery then learns back from the venue (order status requests, FIX
resend). A torn last line (the process died mid-write) is ignored and reported by the reader.

A write that fails (a full disk, a file size limit, an I/O error) loses nothing either: a short
write is cut back off the file, so no torn record is ever followed by another, and the record
stays ``unwritten``, in memory, in order, ahead of every later one; each new record tries them
again first. The OMS sends no new order and no replace while anything is unwritten (the order is
rejected instead, see ``OrderManager``): an order must be on disk before it can exist at a
venue. Reports keep being applied meanwhile (the venue has spoken); if the process dies before
the disk is back, they are learnt back from the venue at restart, as after a power cut.

Lines are encoded by orjson (a quarter of the time of the standard library's encoder: the
journal is on every order's path). orjson would write a NaN or an infinity as null, so the
journal refuses them first: an ORDER row's two floats are checked here; an EXECUTION row comes
from an ``ExecReport``, which refuses them when it is built. What orjson will not encode (a
string with a lone surrogate, which is how the FIX binding passes a venue's non-UTF-8 bytes; a
float subclass such as numpy's) is written by the standard library's encoder instead, as ASCII
JSON, and read back the same way.

The journal is shipped to Kafka and the ODS by ``order_routing.shipper`` (off the hot path).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from order_routing.events import ExecReport

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"
Record = tuple[int, str, dict[str, Any]]  # (seq, kind, row)
# datetimes, dataclasses and str/int/dict/list subclasses go to the fallback too, which refuses
# or writes them as the standard library does
_LINE = (orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
         | orjson.OPT_PASSTHROUGH_SUBCLASS)
_INF = math.inf


def _line(record: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(record, option=_LINE)
    except TypeError:  # see the module doc; a value neither encoder takes raises here
        return (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()


def _record(raw: bytes) -> dict[str, Any]:
    try:
        return orjson.loads(raw)
    except ValueError:  # a lone surrogate's escape (written by the fallback) or not JSON at all
        return json.loads(raw)


def journal_path(directory: Path) -> Path:
    return directory / JOURNAL_FILE


def read_journal(path: Path, after: int = 0) -> Iterator[Record]:
    """Records with seq > ``after``, in order. A torn final line is skipped with a warning; a
    corrupt line elsewhere, or a gap in seq, is an error (the journal is not what was written)."""
    if not path.exists():
        return
    expected = None
    with path.open("rb") as fh:
        lines = fh.readlines()
    for number, raw in enumerate(lines, 1):
        try:
            record = _record(raw)
        except ValueError:
            if number == len(lines) and not raw.endswith(b"\n"):
                log.warning("journal %s: ignoring a torn last record (%d bytes)", path, len(raw))
                return
            raise ValueError(f"journal {path}: line {number} is not a JSON record") from None
        seq = record["seq"]
        if expected is not None and seq != expected:
            raise ValueError(f"journal {path}: line {number} has seq {seq}, expected {expected}")
        expected = seq + 1
        if seq > after:
            yield seq, record["kind"], record["row"]


def last_seq(path: Path) -> int:
    last = 0
    for record in read_journal(path):
        last = record[0]
    return last


class Journal:
    """An OMS listener appending every change to ``<directory>/journal.jsonl``.

    ``seq`` is the last record on disk; ``unwritten`` counts the records after it that are only in
    memory (see the module doc). ``tail`` callbacks get each record once it is on disk (the
    shipper's feed); they run on the writer's thread, so they must only enqueue.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = journal_path(directory)
        self._truncate_torn_tail()
        self.seq = last_seq(self.path)
        self._fh = self.path.open("ab", buffering=0)  # unbuffered: each record is one write()
        self._size = self.path.stat().st_size  # where the next record starts (O_APPEND: the end)
        self._lock = threading.Lock()
        self._tails: list[Callable[[Record], None]] = []
        self._next = self.seq  # the last seq given to a record, written or not
        self._unwritten: deque[tuple[Record, bytes]] = deque()
        self._failing_since: float | None = None  # monotonic time of the first failed write
        self._torn = False  # bytes of a short write are on the file after ``_size``

    def _truncate_torn_tail(self) -> None:
        """Cut a half-written last line off, so the next record starts on a line of its own."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with self.path.open("rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            fh.seek(0)
            data = fh.read()
            keep = data.rfind(b"\n") + 1
            log.warning("journal %s: truncating a torn last record (%d bytes)", self.path, len(data) - keep)
            fh.truncate(keep)

    def add_tail(self, tail: Callable[[Record], None]) -> None:
        self._tails.append(tail)

    @property
    def unwritten(self) -> int:
        """Records not on disk yet (a failing disk): 0 when the journal is complete."""
        return len(self._unwritten)

    def _append(self, kind: str, row: dict[str, Any]) -> None:
        with self._lock:
            seq = self._next + 1
            data = _line({"seq": seq, "kind": kind, "row": row})  # an encoding error: nothing taken
            self._next = seq
            record = (seq, kind, row)
            if not self._unwritten and not self._torn:  # the hot path: one write(), all of it
                failure: OSError | None = None
                try:
                    written = self._fh.write(data)
                except OSError as exc:
                    written, failure = 0, exc
                if written == len(data):
                    self._size += written
                    self.seq = seq
                    for tail in self._tails:
                        tail(record)
                    return
                self._torn = bool(written)  # ``_write`` cuts a short write off before trying again
                log.warning("journal %s: record %d: %s; trying again", self.path, seq,
                            failure or f"short write: {written} of {len(data)} bytes")
            self._unwritten.append((record, data))
            self._catch_up()

    def _write(self, seq: int, data: bytes) -> bool:
        """One record, one write(); False (and the file as before) when not all of it got there."""
        try:
            if self._torn:  # a short write's bytes could not be cut off yet
                os.ftruncate(self._fh.fileno(), self._size)
                self._torn = False
            written = self._fh.write(data)
            if written != len(data):
                self._torn = True
                os.ftruncate(self._fh.fileno(), self._size)  # no torn record before the next one
                self._torn = False
                raise OSError(errno.ENOSPC, f"short write: {written} of {len(data)} bytes")
        except OSError as exc:
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                log.error("journal %s: cannot write record %d (%s): keeping it and every later one in "
                          "memory until the disk takes them; no new orders meanwhile", self.path, seq, exc)
            return False
        self._size += written
        self.seq = seq
        return True

    def _catch_up(self) -> None:
        """Write the unwritten records, oldest first, up to the first that still fails. A record
        leaves the queue before its write: an interruption (a tail raising, Ctrl-C) can drop it
        from memory, as a crash would, but never write it twice (a repeated seq would not replay)."""
        pending = self._unwritten
        while pending:
            record, data = pending.popleft()
            if not self._write(record[0], data):
                pending.appendleft((record, data))
                break
            for tail in self._tails:
                tail(record)
        if not pending and self._failing_since is not None:
            log.warning("journal %s: writing again after %.1f s; on disk up to record %d", self.path,
                        time.monotonic() - self._failing_since, self.seq)
            self._failing_since = None

    def flush_unwritten(self) -> int:
        """Try the unwritten records again now (no new record needed); how many are left."""
        with self._lock:
            if not self._fh.closed:
                self._catch_up()
            return len(self._unwritten)

    # -- the OMS listener interface ---------------------------------------------------------------
    def on_order(self, row: dict[str, Any]) -> None:
        for field in ("quantity", "limit_price"):
            value = row.get(field)
            if value is not None and not -_INF < value < _INF:
                raise ValueError(f"journal: order {row.get('cl_ord_id')!r}: non-finite {field} {value!r}")
        self._append("order", row)

    def on_execution(self, report: ExecReport) -> None:
        self._append("execution", report.row())

    def close(self) -> None:
        """Write what can be; what cannot is lost, logged and still counted in ``unwritten``."""
        with self._lock:
            if self._fh.closed:
                return
            self._catch_up()
            if self._unwritten:
                first, last = self._unwritten[0][0][0], self._unwritten[-1][0][0]
                log.error("journal %s: closing with records %d-%d not on disk (lost; the venue's order "
                          "status answers restore their fills at the next start)", self.path, first, last)
            self._fh.close()
