"""Trend following: a fast/slow moving-average cross, entered only with momentum behind it.

Averages: ``average`` = "ema" (TA-Lib seeding, as the batch features) or "sma", over ``fast`` and
``slow`` closes. Momentum: the rate of change over ``momentum_window`` bars,
close_t / close_{t-m} - 1. Long when fast > slow, short (if ``allow_short``) when fast < slow,
but a position is only OPENED when momentum agrees beyond ``min_momentum`` (> it for a long,
< -it for a short); once open it is held while the cross holds, and closed (or flipped, if the
new side has momentum) when the cross reverses.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from intelligence.domain import Bar
from intelligence.indicators import EMA, SMA
from intelligence.strategies.base import Strategy


class _State:
    __slots__ = ("fast", "slow", "closes")

    def __init__(self, average: str, fast: int, slow: int, momentum: int) -> None:
        kind = EMA if average == "ema" else SMA
        self.fast, self.slow = kind(fast), kind(slow)
        self.closes: deque[float] = deque(maxlen=momentum + 1)


class TrendFollowing(Strategy):
    name = "trend"
    __slots__ = ("fast", "slow", "average", "momentum_window", "min_momentum", "allow_short", "_state")

    def __init__(self, fast: int = 10, slow: int = 50, average: str = "ema", momentum_window: int = 20,
                 min_momentum: float = 0.0, allow_short: bool = True, *, strategy_id: str | None = None,
                 symbols: Iterable[str] | None = None, qty: float = 100.0) -> None:
        super().__init__(strategy_id, symbols, qty)
        if not 1 <= fast < slow:
            raise ValueError(f"trend needs 1 <= fast < slow, got {fast}, {slow}")
        if average not in ("ema", "sma"):
            raise ValueError(f"trend.average must be ema or sma, got {average!r}")
        if momentum_window < 1 or min_momentum < 0:
            raise ValueError("trend needs momentum_window >= 1 and min_momentum >= 0")
        self.fast, self.slow, self.average = fast, slow, average
        self.momentum_window, self.min_momentum, self.allow_short = momentum_window, min_momentum, allow_short
        self._state: dict[str, _State] = {}

    def on_bar(self, bar: Bar) -> None:
        symbol, close = bar.symbol, bar.close
        st = self._state.get(symbol)
        if st is None:
            st = self._state[symbol] = _State(self.average, self.fast, self.slow, self.momentum_window)
        fast, slow = st.fast.update(close), st.slow.update(close)
        closes = st.closes
        closes.append(close)
        if slow is None or len(closes) <= self.momentum_window:
            return
        momentum = close / closes[0] - 1.0
        current = self.direction.get(symbol, 0.0)
        if fast > slow:
            wanted = 1.0 if current > 0.0 or momentum > self.min_momentum else 0.0
        elif fast < slow and self.allow_short:
            wanted = -1.0 if current < 0.0 or momentum < -self.min_momentum else 0.0
        elif fast < slow:
            wanted = 0.0
        else:
            return
        if wanted != current:
            self.decide(symbol, wanted, "exit" if wanted == 0.0 else "entry")
