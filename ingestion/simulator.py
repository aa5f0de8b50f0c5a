"""Deterministic market simulator: synthetic trades and quotes with a realistic microstructure.

It exists so the whole lake (Kafka, landing, Spark layers, strategies) can run and be tested
without a market-data licence, and so a run can be reproduced exactly: the same
``SimulatorConfig`` always yields byte-identical Arrow batches.

Model, per symbol (everything vectorised with numpy; no per-tick Python loop):

* **Event times.** Each trading day (Monday to Friday; no holiday calendar) a symbol has exactly
  ``trades_per_symbol_per_day`` trades and ``round(trades * quotes_per_trade)`` quotes. Their
  times are drawn from a U-shaped intraday density over the session, a mixture of the arcsine
  density (weight ``u_shape_weight``) and the uniform one, so activity is highest near the open
  and the close. Local session times are converted to UTC with ``zoneinfo`` (DST-correct).
  Timestamps are int64 UTC nanoseconds, strictly increasing per symbol and inside
  ``[open, close)``; ties are broken by adding nanoseconds.
* **Mid price.** A driftless random walk in log price in *event time* (so volatility follows
  activity), scaled so a day's variance is ``annual_volatility**2 / 252``, plus rare jumps
  (probability ``jump_probability`` per trade, normal log size ``jump_size_sigma``) and an
  overnight gap carrying a quarter of a day's variance.
* **Regimes.** Each symbol starts the first day *calm*; at the start of every later trading day
  it flips between calm and *stressed* with probability ``regime_switch_probability``. A
  stressed day multiplies volatility and spreads by ``stressed_vol_multiplier``.
* **Book.** Spread ``spread_bps`` times a per-symbol factor in [0.5, 2] (derived from the seed)
  with per-event noise; prices live on a 0.01 tick, ``0 < bid < ask`` always. Displayed
  sizes are a geometric number of round lots (the usual roughly exponential queue sizes).
* **Trades.** A trade executes against the symbol's latest quote that day: aggressor side 'B'
  prints at its ask, 'S' at its bid; a few trade strictly inside the spread. Trade sizes are
  lognormal: mostly round lots (multiples of 100), some odd lots (1..99, condition 'I');
  other conditions are '@' mostly, some null, a few 'F' (intermarket sweep).
* **Feed.** ``seq`` numbers a symbol's trades and quotes together, 1, 2, 3... in event time,
  continuing across days; ``trade_id`` is ``f"{symbol}-{seq}"``. ``exchange`` is drawn
  uniformly from ``exchanges``; ``ingest_ts`` is null (the lake stamps it on arrival).

Batches come out one time slice at a time: each trading day is cut into a fixed number of
slices (chosen from the config so a slice holds about 256k events over all symbols); for each
slice the trades batch(es) then the quotes batch(es) are yielded, each sorted by ``ts``. So the
stream is in event-time order at slice granularity. ``max_rows`` only splits batches, it never
changes the data. Random streams are keyed by (seed, symbol name, day, slice); changing the
symbol list can still change every symbol's data because it changes the slicing.

Run ``python -m ingestion.simulator`` to measure generation speed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tradelake.schemas import QUOTE, TRADE, arrow_schema

__all__ = ["QUOTE_SCHEMA", "TRADE_SCHEMA", "MarketSimulator", "SimulatorConfig", "sessions_utc",
           "trading_days"]

TRADE_SCHEMA = arrow_schema(TRADE)
QUOTE_SCHEMA = arrow_schema(QUOTE)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TRADING_DAYS_PER_YEAR = 252
_OVERNIGHT_VARIANCE_SHARE = 0.25
_SLICE_TARGET_EVENTS = 262_144
_START_PRICE_RANGE = (20.0, 500.0)
_MID_BOUNDS = (0.05, 1e6)  # guard rail for extreme configs, see _simulate_slice
_LOG_MID_MIN, _LOG_MID_MAX = math.log(_MID_BOUNDS[0]), math.log(_MID_BOUNDS[1])
_SPREAD_FACTOR_RANGE = (0.5, 2.0)
_SPREAD_NOISE_SIGMA = 0.25
_INSIDE_TRADE_PROBABILITY = 0.05
_ODD_LOT_PROBABILITY = 0.15
_ROUND_LOT = 100
_ROUND_LOT_LOG_MEAN, _ROUND_LOT_LOG_SIGMA = 0.3, 0.9  # lots per round-lot trade: 1 + floor(LN)
_ODD_LOT_LOG_MEAN, _ODD_LOT_LOG_SIGMA = math.log(20), 0.9  # shares per odd lot, capped at 99
_QUOTE_LOTS_SCALE = 1 / math.log(1 - 0.3)  # geometric depth, P(1 lot) = 0.3, mean ~3.3 lots
_CONDITION_CODES = pa.array(["@", "F", "I"])  # regular, intermarket sweep, odd lot
_AT, _ISO, _ODD_LOT = 0, 1, 2
# Round-lot trades: '@' below the first cumulative probability, null below the second, else 'F'.
_P_REGULAR, _P_REGULAR_OR_NULL = 0.80, 0.95
_SIDES = pa.array(["B", "S"])

# Stream tags keep the per-symbol, per-day and per-slice random streams apart.
_PROFILE_STREAM, _DAY_STREAM, _SLICE_STREAM = 0, 1, 2


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that determines a simulated market; invalid values raise ``ValueError``."""

    symbols: tuple[str, ...]
    seed: int
    start_date: date
    days: int = 1
    session_open: time = time(9, 30)
    session_close: time = time(16, 0)
    timezone: str = "America/New_York"
    trades_per_symbol_per_day: int = 20_000
    quotes_per_trade: float = 3.0
    start_prices: Mapping[str, float] | None = field(default=None, hash=False)
    annual_volatility: float = 0.25
    jump_probability: float = 1e-4
    jump_size_sigma: float = 0.02
    regime_switch_probability: float = 0.05
    stressed_vol_multiplier: float = 2.5
    spread_bps: float = 2.0
    u_shape_weight: float = 0.6
    exchanges: tuple[str, ...] = ("XNAS", "ARCX", "BATS", "IEXG")

    def __post_init__(self) -> None:
        # Lists are accepted for convenience but stored as tuples so the config stays immutable.
        object.__setattr__(self, "symbols", _codes("symbols", self.symbols))
        object.__setattr__(self, "exchanges", _codes("exchanges", self.exchanges))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        if isinstance(self.start_date, datetime) or not isinstance(self.start_date, date):
            raise ValueError(f"start_date must be a datetime.date, got {self.start_date!r}")
        _require_int("days", self.days, minimum=1)
        _require_int("trades_per_symbol_per_day", self.trades_per_symbol_per_day, minimum=1)
        for name in ("session_open", "session_close"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(f"{name} must be a naive datetime.time (local to timezone), "
                                 f"got {value!r}")
        if self.session_open >= self.session_close:
            raise ValueError(f"session_open {self.session_open} must be before "
                             f"session_close {self.session_close}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        _require_real("quotes_per_trade", self.quotes_per_trade, low=0.0)
        _require_real("annual_volatility", self.annual_volatility, low=0.0, high=5.0)
        _require_real("jump_probability", self.jump_probability, low=0.0, high=1.0)
        _require_real("jump_size_sigma", self.jump_size_sigma, low=0.0, high=1.0)
        _require_real("regime_switch_probability", self.regime_switch_probability, low=0.0, high=1.0)
        _require_real("stressed_vol_multiplier", self.stressed_vol_multiplier, low=1.0)
        _require_real("u_shape_weight", self.u_shape_weight, low=0.0, high=1.0)
        _require_real("spread_bps", self.spread_bps, low=0.0)
        if self.spread_bps <= 0:
            raise ValueError(f"spread_bps must be > 0, got {self.spread_bps!r}")
        if self.start_prices is not None:
            object.__setattr__(self, "start_prices", self._checked_start_prices(self.start_prices))

    def _checked_start_prices(self, prices: Mapping[str, float]) -> Mapping[str, float]:
        """A read-only copy; unknown symbols are refused because they are almost always typos."""
        if not isinstance(prices, Mapping):
            raise ValueError(f"start_prices must be a mapping symbol -> price, got {prices!r}")
        if unknown := sorted(set(prices) - set(self.symbols)):
            raise ValueError(f"start_prices names symbols not in symbols: {unknown}")
        for symbol, price in prices.items():
            _require_real(f"start_prices[{symbol!r}]", price, low=_MID_BOUNDS[0], high=_MID_BOUNDS[1])
        return MappingProxyType(dict(prices))

    @property
    def quotes_per_symbol_per_day(self) -> int:
        """Exact number of quotes each symbol gets each day."""
        return round(self.trades_per_symbol_per_day * self.quotes_per_trade)

    @property
    def events_per_symbol_per_day(self) -> int:
        """Trades plus quotes per symbol per trading day."""
        return self.trades_per_symbol_per_day + self.quotes_per_symbol_per_day


def _codes(name: str, values: object) -> tuple[str, ...]:
    """Validate a non-empty sequence of unique, non-blank, whitespace-free codes."""
    if isinstance(values, str) or not isinstance(values, (tuple, list)):
        raise ValueError(f"{name} must be a tuple of strings, got {values!r}")
    if not values:
        raise ValueError(f"{name} must not be empty")
    for value in values:
        if not isinstance(value, str) or not value or value != value.strip() or " " in value:
            raise ValueError(f"{name}: {value!r} is not a non-empty code without spaces")
    if len(set(values)) != len(values):
        duplicates = sorted({v for v in values if values.count(v) > 1})
        raise ValueError(f"{name} must be unique; duplicated: {duplicates}")
    return tuple(values)


def _require_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _require_real(name: str, value: object, low: float, high: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        bound = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def trading_days(cfg: SimulatorConfig) -> list[date]:
    """The ``cfg.days`` weekdays from ``cfg.start_date`` on (a weekend start rolls to Monday)."""
    days: list[date] = []
    day = cfg.start_date
    while len(days) < cfg.days:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def sessions_utc(cfg: SimulatorConfig) -> list[tuple[int, int]]:
    """Per trading day, the session's (open, close) as UTC ns; events satisfy open <= ts < close."""
    tz = ZoneInfo(cfg.timezone)
    sessions = []
    for day in trading_days(cfg):
        open_ns = _utc_ns(datetime.combine(day, cfg.session_open, tzinfo=tz))
        close_ns = _utc_ns(datetime.combine(day, cfg.session_close, tzinfo=tz))
        if close_ns <= open_ns:  # only possible when a DST change falls inside the session
            raise ValueError(f"session on {day} is empty in UTC ({cfg.session_open}-"
                             f"{cfg.session_close} {cfg.timezone})")
        sessions.append((open_ns, close_ns))
    return sessions


def _utc_ns(moment: datetime) -> int:
    """Exact integer nanoseconds since the epoch (``timestamp()`` would round through a float)."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


class _UShape:
    """Intraday activity density on [0, 1]: ``w * arcsine + (1 - w) * uniform``.

    The CDF has a closed form; its inverse is tabulated on a grid that is dense near both ends,
    where the arcsine CDF is steep, and evaluated with ``np.interp`` (monotone, vectorised).
    """

    def __init__(self, weight: float, grid_points: int = 8193) -> None:
        self.weight = weight
        self.x_grid = np.sin(np.linspace(0.0, np.pi / 2, grid_points)) ** 2
        self.x_grid[0], self.x_grid[-1] = 0.0, 1.0
        self.cdf_grid = self.cdf(self.x_grid)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return self.weight * (2 / np.pi) * np.arcsin(np.sqrt(x)) + (1 - self.weight) * x

    def inverse_cdf(self, u: np.ndarray) -> np.ndarray:
        return np.interp(u, self.cdf_grid, self.x_grid)


@dataclass(frozen=True)
class _SymbolProfile:
    """Per-symbol constants: where the price starts and how wide its spread is."""

    symbol: str
    stream_key: int
    start_price: float
    spread_bps: float


@dataclass
class _SymbolState:
    """What carries over from one slice (and day) to the next for a symbol."""

    log_mid: float
    last_seq: int = 0
    stressed: bool = False
    published_book: tuple[int, int] | None = None  # (bid, ask) cents of the day's last quote


@dataclass(frozen=True)
class _SliceWindow:
    """One time slice of a session: ns bounds and the same bounds in U-shape CDF space."""

    index: int
    start_ns: int
    width_ns: int
    x_lo: float
    x_hi: float
    u_lo: float
    u_hi: float


@dataclass(frozen=True)
class _SymbolSlice:
    """A symbol's events in one slice, already split into trade and quote columns (numpy)."""

    trade_ts: np.ndarray
    trade_seq: np.ndarray
    trade_price_cents: np.ndarray
    trade_size: np.ndarray
    trade_sell: np.ndarray
    trade_condition: np.ndarray
    trade_venue: np.ndarray
    quote_ts: np.ndarray
    quote_seq: np.ndarray
    bid_cents: np.ndarray
    ask_cents: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    quote_venue: np.ndarray


class MarketSimulator:
    """Yields a deterministic stream of trade and quote Arrow batches for a ``SimulatorConfig``."""

    def __init__(self, cfg: SimulatorConfig) -> None:
        self.cfg = cfg
        self.days = trading_days(cfg)
        self.sessions = sessions_utc(cfg)
        self._ushape = _UShape(cfg.u_shape_weight)
        self._profiles = [self._profile(symbol) for symbol in cfg.symbols]
        events_per_day = len(cfg.symbols) * cfg.events_per_symbol_per_day
        shortest_session = min(close - open_ for open_, close in self.sessions)
        max_slices = max(1, shortest_session // 60_000_000_000)  # slices of at least a minute
        self.slices_per_day = int(min(max(1, math.ceil(events_per_day / _SLICE_TARGET_EVENTS)),
                                      max_slices))
        if cfg.events_per_symbol_per_day > shortest_session // self.slices_per_day:
            raise ValueError("more events per symbol per day than nanoseconds in a session slice")
        self._symbol_array = pa.array(cfg.symbols, pa.string())
        self._venue_array = pa.array(cfg.exchanges, pa.string())

    def total_ticks(self) -> int:
        """Exact number of rows (trades + quotes) ``batches`` will yield."""
        return len(self.days) * len(self.cfg.symbols) * self.cfg.events_per_symbol_per_day

    def batches(self, max_rows: int = 65_536, by_symbol: bool = False
                ) -> Iterator[tuple[str, pa.RecordBatch]]:
        """Yield ("trade", batch) and ("quote", batch), slice by slice in event-time order.

        Each batch has at most ``max_rows`` rows, is sorted by ``ts`` and conforms to
        ``arrow_schema(TRADE)`` / ``arrow_schema(QUOTE)``. Empty batches are never yielded.
        ``by_symbol`` yields each symbol's part of a slice as its own batches instead of merging
        the symbols by time: the same rows, cheaper for a publisher that keys messages by symbol.
        """
        _require_int("max_rows", max_rows, minimum=1)
        states = [_SymbolState(log_mid=math.log(p.start_price)) for p in self._profiles]
        for day_index, (day, (open_ns, close_ns)) in enumerate(zip(self.days, self.sessions,
                                                                   strict=True)):
            windows = self._windows(open_ns, close_ns)
            plans = [self._plan_day(profile, state, day, day_index, windows)
                     for profile, state in zip(self._profiles, states, strict=True)]
            for window in windows:
                parts = []
                for profile, state, (events, trades, sigma, spread_bps) in zip(
                        self._profiles, states, plans, strict=True):
                    rng = np.random.default_rng(
                        [self.cfg.seed, profile.stream_key, _SLICE_STREAM, day.toordinal(),
                         window.index])
                    parts.append(self._simulate_slice(
                        rng, state, window, int(events[window.index]), int(trades[window.index]),
                        sigma, spread_bps))
                groups = ([([part], [i]) for i, part in enumerate(parts)] if by_symbol
                          else [(parts, list(range(len(parts))))])
                for group, symbol_ids in groups:
                    trade_batch, quote_batch = self._to_batches(group, symbol_ids)
                    yield from _split("trade", trade_batch, max_rows)
                    yield from _split("quote", quote_batch, max_rows)

    # -- per-symbol set-up -------------------------------------------------------------------

    def _profile(self, symbol: str) -> _SymbolProfile:
        """Start price and spread factor, from a stream keyed by the symbol's name."""
        key = int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "big")
        rng = np.random.default_rng([self.cfg.seed, key, _PROFILE_STREAM])
        low, high = _START_PRICE_RANGE
        derived_price = round(math.exp(rng.uniform(math.log(low), math.log(high))), 2)
        factor_low, factor_high = _SPREAD_FACTOR_RANGE
        spread_factor = math.exp(rng.uniform(math.log(factor_low), math.log(factor_high)))
        start_prices = self.cfg.start_prices or {}
        return _SymbolProfile(symbol, key, float(start_prices.get(symbol, derived_price)),
                              self.cfg.spread_bps * spread_factor)

    def _windows(self, open_ns: int, close_ns: int) -> list[_SliceWindow]:
        """Cut a session into ``slices_per_day`` equal-length windows."""
        length = close_ns - open_ns
        k = self.slices_per_day
        edges = [open_ns + length * i // k for i in range(k + 1)]
        x = np.array([(edge - open_ns) / length for edge in edges])
        u = self._ushape.cdf(x)
        return [_SliceWindow(i, edges[i], edges[i + 1] - edges[i], float(x[i]), float(x[i + 1]),
                             float(u[i]), float(u[i + 1])) for i in range(k)]

    def _plan_day(self, profile: _SymbolProfile, state: _SymbolState, day: date, day_index: int,
                  windows: list[_SliceWindow]) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Start a symbol's day: regime switch, overnight gap, and how many events per slice.

        Returns (events per slice, trades per slice, per-event log-price sigma, spread in bps).
        Counts are exact: a multinomial over the slices' U-shape mass, then trades are drawn
        among those events without replacement.
        """
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, profile.stream_key, _DAY_STREAM, day.toordinal()])
        switch = rng.random() < cfg.regime_switch_probability
        gap = rng.standard_normal()
        state.published_book = None
        if day_index > 0:
            state.stressed ^= bool(switch)
        multiplier = cfg.stressed_vol_multiplier if state.stressed else 1.0
        daily_sigma = cfg.annual_volatility / math.sqrt(_TRADING_DAYS_PER_YEAR) * multiplier
        if day_index > 0:
            state.log_mid += gap * daily_sigma * math.sqrt(_OVERNIGHT_VARIANCE_SHARE)
        mass = np.array([w.u_hi - w.u_lo for w in windows])
        events = rng.multinomial(cfg.events_per_symbol_per_day, mass / mass.sum())
        trades = rng.multivariate_hypergeometric(events, cfg.trades_per_symbol_per_day)
        sigma = daily_sigma / math.sqrt(cfg.events_per_symbol_per_day)
        return events, trades, sigma, profile.spread_bps * multiplier

    # -- one symbol, one slice -----------------------------------------------------------------

    def _simulate_slice(self, rng: np.random.Generator, state: _SymbolState, window: _SliceWindow,
                        n_events: int, n_trades: int, sigma: float,
                        spread_bps: float) -> _SymbolSlice:
        """All of a symbol's events in one window; advances its mid price and sequence number."""
        cfg = self.cfg
        ts = self._event_times(rng, window, n_events)
        seq = state.last_seq + 1 + np.arange(n_events, dtype=np.int64)
        state.last_seq += n_events

        is_trade = np.zeros(n_events, dtype=bool)
        trade_pos = np.sort(rng.choice(n_events, size=n_trades, replace=False, shuffle=False))
        is_trade[trade_pos] = True

        steps = rng.standard_normal(n_events) * sigma
        n_jumps = rng.binomial(n_trades, cfg.jump_probability) if n_trades else 0
        if n_jumps:
            at = rng.choice(trade_pos, size=n_jumps, replace=False)
            steps[at] += rng.standard_normal(n_jumps) * cfg.jump_size_sigma
        # Guard rail for extreme configs: the mid is held inside [$0.05, $1M] so prices stay
        # finite and on the grid; with realistic parameters the bounds are never reached.
        log_mid = np.clip(state.log_mid + np.cumsum(steps), _LOG_MID_MIN, _LOG_MID_MAX)
        if n_events:
            state.log_mid = float(log_mid[-1])

        mid_cents = np.exp(log_mid) * 100.0
        # Log-uniform noise: as good as lognormal here and a normal draw costs 4x a uniform one.
        noise = np.exp((rng.random(n_events) - 0.5) * (_SPREAD_NOISE_SIGMA * math.sqrt(12)))
        half_spread = mid_cents * (spread_bps * 1e-4 / 2) * noise
        bid = np.maximum(np.floor(mid_cents - half_spread), 1).astype(np.int64)
        ask = np.maximum(np.ceil(mid_cents + half_spread).astype(np.int64), bid + 1)
        venue = rng.integers(0, len(cfg.exchanges), n_events, dtype=np.int32)

        t_bid, t_ask = self._book_seen_by_trades(state, is_trade, bid, ask)
        draws = rng.random((4, n_trades))
        sell = draws[0] < 0.5
        price = np.where(sell, t_bid, t_ask)
        spread_ticks = t_ask - t_bid
        inside = (draws[1] < _INSIDE_TRADE_PROBABILITY) & (spread_ticks >= 2)
        inside_price = t_bid + 1 + np.floor(draws[2] * (spread_ticks - 1)).astype(np.int64)
        price = np.where(inside, inside_price, price)

        odd_lot = draws[3] < _ODD_LOT_PROBABILITY
        z = rng.standard_normal(n_trades)  # one lognormal draw serves odd and round lots
        lots = 1 + np.floor(np.exp(_ROUND_LOT_LOG_MEAN + _ROUND_LOT_LOG_SIGMA * z))
        odd = np.minimum(1 + np.floor(np.exp(_ODD_LOT_LOG_MEAN + _ODD_LOT_LOG_SIGMA * z)),
                         _ROUND_LOT - 1)
        size = np.where(odd_lot, odd, lots * _ROUND_LOT)
        condition_draw = rng.random(n_trades)
        condition = np.where(condition_draw < _P_REGULAR, _AT, _ISO)
        condition = np.where((condition_draw >= _P_REGULAR) & (condition_draw < _P_REGULAR_OR_NULL),
                             -1, condition)
        condition = np.where(odd_lot, _ODD_LOT, condition).astype(np.int32)

        is_quote = ~is_trade
        n_quotes = n_events - n_trades
        # Displayed depth in lots is geometric (the discrete exponential queue-size law),
        # drawn by inverting its CDF on uniforms: much cheaper than a lognormal per side.
        quote_lots = 1 + np.floor(np.log1p(-rng.random((2, n_quotes))) * _QUOTE_LOTS_SCALE)
        return _SymbolSlice(
            trade_ts=ts[is_trade], trade_seq=seq[is_trade], trade_price_cents=price,
            trade_size=size, trade_sell=sell, trade_condition=condition,
            trade_venue=venue[is_trade],
            quote_ts=ts[is_quote], quote_seq=seq[is_quote], bid_cents=bid[is_quote],
            ask_cents=ask[is_quote], bid_size=quote_lots[0] * _ROUND_LOT,
            ask_size=quote_lots[1] * _ROUND_LOT, quote_venue=venue[is_quote])

    @staticmethod
    def _book_seen_by_trades(state: _SymbolState, is_trade: np.ndarray, bid: np.ndarray,
                             ask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask each trade executes against: the symbol's latest published quote.

        That is the last quote before the trade in this slice, else the last one published
        earlier that day (kept in ``state``); before the day's first quote, the book at the
        trade's own event. So every trade prints at or inside the quote a consumer last saw.
        """
        position = np.arange(len(is_trade))
        last_quote = np.maximum.accumulate(np.where(is_trade, -1, position))[is_trade]
        if state.published_book is None:
            earlier_bid, earlier_ask = bid[is_trade], ask[is_trade]
        else:
            earlier_bid, earlier_ask = state.published_book
        quoted = last_quote >= 0
        t_bid = np.where(quoted, bid[last_quote], earlier_bid)
        t_ask = np.where(quoted, ask[last_quote], earlier_ask)
        quotes = np.flatnonzero(~is_trade)
        if len(quotes):
            state.published_book = (int(bid[quotes[-1]]), int(ask[quotes[-1]]))
        return t_bid, t_ask

    def _event_times(self, rng: np.random.Generator, window: _SliceWindow, n: int) -> np.ndarray:
        """``n`` strictly increasing UTC ns in the window, distributed by the U-shaped density.

        Sorted uniforms come from normalised cumulative exponential spacings (no sort needed),
        are mapped into the window's CDF range and through the inverse CDF, then scaled onto
        ``width - n + 1`` nanosecond slots so that adding the event's index breaks every tie
        while staying strictly below the window's end.
        """
        spacings = np.cumsum(rng.standard_exponential(n + 1))
        u = window.u_lo + (window.u_hi - window.u_lo) * (spacings[:n] / spacings[n])
        x = self._ushape.inverse_cdf(u)
        fraction = np.clip((x - window.x_lo) / (window.x_hi - window.x_lo), 0.0, 1.0)
        slots = window.width_ns - n + 1
        offset = np.minimum((fraction * slots).astype(np.int64), slots - 1)
        index = np.arange(n, dtype=np.int64)
        return window.start_ns + np.maximum.accumulate(offset - index) + index

    # -- Arrow -------------------------------------------------------------------------------

    def _to_batches(self, parts: list[_SymbolSlice], symbol_ids: list[int]
                    ) -> tuple[pa.RecordBatch, pa.RecordBatch]:
        """Merge the symbols' slices (``symbol_ids``: their positions in the config's symbol
        list) into one trade and one quote batch sorted by ts.

        The sort is stable over symbols concatenated in config order, so equal timestamps of
        different symbols keep a fixed order and each symbol's own order is preserved.
        """
        def merged(name: str) -> np.ndarray:
            return np.concatenate([getattr(part, name) for part in parts])

        def symbol_index(name: str) -> np.ndarray:
            return np.repeat(np.array(symbol_ids, dtype=np.int32),
                             [len(getattr(part, name)) for part in parts])

        trade_ts = merged("trade_ts")
        t_order = np.argsort(trade_ts, kind="stable") if len(parts) > 1 else slice(None)
        quote_ts = merged("quote_ts")
        q_order = np.argsort(quote_ts, kind="stable") if len(parts) > 1 else slice(None)

        t_symbol = self._symbol_array.take(symbol_index("trade_ts")[t_order])
        t_seq = pa.array(merged("trade_seq")[t_order])
        condition = merged("trade_condition")[t_order]
        n_trades = len(t_seq)
        trades = pa.RecordBatch.from_arrays([
            pa.array(trade_ts[t_order]),
            t_symbol,
            pa.array(merged("trade_price_cents")[t_order] / 100.0),
            pa.array(merged("trade_size")[t_order]),
            pc.binary_join_element_wise(t_symbol, pc.cast(t_seq, pa.string()), "-"),
            self._venue_array.take(merged("trade_venue")[t_order]),
            t_seq,
            _SIDES.take(merged("trade_sell")[t_order].astype(np.int8)),
            _CONDITION_CODES.take(pa.array(condition, mask=condition < 0)),
            pa.nulls(n_trades, pa.int64()),
        ], schema=TRADE_SCHEMA)

        n_quotes = len(quote_ts)
        quotes = pa.RecordBatch.from_arrays([
            pa.array(quote_ts[q_order]),
            self._symbol_array.take(symbol_index("quote_ts")[q_order]),
            pa.array(merged("bid_cents")[q_order] / 100.0),
            pa.array(merged("bid_size")[q_order]),
            pa.array(merged("ask_cents")[q_order] / 100.0),
            pa.array(merged("ask_size")[q_order]),
            self._venue_array.take(merged("quote_venue")[q_order]),
            pa.array(merged("quote_seq")[q_order]),
            pa.nulls(n_quotes, pa.int64()),
        ], schema=QUOTE_SCHEMA)
        return trades, quotes


def _split(kind: str, batch: pa.RecordBatch, max_rows: int) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Zero-copy slices of at most ``max_rows`` rows; nothing for an empty batch."""
    for offset in range(0, batch.num_rows, max_rows):
        yield kind, batch.slice(offset, max_rows)


def _benchmark(target_ticks: int = 5_000_000) -> None:
    """Time in-process generation of about ``target_ticks`` rows and print ticks per second."""
    import time as clock

    symbols = tuple(f"SYM{i:02d}" for i in range(10))
    per_day = len(symbols) * 80_000
    cfg = SimulatorConfig(symbols=symbols, seed=7, start_date=date(2026, 3, 2),
                          days=max(1, round(target_ticks / per_day)))
    simulator = MarketSimulator(cfg)
    started = clock.perf_counter()
    rows = sum(batch.num_rows for _, batch in simulator.batches())
    elapsed = clock.perf_counter() - started
    assert rows == simulator.total_ticks()
    print(f"{rows:,} ticks ({len(symbols)} symbols x {cfg.days} days) in {elapsed:.2f} s: "
          f"{rows / elapsed:,.0f} ticks/s")


if __name__ == "__main__":
    _benchmark()
