"""order_routing/risk.py: each pre-trade rule passing and refusing (with its reason), the first
failing rule winning, the throttle and the UTC day on an injected clock, the kill switch."""

from __future__ import annotations

import dataclasses
import itertools

from intelligence.domain import BUY, LIMIT, MARKET, SELL, OrderIntent
from order_routing.events import ExecReport
from order_routing.oms import OrderManager
from order_routing.risk import NS_PER_DAY, KillSwitch, PreTradeRisk
from tradelake.config import RiskConfig

OFF = RiskConfig(max_order_qty=0, max_order_notional=0, max_position=0, max_gross_exposure=0,
                 price_collar_pct=0, max_orders_per_s=0, daily_loss_limit=0)
_ids = itertools.count(1)


class Clock:
    def __init__(self, now: int = 5 * NS_PER_DAY) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def order(side: str = BUY, qty: float = 100, price: float | None = None, symbol: str = "AAA") -> OrderIntent:
    return OrderIntent(1, symbol, f"o{next(_ids)}", side, qty, LIMIT if price else MARKET, price)


def risk(marks: dict | None = None, clock: Clock | None = None, **limits) -> PreTradeRisk:
    return PreTradeRisk(dataclasses.replace(OFF, **limits), marks if marks is not None else {},
                        clock or Clock())


def filled(oms: OrderManager, side: str, qty: float, price: float, symbol: str = "AAA") -> None:
    oms.apply(ExecReport(1, symbol, f"X{next(_ids)}", f"f{next(_ids)}", "TRADE", "FILLED", side, qty, price,
                         qty, 0, price))


def working(oms: OrderManager, side: str, qty: float, symbol: str = "AAA") -> None:
    oms.submit(OrderIntent(1, symbol, f"w{next(_ids)}", side, qty))


def test_all_rules_off_pass_anything():
    assert risk().check(order(qty=1e12), OrderManager()) is None


def test_max_order_qty():
    r, oms = risk(max_order_qty=10000), OrderManager()
    assert r.check(order(qty=10000), oms) is None
    assert r.check(order(qty=12000), oms) == "MAX_ORDER_QTY: 12000 > 10000"


def test_max_order_notional_values_at_the_limit_price_else_the_last_trade():
    r, oms = risk({"AAA": 999.0}, max_order_notional=1_000_000), OrderManager()
    assert r.check(order(qty=1000), oms) is None  # 999000 at the mark
    assert r.check(order(qty=1000, price=1000.5), oms) == "MAX_ORDER_NOTIONAL: 1000500 > 1000000"
    assert r.check(order(qty=1, symbol="ZZZ"), oms) == "NO_MARK: no last trade of ZZZ to value a market order"
    assert r.check(order(qty=1, price=5.0, symbol="ZZZ"), oms) is None


def test_price_collar():
    r, oms = risk({"AAA": 100.0}, price_collar_pct=5), OrderManager()
    assert r.check(order(price=105.0), oms) is None and r.check(order(SELL, price=95.0), oms) is None
    assert r.check(order(price=105.5), oms) == ("PRICE_COLLAR: limit 105.5 is 5.50% from last trade 100 "
                                                "(max 5%)")
    assert r.check(order(price=50.0, symbol="NEW"), oms) is None  # nothing to compare with


def test_max_position_counts_working_orders_on_the_same_side():
    r, oms = risk(max_position=1000), OrderManager()
    filled(oms, BUY, 600, 10.0)
    working(oms, BUY, 300)
    working(oms, SELL, 50)  # the other side never adds to this side's risk
    assert r.check(order(qty=100), oms) is None  # 600 + 300 + 100 = 1000
    assert r.check(order(qty=101), oms) == "MAX_POSITION: AAA would be 1001 with working orders, limit 1000"
    assert r.check(order(SELL, qty=1550), oms) is None  # 600 - 50 - 1550 = -1000
    assert r.check(order(SELL, qty=1551), oms) == ("MAX_POSITION: AAA would be -1001 with working orders, "
                                                   "limit 1000")


def test_max_gross_exposure_sums_the_worse_side_of_every_symbol():
    r, oms = risk({"AAA": 10.0, "BBB": 20.0}, max_gross_exposure=10000), OrderManager()
    filled(oms, BUY, 300, 10.0)  # AAA 300 * 10 = 3000
    working(oms, BUY, 100, "BBB")
    working(oms, SELL, 50, "BBB")  # BBB: max(|0 + 100|, |0 - 50|) * 20 = 2000
    assert r.check(order(qty=400), oms) is None  # 700 * 10 + 2000 = 9000
    assert r.check(order(qty=600), oms) == "MAX_GROSS_EXPOSURE: 11000 > 10000"  # 900 * 10 + 2000
    assert r.check(order(SELL, qty=800), oms) is None  # AAA short side: |300 - 800| = 500 -> 7000


def test_first_failing_rule_wins():
    r = risk({"AAA": 100.0}, max_order_qty=10, max_order_notional=500, kill_switch=False)
    assert r.check(order(qty=20), OrderManager()).startswith("MAX_ORDER_QTY")


