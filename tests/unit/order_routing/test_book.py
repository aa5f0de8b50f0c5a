"""order_routing/exchange/book.py: price-time priority, partial fills, cancel, replace priority rules,
the market maker, IOC/FOK remainders and the no-liquidity reject. Expectations computed by hand."""

from __future__ import annotations

import itertools

import pytest

from order_routing.exchange.book import BUY, SELL, BookError, Order, OrderBook

_ids = itertools.count(1)


def order(book: OrderBook, side: str, qty: float, price: float | None, tif: str = "GTC") -> Order:
    ticks = None if price is None else book.ticks(price)
    return Order(f"O{next(_ids)}", side, qty, ticks, tif, owner="client")


def fills(trades) -> list[tuple[str, float, float]]:
    return [(t.maker.order_id, t.qty, t.price) for t in trades]


def test_price_then_time_priority_across_levels() -> None:
    book = OrderBook("AAA", 0.01)
    s1, s2, s3 = order(book, SELL, 100, 10.02), order(book, SELL, 100, 10.01), order(book, SELL, 50, 10.01)
    for o in (s1, s2, s3):
        assert book.submit(o) == []
    buy = order(book, BUY, 180, 10.02)
    trades = book.submit(buy)
    # best price first (10.01), within it the earlier order (s2 before s3), then 10.02
    assert fills(trades) == [(s2.order_id, 100, 10.01), (s3.order_id, 50, 10.01), (s1.order_id, 30, 10.02)]
    assert buy.status == "FILLED" and buy.cum_qty == 180
    assert buy.avg_price == pytest.approx((150 * 10.01 + 30 * 10.02) / 180)  # 10.0116...
    assert (s1.status, s1.leaves_qty, s2.status, s3.status) == ("PARTIALLY_FILLED", 70, "FILLED", "FILLED")
    # each report carries the running state right after its fill
    assert [(t.taker_cum, round(t.taker_avg, 6)) for t in trades] == [(100, 10.01), (150, 10.01),
                                                                       (180, round(1802.1 / 180, 6))]
    assert book.depth(SELL) == [(10.02, 70)] and book.depth(BUY) == []


def test_limit_crossing_a_smaller_order_rests_the_remainder() -> None:
    book = OrderBook("AAA", 0.01)
    sell = order(book, SELL, 40, 9.99)
    book.submit(sell)
    buy = order(book, BUY, 100, 10.00)
    assert fills(book.submit(buy)) == [(sell.order_id, 40, 9.99)]  # at the resting order's price
    assert (buy.status, buy.cum_qty, buy.leaves_qty, buy.avg_price) == ("PARTIALLY_FILLED", 40, 60, 9.99)
    assert book.depth(BUY) == [(10.00, 60)] and book.best(SELL) is None
    assert book.is_resting(buy)


def test_cancel_takes_the_order_out_once() -> None:
    book = OrderBook("AAA", 0.01)
    bid = order(book, BUY, 100, 10.00)
    book.submit(bid)
    book.cancel(bid)
    assert bid.status == "CANCELED" and bid.leaves_qty == 0 and book.depth(BUY) == []
    with pytest.raises(BookError, match="not open"):
        book.cancel(bid)
    sell = order(book, SELL, 10, 10.00)  # nothing left to cross
    assert book.submit(sell) == [] and book.depth(SELL) == [(10.00, 10)]


def _two_bids(book: OrderBook) -> tuple[Order, Order]:
    a, b = order(book, BUY, 100, 10.00), order(book, BUY, 100, 10.00)
    book.submit(a)
    book.submit(b)
    return a, b


def test_replace_reducing_quantity_keeps_time_priority() -> None:
    book = OrderBook("AAA", 0.01)
    a, b = _two_bids(book)
    assert book.replace(a, 50, a.price) == []
    trades = book.submit(order(book, SELL, 60, 10.00))
    assert [(t.maker.order_id, t.qty) for t in trades] == [(a.order_id, 50), (b.order_id, 10)]


def test_replace_increasing_quantity_loses_time_priority() -> None:
    book = OrderBook("AAA", 0.01)
    a, b = _two_bids(book)
    book.replace(a, 150, a.price)
    trades = book.submit(order(book, SELL, 120, 10.00))
    assert [(t.maker.order_id, t.qty) for t in trades] == [(b.order_id, 100), (a.order_id, 20)]
    assert a.leaves_qty == 130


