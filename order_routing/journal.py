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

import json
import logging
import math
import os
import threading
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

    ``tail`` callbacks get each record as written (the shipper's feed); they run on the writer's
    thread, so they must only enqueue.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = journal_path(directory)
        self._truncate_torn_tail()
        self.seq = last_seq(self.path)
        self._fh = self.path.open("ab", buffering=0)  # unbuffered: each record is one write()
        self._lock = threading.Lock()
        self._tails: list[Callable[[Record], None]] = []

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

    def _append(self, kind: str, row: dict[str, Any]) -> None:
        with self._lock:
            seq = self.seq + 1
            self._fh.write(_line({"seq": seq, "kind": kind, "row": row}))
            self.seq = seq
            record = (seq, kind, row)
            for tail in self._tails:
                tail(record)

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
        self._fh.close()
