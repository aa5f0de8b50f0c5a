"""``tradelake backtest`` on a file:// lake (no services): report, exit codes, argument errors."""

from __future__ import annotations

import json

import pytest

from intelligence.synthetic import synthetic_bars, write_lake_bars
from tradelake.cli import main
from tradelake.config import load_config


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADELAKE_LAKE__ROOT", f"file://{tmp_path}")
    monkeypatch.setenv("TRADELAKE_STACK__VAR_DIR", str(tmp_path / "var"))
    cfg = load_config("local")
    write_lake_bars(cfg, synthetic_bars(["AAPL", "MSFT"], 2, bars_per_day=120))
    return tmp_path


def test_single_run_prints_a_report_and_a_json_summary(lake, capsys):
    code = main(["backtest", "--strategy", "mean_reversion", "--from", "2026-01-05", "--to", "2026-01-06",
                 "--param", "window=10", "--no-save"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "| sharpe" in out.out and "| max_drawdown" in out.out
    summary = json.loads(out.out.strip().splitlines()[-1])
    assert summary["bars"] == 2 * 2 * 120 and summary["strategy"] == "mean_reversion"
    assert "480 bars of 2 symbol(s)" in out.err


def test_pairs_reads_its_legs_by_default(lake, capsys, monkeypatch):
    monkeypatch.setenv("TRADELAKE_INTELLIGENCE__PAIRS__LEGS", "AAPL,MSFT")
    assert main(["backtest", "--strategy", "pairs", "--from", "2026-01-05", "--to", "2026-01-06",
                 "--param", "window=30", "--no-save"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["bars"] == 480


@pytest.mark.parametrize("extra, code, message", [
    (["--param", "windw=3"], 2, "unknown parameter"),
    (["--param", "window"], 2, "expected name=value"),
    (["--param", "exit_z=3"], 2, "exit_z"),
    (["--sweep", "window="], 2, "expected name=value1"),
    (["--to", "2026-01-01"], 2, "before"),
    (["--param", "backtest.fill_on=quote"], 2, "bars only"),
])
def test_bad_arguments_exit_2(lake, capsys, extra, code, message):
    args = ["backtest", "--strategy", "mean_reversion", "--from", "2026-01-05", "--to", "2026-01-06",
            "--no-save"]
    assert main(args + extra) == code
    assert message in capsys.readouterr().err


def test_no_bars_exits_1_and_says_why(lake, capsys):
    assert main(["backtest", "--strategy", "trend", "--from", "2027-01-04", "--to", "2027-01-05",
                 "--no-save"]) == 1
    assert "no 1m bars in curated.bars" in capsys.readouterr().err
