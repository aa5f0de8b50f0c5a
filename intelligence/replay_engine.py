"""The ``engine`` target of the DR replay: the trading engine over the raw zone's ticks.

``market_events`` turns replayed batches (``ingestion.replay``) into the engine's events exactly as
the live router's ``KafkaMarketSource`` does with the same ticks: bars built by
``intelligence.bar_builder.TradeBars`` (``mode="bars"``) or quotes through ``QuoteEvents``
(``mode="quotes"``), so a strategy run over a replay sees the very bars the live run saw and makes
the same decisions. The replay's order is event-time order, so no trade is ever ``LATE`` here; a
live feed that lost bars to lateness is where a replay and the live run can part.

``run_engine`` runs one strategy with the profile's backtest settings (simulated venue, commission,
slippage, position limit): the engine and strategy code of ``tradelake route``, with the simulated
clock and venue of a backtest in place of the live clock and the OMS.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intelligence.backtest import Backtest, BacktestResult
from intelligence.bar_builder import QuoteEvents, TradeBars
from intelligence.domain import Bar, Quote

if TYPE_CHECKING:
    from ingestion.replay import ReplayBatch
    from intelligence.strategies.base import Strategy
    from tradelake.config import BacktestConfig

log = logging.getLogger(__name__)

MODES = ("bars", "quotes")


class MarketEvents:
    """Replayed batches -> ``Bar``s (from the ``trade`` topics) or ``Quote``s (``quote`` topics),
    counting ticks and rejections by reason like the live source."""

    def __init__(self, kinds: dict[str, str], mode: str = "bars", interval: str = "1m",
                 symbols: Sequence[str] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        wanted = "trade" if mode == "bars" else "quote"
        self.topics = {t for t, k in kinds.items() if k == wanted}
        if not self.topics:
            raise ValueError(f"mode {mode} needs a {wanted} topic among {sorted(kinds)}")
        self.rejected: Counter[str] = Counter()
        self.bars = TradeBars(interval, self._reject, symbols)
        self.quotes = QuoteEvents(self._reject, symbols)
        self.ticks = self.events = 0

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        if self.rejected[reason] <= 5:
            log.warning("replay: %s: %s", reason, detail)

    def __call__(self, batches: Iterable[ReplayBatch]) -> Iterator[Bar | Quote]:
        for batch in batches:
            if self.mode == "bars":
                for topic, table in batch.tables.items():
                    if topic in self.topics:
                        self.ticks += self.bars.add(table)
                for bar in self.bars.release():
                    self.events += 1
                    yield bar
            else:
                yield from self._quotes(batch)
        if self.mode == "bars":
            for bar in self.bars.release(everything=True):
                self.events += 1
                yield bar

    def _quotes(self, batch: ReplayBatch) -> Iterator[Quote]:
        tables = {t: batch.tables[t] for t in self.topics if t in batch.tables}
        if len(tables) == 1:  # one quote topic: its rows are already in replay order
            yield from self._count(self.quotes.events(next(iter(tables.values()))))
            return
        for topic, i in batch.events():  # several: interleave them in the replay order
            if topic in tables:
                yield from self._count(self.quotes.events(tables[topic].slice(i, 1)))

    def _count(self, quotes: Iterator[Quote]) -> Iterator[Quote]:
        before = self.quotes.ticks
        for quote in quotes:
            self.events += 1
            yield quote
        self.ticks += self.quotes.ticks - before


def run_engine(strategy: Strategy, bt: BacktestConfig, events: Iterable[Bar | Quote]) -> BacktestResult:
    """The strategy on the engine with the profile's simulated venue, over ``events``."""
    return Backtest.from_config(strategy, bt).run(events)


def decision_rows(result: BacktestResult) -> list[dict[str, Any]]:
    """The decision log (``BacktestResult.decisions``) as JSON-ready rows."""
    names = {"signal": ("kind", "ts", "symbol", "signal_type", "strength", "target_position"),
             "intent": ("kind", "ts", "symbol", "side", "quantity", "order_type")}
    return [dict(zip(names[d[0]], d, strict=True)) for d in result.decisions()]


def write_decisions(path: Path, result: BacktestResult) -> int:
    rows = decision_rows(result)
    with open(path, "w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    return len(rows)
