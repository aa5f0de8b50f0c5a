"""``tradelake replay`` on the real stack: simulator ticks -> scratch Kafka topics -> the real lake
lander -> a scratch raw zone on HDFS -> replay into each target.

- kafka: every landed event re-published exactly once, each symbol's events in event-time order,
  and the filters' counts reconcile;
- ods: the store rebuilt from the raw zone has the same per-table checksums as the store built
  live from Kafka through its own write path (PostgreSQL and HBase), and the two stores agree with
  each other; a store holding data is refused without --wipe;
- engine: one strategy fed live by the router's ``KafkaMarketSource`` and fed by the replay of the
  landed topic makes the same decisions (signals and orders).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.publisher import TickPublisher
from ingestion.simulator import MarketSimulator, SimulatorConfig
from ods.checksum import MARKET_TABLES, store_checksums
from tests.support.scratch import consume_all, land_all, scratch_profile
from tradelake.cli import main
from tradelake.config import Config

SYMBOLS = ("AAPL", "MSFT", "NVDA")
DAY = "2026-01-05"
EVENT_COLUMNS = {
    "trade": ["ts", "symbol", "price", "size", "trade_id", "exchange", "seq", "side", "conditions"],
    "quote": ["ts", "symbol", "bid_price", "bid_size", "ask_price", "ask_size", "exchange", "seq"]}


def simulate(trades_per_day: int = 600, seed: int = 5) -> dict[str, pa.Table]:
    sim = MarketSimulator(SimulatorConfig(symbols=SYMBOLS, seed=seed, start_date=date(2026, 1, 5),
                                          trades_per_symbol_per_day=trades_per_day))
    parts: dict[str, list] = defaultdict(list)
    for kind, batch in sim.batches(by_symbol=True):
        parts[kind].append(batch)
    return {kind: pa.Table.from_batches(b) for kind, b in parts.items()}


def publish(cfg: Config, ticks: dict[str, pa.Table], per_message: int = 100) -> None:
    publisher = TickPublisher(cfg.kafka.bootstrap, ticks_per_message=per_message)
    for kind, topic in (("trade", cfg.ingest.topics.trades), ("quote", cfg.ingest.topics.quotes)):
        publisher.publish(topic, kind, ticks[kind])
    publisher.flush()
    publisher.close()


@contextlib.contextmanager
def environ(env: dict[str, str]):
    """The CLI reads its profile from the environment: this test's scratch names."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def replay(env: dict[str, str], capsys, *args: str) -> tuple[int, dict | None, str]:
    with environ(env):
        code = main(["replay", "--from", DAY, "--to", "2026-01-06", "-q", *args])
    out, err = capsys.readouterr()
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("{")]
    return code, (json.loads(lines[-1]) if lines else None), err


def sort_rows(table: pa.Table, kind: str) -> list[dict]:
    return table.select(EVENT_COLUMNS[kind]).sort_by([("symbol", "ascending"), ("ts", "ascending"),
                                                      ("seq", "ascending")]).to_pylist()


