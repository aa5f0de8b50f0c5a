"""The router's market-data source against the stack's Kafka, through each client it offers
(librdkafka and kafka-python): where it starts, what it yields, what it rejects."""

from __future__ import annotations

import threading
import time
import uuid

import pyarrow as pa
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from ingestion import wire
from intelligence.domain import Bar, Quote
from intelligence.sources import SourceError
from order_routing.live_source import KAFKA_CLIENTS, KafkaMarketSource, open_reader
from tradelake.schemas import QUOTE, TRADE, arrow_schema
from tradelake.stack.kafka import delete_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BASE = 1_767_945_600_000_000_000  # 2026-01-09 08:00:00 UTC


def quote_message(ts: int, symbol: str, bid: float) -> bytes:
    schema = arrow_schema(QUOTE)
    row = {"ts": ts, "symbol": symbol, "bid_price": bid, "bid_size": 100.0, "ask_price": bid + 0.02,
           "ask_size": 200.0, "exchange": None, "seq": ts, "ingest_ts": None}
    return wire.encode(pa.Table.from_pylist([{n: row.get(n) for n in schema.names}], schema=schema), "lz4")


MINUTE = 60_000_000_000


def trade_message(symbol: str, minutes: range, price: float) -> bytes:
    """One trade of ``symbol`` in each of ``minutes`` (after BASE), at ``price``."""
    schema = arrow_schema(TRADE)
    rows = [{"ts": BASE + m * MINUTE + 1_000, "symbol": symbol, "price": price, "size": 10.0,
             "trade_id": f"{symbol}-{m}", "seq": m} for m in minutes]
    return wire.encode(pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows],
                                            schema=schema), "lz4")


@pytest.fixture
def topic(cfg, stack):
    name = f"it_src_{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=cfg.kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    yield name
    delete_topics(cfg.kafka.bootstrap, [name])


@pytest.fixture
def producer(cfg, stack):
    producer = KafkaProducer(bootstrap_servers=cfg.kafka.bootstrap.split(","), acks="all", linger_ms=0)
    yield producer
    producer.close(10)


def read_in_background(source: KafkaMarketSource) -> tuple[threading.Thread, list]:
    events: list = []
    thread = threading.Thread(target=lambda: events.extend(e for e in source if e is not None), daemon=True)
    thread.start()
    for _ in range(600):  # until positioned; a reader that failed ends the thread (its error is logged)
        if source.assigned.wait(0.1) or not thread.is_alive():
            break
    assert source.assigned.is_set(), "the source was never positioned"
    return thread, events


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_the_source_starts_at_the_live_end_and_quarantines_what_it_cannot_read(cfg, topic, producer, client):
    producer.send(topic, key=b"OLD", value=quote_message(BASE, "OLD", 5.0)).get(30)  # before: not seen
    # it stops after 10 s without a message: far longer than any gap between the sends below
    source = KafkaMarketSource(cfg.kafka.bootstrap, topic, mode="quotes", idle_timeout_s=10.0, client=client)
    thread, events = read_in_background(source)
    # both partitions, taking turns; each message acknowledged before the next is sent
    sent = [(BASE + 1 + i, "AAA" if i % 2 else "BBB", 10.0 + i) for i in range(6)]
    for i, (ts, symbol, bid) in enumerate(sent):
        producer.send(topic, partition=i % 2, value=quote_message(ts, symbol, bid)).get(30)
        if i == 2:
            producer.send(topic, partition=0, value=b"not an arrow stream").get(30)
            producer.send(topic, partition=1, value=b"").get(30)
            producer.send(topic, partition=0, key=b"GONE", value=None).get(30)  # a tombstone
    thread.join(60)
    assert not thread.is_alive()

    expected = {ts: Quote(ts, symbol, bid, 100.0, bid + 0.02, 200.0) for ts, symbol, bid in sent}
    assert [q for q in events if expected.get(q.ts) != q] == []
    # partitions are read as they come: a quote older than the last one released is LATE (counted
    # and logged), never silently lost
    assert len(events) + source.rejected["LATE"] == len(sent) and len(events) >= len(sent) // 2
    assert source.rejected["UNDECODABLE"] == 3
    assert source.messages == len(sent) + 3 and source.ticks == len(sent)


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_from_the_beginning_the_source_reads_what_was_there_before(cfg, topic, producer, client):
    for i in range(3):
        producer.send(topic, key=b"CCC", value=quote_message(BASE + i, "CCC", 20.0 + i))
    producer.flush(30)
    source = KafkaMarketSource(cfg.kafka.bootstrap, topic, mode="quotes", from_beginning=True,
                               max_events=3, idle_timeout_s=30.0, client=client)
    events = [e for e in source if e is not None]
    assert [(q.ts, q.bid_price) for q in events] == [(BASE, 20.0), (BASE + 1, 21.0), (BASE + 2, 22.0)]


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_a_missing_topic_is_a_clear_error(cfg, stack, client):
    missing = f"it_src_missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(SourceError, match=f"topic {missing} does not exist"):
        open_reader(client, cfg.kafka.bootstrap, missing, topic_wait_s=1.0)


