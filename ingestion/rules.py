"""The stateless per-kind rules, vectorised over one typed batch.

Each rule turns whole columns into a mask of failing rows, and ``_Verdicts`` keeps, per row,
the first rule that failed; rules must be applied in ``PRIORITY`` order (``_Verdicts`` checks),
which is what makes that first rule the documented reason without any per-row branching. A
rule's detail text is a function of the row, called only for rows actually rejected: building
messages for millions of good rows would cost more than the checks themselves.

The rules that need configuration or memory (universe, future timestamps, sessions,
duplicates) are applied by ``ingestion.validation.Validator`` through the same ``_Verdicts``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion._arrow_util import _beyond, _empty_or_null, _numeric, _one_of_bytes, _single_chunk
from ingestion._common import _ARROW, _RANK
from ingestion.parsing import _interval_class
from ingestion.quarantine import Reason

#: Prices above this are OUT_OF_RANGE (no listed instrument trades near a billion per unit).
MAX_PRICE = 1e9
#: Sizes, volumes and trade counts above this are OUT_OF_RANGE (room for crypto base units).
MAX_QUANTITY = 1e15

_FILTERED = 255
_Detail = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class _KindRules:
    """Which fields are prices and quantities for a kind (drives the generic rules)."""

    prices: tuple[str, ...]
    quantities: tuple[str, ...]


_KIND_RULES = {
    "trade": _KindRules(("price",), ("size",)),
    "quote": _KindRules(("bid_price", "ask_price"), ("bid_size", "ask_size")),
    "bar": _KindRules(("open", "high", "low", "close", "vwap"), ("volume", "trade_count")),
}


class _Verdicts:
    """First failing rule per row: 0 = none (so far), k = rules[k - 1], 255 = filtered."""

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, np.uint8)
        self.rules: list[tuple[Reason, _Detail]] = []

    def fail(self, reason: Reason, bad: np.ndarray | None, detail: _Detail) -> None:
        """Record ``reason`` for rows in ``bad`` that have no verdict yet. Rules must arrive
        in ``PRIORITY`` order: that is what makes the first reason the documented one."""
        if self.rules and _RANK[reason] < _RANK[self.rules[-1][0]]:
            raise AssertionError(f"rule {reason} applied after {self.rules[-1][0]}")
        self.rules.append((reason, detail))
        if len(self.rules) >= _FILTERED:
            raise AssertionError("too many rules for a uint8 verdict")
        if bad is not None and bad.any():
            self.code[bad & (self.code == 0)] = len(self.rules)

    def pending(self) -> np.ndarray:
        return self.code == 0


@dataclass
class _Columns:
    """One conformed batch as numpy: symbol codes, numeric values with null masks, intervals."""

    sym_dict: pa.Array             # the batch's distinct symbols
    sym_codes: np.ndarray          # index into sym_dict; len(sym_dict) for a null symbol
    blank_symbol: np.ndarray
    values: dict[str, np.ndarray]  # numeric columns; nulls filled (0 / NaN)
    nulls: dict[str, np.ndarray | None]
    interval: _Intervals | None

    @property
    def ts(self) -> np.ndarray:
        return self.values["ts"]

    @classmethod
    def read(cls, kind: str, t: pa.Table) -> _Columns:
        symbols = _single_chunk(t.column("symbol")).dictionary_encode()
        sym_dict = symbols.dictionary
        sym_codes = symbols.indices.fill_null(len(sym_dict)).to_numpy(zero_copy_only=False)
        trimmed = pc.utf8_length(pc.utf8_trim_whitespace(sym_dict))
        blank = np.append(pc.equal(trimmed, 0).to_numpy(zero_copy_only=False), True)
        numeric = {f.name: _numeric(_single_chunk(t.column(f.name)))
                   for f in _ARROW[kind] if f.type in (pa.int64(), pa.float64())}
        interval = _Intervals(_single_chunk(t.column("interval"))) if kind == "bar" else None
        return cls(sym_dict, sym_codes, blank[sym_codes],
                   {k: vals for k, (vals, _) in numeric.items()},
                   {k: nulls for k, (_, nulls) in numeric.items()}, interval)


def _presence_rules(kind: str, t: pa.Table, cols: _Columns, v: _Verdicts) -> None:
    """MISSING_FIELD for nulls/empties in required columns, then BAD_VALUE vocabularies."""
    for f in _ARROW[kind]:
        if f.nullable or f.name == "symbol":
            continue
        missing = (cols.nulls[f.name] if f.name in cols.values
                   else _empty_or_null(_single_chunk(t.column(f.name))))
        v.fail(Reason.MISSING_FIELD, missing, _missing(f.name))
    if kind == "trade":
        side = _single_chunk(t.column("side"))
        bad = None if side.null_count == len(side) else ~_one_of_bytes(side, b"BS")
        v.fail(Reason.BAD_VALUE, bad, lambda r: f"side {r['side']!r} is not 'B' or 'S'")
    elif cols.interval is not None:
        v.fail(Reason.BAD_VALUE, ~cols.interval.valid,
               lambda r: f"interval {r['interval']!r} is not <n><s|m|h|d|w|mo>")


def _value_rules(kind: str, cols: _Columns, v: _Verdicts) -> None:
    """NON_FINITE .. CROSSED_QUOTE: each number on its own, then the kind's consistency."""
    rules, values = _KIND_RULES[kind], cols.values
    for name in (*rules.prices, *rules.quantities):
        if values[name].dtype == np.float64:
            nulls = cols.nulls[name]
            bad = ~np.isfinite(values[name])
            v.fail(Reason.NON_FINITE, bad if nulls is None else bad & ~nulls, _non_finite(name))
    v.fail(Reason.OUT_OF_RANGE, cols.ts < 0, lambda r: f"ts {r['ts']} is before 1970")
    for name in rules.prices:
        v.fail(Reason.OUT_OF_RANGE, _beyond(values[name], MAX_PRICE), _too_big(name, MAX_PRICE))
    for name in rules.quantities:
        v.fail(Reason.OUT_OF_RANGE, _beyond(values[name], MAX_QUANTITY),
               _too_big(name, MAX_QUANTITY))
    for name in rules.prices:  # NaN (a null vwap) compares false: never flagged here
        v.fail(Reason.NON_POSITIVE_PRICE, values[name] <= 0,
               lambda r, n=name: f"{n} {r[n]!r} is not > 0")
    for name in rules.quantities:
        v.fail(Reason.NEGATIVE_SIZE, values[name] < 0,
               lambda r, n=name: f"{n} {r[n]!r} is negative")
    if kind == "bar":
        o, h, lo, c = values["open"], values["high"], values["low"], values["close"]
        v.fail(Reason.HIGH_BELOW_LOW, h < lo, lambda r: f"high {r['high']!r} < low {r['low']!r}")
        v.fail(Reason.HIGH_BELOW_OPEN_CLOSE, h < np.maximum(o, c),
               lambda r: f"high {r['high']!r} < max(open {r['open']!r}, close {r['close']!r})")
        v.fail(Reason.LOW_ABOVE_OPEN_CLOSE, lo > np.minimum(o, c),
               lambda r: f"low {r['low']!r} > min(open {r['open']!r}, close {r['close']!r})")
    elif kind == "quote":
        v.fail(Reason.CROSSED_QUOTE, values["bid_price"] > values["ask_price"],
               lambda r: f"bid {r['bid_price']!r} > ask {r['ask_price']!r}")


_INTERVAL_CLASSES = ("intraday", "daily", "long")


class _Intervals:
    """Bar intervals, classified once per distinct value (a batch has very few)."""

    def __init__(self, arr: pa.Array) -> None:
        encoded = arr.dictionary_encode()
        self.dictionary: list[str] = encoded.dictionary.to_pylist()
        classes = [_interval_class(s) for s in self.dictionary] + [None]
        self.codes = encoded.indices.fill_null(len(self.dictionary)).to_numpy(
            zero_copy_only=False).astype(np.int64)
        self.valid = np.array([c is not None for c in classes], bool)[self.codes]
        self.cls = np.array([_INTERVAL_CLASSES.index(c[0]) if c else -1 for c in classes],
                            np.int8)[self.codes]
        self.seconds = np.array([c[1] if c else 0 for c in classes], np.int64)[self.codes]


def _missing(name: str) -> _Detail:
    return lambda _r: f"required field {name!r} is null or empty"


def _non_finite(name: str) -> _Detail:
    return lambda r: f"{name} is {r[name]!r}, not a finite number"


def _too_big(name: str, limit: float) -> _Detail:
    return lambda r: f"{name} {r[name]!r} exceeds {limit:g} in magnitude"