def test_kafka_target_republishes_every_event_once_in_order(stack, capsys):
    with scratch_profile() as (cfg, env, run):
        ticks = simulate()
        publish(cfg, ticks)
        landed = land_all(cfg, [cfg.ingest.topics.trades, cfg.ingest.topics.quotes])
        total = sum(t.num_rows for t in ticks.values())
        assert landed["rows"] == total

        code, summary, err = replay(env, capsys, "--target", "kafka",
                                    "--kafka-topic", f"it.{run}.re.{{topic}}")
        assert code == 0, err
        assert summary["read"] == summary["emitted"] == summary["published"] == total
        assert summary["reconciled"]
        assert (f"read {total:,} = published {total:,} + filtered by time 0 + filtered by symbol 0 "
                "(reconciled)") in err
        for kind, source in (("trade", cfg.ingest.topics.trades), ("quote", cfg.ingest.topics.quotes)):
            messages = consume_all(cfg, f"it.{run}.re.{source}")
            rows = pa.concat_tables([t for _, t, _, _ in messages])
            assert sort_rows(rows, kind) == sort_rows(ticks[kind], kind)  # each event exactly once
            assert rows.column("ingest_ts").null_count == 0  # the original broker time travels along
            by_symbol: dict[tuple, list] = defaultdict(list)  # a symbol's messages, in log order
            for key, table, partition, _ in messages:
                assert set(table.column("symbol").to_pylist()) == {key.decode()}
                by_symbol[(key, partition)] += list(zip(table["ts"].to_pylist(), table["seq"].to_pylist(),
                                                       strict=True))
            for keys in by_symbol.values():
                assert keys == sorted(keys)  # event-time order, per symbol

        # filters: one symbol, one hour; the counts reconcile with a count made here
        code, summary, err = replay(env, capsys, "--target", "kafka",
                                    "--kafka-topic", f"it.{run}.f.{{topic}}", "--symbols", "MSFT",
                                    "--from", f"{DAY}T15:00", "--to", f"{DAY}T16:00")
        assert code == 0, err
        start, end = (np.datetime64(f"{DAY}T{h}:00", "ns").astype(np.int64) for h in ("15:00", "16:00"))
        in_time = {k: pc.and_(pc.greater_equal(t["ts"], start), pc.less(t["ts"], end))
                   for k, t in ticks.items()}
        wanted = sum(pc.sum(pc.and_(m, pc.equal(ticks[k]["symbol"], "MSFT"))).as_py()
                     for k, m in in_time.items())
        outside = sum(pc.sum(pc.invert(m)).as_py() for m in in_time.values())
        assert (summary["published"], summary["filtered_time"], summary["filtered_symbol"]) == (
            wanted, outside, total - outside - wanted)


def live_build(cfg: Config, store) -> int:
    """The live ODS: the topics' messages as they arrive, each poll written through the store's
    own write path, ``ingest_ts`` set to the broker time (what the speed layer's ODS step does per
    micro-batch, and the lander does for the raw zone)."""
    written = 0
    for kind, topic in (("trade", cfg.ingest.topics.trades), ("quote", cfg.ingest.topics.quotes)):
        messages = [t.set_column(t.schema.get_field_index("ingest_ts"), "ingest_ts",
                                 pa.array([stamp * 1_000_000] * t.num_rows, pa.int64()))
                    for _, t, _, stamp in consume_all(cfg, topic)]
        for i in range(0, len(messages), 7):  # polls of a few messages, in log order per partition
            batch = pa.concat_tables(messages[i:i + 7])
            written += (store.write_trades if kind == "trade" else store.write_quotes)(batch)
    return written


def test_ods_target_rebuilds_the_live_stores_checksums(stack, capsys):
    from hbase.store import HBaseStore
    from ods.postgres import PostgresStore

    with scratch_profile() as (cfg, env, run):
        ticks = simulate(trades_per_day=400)
        publish(cfg, ticks, per_message=50)
        live_pg = PostgresStore(cfg, schema=f"it_{run}_live")
        live_hb = HBaseStore(cfg, table_prefix=f"it_{run}_live")
        for store in (live_pg, live_hb):
            store.ensure_schema()
            assert live_build(cfg, store) == sum(t.num_rows for t in ticks.values())
        land_all(cfg, [cfg.ingest.topics.trades, cfg.ingest.topics.quotes])
        live = {"postgres": store_checksums(live_pg, MARKET_TABLES),
                "hbase": store_checksums(live_hb, MARKET_TABLES)}
        live_pg.close()
        live_hb.close()

        code, summary, err = replay(env, capsys, "--target", "ods")
        assert code == 0, err
        assert summary["reconciled"] and summary["ods"]["trade"]["written"] == ticks["trade"].num_rows
        rebuilt_pg = {t: c for t, c in summary["checksums"].items()}
        assert rebuilt_pg == {t: c.as_dict() for t, c in live["postgres"].items()}

        hb_env = env | {"TRADELAKE_ODS__STORE": "hbase"}
        code, summary, err = replay(hb_env, capsys, "--target", "ods")
        assert code == 0, err
        assert summary["checksums"] == {t: c.as_dict() for t, c in live["hbase"].items()}
        common = set(live["hbase"])  # HBase has no rolling_volume: the rest agrees across stores
        assert {t: live["postgres"][t] for t in common} == live["hbase"]

        # a store that holds data is refused, unless wiped; a wiped rebuild is the same store
        code, _, err = replay(env, capsys, "--target", "ods")
        assert code == 2 and "--wipe" in err
        code, summary, err = replay(env, capsys, "--target", "ods", "--wipe")
        assert code == 0 and summary["wiped"] and summary["checksums"] == rebuilt_pg

        with environ(env):  # the ods checksum command says the same
            assert main(["ods", "checksum", "--json", "--tables", ",".join(MARKET_TABLES)]) == 0
        printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert {t: printed[t] for t in MARKET_TABLES} == rebuilt_pg


