"""The same strategy code over the lake (a backtest) and over Kafka (live) makes the same decisions.

Synthetic bars of three symbols go into a scratch warehouse's ``curated.bars`` (files in the
table's folders, partitions added through the Thrift server, so Hive SQL sees them), and the
same bars are published to a scratch Kafka topic in the wire format of ingestion/wire.py, one
message per symbol and minute, as a live bar feed would, while a consumer is already reading.
Each strategy runs with no change to its code: ``Backtest`` (simulated clock) over
``read_lake_bars``, and an ``Engine`` with the live clock and a paper venue over
``KafkaBarSource``, live and as a bounded replay. Their decision logs are equal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from datetime import date

import pyarrow.compute as pc
import pytest

from ingestion.publisher import TickPublisher
from intelligence.backtest import Backtest, decision_log
from intelligence.engine import Engine, LiveClock
from intelligence.execution import Commission, SimulatedExecution, Slippage
from intelligence.portfolio import Portfolio
from intelligence.sources import KafkaBarSource, bars_from_arrow, read_lake_bars
from intelligence.strategies import MeanReversion, Pairs, RegimeSelector, TrendFollowing
from intelligence.synthetic import synthetic_bars, write_lake_bars

SYMBOLS = ("AAPL", "MSFT", "NVDA")
DAY1, DAY2 = date(2026, 1, 5), date(2026, 1, 6)
STRATEGIES = {
    "mean_reversion": lambda: MeanReversion(20, 1.5, 0.3, qty=10),
    "trend": lambda: TrendFollowing(5, 20, "ema", momentum_window=10, qty=10),
    "pairs": lambda: Pairs(("AAPL", "MSFT"), window=40, entry_z=1.5, exit_z=0.3, qty=10),
    "selector": lambda: RegimeSelector(TrendFollowing(5, 20, "ema", 10, qty=10, strategy_id="t"),
                                       MeanReversion(20, 1.5, 0.3, qty=10, strategy_id="m"), qty=10),
}


def venue() -> SimulatedExecution:
    return SimulatedExecution(Commission("per_share", 0.005, 1.0), Slippage("bps", 1.0))


@pytest.fixture
def bars_cfg(scratch_warehouse, cfg):
    from kafka.admin import KafkaAdminClient

    scratch, _ = scratch_warehouse
    topic = f"it.{uuid.uuid4().hex[:8]}.bars"
    topics = dataclasses.replace(scratch.ingest.topics, bars=topic)
    yield dataclasses.replace(scratch, ingest=dataclasses.replace(scratch.ingest, topics=topics))
    with contextlib.suppress(Exception):
        admin = KafkaAdminClient(bootstrap_servers=cfg.kafka.bootstrap)
        admin.delete_topics([topic])
        admin.close()


def engines() -> dict[str, tuple[Engine, list, list]]:
    """One live engine per strategy (live clock, paper venue), recording its decisions."""
    out = {}
    for name, make in STRATEGIES.items():
        engine = Engine(LiveClock(), venue(), Portfolio(1_000_000.0))
        signals, intents = [], []
        engine.subscribe_signals(signals.append)
        engine.subscribe_intents(intents.append)
        engine.add_strategy(make())
        out[name] = (engine, signals, intents)
    return out


def drive(source: KafkaBarSource, live: dict) -> None:
    """Feed each event of the source to every engine as it arrives (one consumer for all)."""
    for event in source:
        for engine, _, _ in live.values():
            engine.run((event,))


def test_lake_and_kafka_give_the_same_decisions(bars_cfg, thrift_query):
    cfg = bars_cfg
    table = synthetic_bars(SYMBOLS, 2, seed=17, bars_per_day=150)
    write_lake_bars(cfg, table, register=True)
    assert thrift_query(f"SELECT count(*) FROM {cfg.warehouse.curated_db}.bars WHERE `interval` = '1m'") == [
        (table.num_rows,)]

    lake_bars = bars_from_arrow(read_lake_bars(cfg, DAY1, DAY2, SYMBOLS))
    assert len(lake_bars) == table.num_rows
    lake = {name: Backtest(make(), commission=Commission("per_share", 0.005, 1.0),
                           slippage=Slippage("bps", 1.0)).run(lake_bars).decisions()
            for name, make in STRATEGIES.items()}
    assert all(len(log) > 4 for log in lake.values()), {k: len(v) for k, v in lake.items()}

    # live: the consumer is positioned at the end first, then a feed publishes each minute's bars
    # (one message per symbol) a few ms apart; steps are released 10 bar-minutes behind the newest
    publisher = TickPublisher(cfg.kafka.bootstrap, ticks_per_message=10)
    publisher.producer.partitions_for(cfg.ingest.topics.bars)  # the broker creates the topic
    source = KafkaBarSource(cfg.kafka.bootstrap, cfg.ingest.topics.bars, idle_timeout_s=5.0, lateness_s=600.0)
    live = engines()
    consumer = threading.Thread(target=drive, args=(source, live))
    consumer.start()
    assert source.assigned.wait(60)
    for ts in sorted(set(table.column("ts").to_pylist())):
        publisher.publish(cfg.ingest.topics.bars, "bar", table.filter(pc.equal(table["ts"], ts)))
        publisher.producer.flush()
        time.sleep(0.005)
    assert publisher.flush().ticks == table.num_rows
    publisher.close()
    consumer.join(120)
    assert not consumer.is_alive()
    assert source.bars == table.num_rows and not source.rejected, source.rejected
    for name, (engine, signals, intents) in live.items():
        assert engine.clock.live
        assert decision_log(signals, intents) == lake[name], name

    # a bounded replay of the same topic from its first offset gives them too
    replay = KafkaBarSource(cfg.kafka.bootstrap, cfg.ingest.topics.bars, from_beginning=True, until_end=True)
    again = engines()
    drive(replay, again)
    assert replay.bars == table.num_rows and not replay.rejected
    for name, (_, signals, intents) in again.items():
        assert decision_log(signals, intents) == lake[name], name
