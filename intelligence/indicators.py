"""Online indicators: O(1) per bar, the same numbers as the batch features of spark_jobs/features.py.

Each indicator is a small object with ``update(...)`` that stores its current value in a plain
attribute (``value``, or several), None while the batch feature would be null. ``FeatureSet``
bundles every column of the batch layer (``FEATURE_COLUMNS``, the definitions and their
seeding/null rules are in spark_jobs/features.py's docstring) plus ``adx_14`` for the regime
selector, for one (symbol, interval) series.

History: an online series starts at the first bar it is given and never forgets (EMA, RSI, ATR,
OBV carry state from there), while the batch job restarts each date's series at its warm-up
window (``warehouse.feature_warmup_days``). The two agree bar for bar when the engine starts at
the start of the batch series (tests/unit/intelligence/test_indicators_vs_spark.py checks every
column to 1e-9 against a local Spark run); after a long run the recursive ones agree to the
precision their decay gives (e.g. (49/51)^n for ema_50), and OBV differs by a constant.

Floating point: a rolling sum kept by adding the new value and subtracting the old one is O(1)
but accumulates rounding without bound over a long series, and after a large value leaves the
window the error can exceed the (now small) sum itself. Two techniques keep 1e-9 over any length:

- ``RollingSum`` (volume, turnover, squared log returns: sums of non-negative terms whose scale can
  drop by orders of magnitude) adds and subtracts with Neumaier's compensated summation (the
  error stays a few ulps of the current sum), re-sums the window exactly with ``math.fsum`` every
  ``n`` updates (amortised O(1): O(n) work every n bars) so the compensation cannot drift either,
  and counts the non-zero entries so an all-zero window gives exactly 0 (the batch rule "null
  when the volume sum is 0" then holds exactly).
- ``RollingMoments`` (mean and population standard deviation of closes, the hot path of mean
  reversion) sums ``x - k`` and ``(x - k)^2`` with a shift ``k`` re-centred on the window mean at
  each exact re-sum every ``n`` updates: no cancellation between large squared prices (the naive
  ``E[x^2] - E[x]^2`` loses ~8 digits at price 100 and sd 0.01), plain float adds between
  re-sums (error bounded by ~2n ulps of the window's spread, independent of series length); when
  the variance comes out below 1e-28 of the squared mean (where that rounding could be all there
  is) it is recomputed from the window, and a constant window has sd exactly 0 (the batch rule
  "zscore null when sd_20 is 0").
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from intelligence.domain import Bar

SMA_WINDOWS = (10, 20, 50)
EMA_WINDOWS = (10, 20, 50)
BB_WINDOW, BB_WIDTH = 20, 2.0
ZSCORE_WINDOW = VWAP_WINDOW = RV_WINDOW = 20
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
RSI_WINDOW = ATR_WINDOW = ADX_WINDOW = 14

# the batch layer's columns (spark_jobs/features.py WINDOWED_COLUMNS + RECURSIVE_COLUMNS; a unit
# test keeps them equal without this module importing pyspark)
FEATURE_COLUMNS = (
    "ret", "log_ret", *[f"sma_{n}" for n in SMA_WINDOWS], "bb_mid", "bb_upper", "bb_lower",
    f"zscore_{ZSCORE_WINDOW}", "obv", f"vwap_{VWAP_WINDOW}", f"rv_{RV_WINDOW}",
    *[f"ema_{n}" for n in EMA_WINDOWS], "macd", "macd_signal", "macd_hist",
    f"rsi_{RSI_WINDOW}", f"atr_{ATR_WINDOW}",
)
EXTRA_COLUMNS = (f"adx_{ADX_WINDOW}",)  # online only: the regime selector's trend strength
BAR_INPUTS = ("open", "high", "low", "close", "volume", "vwap")  # bar_features' own bar columns


def _window(n: int) -> int:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"window length must be an int >= 1, got {n!r}")
    return n


class RollingSum:
    """Sum of the last ``n`` values (Neumaier-compensated, exact re-sum every n updates);
    ``value`` is None until n values were seen."""

    __slots__ = ("n", "buf", "s", "c", "nonzero", "since", "value")

    def __init__(self, n: int) -> None:
        self.n = _window(n)
        self.buf: deque[float] = deque()
        self.s = self.c = 0.0
        self.nonzero = self.since = 0
        self.value: float | None = None

    def _add(self, x: float) -> None:
        s = self.s
        t = s + x
        self.c += (s - t) + x if abs(s) >= abs(x) else (x - t) + s
        self.s = t

    def update(self, x: float) -> float | None:
        buf = self.buf
        if len(buf) == self.n:
            old = buf.popleft()
            if old != 0.0:
                self.nonzero -= 1
                self._add(-old)
        buf.append(x)
        if x != 0.0:
            self.nonzero += 1
            self._add(x)
        self.since += 1
        if self.since >= self.n:
            self.s, self.c, self.since = math.fsum(buf), 0.0, 0
        if self.nonzero == 0:
            self.s = self.c = 0.0
        if len(buf) == self.n:
            self.value = self.s + self.c
        return self.value


class RollingMoments:
    """Mean and population sd of the last ``n`` values (shifted sums, exact re-centring every n
    updates). ``mean``/``sd`` are None until n values were seen; ``sd`` is exactly 0.0 when the
    window holds one repeated value. (Written for speed: the mean-reversion hot path.)"""

    __slots__ = ("n", "buf", "count", "k", "s1", "s2", "since", "mean", "sd")

    def __init__(self, n: int) -> None:
        self.n = _window(n)
        self.buf: deque[float] = deque()
        self.count = self.since = 0
        self.k = self.s1 = self.s2 = 0.0
        self.mean: float | None = None
        self.sd: float | None = None

    def _resum(self) -> None:
        buf = self.buf
        k = math.fsum(buf) / len(buf)
        self.k, self.since = k, 0
        self.s1 = math.fsum([x - k for x in buf])
        self.s2 = math.fsum([(x - k) * (x - k) for x in buf])

    def _tiny(self, mean: float) -> float:
        """The sd when the shifted sums say "about 0": exactly 0.0 for a constant window (the
        batch rule), else recomputed exactly from the window (rare: a nearly flat window)."""
        buf = self.buf
        if min(buf) == max(buf):
            return 0.0
        exact = math.fsum([(x - mean) * (x - mean) for x in buf]) / len(buf)
        return math.sqrt(exact) if exact > 0.0 else 0.0

    def update(self, x: float) -> None:
        buf, n, k = self.buf, self.n, self.k
        d = x - k
        s1, s2 = self.s1 + d, self.s2 + d * d
        buf.append(x)
        if self.count == n:
            d = buf.popleft() - k
            s1 -= d
            s2 -= d * d
        else:
            self.count += 1
            if self.count == 1:
                s1 = s2 = 0.0
                self.k = x
        self.since += 1
        if self.since >= n:
            self._resum()
        else:
            self.s1, self.s2 = s1, s2
        if self.count == n:
            m1 = self.s1 / n
            mean = self.mean = self.k + m1
            var = self.s2 / n - m1 * m1
            # below ~1e-14 of the mean, the shifted sums' rounding could be all there is
            self.sd = math.sqrt(var) if var > 1e-28 * mean * mean else self._tiny(mean)


class SMA:
    """Mean of the last ``n`` values; None until n values were seen."""

    __slots__ = ("n", "sum", "value")

    def __init__(self, n: int) -> None:
        self.n = _window(n)
        self.sum = RollingSum(n)
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        total = self.sum.update(x)
        self.value = None if total is None else total / self.n
        return self.value


class EMA:
    """TA-Lib EMA: seeded with the mean of the first ``n`` values at the n-th, then
    ``alpha * x + (1 - alpha) * ema`` with ``alpha = 2 / (n + 1)``; None before the seed."""

    __slots__ = ("n", "alpha", "seed", "value")

    def __init__(self, n: int) -> None:
        self.n = _window(n)
        self.alpha = 2.0 / (n + 1)
        self.seed: list[float] | None = []
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        if self.seed is None:
            self.value = self.alpha * x + (1 - self.alpha) * self.value
        else:
            self.seed.append(x)
            if len(self.seed) == self.n:
                self.value = math.fsum(self.seed) / self.n
                self.seed = None
        return self.value


class Wilder:
    """Wilder's smoothing: the mean of the first ``n`` values, then ``(avg * (n - 1) + x) / n``."""

    __slots__ = ("n", "seed", "value")

    def __init__(self, n: int) -> None:
        self.n = _window(n)
        self.seed: list[float] | None = []
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        if self.seed is None:
            self.value = (self.value * (self.n - 1) + x) / self.n
        else:
            self.seed.append(x)
            if len(self.seed) == self.n:
                self.value = math.fsum(self.seed) / self.n
                self.seed = None
        return self.value


