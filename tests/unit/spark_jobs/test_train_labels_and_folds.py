"""spark_jobs/train.py and walk_forward.py: label construction, walk-forward folds with a purge,
the purge of training rows whose label reaches the test block, and the metrics table's columns.
Expected values are worked out by hand in the comments."""

from __future__ import annotations

import re

import pytest

from hive.warehouse import statements
from spark_jobs import model_features
from spark_jobs.train import METRIC_COLUMNS, complete, metric_rows, parse_weights, with_labels
from spark_jobs.train_linear import fold_rows
from spark_jobs.walk_forward import Fold, folds
from tradelake.config import load_config

ROWS = "ts BIGINT, symbol STRING, interval STRING, ret DOUBLE"


def test_label_is_the_next_bars_ret_of_the_same_series_and_never_past_the_window(local_spark):
    bars = local_spark.createDataFrame([
        (1, "AAPL", "1m", None), (2, "AAPL", "1m", 0.1), (3, "AAPL", "1m", -0.2),
        (1, "MSFT", "1m", None), (2, "MSFT", "1m", 0.0),
        (1, "AAPL", "5m", 0.5),  # another series of the same symbol: not AAPL 1m's neighbour
    ], ROWS)
    got = {(r.symbol, r.interval, r.ts): (r.label_ts, r.label, r.direction)
           for r in with_labels(bars).collect()}
    assert got == {
        ("AAPL", "1m", 1): (2, 0.1, 1.0),     # the next bar's ret, up
        ("AAPL", "1m", 2): (3, -0.2, 0.0),    # down
        ("AAPL", "1m", 3): (None, None, None),  # the last bar: nothing after it is looked at
        ("MSFT", "1m", 1): (2, 0.0, 0.0),     # flat counts as "not up"
        ("MSFT", "1m", 2): (None, None, None),
        ("AAPL", "5m", 1): (None, None, None),
    }


def test_label_at_t_does_not_change_when_later_bars_change(local_spark):
    """No look-ahead beyond one bar: the labels up to t depend on bars up to t + 1 only."""
    base = [(t, "AAPL", "1m", 0.01 * t) for t in range(1, 8)]
    changed = base[:4] + [(t, "AAPL", "1m", -9.0) for t in range(5, 8)]  # bars after t = 4 change
    def labels(rows):
        out = with_labels(local_spark.createDataFrame(rows, ROWS)).orderBy("ts").collect()
        return [(r.ts, r.label) for r in out]
    assert labels(base)[:3] == labels(changed)[:3]  # t = 1..3 read bars up to 4


def test_complete_needs_a_label_and_every_feature(local_spark):
    features = model_features.select(["ret", "close_sma_10"])
    df = local_spark.createDataFrame([
        (1, 0.1, 10.0, 10.0, 0.2), (2, None, 10.0, 10.0, 0.2), (3, 0.1, 10.0, None, 0.2),
        (4, 0.1, 10.0, 0.0, 0.2),  # zero denominator: try_divide gives null, the row is out
        (5, 0.1, 10.0, 10.0, None), (6, float("nan"), 10.0, 10.0, 0.2)],
        "ts BIGINT, ret DOUBLE, close DOUBLE, sma_10 DOUBLE, label DOUBLE")
    assert [r.ts for r in df.where(complete(features)).collect()] == [1]


def test_walk_forward_folds_expanding_and_rolling_with_a_purge():
    times = list(range(100, 112))  # 12 bar times -> 3 blocks of 4: [100..103], [104..107], [108..111]
    assert folds(times, 2, purge=1) == [
        Fold(1, train_from=100, train_to=104, test_from=105, test_to=108),  # 104 purged
        Fold(2, train_from=100, train_to=108, test_from=109, test_to=112),  # 108 purged; end = last + 1
    ]
    rolling = folds(times, 2, purge=2, train_blocks=1)
    assert rolling[1] == Fold(2, train_from=104, train_to=108, test_from=110, test_to=112)
    # uneven counts: 7 times, 2 folds -> block starts 0, 2, 4 (7 * b // 3)
    assert folds([0, 10, 20, 30, 40, 50, 60], 2, purge=1) == [Fold(1, 0, 20, 30, 40), Fold(2, 0, 40, 50, 61)]


def test_walk_forward_refuses_too_few_bar_times_and_unsorted_input():
    with pytest.raises(ValueError, match="too few for 2 folds with a purge of 2"):
        folds(range(6), 2, purge=2)  # blocks of 2 bar times, all purged
    with pytest.raises(ValueError, match="sorted and distinct"):
        folds([3, 1, 2], 1, purge=0)


def test_training_rows_whose_label_reaches_the_test_block_are_purged(local_spark):
    # the fold trains on [0, 10) and tests on [12, 20). Row ts 8's next bar is at 12 (its symbol
    # skipped 10 and 11), so its label is the test block's first return: it must not train.
    data = local_spark.createDataFrame([(0, 1), (5, 6), (8, 12), (9, 11), (12, 15), (19, 25), (20, 21)],
                                       "ts BIGINT, label_ts BIGINT")
    train, test = fold_rows(data, Fold(1, 0, 10, 12, 20))
    assert sorted(r.ts for r in train.collect()) == [0, 5, 9]
    assert sorted(r.ts for r in test.collect()) == [12, 19]


def test_metric_rows_keep_numbers_only():
    rows = metric_rows("fold", {"index": 1, "train_from": 5, "n": 10, "rmse": 0.5, "skipped": "x",
                                "flag": True}, fold=1)
    assert rows == [("fold", 1, None, "n", 10.0), ("fold", 1, None, "rmse", 0.5)]


def test_parse_weights():
    assert parse_weights("AAPL=0.25, MSFT=0.75") == {"AAPL": 0.25, "MSFT": 0.75}
    assert parse_weights("") is None
    with pytest.raises(ValueError, match="SYMBOL=WEIGHT"):
        parse_weights("AAPL")


def test_metrics_table_ddl_is_what_train_writes():
    sql = next(s.sql for s in statements(load_config()) if s.name == "trading.model_metrics")
    body, _, parts = sql.partition("PARTITIONED BY")
    names = re.findall(r"^\s*`(\w+)`", body, re.MULTILINE) + re.findall(r"^\s*`(\w+)`", parts, re.MULTILINE)
    assert names == METRIC_COLUMNS
    assert "LOCATION 'hdfs://127.0.0.1:19000/tradelake/trading/model_metrics'" in sql
