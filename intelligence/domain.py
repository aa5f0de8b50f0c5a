"""Domain value types of the trading layer: identifiers, market events, decisions and fills.

NautilusTrader's habit: a value that exists is valid. Each type is a frozen, slotted dataclass
whose constructor refuses a bad state (a bar with high < low, a non-positive price, a negative or
infinite quantity, an unknown side), so code downstream never re-checks. Field names are the
canonical ones of ``tradelake/schemas.py`` (BAR, QUOTE, SIGNAL, ORDER, EXECUTION) so a value
maps one to one onto a warehouse row; timestamps are int UTC nanoseconds (``ts``) as everywhere.

Construction costs ~2-3 us (frozen dataclasses set each field through ``object.__setattr__``),
so sources build bars once; the event loop only reads attributes (slots: ~50 ns each).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import NewType

Symbol = NewType("Symbol", str)
StrategyId = NewType("StrategyId", str)
ClientOrderId = NewType("ClientOrderId", str)

BUY, SELL = "B", "S"  # ORDER.side / EXECUTION.side
SIDES = (BUY, SELL)
MARKET, LIMIT = "MKT", "LMT"
ORDER_TYPES = (MARKET, LIMIT)  # what the simulated venue and the engine support
TIME_IN_FORCE = ("DAY", "GTC", "IOC", "FOK")

_INTERVAL = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}
_INTERVAL_NS: dict[str, int] = {}


class DomainError(ValueError):
    """A value would be invalid; the message names the field and the value."""


def interval_ns(interval: str) -> int:
    """Length of a bar interval ('1m', '5m', '1h', '1d', '30s') in ns; memoised (hot path)."""
    try:
        return _INTERVAL_NS[interval]
    except KeyError:
        match = _INTERVAL.match(interval) if isinstance(interval, str) else None
        if not match:
            raise DomainError(f"interval {interval!r}: expected <n><s|m|h|d>, e.g. '1m'") from None
        _INTERVAL_NS[interval] = int(match.group(1)) * _UNIT_NS[match.group(2)]
        return _INTERVAL_NS[interval]


def _finite(name: str, value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise DomainError(f"{name} must be a finite number, got {value!r}")


def _positive(name: str, value: float) -> None:
    _finite(name, value)
    if value <= 0:
        raise DomainError(f"{name} must be > 0, got {value!r}")


def _non_negative(name: str, value: float) -> None:
    _finite(name, value)
    if value < 0:
        raise DomainError(f"{name} must be >= 0, got {value!r}")


def _ts(value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DomainError(f"ts must be a non-negative int of UTC ns, got {value!r}")


def _ident(name: str, value: str) -> None:
    if not isinstance(value, str) or not value or value != value.strip():
        raise DomainError(f"{name} must be a non-empty string without surrounding spaces, got {value!r}")


_INF = math.inf
# Each __post_init__ first runs one combined predicate (cheap: the engine builds a signal, an
# intent and a fill per trade) and only when it fails the per-field checks above, which raise
# the precise error. A value the predicate is unsure of (e.g. a numpy integer ts) still gets the
# full checks and is accepted if they pass.


def _fast_init(cls: type) -> type:
    """Give a frozen slotted dataclass a faster ``__init__`` with the same signature.

    The generated one sets each field with ``object.__setattr__(self, name, value)`` (a name
    lookup per field); this one calls each slot descriptor's ``__set__`` directly: ~35 % less
    per object, which the engine pays three times per trade (signal, intent, fill) and a loader
    once per bar. Instances stay frozen (assignment raises FrozenInstanceError) and equality,
    hashing, ``repr``, ``fields`` and ``replace`` are the dataclass's own.
    """
    namespace: dict[str, object] = {}
    params, body = [], []
    for f in dataclasses.fields(cls):
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n    self.__post_init__()\n"
    exec(source, namespace)  # noqa: S102 - generated from the class's own field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init
    return cls


@_fast_init
@dataclass(frozen=True, slots=True)
class Bar:
    """An OHLCV bar (schema BAR). ``ts`` is the bar's OPEN time: it is complete, and so known to a
    strategy, only at ``ts + interval_ns(interval)`` (the engine's event time for it)."""

    ts: int
    symbol: str
    interval: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float | None = None
    trade_count: int = 0

    def __post_init__(self) -> None:
        try:
            sym = self.symbol
            if (type(self.ts) is int and self.ts >= 0 and type(sym) is str and sym.strip() == sym != ""
                    and self.interval in _INTERVAL_NS
                    and 0.0 < self.low <= self.open <= self.high < _INF
                    and self.low <= self.close <= self.high
                    and 0.0 <= self.volume < _INF and type(self.trade_count) is int and self.trade_count >= 0
                    and (self.vwap is None or 0.0 < self.vwap < _INF)):
                return
        except TypeError:
            pass
        self._check()

    def _check(self) -> None:
        _ts(self.ts)
        _ident("symbol", self.symbol)
        interval_ns(self.interval)
        for name in ("open", "high", "low", "close"):
            _positive(name, getattr(self, name))
        if self.high < self.low:
            raise DomainError(f"bar {self.symbol}@{self.ts}: high {self.high} < low {self.low}")
        if not (self.low <= self.open <= self.high and self.low <= self.close <= self.high):
            raise DomainError(f"bar {self.symbol}@{self.ts}: open {self.open} / close {self.close} "
                              f"outside [low {self.low}, high {self.high}]")
        _non_negative("volume", self.volume)
        if self.vwap is not None:
            _positive("vwap", self.vwap)
        if not isinstance(self.trade_count, int) or self.trade_count < 0:
            raise DomainError(f"trade_count must be an int >= 0, got {self.trade_count!r}")

    @property
    def ts_close(self) -> int:
        """When the bar is complete (UTC ns): the engine dispatches it at this time."""
        return self.ts + interval_ns(self.interval)


@_fast_init
@dataclass(frozen=True, slots=True)
class Quote:
    """A top-of-book quote (schema QUOTE): what a simulated market order can fill against."""

    ts: int
    symbol: str
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float

    def __post_init__(self) -> None:
        _ts(self.ts)
        _ident("symbol", self.symbol)
        _positive("bid_price", self.bid_price)
        _positive("ask_price", self.ask_price)
        _non_negative("bid_size", self.bid_size)
        _non_negative("ask_size", self.ask_size)
        if self.ask_price < self.bid_price:
            raise DomainError(f"quote {self.symbol}@{self.ts}: crossed, ask {self.ask_price} < bid "
                              f"{self.bid_price}")


@_fast_init
@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's view (schema SIGNAL): ``strength`` in [-1, 1] (sign = direction) and the
    position it wants (``target_position``, units; None when advisory)."""

    ts: int
    symbol: str
    strategy_id: str
    signal_type: str
    strength: float
    target_position: float | None = None
    model_version: str | None = None

    def __post_init__(self) -> None:
        try:
            sym, sid, kind = self.symbol, self.strategy_id, self.signal_type
            if (type(self.ts) is int and self.ts >= 0 and type(sym) is type(sid) is type(kind) is str
                    and sym.strip() == sym != "" and sid.strip() == sid != "" and kind.strip() == kind != ""
                    and -1.0 <= self.strength <= 1.0
                    and (self.target_position is None or -_INF < self.target_position < _INF)):
                return
        except TypeError:
            pass
        _ts(self.ts)
        _ident("symbol", self.symbol)
        _ident("strategy_id", self.strategy_id)
        _ident("signal_type", self.signal_type)
        _finite("strength", self.strength)
        if not -1.0 <= self.strength <= 1.0:
            raise DomainError(f"strength must be in [-1, 1], got {self.strength!r}")
        if self.target_position is not None:
            _finite("target_position", self.target_position)


@_fast_init
@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order a strategy wants (schema ORDER, status PENDING_NEW): what risk checks see and the
    execution client (simulated venue, or the OMS downstream) receives."""

    ts: int
    symbol: str
    cl_ord_id: str
    side: str
    quantity: float
    order_type: str = MARKET
    limit_price: float | None = None
    time_in_force: str = "GTC"
    strategy_id: str | None = None

    def __post_init__(self) -> None:
        try:
            sym, oid = self.symbol, self.cl_ord_id
            if (type(self.ts) is int and self.ts >= 0 and type(sym) is type(oid) is str
                    and sym.strip() == sym != "" and oid.strip() == oid != ""
                    and (self.side == BUY or self.side == SELL)
                    and 0.0 < self.quantity < _INF and self.order_type == MARKET and self.limit_price is None
                    and self.time_in_force in TIME_IN_FORCE):
                return
        except TypeError:
            pass
        _ts(self.ts)
        _ident("symbol", self.symbol)
        _ident("cl_ord_id", self.cl_ord_id)
        if self.side not in SIDES:
            raise DomainError(f"side must be one of {SIDES}, got {self.side!r}")
        _positive("quantity", self.quantity)
        if self.order_type not in ORDER_TYPES:
            raise DomainError(f"order_type must be one of {ORDER_TYPES}, got {self.order_type!r}")
        if self.order_type == LIMIT:
            if self.limit_price is None:
                raise DomainError(f"limit order {self.cl_ord_id} needs a limit_price")
            _positive("limit_price", self.limit_price)
        elif self.limit_price is not None:
            raise DomainError(f"market order {self.cl_ord_id} cannot have a limit_price")
        if self.time_in_force not in TIME_IN_FORCE:
            raise DomainError(f"time_in_force must be one of {TIME_IN_FORCE}, got {self.time_in_force!r}")

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == BUY else -self.quantity


@_fast_init
@dataclass(frozen=True, slots=True)
class Fill:
    """One execution (schema EXECUTION, exec_type TRADE): ``last_qty`` at ``last_price``."""

    ts: int
    symbol: str
    exec_id: str
    cl_ord_id: str
    side: str
    last_qty: float
    last_price: float
    commission: float = 0.0
    venue: str = "SIM"
    strategy_id: str | None = None

    def __post_init__(self) -> None:
        try:
            sym, eid, oid = self.symbol, self.exec_id, self.cl_ord_id
            if (type(self.ts) is int and self.ts >= 0 and type(sym) is type(eid) is type(oid) is str
                    and sym.strip() == sym != "" and eid.strip() == eid != "" and oid.strip() == oid != ""
                    and (self.side == BUY or self.side == SELL) and 0.0 < self.last_qty < _INF
                    and 0.0 < self.last_price < _INF and 0.0 <= self.commission < _INF):
                return
        except TypeError:
            pass
        _ts(self.ts)
        _ident("symbol", self.symbol)
        _ident("exec_id", self.exec_id)
        _ident("cl_ord_id", self.cl_ord_id)
        if self.side not in SIDES:
            raise DomainError(f"side must be one of {SIDES}, got {self.side!r}")
        _positive("last_qty", self.last_qty)
        _positive("last_price", self.last_price)
        _non_negative("commission", self.commission)

    @property
    def signed_quantity(self) -> float:
        return self.last_qty if self.side == BUY else -self.last_qty
