"""The raw-zone replay on hand-made landed files (local lake): event-time order across topics,
partitions, files and days, the tie-breaks, filters and their reconciliation, determinism, batch
cutting and pacing. Expected orders are worked out by hand from the key
(ts, topic kind, symbol bytes, seq, Kafka partition, offset, row)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from ingestion.replay import NS_PER_DAY, Pacer, RawReplay, ReplayError, day_start_ns
from tests.support.raw_zone import QUOTES, TRADES, land, quote, trade
from tradelake.cli import main
from tradelake.lakefs import LocalLakeFS

S = 1_000_000_000
D5 = day_start_ns(date(2026, 1, 5))
D6, D7 = D5 + NS_PER_DAY, D5 + 2 * NS_PER_DAY


def events(replay: RawReplay) -> list[tuple]:
    """(topic, symbol, seq, kafka partition, kafka offset, ts) of every event, in replay order."""
    out = []
    for batch in replay.batches():
        for topic, i in batch.events():
            r = batch.tables[topic].slice(i, 1).to_pylist()[0]
            out.append((topic, r["symbol"], r["seq"], r["kafka_partition"], r["kafka_offset"], r["ts"]))
    return out


@pytest.fixture
def ties(tmp_path):
    fs = LocalLakeFS(tmp_path)
    land(fs, TRADES, "2026-01-05", 0, 0, [[trade(D5 + 10 * S, "AAPL", 2), trade(D5 + 20 * S, "AAPL", 3)],
                                          [trade(D5 + 10 * S, "MSFT", 1)]])
    land(fs, TRADES, "2026-01-05", 1, 5, [[trade(D5 + 10 * S, "AAPL", 1)],
                                          [trade(D5 + 20 * S, "AAPL", 3)]])  # a re-sent copy
    land(fs, QUOTES, "2026-01-05", 0, 0, [[quote(D5 + 10 * S, "AAPL", 1), quote(D5 + 5 * S, "MSFT", 1)]])
    land(fs, TRADES, "2026-01-05", 2, 0, [[trade(D5 + 10 * S, "aa", 1)], [trade(D5 + 10 * S, "Zz", 1)]])
    return fs


def test_events_come_in_event_time_order_with_every_tie_broken(ties):
    got = [e[:5] for e in events(RawReplay(ties, [QUOTES, TRADES], D5, D6))]
    assert got == [
        ("md.quotes", "MSFT", 1, 0, 0),  # 10:00:05 first, although it is the message's second row
        ("md.trades", "AAPL", 1, 1, 5),  # at :10 trades before quotes; AAPL by seq, whatever the file
        ("md.trades", "AAPL", 2, 0, 0),
        ("md.trades", "MSFT", 1, 0, 1),
        ("md.trades", "Zz", 1, 2, 1),  # symbols compare as bytes: 'Z' (0x5a) < 'a' (0x61)
        ("md.trades", "aa", 1, 2, 0),
        ("md.quotes", "AAPL", 1, 0, 0),
        ("md.trades", "AAPL", 3, 0, 0),  # the same trade twice: partition 0 before partition 1
        ("md.trades", "AAPL", 3, 1, 6),
    ]


def test_the_order_does_not_depend_on_batching_threads_or_topic_order(ties):
    first = events(RawReplay(ties, [TRADES, QUOTES], D5, D6, batch_events=1, read_threads=1))
    again = events(RawReplay(ties, [QUOTES, TRADES], D5, D6, batch_events=1000, read_threads=4))
    assert first == again and len(first) == 9


def test_a_message_spanning_midnight_is_merged_into_the_next_day(tmp_path):
    fs = LocalLakeFS(tmp_path)
    # the lander files a message under its first row's date: AAPL 2 (00:00:01) sits in dt=01-05
    land(fs, TRADES, "2026-01-05", 0, 0, [[trade(D6 - S, "AAPL", 1), trade(D6 + S, "AAPL", 2)]])
    land(fs, TRADES, "2026-01-06", 1, 0, [[trade(D6 + S // 2, "MSFT", 1)]])
    replay = RawReplay(fs, [TRADES], D5, D7)
    batches = [b.ts.tolist() for b in replay.batches()]
    assert batches == [[D6 - S], [D6 + S // 2, D6 + S]]  # day 1 alone, then day 2 with the carried row
    assert replay.stats.days == 2 and replay.stats.reconciles()
    # a range starting on 01-06 reads dt=01-05 too (lookback 1): the carried row is not lost
    later = RawReplay(fs, [TRADES], D6, D7)
    assert [(e[1], e[2]) for e in events(later)] == [("MSFT", 1), ("AAPL", 2)]
    assert (later.stats.rows_read, later.stats.filtered_time, later.stats.rows_emitted) == (3, 1, 2)


def test_filters_by_time_and_symbol_reconcile(tmp_path):
    fs = LocalLakeFS(tmp_path)
    land(fs, TRADES, "2026-01-05", 0, 0, [[trade(D5 + t * S, "AAPL", t) for t in (5, 10, 20, 30)],
                                          [trade(D5 + t * S, "MSFT", t) for t in (10, 20)],
                                          [trade(D5 + t * S, "NVDA", t) for t in (15, 29, 31)]])
    land(fs, QUOTES, "2026-01-05", 0, 0, [[quote(D5 + 12 * S, "NVDA", 1), quote(D5 + 40 * S, "NVDA", 2)]])
    replay = RawReplay(fs, [TRADES, QUOTES], D5 + 10 * S, D5 + 30 * S, symbols=["AAPL", "NVDA"])
    assert [(e[0], e[1], e[2]) for e in events(replay)] == [
        ("md.trades", "AAPL", 10), ("md.quotes", "NVDA", 1), ("md.trades", "NVDA", 15),
        ("md.trades", "AAPL", 20), ("md.trades", "NVDA", 29)]
    s = replay.stats
    # read 11: outside [10 s, 30 s): AAPL 5 and 30, NVDA 31, quote NVDA 2 -> 4; MSFT 10, 20 -> 2
    assert (s.rows_read, s.filtered_time, s.filtered_symbol, s.rows_emitted) == (11, 4, 2, 5)
    assert s.read == {"md.trades": 9, "md.quotes": 2} and s.emitted == {"md.trades": 4, "md.quotes": 1}
    assert s.reconciles() and s.files == 2 and (s.first_ts, s.last_ts) == (D5 + 10 * S, D5 + 29 * S)


def test_a_row_older_than_what_was_replayed_stops_the_replay(tmp_path):
    fs = LocalLakeFS(tmp_path)
    land(fs, TRADES, "2026-01-05", 0, 0, [[trade(D5 + 10 * S, "AAPL", 1)]])
    # a message out of time order: its first row is on 01-06, its second back on 01-05
    land(fs, TRADES, "2026-01-06", 0, 1, [[trade(D6 + S, "AAPL", 3), trade(D5 + 12 * 3600 * S, "AAPL", 2)]])
    with pytest.raises(ReplayError, match="older than events already replayed"):
        events(RawReplay(fs, [TRADES], D5, D7))


def test_batches_are_cut_by_size_and_by_event_time_span(tmp_path):
    fs = LocalLakeFS(tmp_path)
    land(fs, TRADES, "2026-01-05", 0, 0, [[trade(D5 + t * S, "AAPL", t) for t in range(5)]])
    sizes = [len(b) for b in RawReplay(fs, [TRADES], D5, D6, batch_events=2).batches()]
    assert sizes == [2, 2, 1]
    # spans of 1.5 s from the first event: [0 s, 1.5 s) [1.5 s, 3 s) [3 s, ...)
    spans = [b.ts.tolist() for b in RawReplay(fs, [TRADES], D5, D6, max_span_ns=3 * S // 2).batches()]
    assert spans == [[D5, D5 + S], [D5 + 2 * S], [D5 + 3 * S, D5 + 4 * S]]


def test_an_empty_range_is_a_usage_error(tmp_path):
    with pytest.raises(ValueError, match="range is empty"):
        RawReplay(LocalLakeFS(tmp_path), [TRADES], D6, D5)


class FakeClock:
    """The wall clock the pacer reads and sleeps on (the test's input, not the code under test)."""

    def __init__(self) -> None:
        self.now, self.sleeps = 50.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.now += seconds


def test_pacing_sleeps_event_time_over_speed_and_skips_long_gaps():
    clock = FakeClock()
    pacer = Pacer(10, max_gap_s=3600, clock=clock, sleep=clock.sleep)
    for ts in (D5, D5 + 5 * S, D5 + 10 * S):  # 5 s of event time at 10x: 0.5 s each
        pacer.wait(ts)
    clock.now += 0.2  # the target took 0.2 s: only 0.3 s left to sleep for the next 5 s
    pacer.wait(D5 + 15 * S)
    pacer.wait(D5 + 15 * S + 2 * 3600 * S)  # a 2-hour gap (a night): the clock restarts, no sleep
    pacer.wait(D5 + 20 * S + 2 * 3600 * S)
    assert clock.sleeps == [0.5, 0.5, 0.3, 0.5]
    assert pacer.span_ns() == int(2.5 * S)  # a step of 0.25 s wall covers 2.5 s of event time
    unpaced = Pacer(None, clock=clock, sleep=clock.sleep)
    unpaced.wait(D5)
    unpaced.wait(D7)
    assert clock.sleeps == [0.5, 0.5, 0.3, 0.5] and unpaced.span_ns() is None
    with pytest.raises(ValueError, match="speed must be > 0"):
        Pacer(0)


@pytest.fixture
def local_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADELAKE_LAKE__ROOT", f"file://{tmp_path}")
    fs = LocalLakeFS(tmp_path)
    minute = 60 * S
    open_ = D5 + 14 * 3600 * S + 30 * minute
    land(fs, TRADES, "2026-01-05", 0, 0, [[trade(open_ + m * minute + k * S, "AAPL", m * 10 + k, 10.0 + m + k)
                                           for m in range(3) for k in range(2)]])
    return fs


def test_cli_replays_into_the_engine_and_reconciles(local_profile, capsys):
    assert main(["replay", "--from", "2026-01-05", "--to", "2026-01-06", "--target", "engine", "-q"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    # 6 trades -> 3 one-minute bars of AAPL
    assert (summary["read"], summary["emitted"], summary["ticks"], summary["events"]) == (6, 6, 6, 3)
    assert summary["reconciled"] and summary["rejected_market_data"] == {}
    assert "read 6 = ticks to the engine 6 + filtered by time 0 + filtered by symbol 0 (reconciled)" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "2026-01-04"], "--to must be after --from"),
    (["--kafka-topic", "{topic}"], "would publish back into"),
    (["--target", "kafka", "--kafka-topic", "one.topic"], "must contain {topic}"),
    (["--topics", "no.such.topic"], "unknown topic"),
    (["--target", "engine", "--strategy", "no_such_strategy"], "no_such_strategy"),
])
def test_cli_usage_errors_exit_2(local_profile, capsys, args, message):
    argv = ["replay", "--from", "2026-01-05", "--to", "2026-01-06", "--target", "kafka", "-q"]
    for i in range(0, len(args), 2):  # the test's options replace the defaults
        if args[i] in argv:
            argv[argv.index(args[i]) + 1] = args[i + 1]
        else:
            argv += args[i:i + 2]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_order_is_the_full_key_order_when_timestamps_collide(tmp_path):
    """Many rows share a ts (three distinct times): the replay order must be exactly the order of
    the whole key, which Python's sort of tuples computes independently here."""
    import random

    rng = random.Random(4)
    fs = LocalLakeFS(tmp_path)
    expected = []
    for spec, rank, make in ((TRADES, 0, trade), (QUOTES, 1, quote)):
        for partition in range(2):
            rows = [make(D5 + rng.choice((1, 2, 3)) * S, rng.choice(["B", "A", "Ä", "AA", "a"]),
                         rng.randrange(4)) for _ in range(60)]
            messages = [rows[i:i + 7] for i in range(0, 60, 7)]
            land(fs, spec, "2026-01-05", partition, 10, messages)
            for row_no, r in enumerate(rows):
                key = (r["ts"], rank, r["symbol"].encode(), r["seq"], partition, 10 + row_no // 7, row_no)
                expected.append((key, (spec.topic, r["symbol"], r["seq"], partition, 10 + row_no // 7)))
    got = [e[:5] for e in events(RawReplay(fs, [TRADES, QUOTES], D5, D6, batch_events=17))]
    assert got == [value for _, value in sorted(expected)]
