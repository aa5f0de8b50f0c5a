"""order_routing/positions.py and the OMS's P&L: average cost, realized P&L on reductions and flips,
unrealized at marks, worked out by hand (exact binary fractions, compared with ==)."""

from __future__ import annotations

import itertools

from intelligence.domain import BUY, SELL
from order_routing.events import ExecReport
from order_routing.oms import OrderManager
from order_routing.positions import Position

_n = itertools.count(1)


def test_average_cost_realized_pnl_and_a_flip_from_long_to_short():
    pos = Position("AAA")
    assert pos.fill(10, 50.0) == 0.0 and pos.fill(10, 54.0) == 0.0
    assert (pos.quantity, pos.avg_price) == (20.0, 52.0)  # (500 + 540) / 20
    assert pos.fill(-5, 56.0) == 20.0  # 5 * (56 - 52); the average cost stays
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (15.0, 52.0, 20.0)
    # sell 25 at 50: closes 15 at a loss of 2 each (-30), then opens 10 short at 50
    assert pos.fill(-25, 50.0) == -30.0
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (-10.0, 50.0, -10.0)
    assert pos.unrealized(47.0) == 30.0  # short 10 from 50, marked at 47
    assert pos.fill(-6, 44.0) == 0.0  # adding to the short: (10 * 50 + 6 * 44) / 16 = 47.75
    assert (pos.quantity, pos.avg_price) == (-16.0, 47.75)
    assert pos.fill(4, 45.0) == 11.0  # covering 4 at 45: 4 * (47.75 - 45)
    assert pos.unrealized(48.0) == -3.0  # -12 * (48 - 47.75)
    assert pos.fill(12, 47.75) == 0.0 and (pos.quantity, pos.avg_price, pos.realized_pnl) == (0.0, 0.0, 1.0)
    assert pos.unrealized(99.0) == 0.0


def test_short_to_long_flip_opens_the_rest_at_the_fill_price():
    pos = Position("AAA")
    pos.fill(-4, 10.0)
    assert pos.fill(10, 8.0) == 8.0  # covers 4 at 2 better, then long 6 at 8
    assert (pos.quantity, pos.avg_price) == (6.0, 8.0)


def test_float_dust_closes_a_position():
    pos = Position("AAA")
    pos.fill(0.1, 3.0)
    pos.fill(0.2, 3.0)
    pos.fill(-0.3, 3.0)  # 0.1 + 0.2 - 0.3 is 5.5e-17 in floats
    assert (pos.quantity, pos.avg_price) == (0.0, 0.0)


def fill(oms: OrderManager, cid: str, side: str, qty: float, price: float, commission: float = 0.0,
         symbol: str = "AAA") -> None:
    # an order the venue fills at once; the OMS adopts it (no submit needed for P&L)
    oms.apply(ExecReport(1, symbol, f"P{next(_n)}", cid, "TRADE", "FILLED", side, qty, price, qty, 0, price,
                         commission=commission))


def test_oms_positions_and_pnl_summary_with_marks():
    oms = OrderManager()
    fill(oms, "a", BUY, 10, 50.0, 1.0)
    fill(oms, "b", SELL, 4, 53.0, 0.5)  # realized 4 * 3 = 12
    fill(oms, "c", SELL, 2, 8.0, symbol="BBB")  # short 2 at 8
    assert oms.position("AAA").quantity == 6.0 and oms.position("BBB").quantity == -2.0
    # unmarked positions count no unrealized P&L
    assert oms.pnl() == {"realized": 12.0, "unrealized": 0.0, "commission": 1.5, "total": 10.5}
    oms.mark("AAA", 49.0)  # 6 * (49 - 50) = -6
    oms.mark("BBB", 7.5)  # -2 * (7.5 - 8) = 1
    assert oms.pnl() == {"realized": 12.0, "unrealized": -5.0, "commission": 1.5, "total": 5.5}
    # other marks (the risk's last trades) win where given, ours fill in
    assert oms.pnl({"AAA": 52.0})["unrealized"] == 12.0 + 1.0
    assert set(oms.positions()) == {"AAA", "BBB"}