class MACD:
    """``macd = ema_fast - ema_slow``; ``signal`` = EMA of macd seeded with the mean of its first
    ``signal`` values; ``hist = macd - signal``."""

    __slots__ = ("fast", "slow", "signal_ema", "macd", "signal", "hist")

    def __init__(self, fast: int = MACD_FAST, slow: int = MACD_SLOW, signal: int = MACD_SIGNAL) -> None:
        self.fast, self.slow, self.signal_ema = EMA(fast), EMA(slow), EMA(signal)
        self.macd = self.signal = self.hist = None

    def update(self, close: float) -> None:
        fast, slow = self.fast.update(close), self.slow.update(close)
        if fast is None or slow is None:
            return
        self.macd = fast - slow
        self.signal = self.signal_ema.update(self.macd)
        self.hist = None if self.signal is None else self.macd - self.signal


class RSI:
    """Wilder RSI: gains and losses of close-to-close moves, Wilder-smoothed from the first n
    moves; 100 when there are no losses and some gain, 50 when there is no move at all."""

    __slots__ = ("prev", "gain", "loss", "value")

    def __init__(self, n: int = RSI_WINDOW) -> None:
        self.prev: float | None = None
        self.gain, self.loss = Wilder(n), Wilder(n)
        self.value: float | None = None

    def update(self, close: float) -> float | None:
        prev, self.prev = self.prev, close
        if prev is None:
            return None
        move = close - prev
        gain = self.gain.update(move if move > 0.0 else 0.0)
        loss = self.loss.update(-move if move < 0.0 else 0.0)
        if gain is None:
            return None
        if loss == 0.0:
            self.value = 100.0 if gain > 0.0 else 50.0
        else:
            self.value = 100.0 - 100.0 / (1.0 + gain / loss)
        return self.value


