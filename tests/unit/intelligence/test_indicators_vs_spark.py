"""The online indicators give the batch features (spark_jobs/features.py) to 1e-9, column by column
and row by row, on the same bars: a local Spark session runs ``transform`` over a few hundred
1m bars of two symbols, the engine's ``FeatureSet`` runs over the same bars one at a time.

The bars include what the null rules are about: a run of 25 equal closes (sd_20 = 0: zscore null,
bands collapsed), bars without a vwap, and 20 zero-volume bars in a row (vwap_20 null).
"""

from __future__ import annotations

import math
from datetime import date

import pyarrow as pa
import pytest

from intelligence.indicators import FEATURE_COLUMNS, FeatureSet
from intelligence.sources import bars_from_arrow
from intelligence.synthetic import synthetic_bars

JAN5 = date(2026, 1, 5)
SYMBOLS = ("AAA", "BBB")
BARS_PER_SYMBOL = 300
REL, ABS = 1e-9, 1e-12


def _edge_cases(table: pa.Table) -> pa.Table:
    """Flat closes, missing vwaps and a silent stretch in AAA; BBB stays a plain random walk."""
    rows = table.to_pylist()
    aaa = [r for r in rows if r["symbol"] == "AAA"]
    flat = aaa[100]["close"]
    for r in aaa[101:126]:  # 25 equal closes: sd_20 is exactly 0 for 6 bars
        r.update(open=flat, high=flat, low=flat, close=flat, vwap=flat)
    aaa[126]["open"] = flat
    aaa[126]["low"] = min(aaa[126]["low"], flat)
    aaa[126]["high"] = max(aaa[126]["high"], flat)
    for r in aaa[150:170]:  # 20 bars without trades: volume 0, no vwap -> vwap_20 null at bar 169
        r.update(volume=0.0, vwap=None, trade_count=0)
    for i in (30, 31, 200):  # a vwap the feed did not supply (volume still counted elsewhere)
        aaa[i]["vwap"] = None
    return pa.Table.from_pylist(rows, schema=table.schema)


@pytest.fixture(scope="module")
def bars_table() -> pa.Table:
    return _edge_cases(synthetic_bars(SYMBOLS, 1, seed=11, bars_per_day=BARS_PER_SYMBOL))


def _spark_features(spark, table: pa.Table) -> dict[tuple[str, int], dict]:
    from pyspark.sql import functions as F

    from spark_jobs.features import transform

    df = spark.createDataFrame(table.to_pandas()).withColumn("dt", F.lit(JAN5))
    out = transform(df, JAN5, JAN5, {"1m": 0}).collect()
    return {(r["symbol"], r["ts"]): r.asDict() for r in out}


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL, abs_tol=ABS)


def test_every_online_feature_equals_the_batch_feature(local_spark, bars_table):
    batch = _spark_features(local_spark, bars_table)
    assert len(batch) == len(SYMBOLS) * BARS_PER_SYMBOL
    sets = {s: FeatureSet() for s in SYMBOLS}
    mismatches, compared, nulls = [], 0, 0
    for bar in bars_from_arrow(bars_table):
        online = sets[bar.symbol].update(bar)
        expected = batch[(bar.symbol, bar.ts)]
        for column in FEATURE_COLUMNS:
            compared += 1
            nulls += online[column] is None
            if not _close(online[column], expected[column]):
                mismatches.append((bar.symbol, bar.ts, column, online[column], expected[column]))
    assert not mismatches, f"{len(mismatches)} of {compared} values differ, e.g. {mismatches[:5]}"
    assert compared == len(SYMBOLS) * BARS_PER_SYMBOL * len(FEATURE_COLUMNS)
    assert 0 < nulls < compared / 10  # the warm-up nulls, and the edge cases' nulls, agree too


def test_the_edge_cases_hit_the_null_rules(local_spark, bars_table):
    """Guards the test above: the constructed cases really produce the nulls they are for."""
    batch = _spark_features(local_spark, bars_table)
    aaa = sorted((ts, row) for (symbol, ts), row in batch.items() if symbol == "AAA")
    rows = [row for _, row in aaa]
    assert rows[125]["zscore_20"] is None and rows[125]["bb_upper"] == rows[125]["bb_lower"]
    assert rows[169]["vwap_20"] is None and rows[168]["vwap_20"] is not None
    assert rows[20]["rv_20"] is not None and rows[19]["rv_20"] is None
    assert rows[33]["macd_signal"] is not None and rows[32]["macd_signal"] is None


def test_feature_columns_are_the_batch_layers():
    from spark_jobs.features import RECURSIVE_COLUMNS, WINDOWED_COLUMNS

    assert list(FEATURE_COLUMNS) == [*WINDOWED_COLUMNS, *RECURSIVE_COLUMNS]
