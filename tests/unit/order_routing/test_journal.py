"""The OMS journal: write-ahead order, torn tails, gaps, and replay into the same OMS state."""

from __future__ import annotations

import datetime
import json
import math
import multiprocessing
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from support.full_disk import limit_file_size

from intelligence.domain import OrderIntent
from order_routing.events import ExecReport, OrderError
from order_routing.journal import Journal, last_seq, read_journal
from order_routing.oms import OrderManager


class RecordingRoute:
    """A route that records what is sent and checks the journal already holds it (write-ahead)."""

    venue = "TEST"

    def __init__(self, journal: Journal) -> None:
        self.journal, self.sent = journal, []

    def connect(self, on_report, timeout_s=30.0): ...
    def send_new(self, order):
        rows = [row for _, kind, row in read_journal(self.journal.path) if kind == "order"]
        assert rows[-1]["cl_ord_id"] == order.cl_ord_id and rows[-1]["status"] == "PENDING_NEW"
        self.sent.append(order)
    def send_cancel(self, request): self.sent.append(request)
    def send_replace(self, request): self.sent.append(request)
    def request_status(self, cl_ord_id, symbol, side): ...
    def close(self): ...


def _fill(cl_ord_id: str, exec_id: str, qty: float, cum: float, leaves: float, price: float) -> ExecReport:
    return ExecReport(ts=2, symbol="AAPL", exec_id=exec_id, cl_ord_id=cl_ord_id, exec_type="TRADE",
                      order_status="FILLED" if leaves == 0 else "PARTIALLY_FILLED", side="B",
                      last_qty=qty, last_price=price, cum_qty=cum, leaves_qty=leaves, avg_price=price)


def test_every_change_is_journaled_before_it_is_sent_and_replays_to_the_same_state(tmp_path):
    journal = Journal(tmp_path)
    route = RecordingRoute(journal)
    oms = OrderManager(route, clock=iter(range(1, 10_000)).__next__)
    oms.subscribe(journal)
    oms.submit(OrderIntent(1, "AAPL", "o-1", "B", 100.0))
    oms.apply(ExecReport(ts=2, symbol="AAPL", exec_id="e-1", cl_ord_id="o-1", exec_type="NEW",
                         order_status="NEW", side="B", leaves_qty=100.0))
    oms.apply(_fill("o-1", "e-2", 40.0, 40.0, 60.0, 10.0))
    oms.apply(_fill("o-1", "e-2", 40.0, 40.0, 60.0, 10.0))  # a resend: not journaled twice
    oms.apply(_fill("o-1", "e-3", 60.0, 100.0, 0.0, 11.0))
    journal.close()

    records = list(read_journal(journal.path))
    assert [seq for seq, _, _ in records] == list(range(1, len(records) + 1))
    assert [r[2]["exec_id"] for r in records if r[1] == "execution"] == ["e-1", "e-2", "e-3"]
    replayed = OrderManager.replay([(kind, row) for _, kind, row in records])
    assert replayed.state() == oms.state()
    assert replayed.position("AAPL").quantity == 100.0
    assert replayed.position("AAPL").avg_price == pytest.approx((40 * 10.0 + 60 * 11.0) / 100)


def test_a_torn_last_record_is_cut_and_the_journal_continues(tmp_path):
    journal = Journal(tmp_path)
    journal.on_order({"cl_ord_id": "a", "status": "PENDING_NEW"})
    journal.close()
    with journal.path.open("ab") as fh:  # the process died in the middle of a write
        fh.write(b'{"seq": 2, "kind": "ord')
    assert [seq for seq, _, _ in read_journal(journal.path)] == [1]
    again = Journal(tmp_path)
    assert again.seq == 1
    again.on_order({"cl_ord_id": "b", "status": "PENDING_NEW"})
    again.close()
    assert [(seq, row["cl_ord_id"]) for seq, _, row in read_journal(journal.path)] == [(1, "a"), (2, "b")]
    assert last_seq(journal.path) == 2


def test_a_gap_or_a_corrupt_line_inside_the_journal_is_an_error(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps({"seq": 1, "kind": "order", "row": {}}) + "\n"
                    + json.dumps({"seq": 3, "kind": "order", "row": {}}) + "\n")
    with pytest.raises(ValueError, match="seq 3, expected 2"):
        list(read_journal(path))
    path.write_text("not json\n" + json.dumps({"seq": 1, "kind": "order", "row": {}}) + "\n")
    with pytest.raises(ValueError, match="line 1 is not a JSON record"):
        list(read_journal(path))


