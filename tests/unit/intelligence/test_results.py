"""intelligence/results.py without services: the Parquet it writes has exactly the columns and types
of the DDL in hive/ddl/40_trading.hql, and a result turns into those rows."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from hive.warehouse import statements
from intelligence.backtest import Backtest
from intelligence.results import (
    EQUITY_SCHEMA,
    RUNS_SCHEMA,
    TRADES_SCHEMA,
    equity_table,
    run_row,
    trades_table,
)
from intelligence.sources import bars_from_arrow
from intelligence.strategies import MeanReversion
from intelligence.synthetic import synthetic_bars
from tradelake.config import load_config

ARROW_TO_HIVE = {pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.string(): "STRING", pa.date32(): "DATE"}
COLUMN = re.compile(r"^\s*`(\w+)`\s+(\w+)", re.MULTILINE)


@pytest.mark.parametrize("table, schema, partition", [
    ("backtest_runs", RUNS_SCHEMA, [("dt", "DATE")]),
    ("backtest_trades", TRADES_SCHEMA, [("run_id", "STRING")]),
    ("backtest_equity", EQUITY_SCHEMA, [("run_id", "STRING")]),
])
def test_files_match_the_ddl(table, schema, partition):
    cfg = load_config("local")
    sql = next(s.sql for s in statements(cfg) if s.name == f"trading.{table}")
    body, _, rest = sql.partition("PARTITIONED BY")
    assert COLUMN.findall(body) == [(f.name, ARROW_TO_HIVE[f.type]) for f in schema]
    assert COLUMN.findall(rest.split("STORED AS")[0]) == partition
    assert f"LOCATION '{cfg.lake.root}/trading/{table}'" in sql


def test_a_result_becomes_rows_of_the_three_tables():
    bars = bars_from_arrow(synthetic_bars(["AAA", "BBB"], 1, bars_per_day=120))
    result = Backtest(MeanReversion(10, 1.5, 0.3, qty=10)).run(bars)
    trades, equity = trades_table(result), equity_table(result)
    assert trades.schema == TRADES_SCHEMA and trades.num_rows == result.fill_count > 0
    assert equity.schema == EQUITY_SCHEMA and equity.num_rows == 120
    last = equity.slice(119).to_pylist()[0]
    assert last["equity"] == result.final_equity
    assert last["net_exposure"] == pytest.approx(last["equity"] - last["cash"])
    row = run_row(result, run_id="r-1", params={"window": 10}, symbols=["AAA", "BBB"], interval="1m",
                  date_from=None, date_to=None, finished_ns=5)
    assert pa.Table.from_pylist([row], schema=RUNS_SCHEMA).num_rows == 1
    assert row["fills"] == result.fill_count and row["params"] == '{"window": 10}'