def true_range(high: float, low: float, prev_close: float) -> float:
    return max(high - low, abs(high - prev_close), abs(low - prev_close))


class ATR:
    """Wilder average of the true range from the second bar on."""

    __slots__ = ("prev", "avg", "value")

    def __init__(self, n: int = ATR_WINDOW) -> None:
        self.prev: float | None = None
        self.avg = Wilder(n)
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        prev, self.prev = self.prev, close
        if prev is not None:
            self.value = self.avg.update(true_range(high, low, prev))
        return self.value


class ADX:
    """Wilder's Average Directional Index (trend strength, 0..100), TA-Lib's conventions.

    For t >= 1: up = high_t - high_{t-1}, down = low_{t-1} - low_t; +DM = up if up > down and up > 0
    else 0; -DM likewise; TR as ATR. +DI/-DI = 100 * Wilder(+DM or -DM) / Wilder(TR) from t = n
    (0 when the smoothed TR is 0); DX = 100 * |+DI - -DI| / (+DI + -DI) (0 when both are 0);
    ADX = the mean of the first n DX (t = n .. 2n - 1), then Wilder-smoothed. None before t = 2n - 1.
    """

    __slots__ = ("prev_high", "prev_low", "prev_close", "plus", "minus", "tr", "adx",
                 "plus_di", "minus_di", "value")

    def __init__(self, n: int = ADX_WINDOW) -> None:
        self.prev_high = self.prev_low = self.prev_close = None
        self.plus, self.minus, self.tr, self.adx = Wilder(n), Wilder(n), Wilder(n), Wilder(n)
        self.plus_di = self.minus_di = None
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        ph, pl, pc = self.prev_high, self.prev_low, self.prev_close
        self.prev_high, self.prev_low, self.prev_close = high, low, close
        if pc is None:
            return None
        up, down = high - ph, pl - low
        plus = self.plus.update(up if up > down and up > 0.0 else 0.0)
        minus = self.minus.update(down if down > up and down > 0.0 else 0.0)
        tr = self.tr.update(true_range(high, low, pc))
        if tr is None:
            return None
        self.plus_di = 100.0 * plus / tr if tr > 0.0 else 0.0
        self.minus_di = 100.0 * minus / tr if tr > 0.0 else 0.0
        total = self.plus_di + self.minus_di
        dx = 100.0 * abs(self.plus_di - self.minus_di) / total if total > 0.0 else 0.0
        self.value = self.adx.update(dx)
        return self.value


