"""intelligence/portfolio.py: the books, worked out by hand (prices are exact binary fractions,
so every number below is exact and compared with ==)."""

from __future__ import annotations

import itertools

import pytest

from intelligence.domain import BUY, SELL, Fill
from intelligence.portfolio import AccountingError, Portfolio

_ids = itertools.count(1)


def fill(side: str, qty: float, price: float, commission: float = 0.0, symbol: str = "AAA") -> Fill:
    n = next(_ids)
    return Fill(1, symbol, f"X-{n}", f"o-{n}", side, qty, price, commission)


def test_long_round_trip_books_cash_equity_and_realized_pnl():
    pf = Portfolio(1000.0)
    pf.apply_fill(fill(BUY, 10, 50.0, 1.0))
    # cash 1000 - 10 * 50 - 1 = 499; marked at the fill: value 500; equity 999
    assert (pf.cash, pf.position("AAA"), pf.equity) == (499.0, 10.0, 999.0)
    pf.mark("AAA", 52.5)
    # equity 999 + 10 * 2.5 = 1024 = cash 499 + 10 * 52.5
    assert pf.equity == 1024.0 and pf.check() == (1024.0, 525.0, 525.0)
    realized = pf.apply_fill(fill(SELL, 4, 53.0, 1.0))
    # realized (53 - 50) * 4 = 12; cash 499 + 212 - 1 = 710; selling 4 half a dollar above the mark:
    # equity 1024 + (-4) * (52.5 - 53) - 1 = 1025, and the books say 710 + 6 * 52.5 = 1025
    assert realized == 12.0 and pf.cash == 710.0 and pf.equity == 1025.0
    assert pf.check()[0] == 1025.0
    pf.apply_fill(fill(SELL, 6, 52.0, 1.0))
    # realized 6 * 2 = 12 more; cash 710 + 312 - 1 = 1021; equity 1025 + (-6) * (52.5 - 52) - 1 = 1021; flat
    assert pf.position("AAA") == 0.0 and pf.cash == 1021.0 and pf.equity == 1021.0
    assert pf.positions["AAA"].realized_pnl == 24.0
    # one round trip: 24 realized - 3 commissions = 21
    assert pf.round_trips == [21.0] and pf.commissions == 3.0
    assert pf.traded_notional == 500.0 + 212.0 + 312.0


def test_short_and_flip_through_zero():
    pf = Portfolio(1000.0)
    pf.apply_fill(fill(SELL, 10, 20.0))
    # short 10 at 20: cash 1200, value -200, equity 1000
    assert (pf.cash, pf.position("AAA"), pf.check()[0]) == (1200.0, -10.0, 1000.0)
    pf.mark("AAA", 18.0)
    assert pf.equity == 1020.0  # +2 * 10
    pf.apply_fill(fill(BUY, 15, 18.0))
    # closes 10 (realized (20 - 18) * 10 = 20), opens long 5 at 18: cash 1200 - 270 = 930
    assert pf.position("AAA") == 5.0 and pf.positions["AAA"].avg_price == 18.0
    assert pf.cash == 930.0 and pf.check()[0] == 1020.0 and pf.round_trips == [20.0]


def test_averaging_in():
    pf = Portfolio(10_000.0)
    pf.apply_fill(fill(BUY, 10, 10.0))
    pf.apply_fill(fill(BUY, 30, 12.0))
    assert pf.positions["AAA"].avg_price == 11.5  # (100 + 360) / 40


def test_a_bookkeeping_error_is_caught():
    pf = Portfolio(1000.0)
    pf.apply_fill(fill(BUY, 10, 50.0))
    pf.cash += 0.01  # money from nowhere
    with pytest.raises(AccountingError, match="!= equity"):
        pf.check()