def test_an_unknown_client_is_refused(cfg):
    with pytest.raises(ValueError, match="librdkafka, kafka-python"):
        KafkaMarketSource(cfg.kafka.bootstrap, "any", client="java")


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_a_symbol_whose_partition_starts_late_loses_no_bar(cfg, topic, producer, client):
    # as at the start of the demo's live day: one symbol's partition delivers five minutes of
    # trades before the other symbol's first message arrives; both are bars of the same minutes
    source = KafkaMarketSource(cfg.kafka.bootstrap, topic, mode="bars", idle_timeout_s=5.0, client=client)
    thread, bars = read_in_background(source)
    producer.send(topic, partition=0, value=trade_message("FAST", range(5), 10.0)).get(30)
    time.sleep(0.3)  # the source polls (and, without the settle, released FAST's first four bars)
    producer.send(topic, partition=1, value=trade_message("SLOW", range(5), 20.0)).get(30)
    thread.join(60)
    assert not thread.is_alive()
    assert source.rejected["LATE"] == 0, source.rejected
    expected = [Bar(BASE + m * MINUTE, symbol, "1m", price, price, price, price, 10.0, price, 1)
                for m in range(5) for symbol, price in (("FAST", 10.0), ("SLOW", 20.0))]
    assert bars == expected


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_a_halted_symbol_does_not_hold_the_other_symbols_bars_back(cfg, topic, producer, client):
    # HALTED trades in minute 0 and then stops; ACTIVE trades a minute every 0.2 s. Before, no bar
    # came out until HALTED traded again or the whole feed went quiet: here, the end of the test.
    # Now HALTED is idle after 1 s and past its grace (1 s) a second later
    source = KafkaMarketSource(cfg.kafka.bootstrap, topic, mode="bars", idle_timeout_s=3.0,
                               symbol_idle_s=1.0, client=client)
    sent = [0]  # messages sent so far, read by the source's thread as each bar comes out
    bars: list[tuple[Bar, int]] = []
    thread = threading.Thread(target=lambda: bars.extend((e, sent[0]) for e in source if e is not None),
                              daemon=True)
    thread.start()
    assert source.assigned.wait(60), "the source was never positioned"
    producer.send(topic, partition=1, value=trade_message("HALTED", range(1), 20.0)).get(30)
    minutes = 40
    for m in range(minutes):
        producer.send(topic, partition=0, value=trade_message("ACTIVE", range(m, m + 1), 10.0)).get(30)
        sent[0] += 1
        time.sleep(0.2)
    thread.join(60)
    assert not thread.is_alive()
    assert source.rejected["LATE"] == 0, source.rejected
    bar = lambda m, symbol, price: Bar(BASE + m * MINUTE, symbol, "1m", price, price, price, price,  # noqa: E731
                                       10.0, price, 1)
    expected = [bar(0, "ACTIVE", 10.0), bar(0, "HALTED", 20.0)] + [bar(m, "ACTIVE", 10.0)
                                                                   for m in range(1, minutes)]
    assert [b for b, _ in bars] == expected
    during = [b for b, when in bars if when < minutes]
    assert bar(0, "HALTED", 20.0) in during and len(during) > minutes // 3, bars  # not only at the end