class FeatureSet:
    """Every batch feature (FEATURE_COLUMNS) plus ``adx_14`` for one (symbol, interval) series.

    ``update(bar)`` refreshes ``values``: a dict with the bar's own columns (BAR_INPUTS, as in a
    ``bar_features`` row, which is what models read) and every feature (None where the batch
    feature is null). About 15 us per bar: for the ML strategy and for checks, not for the
    single-indicator strategies, which keep only what they use.
    """

    __slots__ = ("prev_close", "smas", "moments", "obv", "pv", "v", "lr2", "emas", "macd", "rsi",
                 "atr", "adx", "values")

    def __init__(self) -> None:
        self.prev_close: float | None = None
        self.smas = {n: SMA(n) for n in SMA_WINDOWS}
        self.moments = RollingMoments(BB_WINDOW)
        self.obv = RunningSum()
        self.pv, self.v = RollingSum(VWAP_WINDOW), RollingSum(VWAP_WINDOW)
        self.lr2 = RollingSum(RV_WINDOW)
        self.emas = {n: EMA(n) for n in EMA_WINDOWS}
        self.macd, self.rsi = MACD(), RSI(RSI_WINDOW)
        self.atr, self.adx = ATR(ATR_WINDOW), ADX(ADX_WINDOW)
        self.values: dict[str, float | None] = dict.fromkeys((*BAR_INPUTS, *FEATURE_COLUMNS, *EXTRA_COLUMNS))

    def update(self, bar: Bar) -> Mapping[str, float | None]:
        close, out = bar.close, self.values
        out["open"], out["high"], out["low"], out["close"] = bar.open, bar.high, bar.low, close
        out["volume"], out["vwap"] = bar.volume, bar.vwap
        prev, self.prev_close = self.prev_close, close
        growth = close / prev if prev else None  # prev is never 0: prices are > 0
        out["ret"] = None if growth is None else growth - 1
        out["log_ret"] = math.log(growth) if growth is not None and growth > 0.0 else None
        for n, sma in self.smas.items():
            out[f"sma_{n}"] = sma.update(close)
        moments = self.moments
        moments.update(close)
        mid, sd = out[f"sma_{BB_WINDOW}"], moments.sd
        if mid is None or sd is None:
            out["bb_mid"] = out["bb_upper"] = out["bb_lower"] = out[f"zscore_{ZSCORE_WINDOW}"] = None
        else:
            out["bb_mid"], out["bb_upper"], out["bb_lower"] = mid, mid + BB_WIDTH * sd, mid - BB_WIDTH * sd
            out[f"zscore_{ZSCORE_WINDOW}"] = (close - mid) / sd if sd != 0.0 else None
        step = 0.0 if prev is None or close == prev else (bar.volume if close > prev else -bar.volume)
        out["obv"] = self.obv.update(step)
        has_vwap = bar.vwap is not None
        pv = self.pv.update(bar.vwap * bar.volume if has_vwap else 0.0)
        v = self.v.update(bar.volume if has_vwap else 0.0)
        out[f"vwap_{VWAP_WINDOW}"] = pv / v if v else None
        log_ret = out["log_ret"]
        if log_ret is None:  # only at t = 0, so the rv window is simply not full yet
            self.lr2 = RollingSum(RV_WINDOW)
            out[f"rv_{RV_WINDOW}"] = None
        else:
            total = self.lr2.update(log_ret * log_ret)
            out[f"rv_{RV_WINDOW}"] = None if total is None else math.sqrt(total if total > 0.0 else 0.0)
        for n, ema in self.emas.items():
            out[f"ema_{n}"] = ema.update(close)
        macd = self.macd
        macd.update(close)
        out["macd"], out["macd_signal"], out["macd_hist"] = macd.macd, macd.signal, macd.hist
        out[f"rsi_{RSI_WINDOW}"] = self.rsi.update(close)
        out[f"atr_{ATR_WINDOW}"] = self.atr.update(bar.high, bar.low, close)
        out[f"adx_{ADX_WINDOW}"] = self.adx.update(bar.high, bar.low, close)
        return out