def test_engine_target_makes_the_live_routers_decisions(stack, capsys, tmp_path):
    from intelligence.backtest import decision_log
    from intelligence.engine import Engine, LiveClock
    from intelligence.execution import Commission, SimulatedExecution, Slippage
    from intelligence.portfolio import Portfolio
    from intelligence.strategies import build_strategy
    from order_routing.live_source import KafkaMarketSource

    overrides = {"TRADELAKE_INTELLIGENCE__MEAN_REVERSION__WINDOW": "10",
                 "TRADELAKE_INTELLIGENCE__MEAN_REVERSION__ENTRY_Z": "1.5"}
    with scratch_profile(overrides) as (cfg, env, _):
        trades = simulate(trades_per_day=1500, seed=9)["trade"]
        bt, icfg = cfg.intelligence.backtest, cfg.intelligence
        engine = Engine(LiveClock(), SimulatedExecution(Commission(bt.commission_model, bt.commission_rate,
                                                                   bt.commission_min),
                                                        Slippage(bt.slippage_model, bt.slippage), bt.fill_on),
                        Portfolio(bt.initial_cash))
        signals, intents = [], []
        engine.subscribe_signals(signals.append)
        engine.subscribe_intents(intents.append)
        engine.add_strategy(build_strategy("mean_reversion", icfg))
        publisher = TickPublisher(cfg.kafka.bootstrap, ticks_per_message=50)
        publisher.producer.partitions_for(cfg.ingest.topics.trades)  # the broker creates the topic
        source = KafkaMarketSource(cfg.kafka.bootstrap, cfg.ingest.topics.trades, idle_timeout_s=6.0,
                                   flush_after_s=5.0)
        router = threading.Thread(target=lambda: (engine.run(source), engine.finish()))
        router.start()
        assert source.assigned.wait(60)
        minute = trades["ts"].to_numpy() // 60_000_000_000
        for m in np.unique(minute):  # a live feed: each minute's trades of every symbol, in turn
            publisher.publish(cfg.ingest.topics.trades, "trade", trades.filter(pa.array(minute == m)))
            publisher.producer.flush()
            time.sleep(0.003)
        publisher.flush()
        publisher.close()
        router.join(120)
        assert not router.is_alive() and not source.rejected, source.rejected
        live = decision_log(signals, intents)
        assert len(intents) >= 4, len(intents)

        land_all(cfg, [cfg.ingest.topics.trades])
        out = Path(tmp_path) / "decisions.jsonl"
        code, summary, err = replay(env, capsys, "--target", "engine", "--strategy", "mean_reversion",
                                    "--decisions", str(out))
        assert code == 0, err
        assert summary["ticks"] == source.ticks == trades.num_rows and summary["events"] == source.events
        replayed = [tuple(json.loads(line).values()) for line in out.read_text().splitlines()]
        assert replayed == live
        assert summary["orders"] == len(intents) and summary["signals"] == len(signals)
