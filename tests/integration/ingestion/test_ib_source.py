"""The IB source against FakeTws (the project's one test double): the real ib_async client over a
real loopback socket, down to the exact rows it yields and what validation makes of them.

No running stack is needed: FakeTws stands in for TWS, everything else is production code.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pyarrow as pa
import pytest
from doubles.fake_tws import FakeTws
from ib_async import IB

from ingestion.ib_source import IbMarketDataSource, IbSourceError
from ingestion.validation import Validator
from tradelake.config import IbConfig, load_config
from tradelake.schemas import QUOTE, TRADE, arrow_schema

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

T = 1_767_623_400  # 2026-01-05 14:30:00 UTC (09:30 in New York), IB's whole-second tick time
TICKS = {
    "AAPL": [(T, 187.25, 100, "NASDAQ"), (T, 187.26, 50, "ARCA", "I"), (T + 1, 187.24, 200, "IEX")],
    "MSFT": [(T, 410.50, 300, "NASDAQ"), (T + 2, 0.0, 100, "NYSE"),  # bad: a zero price
             (T + 2, 410.55, 25, "BATS")],
}
QUOTES = {"AAPL": [(T, 187.24, 300, 187.26, 400)], "MSFT": [(T + 1, 410.49, 100, 410.52, 200)]}
N_TICKS = 8

EXPECTED_TRADES = pa.table({
    "ts": [1_767_623_400_000_000_000, 1_767_623_400_000_000_000, 1_767_623_401_000_000_000,
           1_767_623_400_000_000_000, 1_767_623_402_000_000_000, 1_767_623_402_000_000_000],
    "symbol": ["AAPL", "AAPL", "AAPL", "MSFT", "MSFT", "MSFT"],
    "price": [187.25, 187.26, 187.24, 410.50, 0.0, 410.55],
    "size": [100.0, 50.0, 200.0, 300.0, 100.0, 25.0],
    "trade_id": ["ib:AAPL:1", "ib:AAPL:2", "ib:AAPL:3", "ib:MSFT:1", "ib:MSFT:2", "ib:MSFT:3"],
    "exchange": ["NASDAQ", "ARCA", "IEX", "NASDAQ", "NYSE", "BATS"],
    "seq": [1, 2, 3, 1, 2, 3],
    "side": [None] * 6,
    "conditions": [None, "I", None, None, None, None],
    "ingest_ts": [None] * 6,
}, schema=arrow_schema(TRADE))

EXPECTED_QUOTES = pa.table({  # seq continues each symbol's count: trades and quotes share it
    "ts": [1_767_623_400_000_000_000, 1_767_623_401_000_000_000],
    "symbol": ["AAPL", "MSFT"],
    "bid_price": [187.24, 410.49], "bid_size": [300.0, 100.0],
    "ask_price": [187.26, 410.52], "ask_size": [400.0, 200.0],
    "exchange": [None, None], "seq": [4, 4], "ingest_ts": [None, None],
}, schema=arrow_schema(QUOTE))


def source(tws: FakeTws, symbols: list[str], **options) -> IbMarketDataSource:
    return IbMarketDataSource("127.0.0.1", tws.port, 17, symbols, connect_timeout_s=5, **options)


def collect(batches) -> dict[str, list[pa.Table]]:
    out: dict[str, list[pa.Table]] = {"trade": [], "quote": []}
    for kind, table in batches:
        out[kind].append(table)
    return out


def test_streams_exact_rows_and_bad_tick_is_quarantined_downstream():
    with FakeTws(TICKS, QUOTES) as tws:
        got = collect(source(tws, ["AAPL", "MSFT"], quotes=True, batch_rows=2,
                             max_ticks=N_TICKS).batches())
        assert tws.wait_client_gone(), "the source should disconnect once max_ticks is reached"

        for kind, expected in (("trade", EXPECTED_TRADES), ("quote", EXPECTED_QUOTES)):
            assert all(t.schema.equals(expected.schema, check_metadata=True) for t in got[kind])
            assert all(1 <= t.num_rows <= 2 for t in got[kind]), "batch_rows=2 bounds every batch"
            assert pa.concat_tables(got[kind]).equals(expected), kind

        # the fake saw the protocol we expect: handshake at 178, startApi as client 17, one
        # contract lookup per symbol, tick-by-tick by conId, and a cancel for each at the end
        assert tws.server_version == 178
        assert tws.requests(71)[0][2] == "17"
        assert sorted(f[4] for f in tws.requests(9)) == ["AAPL", "MSFT"]
        conid = tws.conids
        assert tws.tick_by_tick_requests() == [
            ("AAPL", "AllLast", conid["AAPL"]), ("AAPL", "BidAsk", conid["AAPL"]),
            ("MSFT", "AllLast", conid["MSFT"]), ("MSFT", "BidAsk", conid["MSFT"])]
        assert sorted(f[1] for f in tws.requests(98)) == sorted(f[1] for f in tws.requests(97))

    validator = Validator(source="ib")
    trades = [validator.validate("trade", table) for table in got["trade"]]
    quotes = [validator.validate("quote", table) for table in got["quote"]]
    quarantined = pa.concat_tables([r.quarantined for r in trades + quotes])
    assert quarantined.num_rows == 1
    bad = quarantined.to_pylist()[0]
    assert (bad["kind"], bad["symbol"], bad["event_ts"], bad["reason"], bad["source"]) == (
        "trade", "MSFT", 1_767_623_402_000_000_000, "non_positive_price", "ib")
    assert bad["detail"] == "price 0.0 is not > 0"
    assert json.loads(bad["payload"])["trade_id"] == "ib:MSFT:2"
    counts = validator.counts
    assert (counts.received, counts.accepted, counts.quarantined, counts.filtered) == (N_TICKS, 7, 1, 0)
    assert counts.by_reason == {"non_positive_price": 1} and counts.reconciles()
    accepted = pa.concat_tables([r.accepted for r in trades])
    assert accepted.equals(EXPECTED_TRADES.filter(pa.array([True, True, True, True, False, True])))
    assert pa.concat_tables([r.accepted for r in quotes]).equals(EXPECTED_QUOTES)


def test_disconnect_mid_stream_raises_after_yielding_what_arrived():
    with FakeTws(TICKS, disconnect_after=4) as tws:
        got: list[tuple[str, pa.Table]] = []
        with pytest.raises(IbSourceError, match=r"lost the connection to TWS/IB Gateway at "
                                                r"127\.0\.0\.1:\d+ \(client id 17\) after 4 ticks"):
            got.extend(source(tws, ["AAPL", "MSFT"], max_ticks=100).batches())
    rows = pa.concat_tables([table for _, table in got])
    assert rows.equals(EXPECTED_TRADES.slice(0, 4)), "the ticks before the drop are not lost"


def test_duration_limit_ends_cleanly_and_flush_interval_bounds_latency():
    with FakeTws({"AAPL": TICKS["AAPL"]}) as tws:
        started = time.monotonic()
        arrivals = []
        for kind, table in source(tws, ["AAPL"], batch_rows=1000, flush_interval_s=0.05,
                                  duration_s=2.0).batches():
            arrivals.append((time.monotonic() - started, kind, table.num_rows))
        elapsed = time.monotonic() - started
    assert [(kind, n) for _, kind, n in arrivals] == [("trade", 3)]
    assert arrivals[0][0] < 1.5, "a partial batch is flushed after flush_interval_s, not at the end"
    assert 2.0 <= elapsed < 10


def test_stopping_early_still_unsubscribes_and_disconnects():
    with FakeTws(TICKS) as tws:
        batches = source(tws, ["AAPL", "MSFT"], batch_rows=1).batches()
        kind, first = next(batches)
        batches.close()
        assert tws.wait_client_gone(), "closing the iterator must close the connection"
        assert (kind, first.column("trade_id").to_pylist()) == ("trade", ["ib:AAPL:1"])
        assert sorted(f[1] for f in tws.requests(98)) == sorted(f[1] for f in tws.requests(97))


def test_unknown_symbol_is_refused_with_ibs_reason():
    with FakeTws(TICKS) as tws, pytest.raises(IbSourceError, match=r"\['ZZZZ'\].*IB error 200: No "
                                                                   r"security definition"):
        list(source(tws, ["AAPL", "ZZZZ"], max_ticks=1).batches())


def test_refused_subscription_raises():
    reject = {"MSFT": (10189, "Failed to request tick-by-tick data:No market data permissions")}
    with FakeTws(TICKS, reject=reject) as tws, pytest.raises(
            IbSourceError, match=r"trade subscription for MSFT refused: IB error 10189: Failed"):
        list(source(tws, ["AAPL", "MSFT"], max_ticks=N_TICKS).batches())


def test_no_tws_listening_is_a_clear_error():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    src = IbMarketDataSource("127.0.0.1", port, 17, ["AAPL"], max_ticks=1, connect_timeout_s=2)
    with pytest.raises(IbSourceError, match=r"cannot connect to TWS/IB Gateway at 127\.0\.0\.1"):
        next(src.batches())


def test_off_unless_configured():
    cfg = load_config("local")
    assert cfg.ib == IbConfig() and not cfg.ib.enabled
    with pytest.raises(IbSourceError, match="ib.enabled"):
        IbMarketDataSource.from_config(cfg.ib)
    on = load_config("local", env={"TRADELAKE_IB__ENABLED": "true", "TRADELAKE_IB__PORT": "4002",
                                   "TRADELAKE_IB__SYMBOLS": "AAPL,MSFT"}).ib
    src = IbMarketDataSource.from_config(on, max_ticks=5)
    assert (src.port, src.client_id, src.symbols, src.quotes) == (4002, 17, ("AAPL", "MSFT"), False)


def test_fake_answers_a_full_ib_connect_sync():
    """The double must satisfy ib_async's default start-up sync, not just the source's lean one."""
    async def connect(port: int) -> list[str]:
        ib = IB()
        await ib.connectAsync("127.0.0.1", port, clientId=0, timeout=5, raiseSyncErrors=True)
        try:
            return ib.managedAccounts()
        finally:
            ib.disconnect()
            await asyncio.sleep(0)

    with FakeTws() as tws:
        assert asyncio.run(connect(tws.port)) == ["DU123456"]
        assert tws.wait_client_gone()
        sent = {int(f[0]) for f in tws.received}
    assert {71, 61, 5, 99, 6, 76, 7} <= sent  # startApi, positions, open/completed orders,
    # account updates (plain and multi), executions