class RunningSum:
    """A sum from the start of the series (Neumaier-compensated): OBV."""

    __slots__ = ("s", "c", "value")

    def __init__(self) -> None:
        self.s = self.c = 0.0
        self.value = 0.0

    def update(self, x: float) -> float:
        s = self.s
        t = s + x
        self.c += (s - t) + x if abs(s) >= abs(x) else (x - t) + s
        self.s = t
        self.value = t + self.c
        return self.value


class RollingOLS:
    """Least squares ``y = alpha + beta * x`` over the last ``n`` (x, y) pairs, O(1) per update
    (shifted sums re-centred exactly every n updates, as ``RollingMoments``). ``beta``, ``alpha``
    and ``resid_sd`` (population sd of the window's residuals) are None until n pairs were seen
    or while x does not vary."""

    __slots__ = ("n", "buf", "kx", "ky", "sx", "sy", "sxx", "syy", "sxy", "since", "beta", "alpha",
                 "resid_sd")

    def __init__(self, n: int) -> None:
        if _window(n) < 2:
            raise ValueError("an OLS window needs at least 2 points")
        self.n = n
        self.buf: deque[tuple[float, float]] = deque()
        self.kx = self.ky = self.sx = self.sy = self.sxx = self.syy = self.sxy = 0.0
        self.since = 0
        self.beta: float | None = None
        self.alpha: float | None = None
        self.resid_sd: float | None = None

    def _resum(self) -> None:
        buf = self.buf
        kx = math.fsum(p[0] for p in buf) / len(buf)
        ky = math.fsum(p[1] for p in buf) / len(buf)
        dx = [p[0] - kx for p in buf]
        dy = [p[1] - ky for p in buf]
        self.kx, self.ky, self.since = kx, ky, 0
        self.sx, self.sy = math.fsum(dx), math.fsum(dy)
        self.sxx = math.fsum([a * a for a in dx])
        self.syy = math.fsum([b * b for b in dy])
        self.sxy = math.fsum([a * b for a, b in zip(dx, dy, strict=True)])

    def update(self, x: float, y: float) -> None:
        buf, n = self.buf, self.n
        if len(buf) == n:
            ox, oy = buf.popleft()
            dx, dy = ox - self.kx, oy - self.ky
            self.sx -= dx
            self.sy -= dy
            self.sxx -= dx * dx
            self.syy -= dy * dy
            self.sxy -= dx * dy
        buf.append((x, y))
        dx, dy = x - self.kx, y - self.ky
        self.sx += dx
        self.sy += dy
        self.sxx += dx * dx
        self.syy += dy * dy
        self.sxy += dx * dy
        self.since += 1
        if self.since >= n or len(buf) == 1:
            self._resum()
        if len(buf) < n:
            return
        mx, my = self.sx / n, self.sy / n
        var_x = self.sxx / n - mx * mx
        if var_x <= 0.0:
            self.beta = self.alpha = self.resid_sd = None
            return
        cov = self.sxy / n - mx * my
        beta = cov / var_x
        self.beta = beta
        self.alpha = (self.ky + my) - beta * (self.kx + mx)
        resid_var = self.syy / n - my * my - beta * cov
        self.resid_sd = math.sqrt(resid_var) if resid_var > 0.0 else 0.0
