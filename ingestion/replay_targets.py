"""The three targets of ``tradelake replay``, behind one small interface for the command:
``describe()``, ``run(batches)``, ``finish(stats) -> summary`` (with ``reconciled``; releases
connections), ``close()`` (after a failure), ``delivered_words(stats)`` and ``report_lines()``.

- ``KafkaReplay``: ``ingestion.replay.KafkaTarget`` (re-publish with the ingestion publisher);
- ``OdsReplay``: ``ods.rebuild`` (validate, then the store's bulk write path) and the rebuilt
  store's per-table checksums (``ods.checksum``), to compare with the live store's;
- ``EngineReplay``: ``intelligence.replay_engine`` (the router's bars, one strategy, its decisions).
The last two are downstream layers, imported only when chosen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ingestion.lander import TopicSpec
from ingestion.replay import KafkaTarget, ReplayBatch, ReplayStats
from tradelake.config import Config


class KafkaReplay:
    def __init__(self, cfg: Config, specs: Sequence[TopicSpec], template: str) -> None:
        if len(specs) > 1 and "{topic}" not in template:
            raise ValueError(f"--kafka-topic {template!r} must contain {{topic}} when several topics "
                             f"replay ({', '.join(s.topic for s in specs)})")
        self.topic_map = {s.topic: template.replace("{topic}", s.topic) for s in specs}
        clash = sorted(set(self.topic_map.values()) & {s.topic for s in specs})
        if clash:
            raise ValueError(f"--kafka-topic would publish back into {clash}, a replayed topic: the lake "
                             "lander and the speed layer would take every event twice")
        self.target = KafkaTarget(cfg.kafka.bootstrap, specs, self.topic_map,
                                  ticks_per_message=cfg.ingest.ticks_per_message,
                                  wire_compression=cfg.ingest.wire_compression)
        self.published = 0

    def describe(self) -> str:
        return "Kafka " + ", ".join(self.topic_map.values())

    def run(self, batches: Iterable[ReplayBatch]) -> None:
        for batch in batches:
            self.target.write(batch)

    def finish(self, stats: ReplayStats) -> dict[str, Any]:
        self.published = self.target.close()
        return {"published": self.published, "kafka_topics": self.topic_map,
                "reconciled": self.published == stats.rows_emitted}

    def close(self) -> None:
        self.target.publisher.close()

    def delivered_words(self, stats: ReplayStats) -> str:
        return f"published {self.published:,}"

    def report_lines(self) -> list[str]:
        return [f"{src} -> {dst}" for src, dst in self.topic_map.items()]


class OdsReplay:
    def __init__(self, cfg: Config, specs: Sequence[TopicSpec], wipe: bool) -> None:
        from ods.rebuild import OdsRebuild, prepare, store_writers
        from ods.store import open_store

        self.store = open_store(cfg)
        self.bulk = None
        try:
            self.wiped = prepare(self.store, wipe)
            if self.store.kind == "postgres":  # the COPY fast path, trades and quotes in parallel
                from ods.bulk_load import PostgresBulkLoad

                self.bulk = PostgresBulkLoad(cfg, self.store.schema)
                self.bulk.begin()
                writers = {"trade": self.bulk.writer("trades"), "quote": self.bulk.writer("quotes")}
            else:
                writers = store_writers(self.store)
            self.rebuild = OdsRebuild(cfg, specs, writers, parallel=self.bulk is not None)
        except BaseException:
            self._close()
            raise
        self.checksums: dict[str, Any] = {}

    def _close(self) -> None:
        if self.bulk is not None:
            self.bulk.close()
        self.store.close()

    def close(self) -> None:
        """After a failure: the store is left as it is (a rebuild with --wipe starts over)."""
        self.rebuild.abort()
        self._close()

    def describe(self) -> str:
        return f"the operational store {self.store!r}" + (" (wiped first)" if self.wiped else "")

    def run(self, batches: Iterable[ReplayBatch]) -> None:
        for batch in batches:
            self.rebuild.write(batch)

    def finish(self, stats: ReplayStats) -> dict[str, Any]:
        from ods.checksum import MARKET_TABLES, store_checksums

        try:
            self.rebuild.finish()
            if self.bulk is not None:
                self.bulk.end()
            self.checksums = {t: c.as_dict() for t, c in store_checksums(self.store, MARKET_TABLES).items()}
        finally:
            self._close()
        ods = self.rebuild.stats.as_dict()
        received = sum(c.received for c in self.rebuild.stats.counts.values())
        ok = received == stats.rows_emitted and all(ods[k]["reconciled"] for k in ("trade", "quote"))
        return {"store": repr(self.store), "wiped": self.wiped, "ods": ods, "checksums": self.checksums,
                "reconciled": ok}

    def delivered_words(self, stats: ReplayStats) -> str:
        s = self.rebuild.stats
        c = list(s.counts.values())
        return (f"written {sum(s.written.values()):,} + already in the store "
                f"{sum(s.already(k) for k in s.counts):,} + quarantined {sum(x.quarantined for x in c):,} "
                f"+ outside the universe {sum(x.filtered for x in c):,}")

    def report_lines(self) -> list[str]:
        lines = [f"{kind}: {c.summary()}" for kind, c in self.rebuild.stats.counts.items() if c.received]
        lines += [f"{t:<15} {v['rows']:>12,} rows  checksum {v['checksum']}"
                  for t, v in self.checksums.items()]
        return lines


class EngineReplay:
    def __init__(self, cfg: Config, specs: Sequence[TopicSpec], strategy: str, mode: str, interval: str,
                 symbols: list[str] | None, decisions: Path | None) -> None:
        from intelligence.replay_engine import MarketEvents
        from intelligence.strategies import build_strategy

        icfg = cfg.intelligence
        predictor = None
        if strategy in ("ml_signal", "selector"):
            from intelligence.models import load_predictor

            def predictor():
                return load_predictor(cfg, icfg.ml_signal.model, icfg.ml_signal.model_version)
        self.strategy = build_strategy(strategy, icfg, symbols=symbols, predictor=predictor)
        self.events = MarketEvents({s.topic: s.kind for s in specs}, mode, interval, symbols)
        self.backtest_cfg, self.decisions_path = icfg.backtest, decisions
        self.result = None
        self.decisions = 0

    def describe(self) -> str:
        return f"the engine: {self.strategy.strategy_id} on {self.events.mode}"

    def run(self, batches: Iterable[ReplayBatch]) -> None:
        from intelligence.replay_engine import run_engine

        self.result = run_engine(self.strategy, self.backtest_cfg, self.events(batches))

    def finish(self, stats: ReplayStats) -> dict[str, Any]:
        from intelligence.replay_engine import write_decisions

        r = self.result
        if self.decisions_path is not None:
            self.decisions = write_decisions(self.decisions_path, r)
        return {"strategy": self.strategy.strategy_id, "mode": self.events.mode, "ticks": self.events.ticks,
                "events": self.events.events, "rejected_market_data": dict(self.events.rejected),
                "signals": len(r.signals), "orders": len(r.intents), "fills": r.fill_count,
                "final_equity": r.final_equity, "decisions_file": str(self.decisions_path or ""),
                "reconciled": self.events.ticks == stats.rows_emitted}

    def close(self) -> None:
        pass

    def delivered_words(self, stats: ReplayStats) -> str:
        return f"ticks to the engine {self.events.ticks:,}"

    def report_lines(self) -> list[str]:
        r = self.result
        lines = [f"{self.events.events:,} {self.events.mode} events; rejected market data: "
                 f"{dict(self.events.rejected) or 'none'}",
                 f"{len(r.signals):,} signals, {len(r.intents):,} orders, {r.fill_count:,} fills, "
                 f"final equity {r.final_equity:,.2f}"]
        if self.decisions_path is not None:
            lines.append(f"decision log: {self.decisions:,} rows in {self.decisions_path}")
        return lines