def test_a_record_is_one_json_line_of_seq_kind_and_the_row_as_given(tmp_path):
    journal = Journal(tmp_path)
    journal.on_order({"ts": 5, "cl_ord_id": "o-1", "quantity": 100.0, "limit_price": None,
                      "status": "PENDING_NEW"})
    journal.on_execution(ExecReport(ts=7, symbol="X", exec_id="e-1", cl_ord_id="o-1", exec_type="TRADE",
                                    order_status="FILLED", side="B", last_qty=100.0, last_price=10.25,
                                    cum_qty=100.0, avg_price=10.25, venue="V", text="prix réduit"))
    journal.close()
    assert journal.path.read_bytes().decode().splitlines() == [
        '{"seq":1,"kind":"order","row":{"ts":5,"cl_ord_id":"o-1","quantity":100.0,"limit_price":null,'
        '"status":"PENDING_NEW"}}',
        '{"seq":2,"kind":"execution","row":{"ts":7,"symbol":"X","exec_id":"e-1","cl_ord_id":"o-1",'
        '"order_id":null,"exec_type":"TRADE","order_status":"FILLED","side":"B","last_qty":100.0,'
        '"last_price":10.25,"cum_qty":100.0,"leaves_qty":0.0,"avg_price":10.25,"commission":null,'
        '"venue":"V","orig_cl_ord_id":null,"text":"prix réduit"}}']
    assert [row.get("text") for _, _, row in read_journal(journal.path)] == [None, "prix réduit"]


def test_values_orjson_will_not_take_are_written_as_ascii_json_and_read_back(tmp_path):
    journal = Journal(tmp_path)
    # the FIX binding hands a venue's non-UTF-8 byte (Latin-1 e-acute here) over as a lone surrogate
    text = b"prix r\xe9duit".decode("utf-8", "surrogateescape")
    journal.on_execution(ExecReport(ts=7, symbol="X", exec_id="e-1", cl_ord_id="o-1", exec_type="REJECTED",
                                    order_status="REJECTED", side="S", venue="V", text=text))
    journal.on_order({"ts": 8, "cl_ord_id": "o-2", "quantity": 3.0, "limit_price": np.float64(10.5),
                      "status": "PENDING_NEW"})
    journal.on_order({"ts": 9, "cl_ord_id": "o-3", "quantity": 1.0, "limit_price": None, "status": "NEW"})
    journal.close()
    lines = journal.path.read_bytes().splitlines()
    assert lines[0].endswith(b'"text":"prix r\\udce9duit"}}')
    assert lines[1] == (b'{"seq":2,"kind":"order","row":{"ts":8,"cl_ord_id":"o-2","quantity":3.0,'
                        b'"limit_price":10.5,"status":"PENDING_NEW"}}')
    rows = [row for _, _, row in read_journal(journal.path)]
    assert rows[0]["text"] == text and rows[1]["limit_price"] == 10.5 and rows[2]["cl_ord_id"] == "o-3"


def test_a_non_finite_or_unencodable_value_is_refused_and_nothing_is_written(tmp_path):
    journal = Journal(tmp_path)
    for bad in ({"quantity": math.nan}, {"quantity": 1.0, "limit_price": math.inf}):
        with pytest.raises(ValueError, match="non-finite"):
            journal.on_order({"cl_ord_id": "o-1", "status": "PENDING_NEW", **bad})
    for unencodable in (object(), datetime.datetime(2026, 1, 2)):  # refused as the standard library does
        with pytest.raises(TypeError):
            journal.on_order({"cl_ord_id": "o-1", "status": unencodable})
    assert journal.seq == 0 and journal.path.read_bytes() == b""
    # an execution row comes from an ExecReport, which refuses a non-finite value when it is built
    with pytest.raises(OrderError, match="last_price"):
        ExecReport(ts=1, symbol="X", exec_id="e", cl_ord_id="o-1", exec_type="TRADE", order_status="FILLED",
                   side="B", last_qty=1.0, last_price=math.nan, cum_qty=1.0)
    journal.close()


def test_tails_see_each_record_as_written(tmp_path):
    journal = Journal(tmp_path)
    seen = []
    journal.add_tail(seen.append)
    journal.on_order({"cl_ord_id": "a", "status": "PENDING_NEW"})
    journal.on_execution(ExecReport(ts=1, symbol="X", exec_id="e", cl_ord_id="a", exec_type="NEW",
                                    order_status="NEW", side="S", leaves_qty=1.0))
    assert [(seq, kind) for seq, kind, _ in seen] == [(1, "order"), (2, "execution")]
    assert seen[1][2]["exec_id"] == "e" and seen[1][2]["text"] is None


def _journaled_oms(directory):
    """A live OMS writing its journal in ``directory`` (a stepping clock, a recording route)."""
    journal = Journal(directory)
    oms = OrderManager(RecordingRoute(journal), clock=iter(range(1, 10_000)).__next__)
    oms.subscribe(journal)
    return journal, oms


