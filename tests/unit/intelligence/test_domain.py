"""intelligence/domain.py: a value that exists is valid, and values cannot change."""

from __future__ import annotations

import dataclasses
import math

import pytest

from intelligence.domain import (
    BUY,
    LIMIT,
    SELL,
    Bar,
    DomainError,
    Fill,
    OrderIntent,
    Quote,
    Signal,
    interval_ns,
)
from tradelake.schemas import BAR, EXECUTION, ORDER, QUOTE, SIGNAL

BAR_OK = Bar(60_000_000_000, "AAPL", "1m", 10.0, 11.0, 9.0, 10.5, 100.0, 10.2, 5)


def test_field_names_are_the_canonical_schemas():
    assert [f.name for f in dataclasses.fields(Bar)] == list(BAR.names)
    assert {f.name for f in dataclasses.fields(Quote)} <= set(QUOTE.names)
    assert [f.name for f in dataclasses.fields(Signal)] == list(SIGNAL.names)
    assert {f.name for f in dataclasses.fields(OrderIntent)} <= set(ORDER.names)
    assert {f.name for f in dataclasses.fields(Fill)} - {"strategy_id"} <= set(EXECUTION.names)


@pytest.mark.parametrize("change, message", [
    ({"high": 8.0}, "high 8.0 < low 9.0"),
    ({"low": 0.0}, "low must be > 0"),
    ({"close": -1.0}, "close must be > 0"),
    ({"open": 12.0}, "outside"),
    ({"close": 8.5}, "outside"),
    ({"volume": -1.0}, "volume must be >= 0"),
    ({"volume": math.inf}, "finite"),
    ({"close": math.nan}, "finite"),
    ({"vwap": 0.0}, "vwap must be > 0"),
    ({"ts": -1}, "ts must be"),
    ({"ts": 1.5}, "ts must be"),
    ({"symbol": ""}, "symbol"),
    ({"symbol": "AAPL "}, "symbol"),
    ({"interval": "1x"}, "interval"),
    ({"trade_count": -2}, "trade_count"),
    ({"open": "10"}, "finite number"),
])
def test_a_bad_bar_cannot_exist(change, message):
    with pytest.raises(DomainError, match=message):
        dataclasses.replace(BAR_OK, **change)


def test_values_are_frozen_and_compare_by_value():
    with pytest.raises(dataclasses.FrozenInstanceError):
        BAR_OK.close = 1.0  # type: ignore[misc]
    assert Bar(60_000_000_000, "AAPL", "1m", 10.0, 11.0, 9.0, 10.5, 100.0, 10.2, 5) == BAR_OK
    assert hash(BAR_OK) == hash(dataclasses.replace(BAR_OK))
    assert BAR_OK.ts_close == 120_000_000_000
    assert not hasattr(BAR_OK, "__dict__")  # slots: no stray attributes either


def test_interval_lengths():
    assert interval_ns("1m") == 60 * 10**9
    assert interval_ns("5m") == 300 * 10**9
    assert interval_ns("1h") == 3600 * 10**9
    assert interval_ns("1d") == 86400 * 10**9
    with pytest.raises(DomainError):
        interval_ns("0m")


def test_orders_signals_fills_quotes_refuse_bad_states():
    ok = OrderIntent(1, "AAPL", "s-1", BUY, 10.0)
    assert ok.signed_quantity == 10.0 and dataclasses.replace(ok, side=SELL).signed_quantity == -10.0
    for change in ({"side": "X"}, {"quantity": 0.0}, {"quantity": math.nan}, {"order_type": "STP"},
                   {"order_type": LIMIT}, {"limit_price": 5.0}, {"time_in_force": "NOW"}, {"cl_ord_id": ""}):
        with pytest.raises(DomainError):
            dataclasses.replace(ok, **change)
    assert OrderIntent(1, "AAPL", "s-2", SELL, 5.0, LIMIT, 9.5).limit_price == 9.5
    sig = Signal(1, "AAPL", "mr", "entry", -1.0, -100.0)
    for change in ({"strength": 1.5}, {"strength": math.nan}, {"target_position": math.inf},
                   {"strategy_id": " x"}):
        with pytest.raises(DomainError):
            dataclasses.replace(sig, **change)
    fill = Fill(1, "AAPL", "SIM-1", "s-1", BUY, 10.0, 9.5, 0.5)
    assert fill.signed_quantity == 10.0
    for change in ({"last_qty": -1.0}, {"last_price": 0.0}, {"commission": -0.1}, {"side": "b"}):
        with pytest.raises(DomainError):
            dataclasses.replace(fill, **change)
    with pytest.raises(DomainError, match="crossed"):
        Quote(1, "AAPL", 10.1, 100.0, 10.0, 100.0)
