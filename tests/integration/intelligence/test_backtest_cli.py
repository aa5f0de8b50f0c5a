"""``tradelake backtest`` on the stack: a single run lands in the scratch warehouse's
backtest tables (read back through the Thrift server, as an analyst would) with a PNG, and a
sweep runs on Spark and lands one row per combination."""

from __future__ import annotations

import json

import pytest

from intelligence.synthetic import synthetic_bars, write_lake_bars
from tradelake.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def warehouse(scratch_warehouse, monkeypatch, tmp_path):
    scratch, env = scratch_warehouse
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TRADELAKE_INTELLIGENCE__BACKTEST__REPORT_DIR", str(tmp_path / "reports"))
    write_lake_bars(scratch, synthetic_bars(["AAPL", "MSFT"], 2, seed=23, bars_per_day=200), register=True)
    return scratch, tmp_path


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_a_run_lands_in_the_warehouse_with_its_chart(warehouse, thrift_query, capsys):
    cfg, tmp = warehouse
    assert main(["backtest", "--strategy", "mean_reversion", "--from", "2026-01-05", "--to", "2026-01-06",
                 "--param", "window=15"]) == 0
    out = capsys.readouterr()
    run = last_json(out.out)
    db, run_id = cfg.warehouse.trading_db, run["run_id"]
    assert run["bars"] == 800 and run["fills"] > 0
    where = f"WHERE run_id = '{run_id}'"
    trades = thrift_query(f"SELECT count(*), sum(commission) FROM {db}.backtest_trades {where}")
    assert trades[0][0] == run["fills"]
    equity = thrift_query(f"SELECT count(*), max(drawdown) FROM {db}.backtest_equity {where}")
    assert equity[0][0] == 400  # one sample per minute (both symbols' bars of a minute together)
    assert equity[0][1] == pytest.approx(run["max_drawdown"])
    row = thrift_query(f"SELECT strategy, bars, fills, sharpe, final_equity, params FROM {db}.backtest_runs "
                       f"WHERE run_id = '{run_id}'")
    assert row[0][:3] == ("mean_reversion", 800, run["fills"])
    assert row[0][3] == pytest.approx(run["sharpe"]) and row[0][4] == pytest.approx(run["final_equity"])
    assert json.loads(row[0][5])["strategy"]["window"] == 15
    chart = tmp / "reports" / f"{run_id}.png"
    assert chart.read_bytes()[:8] == PNG_MAGIC


def test_a_sweep_runs_on_spark_and_lands_one_row_per_combination(warehouse, thrift_query, capsys):
    cfg, _ = warehouse
    assert main(["backtest", "--strategy", "trend", "--from", "2026-01-05", "--to", "2026-01-06",
                 "--sweep", "fast=5,10", "--sweep", "slow=30,60"]) == 0
    out = capsys.readouterr()
    sweep = last_json(out.out)
    assert sweep["runs"] == 4 and sweep["bars"] == 800
    rows = thrift_query(f"SELECT run_id, params, bars FROM {cfg.warehouse.trading_db}.backtest_runs "
                        f"WHERE sweep_id = '{sweep['sweep_id']}' ORDER BY run_id")
    assert [r[0] for r in rows] == [f"{sweep['sweep_id']}-{i:03d}" for i in range(4)]
    assert [json.loads(r[1])["grid"] for r in rows] == [
        {"fast": "5", "slow": "30"}, {"fast": "5", "slow": "60"}, {"fast": "10", "slow": "30"},
        {"fast": "10", "slow": "60"}]
    assert {r[2] for r in rows} == {800}
