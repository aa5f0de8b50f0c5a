"""The event engine (the CEP kernel): one loop for backtests and live trading.

Market events (bars, quotes) come from a source, an iterable in event order: the lake (a
backtest), Kafka (live), or a list. The engine sets the clock to each event's time, hands bars
first to the execution client (fills of orders sent earlier), then to the portfolio (mark to
market), then to the subscribers (strategies, models, recorders) in subscription order.
Subscribers emit signals (``emit_signal``) and order intents (``submit`` / ``set_target``); an
intent passes the risk checks, in order, before the execution client gets it, and fills come back
through ``on_fill`` to the portfolio and the fill subscribers. Nothing else differs between a
backtest and live: the clock (``SimClock``: event time; ``LiveClock``: wall time for timers) and
the source and execution client plugged in.

Event time of a bar is its close, ``ts + interval`` (the BAR ``ts`` is its open): a decision on a
bar is stamped when the bar could first be known. Determinism: events are processed in source
order; timers (``schedule``) and merged sources go through ``EventQueue``, a heap keyed by
(ts, sequence number), so equal timestamps keep their insertion order and a run is a pure
function of its input order. Derived events (signals, intents, fills) are dispatched
synchronously, depth first, at the time of the event that caused them.

Step handlers run when the event time advances, with the time just completed: every bar sharing
that close time has been processed, which is where a backtest samples equity and checks the books.

The hot path is lean on purpose (the benchmark needs >= 200k bars/s): handler tuples are cached
per symbol, attributes are slots, and no object is allocated per bar unless a subscriber decides
to trade.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from intelligence.domain import (
    _INTERVAL_NS,
    BUY,
    MARKET,
    SELL,
    Bar,
    Fill,
    OrderIntent,
    Quote,
    Signal,
    interval_ns,
)
from intelligence.execution import ExecutionClient
from intelligence.portfolio import Portfolio

BarHandler = Callable[[Bar], None]
RiskCheck = Callable[[OrderIntent, "Engine"], "str | None"]
QTY_EPSILON = 1e-9  # a target this close to the current position needs no order


class SimClock:
    """Backtest clock: time is the time of the event being processed."""

    __slots__ = ("now",)
    live = False

    def __init__(self, start: int = 0) -> None:
        self.now = start

    def time_ns(self) -> int:
        return self.now


class LiveClock:
    """Live clock: events still carry their own time (``now``), timers are due by the wall clock."""

    __slots__ = ("now",)
    live = True

    def __init__(self) -> None:
        self.now = 0

    def time_ns(self) -> int:
        return time.time_ns()


class Clock(Protocol):
    now: int
    live: bool

    def time_ns(self) -> int: ...


class EventQueue:
    """A stable priority queue: items come out by (ts, insertion sequence)."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Any]] = []
        self._seq = itertools.count()

    def push(self, ts: int, item: Any) -> None:
        heapq.heappush(self._heap, (ts, next(self._seq), item))

    def pop(self) -> tuple[int, Any]:
        ts, _, item = heapq.heappop(self._heap)
        return ts, item

    def peek_ts(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


def event_ts(event: Bar | Quote) -> int:
    """When an event is known: a bar at its close, a quote at its ts."""
    return event.ts + interval_ns(event.interval) if type(event) is Bar else event.ts


def merge(*sources: Iterable[Bar | Quote]) -> Iterator[Bar | Quote]:
    """Merge time-ordered sources into one by event time; ties keep source order, then each
    source's own order (the (ts, sequence) queue), so the merge is deterministic."""
    queue = EventQueue()
    iterators = [iter(s) for s in sources]
    for i, it in enumerate(iterators):
        first = next(it, None)
        if first is not None:
            queue.push(event_ts(first), (i, first))
    while len(queue):
        _, (i, event) = queue.pop()
        yield event
        following = next(iterators[i], None)
        if following is not None:
            queue.push(event_ts(following), (i, following))


class Engine:
    """The kernel. Build one, plug an execution client, add strategies, ``run(source)``."""

    __slots__ = ("clock", "portfolio", "execution", "risk_checks", "strategies", "now", "_bar_all",
                 "_bar_by_symbol", "_bar_cache", "_quote_handlers", "_fill_handlers",
                 "_signal_handlers", "_intent_handlers", "_reject_handlers", "_step_handlers",
                 "_timers", "_order_seq", "_last_step", "events", "rejections")

    def __init__(self, clock: Clock | None = None, execution: ExecutionClient | None = None,
                 portfolio: Portfolio | None = None, risk_checks: Iterable[RiskCheck] = ()) -> None:
        self.clock = clock or SimClock()
        self.portfolio = portfolio or Portfolio()
        self.execution = execution
        if execution is not None:
            execution.bind(self)
        self.risk_checks = list(risk_checks)
        self.strategies: list = []
        self.now = 0
        self._bar_all: list[BarHandler] = []
        self._bar_by_symbol: dict[str, list[BarHandler]] = {}
        self._bar_cache: dict[str, tuple[BarHandler, ...]] = {}
        self._quote_handlers: list[Callable[[Quote], None]] = []
        self._fill_handlers: list[Callable[[Fill], None]] = []
        self._signal_handlers: list[Callable[[Signal], None]] = []
        self._intent_handlers: list[Callable[[OrderIntent], None]] = []
        self._reject_handlers: list[Callable[[OrderIntent, str], None]] = []
        self._step_handlers: list[Callable[[int], None]] = []
        self._timers = EventQueue()
        self._order_seq = 0
        self._last_step: int | None = None
        self.events = 0
        self.rejections: list[tuple[OrderIntent, str]] = []

    # -- wiring ---------------------------------------------------------------------------------
    def subscribe_bars(self, handler: BarHandler, symbols: Iterable[str] | None = None) -> None:
        """``handler(bar)`` for every bar, or for the bars of ``symbols`` only."""
        if symbols is None:
            self._bar_all.append(handler)
        else:
            for symbol in symbols:
                self._bar_by_symbol.setdefault(symbol, []).append(handler)
        self._bar_cache.clear()

    def subscribe_quotes(self, handler: Callable[[Quote], None]) -> None:
        self._quote_handlers.append(handler)

    def subscribe_fills(self, handler: Callable[[Fill], None]) -> None:
        self._fill_handlers.append(handler)

    def subscribe_signals(self, handler: Callable[[Signal], None]) -> None:
        self._signal_handlers.append(handler)

    def subscribe_intents(self, handler: Callable[[OrderIntent], None]) -> None:
        """Accepted intents, after the risk checks and before the execution client."""
        self._intent_handlers.append(handler)

    def subscribe_rejections(self, handler: Callable[[OrderIntent, str], None]) -> None:
        self._reject_handlers.append(handler)

    def subscribe_steps(self, handler: Callable[[int], None]) -> None:
        """``handler(ts)`` once all events at event time ``ts`` are processed."""
        self._step_handlers.append(handler)

    def add_strategy(self, strategy) -> None:
        """Attach a strategy (intelligence.strategies.base.Strategy): it subscribes itself."""
        self.strategies.append(strategy)
        strategy.attach(self)

    def schedule(self, ts: int, callback: Callable[[int], None]) -> None:
        """Call ``callback(ts)`` at event time ``ts`` (live: once the wall clock passes it)."""
        self._timers.push(ts, callback)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, source: Iterable[Bar | Quote | None], progress: Callable[[int], None] | None = None,
            progress_every: int = 100_000) -> int:
        """Process every event of ``source`` in order; returns how many. ``None`` from a live
        source is a heartbeat: due timers fire by the wall clock. ``progress(n)`` is called every
        ``progress_every`` events."""
        clock, timers = self.clock, self._timers
        cache, last = self._bar_cache, self._last_step
        steps, execution = self._step_handlers, self.execution
        exec_bar = execution.on_bar if execution is not None else None
        working = execution.working if execution is not None else {}
        open_positions, mark = self.portfolio.open, self.portfolio.mark
        lengths = _INTERVAL_NS  # interval -> ns, filled by interval_ns()
        count = self.events
        next_progress = count + progress_every if progress else -1
        for event in source:
            if event is None:
                if len(timers):
                    self._fire_timers(clock.time_ns())
                continue
            is_bar = type(event) is Bar
            if is_bar:
                length = lengths.get(event.interval)
                now = event.ts + (length if length is not None else interval_ns(event.interval))
            else:
                now = event.ts
            if now != last:
                if last is not None:
                    if now < last:
                        raise ValueError(f"event time went back: {now} after {last} ({event!r}); "
                                         "sources must be in event-time order")
                    for handler in steps:
                        handler(last)
                last = self._last_step = now
            if timers._heap:
                due = clock.time_ns() if clock.live else now
                if timers.peek_ts() <= due:
                    self._fire_timers(due)
            self.now = clock.now = now
            count += 1
            if is_bar:
                if working and event.symbol in working:
                    exec_bar(event)
                if event.symbol in open_positions:
                    mark(event.symbol, event.close)
                handlers = cache.get(event.symbol)
                if handlers is None:
                    handlers = self._bar_handlers(event.symbol)
                for handler in handlers:
                    handler(event)
            else:
                if working and event.symbol in working:
                    execution.on_quote(event)
                for handler in self._quote_handlers:
                    handler(event)
            if count == next_progress:
                progress(count)
                next_progress += progress_every
        self.events = count
        return count

    def finish(self) -> None:
        """Close the last step (a backtest calls it once the source is exhausted)."""
        if self._last_step is not None:
            for handler in self._step_handlers:
                handler(self._last_step)
            self._last_step = None

    def _bar_handlers(self, symbol: str) -> tuple[BarHandler, ...]:
        handlers = (*self._bar_by_symbol.get(symbol, ()), *self._bar_all)
        self._bar_cache[symbol] = handlers
        return handlers

    def _fire_timers(self, now: int) -> None:
        while len(self._timers) and self._timers.peek_ts() <= now:
            ts, callback = self._timers.pop()
            self.now = self.clock.now = max(ts, self.now)
            callback(ts)

    # -- what subscribers call ------------------------------------------------------------------
    @property
    def wants_signals(self) -> bool:
        """Whether anyone subscribed to signals (else a strategy may skip building them)."""
        return bool(self._signal_handlers)

    def emit_signal(self, signal: Signal) -> None:
        for handler in self._signal_handlers:
            handler(signal)

    def next_order_id(self, strategy_id: str) -> str:
        self._order_seq += 1
        return f"{strategy_id}-{self._order_seq}"

    def submit(self, intent: OrderIntent) -> bool:
        """Risk checks in order, then the execution client; False (and rejection handlers) if a
        check refuses, with its reason."""
        for check in self.risk_checks:
            reason = check(intent, self)
            if reason:
                self.rejections.append((intent, reason))
                for handler in self._reject_handlers:
                    handler(intent, reason)
                return False
        for handler in self._intent_handlers:
            handler(intent)
        if self.execution is None:
            raise RuntimeError("no execution client: build the Engine with execution=...")
        self.execution.submit(intent)
        return True

    def position(self, symbol: str) -> float:
        """Filled position plus orders still working: what a new order must build on."""
        pos = self.portfolio.open.get(symbol)
        working = self.execution.working.get(symbol, 0.0) if self.execution is not None else 0.0
        return (pos.qty if pos is not None else 0.0) + working

    def set_target(self, strategy_id: str, symbol: str, target: float) -> OrderIntent | None:
        """Send the market order that takes ``symbol`` to ``target`` units (None if already there)."""
        delta = target - self.position(symbol)
        if -QTY_EPSILON < delta < QTY_EPSILON:
            return None
        self._order_seq += 1
        intent = OrderIntent(self.now, symbol, f"{strategy_id}-{self._order_seq}", BUY if delta > 0 else SELL,
                             abs(delta), MARKET, None, "GTC", strategy_id)
        return intent if self.submit(intent) else None

    def on_fill(self, fill: Fill) -> None:
        """The execution client reports a fill: book it, then tell the fill subscribers."""
        self.portfolio.apply_fill(fill)
        for handler in self._fill_handlers:
            handler(fill)
