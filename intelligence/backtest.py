"""The backtester: the event engine with a simulated clock and venue, plus the books' recorder.

``Backtest(strategy, ...).run(bars)`` wires ``Engine(SimClock, SimulatedExecution, Portfolio)``,
runs the events through it and returns a ``BacktestResult``: the equity curve (one sample per
event time, after every bar at that time), the trade log (every fill with the position, cash and
realized P&L after it), every signal and order intent (the decision log), and the metrics
(``intelligence.metrics``). At every sample (every step of event time, so after every bar and
every fill) the recorder asserts the accounting invariant cash + sum(position value) == equity
(``Portfolio.check``); a violation stops the run with ``AccountingError``.

Same strategy code as live: only the clock, the source and the execution client differ.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from intelligence import metrics
from intelligence.domain import Bar, Fill, OrderIntent, Quote, Signal
from intelligence.engine import Engine, RiskCheck, SimClock
from intelligence.execution import Commission, SimulatedExecution, Slippage
from intelligence.portfolio import TOLERANCE, Portfolio
from intelligence.risk import MaxPosition
from intelligence.strategies.base import Strategy
from tradelake.config import BacktestConfig


class FillRecord(NamedTuple):
    """A line of the trade log: the fill and the books right after it."""

    fill: Fill
    position: float  # the symbol's position after the fill
    cash: float
    realized_pnl: float  # the symbol's realized P&L to date (before commissions)


def decision_log(signals: Iterable[Signal], intents: Iterable[OrderIntent]) -> list[tuple]:
    """Every signal and order intent as a plain tuple (kind, ts, ...), signals then intents of
    each time, in emission order: what the no-look-ahead, determinism and live-vs-lake checks
    compare."""
    out: list[tuple] = [("signal", s.ts, s.symbol, s.signal_type, s.strength, s.target_position)
                        for s in signals]
    out += [("intent", i.ts, i.symbol, i.side, i.quantity, i.order_type) for i in intents]
    return sorted(out, key=lambda d: d[1])


@dataclass
class BacktestResult:
    strategy: str
    bars: int
    initial_cash: float
    ts: array = field(default_factory=lambda: array("q"))
    equity: array = field(default_factory=lambda: array("d"))
    cash: array = field(default_factory=lambda: array("d"))
    gross: array = field(default_factory=lambda: array("d"))  # sum |position value|; net = equity - cash
    fills: list[FillRecord] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    intents: list[OrderIntent] = field(default_factory=list)
    rejections: list[tuple[OrderIntent, str]] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    commissions: float = 0.0
    fill_count: int = 0  # also without a trade log (record=False)
    round_trips: int = 0
    seconds: float = 0.0

    @property
    def final_equity(self) -> float:
        return self.equity[-1] if self.equity else self.initial_cash

    def decisions(self) -> list[tuple]:
        """The decision log: ``decision_log(signals, intents)``."""
        return decision_log(self.signals, self.intents)

    def summary(self) -> dict:
        return {"strategy": self.strategy, "bars": self.bars, "fills": self.fill_count,
                "round_trips": self.round_trips, "initial_cash": self.initial_cash,
                "final_equity": self.final_equity, "commissions": self.commissions,
                **self.metrics, "seconds": round(self.seconds, 3)}


class Backtest:
    """One strategy over one event stream on a simulated account."""

    def __init__(self, strategy: Strategy, *, initial_cash: float = 1_000_000.0,
                 commission: Commission | None = None, slippage: Slippage | None = None,
                 fill_on: str = "next_open", risk_checks: Iterable[RiskCheck] = (),
                 record: bool = True) -> None:
        self.strategy = strategy
        self.portfolio = Portfolio(initial_cash)
        self.engine = Engine(SimClock(), SimulatedExecution(commission, slippage, fill_on),
                             self.portfolio, risk_checks)
        self.engine.add_strategy(strategy)
        self.record = record  # False: no trade/decision log (sweeps); the equity curve stays
        self.result = r = BacktestResult(strategy.strategy_id, 0, self.portfolio.initial_cash)
        self._ts, self._equity = r.ts.append, r.equity.append
        self._cash, self._gross = r.cash.append, r.gross.append
        self.engine.subscribe_steps(self._on_step)
        if record:
            self.engine.subscribe_fills(self._on_fill)
            self.engine.subscribe_signals(self.result.signals.append)
            self.engine.subscribe_intents(self.result.intents.append)
            self.engine.subscribe_rejections(lambda i, r: self.result.rejections.append((i, r)))

    @classmethod
    def from_config(cls, strategy: Strategy, bt: BacktestConfig, record: bool = True) -> Backtest:
        checks = [MaxPosition(bt.max_position)] if bt.max_position > 0 else []
        return cls(strategy, initial_cash=bt.initial_cash,
                   commission=Commission(bt.commission_model, bt.commission_rate, bt.commission_min),
                   slippage=Slippage(bt.slippage_model, bt.slippage), fill_on=bt.fill_on,
                   risk_checks=checks, record=record)

    def _on_step(self, ts: int) -> None:
        """Sample the books once per event time, checking the invariant (runs once per bar of a
        one-symbol backtest, so the flat case skips the position loop)."""
        pf = self.portfolio
        cash = equity = pf.cash
        gross = 0.0
        for pos in pf.open.values():  # Portfolio.equity_from_books, inlined for the hot path
            value = pos.qty * pos.mark
            equity += value
            gross += value if value > 0.0 else -value
        if equity != pf.equity and abs(equity - pf.equity) > TOLERANCE * (abs(cash) + gross + 1.0):
            pf.check()  # raises AccountingError with the details
        self._ts(ts)
        self._equity(equity)
        self._cash(cash)
        self._gross(gross)

    def _on_fill(self, fill: Fill) -> None:
        pf = self.portfolio
        pos = pf.positions[fill.symbol]
        self.result.fills.append(FillRecord(fill, pos.qty, pf.cash, pos.realized_pnl))

    def run(self, events: Iterable[Bar | Quote], progress: Callable[[int], None] | None = None,
            progress_every: int = 100_000) -> BacktestResult:
        started = time.perf_counter()
        engine = self.engine
        engine.run(events, progress, progress_every)
        engine.finish()
        r, pf = self.result, self.portfolio
        r.bars = engine.events
        r.commissions, r.round_trips, r.fill_count = pf.commissions, len(pf.round_trips), pf.fills
        r.metrics = metrics.compute(r.ts, r.equity, r.gross, pf.initial_cash, pf.traded_notional,
                                    pf.round_trips)
        r.seconds = time.perf_counter() - started
        return r
