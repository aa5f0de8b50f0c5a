"""Re-time a historical or simulated feed so it plays like a live one, ``speed`` times real time.

A simulator (or a file) produces ticks far faster than a market does, and per symbol in big
slices: consumers that react to time (the router's bars, the exchange's marks, a tick-to-order
path) would see one symbol's whole day before another's first minute. ``paced`` merges the
symbols by event time and releases the ticks in steps of ``step_s`` wall seconds, each step
holding the next ``speed * step_s`` seconds of event time, sleeping in between. Gaps longer than
``max_gap_s`` of event time (nights, weekends) are skipped, not slept through.

Input: ``(kind, batch)`` pairs whose batches are sorted by ``ts`` (the simulator's contract);
batches overlapping in time (a slice's trades and its quotes) are merged before release.
Every row that goes in comes out, in (ts) order per kind; nothing is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

NS = 1_000_000_000


def paced(batches: Iterable[tuple[str, pa.RecordBatch | pa.Table]], speed: float, *, step_s: float = 0.25,
          max_gap_s: float = 3600.0, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[tuple[str, pa.Table]]:
    if not speed > 0:
        raise ValueError(f"speed must be > 0 (times real time), got {speed!r}")
    pending: dict[str, list[pa.Table]] = {}
    pending_max = None
    anchor: list[float | int] = []  # [wall time, event ns] that step 0 was released at

    def release() -> Iterator[tuple[str, pa.Table]]:
        tables = {k: pa.concat_tables(v).sort_by("ts") for k, v in pending.items()}
        pending.clear()
        start = min(int(pc.min(t.column("ts")).as_py()) for t in tables.values())
        end = max(int(pc.max(t.column("ts")).as_py()) for t in tables.values())
        step_ns = int(speed * step_s * NS)
        cursor = {k: 0 for k in tables}
        edge = start
        while edge <= end:
            edge_next = edge + step_ns
            wall = clock()
            if not anchor or edge - anchor[1] > max_gap_s * NS + (wall - anchor[0]) * speed * NS:
                anchor[:] = [wall, edge]  # first step, or after a long gap: start the clock here
            due = anchor[0] + (edge - anchor[1]) / NS / speed
            if due > wall:
                sleep(due - wall)
            for kind, table in tables.items():
                ts = table.column("ts")
                stop = int(pc.sum(pc.less(ts, edge_next)).as_py() or 0)  # sorted: rows before the edge
                if stop > cursor[kind]:
                    yield kind, table.slice(cursor[kind], stop - cursor[kind])
                    cursor[kind] = stop
            edge = edge_next

    for kind, batch in batches:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        if table.num_rows == 0:
            continue
        first = int(pc.min(table.column("ts")).as_py())
        if pending and pending_max is not None and first >= pending_max:
            yield from release()
            pending_max = None
        pending.setdefault(kind, []).append(table)
        last = int(pc.max(table.column("ts")).as_py())
        pending_max = last if pending_max is None else max(pending_max, last)
    if pending:
        yield from release()