def _kill_before_last_record(journal: Journal) -> dict:
    """Close the journal and cut its last record off, as a kill before that write would have;
    returns the row that was cut."""
    journal.close()
    lines = journal.path.read_bytes().splitlines(keepends=True)
    journal.path.write_bytes(b"".join(lines[:-1]))
    return json.loads(lines[-1])["row"]


def _replayed(path) -> OrderManager:
    return OrderManager.replay([(kind, row) for _, kind, row in read_journal(path)])


def test_a_crash_between_a_report_and_its_order_row_is_repaired_on_restart(tmp_path):
    journal, oms = _journaled_oms(tmp_path)
    oms.submit(OrderIntent(1, "AAPL", "o-1", "B", 100.0))
    oms.submit(OrderIntent(1, "AAPL", "o-2", "B", 50.0))
    oms.apply(_fill("o-2", "e-0", 50.0, 50.0, 0.0, 9.0))
    oms.apply(_fill("o-1", "e-1", 100.0, 100.0, 0.0, 10.0))
    cut = _kill_before_last_record(journal)  # killed after the fill, before o-1's FILLED row
    assert (cut["cl_ord_id"], cut["status"]) == ("o-1", "FILLED")

    again = Journal(tmp_path)
    replayed = _replayed(again.path)
    assert replayed.order("o-1").status == "FILLED"  # the report alone moves the replayed OMS
    replayed.subscribe(again)
    assert replayed.journal_missing_rows() == ["o-1"]
    assert replayed.journal_missing_rows() == []  # once
    again.close()

    rows = [(row["cl_ord_id"], row["status"]) for _, kind, row in read_journal(again.path) if kind == "order"]
    assert rows == [("o-1", "PENDING_NEW"), ("o-2", "PENDING_NEW"), ("o-2", "FILLED"), ("o-1", "FILLED")]
    assert _replayed(again.path).state() == oms.state()


def test_a_lost_row_of_another_fill_in_the_same_status_is_repaired_too(tmp_path):
    journal, oms = _journaled_oms(tmp_path)
    oms.submit(OrderIntent(1, "AAPL", "o-1", "B", 100.0))
    oms.apply(_fill("o-1", "e-1", 40.0, 40.0, 60.0, 10.0))
    oms.apply(ExecReport(ts=9, symbol="AAPL", exec_id="e-2", cl_ord_id="o-1", exec_type="TRADE",
                         order_status="PARTIALLY_FILLED", side="B", last_qty=10.0, last_price=10.5,
                         cum_qty=50.0, leaves_qty=50.0, avg_price=10.1))
    cut = _kill_before_last_record(journal)  # killed before the second fill's row
    assert (cut["status"], cut["ts"]) == ("PARTIALLY_FILLED", 9)

    again = Journal(tmp_path)
    replayed = _replayed(again.path)
    replayed.subscribe(again)
    assert replayed.journal_missing_rows() == ["o-1"]
    again.close()
    rows = [(r["status"], r["ts"]) for _, kind, r in read_journal(again.path) if kind == "order"]
    assert rows[-2:] == [("PARTIALLY_FILLED", 2), ("PARTIALLY_FILLED", 9)]


def test_the_router_journals_the_missing_rows_when_it_starts(tmp_path):
    from order_routing.router import Router
    from tradelake.config import load_config

    journal, oms = _journaled_oms(tmp_path)
    oms.submit(OrderIntent(1, "AAPL", "o-1", "B", 100.0))
    oms.apply(_fill("o-1", "e-1", 100.0, 100.0, 0.0, 10.0))
    cut = _kill_before_last_record(journal)
    assert (cut["cl_ord_id"], cut["status"]) == ("o-1", "FILLED")

    router = Router(load_config(), RecordingRoute(journal), ship=False, watch_kill_switch=False,
                    directory=tmp_path)
    router.journal.close()
    assert router.repaired_orders == ["o-1"]
    last = [row for _, kind, row in read_journal(journal.path) if kind == "order"][-1]
    assert (last["cl_ord_id"], last["status"]) == ("o-1", "FILLED")