def test_replace_changing_price_loses_priority_and_can_trade() -> None:
    book = OrderBook("AAA", 0.01)
    a, b = _two_bids(book)
    book.replace(a, 100, book.ticks(9.99))
    book.replace(a, 100, book.ticks(10.00))  # back to 10.00: now behind b
    assert [o.order_id for o in book.resting(BUY)] == [b.order_id, a.order_id]
    ask = order(book, SELL, 30, 10.05)
    book.submit(ask)
    trades = book.replace(a, 100, book.ticks(10.05))  # now marketable: trades at once
    assert fills(trades) == [(ask.order_id, 30, 10.05)]
    assert (a.status, a.leaves_qty, book.best(BUY)) == ("PARTIALLY_FILLED", 70, book.ticks(10.05))


def test_replace_below_the_filled_quantity_is_refused() -> None:
    book = OrderBook("AAA", 0.01)
    a, _ = _two_bids(book)
    book.submit(order(book, SELL, 30, 10.00))
    assert a.cum_qty == 30
    with pytest.raises(BookError, match="below the filled quantity"):
        book.replace(a, 20, a.price)
    assert (a.qty, a.status) == (100, "PARTIALLY_FILLED")  # unchanged
    book.replace(a, 30, a.price)  # down to exactly the filled quantity: done
    assert (a.status, a.leaves_qty, book.depth(BUY)) == ("FILLED", 0, [(10.00, 100)])


def test_market_order_fills_against_the_market_maker() -> None:
    book = OrderBook("AAA", 0.01, mm_qty=1000, half_spread_bps=2.0)
    book.set_mark(100.00)
    # mark -/+ 2 bps = 99.98 / 100.02, 1000 each side
    assert book.depth(BUY) == [(99.98, 1000)] and book.depth(SELL) == [(100.02, 1000)]
    buy = order(book, BUY, 300, None)
    trades = book.submit(buy)
    assert [(t.qty, t.price, t.maker.owner) for t in trades] == [(300, 100.02, None)]
    assert buy.status == "FILLED"
    big = order(book, SELL, 1500, None)  # more than shown: the rest is canceled (IOC semantics)
    trades = book.submit(big)
    assert [(t.qty, t.price) for t in trades] == [(1000, 99.98)]
    assert (big.status, big.cum_qty, big.leaves_qty) == ("CANCELED", 1000, 0)
    # a new mark (e.g. the exchange's own last trade) re-posts the depleted quotes in full
    book.set_mark(99.98)
    assert book.depth(BUY) == [(99.96, 1000)] and book.depth(SELL) == [(100.0, 1000)]


def test_market_maker_keeps_a_full_unchanged_quote() -> None:
    book = OrderBook("AAA", 0.01, mm_qty=100, half_spread_bps=2.0)
    book.set_mark(100.00)
    client = order(book, SELL, 50, 100.02)
    book.submit(client)
    book.set_mark(99.999)  # ask still 100.02 (bid moves): the ask keeps its place ahead of the client
    trades = book.submit(order(book, BUY, 120, 100.02))
    assert [(t.maker.owner, t.qty) for t in trades] == [(None, 100), ("client", 20)]


def test_new_mark_through_a_resting_limit_fills_it() -> None:
    book = OrderBook("AAA", 0.01, mm_qty=1000, half_spread_bps=2.0)
    bid = order(book, BUY, 100, 101.00)
    book.submit(bid)
    trades = book.set_mark(100.00)  # the maker's ask at 100.02 crosses the client's 101.00 bid
    assert [(t.maker.order_id, t.qty, t.price) for t in trades] == [(bid.order_id, 100, 101.00)]
    assert bid.status == "FILLED" and book.depth(SELL) == [(100.02, 900)]


def test_ioc_remainder_is_canceled_not_rested() -> None:
    book = OrderBook("AAA", 0.01)
    book.submit(order(book, SELL, 40, 10.00))
    ioc = order(book, BUY, 100, 10.00, "IOC")
    assert [t.qty for t in book.submit(ioc)] == [40]
    assert (ioc.status, ioc.cum_qty, ioc.leaves_qty) == ("CANCELED", 40, 0)
    assert book.depth(BUY) == []
    ioc2 = order(book, BUY, 10, 9.00, "IOC")  # nothing crosses: canceled outright
    assert book.submit(ioc2) == [] and ioc2.status == "CANCELED"


def test_fok_is_all_or_nothing() -> None:
    book = OrderBook("AAA", 0.01)
    sell = order(book, SELL, 40, 10.00)
    book.submit(sell)
    fok = order(book, BUY, 100, 10.00, "FOK")
    assert book.submit(fok) == [] and fok.status == "CANCELED" and sell.leaves_qty == 40
    fok2 = order(book, BUY, 40, 10.00, "FOK")
    assert [t.qty for t in book.submit(fok2)] == [40] and fok2.status == "FILLED"