def test_throttle_is_a_token_bucket_on_the_injected_clock():
    clock = Clock()
    r, oms = risk(clock=clock, max_orders_per_s=2, max_order_qty=100), OrderManager()
    assert [r.check(order(), oms) for _ in range(3)] == [None, None, "THROTTLE: more than 2 orders/s"]
    clock.now += 250_000_000  # a quarter second: half a token
    assert r.check(order(), oms) == "THROTTLE: more than 2 orders/s"
    clock.now += 250_000_000
    assert r.check(order(qty=500), oms) == "MAX_ORDER_QTY: 500 > 100"  # refused orders take no token
    assert r.check(order(), oms) is None and r.check(order(), oms) is not None
    clock.now += 10 * 1_000_000_000  # the bucket holds one second's worth, not ten
    assert [r.check(order(), oms) for _ in range(3)][2] == "THROTTLE: more than 2 orders/s"


def test_daily_loss_blocks_orders_that_add_risk_and_lets_reducing_ones_pass():
    clock, marks = Clock(5 * NS_PER_DAY + 1), {"AAA": 50.0}
    r, oms = risk(marks, clock, daily_loss_limit=100), OrderManager()
    filled(oms, BUY, 10, 50.0)
    assert r.check(order(qty=1), oms) is None  # the day starts at P&L 0
    marks["AAA"] = 38.0  # 10 * (38 - 50) = -120 today
    reason = "DAILY_LOSS: day P&L -120 < -100; only orders reducing a position pass"
    assert r.check(order(qty=1), oms) == reason
    assert r.check(order(SELL, qty=5), oms) is None and r.check(order(SELL, qty=10), oms) is None
    assert r.check(order(SELL, qty=11), oms) == reason  # would flip to short: new risk
    working(oms, SELL, 8)
    assert r.check(order(SELL, qty=5), oms) == reason  # 8 + 5 working would go short
    assert r.check(order(SELL, qty=2), oms) is None
    clock.now += NS_PER_DAY  # a new UTC day starts from where the last one ended
    assert r.check(order(qty=1), oms) is None
    marks["AAA"] = 27.0  # another -110 today
    assert r.check(order(qty=1), oms) == reason.replace("-120", "-110")
    r.reset_day(-300.0)
    assert r.check(order(qty=1), oms) is None  # told the day started at -300: -230 - (-300) = +70


def test_risk_model_vetoes_new_risk_in_a_volatile_regime():
    forecasts = {"AAA": 0.05, "BBB": 0.01}
    r = PreTradeRisk(dataclasses.replace(OFF, risk_model_max_vol=0.03), {}, Clock(), risk_model=forecasts.get)
    oms = OrderManager()
    assert r.check(order(), oms) == "RISK_MODEL: AAA volatility forecast 0.05 > 0.03"
    assert r.check(order(symbol="BBB"), oms) is None and r.check(order(symbol="CCC"), oms) is None
    filled(oms, BUY, 100, 10.0)
    assert r.check(order(SELL, qty=100), oms) is None  # getting out is always allowed


def test_kill_switch_engage_release_and_config():
    switch = KillSwitch()
    r = PreTradeRisk(OFF, {}, Clock(), kill_switch=switch)
    oms = OrderManager()
    switch.engage("desk halt")
    assert switch.engaged and r.check(order(), oms) == "KILL_SWITCH: desk halt"
    switch.release()
    assert not switch.engaged and switch.reason == "" and r.check(order(), oms) is None
    killed = risk(kill_switch=True)
    assert killed.check(order(), oms) == "KILL_SWITCH: routing.risk.kill_switch is set"


def test_kill_switch_polls_at_most_every_interval_and_keeps_its_state_when_the_poll_fails():
    answers: list = [(True, "risk kill from CLI"), (False, ""), RuntimeError("db down"), None]
    calls = []

    def poll():
        calls.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = Clock(0)
    switch = KillSwitch(poll, poll_interval_s=1.0, clock=clock)
    assert switch.engaged and switch.reason == "risk kill from CLI"
    clock.now = 999_999_999
    assert switch.engaged and len(calls) == 1  # not re-read within the interval
    clock.now = 1_000_000_000
    assert not switch.engaged and len(calls) == 2
    switch.engage("local")
    clock.now = 2_000_000_000
    assert switch.engaged and switch.reason == "local"  # the poll failed: state kept
    clock.now = 3_000_000_000
    assert switch.engaged and len(calls) == 4  # None: no news


def test_a_replace_is_checked_as_its_new_size_in_place_of_the_old_open_quantity():
    r, oms = risk(max_position=100), OrderManager()
    working(oms, BUY, 80)
    old = oms.open_orders()[0]
    replacement = OrderIntent(2, "AAA", "r1", BUY, 100)
    assert r.check(replacement, oms, replacing=old) is None  # 100 instead of 80, not 180
    assert r.check(OrderIntent(2, "AAA", "r2", BUY, 101), oms, replacing=old).startswith("MAX_POSITION")


def test_default_limits_pass_an_ordinary_order():
    r = PreTradeRisk(RiskConfig(), {"AAA": 100.0}, Clock())
    assert r.check(order(qty=100, price=101.0), OrderManager()) is None