# -- a disk that fills up: a real kernel refusal (RLIMIT_FSIZE) in a forked child of its own --------
def in_child(fn: Callable[[], Any]) -> Any:
    """``fn()``'s return value, run in a forked child: its file size limit is not the suite's."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def run() -> None:
        try:
            send.send(("ok", fn()))
        except BaseException:
            send.send(("error", traceback.format_exc()))

    child = ctx.Process(target=run)
    child.start()
    assert receive.poll(60), "the child did not answer"
    status, value = receive.recv()
    child.join(10)
    assert status == "ok", value
    return value


def _fill_the_disk_then_free_it(directory) -> dict[str, Any]:
    journal = Journal(directory)
    tailed: list[int] = []
    journal.add_tail(lambda record: tailed.append(record[0]))
    route = RecordingRoute(journal)
    oms = OrderManager(route, clock=iter(range(1, 10_000)).__next__)
    oms.subscribe(journal)
    oms.submit(OrderIntent(1, "AAPL", "o-1", "B", 100.0, "LMT", 10.0))
    on_disk = journal.path.read_bytes()
    # the next record gets 40 bytes of its line onto the file, then the disk is full
    limit_file_size(len(on_disk) + 40)
    oms.apply(ExecReport(ts=2, symbol="AAPL", exec_id="e-1", cl_ord_id="o-1", exec_type="NEW",
                         order_status="NEW", side="B", leaves_qty=100.0))
    rejected = oms.submit(OrderIntent(3, "AAPL", "o-2", "B", 10.0, "LMT", 10.0))
    try:
        oms.replace("o-1", quantity=50.0, request_id="o-1r")
        replace_error = None
    except OrderError as exc:
        replace_error = str(exc)
    oms.cancel("o-1", request_id="o-1c")
    during = {"bytes_unchanged": journal.path.read_bytes() == on_disk, "seq": journal.seq,
              "unwritten": journal.unwritten, "oms_unwritten": oms.unwritten(), "tailed": list(tailed),
              "sent": [type(s).__name__ + ":" + s.cl_ord_id for s in route.sent],
              "o-2": (rejected.status, oms.order("o-2").status), "replace_error": replace_error,
              "statuses": {c: oms.order(c).status for c in ("o-1", "o-1r")}}
    limit_file_size(None)
    oms.submit(OrderIntent(4, "AAPL", "o-3", "S", 5.0, "LMT", 11.0))  # the disk is back
    after = {"seq": journal.seq, "unwritten": journal.unwritten, "tailed": list(tailed),
             "sent": [type(s).__name__ + ":" + s.cl_ord_id for s in route.sent], "state": oms.state()}
    journal.close()
    return {"during": during, "after": after}


def test_a_full_disk_loses_no_record_sends_no_new_order_and_catches_up_in_order(tmp_path):
    result = in_child(lambda: _fill_the_disk_then_free_it(tmp_path))
    during, after = result["during"], result["after"]
    # nothing torn on the file, everything since the first failure kept in memory, in order
    assert during["bytes_unchanged"] and during["seq"] == 1 and during["tailed"] == [1]
    assert during["unwritten"] == during["oms_unwritten"] > 0
    # the venue's ack was applied; the new order and the replace never left; the cancel did
    assert during["o-2"] == ("REJECTED", "REJECTED")
    assert during["replace_error"].startswith("replace o-1r of o-1 could not be sent: JOURNAL_UNAVAILABLE")
    assert during["sent"] == ["OrderIntent:o-1", "CancelRequest:o-1c"]
    assert during["statuses"] == {"o-1": "PENDING_CANCEL", "o-1r": "REJECTED"}
    # the disk back: the records first, then the next order (RecordingRoute checks it is on disk)
    assert after["unwritten"] == 0 and after["sent"][-1] == "OrderIntent:o-3"
    assert after["tailed"] == list(range(1, after["seq"] + 1))
    records = list(read_journal(tmp_path / "journal.jsonl"))
    assert [seq for seq, _, _ in records] == list(range(1, after["seq"] + 1))
    rejects = {row["cl_ord_id"]: (row["venue"], row["text"]) for _, kind, row in records
               if kind == "execution" and row["exec_type"] == "REJECTED"}
    assert rejects["o-2"][0] == "OMS" and rejects["o-2"][1].startswith("JOURNAL_UNAVAILABLE: ")
    replayed = OrderManager.replay([(kind, row) for _, kind, row in records])
    assert replayed.state() == after["state"]


def _a_tail_fails_while_catching_up(directory) -> list[int]:
    journal = Journal(directory)
    journal.on_order({"cl_ord_id": "a", "status": "PENDING_NEW"})
    limit_file_size(journal.path.stat().st_size)
    journal.on_order({"cl_ord_id": "b", "status": "PENDING_NEW"})  # kept in memory
    journal.on_order({"cl_ord_id": "c", "status": "PENDING_NEW"})
    limit_file_size(None)
    calls = []

    def flaky_tail(record) -> None:
        calls.append(record[0])
        if len(calls) == 1:
            raise RuntimeError("a tail that fails once")

    journal.add_tail(flaky_tail)
    with pytest.raises(RuntimeError, match="fails once"):
        journal.on_order({"cl_ord_id": "d", "status": "PENDING_NEW"})  # catches up: b, then its tail raises
    journal.close()  # writes c and d
    return calls


def test_a_record_written_while_catching_up_is_never_written_twice(tmp_path):
    calls = in_child(lambda: _a_tail_fails_while_catching_up(tmp_path))
    assert calls == [2, 3, 4]
    records = list(read_journal(tmp_path / "journal.jsonl"))
    assert [(seq, row["cl_ord_id"]) for seq, _, row in records] == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]