def test_market_order_without_mark_or_contra_is_refused() -> None:
    book = OrderBook("AAA", 0.01, mm_qty=1000)
    buy = order(book, BUY, 10, None)
    with pytest.raises(BookError, match="no liquidity"):
        book.submit(buy)
    assert buy.status == "NEW" and buy.cum_qty == 0  # nothing changed
    book.submit(order(book, BUY, 10, 9.50))  # a bid does not help a buy
    with pytest.raises(BookError, match="no liquidity"):
        book.submit(order(book, BUY, 10, None))
    book.submit(order(book, SELL, 5, 10.50))
    b2 = order(book, BUY, 10, None)
    assert [t.qty for t in book.submit(b2)] == [5] and b2.status == "CANCELED"


def test_prices_must_be_positive_on_the_tick_grid_and_within_the_band() -> None:
    book = OrderBook("AAA", 0.01, price_band_pct=10.0)
    assert book.ticks(190.5) == 19050 and book.price(19050) == 190.5
    for bad, why in ((0.0, "positive"), (-1.0, "positive"), (float("nan"), "positive"),
                     (10.005, "multiple of the tick")):
        with pytest.raises(BookError, match=why):
            book.ticks(bad)
    assert book.ticks(1000.0) == 100000  # no mark yet: no band
    book.set_mark(100.0)
    assert book.ticks(110.0) == 11000 and book.ticks(90.0) == 9000
    for bad in (110.01, 89.99):
        with pytest.raises(BookError, match="from the mark"):
            book.ticks(bad)


def test_stale_heap_entries_stay_bounded() -> None:
    book = OrderBook("AAA", 0.01, mm_qty=10)
    for i in range(2000):  # a drifting mark re-posts the maker's quotes at ever new prices
        book.set_mark(100 + i * 0.05)
    assert len(book._heaps[BUY]) < 100 and len(book._heaps[SELL]) < 100
    assert len(book.depth(BUY)) == 1 and len(book.depth(SELL)) == 1


def test_marks_follow_the_latest_trade_of_a_feed_message(tmp_path) -> None:
    """The exchange's Kafka mark follower minus Kafka: decoding ingestion.wire trade messages."""
    import pyarrow as pa

    from ingestion.wire import encode
    from order_routing.exchange.acceptor import SimExchange
    from tradelake.config import ExchangeConfig
    from tradelake.schemas import TRADE, arrow_schema

    def message(rows: list[tuple[int, float]]) -> bytes:
        schema = arrow_schema(TRADE)
        cols = {f.name: [None] * len(rows) for f in schema}  # the nullable ones stay null
        cols.update(ts=[t for t, _ in rows], symbol=["AAA"] * len(rows), price=[p for _, p in rows],
                    size=[1.0] * len(rows), trade_id=[str(t) for t, _ in rows], seq=list(range(len(rows))))
        return encode(pa.table(cols, schema=schema))

    ex = SimExchange(ExchangeConfig(liquidity_qty=100), tmp_path, symbols=["AAA"], clients=["C"])
    assert ex.mark_from_message(b"AAA", message([(3, 10.50), (5, 10.70), (4, 10.60)]))
    assert ex.books["AAA"].mark == 10.70  # the latest by ts, not the last row
    assert ex.books["AAA"].depth(SELL) == [(10.71, 100)]  # 10.70 * 1.0002 = 10.70214 -> 10.71
    assert not ex.mark_from_message(b"AAA", message([(4, 99.0)]))  # older than the mark: ignored
    assert not ex.mark_from_message(b"BBB", message([(9, 11.0)]))  # not listed
    assert not ex.mark_from_message(b"AAA", b"not arrow")
    assert ex.books["AAA"].mark == 10.70


def test_a_mark_jump_reposts_both_quotes_without_the_maker_trading_with_itself() -> None:
    # mark 100.00 -> quotes 99.98 / 100.02; mark 100.05 -> new bid floor(100.02999) = 100.02 would
    # meet the old ask at 100.02
    book = OrderBook("JMP", 0.01, mm_qty=1000, half_spread_bps=2)
    assert book.set_mark(100.00) == []
    assert book.set_mark(100.05) == []  # no trade: the old ask was pulled before the new bid
    assert book.depth(BUY) == [(100.02, 1000)] and book.depth(SELL) == [(100.08, 1000)]
    buy, sell = order(book, BUY, 100, None, "IOC"), order(book, SELL, 100, None, "IOC")
    assert fills(book.submit(buy)) == [(book._mm[SELL].order_id, 100, 100.08)]
    assert fills(book.submit(sell)) == [(book._mm[BUY].order_id, 100, 100.02)]
